//! The control endpoint reports what the operator and autoscaler read: job status with every
//! subtask's busy/idle/backpressured time, as JSON and as Prometheus metrics.

#![allow(
    clippy::unwrap_used,
    reason = "a test should fail loudly at the first surprise"
)]

use std::time::Duration;

use strom_engine::control::{JobView, serve};
use strom_engine::spec::JobSpec;

#[path = "support/http.rs"]
mod http;
use http::get;

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

/// A job started as the operator starts it: a control token and a savepoint directory.
#[test]
fn only_the_jobs_token_takes_a_savepoint_and_only_into_its_own_directory() {
    use strom_protocol::{ClientError, EngineClient, SavepointRequest, SavepointState};
    let dir = std::env::temp_dir().join(format!("strom-control-guard-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("job.yaml"),
        "sources: [{name: g, datagen: {rate: 1000, columns: [{name: v, expr: id}]}}]\nsinks: [{name: o, input: g, blackhole: {}}]\n",
    )
    .unwrap();
    std::fs::write(dir.join("token"), "the-jobs-token\n").unwrap();
    let port = strom_testkit::free_port().unwrap();
    let savepoints = format!("file://{}/savepoints", dir.display());
    let mut engine = std::process::Command::new(env!("CARGO_BIN_EXE_strom-engine"))
        .arg("run")
        .arg(dir.join("job.yaml"))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .arg("--checkpoint-dir")
        .arg(format!("file://{}/checkpoints", dir.display()))
        .args(["--checkpoint-interval", "1s"])
        .arg("--control-token-file")
        .arg(dir.join("token"))
        .args(["--savepoint-dir", &savepoints])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let anonymous = EngineClient::new(&base, Duration::from_secs(5));
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while anonymous.job().is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the engine did not come up"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let refused = |client: &EngineClient, target: &str, stop: bool| match client.request_savepoint(
        &SavepointRequest {
            target: target.to_owned(),
            stop,
        },
    ) {
        Err(ClientError::Refused { status, .. }) => status,
        other => panic!("{target}: not refused: {other:?}"),
    };
    let own = format!("{savepoints}/sp-1");
    // Anyone on the network, without the token, or with another: refused, even to stop.
    assert_eq!(refused(&anonymous, &own, true), 401);
    let forger = EngineClient::new(&base, Duration::from_secs(5)).with_token("guess");
    assert_eq!(refused(&forger, &own, true), 401);
    // With the token, a target outside the job's savepoint directory is refused, and
    // nothing is written there.
    let operator = EngineClient::new(&base, Duration::from_secs(5)).with_token("the-jobs-token");
    let elsewhere = dir.join("attacker");
    assert_eq!(
        refused(&operator, &format!("file://{}", elsewhere.display()), true),
        403
    );
    assert!(!elsewhere.exists());
    assert_eq!(
        anonymous.job().unwrap().state,
        strom_protocol::JobState::Running,
        "the job keeps running"
    );
    // Its own directory works.
    let started = operator
        .request_savepoint(&SavepointRequest {
            target: own.clone(),
            stop: false,
        })
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let done = loop {
        let s = anonymous.savepoint(&started.id).unwrap();
        if s.status != SavepointState::InProgress {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the savepoint did not finish"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(done.status, SavepointState::Completed, "{done:?}");
    assert_eq!(done.location.as_deref(), Some(own.as_str()));
    engine.kill().unwrap();
    let _ = engine.wait();
    let _ = std::fs::remove_dir_all(&dir);
}
