//! The golden cases with Kafka in and out, against a real Kafka-protocol broker (tansu,
//! started per test on a free port): each case's input files are produced to topics (one
//! partition where Flink's single reader order decides which records are late, several
//! where order does not matter), the job reads them in bounded mode and writes its result
//! to an output topic exactly once, checkpointing as it goes, and a `read_committed`
//! reader of that topic gets exactly Flink's rows — at parallelism 1, 2 and 4.

#![allow(
    clippy::unwrap_used,
    reason = "a test should fail loudly at the first surprise"
)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use strom_engine::io::kafka::topics;
use strom_engine::plan::Plan;
use strom_engine::runtime::{RunOptions, Running};
use strom_engine::snapshot::coordinator::CheckpointConfig;
use strom_engine::snapshot::storage::Storage;
use strom_engine::spec::JobSpec;
use strom_testkit::kafka::Broker;

#[path = "support/compare.rs"]
mod compare;

/// The engine's topic tools, on the test broker.
trait Topics {
    fn create_topic(&self, topic: &str, partitions: i32) -> strom_engine::Result<()>;
    fn produce(
        &self,
        topic: &str,
        partition: Option<i32>,
        values: impl IntoIterator<Item = impl AsRef<[u8]>>,
    ) -> strom_engine::Result<u64>;
    fn read_committed(
        &self,
        topic: &str,
    ) -> strom_engine::Result<std::collections::BTreeMap<i32, Vec<Vec<u8>>>>;
}

impl Topics for Broker {
    fn create_topic(&self, topic: &str, partitions: i32) -> strom_engine::Result<()> {
        topics::create_topic(&self.bootstrap(), topic, partitions)
    }

    fn produce(
        &self,
        topic: &str,
        partition: Option<i32>,
        values: impl IntoIterator<Item = impl AsRef<[u8]>>,
    ) -> strom_engine::Result<u64> {
        topics::produce(&self.bootstrap(), topic, partition, values)
    }

    fn read_committed(
        &self,
        topic: &str,
    ) -> strom_engine::Result<std::collections::BTreeMap<i32, Vec<Vec<u8>>>> {
        topics::read_committed(&self.bootstrap(), topic, Duration::from_secs(120))
    }
}

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

/// A bounded JSON source over `topic` and a collecting sink; returns the running job and
/// what the sink received.
fn json_job(
    broker_bootstrap: &str,
    topic: &str,
    bad_records: &str,
) -> (Running, std::sync::Arc<std::sync::Mutex<Vec<i64>>>) {
    let text = format!(
        r#"
sources:
  - name: events
    kafka: {{bootstrap_servers: "{broker_bootstrap}", topics: [{topic}], format: json, bounded: true, bad_records: {bad_records}}}
    schema: [{{name: id, type: BIGINT}}, {{name: name, type: STRING}}]
sinks:
  - {{name: out, input: events, blackhole: {{}}}}
"#
    );
    let spec = JobSpec::parse(&text).unwrap();
    let mut plan = Plan::build(&spec, 1).unwrap();
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = got.clone();
    plan.collect_sinks(std::sync::Arc::new(
        move |b: &arrow::record_batch::RecordBatch| {
            let ids = b
                .column(0)
                .as_any()
                .downcast_ref::<arrow::array::Int64Array>()
                .unwrap();
            sink.lock().unwrap().extend(ids.values().iter().copied());
        },
    ));
    (Running::start(plan), got)
}

fn json_records(bad_at: &[usize], n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            if bad_at.contains(&i) {
                format!(r#"{{"id": "not a number {i}", "name": "x"}}"#)
            } else {
                format!(r#"{{"id": {i}, "name": "n{i}"}}"#)
            }
        })
        .collect()
}

#[test]
fn a_record_that_does_not_decode_stops_the_job_naming_topic_partition_and_offset() {
    let broker = Broker::start().unwrap();
    broker.create_topic("bad", 1).unwrap();
    broker
        .produce("bad", Some(0), json_records(&[7], 20))
        .unwrap();
    let (running, _) = json_job(&broker.bootstrap(), "bad", "fail");
    let err = running.wait().unwrap_err().to_string();
    assert!(
        err.contains("topic bad partition 0 offset 7") && err.contains("bad_records: skip"),
        "{err}"
    );
}

#[test]
fn records_that_do_not_decode_are_left_out_and_counted_under_skip() {
    let broker = Broker::start().unwrap();
    broker.create_topic("skip", 1).unwrap();
    let mut values = json_records(&[3, 11, 12], 30);
    values.push("{not json".into());
    values.push(String::new());
    broker.produce("skip", Some(0), values).unwrap();
    let (running, got) = json_job(&broker.bootstrap(), "skip", "skip");
    let metrics = running.metrics.clone();
    running.wait().unwrap();
    let mut ids = got.lock().unwrap().clone();
    ids.sort_unstable();
    let want: Vec<i64> = (0..30).filter(|i| ![3, 11, 12].contains(i)).collect();
    assert_eq!(ids, want);
    let skipped: u64 = metrics
        .iter()
        .map(|m| m.skipped_records.load(std::sync::atomic::Ordering::Relaxed))
        .sum();
    assert_eq!(
        skipped, 5,
        "three bad ids, one broken object, one empty value"
    );
}

#[test]
fn a_source_waits_for_an_unreachable_broker_and_a_missing_topic_then_reads_everything() {
    let port = strom_testkit::free_port().unwrap();
    let bootstrap = format!("127.0.0.1:{port}");
    let (running, got) = json_job(&bootstrap, "later", "fail");
    let waiting = |running: &Running| {
        running
            .metrics
            .iter()
            .find_map(|m| m.waiting.lock().unwrap().clone())
    };
    let until = |what: &str, running: &Running, f: &dyn Fn(&str) -> bool| {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(w) = waiting(running)
                && f(&w)
            {
                return w;
            }
            assert!(std::time::Instant::now() < deadline, "never said: {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let said = until("no broker", &running, &|w| w.contains(&bootstrap));
    assert!(!running.is_finished(), "it waits: {said}");
    let broker = Broker::start_on(port).unwrap();
    let said = until("no topic", &running, &|w| {
        w.contains("topic later") && w.contains("does not exist")
    });
    assert!(!running.is_finished(), "it waits: {said}");
    broker.create_topic("later", 2).unwrap();
    broker
        .produce("later", None, json_records(&[], 500))
        .unwrap();
    let metrics = running.metrics.clone();
    running.wait().unwrap();
    let mut ids = got.lock().unwrap().clone();
    ids.sort_unstable();
    assert_eq!(ids, (0..500).collect::<Vec<i64>>());
    assert!(metrics.iter().all(|m| m.waiting.lock().unwrap().is_none()));
}

#[test]
fn a_broker_that_stops_answering_for_10_s_delays_the_job_and_loses_or_repeats_nothing() {
    let broker = Broker::start().unwrap();
    broker.create_topic("steady-in", 2).unwrap();
    broker.create_topic("steady-out", 2).unwrap();
    broker
        .produce("steady-in", None, json_records(&[], 20_000))
        .unwrap();
    let text = format!(
        r#"
sources:
  - name: events
    kafka: {{bootstrap_servers: "{b}", topics: [steady-in], format: json, bounded: true}}
    schema: [{{name: id, type: BIGINT}}, {{name: name, type: STRING}}]
transforms:
  - {{name: slow, input: events, throttle: 2500}}
sinks:
  - name: out
    input: slow
    kafka: {{bootstrap_servers: "{b}", topic: steady-out, format: json, delivery: exactly-once, partitioner: fixed, transactional_id_prefix: steady}}
"#,
        b = broker.bootstrap()
    );
    let spec = JobSpec::parse(&text).unwrap();
    let work = std::env::temp_dir().join(format!("strom-kafka-pause-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    let running = Running::start_with(
        Plan::build(&spec, 2).unwrap(),
        RunOptions {
            checkpoints: Some(CheckpointConfig {
                storage: Storage::open(work.to_str().unwrap()).unwrap(),
                interval: Duration::from_millis(300),
                retain: 2,
            }),
            ..Default::default()
        },
    )
    .unwrap();
    let checkpoints = running.checkpoints.clone();
    let completed = || {
        checkpoints
            .completed
            .load(std::sync::atomic::Ordering::SeqCst)
    };
    // Under a loaded machine the first checkpoint can take a while: wait for it, not a fixed time.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while completed() == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let before = completed();
    assert!(before > 0, "a checkpoint completed before the pause");
    assert!(
        !running.is_finished(),
        "the throttled job (about 4 s of input) is still running when the broker pauses"
    );
    broker.pause();
    std::thread::sleep(Duration::from_secs(10));
    let during = completed();
    broker.unpause();
    running.wait().unwrap();
    let _ = std::fs::remove_dir_all(&work);
    assert!(
        completed() > during,
        "checkpoints completed after the pause ({before} before, {during} when it ended, {} at the end)",
        completed()
    );
    let mut ids: Vec<i64> = broker
        .read_committed("steady-out")
        .unwrap()
        .into_values()
        .flatten()
        .map(|v| {
            let row: serde_json::Value = serde_json::from_slice(&v).unwrap();
            row["id"].as_i64().unwrap()
        })
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, (0..20_000).collect::<Vec<i64>>());
}

#[test]
fn a_new_run_fences_the_transactions_an_earlier_run_left_open() {
    use rdkafka::config::ClientConfig;
    use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
    let broker = Broker::start().unwrap();
    broker.create_topic("fence-in", 1).unwrap();
    broker.create_topic("fence-out", 1).unwrap();
    broker
        .produce("fence-in", Some(0), json_records(&[], 100))
        .unwrap();
    // Zombies of an earlier run at parallelism 2, each with a transaction open with a
    // record: subtask 0's first slot, its last slot, and a slot of subtask 1, which the new
    // run (parallelism 1) no longer has.
    let zombies: Vec<(
        &str,
        ThreadedProducer<rdkafka::producer::DefaultProducerContext>,
    )> = ["fence-0-0", "fence-0-4", "fence-1-2"]
        .into_iter()
        .map(|id| {
            let zombie: ThreadedProducer<rdkafka::producer::DefaultProducerContext> =
                ClientConfig::new()
                    .set("bootstrap.servers", broker.bootstrap())
                    .set("transactional.id", id)
                    .create()
                    .unwrap();
            zombie.init_transactions(Duration::from_secs(30)).unwrap();
            zombie.begin_transaction().unwrap();
            zombie
                .send(
                    BaseRecord::<(), str>::to("fence-out")
                        .payload(r#"{"id": -1, "name": "zombie"}"#),
                )
                .map_err(|(e, _)| e)
                .unwrap();
            zombie.flush(Duration::from_secs(30)).unwrap();
            (id, zombie)
        })
        .collect();
    // The earlier run's claim on the checkpoint directory says how wide it was.
    let work = std::env::temp_dir().join(format!("strom-kafka-fence-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    let storage = Storage::open(work.to_str().unwrap()).unwrap();
    storage.claim(0, None, false, None, 2).unwrap();
    let text = format!(
        r#"
sources:
  - name: events
    kafka: {{bootstrap_servers: "{b}", topics: [fence-in], format: json, bounded: true}}
    schema: [{{name: id, type: BIGINT}}, {{name: name, type: STRING}}]
sinks:
  - name: out
    input: events
    kafka: {{bootstrap_servers: "{b}", topic: fence-out, format: json, delivery: exactly-once, transactional_id_prefix: fence}}
"#,
        b = broker.bootstrap()
    );
    let running = Running::start_with(
        Plan::build(&JobSpec::parse(&text).unwrap(), 1).unwrap(),
        RunOptions {
            checkpoints: Some(CheckpointConfig {
                storage,
                interval: Duration::from_millis(200),
                retain: 2,
            }),
            ..Default::default()
        },
    )
    .unwrap();
    running.wait().unwrap();
    // The final checkpoint names the job's transactions and says they are committed.
    let newest = std::fs::read_dir(&work)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            name.strip_prefix("chk-")?.parse::<u64>().ok()
        })
        .max()
        .unwrap();
    let chk = work.join(format!("chk-{newest}"));
    let manifest = std::fs::read_to_string(chk.join("_metadata")).unwrap();
    assert!(manifest.contains("kafka_transaction"), "{manifest}");
    assert!(
        chk.join("_committed").is_file(),
        "chk-{newest} is marked committed"
    );
    let _ = std::fs::remove_dir_all(&work);
    // No zombie can commit: the new run took each id with a newer epoch, which aborted its
    // open transaction.
    for (id, zombie) in zombies {
        let err = zombie
            .commit_transaction(Duration::from_secs(30))
            .unwrap_err()
            .to_string();
        assert!(
            err.to_lowercase().contains("fenced") || err.to_lowercase().contains("epoch"),
            "{id}: {err}"
        );
    }
    // Nothing holds the last stable offset back: a read_committed reader reaches the end
    // and finds the job's 100 records, and no zombie's aborted one.
    let mut ids: Vec<i64> = broker
        .read_committed("fence-out")
        .unwrap()
        .into_values()
        .flatten()
        .map(|v| {
            serde_json::from_slice::<serde_json::Value>(&v).unwrap()["id"]
                .as_i64()
                .unwrap()
        })
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, (0..100).collect::<Vec<i64>>());
}

/// A sink's pooled producer is reused once its transaction is committed, so the same
/// transactional id carries the last barrier's transaction and then what came after it
/// (the end of input): the second must be committed too, not taken for the first.
#[test]
fn a_pooled_id_reused_after_the_last_barrier_commits_the_end_of_input_transaction() {
    use std::sync::Arc;
    use strom_engine::io::kafka::sink::KafkaWriter;
    use strom_engine::io::kafka::transactions::Transactions;
    use strom_engine::snapshot::commit::commit_all;
    let broker = Broker::start().unwrap();
    broker.create_topic("reuse-out", 1).unwrap();
    let spec = JobSpec::parse(&format!(
        r#"
sources:
  - {{name: g, datagen: {{count: 1, columns: [{{name: id, expr: "id"}}]}}}}
sinks:
  - name: out
    input: g
    kafka: {{bootstrap_servers: "{b}", topic: reuse-out, format: json, delivery: exactly-once, transactional_id_prefix: reuse}}
"#,
        b = broker.bootstrap()
    ))
    .unwrap();
    let strom_engine::spec::SinkKind::Kafka(sink) = spec.sinks[0].kind() else {
        panic!("a Kafka sink")
    };
    let transactions = Arc::new(Transactions::default());
    let mut writer = KafkaWriter::new(sink, "out", None, 0, 1, transactions.clone()).unwrap();
    let schema = Arc::new(arrow::datatypes::Schema::new(vec![
        arrow::datatypes::Field::new("id", arrow::datatypes::DataType::Int64, false),
    ]));
    let batch = |ids: std::ops::Range<i64>| {
        arrow::record_batch::RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(arrow::array::Int64Array::from_iter_values(ids))],
        )
        .unwrap()
    };
    // Checkpoint 5's interval, committed when checkpoint 5 completes.
    writer.write(&batch(0..10)).unwrap();
    let at_barrier = writer.stage(5).unwrap();
    commit_all(at_barrier.iter(), &transactions).unwrap();
    transactions.release(true); // checkpoint 5 marked committed: the slot goes back
    // The end of input, on the producer given back. (The task labels it with the next
    // number; the registry must not mistake it for the committed one even under the same.)
    writer.write(&batch(10..20)).unwrap();
    let at_end = writer.stage(5).unwrap();
    let ids = |commits: &[strom_engine::snapshot::Commit]| -> Vec<String> {
        commits
            .iter()
            .map(|c| match c {
                strom_engine::snapshot::Commit::Kafka {
                    kafka_transaction, ..
                } => kafka_transaction.clone(),
                other => panic!("a Kafka commit, not {other:?}"),
            })
            .collect()
    };
    assert_eq!(
        ids(&at_barrier),
        ids(&at_end),
        "the same pooled id carries both transactions"
    );
    // The final checkpoint names both (a restore would commit them again): both committed.
    commit_all(at_barrier.iter().chain(&at_end), &transactions).unwrap();
    assert_eq!(transactions.pending(), 0, "every transaction committed");
    let mut ids: Vec<i64> = broker
        .read_committed("reuse-out")
        .unwrap()
        .into_values()
        .flatten()
        .map(|v| {
            serde_json::from_slice::<serde_json::Value>(&v).unwrap()["id"]
                .as_i64()
                .unwrap()
        })
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, (0..20).collect::<Vec<i64>>());
}

/// A run dies between writing a checkpoint's `_metadata` and committing its transaction:
/// the restore commits it with the producer id and epoch the checkpoint recorded. A
/// checkpoint marked committed resumes nothing, though its slot went on to a later
/// transaction with the same epoch; when the marker could not be written, the committed
/// producer was renewed (a new epoch) before it went on, so resuming commits nothing
/// either. The later transactions are fenced by the new run.
#[test]
fn a_restore_commits_the_transaction_a_run_left_open_and_only_that_one() {
    use std::sync::Arc;
    use strom_engine::io::kafka::sink::{KafkaWriter, producer_config};
    use strom_engine::io::kafka::transactions::Transactions;
    use strom_engine::snapshot::commit::{commit_all, commit_restored};
    use strom_engine::snapshot::{Commit, Metadata};
    let broker = Broker::start().unwrap();
    broker.create_topic("resume-out", 1).unwrap();
    let spec = JobSpec::parse(&format!(
        r#"
sources:
  - {{name: g, datagen: {{count: 1, columns: [{{name: id, expr: "id"}}]}}}}
sinks:
  - name: out
    input: g
    kafka: {{bootstrap_servers: "{b}", topic: resume-out, format: json, delivery: exactly-once, transactional_id_prefix: resume}}
"#,
        b = broker.bootstrap()
    ))
    .unwrap();
    let strom_engine::spec::SinkKind::Kafka(sink) = spec.sinks[0].kind() else {
        panic!("a Kafka sink")
    };
    let schema = Arc::new(arrow::datatypes::Schema::new(vec![
        arrow::datatypes::Field::new("id", arrow::datatypes::DataType::Int64, false),
    ]));
    let batch = |ids: std::ops::Range<i64>| {
        arrow::record_batch::RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(arrow::array::Int64Array::from_iter_values(ids))],
        )
        .unwrap()
    };
    // What a new run does with a restored manifest naming `tokens`, marked or not.
    let restore = |tokens: &[Commit], marked: bool| {
        let fresh = Transactions::default();
        fresh.register_client("resume", producer_config(sink).unwrap());
        let meta: Metadata = serde_json::from_value(serde_json::json!({
            "formatVersion": 1, "id": 1, "kind": "checkpoint", "completedMs": 0,
            "jobFinished": false, "operators": [], "commits": tokens,
        }))
        .unwrap();
        let meta = Metadata {
            transactions_committed: marked,
            ..meta
        };
        commit_restored(&meta, &fresh).unwrap();
    };
    let read = || -> Vec<i64> {
        let mut ids: Vec<i64> = broker
            .read_committed("resume-out")
            .unwrap()
            .into_values()
            .flatten()
            .map(|v| {
                serde_json::from_slice::<serde_json::Value>(&v).unwrap()["id"]
                    .as_i64()
                    .unwrap()
            })
            .collect();
        ids.sort_unstable();
        ids
    };
    let slot = |tokens: &[Commit]| match tokens {
        [
            Commit::Kafka {
                kafka_transaction,
                producer_id: Some(p),
                producer_epoch: Some(e),
                ..
            },
        ] => (kafka_transaction.clone(), *p, *e),
        other => panic!("one Kafka transaction with its producer, not {other:?}"),
    };
    let fence = || {
        let _ =
            KafkaWriter::new(sink, "out", None, 0, 1, Arc::new(Transactions::default())).unwrap();
    };

    // Run 1 writes checkpoint 5 and dies before committing.
    let dying = Arc::new(Transactions::default());
    let mut writer = KafkaWriter::new(sink, "out", None, 0, 1, dying.clone()).unwrap();
    writer.write(&batch(0..10)).unwrap();
    let checkpoint_5 = writer.stage(5).unwrap();
    slot(&checkpoint_5);
    std::mem::forget(writer);
    std::mem::forget(dying);
    // Run 2 restores it (unmarked): committed, and restoring once more commits nothing twice.
    restore(&checkpoint_5, false);
    restore(&checkpoint_5, false);
    assert_eq!(read(), (0..10).collect::<Vec<i64>>());

    // Run 2 commits checkpoint 6 and marks it; the slot goes on, same epoch, to interval 7,
    // and run 2 dies. Run 3 restores checkpoint 6: nothing resumed; interval 7 fenced.
    let running = Arc::new(Transactions::default());
    let mut writer = KafkaWriter::new(sink, "out", None, 0, 1, running.clone()).unwrap();
    writer.write(&batch(10..20)).unwrap();
    let checkpoint_6 = writer.stage(6).unwrap();
    commit_all(checkpoint_6.iter(), &running).unwrap();
    running.release(true);
    writer.write(&batch(20..30)).unwrap();
    let interval_7 = writer.stage(7).unwrap();
    assert_eq!(
        slot(&checkpoint_6),
        slot(&interval_7),
        "interval 7 runs on checkpoint 6's slot and epoch"
    );
    std::mem::forget(writer);
    std::mem::forget(running);
    restore(&checkpoint_6, true);
    fence();
    assert_eq!(read(), (0..20).collect::<Vec<i64>>());

    // Run 3 commits checkpoint 8 but cannot mark it: the producer is renewed before it
    // goes on to interval 9. Run 4 restores checkpoint 8 unmarked: resuming its epoch
    // commits nothing of interval 9, which is fenced.
    let running = Arc::new(Transactions::default());
    let mut writer = KafkaWriter::new(sink, "out", None, 0, 1, running.clone()).unwrap();
    writer.write(&batch(30..40)).unwrap();
    let checkpoint_8 = writer.stage(8).unwrap();
    commit_all(checkpoint_8.iter(), &running).unwrap();
    running.release(false);
    std::thread::sleep(Duration::from_secs(1)); // the slot comes back, renewed
    writer.write(&batch(40..50)).unwrap();
    let interval_9 = writer.stage(9).unwrap();
    let ((id_8, producer_8, epoch_8), (id_9, producer_9, epoch_9)) =
        (slot(&checkpoint_8), slot(&interval_9));
    assert_eq!((id_8, producer_8), (id_9, producer_9), "the same slot");
    assert!(
        epoch_9 > epoch_8,
        "with a new epoch ({epoch_8} → {epoch_9})"
    );
    std::mem::forget(writer);
    std::mem::forget(running);
    restore(&checkpoint_8, false);
    fence();
    assert_eq!(read(), (0..20).chain(30..40).collect::<Vec<i64>>());
}

/// A Kafka source reports its lag: per partition and in total in `/v1/job`, per partition
/// in `/metrics`, and the topic's partition count (what the autoscaler aligns parallelism
/// to), as it reads a topic that already holds more than it can read at once.
#[test]
fn a_lagging_kafka_source_reports_its_lag_per_partition_and_its_partition_count() {
    use std::io::{Read, Write};
    use strom_engine::control::{JobView, serve};
    let get = |addr: std::net::SocketAddr, path: &str| -> String {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out.split_once("\r\n\r\n").unwrap().1.to_owned()
    };
    let broker = Broker::start().unwrap();
    broker.create_topic("lagging", 3).unwrap();
    broker
        .produce("lagging", None, json_records(&[], 300_000))
        .unwrap();
    let text = format!(
        r#"
sources:
  - name: events
    kafka: {{bootstrap_servers: "{b}", topics: [lagging], format: json}}
    schema: [{{name: id, type: BIGINT}}, {{name: name, type: STRING}}]
transforms:
  - {{name: slow, input: events, throttle: 2000}}
sinks:
  - {{name: out, input: slow, blackhole: {{}}}}
"#,
        b = broker.bootstrap()
    );
    let running = Running::start(Plan::build(&JobSpec::parse(&text).unwrap(), 2).unwrap());
    let view = JobView::new(running.metrics.clone(), 2, running.started);
    let addr = serve(view, "127.0.0.1:0".parse().unwrap()).unwrap();
    // The ends come with the client's statistics, once a second.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        let status: strom_protocol::JobStatus =
            serde_json::from_str(&get(addr, "/v1/job")).unwrap();
        if status.vertices[0]
            .subtasks
            .iter()
            .all(|s| s.pending_records.is_some())
            || std::time::Instant::now() > deadline
        {
            break status;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let source = &status.vertices[0];
    assert_eq!(source.name, "source:events");
    assert_eq!(source.partitions, Some(3), "{source:?}");
    let mut seen = Vec::new();
    let mut total = 0;
    for s in &source.subtasks {
        let pending = s.pending_records.unwrap_or_else(|| panic!("{s:?}"));
        assert_eq!(
            pending,
            s.partitions
                .iter()
                .map(|p| p.pending_records.unwrap())
                .sum::<u64>(),
            "{s:?}"
        );
        total += pending;
        seen.extend(s.partitions.iter().map(|p| (p.partition, p.offset)));
    }
    seen.sort_unstable();
    assert_eq!(
        seen.iter().map(|(p, _)| *p).collect::<Vec<_>>(),
        [0, 1, 2],
        "each partition read by one subtask"
    );
    // What is behind plus what was read (up to the batches in flight) is the topic.
    let read: i64 = seen.iter().map(|(_, offset)| offset).sum();
    assert_eq!(total + read as u64, 300_000, "{source:?}");
    assert!(total > 100_000, "the throttled job is far behind: {total}");
    let metrics = get(addr, "/metrics");
    assert!(
        metrics.contains("strom_engine_source_partition_pending_records{partition=\"0\",subtask="),
        "{metrics}"
    );
    running.cancel();
    let _ = running.wait();
}

/// When a checkpoint completes, the source commits its offsets at that checkpoint to the
/// consumer group (for tools that watch the group; restores use the checkpoint).
#[test]
fn completed_checkpoints_commit_the_sources_offsets_to_its_consumer_group() {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let broker = Broker::start().unwrap();
    broker.create_topic("watched", 2).unwrap();
    broker
        .produce("watched", None, json_records(&[], 1000))
        .unwrap();
    let text = format!(
        r#"
sources:
  - name: events
    kafka: {{bootstrap_servers: "{b}", topics: [watched], format: json, group_id: watchers}}
    schema: [{{name: id, type: BIGINT}}, {{name: name, type: STRING}}]
sinks:
  - {{name: out, input: events, blackhole: {{}}}}
"#,
        b = broker.bootstrap()
    );
    let work = std::env::temp_dir().join(format!("strom-kafka-group-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    let running = Running::start_with(
        Plan::build(&JobSpec::parse(&text).unwrap(), 1).unwrap(),
        RunOptions {
            checkpoints: Some(CheckpointConfig {
                storage: Storage::open(work.to_str().unwrap()).unwrap(),
                interval: Duration::from_millis(200),
                retain: 2,
            }),
            ..Default::default()
        },
    )
    .unwrap();
    let watcher: BaseConsumer = rdkafka::config::ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("group.id", "watchers")
        .create()
        .unwrap();
    let mut tpl = rdkafka::TopicPartitionList::new();
    tpl.add_partition("watched", 0);
    tpl.add_partition("watched", 1);
    let committed = || -> i64 {
        watcher
            .committed_offsets(tpl.clone(), Duration::from_secs(10))
            .unwrap()
            .elements()
            .iter()
            .map(|e| match e.offset() {
                rdkafka::Offset::Offset(o) => o,
                _ => 0,
            })
            .sum()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while committed() < 1000 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    running.cancel();
    let _ = running.wait();
    let _ = std::fs::remove_dir_all(&work);
    assert_eq!(
        committed(),
        1000,
        "the group's offsets reach the end of both partitions"
    );
}
