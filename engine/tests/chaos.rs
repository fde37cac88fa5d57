//! Exactly-once under failure, the short version CI runs: every golden case that has a Strom
//! job spec is run with checkpoints, killed with SIGKILL (once at its first checkpoint, once at
//! a random moment), restored at the same and at another parallelism (1→1, 2→3, 4→1, and twice: 1→2→1), and its
//! committed output must be exactly Flink's. The `strom-chaos` binary does the work;
//! `--rounds 20` is the long version (docs/engine.md).

#![allow(
    clippy::unwrap_used,
    reason = "a test should fail loudly at the first surprise"
)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// The golden cases Strom has a job spec for (cases without one are SQL only for now).
fn cases_with_a_spec() -> Vec<String> {
    let specs = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/golden");
    let mut cases: Vec<String> = std::fs::read_dir(&golden)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|c| golden.join(c).join("expected.csv").is_file())
        .filter(|c| specs.join(format!("{c}.yaml")).is_file())
        .collect();
    cases.sort();
    cases
}

#[test]
fn killed_and_restored_jobs_give_exactly_flinks_output() {
    chaos(&["--rounds", "2", "--seed", "7"], &cases_with_a_spec());
}

/// The same through Kafka: inputs read from topics, the output written to a topic exactly
/// once, and a `read_committed` reader of it gets exactly Flink's rows after every kill
/// and restore (a transaction left open would hold the reader back and fail the round).
///
/// CI takes five of the nine cases (stateless, tumbling and session windows, the interval
/// join, Nexmark q5: about a minute each through Kafka); the run over all nine is in
/// docs/performance.md.
#[test]
fn killed_and_restored_kafka_jobs_give_exactly_flinks_output_read_committed() {
    let broker = strom_testkit::kafka::Broker::start().unwrap();
    let cases = [
        "01_filter_project",
        "02_tumble_agg",
        "04_session_agg",
        "06_interval_join",
        "08_nexmark_q5",
    ];
    let mut args = vec!["--rounds", "2", "--seed", "11"];
    let bootstrap = broker.bootstrap();
    args.extend(["--kafka", bootstrap.as_str()]);
    for case in cases {
        args.extend(["--case", case]);
    }
    let stdout = chaos(&args, &cases.map(String::from));
    let kills: usize = stdout
        .lines()
        .find_map(|l| l.strip_prefix("SIGKILLs: "))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(kills >= 20, "{kills} SIGKILLs\n{stdout}");
}

/// Runs strom-chaos with `args` and checks its report: each of `cases`, every rescale
/// path, every round gave Flink's output, each case restored from a checkpoint at least
/// once, and (when all cases run) cases without a spec named as skipped. Returns the report.
fn chaos(args: &[&str], cases: &[String]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_strom-chaos"))
        .args(args)
        .output()
        .expect("strom-chaos runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let all = cases_with_a_spec();
    assert!(all.len() >= 9, "the nine DataStream cases have specs");
    // Every case with a spec, every rescale: "<case> p=a->b: n/n rounds gave Flink's output
    // (r restored from a checkpoint)".
    let mut restored = BTreeMap::<&str, usize>::new();
    let mut results = 0;
    for line in stdout.lines().filter(|l| l.contains("gave Flink's output")) {
        results += 1;
        let case = line.split_whitespace().next().unwrap();
        let (done, rest) = line.split_once(": ").unwrap().1.split_once('/').unwrap();
        let total = rest.split_whitespace().next().unwrap();
        assert_eq!(done, total, "{line}");
        let r: usize = line
            .rsplit_once('(')
            .unwrap()
            .1
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap();
        *restored.entry(case).or_default() += r;
    }
    // Four rescale paths per case.
    assert_eq!(results, cases.len() * 4, "{stdout}");
    for case in cases {
        assert!(
            restored.get(case.as_str()).copied().unwrap_or(0) >= 1,
            "{case}: no round restored from a checkpoint\n{stdout}"
        );
    }
    if cases != all {
        return stdout;
    }
    // Cases without a spec are named as skipped, not silently dropped.
    let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/golden");
    for entry in std::fs::read_dir(&golden).unwrap() {
        let case = entry.unwrap().file_name().to_string_lossy().into_owned();
        if golden.join(&case).join("expected.csv").is_file() && !all.contains(&case) {
            assert!(
                stdout.contains(&format!("{case:<20} skipped")),
                "{case} is neither run nor reported as skipped\n{stdout}"
            );
        }
    }
    stdout
}
