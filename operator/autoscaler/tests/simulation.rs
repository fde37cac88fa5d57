//! The simulated jobs of `strom_autoscaler::sim` (also printed by `strom-autoscaler-sim`):
//! the autoscaler reaches the minimal sufficient parallelism in one decision after a step,
//! keeps a slow daily cycle to a few rescales without flip-flopping, drains backlogs within
//! the catch-up duration, and does not repeat a scale-up that did not help.

use strom_autoscaler::sim;

#[test]
fn a_step_to_three_times_the_load_takes_one_decision_to_the_minimal_sufficient_parallelism() {
    let s = sim::step();
    assert_eq!(s.rescales.len(), 1, "{:#?}", s.rescales);
    assert_eq!(s.rescales[0].to, s.minimal_sufficient, "{:#?}", s.rescales);
    let drained = s.drained_secs.expect("the backlog drains");
    assert!(drained <= s.catch_up_secs, "drained after {drained}s");
}

#[test]
fn a_daily_cycle_takes_few_rescales_and_never_flip_flops() {
    let d = sim::daily();
    assert!(
        !d.rescales.is_empty() && d.rescales.len() <= 6,
        "{} rescales: {:#?}",
        d.rescales.len(),
        d.rescales
    );
    assert_eq!(d.reversals, 0, "{:#?}", d.rescales);
    // At most a few minutes in the whole day with more than a minute of input waiting.
    assert!(d.lagging_secs < 600, "{}s lagging", d.lagging_secs);
}

#[test]
fn an_ineffective_scale_up_is_made_once() {
    let i = sim::ineffective();
    assert_eq!(i.rescales.len(), 1, "{:#?}", i.rescales);
    assert_eq!(i.notices.len(), 1, "{:?}", i.notices);
    let last = i.last.expect("decisions were made");
    assert!(last.state.ineffective.contains("work"));
}
