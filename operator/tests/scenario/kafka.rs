//! Kafka to Kafka on the local cluster: the broker runs as a pod (`hostNetwork`, so the
//! jobs reach it at a fixed address), a producer FlinkJob writes orders to a topic at a
//! steady rate, exactly once, and a second FlinkJob counts them per key and second into
//! another topic, exactly once. In the middle of the input the counting job is upgraded
//! through a savepoint and rescaled with `kubectl scale`; a `read_committed` reader of
//! the output (the engine binary, run as a user would) then finds every order counted once.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use strom_local_cluster::cluster::Cluster;
use strom_testkit::once::each_once;
use strom_testkit::{engine_binary, free_port, kafka::broker_binary};

use super::support::{apply, kubectl, setup_with, wait};

/// Orders the producer writes (ids 0.., `k = id % 4`, `ts = id * 10` ms: 100 orders per
/// second of event time, 25 per key) and how many per second of wall time.
const ORDERS: u64 = 32_000;
const RATE: u64 = 400;

/// How clients reach the test broker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Access {
    /// Plaintext, no users.
    Open,
    /// SASL SCRAM-SHA-256 as user `strom`, whose password the jobs read from the Secret
    /// `kafka-credentials` through their pods' environment (`${KAFKA_PASSWORD}`).
    Scram,
}

/// The password of the broker's user under [`Access::Scram`].
pub(super) const PASSWORD: &str = "n0t-in-the-spec";

impl Access {
    /// The client properties of a Kafka source or sink (inline YAML, after its fields).
    pub(super) fn properties(self) -> &'static str {
        match self {
            Access::Open => "",
            Access::Scram => {
                r#", properties: {security.protocol: SASL_PLAINTEXT, sasl.mechanism: SCRAM-SHA-256, sasl.username: strom, sasl.password: "${KAFKA_PASSWORD}"}"#
            }
        }
    }

    /// A FlinkJob's `podTemplate` (under `spec:`) that puts the password in the engine's
    /// environment from the Secret.
    pub(super) fn pod_template(self) -> &'static str {
        match self {
            Access::Open => "",
            Access::Scram => {
                "  podTemplate:\n    env:\n      - name: KAFKA_PASSWORD\n        valueFrom: {secretKeyRef: {name: kafka-credentials, key: password}}\n"
            }
        }
    }
}

/// The broker pod: on the node's network, its topics (`name:partitions`) created before
/// its port opens.
pub(super) fn broker_pod(port: u16, topics: &[&str], access: Access) -> String {
    let mut topics: String = topics
        .iter()
        .map(|t| format!(r#", "--topic", "{t}""#))
        .collect();
    if access == Access::Scram {
        topics.push_str(&format!(r#", "--user", "strom:{PASSWORD}""#));
    }
    format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: kafka
  namespace: default
  labels: {{app: kafka}}
spec:
  hostNetwork: true
  containers:
    - name: broker
      image: strom/kafka-broker:0.6
      args: ["--listen", "127.0.0.1:{port}"{topics}]
      readinessProbe:
        tcpSocket: {{port: {port}}}
        periodSeconds: 1
"#
    )
}

/// A bounded FlinkJob `name` that writes `count` orders (`id`, `k = id % 4`, `ts = id * 10`
/// ms) to `topic` at `rate` per second, exactly once.
pub(super) fn producer(
    name: &str,
    state: &Path,
    (bootstrap, access): (&str, Access),
    topic: &str,
    count: u64,
    rate: u64,
) -> String {
    let (properties, pod) = (access.properties(), access.pod_template());
    format!(
        r#"apiVersion: strom.dev/v1alpha1
kind: FlinkJob
metadata:
  name: {name}
  namespace: default
spec:
  image: strom/engine:0.1.0
  parallelism: 1
  checkpoints: {{storage: "file://{state}", interval: 200ms}}
{pod}  job:
    sources:
      - name: gen
        datagen:
          count: {count}
          rate: {rate}
          columns:
            - {{name: id, expr: id}}
            - {{name: k, expr: "MOD(id, 4)"}}
            - {{name: ts, expr: "id * 10"}}
    sinks:
      - name: orders
        input: gen
        kafka: {{bootstrap_servers: "{bootstrap}", topic: {topic}, format: json, delivery: exactly-once, transactional_id_prefix: {name}{properties}}}
"#,
        state = state.display()
    )
}

/// Per-key counts of each second of event time, written exactly once; `filter` differs
/// between versions (both keep every order).
fn counter(state: &Path, bootstrap: &str, filter: &str, parallelism: u32) -> String {
    format!(
        r#"apiVersion: strom.dev/v1alpha1
kind: FlinkJob
metadata:
  name: order-counts
  namespace: default
spec:
  image: strom/engine:0.1.0
  parallelism: {parallelism}
  upgradeMode: savepoint
  checkpoints: {{storage: "file://{state}", interval: 500ms}}
  savepoints: {{storage: "file://{state}"}}
  job:
    sources:
      - name: orders
        kafka: {{bootstrap_servers: "{bootstrap}", topics: [orders], format: json}}
        schema: [{{name: id, type: BIGINT}}, {{name: k, type: BIGINT}}, {{name: ts, type: BIGINT}}]
        watermark: {{field: ts, max_out_of_orderness: 0s}}
    transforms:
      - {{name: kept, input: orders, where: "{filter}"}}
      - name: per_key
        input: kept
        key_by: [k]
        window: {{tumble: 1s}}
        select: [window_start, k, "COUNT(*) AS cnt"]
    sinks:
      - name: out
        input: per_key
        kafka: {{bootstrap_servers: "{bootstrap}", topic: counts, format: csv, delivery: exactly-once, partitioner: fixed, transactional_id_prefix: counts}}
"#,
        state = state.display()
    )
}

/// The values a `read_committed` reader of `topic` gets now: the engine binary runs a
/// bounded Kafka source into a CSV file, as a user would.
pub(super) fn read_topic(
    dir: &Path,
    (bootstrap, access): (&str, Access),
    topic: &str,
) -> Vec<String> {
    let properties = access.properties();
    let out = dir.join(format!("read-{topic}"));
    let _ = std::fs::remove_dir_all(&out);
    let job = dir.join(format!("read-{topic}.yaml"));
    std::fs::write(
        &job,
        format!(
            r#"sources:
  - name: values
    kafka: {{bootstrap_servers: "{bootstrap}", topics: [{topic}], format: raw, bounded: true, group_id: test-reader{properties}}}
    schema: [{{name: value, type: STRING}}]
sinks:
  - {{name: out, input: values, file: {{path: "{}", format: csv}}}}
"#,
            out.display()
        ),
    )
    .unwrap();
    let run = std::process::Command::new(engine_binary())
        .args(["run", job.to_str().unwrap()])
        .env("KAFKA_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "the reader of {topic} failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let mut values = Vec::new();
    for entry in std::fs::read_dir(&out).unwrap().flatten() {
        if entry.file_name().to_string_lossy().starts_with("part-") {
            values.extend(
                std::fs::read_to_string(entry.path())
                    .unwrap()
                    .lines()
                    .filter(|l| !l.is_empty() && *l != "value")
                    .map(|l| l.trim_matches('"').replace("\"\"", "\"")),
            );
        }
    }
    values
}

/// What a reader of the `counts` topic gets now: (window_start, k) → every count written.
fn read_counts(dir: &Path, bootstrap: &str) -> BTreeMap<(i64, i64), Vec<i64>> {
    let mut counts: BTreeMap<(i64, i64), Vec<i64>> = BTreeMap::new();
    for line in read_topic(dir, (bootstrap, Access::Open), "counts") {
        let f: Vec<i64> = line
            .split(',')
            .map(|x| x.parse().unwrap_or_else(|e| panic!("{line:?}: {e}")))
            .collect();
        let [w, k, c] = f[..] else {
            panic!("not window_start,k,cnt: {line:?}")
        };
        counts.entry((w, k)).or_default().push(c);
    }
    counts
}

/// The ids of the JSON orders a `read_committed` reader of `topic` gets, sorted.
pub(super) fn read_ids(dir: &Path, broker: (&str, Access), topic: &str) -> Vec<i64> {
    let mut ids: Vec<i64> = read_topic(dir, broker, topic)
        .iter()
        .map(|v| {
            serde_json::from_str::<serde_json::Value>(v).unwrap_or_else(|e| panic!("{v}: {e}"))
                ["id"]
                .as_i64()
                .unwrap()
        })
        .collect();
    ids.sort_unstable();
    ids
}

/// A local cluster that serves the test broker's image besides the engine's.
pub(super) async fn setup_kafka(tag: &str) -> (Cluster, kube::Client, std::path::PathBuf) {
    setup_with(
        tag,
        vec![("strom/kafka-broker:*".into(), broker_binary().unwrap())],
    )
    .await
}

/// Starts the broker pod on `port` with `topics` and waits until it takes connections;
/// under [`Access::Scram`] first the Secret `kafka-credentials` the jobs read the password
/// from.
pub(super) fn start_broker(cluster: &Cluster, port: u16, topics: &[&str], access: Access) {
    if access == Access::Scram {
        kubectl(
            cluster,
            &[
                "create",
                "secret",
                "generic",
                "kafka-credentials",
                &format!("--from-literal=password={PASSWORD}"),
            ],
        );
    }
    apply(cluster, &broker_pod(port, topics, access));
    kubectl(
        cluster,
        &[
            "wait",
            "--for=condition=Ready",
            "pod/kafka",
            "--timeout=60s",
        ],
    );
}

pub(super) fn field(cluster: &Cluster, job: &str, path: &str) -> String {
    kubectl(
        cluster,
        &["get", "fj", job, "-o", &format!("jsonpath={{{path}}}")],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kafka_job_upgraded_and_rescaled_mid_stream_counts_every_order_once() {
    let (cluster, client, dir) = setup_kafka("kafka").await;
    let port = free_port().unwrap();
    let bootstrap = format!("127.0.0.1:{port}");
    let operator = tokio::spawn(strom_operator::controller::run(
        client,
        Some("default".into()),
    ));
    let state = dir.join("state");

    // The counter first, with no broker yet: it runs, retries, and says what it waits for.
    apply(&cluster, &counter(&state, &bootstrap, "k >= 0", 2));
    wait(&cluster, "the counter to wait for its broker", 90, || {
        field(&cluster, "order-counts", ".status.jobState") == "Waiting"
    })
    .await;
    let ready = kubectl(
        &cluster,
        &[
            "get",
            "fj",
            "order-counts",
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Ready\")].reason}: {.status.conditions[?(@.type==\"Ready\")].message}",
        ],
    );
    eprintln!("{}\n{ready}", kubectl(&cluster, &["get", "fj"]));
    assert!(
        ready.starts_with("SourceWaiting: source:orders subtask ") && ready.contains(&bootstrap),
        "{ready}"
    );

    start_broker(&cluster, port, &["orders:4", "counts:4"], Access::Open);
    assert_eq!(
        kubectl(
            &cluster,
            &["get", "pod", "kafka", "-o", "jsonpath={.status.podIP}"]
        ),
        "127.0.0.1",
        "a hostNetwork pod has the node's address"
    );
    apply(
        &cluster,
        &producer(
            "orders-producer",
            &state,
            (&bootstrap, Access::Open),
            "orders",
            ORDERS,
            RATE,
        ),
    );
    let settled = |generation: &str, p: &str| {
        field(&cluster, "order-counts", ".status.lifecycleState") == "Running"
            && field(&cluster, "order-counts", ".status.observedGeneration") == generation
            && field(&cluster, "order-counts", ".status.parallelism") == p
    };
    let started = Instant::now();
    wait(
        &cluster,
        "both jobs to run and the counter to read",
        90,
        || {
            settled("1", "2")
                && field(&cluster, "order-counts", ".status.jobState") == "Running"
                && field(&cluster, "orders-producer", ".status.lifecycleState") == "Running"
                && !field(&cluster, "order-counts", ".status.lastCheckpoint.id").is_empty()
        },
    )
    .await;

    // Mid-stream: an upgrade through a savepoint (a filter that keeps every order), then a
    // rescale from 2 to 4 subtasks, one per partition of `orders`.
    apply(&cluster, &counter(&state, &bootstrap, "id >= 0", 2));
    wait(&cluster, "the upgrade", 120, || settled("2", "2")).await;
    kubectl(&cluster, &["scale", "fj/order-counts", "--replicas=4"]);
    wait(&cluster, "the rescale to 4", 120, || settled("3", "4")).await;
    let changed_after = started.elapsed();
    assert_ne!(
        field(&cluster, "orders-producer", ".status.jobState"),
        "Finished",
        "the input ended before the upgrade and the rescale were done ({changed_after:?}): \
         they did not happen mid-stream"
    );
    let savepoints = field(&cluster, "order-counts", ".status.savepoints[*].state");
    assert_eq!(
        savepoints
            .split_whitespace()
            .filter(|s| *s == "Completed")
            .count(),
        2,
        "a savepoint for each change: {savepoints}"
    );
    wait(&cluster, "the producer to finish", 180, || {
        field(&cluster, "orders-producer", ".status.jobState") == "Finished"
    })
    .await;

    // Every window whose end the watermark passes: 25 orders per key, once each. The
    // watermark is the minimum over the four partitions of their last order's time, and
    // the producer sends each ~100 ms batch to one partition picked at random, so a
    // partition's last order can be a few seconds of event time before the end: the
    // windows of the last 10 s (25 batches; a partition missed by all of them is a
    // 0.3 % chance) are checked only as far as they were written.
    let windows = (ORDERS * 10 / 1000 - 10) as i64;
    let deadline = Instant::now() + Duration::from_secs(120);
    let counts = loop {
        let counts = read_counts(&dir, &bootstrap);
        let complete = (0..windows).all(|w| (0..4).all(|k| counts.contains_key(&(w * 1000, k))));
        if complete || Instant::now() > deadline {
            break counts;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    operator.abort();
    let tail: Vec<_> = counts
        .iter()
        .filter(|((w, _), _)| *w >= (windows - 4) * 1000)
        .collect();
    eprintln!("the last windows read: {tail:?}");
    // The input, read the same way: every order once.
    assert_eq!(
        each_once(
            &read_ids(&dir, (&bootstrap, Access::Open), "orders"),
            0..ORDERS as i64,
        ),
        Ok(()),
        "the producer wrote every order once"
    );
    for w in 0..windows {
        for k in 0..4 {
            let got = counts.get(&(w * 1000, k));
            assert_eq!(
                got,
                Some(&vec![25]),
                "window {} key {k}: counts {got:?} (want one count of 25)",
                w * 1000
            );
        }
    }
    for ((w, k), c) in &counts {
        assert_eq!(c.len(), 1, "window {w} key {k} written {} times", c.len());
        assert!(c[0] <= 25, "window {w} key {k} counted {} orders", c[0]);
    }
    eprintln!(
        "{} windows × 4 keys counted once each; upgrade and rescale done {changed_after:?} \
         into {} s of input",
        windows,
        ORDERS / RATE
    );
    drop(cluster);
    let _ = std::fs::remove_dir_all(&dir);
}
