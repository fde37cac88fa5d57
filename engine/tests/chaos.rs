//! Exactly-once under failure, the short version CI runs: every golden case is run with
//! checkpoints, killed with SIGKILL at a random moment, restored at the same and at another
//! parallelism (1→1, 2→3, 4→1), and its committed output must be exactly Flink's. The
//! `strom-chaos` binary does the work; `--rounds 20` is the long version (docs/engine.md).

use std::process::Command;

#[test]
fn killed_and_restored_jobs_give_exactly_flinks_output() {
    let out = Command::new(env!("CARGO_BIN_EXE_strom-chaos"))
        .args(["--rounds", "2", "--seed", "7"])
        .output()
        .expect("strom-chaos runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Every case, every rescale.
    assert_eq!(
        stdout.matches("gave Flink's output").count(),
        27,
        "{stdout}"
    );
    assert!(stdout.contains("restored from a checkpoint"), "{stdout}");
}
