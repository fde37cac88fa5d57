//! A generated source carried through a path of rescales and upgrades by savepoints: up,
//! an upgrade that changes the rate, down, another upgrade. Every id must be counted exactly
//! once: a restore hands out the streams the savepoint holds and starts none of its own (a
//! fresh stream beside the carried ones repeated ids from the second restore on).

#![allow(
    clippy::unwrap_used,
    reason = "a test should fail loudly at the first surprise"
)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use strom_engine::plan::Plan;
use strom_engine::runtime::{RunOptions, Running};
use strom_engine::snapshot::storage::Storage;
use strom_engine::spec::JobSpec;

/// Ids generated in all: 1 024 windows of 100 ids, in 12.5 blocks of the generator's 8192.
const COUNT: u64 = 102_400;

/// A keyed 1 s count over `ts = id * 10`: every window of every key holds 25 ids. The
/// watermark allows all the disorder that streams taking turns can make, so no row is late
/// and the counts show every id once or tell how often it came.
fn job(out: &Path, rate: u64) -> JobSpec {
    JobSpec::parse(&format!(
        r#"
sources:
  - name: gen
    datagen:
      count: {COUNT}
      rate: {rate}
      columns:
        - {{name: id, expr: id}}
        - {{name: ts, expr: "id * 10"}}
        - {{name: k, expr: "MOD(id, 4)"}}
    watermark: {{field: ts, max_out_of_orderness: 10000s}}
transforms:
  - name: per_key
    input: gen
    key_by: [k]
    window: {{tumble: 1s}}
    select: [k, window_start, "COUNT(*) AS cnt", "MIN(id) AS lo"]
sinks:
  - {{name: out, input: per_key, file: {{path: "{}", format: csv}}}}
"#,
        out.display()
    ))
    .unwrap()
}

fn workdir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("strom-rescale-path-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs at `parallelism` (restoring `from` if given) for `run_for`, then stops with a
/// savepoint into `to`; without `to`, runs to the end.
fn leg(
    spec: &JobSpec,
    parallelism: usize,
    from: Option<&Path>,
    to: Option<&Path>,
    run_for: Duration,
) {
    let mut options = RunOptions::default();
    if let Some(from) = from {
        let latest = Storage::open(from.to_str().unwrap())
            .unwrap()
            .latest()
            .unwrap();
        options.restore = Some((latest.metadata, latest.state));
        options.restored_from = Some(latest.url);
    }
    let running = Running::start_with(Plan::build(spec, parallelism).unwrap(), options).unwrap();
    if let Some(to) = to {
        std::thread::sleep(run_for);
        assert!(!running.is_finished(), "the leg ended before its savepoint");
        let done = running.savepoint(Storage::open(to.to_str().unwrap()).unwrap(), true);
        done.recv_timeout(Duration::from_secs(60))
            .unwrap()
            .unwrap_or_else(|e| panic!("savepoint at p={parallelism}: {e}"));
    }
    running.wait().unwrap();
}

#[test]
fn rescale_up_upgrade_rescale_down_upgrade_counts_every_id_exactly_once() {
    let work = workdir();
    let out = work.join("out");
    let sp = |n: usize| work.join(format!("sp-{n}"));
    // 1 → 2 (rescale), 2 → 2 at a new rate (upgrade), 2 → 1 (rescale), 1 → 1 at another
    // rate (upgrade), to the end.
    let slow = Duration::from_millis(600);
    leg(&job(&out, 12_000), 1, None, Some(&sp(1)), slow);
    leg(&job(&out, 12_000), 2, Some(&sp(1)), Some(&sp(2)), slow);
    leg(&job(&out, 16_000), 2, Some(&sp(2)), Some(&sp(3)), slow);
    leg(&job(&out, 16_000), 1, Some(&sp(3)), Some(&sp(4)), slow);
    leg(&job(&out, 1_000_000), 1, Some(&sp(4)), None, slow);

    let (header, rows) = strom_engine::io::sink::read_csv_dir(&out).unwrap();
    assert_eq!(header.as_deref(), Some("k,window_start,cnt,lo"));
    let mut windows = BTreeMap::<(i64, i64), (i64, usize)>::new();
    for row in &rows {
        let f: Vec<i64> = row.split(',').map(|x| x.parse().unwrap()).collect();
        let w = windows.entry((f[0], f[1])).or_default();
        w.0 += f[2];
        w.1 += 1;
    }
    // COUNT ids at 10 ms each: COUNT / 100 windows of 1 s, each with 4 keys.
    assert_eq!(windows.len() as u64, COUNT / 100 * 4, "windows");
    let wrong: Vec<_> = windows
        .iter()
        .filter(|(_, (cnt, fired))| *cnt != 25 || *fired != 1)
        .take(5)
        .collect();
    assert!(
        wrong.is_empty(),
        "windows counted other than 25 ids once ((k, start) → (count, rows)): {wrong:?}"
    );
    let _ = std::fs::remove_dir_all(&work);
}
