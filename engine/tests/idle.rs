//! A source subtask that stops sending records for longer than its `idle_timeout` stops
//! holding back the watermark (Flink's idleness); without the timeout it holds windows shut.

#![allow(
    clippy::unwrap_used,
    reason = "a test should fail loudly at the first surprise"
)]

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow::array::Int64Array;
use strom_engine::plan::Plan;
use strom_engine::runtime::Running;
use strom_engine::spec::JobSpec;

/// `(window_end, count)` rows as the sink receives them.
type Rows = Arc<Mutex<Vec<(i64, i64)>>>;

/// `fast` sends 3000 records (event times 0…29 990 ms) in about a second and ends; `slow`
/// sends 5 records (event times 0…40 ms) and then pauses for an hour.
fn job(idle_timeout: &str) -> (Running, Rows) {
    let spec = JobSpec::parse(&format!(
        r#"
sources:
  - name: fast
    datagen: {{count: 3000, rate: 3000, columns: [{{name: ts, expr: "id * 10"}}]}}
    watermark: {{field: ts, max_out_of_orderness: 0s}}
  - name: slow
    datagen:
      rate_schedule: [{{rate: 5, for: 1s}}, {{rate: 0, for: 1h}}]
      columns: [{{name: ts, expr: "id * 10"}}]
    watermark: {{field: ts, max_out_of_orderness: 0s{idle_timeout}}}
transforms:
  - {{name: both, union: [fast, slow]}}
  - name: per_second
    input: with_key
    key_by: [one]
    window: {{tumble: 1s}}
    select: [window_end, "COUNT(*) AS cnt"]
  - {{name: with_key, input: both, select: ["1 AS one", ts]}}
sinks:
  - {{name: out, input: per_second, blackhole: {{}}}}
"#
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    let rows = Arc::new(Mutex::new(Vec::new()));
    let seen = rows.clone();
    let mut plan = Plan::build(&spec, 1).unwrap();
    plan.collect_sinks(Arc::new(move |b| {
        let col = |i: usize| {
            b.column(i)
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap()
                .clone()
        };
        let (end, cnt) = (col(0), col(1));
        let mut rows = seen.lock().unwrap();
        rows.extend(
            end.values()
                .iter()
                .copied()
                .zip(cnt.values().iter().copied()),
        );
    }));
    (Running::start(plan), rows)
}

#[test]
fn an_idle_source_stops_holding_back_the_watermark() {
    let (running, rows) = job(", idle_timeout: 300ms");
    let deadline = Instant::now() + Duration::from_secs(30);
    while rows.lock().unwrap().len() < 30 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut got = rows.lock().unwrap().clone();
    got.sort_unstable();
    // Every window of `fast` fired; the first also holds slow's five records.
    let want: Vec<(i64, i64)> = (1..=30)
        .map(|s| (s * 1000, if s == 1 { 105 } else { 100 }))
        .collect();
    assert_eq!(got, want);
    let slow = running
        .metrics
        .iter()
        .find(|m| m.vertex == "source:slow")
        .unwrap();
    assert!(slow.watermark_idle.load(Ordering::Relaxed));
    running.cancel();
    assert!(
        running.wait().is_err(),
        "an unbounded job ends only by cancelling"
    );
}

#[test]
fn without_an_idle_timeout_a_silent_source_holds_every_window() {
    let (running, rows) = job("");
    let fast = running
        .metrics
        .iter()
        .find(|m| m.vertex == "source:fast")
        .unwrap()
        .clone();
    let deadline = Instant::now() + Duration::from_secs(30);
    while fast.records_in.load(Ordering::Relaxed) < 3000 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    // Well past the point where the idle timeout of the other test takes effect.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(rows.lock().unwrap().len(), 0);
    running.cancel();
    assert!(running.wait().is_err());
}
