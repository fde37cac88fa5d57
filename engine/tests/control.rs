//! The control endpoint reports what the operator and autoscaler read: job status with every
//! subtask's busy/idle/backpressured time, as JSON and as Prometheus metrics.

#![allow(
    clippy::unwrap_used,
    reason = "a test should fail loudly at the first surprise"
)]

use std::io::{Read, Write};
use std::time::Duration;

use strom_engine::control::{JobView, serve};
use strom_engine::spec::JobSpec;

fn get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    body.to_owned()
}

#[test]
fn job_status_and_prometheus_metrics_show_backpressure() {
    let spec = JobSpec::parse(
        "sources:\n  - name: fast\n    datagen: {count: 1000000000, columns: [{name: v, expr: \"id\"}]}\ntransforms:\n  - name: slow\n    input: fast\n    throttle: 20000\nsinks:\n  - name: out\n    input: slow\n    blackhole: {}\n",
    )
    .unwrap();
    let running = strom_engine::job::start(&spec, 1).unwrap();
    let view = JobView::new(running.metrics.clone(), 1, running.started);
    let addr = serve(view, "127.0.0.1:0".parse().unwrap()).unwrap();
    std::thread::sleep(Duration::from_millis(2500));

    let status: strom_protocol::JobStatus = serde_json::from_str(&get(addr, "/v1/job")).unwrap();
    assert_eq!(status.state, strom_protocol::JobState::Running);
    let names: Vec<&str> = status.vertices.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["source:fast", "slow", "sink:out"]);
    let source = &status.vertices[0].subtasks[0];
    let slow = &status.vertices[1].subtasks[0];
    assert!(source.backpressured_ms_per_second > 600.0, "{source:?}");
    assert!(slow.busy_ms_per_second > 600.0, "{slow:?}");
    assert!(slow.records_out > 0);
    // A bounded generator knows how much it has left to send.
    let pending = source.pending_records.unwrap();
    // (read while the source runs: the two counters may be a batch apart)
    assert!(
        pending.abs_diff(1_000_000_000 - source.records_in) <= 8192,
        "{source:?}"
    );
    assert_eq!(slow.pending_records, None);

    let metrics = get(addr, "/metrics");
    assert!(
        metrics.contains(
            "strom_engine_task_backpressured_ms_per_second{subtask=\"0\",vertex=\"source:fast\"}"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("strom_engine_task_records_out_total{subtask=\"0\",vertex=\"slow\"}"),
        "{metrics}"
    );
    assert!(
        metrics
            .contains("strom_engine_source_pending_records{subtask=\"0\",vertex=\"source:fast\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("strom_engine_job_uptime_seconds"),
        "{metrics}"
    );
    assert_eq!(get(addr, "/healthz"), "ok");
    running.cancel();
    let _ = running.wait();
}
