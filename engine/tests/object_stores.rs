//! The engine checkpointing to S3 (moto), Azure Blob (azurite) and GCS (the XML-API fake),
//! as a user runs it: `strom-engine run --checkpoint-dir s3://…` with the endpoint as a
//! `--storage-option` and the credentials in the cloud's standard environment variables.
//!
//! Each run: checkpoints complete; the store stops in the middle of the run (the checkpoint
//! then fails, is counted and reported, and the job goes on); the store comes back and the
//! next checkpoint completes; the engine is killed (SIGKILL); a new run restores from the
//! checkpoint directory at another parallelism and finishes. The output is exactly
//! Flink's for golden case 07: no row lost (not even those staged for the failed
//! checkpoint) and none duplicated.

#![allow(
    clippy::unwrap_used,
    reason = "a test should fail loudly at the first surprise"
)]

#[path = "support/golden07.rs"]
mod golden07;

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use strom_protocol::CheckpointsStatus;
use strom_testkit::stores::{self, Store};

fn engine(store: &Store, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_strom-engine"));
    c.args(args);
    for o in store.cli_options() {
        c.arg("--storage-option").arg(o);
    }
    // Fail a stalled request fast, so that an outage fails the checkpoint in seconds.
    for o in stores::impatient().iter() {
        c.arg("--storage-option").arg(format!("{}={}", o.0, o.1));
    }
    for (k, v) in store.credential_env() {
        c.env(k, v);
    }
    c
}

fn status(endpoint: &str) -> CheckpointsStatus {
    ureq::get(&format!("{endpoint}/v1/checkpoints"))
        .call()
        .unwrap()
        .body_mut()
        .read_json()
        .unwrap()
}

fn wait_for(
    what: &str,
    endpoint: &str,
    done: impl Fn(&CheckpointsStatus) -> bool,
) -> CheckpointsStatus {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = status(endpoint);
        if done(&s) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {s:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The secret values among the credentials (an account name is not one).
fn secrets(store: &Store) -> Vec<String> {
    store
        .credential_env()
        .into_iter()
        .filter(|(k, _)| k.contains("SECRET") || k.contains("KEY"))
        .map(|(_, v)| v)
        .collect()
}

fn run(kind: &str) {
    let work = std::env::temp_dir().join(format!("strom-objstore-{kind}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let (out, spec) = (work.join("out"), work.join("job.yaml"));
    std::fs::write(&spec, golden07::job(&out, 1500, 100)).unwrap();
    let spec = spec.to_str().unwrap();
    let store = Store::start(kind, "jobs");
    let checkpoints = store.url("jobs", "prod/fraud/checkpoints");

    let mut first = engine(
        &store,
        &[
            "run",
            spec,
            "-p",
            "2",
            "--listen",
            "127.0.0.1:0",
            "--checkpoint-dir",
            &checkpoints,
            "--checkpoint-interval",
            "200ms",
        ],
    )
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut stderr = BufReader::new(first.stderr.take().unwrap());
    let endpoint = loop {
        let mut line = String::new();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "the engine exited"
        );
        if let Some(url) = line.split_whitespace().find(|w| w.starts_with("http://")) {
            break url.to_owned();
        }
    };
    let log = std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = stderr.read_to_string(&mut rest);
        rest
    });

    let before = wait_for("a first checkpoint", &endpoint, |s| s.latest_completed >= 1);
    assert_eq!(before.attempt, 1);
    assert!(before.history[0].location.starts_with(&checkpoints));
    // The store goes away mid-run: a checkpoint fails, is counted and says why.
    assert!(store.stop());
    let failed = wait_for("a failed checkpoint", &endpoint, |s| s.failed >= 1);
    store.resume();
    let why = failed.last_failure.clone().unwrap_or_default();
    assert!(
        why.contains(&checkpoints) || why.contains("_attempts") || why.contains("chk-"),
        "{why}"
    );
    for secret in secrets(&store) {
        assert!(
            !why.contains(&secret),
            "a credential leaked into the status: {why}"
        );
    }
    // Back: the job went on, and the next checkpoint completes.
    let after = wait_for("a checkpoint after the outage", &endpoint, |s| {
        s.latest_completed > failed.latest_completed && s.last_failure.is_none()
    });
    assert!(after.failed >= 1);
    // A crash.
    first.kill().unwrap();
    first.wait().unwrap();
    let first_log = log.join().unwrap();
    assert!(
        first_log.contains("checkpoint failed"),
        "the failure is logged for the operator: {first_log}"
    );
    for secret in secrets(&store) {
        assert!(
            !first_log.contains(&secret),
            "a credential leaked into the log"
        );
    }
    let (_, partial) = strom_engine::io::sink::read_csv_dir(&out).unwrap();

    // Restored at another parallelism from the checkpoint directory, it finishes the job.
    let second = engine(
        &store,
        &[
            "run",
            spec,
            "-p",
            "3",
            "--checkpoint-dir",
            &checkpoints,
            "--checkpoint-interval",
            "200ms",
            "--restore",
            &checkpoints,
        ],
    )
    .output()
    .unwrap();
    let second_log = String::from_utf8_lossy(&second.stderr);
    assert!(second.status.success(), "{second_log}");
    assert!(
        second_log.contains(&format!("restoring from {checkpoints}/chk-")),
        "{second_log}"
    );

    golden07::assert_flink_output(&out, partial.len());

    // Two runs, two attempts; retention left at most 3 complete checkpoints.
    let loc = store.location("jobs", "prod/fraud/checkpoints", &Default::default());
    let dir = strom_storage::layout::CheckpointDir::new(loc);
    let attempts = strom_storage::block_on(dir.attempts()).unwrap();
    assert_eq!(attempts.len(), 2, "{attempts:?}");
    assert!(attempts[1].restored_from.is_some());
    let complete = strom_storage::block_on(dir.checkpoints())
        .unwrap()
        .into_iter()
        .filter(|c| {
            matches!(
                c.state,
                strom_storage::layout::CheckpointState::Complete { .. }
            )
        })
        .count();
    assert!(
        (1..=4).contains(&complete),
        "{complete} complete checkpoints kept"
    );
    let _ = std::fs::remove_dir_all(&work);
}

#[test]
fn s3_moto() {
    run("s3");
}

#[test]
fn azure_azurite() {
    run("azure");
}

#[test]
fn gcs_fake() {
    run("gcs");
}
