//! The golden cases with Kafka in and out: each case's input files are produced to topics
//! (one partition where Flink's single reader order decides which records are late,
//! several where order does not matter), the job reads them in bounded mode and writes its
//! result to an output topic exactly once, checkpointing as it goes, and a `read_committed`
//! reader of that topic gets exactly Flink's rows — at parallelism 1, 2 and 4.

use std::path::{Path, PathBuf};
use std::time::Duration;

use strom_engine::plan::Plan;
use strom_engine::runtime::{RunOptions, Running};
use strom_engine::snapshot::coordinator::CheckpointConfig;
use strom_engine::snapshot::storage::Storage;
use strom_engine::spec::JobSpec;
use strom_testkit::kafka::Broker;

use super::compare;
use super::support::Topics;

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/golden")
}

/// The case's spec with every file source read from a topic named after it and the sink
/// writing `out_topic` exactly once.
fn kafka_spec(case: &str, broker: &Broker, run: &str, out_topic: &str) -> (String, Vec<String>) {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/golden/{case}.yaml")),
    )
    .unwrap();
    let mut inputs = Vec::new();
    let mut lines = Vec::new();
    for line in text.lines() {
        if let Some(at) = line.find("file: {path: \"${DIR}/") {
            let rest = &line[at + "file: {path: \"${DIR}/".len()..];
            let file = &rest[..rest.find('"').unwrap()];
            assert!(rest.contains("format: csv"), "{case}: {line}");
            inputs.push(file.to_owned());
            let topic = format!("{run}-{}", file.trim_end_matches(".csv"));
            lines.push(format!(
                "{}kafka: {{bootstrap_servers: \"{}\", topics: [{topic}], format: csv, bounded: true}}",
                &line[..at],
                broker.bootstrap()
            ));
        } else if let Some(at) = line.find("file: {path: \"${OUT}\"") {
            lines.push(format!(
                "{}kafka: {{bootstrap_servers: \"{}\", topic: {out_topic}, format: csv, delivery: exactly-once, partitioner: fixed, transactional_id_prefix: {run}}}",
                &line[..at],
                broker.bootstrap()
            ));
        } else {
            lines.push(line.to_owned());
        }
    }
    (lines.join("\n"), inputs)
}

/// Runs `case` at each parallelism through Kafka; `partitions` per input topic.
fn run_case(case: &str, partitions: i32) {
    let broker = Broker::start().unwrap();
    let dir = golden_dir().join(case);
    let want = std::fs::read_to_string(dir.join("expected.csv")).unwrap();
    for p in [1, 2, 4] {
        let run = format!("{}-p{p}", case.replace('_', "-"));
        let out_topic = format!("{run}-out");
        let (text, inputs) = kafka_spec(case, &broker, &run, &out_topic);
        for file in &inputs {
            let topic = format!("{run}-{}", file.trim_end_matches(".csv"));
            broker.create_topic(&topic, partitions).unwrap();
            let rows = std::fs::read_to_string(dir.join(file)).unwrap();
            let target = (partitions == 1).then_some(0);
            broker.produce(&topic, target, rows.lines()).unwrap();
        }
        broker.create_topic(&out_topic, 4).unwrap();
        let spec = JobSpec::parse(&text).unwrap_or_else(|e| panic!("{case}: {e}\n{text}"));
        let plan = Plan::build(&spec, p).unwrap();
        let work = std::env::temp_dir().join(format!("strom-kafka-{run}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&work);
        let storage = Storage::open(work.to_str().unwrap()).unwrap();
        let running = Running::start_with(
            plan,
            RunOptions {
                checkpoints: Some(CheckpointConfig {
                    storage,
                    interval: Duration::from_millis(150),
                    retain: 2,
                }),
                ..Default::default()
            },
        )
        .unwrap();
        let checkpoints = running.checkpoints.clone();
        running
            .wait()
            .unwrap_or_else(|e| panic!("{case} at p={p}: {e}"));
        let _ = std::fs::remove_dir_all(&work);
        assert_eq!(
            checkpoints.transactions.pending(),
            0,
            "every transaction committed"
        );
        let got = broker.read_committed(&out_topic).unwrap();
        let rows: Vec<String> = got
            .into_values()
            .flatten()
            .map(|v| String::from_utf8(v).unwrap())
            .collect();
        compare::assert_same_rows(
            &format!("{case} through Kafka at p={p}"),
            rows.iter().map(String::as_str).collect(),
            &want,
        );
    }
}

macro_rules! golden {
    ($($name:ident => $case:literal, $partitions:literal;)*) => {$(
        #[test]
        fn $name() {
            run_case($case, $partitions);
        }
    )*};
}

golden! {
    filter_and_projection_through_kafka_match_flink => "01_filter_project", 4;
    tumbling_windows_through_kafka_match_flink => "02_tumble_agg", 1;
    hopping_windows_through_kafka_match_flink => "03_hop_agg", 1;
    session_windows_through_kafka_match_flink => "04_session_agg", 1;
    deduplication_through_kafka_matches_flink => "05_dedup_first", 1;
    interval_join_through_kafka_matches_flink => "06_interval_join", 1;
    window_top_n_through_kafka_matches_flink => "07_window_topn", 1;
    nexmark_q5_through_kafka_matches_flink => "08_nexmark_q5", 1;
    nexmark_q7_through_kafka_matches_flink => "09_nexmark_q7", 1;
}
