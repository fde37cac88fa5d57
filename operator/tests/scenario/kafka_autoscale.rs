//! The autoscaler and a lagging Kafka job on the local cluster: a producer FlinkJob writes
//! 200 orders/s to a 6-partition topic; a copying FlinkJob reads it with each source
//! subtask capped at 60 records/s (`max_records_per_second`), so at one subtask its lag
//! grows. The autoscaler, sampling the engine's lag and busy time, rescales the source in
//! one decision to a parallelism that splits the 6 partitions evenly (the formulas give
//! 4 or 5; 6 it is), through a savepoint; the copy, read committed, holds every order once.
//! The broker requires SASL SCRAM: both jobs read the password from a Secret through their
//! pods' environment, never from the spec.

use std::time::Duration;

use strom_testkit::free_port;
use strom_testkit::once::each_once;

use super::kafka::{Access, PASSWORD, field, producer, read_ids, setup_kafka, start_broker};
use super::support::{apply, kubectl, wait};

const ORDERS: u64 = 20_000;
const RATE: u64 = 200;
const CAP: u64 = 60;

fn copier(state: &std::path::Path, bootstrap: &str) -> String {
    let (properties, pod) = (Access::Scram.properties(), Access::Scram.pod_template());
    format!(
        r#"apiVersion: strom.dev/v1alpha1
kind: FlinkJob
metadata:
  name: copier
  namespace: default
spec:
  image: strom/engine:0.1.0
  parallelism: 1
  checkpoints: {{storage: "file://{state}", interval: 1s}}
  savepoints: {{storage: "file://{state}"}}
  autoscaler:
    mode: active
    targetUtilization: 0.9
    utilizationBand: 0.09
    metricsWindow: 40s
    stabilizationInterval: 15s
    scaleDownDelay: 1h
    catchUpDuration: 5m
    restartTime: 10s
{pod}  job:
    sources:
      - name: events
        kafka: {{bootstrap_servers: "{bootstrap}", topics: [events], format: json, max_records_per_second: {CAP}{properties}}}
        schema: [{{name: id, type: BIGINT}}, {{name: k, type: BIGINT}}, {{name: ts, type: BIGINT}}]
    sinks:
      - name: copied
        input: events
        kafka: {{bootstrap_servers: "{bootstrap}", topic: copied, format: json, delivery: exactly-once, partitioner: fixed, transactional_id_prefix: copier{properties}}}
"#,
        state = state.display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_autoscaler_scales_a_lagging_kafka_source_to_a_partition_aligned_parallelism() {
    let (cluster, client, dir) = setup_kafka("kafka-autoscale").await;
    let operator = tokio::spawn(strom_operator::controller::run_with(
        client,
        Some("default".into()),
        std::sync::Arc::new(strom_operator::controller::Metrics::default()),
        strom_operator::controller::Settings {
            autoscaler_interval: Duration::from_secs(5),
            ..Default::default()
        },
    ));
    let port = free_port().unwrap();
    let bootstrap = format!("127.0.0.1:{port}");
    let state = dir.join("state");
    start_broker(&cluster, port, &["events:6", "copied:6"], Access::Scram);
    let broker = (bootstrap.as_str(), Access::Scram);
    apply(
        &cluster,
        &producer("producer", &state, broker, "events", ORDERS, RATE),
    );
    wait(&cluster, "the producer to run", 90, || {
        field(&cluster, "producer", ".status.jobState") == "Running"
    })
    .await;
    apply(&cluster, &copier(&state, &bootstrap));

    // At one subtask the source reads 60/s of the 200/s that arrive: one decision takes it
    // to 6, the parallelism that splits the 6 partitions evenly.
    let mut outcomes = Vec::new();
    wait(&cluster, "the autoscaler's rescale", 300, || {
        let o = field(&cluster, "copier", ".status.autoscaler.outcome");
        if outcomes.last() != Some(&o) {
            outcomes.push(o);
        }
        !field(&cluster, "copier", ".status.autoscaler.lastScaling.summary").is_empty()
    })
    .await;
    eprintln!("autoscaler outcomes up to the rescale: {outcomes:?}");
    let summary = field(&cluster, "copier", ".status.autoscaler.lastScaling.summary");
    eprintln!("{summary}");
    assert!(
        summary.starts_with("rescale source:events 1 → 6 (") && summary.contains("catch-up"),
        "{summary}"
    );
    assert!(
        summary.contains(", aligned to 6 partitions)"),
        "the formulas should give 4 or 5 subtasks (200/s ÷ 0.9 ÷ 60/s plus catch-up), \
         aligned to 6: {summary}"
    );
    assert_ne!(
        field(&cluster, "producer", ".status.jobState"),
        "Finished",
        "the input ended before the autoscaler acted"
    );
    wait(&cluster, "the copier to run at 6", 180, || {
        field(&cluster, "copier", ".status.lifecycleState") == "Running"
            && field(&cluster, "copier", ".status.parallelism") == "6"
            && field(&cluster, "copier", ".status.jobState") == "Running"
    })
    .await;
    let vertices: serde_json::Value = serde_json::from_str(&field(
        &cluster,
        "copier",
        ".status.autoscaler.vertexParallelism",
    ))
    .unwrap();
    assert_eq!(vertices["source:events"], 6, "{vertices}");
    assert!(
        field(&cluster, "copier", ".status.lastSavepoint.location").contains("/savepoints/sp-"),
        "the rescale went through a savepoint"
    );
    for object in ["fj/copier", "fj/producer", "statefulset/copier-engine"] {
        let yaml = kubectl(&cluster, &["get", object, "-o", "yaml"]);
        assert!(
            !yaml.contains(PASSWORD) && yaml.contains("kafka-credentials"),
            "{object} names the Secret, never the password"
        );
    }
    let described = kubectl(&cluster, &["describe", "fj", "copier"]);
    eprintln!("{described}");
    assert!(described.contains("rescale source:events 1 → 6"));

    // Six subtasks read 360/s: the lag is worked off, and the copy holds every order once.
    wait(&cluster, "the producer to finish", 240, || {
        field(&cluster, "producer", ".status.jobState") == "Finished"
    })
    .await;
    assert_eq!(
        each_once(&read_ids(&dir, broker, "events"), 0..ORDERS as i64),
        Ok(()),
        "the producer wrote every order once"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let copied = loop {
        let copied = read_ids(&dir, broker, "copied");
        if copied.len() >= ORDERS as usize || std::time::Instant::now() > deadline {
            break copied;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    operator.abort();
    assert_eq!(
        each_once(&copied, 0..ORDERS as i64),
        Ok(()),
        "every order copied once across the rescale"
    );
    drop(cluster);
    let _ = std::fs::remove_dir_all(&dir);
}
