//! Exactly-once Kafka sinks: fencing what earlier runs left open, pooled producers, and
//! what a restore commits.

use std::sync::Arc;
use std::time::Duration;

use strom_engine::io::kafka::sink::{KafkaWriter, producer_config};
use strom_engine::io::kafka::transactions::Transactions;
use strom_engine::plan::Plan;
use strom_engine::runtime::{RunOptions, Running};
use strom_engine::snapshot::Commit;
use strom_engine::snapshot::commit::{commit_all, commit_restored};
use strom_engine::snapshot::coordinator::CheckpointConfig;
use strom_engine::snapshot::storage::Storage;
use strom_engine::spec::JobSpec;
use strom_testkit::kafka::Broker;
use strom_testkit::once::each_once;

use super::support::{Topics, exactly_once_sink, id_batch, json_records, read_ids};

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
    let ids = read_ids(&broker, "fence-out");
    assert_eq!(ids, (0..100).collect::<Vec<i64>>());
}

/// A sink's pooled producer is reused once its transaction is committed, so the same
/// transactional id carries the last barrier's transaction and then what came after it
/// (the end of input): the second must be committed too, not taken for the first.
#[test]
fn a_pooled_id_reused_after_the_last_barrier_commits_the_end_of_input_transaction() {
    let broker = Broker::start().unwrap();
    broker.create_topic("reuse-out", 1).unwrap();
    let spec = exactly_once_sink(&broker, "reuse-out", "reuse");
    let strom_engine::spec::SinkKind::Kafka(sink) = spec.sinks[0].kind() else {
        panic!("a Kafka sink")
    };
    let transactions = Arc::new(Transactions::default());
    let mut writer = KafkaWriter::new(sink, "out", None, 0, 1, transactions.clone()).unwrap();
    // Checkpoint 5's interval, committed when checkpoint 5 completes.
    writer.write(&id_batch(0..10)).unwrap();
    let at_barrier = writer.stage(5).unwrap();
    commit_all(at_barrier.iter(), &transactions).unwrap();
    transactions.release(true); // checkpoint 5 marked committed: the slot goes back
    // The end of input, on the producer given back. (The task labels it with the next
    // number; the registry must not mistake it for the committed one even under the same.)
    writer.write(&id_batch(10..20)).unwrap();
    let at_end = writer.stage(5).unwrap();
    let names = |commits: &[Commit]| -> Vec<String> {
        commits
            .iter()
            .map(|c| match c {
                Commit::Kafka {
                    kafka_transaction, ..
                } => kafka_transaction.clone(),
                other => panic!("a Kafka commit, not {other:?}"),
            })
            .collect()
    };
    assert_eq!(
        names(&at_barrier),
        names(&at_end),
        "the same pooled id carries both transactions"
    );
    // The final checkpoint names both (a restore would commit them again): both committed.
    commit_all(at_barrier.iter().chain(&at_end), &transactions).unwrap();
    assert_eq!(transactions.pending(), 0, "every transaction committed");
    let ids = read_ids(&broker, "reuse-out");
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
    use strom_engine::snapshot::Metadata;
    let broker = Broker::start().unwrap();
    broker.create_topic("resume-out", 1).unwrap();
    let spec = exactly_once_sink(&broker, "resume-out", "resume");
    let strom_engine::spec::SinkKind::Kafka(sink) = spec.sinks[0].kind() else {
        panic!("a Kafka sink")
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
    let read = || read_ids(&broker, "resume-out");
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
    writer.write(&id_batch(0..10)).unwrap();
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
    writer.write(&id_batch(10..20)).unwrap();
    let checkpoint_6 = writer.stage(6).unwrap();
    commit_all(checkpoint_6.iter(), &running).unwrap();
    running.release(true);
    writer.write(&id_batch(20..30)).unwrap();
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
    writer.write(&id_batch(30..40)).unwrap();
    let checkpoint_8 = writer.stage(8).unwrap();
    commit_all(checkpoint_8.iter(), &running).unwrap();
    running.release(false);
    std::thread::sleep(Duration::from_secs(1)); // the slot comes back, renewed
    writer.write(&id_batch(40..50)).unwrap();
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

/// A stop with a savepoint writes nothing after it (as Flink's): each source holds once it
/// has sent the savepoint's barrier. Otherwise the exactly-once sink opens a transaction
/// after the barrier that nothing commits (on Apache Kafka it holds back every
/// `read_committed` reader of the partition until it times out; on the test broker it also
/// took the savepoint's own transaction down with it), and the at-least-once sink writes
/// records that the restored run writes again.
#[test]
fn a_stop_with_savepoint_writes_nothing_after_it_and_the_restore_goes_on_exactly() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let broker = Broker::start().unwrap();
    broker.create_topic("stop-in", 2).unwrap();
    broker.create_topic("stop-once", 1).unwrap();
    broker.create_topic("stop-least", 1).unwrap();
    const N: i64 = 4000;
    for partition in 0..2 {
        let half = N / 2;
        let values = (partition * half..(partition + 1) * half)
            .map(|i| format!(r#"{{"id": {i}, "name": "n{i}"}}"#));
        broker
            .produce("stop-in", Some(partition as i32), values)
            .unwrap();
    }
    let work = std::env::temp_dir().join(format!("strom-kafka-stop-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let (job, savepoint) = (work.join("job.yaml"), work.join("sp"));
    std::fs::write(
        &job,
        format!(
            r#"
sources:
  - name: events
    kafka: {{bootstrap_servers: "{b}", topics: [stop-in], format: json, bounded: true, max_records_per_second: 1000}}
    schema: [{{name: id, type: BIGINT}}, {{name: name, type: STRING}}]
sinks:
  - name: once
    input: events
    kafka: {{bootstrap_servers: "{b}", topic: stop-once, format: json, delivery: exactly-once, partitioner: fixed, transactional_id_prefix: stop}}
  - name: least
    input: events
    kafka: {{bootstrap_servers: "{b}", topic: stop-least, format: json, delivery: at-least-once}}
"#,
            b = broker.bootstrap()
        ),
    )
    .unwrap();
    let engine = || Command::new(env!("CARGO_BIN_EXE_strom-engine"));
    let checkpoints = work.join("checkpoints");
    let mut running = engine()
        .args(["run", job.to_str().unwrap(), "--listen", "127.0.0.1:0"])
        .args(["--checkpoint-interval", "300ms", "--checkpoint-dir"])
        .arg(&checkpoints)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(running.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("http://") {
        line.clear();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "no endpoint");
    }
    let endpoint = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap()
        .to_owned();
    // A second and a half in: about 1500 of the 4000 read.
    std::thread::sleep(Duration::from_millis(1500));
    let taken = engine()
        .args(["savepoint", &endpoint, "--stop", "--target"])
        .arg(&savepoint)
        .output()
        .unwrap();
    assert!(
        taken.status.success(),
        "{}",
        String::from_utf8_lossy(&taken.stderr)
    );
    assert!(running.wait().unwrap().success());
    // Right after the stop, both topics hold exactly what the savepoint covers: the
    // exactly-once one in committed transactions, nothing open after them.
    let (once, least) = (
        read_ids(&broker, "stop-once"),
        read_ids(&broker, "stop-least"),
    );
    assert!(
        !once.is_empty() && (once.len() as i64) < N,
        "the stop came mid-way: {} records",
        once.len()
    );
    assert_eq!(
        each_once(&least, once.iter().copied()),
        Ok(()),
        "both sinks hold what the savepoint covers"
    );

    // The restore (at another parallelism) reads on from there: each record once in both.
    let restored = engine()
        .args(["run", job.to_str().unwrap(), "-p", "2", "--restore"])
        .arg(&savepoint)
        .args(["--checkpoint-interval", "300ms", "--checkpoint-dir"])
        .arg(&checkpoints)
        .output()
        .unwrap();
    assert!(
        restored.status.success(),
        "{}",
        String::from_utf8_lossy(&restored.stderr)
    );
    assert_eq!(
        each_once(&read_ids(&broker, "stop-once"), 0..N),
        Ok(()),
        "exactly once"
    );
    assert_eq!(
        each_once(&read_ids(&broker, "stop-least"), 0..N),
        Ok(()),
        "none repeated"
    );
    let _ = std::fs::remove_dir_all(&work);
}
