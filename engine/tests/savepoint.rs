//! Stop-with-savepoint through the control endpoint, then restore: the output is exactly
//! what an uninterrupted run gives (Flink's, for golden case 07).

#![allow(
    clippy::unwrap_used,
    reason = "a test should fail loudly at the first surprise"
)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

#[path = "support/golden07.rs"]
mod golden07;

fn engine() -> Command {
    Command::new(env!("CARGO_BIN_EXE_strom-engine"))
}

#[test]
fn stop_with_savepoint_then_restore_gives_the_uninterrupted_output() {
    let work = std::env::temp_dir().join(format!("strom-savepoint-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let (out, savepoint, job) = (work.join("out"), work.join("sp"), work.join("job.yaml"));
    // Its source read slowly (20 000 rows/s) so that the stop comes mid-way.
    std::fs::write(&job, golden07::job(&out, 20_000, 200)).unwrap();

    let mut running = engine()
        .args([
            "run",
            job.to_str().unwrap(),
            "-p",
            "2",
            "--listen",
            "127.0.0.1:0",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(running.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let endpoint = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no endpoint in {line:?}"))
        .to_owned();
    std::thread::sleep(Duration::from_millis(150));
    // Asked twice at once for the same target (a retrying client): one savepoint, and both
    // requests see it complete.
    let ask = || {
        engine()
            .args(["savepoint", &endpoint, "--target"])
            .arg(&savepoint)
            .arg("--stop")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (first, second) = (ask(), ask());
    for taken in [
        first.wait_with_output().unwrap(),
        second.wait_with_output().unwrap(),
    ] {
        assert!(
            taken.status.success(),
            "{}",
            String::from_utf8_lossy(&taken.stderr)
        );
    }
    let status = running.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    assert!(status.success(), "{rest}");
    assert!(rest.contains("stopped with a savepoint"), "{rest}");
    assert!(savepoint.join("_metadata").is_file());
    let (_, partial) = strom_engine::io::sink::read_csv_dir(&out).unwrap();

    // Restored (at another parallelism), it finishes the job.
    let restored = engine()
        .args(["run", job.to_str().unwrap(), "-p", "3", "--restore"])
        .arg(&savepoint)
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&restored.stderr);
    assert!(restored.status.success(), "{log}");
    assert!(log.contains("restoring from"), "{log}");

    golden07::assert_flink_output(&out, partial.len());
    let _ = std::fs::remove_dir_all(&work);
}
