//! Table tests of the pure decision: given a job's metrics (generated second by second from
//! rates), a state and a time, what does the autoscaler decide?

#![allow(clippy::unwrap_used, reason = "tests")]

use std::collections::BTreeMap;

use strom_autoscaler::{
    Config, Outcome, PendingScaleDown, Sample, ScaleUp, State, VertexSample, decide,
};

const MIN: i64 = 60;

/// At second t: (records in, records out, busy fraction, pending at the end of t).
type Activity = Box<dyn Fn(i64) -> (f64, f64, f64, Option<f64>)>;

/// A vertex of the test job: its shape, and what it does each second.
struct V {
    id: &'static str,
    p: u32,
    inputs: &'static [&'static str],
    partitions: Option<u32>,
    scalable: bool,
    at: Activity,
}

fn v(id: &'static str, p: u32, inputs: &'static [&'static str]) -> V {
    V {
        id,
        p,
        inputs,
        partitions: None,
        scalable: true,
        at: Box::new(|_| (0.0, 0.0, 0.0, None)),
    }
}

impl V {
    /// Steady: `rate` in and out per second at `busy`, pending `pending(t)`.
    fn steady(mut self, rate: f64, busy: f64) -> V {
        self.at = Box::new(move |_| (rate, rate, busy, None));
        self
    }
    fn with(mut self, f: impl Fn(i64) -> (f64, f64, f64, Option<f64>) + 'static) -> V {
        self.at = Box::new(f);
        self
    }
}

/// Samples every 10 s from `from` to `to` (seconds) of a run started at `started`.
fn samples(job: &[V], started: i64, from: i64, to: i64) -> Vec<Sample> {
    let mut acc = vec![(0.0f64, 0.0f64, 0.0f64, None::<f64>); job.len()];
    let mut out = Vec::new();
    for t in started..to {
        for (a, x) in acc.iter_mut().zip(job) {
            let (i, o, b, pending) = (x.at)(t);
            a.0 += i;
            a.1 += o;
            a.2 += b * 1000.0 * f64::from(x.p);
            a.3 = pending;
        }
        if (t + 1) % 10 == 0 && t + 1 >= from {
            out.push(Sample {
                at_ms: (t + 1) * 1000,
                run_started_ms: started * 1000,
                vertices: job
                    .iter()
                    .zip(&acc)
                    .map(|(x, a)| VertexSample {
                        id: x.id.into(),
                        parallelism: x.p,
                        inputs: x.inputs.iter().map(|s| (*s).into()).collect(),
                        scalable: x.scalable,
                        partitions: x.partitions,
                        records_in: a.0 as u64,
                        records_out: a.1 as u64,
                        busy_ms: a.2 as u64,
                        pending: a.3.map(|p| p as u64),
                    })
                    .collect(),
            });
        }
    }
    out
}

/// A 10-minute window, 5-minute stabilization, 30-minute catch-up, 5-minute restart,
/// 60-minute scale-down delay; target 0.7 ± 0.3.
fn config() -> Config {
    Config {
        metrics_window_ms: 10 * MIN * 1000,
        ..Config::default()
    }
}

/// source → work → sink, the source reading `rate`/s, work at `p` subtasks `busy`.
fn pipeline(rate: f64, p: u32, busy: f64) -> Vec<V> {
    vec![
        v("source:in", 1, &[]).steady(rate, 0.05),
        v("work", p, &["source:in"]).steady(rate, busy),
        V {
            scalable: false,
            ..v("sink:out", 1, &["work"]).steady(rate, 0.01)
        },
    ]
}

fn new_p(d: &strom_autoscaler::Decision, id: &str) -> u32 {
    d.vertices
        .iter()
        .find(|r| r.id == id)
        .unwrap()
        .new_parallelism
}

#[test]
fn in_band_no_action() {
    // work: 1000/s at 70% busy on 2 subtasks: utilization 0.7, the target.
    let s = samples(&pipeline(1000.0, 2, 0.7), 0, 0, 20 * MIN);
    let d = decide(&s, &State::default(), &config(), 20 * MIN * 1000);
    assert_eq!(d.outcome, Outcome::InBand, "{}", d.summary);
    assert!(d.parallelism.is_empty());
    let work = d.vertices.iter().find(|r| r.id == "work").unwrap();
    assert!(
        (work.true_rate.unwrap() - 1000.0 / 0.7).abs() < 5.0,
        "{work:?}"
    );
    assert!((work.utilization.unwrap() - 0.7).abs() < 0.01);
}

#[test]
fn scale_up_without_backlog() {
    // Target 0.5 ± 0.2; work runs 90% busy on 2 subtasks at 1000/s: true rate 1111/s.
    // capacity = 1000 × 5/30 + 1000 / 0.5 = 2166.7; ceil(2 × 2166.7 / 1111.1) = 4.
    let c = Config {
        target_utilization: 0.5,
        utilization_band: 0.2,
        ..config()
    };
    let s = samples(&pipeline(1000.0, 2, 0.9), 0, 0, 20 * MIN);
    let d = decide(&s, &State::default(), &c, 20 * MIN * 1000);
    assert_eq!(d.outcome, Outcome::Scale, "{}", d.summary);
    assert_eq!(new_p(&d, "work"), 4);
    assert_eq!(d.parallelism.get("work"), Some(&4));
    // The source (5% busy, at its minimum of 1) and the fixed sink stay.
    assert_eq!(d.parallelism.get("source:in"), Some(&1));
    assert!(!d.parallelism.contains_key("sink:out"));
    // The scale-up is remembered, to be judged for effectiveness.
    assert_eq!(d.state.scale_ups["work"].from, 2);
    assert!(d.summary.contains("work 2 → 4"), "{}", d.summary);
}

#[test]
fn scale_up_with_a_growing_backlog() {
    // The source reads 1000/s while 1500/s arrive: its backlog grows 500/s. work is 100%
    // busy at 1000/s on 2 subtasks (true rate 1000/s). target = 1500/s; after 20 minutes
    // the backlog is 600 000: catch-up = 600000 / 1800 s = 333.3/s.
    // capacity = 333.3 + 1500 × 300/1800 + 1500/0.7 = 2726.2; ceil(2 × 2726.2 / 1000) = 6.
    let mut job = pipeline(1000.0, 2, 1.0);
    job[0] = v("source:in", 1, &[]).with(|t| (1000.0, 1000.0, 0.05, Some(500.0 * (t + 1) as f64)));
    let s = samples(&job, 0, 0, 20 * MIN);
    let d = decide(&s, &State::default(), &config(), 20 * MIN * 1000);
    assert_eq!(d.outcome, Outcome::Scale, "{}", d.summary);
    let work = d.vertices.iter().find(|r| r.id == "work").unwrap();
    assert!((work.target_rate - 1500.0).abs() < 1.0, "{work:?}");
    assert!((work.catch_up_rate - 333.3).abs() < 1.0, "{work:?}");
    assert_eq!(work.new_parallelism, 6);
}

#[test]
fn catch_up_of_a_standing_backlog() {
    // Nothing grows, but 3.6 M records wait: 2000/s more for 30 minutes. work keeps up with
    // the input at 70% (in band by busy time alone), yet needs 6 subtasks to catch up:
    // capacity = 2000 + 1000 × 300/1800 + 1000/0.7 = 3595.2; ceil(2 × 3595.2 / 1428.6) = 6.
    let mut job = pipeline(1000.0, 2, 0.7);
    job[0] = v("source:in", 1, &[]).with(|_| (1000.0, 1000.0, 0.05, Some(3_600_000.0)));
    let s = samples(&job, 0, 0, 20 * MIN);
    let d = decide(&s, &State::default(), &config(), 20 * MIN * 1000);
    assert_eq!(d.outcome, Outcome::Scale, "{}", d.summary);
    let work = d.vertices.iter().find(|r| r.id == "work").unwrap();
    assert!((work.catch_up_rate - 2000.0).abs() < 1.0);
    assert_eq!(work.new_parallelism, 6);
}

#[test]
fn scale_down_waits_for_the_delay_and_takes_the_highest_recommendation() {
    // work on 8 subtasks, busy 10% / 20% / 15% in three decisions 20 minutes apart:
    // recommendations 2, 3 and 2 (ceil(8 × (r × 300/1800 + r/0.7) / (r / busy)));
    // factor limit off. After the 60-minute delay it goes to the highest: 3.
    let c = Config {
        max_scale_down_factor: 100.0,
        ..config()
    };
    let mut state = State::default();
    let mut seen = Vec::new();
    for (k, busy) in [0.1, 0.2, 0.15, 0.15].into_iter().enumerate() {
        let now = (20 + 20 * k as i64) * MIN;
        let s = samples(
            &pipeline(1000.0, 8, busy),
            now - 15 * MIN,
            now - 15 * MIN,
            now,
        );
        let d = decide(&s, &state, &c, now * 1000);
        let work = d.vertices.iter().find(|r| r.id == "work").unwrap();
        seen.push((d.outcome, work.recommended, work.new_parallelism));
        state = d.state;
    }
    assert_eq!(
        seen,
        vec![
            (
                Outcome::ScaleDownPending {
                    at_ms: 80 * MIN * 1000
                },
                2,
                8
            ),
            (
                Outcome::ScaleDownPending {
                    at_ms: 80 * MIN * 1000
                },
                3,
                8
            ),
            (
                Outcome::ScaleDownPending {
                    at_ms: 80 * MIN * 1000
                },
                2,
                8
            ),
            (Outcome::Scale, 2, 3),
        ]
    );
    assert!(state.scale_down.is_empty());
}

#[test]
fn a_scale_down_recommendation_that_stops_starts_over() {
    let c = Config {
        max_scale_down_factor: 100.0,
        ..config()
    };
    let mut state = State {
        scale_down: BTreeMap::from([(
            "work".into(),
            PendingScaleDown {
                since_ms: 0,
                highest: 2,
            },
        )]),
        ..State::default()
    };
    // Back in band: the pending scale-down is dropped…
    let s = samples(&pipeline(1000.0, 8, 0.7), 0, 0, 20 * MIN);
    let d = decide(&s, &state, &c, 20 * MIN * 1000);
    assert_eq!(d.outcome, Outcome::InBand);
    assert!(d.state.scale_down.is_empty());
    state = d.state;
    // …so a new low reading starts the delay again rather than acting at once.
    let s = samples(&pipeline(1000.0, 8, 0.1), 0, 0, 70 * MIN);
    let d = decide(&s, &state, &c, 70 * MIN * 1000);
    assert_eq!(
        d.outcome,
        Outcome::ScaleDownPending {
            at_ms: 130 * MIN * 1000
        }
    );
}

#[test]
fn bounds_and_factors_clamp_the_recommendation() {
    // Unclamped, work would go 2 → 6 (see scale_up_with_a_growing_backlog's numbers).
    let growing = || {
        let mut job = pipeline(1000.0, 2, 1.0);
        job[0] =
            v("source:in", 1, &[]).with(|t| (1000.0, 1000.0, 0.05, Some(500.0 * (t + 1) as f64)));
        samples(&job, 0, 0, 20 * MIN)
    };
    let at = |c: Config| {
        new_p(
            &decide(&growing(), &State::default(), &c, 20 * MIN * 1000),
            "work",
        )
    };
    assert_eq!(at(config()), 6);
    assert_eq!(
        at(Config {
            max_parallelism: Some(5),
            ..config()
        }),
        5
    );
    assert_eq!(
        at(Config {
            max_scale_up_factor: 2.0,
            ..config()
        }),
        4
    );
    // Down: 8 subtasks at 5% would need 1; at most halved by default, and never below the
    // minimum.
    let c = Config {
        scale_down_delay_ms: 0,
        ..config()
    };
    let idle = samples(&pipeline(1000.0, 8, 0.05), 0, 0, 20 * MIN);
    let d = decide(&idle, &State::default(), &c, 20 * MIN * 1000);
    assert_eq!((d.outcome, new_p(&d, "work")), (Outcome::Scale, 4));
    let c = Config {
        scale_down_delay_ms: 0,
        max_scale_down_factor: 100.0,
        min_parallelism: 3,
        ..config()
    };
    let d = decide(&idle, &State::default(), &c, 20 * MIN * 1000);
    assert_eq!(new_p(&d, "work"), 3);
}

#[test]
fn source_parallelism_aligns_to_its_partitions() {
    // A source with 12 partitions, 100% busy reading 1000/s on 2 subtasks, with a backlog
    // growing 1000/s (a target of 2000/s); a catch-up duration so long that only
    // 2000 / 0.7 counts.
    let c = Config {
        catch_up_ms: 3_600 * 1000 * 1000,
        ..config()
    };
    let source = |partitions| {
        vec![V {
            partitions: Some(partitions),
            ..v("source:in", 2, &[]).with(|t| (1000.0, 1000.0, 1.0, Some(1000.0 * (t + 1) as f64)))
        }]
    };
    // Raw: ceil(2 × (2000 / 0.7) / 1000) = 6, which divides 12: stays 6.
    let d = decide(
        &samples(&source(12), 0, 0, 20 * MIN),
        &State::default(),
        &c,
        20 * MIN * 1000,
    );
    assert_eq!(new_p(&d, "source:in"), 6);
    assert!(!d.summary.contains("aligned"), "{}", d.summary);
    // With 16 partitions: the divisor at or above 6 is 8 (two partitions each), and the
    // report says why it is not 6.
    let d = decide(
        &samples(&source(16), 0, 0, 20 * MIN),
        &State::default(),
        &c,
        20 * MIN * 1000,
    );
    assert_eq!(new_p(&d, "source:in"), 8);
    assert!(
        d.summary.contains("source:in 2 → 8 (")
            && d.summary.contains(", aligned to 16 partitions)"),
        "{}",
        d.summary
    );
    assert_eq!(
        d.vertices[0].note.as_deref(),
        Some("the formulas give 6; 8 splits its 16 partitions evenly")
    );
    // With 5 partitions: more than 5 subtasks would idle.
    let d = decide(
        &samples(&source(5), 0, 0, 20 * MIN),
        &State::default(),
        &c,
        20 * MIN * 1000,
    );
    assert_eq!(new_p(&d, "source:in"), 5);
    // With 13 (prime) and at most 10: no divisor in range, so 6 unaligned.
    let c10 = Config {
        max_parallelism: Some(10),
        ..c
    };
    let d = decide(
        &samples(&source(13), 0, 0, 20 * MIN),
        &State::default(),
        &c10,
        20 * MIN * 1000,
    );
    assert_eq!(new_p(&d, "source:in"), 6);
}

#[test]
fn an_ineffective_scale_up_is_reported_and_not_repeated() {
    // work went 2 → 4 when its true rate was 1000/s; now on 4 subtasks it manages 1050/s at
    // 100% busy with the backlog still growing: 5% of the 1000/s gain expected.
    let state = State {
        scale_ups: BTreeMap::from([(
            "work".into(),
            ScaleUp {
                at_ms: 0,
                from: 2,
                to: 4,
                true_rate: 1000.0,
            },
        )]),
        ..State::default()
    };
    let mut job = pipeline(1050.0, 4, 1.0);
    job[0] = v("source:in", 1, &[]).with(|t| (1050.0, 1050.0, 0.05, Some(450.0 * (t + 1) as f64)));
    let s = samples(&job, 0, 0, 20 * MIN);
    let d = decide(&s, &state, &config(), 20 * MIN * 1000);
    assert_eq!(d.notices.len(), 1, "{:?}", d.notices);
    assert!(d.notices[0].contains("ineffective"), "{}", d.notices[0]);
    assert!(d.state.ineffective.contains("work"));
    assert_eq!(d.outcome, Outcome::Hold, "{}", d.summary);
    let work = d.vertices.iter().find(|r| r.id == "work").unwrap();
    assert!(
        work.recommended > 4 && work.new_parallelism == 4,
        "{work:?}"
    );
    assert!(work.note.as_deref().unwrap().contains("blocked"));
    // An effective one (true rate doubled) is simply forgotten.
    let job = pipeline(1000.0, 4, 0.5);
    let d = decide(
        &samples(&job, 0, 0, 20 * MIN),
        &state,
        &config(),
        20 * MIN * 1000,
    );
    assert!(d.notices.is_empty() && d.state.ineffective.is_empty() && d.state.scale_ups.is_empty());
}

#[test]
fn after_a_restart_metrics_wait_for_stabilization_and_a_full_window() {
    // Overloaded, but the run started at minute 30 (a rescale): old-run samples do not count.
    let mut s = samples(&pipeline(1000.0, 2, 1.0), 0, 0, 29 * MIN);
    let mut job = pipeline(1000.0, 2, 1.0);
    job[0] = v("source:in", 1, &[]).with(|t| (1000.0, 1000.0, 0.05, Some(500.0 * (t + 1) as f64)));
    s.extend(samples(&job, 30 * MIN, 30 * MIN, 33 * MIN));
    let d = decide(&s, &State::default(), &config(), 33 * MIN * 1000);
    assert_eq!(
        d.outcome,
        Outcome::Stabilizing {
            until_ms: 35 * MIN * 1000
        },
        "{}",
        d.summary
    );
    // After stabilization, a full window of this run's samples is needed: 35 + 10 minutes.
    s.extend(samples(&job, 30 * MIN, 33 * MIN, 44 * MIN));
    let d = decide(&s, &State::default(), &config(), 44 * MIN * 1000);
    assert_eq!(
        d.outcome,
        Outcome::CollectingMetrics {
            until_ms: 45 * MIN * 1000
        }
    );
    s = samples(&job, 30 * MIN, 30 * MIN, 46 * MIN);
    let d = decide(&s, &State::default(), &config(), 46 * MIN * 1000);
    assert_eq!(d.outcome, Outcome::Scale, "{}", d.summary);
}

#[test]
fn a_load_step_inside_the_window_is_judged_on_the_new_load_alone() {
    // 1000/s until minute 15, then 3000/s: the source reads what work (2 × 1000/s) takes and
    // the rest waits. One minute after the step the load is still moving within the newest
    // quarter of the window: wait.
    let step = |t: i64| if t < 15 * MIN { 1000.0 } else { 3000.0 };
    let job = || {
        let backlog = move |t: i64| {
            (15 * MIN..=t)
                .map(|s| step(s) - 2000.0)
                .sum::<f64>()
                .max(0.0)
        };
        vec![
            v("source:in", 1, &[]).with(move |t| {
                (
                    step(t).min(2000.0),
                    step(t).min(2000.0),
                    0.05,
                    Some(backlog(t)),
                )
            }),
            v("work", 2, &["source:in"]).with(move |t| {
                (
                    step(t).min(2000.0),
                    step(t).min(2000.0),
                    step(t).min(2000.0) / 2000.0,
                    None,
                )
            }),
            V {
                scalable: false,
                ..v("sink:out", 1, &["work"])
                    .with(move |t| (step(t).min(2000.0), step(t).min(2000.0), 0.01, None))
            },
        ]
    };
    let d = decide(
        &samples(&job(), 0, 0, 16 * MIN),
        &State::default(),
        &config(),
        16 * MIN * 1000,
    );
    assert!(
        matches!(d.outcome, Outcome::LoadChanging { .. }),
        "{:?}: {}",
        d.outcome,
        d.summary
    );
    // Once the newest quarter (2.5 minutes) is all new load, the decision sees 3000/s:
    // capacity = 3000 × 300/1800 + 3000/0.7 + 180000/1800 = 4885.7 → 5 subtasks (5000/s),
    // in one step.
    let d = decide(
        &samples(&job(), 0, 0, 18 * MIN),
        &State::default(),
        &config(),
        18 * MIN * 1000,
    );
    assert_eq!(d.outcome, Outcome::Scale, "{}", d.summary);
    let work = d.vertices.iter().find(|r| r.id == "work").unwrap();
    assert!((work.target_rate - 3000.0).abs() < 30.0, "{work:?}");
    assert_eq!(work.new_parallelism, 5, "{work:?}");
    assert!(d.summary.contains("input rate moved"), "{}", d.summary);
}
