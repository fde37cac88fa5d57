//! A slow step backpressures its input: the fast source upstream spends its time blocked
//! on a full channel, the slow step spends its time busy — the signals the autoscaler reads.

#![allow(
    clippy::unwrap_used,
    reason = "a test should fail loudly at the first surprise"
)]

use std::sync::atomic::Ordering;
use std::time::Duration;

use strom_engine::runtime::metrics::TaskMetrics;
use strom_engine::spec::JobSpec;

const JOB: &str = r#"
sources:
  - name: fast
    datagen:
      count: 1000000000
      columns: [{name: v, expr: "MOD(id, 97)"}]
transforms:
  - name: slow
    input: fast
    throttle: 50000
sinks:
  - name: out
    input: slow
    blackhole: {}
"#;

fn per_second(before: (u64, u64, u64), after: (u64, u64, u64), wall: Duration) -> (f64, f64, f64) {
    let ms = |a: u64, b: u64| (b - a) as f64 / 1e6 / wall.as_secs_f64();
    (
        ms(before.0, after.0),
        ms(before.1, after.1),
        ms(before.2, after.2),
    )
}

fn sample(m: &TaskMetrics) -> (u64, u64, u64) {
    (
        m.busy_ns.load(Ordering::Relaxed),
        m.idle_ns.load(Ordering::Relaxed),
        m.backpressured_ns.load(Ordering::Relaxed),
    )
}

#[test]
fn a_slow_step_makes_its_input_report_backpressure_and_itself_busy() {
    let spec = JobSpec::parse(JOB).unwrap();
    let running = strom_engine::job::start(&spec, 1).unwrap();
    let source = running
        .metrics
        .iter()
        .find(|m| m.vertex.starts_with("source:"))
        .unwrap()
        .clone();
    let slow = running
        .metrics
        .iter()
        .find(|m| m.vertex == "slow")
        .unwrap()
        .clone();
    // Let the channels fill, then measure over two seconds.
    std::thread::sleep(Duration::from_millis(700));
    let (s0, t0, r0, at) = (
        sample(&source),
        sample(&slow),
        slow.records_out.load(Ordering::Relaxed),
        std::time::Instant::now(),
    );
    std::thread::sleep(Duration::from_secs(2));
    let (s1, t1, r1, wall) = (
        sample(&source),
        sample(&slow),
        slow.records_out.load(Ordering::Relaxed),
        at.elapsed(),
    );
    running.cancel();
    let _ = running.wait();

    let (_, _, source_backpressured) = per_second(s0, s1, wall);
    let (slow_busy, _, _) = per_second(t0, t1, wall);
    println!(
        "source backpressured {source_backpressured:.0} ms/s, slow step busy {slow_busy:.0} ms/s"
    );
    assert!(
        source_backpressured > 700.0,
        "source backpressured only {source_backpressured:.0} ms/s"
    );
    assert!(slow_busy > 700.0, "throttle busy only {slow_busy:.0} ms/s");
    // The throttle holds its rate (within a batch of 8192 rows either way).
    let rate = (r1 - r0) as f64 / wall.as_secs_f64();
    assert!(
        (50_000.0 - 8192.0..50_000.0 + 8192.0).contains(&rate),
        "{rate} rows/s through a 50 000/s throttle"
    );
}
