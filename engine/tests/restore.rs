//! Restoring from snapshots that do not fit: a changed job graph, and damaged or unfinished
//! checkpoints.

#![allow(
    clippy::unwrap_used,
    reason = "a test should fail loudly at the first surprise"
)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use strom_engine::Error;
use strom_engine::plan::Plan;
use strom_engine::runtime::{RunOptions, Running};
use strom_engine::snapshot::coordinator::CheckpointConfig;
use strom_engine::snapshot::storage::Storage;
use strom_engine::spec::JobSpec;

fn golden(case: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../shared/golden/{case}"))
}

/// Golden case 02 (a keyed window named `result`), paced so that it takes several
/// checkpoints, writing to `out`.
fn job(out: &Path, window_name: &str) -> JobSpec {
    let dir = golden("02_tumble_agg");
    JobSpec::parse(&format!(
        r#"
sources:
  - name: events_raw
    file: {{path: "{}/events.csv", format: csv, batch_rows: 500}}
    schema: [{{name: id, type: BIGINT}}, {{name: k, type: INT}}, {{name: v, type: BIGINT}}, {{name: ts_ms, type: BIGINT}}]
    watermark: {{field: ts_ms, max_out_of_orderness: 2s}}
transforms:
  - {{name: events, input: events_raw, throttle: 60000}}
  - name: {window_name}
    input: events
    key_by: [k]
    window: {{tumble: 5s}}
    select: [k, window_start, window_end, "COUNT(*) AS cnt"]
sinks:
  - {{name: out, input: {window_name}, file: {{path: "{}", format: csv}}}}
"#,
        dir.display(),
        out.display()
    ))
    .unwrap()
}

fn checkpointed_run(work: &Path) -> Storage {
    let storage = Storage::open(work.join("checkpoints").to_str().unwrap()).unwrap();
    let plan = Plan::build(&job(&work.join("out"), "result"), 1).unwrap();
    let options = RunOptions {
        checkpoints: Some(CheckpointConfig {
            storage: storage.clone(),
            interval: Duration::from_millis(20),
            retain: 3,
        }),
        ..Default::default()
    };
    Running::start_with(plan, options).unwrap().wait().unwrap();
    storage
}

fn workdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("strom-restore-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn state_without_a_home_is_refused_by_operator_name_unless_allowed() {
    let work = workdir("graph");
    let storage = checkpointed_run(&work);
    let latest = storage.latest().unwrap();
    assert!(latest.metadata.job_finished);
    // The window is renamed: its state has no home.
    let renamed = job(&work.join("out2"), "per_key");
    let start = |allow| {
        let latest = storage.latest().unwrap();
        Running::start_with(
            Plan::build(&renamed, 1).unwrap(),
            RunOptions {
                restore: Some((latest.metadata, latest.state)),
                allow_non_restored_state: allow,
                ..Default::default()
            },
        )
    };
    let Err(Error::Incompatible(why)) = start(false) else {
        panic!("a snapshot of another graph was accepted");
    };
    let why = why.join("\n");
    assert!(why.contains("\"result\""), "{why}");
    assert!(why.contains("window-tumble"), "{why}");
    // Allowed: it starts, and says what it dropped.
    let running = start(true).unwrap();
    assert_eq!(running.dropped.len(), 1);
    assert!(running.dropped[0].contains("\"result\""));
    running.wait().unwrap();
    let _ = std::fs::remove_dir_all(&work);
}

#[test]
fn damaged_or_unfinished_checkpoints_are_never_restored_and_are_named() {
    let work = workdir("damaged");
    let storage = checkpointed_run(&work);
    let ids = storage.checkpoints().unwrap();
    assert!(ids.len() >= 3, "{ids:?}");
    let root = work.join("checkpoints");
    // The newest: a state file cut short. The next: no manifest (never completed).
    let newest = root.join(format!("chk-{}", ids[0]));
    // State files are under the writer's attempt: the first run is attempt 1.
    let state = std::fs::read_dir(newest.join("a1").join("result"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let bytes = std::fs::read(&state).unwrap();
    std::fs::write(&state, &bytes[..bytes.len() / 2]).unwrap();
    std::fs::remove_file(root.join(format!("chk-{}", ids[1])).join("_metadata")).unwrap();

    let latest = storage.latest().unwrap();
    assert_eq!(latest.metadata.id, ids[2], "{:?}", latest.skipped);
    assert_eq!(latest.skipped.len(), 2);
    assert!(latest.skipped[0].contains(state.file_name().unwrap().to_str().unwrap()));
    assert!(
        latest.skipped[0].contains("truncated"),
        "{}",
        latest.skipped[0]
    );
    assert!(
        latest.skipped[1].contains("_metadata: is missing"),
        "{}",
        latest.skipped[1]
    );

    // Pointed at the damaged checkpoint itself: refused, naming the file.
    let err = Storage::open(newest.to_str().unwrap())
        .unwrap()
        .latest()
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("result/0.state"), "{err}");
    let _ = std::fs::remove_dir_all(&work);
}
