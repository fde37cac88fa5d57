//! What the Kafka tests share: the engine's topic tools on the test broker, records to
//! produce and read back, and an exactly-once sink to drive directly.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use arrow::record_batch::RecordBatch;
use strom_engine::io::kafka::topics;
use strom_engine::spec::JobSpec;
use strom_testkit::kafka::Broker;

/// The engine's topic tools, on the test broker.
pub trait Topics {
    fn create_topic(&self, topic: &str, partitions: i32) -> strom_engine::Result<()>;
    fn produce(
        &self,
        topic: &str,
        partition: Option<i32>,
        values: impl IntoIterator<Item = impl AsRef<[u8]>>,
    ) -> strom_engine::Result<u64>;
    fn read_committed(&self, topic: &str) -> strom_engine::Result<BTreeMap<i32, Vec<Vec<u8>>>>;
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

    fn read_committed(&self, topic: &str) -> strom_engine::Result<BTreeMap<i32, Vec<Vec<u8>>>> {
        topics::read_committed(&self.bootstrap(), topic, Duration::from_secs(120))
    }
}

pub fn json_records(bad_at: &[usize], n: usize) -> Vec<String> {
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

/// The `id`s of the JSON rows a `read_committed` reader of `topic` gets, sorted.
pub fn read_ids(broker: &Broker, topic: &str) -> Vec<i64> {
    let mut ids: Vec<i64> = broker
        .read_committed(topic)
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
}

/// A job whose one sink writes `topic` exactly once as `<prefix>-<subtask>-<slot>`: its
/// sink's spec drives a `KafkaWriter` directly.
pub fn exactly_once_sink(broker: &Broker, topic: &str, prefix: &str) -> JobSpec {
    JobSpec::parse(&format!(
        r#"
sources:
  - {{name: g, datagen: {{count: 1, columns: [{{name: id, expr: "id"}}]}}}}
sinks:
  - name: out
    input: g
    kafka: {{bootstrap_servers: "{b}", topic: {topic}, format: json, delivery: exactly-once, transactional_id_prefix: {prefix}}}
"#,
        b = broker.bootstrap()
    ))
    .unwrap()
}

/// Rows with `id` = each of `ids`.
pub fn id_batch(ids: std::ops::Range<i64>) -> RecordBatch {
    let schema = Arc::new(arrow::datatypes::Schema::new(vec![
        arrow::datatypes::Field::new("id", arrow::datatypes::DataType::Int64, false),
    ]));
    RecordBatch::try_new(
        schema,
        vec![Arc::new(arrow::array::Int64Array::from_iter_values(ids))],
    )
    .unwrap()
}
