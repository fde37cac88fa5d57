//! Kills jobs and restores them: for every golden case of `../shared/golden/`, runs the
//! engine as a child process with checkpoints, kills it (SIGKILL) at a random moment,
//! restores it from its newest complete checkpoint — at the same or another parallelism —
//! lets it finish, and checks that the committed output is exactly Flink's.
//!
//!   cargo run --release -p strom-engine --bin strom-chaos -- [--rounds 20] [--case 02_tumble_agg]...
//!       [--kafka 127.0.0.1:9092]
//!
//! With `--kafka`, each round's inputs are produced to topics of its own and the job writes
//! its output to a topic exactly once: a `read_committed` reader of it must get Flink's rows.
//!
//! The cases' sources are read in small batches behind a throttle, so that a run lasts long
//! enough to be killed in the middle and checkpoints fall between many batches.

mod kafka;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use rand::{Rng, SeedableRng};
use strom_engine::spec::{JobSpec, TransformSpec};

#[derive(Parser)]
struct Args {
    /// Kill-and-restore rounds per case and parallelism change.
    #[arg(long, default_value_t = 20)]
    rounds: usize,
    /// Only these cases (folder names of the golden directory; repeat the flag).
    #[arg(long)]
    case: Vec<String>,
    /// The golden cases.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/golden"))]
    golden: PathBuf,
    /// Seed of the kill times.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Source rows per second (per source) while running: sets how long a run lasts.
    #[arg(long, default_value_t = 40_000)]
    pace: u64,
    /// Read inputs from and write the output to topics on these Kafka brokers.
    #[arg(long)]
    kafka: Option<String>,
}

/// The parallelism of each run of a round: every run but the last is killed, and each run
/// restores from the newest complete checkpoint its predecessors left. `[1, 2, 1]` rescales
/// twice, so a restore of a snapshot that was itself taken after a rescale is exercised.
const RESCALES: &[&[usize]] = &[&[1, 1], &[2, 3], &[4, 1], &[1, 2, 1]];

/// SIGKILLs sent to running jobs, over all rounds.
static KILLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// When the first run is killed.
#[derive(Clone, Copy, Debug)]
enum Kill {
    /// This long after it started.
    After(Duration),
    /// As soon as its first checkpoint is complete: the restore is sure to start from a
    /// checkpoint rather than from nothing.
    AtFirstCheckpoint,
}

/// The job spec Strom runs for a golden case, if it has one: cases 10–18 are SQL only until
/// the engine speaks SQL.
fn spec_path(case: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/golden/{case}.yaml"))
}

/// The number of the newest complete checkpoint in `checkpoints`: one whose `_metadata` is
/// a manifest, not the seal a later run put on a checkpoint an earlier one left unfinished.
fn newest_checkpoint(checkpoints: &Path) -> Option<u64> {
    std::fs::read_dir(checkpoints)
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| {
            std::fs::read(e.path().join("_metadata")).is_ok_and(|bytes| {
                serde_json::from_slice::<strom_storage::layout::Seal>(&bytes).is_err()
            })
        })
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_prefix("chk-")?
                .parse::<u64>()
                .ok()
        })
        .max()
}

fn engine() -> PathBuf {
    let me = std::env::current_exe().expect("own path");
    me.with_file_name(format!("strom-engine{}", std::env::consts::EXE_SUFFIX))
}

/// The case's spec with paced sources, its output in `out`.
fn paced_spec(case: &str, dir: &Path, out: &Path, pace: u64) -> JobSpec {
    let text = std::fs::read_to_string(spec_path(case))
        .expect("the golden specs ship with the engine")
        .replace("${DIR}", &dir.display().to_string())
        .replace("${OUT}", &out.display().to_string());
    let mut spec = JobSpec::parse(&text).expect("golden specs are valid");
    // Each source `x` becomes `x_raw`, read through a throttle step named `x`: the rest of
    // the job (join columns are named after their inputs) stays as it was.
    let mut paces = Vec::new();
    for s in &mut spec.sources {
        if let Some(f) = &mut s.file {
            f.batch_rows = Some(200);
        }
        let raw = format!("{}_raw", s.name);
        let name = std::mem::replace(&mut s.name, raw);
        paces.push((name, s.name.clone()));
    }
    for (name, raw) in paces {
        let throttle: TransformSpec = serde_json::from_value(serde_json::json!({
            "name": name,
            "input": raw,
            "throttle": pace,
        }))
        .expect("a throttle step");
        spec.transforms.insert(0, throttle);
    }
    spec
}

/// Runs one round; Ok(description of what happened) or Err(what went wrong). With
/// `brokers`, through Kafka.
fn round(
    case: &str,
    golden: &Path,
    path: &[usize],
    kill: Kill,
    pace: u64,
    brokers: Option<&str>,
) -> Result<(String, Duration), String> {
    static ROUNDS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let dir = golden.join(case);
    let work = std::env::temp_dir().join(format!(
        "strom-chaos-{case}-{}-{}-{}",
        std::process::id(),
        path.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("-"),
        match kill {
            Kill::After(d) => d.as_micros(),
            Kill::AtFirstCheckpoint => 0,
        }
    ));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(|e| e.to_string())?;
    let (out, checkpoints, job) = (
        work.join("out"),
        work.join("checkpoints"),
        work.join("job.json"),
    );
    let mut spec = paced_spec(case, &dir, &out, pace);
    let topic = match brokers {
        Some(b) => {
            let n = ROUNDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let name = format!("{}-{}-{n}", case.replace('_', "-"), std::process::id());
            Some(kafka::onto_topics(&mut spec, b, &name)?)
        }
        None => None,
    };
    let text = serde_json::to_string(&spec).expect("specs serialize");
    std::fs::write(&job, text).map_err(|e| e.to_string())?;
    let run = |p: usize, restore: bool| {
        let mut c = Command::new(engine());
        c.args(["run", job.to_str().unwrap_or_default(), "--parallelism"])
            .arg(p.to_string())
            .args(["--checkpoint-dir", checkpoints.to_str().unwrap_or_default()])
            .args(["--checkpoint-interval", "25ms", "--retain-checkpoints", "2"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if restore {
            c.args(["--restore", checkpoints.to_str().unwrap_or_default()]);
        }
        c
    };
    let (last, killed) = path.split_last().ok_or("an empty path")?;
    let mut first_run = Duration::ZERO;
    let mut finished_first = false;
    for (leg, &p) in killed.iter().enumerate() {
        // Each run but the last is killed: the first as `kill` says, later ones at their
        // first checkpoint (a checkpoint newer than the one they restored).
        let had = newest_checkpoint(&checkpoints);
        let mut child = run(p, had.is_some()).spawn().map_err(|e| e.to_string())?;
        let started = Instant::now();
        let due = |elapsed: Duration| match (leg, kill) {
            (0, Kill::After(d)) => elapsed >= d,
            _ => newest_checkpoint(&checkpoints) > had,
        };
        while !due(started.elapsed()) {
            if let Ok(Some(_)) = child.try_wait() {
                finished_first |= leg == 0;
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        if let Ok(None) = child.try_wait() {
            let _ = child.kill();
            KILLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        let _ = child.wait();
        if leg == 0 {
            first_run = started.elapsed();
        }
    }
    // The last run, restored from the newest complete checkpoint (or from the start if the
    // kills came before the first one), to the end.
    let any_checkpoint = newest_checkpoint(&checkpoints).is_some();
    let restored = run(*last, any_checkpoint)
        .output()
        .map_err(|e| e.to_string())?;
    let stderr = String::from_utf8_lossy(&restored.stderr).to_string();
    if !restored.status.success() {
        return Err(format!("the restored run failed:\n{stderr}"));
    }
    let from = stderr
        .lines()
        .find(|l| l.starts_with("restoring from"))
        .unwrap_or("restoring from nothing")
        .to_owned();
    let want_text = std::fs::read_to_string(dir.join("expected.csv")).map_err(|e| e.to_string())?;
    let mut want: Vec<&str> = want_text.lines().collect();
    let want_header = want.remove(0);
    let mut got = match &topic {
        // A topic holds rows only.
        Some(topic) => topic.rows()?,
        None => {
            let (header, got) =
                strom_engine::io::sink::read_csv_dir(&out).map_err(|e| e.to_string())?;
            if header.as_deref() != Some(want_header) {
                return Err(format!("header {header:?}, Flink's {want_header:?}"));
            }
            got
        }
    };
    got.sort_unstable();
    want.sort_unstable();
    let same = got.len() == want.len()
        && got
            .iter()
            .zip(&want)
            .all(|(g, w)| strom_engine::io::sink::same_csv_line(g, w));
    if !same {
        // The work directory (its checkpoints, the job) stays for a look.
        let extra = got.len() as i64 - want.len() as i64;
        let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains("WARN")).collect();
        return Err(format!(
            "{} rows, Flink {} ({extra:+}); {from}{}{}; the work directory {} is kept",
            got.len(),
            want.len(),
            topic
                .as_ref()
                .map(|t| format!(" (output topic {})", t.topic))
                .unwrap_or_default(),
            if warnings.is_empty() {
                String::new()
            } else {
                format!("; the restored run warned: {}", warnings.join(" | "))
            },
            work.display()
        ));
    }
    let _ = std::fs::remove_dir_all(&work);
    let what = if finished_first {
        "finished before the kill".into()
    } else if any_checkpoint {
        from
    } else {
        "killed before the first checkpoint".into()
    };
    Ok((what, first_run))
}

fn main() {
    let args = Args::parse();
    let mut cases: Vec<String> = std::fs::read_dir(&args.golden)
        .unwrap_or_else(|e| panic!("{}: {e}", args.golden.display()))
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("expected.csv").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|c| args.case.is_empty() || args.case.contains(c))
        .collect();
    cases.sort();
    // A case runs when Strom has a job spec for it; the others are named, not hidden.
    let (cases, without_spec): (Vec<String>, Vec<String>) =
        cases.into_iter().partition(|c| spec_path(c).is_file());
    for case in &without_spec {
        println!("{case:<20} skipped: no Strom job spec (SQL only until the engine speaks SQL)");
    }
    let mut rng = rand::rngs::SmallRng::seed_from_u64(args.seed);
    let mut failures = 0;
    let mut by_outcome = std::collections::BTreeMap::<String, usize>::new();
    for case in &cases {
        // How long an uninterrupted run takes: kills fall anywhere in it.
        let (_, took) = round(
            case,
            &args.golden,
            &[1, 1],
            Kill::After(Duration::from_secs(600)),
            args.pace,
            args.kafka.as_deref(),
        )
        .unwrap_or_else(|e| panic!("{case} does not give Flink's output even uninterrupted: {e}"));
        let span = (took.as_millis() as u64).max(50);
        println!("{case:<20} an uninterrupted run takes {span} ms");
        for &path in RESCALES {
            let rescale = path
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("->");
            let (mut ok, mut restored) = (0, 0);
            for r in 0..args.rounds {
                // The first round is killed at its first checkpoint, so every rescale of every
                // case restores from one at least once; the others anywhere in the run, which
                // takes about (rows / pace) plus start-up.
                let kill = if r == 0 {
                    Kill::AtFirstCheckpoint
                } else {
                    Kill::After(Duration::from_millis(rng.random_range(10..span)))
                };
                match round(
                    case,
                    &args.golden,
                    path,
                    kill,
                    args.pace,
                    args.kafka.as_deref(),
                ) {
                    Ok((what, _)) => {
                        ok += 1;
                        if what.starts_with("restoring from file") {
                            restored += 1;
                            *by_outcome
                                .entry("restored from a checkpoint".into())
                                .or_default() += 1;
                        } else {
                            *by_outcome.entry(what).or_default() += 1;
                        }
                    }
                    Err(e) => {
                        failures += 1;
                        println!("FAIL {case} p={rescale} killed {kill:?}: {e}");
                    }
                }
            }
            println!(
                "{case:<20} p={rescale}: {ok}/{} rounds gave Flink's output ({restored} restored from a checkpoint)",
                args.rounds
            );
        }
    }
    println!("outcomes: {by_outcome:?}");
    println!(
        "SIGKILLs: {}",
        KILLS.load(std::sync::atomic::Ordering::Relaxed)
    );
    if failures > 0 {
        println!("{failures} rounds differed from Flink's output");
        std::process::exit(1);
    }
}
