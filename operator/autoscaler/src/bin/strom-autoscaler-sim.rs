//! Runs the autoscaler's decision against simulated jobs and prints what it did: a load
//! step to three times the load, a slow sinusoid over a day, and a scale-up that cannot
//! help. The figures go into `docs/performance.md`.

use strom_autoscaler::sim;

fn hm(secs: i64) -> String {
    format!("{}h{:02}m{:02}s", secs / 3600, secs % 3600 / 60, secs % 60)
}

fn main() {
    println!("== step: L = 1000/s → 3L at 2h, subtasks of 1000/s each, default config");
    let s = sim::step();
    for r in &s.rescales {
        println!(
            "  at {}: {} → {}  ({})",
            hm(r.at_secs),
            r.from,
            r.to,
            r.summary
        );
    }
    println!(
        "  decisions after the step: {}; reaction {}s; chosen {}; minimal sufficient {}",
        s.rescales.len(),
        s.reaction_secs,
        s.rescales.first().map_or(0, |r| r.to),
        s.minimal_sufficient
    );
    match s.drained_secs {
        Some(d) => println!(
            "  backlog drained {} after the restart (catch-up duration {})",
            hm(d),
            hm(s.catch_up_secs)
        ),
        None => println!("  backlog NOT drained"),
    }

    println!("== day: 2500 ± 1500 records/s sinusoid over 24h, starting at 4 subtasks");
    let d = sim::daily();
    for r in &d.rescales {
        println!("  at {}: {} → {}", hm(r.at_secs), r.from, r.to);
    }
    println!(
        "  rescales: {}; a→b→a reversals: {} (shortest {}); largest backlog {:.0} records; \
         {}s with more than a minute of input waiting",
        d.rescales.len(),
        d.reversals,
        d.shortest_reversal_secs.map_or("-".into(), hm),
        d.max_backlog,
        d.lagging_secs
    );
    println!("  parallelism each hour: {:?}", d.hourly);

    println!("== ineffective: work cannot exceed 2 subtasks' throughput, 3000/s offered");
    let i = sim::ineffective();
    for r in &i.rescales {
        println!("  at {}: {} → {}", hm(r.at_secs), r.from, r.to);
    }
    for n in &i.notices {
        println!("  notice: {n}");
    }
    println!("  rescales in 4h: {}", i.rescales.len());
}
