//! `strom-engine run` as a user runs it.

#![allow(
    clippy::unwrap_used,
    reason = "a test should fail loudly at the first surprise"
)]

use std::process::Command;

fn engine() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_strom-engine"));
    c.current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    c
}

/// Where the example writes its part files.
const OUT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/golden-tumble");

#[test]
fn a_bounded_job_runs_to_the_end_and_exits_zero() {
    // A file sink adds part files to its directory (as Flink's does): start empty.
    let _ = std::fs::remove_dir_all(OUT);
    let out = engine()
        .args([
            "run",
            "examples/jobs/golden-tumble.yaml",
            "--parallelism",
            "2",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("12000 records in, 395 out, 1213 late"),
        "{stderr}"
    );
    let (header, rows) = strom_engine::io::sink::read_csv_dir(std::path::Path::new(OUT)).unwrap();
    assert!(header.is_some());
    assert_eq!(rows.len(), 395);
}

#[test]
fn a_bad_spec_exits_two_listing_every_problem_by_path() {
    let dir = std::env::temp_dir().join(format!("strom-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let job = dir.join("bad.yaml");
    std::fs::write(
        &job,
        "sources:\n  - name: s\n    datagen: {count: 10, columns: [{name: v, expr: \"id\"}]}\ntransforms:\n  - name: t\n    input: s\n    select: [\"nope + 1 AS x\"]\n    window: {tumble: 1x}\n    key_by: [v]\nsinks:\n  - name: out\n    input: t\n    blackhole: {}\n",
    )
    .unwrap();
    let out = engine()
        .args(["run", job.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("transforms[0].window.tumble: \"1x\" is not a duration"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn unknown_columns_are_named_before_anything_runs() {
    let dir = std::env::temp_dir().join(format!("strom-cli-cols-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let job = dir.join("bad.yaml");
    std::fs::write(
        &job,
        "sources:\n  - name: s\n    datagen: {count: 10, columns: [{name: v, expr: \"id\"}]}\ntransforms:\n  - name: t\n    input: s\n    select: [\"nope + 1 AS x\"]\nsinks:\n  - name: out\n    input: t\n    blackhole: {}\n",
    )
    .unwrap();
    let out = engine()
        .args(["run", job.to_str().unwrap()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("transforms[0].select[0]: unknown column \"nope\" (the input has v)"),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
