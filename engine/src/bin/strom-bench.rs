//! The benchmark of `../shared/bench/README.md`: the same generated events Apache Flink 2.3
//! ran (q0 source only, qa filter + projection, qb keyed 1 s tumbling count/sum), each run
//! with a discarding sink and timed, then run again with a checksum sink and checked
//! against the checksums the README gives. Prints events per second per core beside Flink's
//! recorded figures.
//!
//!   cargo run --release -p strom-engine --bin strom-bench -- [--events N] [--parallelism P] [--runs R]

use std::sync::{Arc, Mutex};
use std::time::Instant;

use arrow::array::{Array, Int64Array};
use arrow::record_batch::RecordBatch;
use clap::Parser;
use strom_engine::plan::Plan;
use strom_engine::runtime::Running;
use strom_engine::spec::JobSpec;

#[derive(Parser)]
struct Args {
    /// Events per run (the README's figures are for 20 000 000).
    #[arg(long, default_value_t = 20_000_000)]
    events: u64,
    /// Parallelism (cores used).
    #[arg(long, default_value_t = 1)]
    parallelism: usize,
    /// Timed runs per workload (the median is reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Skip the checksum verification runs.
    #[arg(long)]
    no_verify: bool,
    /// Skip q5 and q7 (which first write a 432 MB bid file under target/bench/).
    #[arg(long)]
    skip_bids: bool,
    /// Also run every workload with checkpoints at this interval (e.g. `1s`, into
    /// target/bench/checkpoints) and print the throughput lost.
    #[arg(long)]
    checkpoints: Option<String>,
}

/// Runs `plan` to its end, with checkpoints every `interval` if given; events per second
/// of wall time and per CPU second, and the checkpoints completed. A run whose sources did
/// not read exactly `events` records is not a measurement: the benchmark stops.
fn timed(plan: Plan, events: f64, interval: Option<std::time::Duration>) -> (f64, f64, u64) {
    let options = strom_engine::runtime::RunOptions {
        checkpoints: interval.map(|interval| {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../target/bench/checkpoints");
            let _ = std::fs::remove_dir_all(&dir);
            strom_engine::snapshot::coordinator::CheckpointConfig {
                storage: strom_engine::snapshot::storage::Storage::open(
                    dir.to_str().unwrap_or("."),
                )
                .expect("the checkpoint directory opens"),
                interval,
                retain: 2,
            }
        }),
        ..Default::default()
    };
    let (t, cpu) = (Instant::now(), cpu_seconds());
    let running = Running::start_with(plan, options).expect("the benchmark job starts");
    let shared = running.checkpoints.clone();
    let done = running.wait().expect("the benchmark job runs");
    if done.records_in as f64 != events {
        eprintln!(
            "error: the run read {} records, not the {events} it is timed for",
            done.records_in
        );
        std::process::exit(1);
    }
    (
        events / t.elapsed().as_secs_f64(),
        events / (cpu_seconds() - cpu).max(0.01),
        shared.history.lock().expect("history").len() as u64,
    )
}

fn interval(args: &Args) -> Option<std::time::Duration> {
    args.checkpoints.as_ref().map(|c| {
        let ms = strom_engine::spec::Duration(c.clone())
            .millis()
            .expect("--checkpoints is a duration");
        std::time::Duration::from_millis(ms.max(1) as u64)
    })
}

/// Median-by-rate of runs.
fn median(mut rates: Vec<(f64, f64, u64)>) -> (f64, f64, u64) {
    rates.sort_by(|a, b| a.0.total_cmp(&b.0));
    rates[rates.len() / 2]
}

const SOURCE: &str = r#"
sources:
  - name: events
    datagen:
      count: ${N}
      columns:
        - {name: id, expr: "id"}
        - {name: k, expr: "MOD(id * 7919, 10000)"}
        - {name: v, expr: "MOD(id * 2654435761 / 65536, 1000)"}
        - {name: ts, expr: "1700000000000 + id / 100 - MOD(id * 1597334677 / 4096, 1000)"}
    watermark: {field: ts, max_out_of_orderness: 1s}
"#;

struct Workload {
    name: &'static str,
    what: &'static str,
    transforms: &'static str,
    output: &'static str,
    flink_p1: f64,
    flink_p2: f64,
}

const WORKLOADS: &[Workload] = &[
    Workload {
        name: "q0",
        what: "source only",
        transforms: "transforms: []",
        output: "events",
        flink_p1: 3.17e6,
        flink_p2: 3.63e6,
    },
    Workload {
        name: "qa",
        what: "filter + projection",
        transforms: "transforms:\n  - name: qa\n    input: events\n    where: \"v < 300\"\n    select: [id, k, \"v * 3 + 1 AS v3\"]",
        output: "qa",
        flink_p1: 3.72e6,
        flink_p2: 6.01e6,
    },
    Workload {
        name: "qb",
        what: "keyed 1 s tumbling count/sum, 10k keys",
        transforms: "transforms:\n  - name: qb\n    input: events\n    key_by: [k]\n    window: {tumble: 1s}\n    select: [k, window_start, window_end, \"COUNT(*) AS cnt\", \"SUM(v) AS sum_v\"]",
        output: "qb",
        flink_p1: 1.42e6,
        flink_p2: 1.89e6,
    },
];

fn spec(w: &Workload, n: u64) -> JobSpec {
    let text = format!(
        "{}{}\nsinks:\n  - name: out\n    input: {}\n    blackhole: {{}}\n",
        SOURCE.replace("${N}", &n.to_string()),
        w.transforms,
        w.output
    );
    JobSpec::parse(&text).expect("the benchmark specs are valid")
}

fn col(b: &RecordBatch, name: &str) -> Int64Array {
    b.column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<Int64Array>().cloned())
        .expect("an integer column")
}

/// Checksums as defined in the bench README.
fn checksums(name: &str, batches: &[RecordBatch]) -> String {
    let mut n = 0i64;
    match name {
        "qa" => {
            let (mut s_id, mut s_k, mut s_v3, mut s_mix) = (0i64, 0i64, 0i64, 0i64);
            for b in batches {
                let (id, k, v3) = (col(b, "id"), col(b, "k"), col(b, "v3"));
                for i in 0..b.num_rows() {
                    n += 1;
                    s_id += id.value(i);
                    s_k += k.value(i);
                    s_v3 += v3.value(i);
                    s_mix += (id.value(i) * v3.value(i)) % 1_000_003;
                }
            }
            format!("n={n}, s_id={s_id}, s_k={s_k}, s_v3={s_v3}, s_mix={s_mix}")
        }
        "qb" => {
            let (
                mut s_cnt,
                mut s_sum_v,
                mut s_kc,
                mut s_wsv,
                mut min_ws,
                mut max_ws,
                mut s_len,
                mut s_mix,
            ) = (0i64, 0i64, 0i64, 0i64, i64::MAX, i64::MIN, 0i64, 0i64);
            for b in batches {
                let (k, ws, we, cnt, sum_v) = (
                    col(b, "k"),
                    col(b, "window_start"),
                    col(b, "window_end"),
                    col(b, "cnt"),
                    col(b, "sum_v"),
                );
                for i in 0..b.num_rows() {
                    n += 1;
                    let w = (ws.value(i) - 1_700_000_000_000).div_euclid(1000);
                    s_cnt += cnt.value(i);
                    s_sum_v += sum_v.value(i);
                    s_kc += k.value(i) * cnt.value(i);
                    s_wsv += w * sum_v.value(i);
                    min_ws = min_ws.min(w);
                    max_ws = max_ws.max(w);
                    s_len += (we.value(i) - ws.value(i)) / 1000;
                    s_mix += ((k.value(i) * 100_003 + w) * cnt.value(i) * 31 + sum_v.value(i))
                        % 1_000_003;
                }
            }
            format!(
                "n={n}, s_cnt={s_cnt}, s_sum_v={s_sum_v}, s_kc={s_kc}, s_wsv={s_wsv}, min_ws={min_ws}, max_ws={max_ws}, s_len={s_len}, s_mix={s_mix}"
            )
        }
        _ => {
            for b in batches {
                n += b.num_rows() as i64;
            }
            format!("n={n}")
        }
    }
}

fn expected(name: &str) -> Option<&'static str> {
    match name {
        "qa" => Some(
            "n=6000008, s_id=59999950258790, s_k=29997038010, s_v3=2696998265, s_mix=3000249126313",
        ),
        "qb" => Some(
            "n=2010000, s_cnt=20000000, s_sum_v=9989992394, s_kc=99990000000, s_wsv=989015441544, min_ws=-1, max_ws=199, s_len=2010000, s_mix=994880965504",
        ),
        _ => None,
    }
}

/// CPU seconds (user + system) this process has used, from /proc (Linux). Without it the
/// per-CPU figures would be invented, so the benchmark stops.
fn cpu_seconds() -> f64 {
    let read = || -> Result<f64, String> {
        let stat = std::fs::read_to_string("/proc/self/stat").map_err(|e| e.to_string())?;
        // Fields after the command name (which may hold spaces) start after the last ')'.
        let rest = stat.rsplit(')').next().ok_or("no command name")?;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| -> Result<f64, String> {
            fields
                .get(i)
                .and_then(|f| f.parse::<f64>().ok())
                .ok_or_else(|| format!("field {} is missing or not a number", i + 3))
        };
        // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after the name.
        Ok((ticks(11)? + ticks(12)?) / 100.0)
    };
    read().unwrap_or_else(|e| {
        eprintln!("error: cannot read this process's CPU time from /proc/self/stat: {e}");
        std::process::exit(1);
    })
}

/// Writes the bid file of `../shared/bench/flink/gen_bids.py` (same formulas, u64 wrapping
/// arithmetic), unless it is already there with the expected size.
fn ensure_bids(path: &std::path::Path, bids: u64) -> std::io::Result<()> {
    use std::io::Write;
    const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;
    const SEED: u64 = 0x5EED_5EED_5EED_5EED;
    const RATE: i64 = 50_000;
    const CHANNELS: [&str; 4] = ["Google", "Facebook", "Baidu", "Apple"];
    if bids == 10_000_000 && path.metadata().is_ok_and(|m| m.len() == 432_425_141) {
        return Ok(());
    }
    let mix = |mut z: u64| {
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&tmp)?);
    for i in 0..bids {
        let r = |j: u64| {
            mix(SEED.wrapping_add((i.wrapping_mul(4).wrapping_add(j + 1)).wrapping_mul(GOLDEN)))
        };
        let (r0, r1, r2, r3) = (r(0), r(1), r(2), r(3));
        let ii = i as i64;
        let last_auction = 2000 + ii / 10;
        let auction = if r0 % 2 == 0 {
            (last_auction / 100) * 100
        } else {
            last_auction - (r1 % 1000) as i64
        };
        let last_person = 1000 + ii / 50;
        let bidder = if r2 % 4 != 0 {
            (last_person / 100) * 100 + 1
        } else {
            last_person - ((r2 >> 8) % 1000) as i64
        };
        let price = 1 + ((r3 >> 11) % 100_000_000) as i64;
        let channel = CHANNELS[((r1 >> 32) % 4) as usize];
        let ts = 1_700_000_000_000 + (ii * 1000) / RATE;
        writeln!(out, "{auction},{bidder},{price},{channel},{ts}")?;
    }
    out.flush()?;
    drop(out);
    std::fs::rename(tmp, path)
}

fn bid_checksums(name: &str, batches: &[RecordBatch]) -> String {
    let mut n = 0i64;
    match name {
        "q5" => {
            let (mut s_auction, mut s_num, mut max_num, mut s_mix) = (0i64, 0i64, 0i64, 0i64);
            for b in batches {
                let (a, num) = (col(b, "auction"), col(b, "num"));
                for i in 0..b.num_rows() {
                    n += 1;
                    s_auction += a.value(i);
                    s_num += num.value(i);
                    max_num = max_num.max(num.value(i));
                    s_mix += (a.value(i) * 31 + num.value(i)) % 1_000_003;
                }
            }
            format!("n={n}, s_auction={s_auction}, s_num={s_num}, max_num={max_num}, s_mix={s_mix}")
        }
        _ => {
            let (mut s_auction, mut s_bidder, mut s_price, mut s_sec, mut s_mix) =
                (0i64, 0i64, 0i64, 0i64, 0i64);
            for b in batches {
                let (a, bd, p, t) = (
                    col(b, "auction"),
                    col(b, "bidder"),
                    col(b, "price"),
                    col(b, "date_time"),
                );
                for i in 0..b.num_rows() {
                    n += 1;
                    s_auction += a.value(i);
                    s_bidder += bd.value(i);
                    s_price += p.value(i);
                    s_sec += (t.value(i) - 1_700_000_000_000).div_euclid(1000);
                    s_mix += (a.value(i) * 31 + bd.value(i) * 7 + p.value(i)) % 1_000_003;
                }
            }
            format!(
                "n={n}, s_auction={s_auction}, s_bidder={s_bidder}, s_price={s_price}, s_sec={s_sec}, s_mix={s_mix}"
            )
        }
    }
}

fn bid_spec(query: &str, bids: &std::path::Path) -> JobSpec {
    let case = if query == "q5" {
        "08_nexmark_q5"
    } else {
        "09_nexmark_q7"
    };
    let text = std::fs::read_to_string(format!(
        "{}/tests/golden/{case}.yaml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("the golden specs ship with the engine")
    .replace("${DIR}/bids.csv", &bids.display().to_string());
    // Timed runs discard the output; the verification run collects it.
    let text = match text.split_once("    file: {path: \"${OUT}\", format: csv}") {
        Some((head, tail)) => format!("{head}    blackhole: {{}}{tail}"),
        None => text,
    };
    JobSpec::parse(&text).expect("the Nexmark specs are valid")
}

fn run_bids(args: &Args, p: usize) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench/bids.csv");
    let started = Instant::now();
    ensure_bids(&path, 10_000_000).expect("the bid file can be written");
    eprintln!(
        "bid file ready ({:.1} s): {}",
        started.elapsed().as_secs_f64(),
        path.display()
    );
    for (query, what, flink_p1, flink_p2, want) in [
        (
            "q5",
            "Nexmark q5 hot items (HOP 10 s / 2 s)",
            0.60e6,
            0.86e6,
            "n=109, s_auction=55574900, s_num=60349, max_num=565, s_mix=45877218",
        ),
        (
            "q7",
            "Nexmark q7 highest bid (10 s tumble)",
            0.25e6,
            0.24e6,
            "n=20, s_auction=9946805, s_bidder=1999402, s_price=1999995964, s_sec=1973, s_mix=9335794",
        ),
    ] {
        let runs = |every| {
            median(
                (0..args.runs)
                    .map(|_| {
                        let plan = Plan::build(&bid_spec(query, &path), p).expect("plans");
                        timed(plan, 10_000_000f64, every)
                    })
                    .collect(),
            )
        };
        let (median, per_cpu, _) = runs(None);
        let flink = if p == 1 { flink_p1 } else { flink_p2 };
        println!(
            "{query:<4} {what:<40} {median:>14.0} {per_cpu:>14.0} {:>7.2}M/{:.2}M {:>9.1} {:>9.1}",
            flink_p1 / 1e6,
            flink_p2 / 1e6,
            median / flink,
            per_cpu / (flink / p as f64)
        );
        if let Some(every) = interval(args) {
            let (with, _, n) = runs(Some(every));
            println!(
                "     with checkpoints every {every:?}: {with:.0} events/s ({n} checkpoints), {:+.1}%",
                (with / median - 1.0) * 100.0
            );
        }
        if !args.no_verify {
            let batches: Arc<Mutex<Vec<RecordBatch>>> = Arc::default();
            let mut plan = Plan::build(&bid_spec(query, &path), p).expect("plans");
            let sink = batches.clone();
            plan.tap_sinks(Arc::new(move |b: &RecordBatch| {
                sink.lock().expect("collector").push(b.clone())
            }));
            Running::start(plan)
                .wait()
                .expect("the verification job runs");
            let got = bid_checksums(query, &batches.lock().expect("collector"));
            if got == want {
                println!("     checksums match the README: {got}");
            } else {
                println!("     CHECKSUMS DIFFER\n       got  {got}\n       want {want}");
                std::process::exit(1);
            }
        }
    }
}

fn main() {
    let args = Args::parse();
    let p = args.parallelism.max(1);
    println!(
        "Strom engine benchmark: {} events per run, parallelism {p}, median of {} runs",
        args.events, args.runs
    );
    println!(
        "{:<4} {:<40} {:>14} {:>14} {:>16} {:>9} {:>9}",
        "", "workload", "Strom events/s", "per CPU-s", "Flink p=1 / p=2", "× Flink", "× per CPU"
    );
    for w in WORKLOADS {
        let runs = |every| {
            median(
                (0..args.runs)
                    .map(|_| {
                        let plan = Plan::build(&spec(w, args.events), p).expect("plans");
                        timed(plan, args.events as f64, every)
                    })
                    .collect(),
            )
        };
        let (median, per_cpu, _) = runs(None);
        // Flink's figure at the same parallelism; its job used about that many cores.
        let flink = if p == 1 { w.flink_p1 } else { w.flink_p2 };
        println!(
            "{:<4} {:<40} {:>14.0} {:>14.0} {:>7.2}M/{:.2}M {:>9.1} {:>9.1}",
            w.name,
            w.what,
            median,
            per_cpu,
            w.flink_p1 / 1e6,
            w.flink_p2 / 1e6,
            median / flink,
            per_cpu / (flink / p as f64)
        );
        if let Some(every) = interval(&args) {
            let (with, _, n) = runs(Some(every));
            println!(
                "     with checkpoints every {every:?}: {with:.0} events/s ({n} checkpoints), {:+.1}%",
                (with / median - 1.0) * 100.0
            );
        }
        if !args.no_verify && args.events == 20_000_000 {
            let batches: Arc<Mutex<Vec<RecordBatch>>> = Arc::default();
            let mut plan = Plan::build(&spec(w, args.events), p).expect("plans");
            let sink = batches.clone();
            plan.tap_sinks(Arc::new(move |b: &RecordBatch| {
                sink.lock().expect("collector").push(b.clone())
            }));
            Running::start(plan)
                .wait()
                .expect("the verification job runs");
            let got = checksums(w.name, &batches.lock().expect("collector"));
            match expected(w.name) {
                Some(want) if want == got => println!("     checksums match the README: {got}"),
                Some(want) => {
                    println!("     CHECKSUMS DIFFER\n       got  {got}\n       want {want}");
                    std::process::exit(1);
                }
                None => println!("     {got}"),
            }
        }
    }
    if !args.skip_bids {
        run_bids(&args, p);
    }
    println!(
        "(× Flink: events/s against Flink's recorded median at the same parallelism; × per CPU: events per CPU-second of this process against Flink's events/s divided by its parallelism, i.e. assuming Flink used one core per subtask)"
    );
}
