//! A generated source keeps to its rate schedule (the load profile autoscaler tests use).

#![allow(
    clippy::unwrap_used,
    reason = "a test should fail loudly at the first surprise"
)]

use std::time::Instant;

use strom_engine::spec::JobSpec;

#[test]
fn datagen_follows_its_rate_schedule() {
    // 10 000 rows at 20 000/s (0.5 s), then 40 000 at 80 000/s (0.5 s): at least 1 s in all.
    let spec = JobSpec::parse(
        "sources:\n  - name: s\n    datagen:\n      count: 50000\n      rate_schedule: [{rate: 20000, for: 500ms}, {rate: 80000, for: 10s}]\n      columns: [{name: v, expr: \"id\"}]\nsinks:\n  - name: out\n    input: s\n    blackhole: {}\n",
    )
    .unwrap();
    let started = Instant::now();
    let summary = strom_engine::job::run(&spec, 1).unwrap();
    let took = started.elapsed().as_secs_f64();
    assert_eq!(summary.records_in, 50_000);
    // Not faster than the schedule allows (less one batch of 8192 rows of slack).
    assert!(
        took > 0.85,
        "finished in {took:.2} s, faster than the schedule"
    );
    assert!(took < 10.0, "finished in {took:.2} s");
}

#[test]
fn rate_and_rate_schedule_together_are_refused() {
    let err = JobSpec::parse(
        "sources:\n  - name: s\n    datagen: {rate: 0, rate_schedule: [{rate: 0, for: 1x}], columns: []}\nsinks: [{name: out, input: s, blackhole: {}}]\n",
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("sources[0].datagen: set rate or rate_schedule, not both"),
        "{err}"
    );
    assert!(
        err.contains("sources[0].datagen.rate: must be at least 1"),
        "{err}"
    );
    assert!(
        err.contains("sources[0].datagen.rate_schedule[0].for: \"1x\" is not a duration"),
        "{err}"
    );
}
