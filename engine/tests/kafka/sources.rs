//! Kafka sources: bad records, brokers and topics that are away, lag, group offsets.

use std::time::Duration;

use strom_engine::plan::Plan;
use strom_engine::runtime::{RunOptions, Running};
use strom_engine::snapshot::coordinator::CheckpointConfig;
use strom_engine::snapshot::storage::Storage;
use strom_engine::spec::JobSpec;
use strom_testkit::kafka::Broker;
use strom_testkit::once::each_once;

use super::support::{Topics, json_records, read_ids};

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
    let got = collect_ids(&mut plan);
    (Running::start(plan), got)
}

/// Every sink of `plan` hands the ids (its first column, BIGINT) it receives to the list
/// returned.
fn collect_ids(plan: &mut Plan) -> std::sync::Arc<std::sync::Mutex<Vec<i64>>> {
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
    got
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

/// Under `dead-letter` a bad record goes, as it was, to the dead-letter topic, with headers
/// naming where it was and why it was refused; the good ones are read, nothing is lost.
#[test]
fn records_that_do_not_decode_go_to_the_dead_letter_topic_saying_where_and_why() {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::{Headers, Message};
    use strom_engine::io::kafka::dead_letter::header;
    let broker = Broker::start().unwrap();
    broker.create_topic("letters", 2).unwrap();
    broker.create_topic("letters-dlq", 1).unwrap();
    let mut values = json_records(&[3, 11], 30);
    values.push("{not json".into());
    broker.produce("letters", Some(1), values).unwrap();
    let (running, got) = json_job(
        &broker.bootstrap(),
        "letters",
        "dead-letter, dead_letter_topic: letters-dlq",
    );
    let metrics = running.metrics.clone();
    running.wait().unwrap();
    let mut ids = got.lock().unwrap().clone();
    ids.sort_unstable();
    assert_eq!(
        each_once(&ids, (0..30).filter(|i| ![3, 11].contains(i))),
        Ok(())
    );
    let counted: u64 = metrics
        .iter()
        .map(|m| {
            m.dead_letter_records
                .load(std::sync::atomic::Ordering::Relaxed)
        })
        .sum();
    assert_eq!(counted, 3);

    let reader: BaseConsumer = rdkafka::config::ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("group.id", "dlq-reader")
        .create()
        .unwrap();
    let mut at = rdkafka::TopicPartitionList::new();
    at.add_partition_offset("letters-dlq", 0, rdkafka::Offset::Beginning)
        .unwrap();
    reader.assign(&at).unwrap();
    let mut letters = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while letters.len() < 3 && std::time::Instant::now() < deadline {
        if let Some(m) = reader.poll(Duration::from_millis(200)) {
            let m = m.unwrap();
            let headers: std::collections::BTreeMap<String, String> = m
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|h| {
                            let v = String::from_utf8_lossy(h.value.unwrap_or_default());
                            (h.key.to_owned(), v.into_owned())
                        })
                        .collect()
                })
                .unwrap_or_default();
            let value = String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned();
            letters.push((value, headers));
        }
    }
    assert_eq!(letters.len(), 3, "{letters:?}");
    for (offset, (value, headers)) in [3, 11, 30].iter().zip(&letters) {
        let want = if *offset == 30 {
            "{not json".to_owned()
        } else {
            format!(r#"{{"id": "not a number {offset}", "name": "x"}}"#)
        };
        assert_eq!(value, &want, "the record as it was");
        assert_eq!(headers[header::SOURCE], "events");
        assert_eq!(headers[header::TOPIC], "letters");
        assert_eq!(headers[header::PARTITION], "1");
        assert_eq!(headers[header::OFFSET], offset.to_string());
        assert!(!headers[header::ERROR].is_empty(), "{headers:?}");
    }
    eprintln!("a dead letter's headers: {:?}", letters[0].1);
}

/// Columns from the record's metadata: key, topic, partition, offset, timestamp (here the
/// event time) and a header; a record without the header a column reads is a bad record.
#[test]
fn metadata_columns_read_key_topic_partition_offset_timestamp_and_headers() {
    use arrow::array::{Array, Int64Array, StringArray};
    use rdkafka::message::{Header, OwnedHeaders};
    use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
    let broker = Broker::start().unwrap();
    broker.create_topic("meta", 2).unwrap();
    let producer: ThreadedProducer<rdkafka::producer::DefaultProducerContext> =
        rdkafka::config::ClientConfig::new()
            .set("bootstrap.servers", broker.bootstrap())
            .create()
            .unwrap();
    for i in 0..10i64 {
        let value = format!(r#"{{"id": {i}, "extra": "left aside"}}"#);
        let key = format!("k{i}");
        let trace = format!("t{i}");
        let mut record = BaseRecord::<str, str>::to("meta")
            .partition(1)
            .key(&key)
            .payload(&value)
            .timestamp(1_000_000 + i * 1000);
        // Record 4 lacks the header the job reads.
        if i != 4 {
            record = record.headers(OwnedHeaders::new().insert(Header {
                key: "trace",
                value: Some(&trace),
            }));
        }
        producer.send(record).map_err(|(e, _)| e).unwrap();
    }
    producer.flush(Duration::from_secs(30)).unwrap();
    let text = format!(
        r#"
sources:
  - name: events
    kafka: {{bootstrap_servers: "{b}", topics: [meta], format: json, bounded: true, bad_records: skip}}
    schema:
      - {{name: id, type: BIGINT}}
      - {{name: k, type: STRING, metadata: key}}
      - {{name: t, type: STRING, metadata: topic}}
      - {{name: p, type: INT, metadata: partition}}
      - {{name: o, type: BIGINT, metadata: offset}}
      - {{name: ts, type: BIGINT, metadata: timestamp}}
      - {{name: trace, type: STRING, metadata: "header:trace"}}
    watermark: {{field: ts, max_out_of_orderness: 0s}}
sinks:
  - {{name: out, input: events, blackhole: {{}}}}
"#,
        b = broker.bootstrap()
    );
    let mut plan = Plan::build(&JobSpec::parse(&text).unwrap(), 1).unwrap();
    let rows = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = rows.clone();
    plan.collect_sinks(std::sync::Arc::new(
        move |b: &arrow::record_batch::RecordBatch| {
            let int = |c: usize| {
                b.column(c)
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .unwrap()
                    .clone()
            };
            let text = |c: usize| {
                b.column(c)
                    .as_any()
                    .downcast_ref::<StringArray>()
                    .unwrap()
                    .clone()
            };
            let (id, k, t, p, o, ts, trace) =
                (int(0), text(1), text(2), int(3), int(4), int(5), text(6));
            for r in 0..b.num_rows() {
                sink.lock().unwrap().push(format!(
                    "{} {} {} {} {} {} {}",
                    id.value(r),
                    k.value(r),
                    t.value(r),
                    p.value(r),
                    o.value(r),
                    ts.value(r),
                    trace.value(r)
                ));
            }
            assert_eq!(trace.null_count(), 0);
        },
    ));
    let running = Running::start(plan);
    let metrics = running.metrics.clone();
    running.wait().unwrap();
    let mut rows = rows.lock().unwrap().clone();
    rows.sort_by_key(|r| r.split(' ').next().unwrap().parse::<i64>().unwrap());
    let want: Vec<String> = (0..10i64)
        .filter(|i| *i != 4)
        .map(|i| format!("{i} k{i} meta 1 {i} {} t{i}", 1_000_000 + i * 1000))
        .collect();
    assert_eq!(rows, want);
    let skipped: u64 = metrics
        .iter()
        .map(|m| m.skipped_records.load(std::sync::atomic::Ordering::Relaxed))
        .sum();
    assert_eq!(skipped, 1, "the record without the header");
    let watermark = metrics
        .iter()
        .map(|m| m.watermark.load(std::sync::atomic::Ordering::Relaxed))
        .max()
        .unwrap();
    assert!(
        watermark >= 1_009_000,
        "event time from the record timestamps: {watermark}"
    );
}

/// A `topic_pattern` reads every topic it matches, and topics created while the job runs
/// once discovered (from their first record); topics it does not match are left alone.
#[test]
fn a_topic_pattern_reads_matching_topics_including_ones_created_while_running() {
    let broker = Broker::start().unwrap();
    broker.create_topic("pat-a", 1).unwrap();
    broker.create_topic("other", 1).unwrap();
    let records = |ids: std::ops::Range<i64>| {
        ids.map(|i| format!(r#"{{"id": {i}, "name": "n{i}"}}"#))
            .collect::<Vec<_>>()
    };
    broker.produce("pat-a", Some(0), records(0..10)).unwrap();
    broker.produce("other", Some(0), records(100..110)).unwrap();
    let text = format!(
        r#"
sources:
  - name: events
    kafka: {{bootstrap_servers: "{b}", topic_pattern: "pat-.*", partition_discovery_interval: 300ms, format: json}}
    schema: [{{name: id, type: BIGINT}}, {{name: name, type: STRING}}]
sinks:
  - {{name: out, input: events, blackhole: {{}}}}
"#,
        b = broker.bootstrap()
    );
    let mut plan = Plan::build(&JobSpec::parse(&text).unwrap(), 2).unwrap();
    let got = collect_ids(&mut plan);
    let running = Running::start(plan);
    let until = |n: usize| {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while got.lock().unwrap().len() < n {
            assert!(
                std::time::Instant::now() < deadline,
                "only {:?}",
                got.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    until(10);
    // A matching topic with two partitions, made while the job runs.
    broker.create_topic("pat-b", 2).unwrap();
    broker.produce("pat-b", Some(0), records(10..15)).unwrap();
    broker.produce("pat-b", Some(1), records(15..20)).unwrap();
    until(20);
    std::thread::sleep(Duration::from_millis(700));
    let partitions: u64 = running
        .metrics
        .iter()
        .map(|m| {
            m.source_partitions
                .load(std::sync::atomic::Ordering::Relaxed)
        })
        .max()
        .unwrap();
    running.cancel();
    let _ = running.wait();
    let mut ids = got.lock().unwrap().clone();
    ids.sort_unstable();
    assert_eq!(
        each_once(&ids, 0..20),
        Ok(()),
        "pat-a and pat-b, never other"
    );
    assert_eq!(
        partitions, 3,
        "the source's partition count follows the topics"
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
        // About 8 s of input at the throttle's pace: under a loaded machine the first
        // checkpoint can take seconds, and after the pause enough input must remain for
        // checkpoints to complete again (with 4 s, a CI run once finished without one).
        .produce("steady-in", None, json_records(&[], 40_000))
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
        "the throttled job (about 8 s of input) is still running when the broker pauses"
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
    let ids = read_ids(&broker, "steady-out");
    assert_eq!(each_once(&ids, 0..40_000), Ok(()));
}

/// A Kafka source reports its lag: per partition and in total in `/v1/job`, per partition
/// in `/metrics`, and the topic's partition count (what the autoscaler aligns parallelism
/// to), as it reads a topic that already holds more than it can read at once.
#[test]
fn a_lagging_kafka_source_reports_its_lag_per_partition_and_its_partition_count() {
    use super::http::get;
    use strom_engine::control::{JobView, serve};
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

/// A Kafka source on a quiet topic spends its time waiting, and says so: its busy time
/// stays near zero (waiting for records counted as busy would make every quiet source look
/// saturated to the autoscaler, which would scale it up at each decision).
#[test]
fn a_kafka_source_on_a_quiet_topic_is_idle_not_busy() {
    use super::http::get;
    use strom_engine::control::{JobView, serve};
    let broker = Broker::start().unwrap();
    broker.create_topic("quiet", 2).unwrap();
    broker
        .produce("quiet", None, json_records(&[], 1000))
        .unwrap();
    let text = format!(
        r#"
sources:
  - name: events
    kafka: {{bootstrap_servers: "{b}", topics: [quiet], format: json}}
    schema: [{{name: id, type: BIGINT}}, {{name: name, type: STRING}}]
sinks:
  - {{name: out, input: events, blackhole: {{}}}}
"#,
        b = broker.bootstrap()
    );
    let running = Running::start(Plan::build(&JobSpec::parse(&text).unwrap(), 1).unwrap());
    let view = JobView::new(running.metrics.clone(), 1, running.started);
    let addr = serve(view, "127.0.0.1:0".parse().unwrap()).unwrap();
    let status = |addr| -> strom_protocol::JobStatus {
        serde_json::from_str(&get(addr, "/v1/job")).unwrap()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while status(addr).vertices[0].subtasks[0].records_in < 1000 {
        assert!(
            std::time::Instant::now() < deadline,
            "the 1000 records were not read"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Everything read: from now on the topic is quiet.
    let busy = |addr| status(addr).vertices[0].subtasks[0].busy_ms_total;
    let before = busy(addr);
    std::thread::sleep(Duration::from_secs(3));
    let spent = busy(addr) - before;
    assert!(spent < 300, "3 s on a quiet topic counted {spent} ms busy");
    running.cancel();
    let _ = running.wait();
}

/// `max_records_per_second` caps each subtask, and the time a capped subtask is held back
/// is busy time: a capped source behind its topic looks saturated, so the autoscaler gives
/// it more subtasks (each with the same cap).
#[test]
fn a_capped_kafka_source_reads_at_its_cap_per_subtask_and_counts_the_holding_back_as_busy() {
    use super::http::get;
    use strom_engine::control::{JobView, serve};
    let broker = Broker::start().unwrap();
    broker.create_topic("backlog", 2).unwrap();
    for partition in [0, 1] {
        broker
            .produce("backlog", Some(partition), json_records(&[], 2000))
            .unwrap();
    }
    let text = format!(
        r#"
sources:
  - name: events
    kafka: {{bootstrap_servers: "{b}", topics: [backlog], format: json, max_records_per_second: 400}}
    schema: [{{name: id, type: BIGINT}}, {{name: name, type: STRING}}]
sinks:
  - {{name: out, input: events, blackhole: {{}}}}
"#,
        b = broker.bootstrap()
    );
    for parallelism in [1, 2] {
        let running =
            Running::start(Plan::build(&JobSpec::parse(&text).unwrap(), parallelism).unwrap());
        let view = JobView::new(running.metrics.clone(), 1, running.started);
        let addr = serve(view, "127.0.0.1:0".parse().unwrap()).unwrap();
        let subtasks = |addr| {
            serde_json::from_str::<strom_protocol::JobStatus>(&get(addr, "/v1/job"))
                .unwrap()
                .vertices[0]
                .subtasks
                .clone()
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while subtasks(addr).iter().all(|s| s.records_in == 0) {
            assert!(std::time::Instant::now() < deadline, "nothing was read");
            std::thread::sleep(Duration::from_millis(20));
        }
        let (start, before) = (std::time::Instant::now(), subtasks(addr));
        std::thread::sleep(Duration::from_secs(2));
        let (secs, after) = (start.elapsed().as_secs_f64(), subtasks(addr));
        for (a, b) in before.iter().zip(&after) {
            let rate = (b.records_in - a.records_in) as f64 / secs;
            let busy = (b.busy_ms_total - a.busy_ms_total) as f64 / (secs * 1000.0);
            eprintln!("parallelism {parallelism}: {rate:.0} records/s, {busy:.2} busy");
            // One poll's worth (50 ms of the cap) may be read ahead of its sleep.
            assert!(
                rate <= 400.0 * 1.05 + 20.0 / secs,
                "{rate:.0}/s exceeds the cap of 400/s"
            );
            assert!(
                rate >= 200.0,
                "{rate:.0}/s: the subtask should read near its cap"
            );
            assert!(
                busy > 0.8,
                "a subtask held back by its cap is busy, not {busy:.2}"
            );
        }
        running.cancel();
        let _ = running.wait();
    }
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

/// Against brokers that require SASL SCRAM: the right user and password (from the spec's
/// `properties`, as a Secret's value would arrive) write and read; a wrong password makes
/// the source wait and say that authentication failed, never read nor crash.
#[test]
fn wrong_credentials_make_a_source_wait_saying_authentication_failed() {
    let broker = Broker::start_with(&["--topic", "secured:2", "--user", "strom:s3cret"]).unwrap();
    let b = broker.bootstrap();
    let sasl = |mechanism: &str, password: &str| {
        format!(
            "properties: {{security.protocol: SASL_PLAINTEXT, sasl.mechanism: {mechanism}, \
             sasl.username: strom, sasl.password: {password}}}"
        )
    };
    let writer = format!(
        r#"
sources:
  - {{name: g, datagen: {{count: 300, columns: [{{name: id, expr: id}}]}}}}
sinks:
  - name: out
    input: g
    kafka: {{bootstrap_servers: "{b}", topic: secured, format: json, {}}}
"#,
        sasl("SCRAM-SHA-512", "s3cret")
    );
    Running::start(Plan::build(&JobSpec::parse(&writer).unwrap(), 1).unwrap())
        .wait()
        .unwrap();

    let reader = |password: &str| {
        let text = format!(
            r#"
sources:
  - name: events
    kafka: {{bootstrap_servers: "{b}", topics: [secured], format: json, bounded: true, {}}}
    schema: [{{name: id, type: BIGINT}}]
sinks:
  - {{name: out, input: events, blackhole: {{}}}}
"#,
            sasl("SCRAM-SHA-256", password)
        );
        Running::start(Plan::build(&JobSpec::parse(&text).unwrap(), 1).unwrap())
    };
    let wrong = reader("guessed");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let said = loop {
        let said = wrong
            .metrics
            .iter()
            .find_map(|m| m.waiting.lock().unwrap().clone());
        if let Some(w) = said {
            break w;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "a wrong password was never reported"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    eprintln!("a wrong password: {said}");
    assert!(
        said.to_lowercase().contains("authentication"),
        "the reason names authentication: {said}"
    );
    std::thread::sleep(Duration::from_secs(2));
    assert!(!wrong.is_finished(), "it waits rather than fails: {said}");
    let source_read =
        |metrics: &[std::sync::Arc<strom_engine::runtime::metrics::TaskMetrics>]| {
            metrics
                .iter()
                .filter(|m| m.vertex_id == "source:events")
                .map(|m| m.records_in.load(std::sync::atomic::Ordering::Relaxed))
                .sum::<u64>()
        };
    assert_eq!(source_read(&wrong.metrics), 0);
    wrong.cancel();
    let _ = wrong.wait();

    let right = reader("s3cret");
    let metrics = right.metrics.clone();
    right.wait().unwrap();
    assert_eq!(
        source_read(&metrics),
        300,
        "the right password reads every record"
    );
}
