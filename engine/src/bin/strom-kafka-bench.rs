//! The Kafka benchmark of issue 19, each figure beside its anchor in the same run, against
//! the broker at `--bootstrap` (`scripts/bench-kafka.sh` starts the tests' broker):
//!
//! 1. read: a bare librdkafka consumer of the input topic, then a Strom job
//!    `kafka → blackhole` over the same topic with the same client (goal: at least 80 % of
//!    the bare consumer's records per second);
//! 2. write: `kafka → filter → kafka` at-least-once, then exactly-once (transactions
//!    committed at every checkpoint; goal: under 15 % slower).
//!
//!   scripts/bench-kafka.sh [--records N] [--partitions P] [--runs R]

use std::time::{Duration, Instant};

use clap::Parser;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use strom_engine::io::kafka::topics;
use strom_engine::plan::Plan;
use strom_engine::runtime::{RunOptions, Running};
use strom_engine::snapshot::coordinator::CheckpointConfig;
use strom_engine::snapshot::storage::Storage;
use strom_engine::spec::JobSpec;

#[derive(Parser)]
struct Args {
    /// `host:port` of the broker.
    #[arg(long)]
    bootstrap: String,
    /// Records in the input topic.
    #[arg(long, default_value_t = 1_000_000)]
    records: u64,
    /// Partitions of the input topic.
    #[arg(long, default_value_t = 4)]
    partitions: i32,
    /// Parallelism of the jobs.
    #[arg(long, default_value_t = 1)]
    parallelism: usize,
    /// Timed runs of each (the median is reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
}

type Fallible<T> = Result<T, Box<dyn std::error::Error>>;

/// The input: JSON orders of about 80 bytes, `id` 0.. in order; the bytes written.
fn fill(bootstrap: &str, topic: &str, records: u64) -> Fallible<u64> {
    let orders = (0..records).map(|id| {
        format!(
            r#"{{"id":{id},"customer":{},"amount":{},"ts":{}}}"#,
            id % 10_007,
            (id * 7919) % 100_000,
            1_700_000_000_000u64 + id
        )
    });
    Ok(topics::produce(bootstrap, topic, None, orders)?)
}

/// A bare consumer reading every record of `topic` from the start: seconds taken.
fn bare_read(bootstrap: &str, topic: &str, partitions: i32, records: u64) -> Fallible<f64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "strom-bench-bare")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create()?;
    let mut tpl = TopicPartitionList::new();
    for q in 0..partitions {
        tpl.add_partition_offset(topic, q, Offset::Beginning)?;
    }
    consumer.assign(&tpl)?;
    let started = Instant::now();
    let (mut n, mut sum) = (0u64, 0usize);
    while n < records {
        if let Some(m) = consumer.poll(Duration::from_secs(10)) {
            let m = m?;
            sum += m.payload().map_or(0, <[u8]>::len);
            n += 1;
        } else {
            return Err(format!("the bare consumer stalled after {n} records").into());
        }
    }
    std::hint::black_box(sum);
    Ok(started.elapsed().as_secs_f64())
}

/// Runs `text` to its end at `parallelism`, checkpointing every second; seconds taken and
/// records read.
fn job(text: &str, parallelism: usize) -> Fallible<(f64, u64)> {
    let spec = JobSpec::parse(text)?;
    let plan = Plan::build(&spec, parallelism)?;
    let dir = std::env::temp_dir().join(format!("strom-kafka-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let started = Instant::now();
    let running = Running::start_with(
        plan,
        RunOptions {
            checkpoints: Some(CheckpointConfig {
                storage: Storage::open(dir.to_str().unwrap_or("."))?,
                interval: Duration::from_secs(1),
                retain: 2,
            }),
            ..Default::default()
        },
    )?;
    let summary = running.wait()?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok((started.elapsed().as_secs_f64(), summary.records_in))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> Fallible<()> {
    let args = Args::parse();
    let b = args.bootstrap.as_str();
    let run = std::process::id();
    let input = format!("bench-in-{run}");
    topics::create_topic(b, &input, args.partitions)?;
    let fill_started = Instant::now();
    let bytes = fill(b, &input, args.records)?;
    println!(
        "input: {} records, {:.1} MB in {} partitions (written in {:.1} s)",
        args.records,
        bytes as f64 / 1e6,
        args.partitions,
        fill_started.elapsed().as_secs_f64()
    );
    let (records, mb) = (args.records as f64, bytes as f64 / 1e6);
    let source = |extra: &str| {
        format!(
            r#"
sources:
  - name: orders
    kafka: {{bootstrap_servers: "{b}", topics: [{input}], format: json, bounded: true{extra}}}
    schema: [{{name: id, type: BIGINT}}, {{name: customer, type: BIGINT}}, {{name: amount, type: BIGINT}}, {{name: ts, type: BIGINT}}]
"#
        )
    };

    // 1. Reading.
    let (mut bare, mut engine) = (Vec::new(), Vec::new());
    for _ in 0..args.runs {
        bare.push(bare_read(b, &input, args.partitions, args.records)?);
        let text = source("") + "sinks:\n  - {name: out, input: orders, blackhole: {}}\n";
        let (secs, read) = job(&text, args.parallelism)?;
        if read != args.records {
            return Err(format!("the job read {read} records, not {}", args.records).into());
        }
        engine.push(secs);
    }
    let (bare, engine) = (median(bare), median(engine));
    println!();
    println!(
        "read ({} runs, median)              records/s        MB/s",
        args.runs
    );
    println!(
        "  bare librdkafka consumer        {:>12.0} {:>11.1}",
        records / bare,
        mb / bare
    );
    println!(
        "  kafka → strom (p={}) → discard   {:>12.0} {:>11.1}   {:.0} % of the bare consumer",
        args.parallelism,
        records / engine,
        mb / engine,
        100.0 * bare / engine
    );

    // 2. Writing, at-least-once against exactly-once.
    let mut figures = Vec::new();
    for delivery in ["at-least-once", "exactly-once"] {
        let mut times = Vec::new();
        for i in 0..args.runs {
            let out = format!("bench-out-{run}-{delivery}-{i}");
            topics::create_topic(b, &out, args.partitions)?;
            let text = source("")
                + &format!(
                    r#"transforms:
  - {{name: big, input: orders, where: "amount >= 50000"}}
sinks:
  - name: out
    input: big
    kafka: {{bootstrap_servers: "{b}", topic: {out}, format: json, delivery: {delivery}, partitioner: fixed, transactional_id_prefix: {out}}}
"#
                );
            let (secs, read) = job(&text, args.parallelism)?;
            if read != args.records {
                return Err(format!("the job read {read} records, not {}", args.records).into());
            }
            times.push(secs);
        }
        figures.push((delivery, median(times)));
    }
    println!();
    println!("kafka → filter (half pass) → kafka, checkpoints every 1 s   records/s   MB/s read");
    for (delivery, secs) in &figures {
        println!(
            "  {delivery:<15}                                   {:>10.0} {:>9.1}",
            records / secs,
            mb / secs
        );
    }
    let cost = 100.0 * (figures[1].1 - figures[0].1) / figures[0].1;
    println!("  exactly-once costs {cost:.1} % of the at-least-once time");
    Ok(())
}
