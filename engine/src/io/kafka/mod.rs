//! Kafka as a source and a sink, through librdkafka (the `rdkafka` crate).
//!
//! - [`source`]: a subtask's partitions, read from the offsets in the checkpoint, decoded
//!   into batches (JSON, CSV, raw text), with each row's partition for per-partition
//!   watermarks.
//! - [`sink`]: rows encoded and produced, at-least-once (every record acknowledged before
//!   the checkpoint), exactly-once (one transaction per subtask and checkpoint interval,
//!   committed when the checkpoint completes) or fire-and-forget.
//! - [`transactions`]: the transactions written and waiting for their checkpoint.
//! - [`resume`]: committing a restored checkpoint's transaction that another process
//!   opened, by its producer id and epoch.
//! - [`bad_records`]: what a source does with records that do not decode.
//! - [`dead_letter`]: a source's bad records, written to a topic of their own.
//! - [`codec`]: values to rows and rows to values.
//! - [`metadata`]: columns read from each record's key, topic, partition, offset,
//!   timestamp or headers.
//! - [`lag`]: how far behind its partitions a reader is.
//! - [`topics`]: whole topics for tools and tests (create, fill, read committed).

pub mod bad_records;
pub mod codec;
pub mod dead_letter;
pub mod lag;
pub mod metadata;
pub mod resume;
pub mod sink;
pub mod source;
pub mod topics;
pub mod transactions;

use std::collections::BTreeMap;

use rdkafka::config::ClientConfig;

/// How long a call that needs the brokers (metadata, offsets, transactions) may take.
pub const BROKER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// How long a source waits for topic metadata before it reports the brokers unreachable
/// and tries again.
pub const METADATA_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// A client configuration: the brokers, then the spec's properties, each `${NAME}` value
/// read from the environment (a Secret's key mapped into the pod), then the engine's own.
pub fn client_config(
    bootstrap_servers: &str,
    properties: &BTreeMap<String, String>,
    ours: &[(&str, &str)],
) -> Result<ClientConfig, String> {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", bootstrap_servers);
    for (k, v) in properties {
        let value = match v.strip_prefix("${").and_then(|v| v.strip_suffix('}')) {
            Some(name) => std::env::var(name).map_err(|_| {
                format!(
                    "client property {k} reads the environment variable {name}, which is not set \
                     (map it from a Secret into the job's env)"
                )
            })?,
            None => v.clone(),
        };
        config.set(k, value);
    }
    for (k, v) in ours {
        config.set(*k, *v);
    }
    Ok(config)
}

/// Kafka's `String.hashCode()` of a topic name, as Flink's Kafka source uses it to spread
/// partitions over readers.
fn java_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)))
}

/// The subtask (of `parallelism`) that reads `partition` of `topic`: Flink's
/// `KafkaSourceEnumerator.getSplitOwner`, so a job reads each partition on the subtask Flink
/// would, and a partition count that divides the parallelism spreads evenly.
pub fn partition_owner(topic: &str, partition: i32, parallelism: usize) -> usize {
    let p = parallelism.max(1) as i64;
    let start = i64::from(java_hash(topic).wrapping_mul(31) & 0x7FFF_FFFF) % p;
    ((start + i64::from(partition)) % p) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_go_to_the_subtask_flink_gives_them() {
        // "orders".hashCode() in Java is -1008770331.
        assert_eq!(java_hash("orders"), -1_008_770_331);
        let start = i64::from((-1_008_770_331i32).wrapping_mul(31) & 0x7FFF_FFFF) % 4;
        for q in 0..8 {
            assert_eq!(
                partition_owner("orders", q, 4),
                ((start + q as i64) % 4) as usize
            );
        }
        // Consecutive partitions land on consecutive subtasks.
        let owners: std::collections::BTreeSet<usize> =
            (0..4).map(|q| partition_owner("t", q, 4)).collect();
        assert_eq!(owners.len(), 4);
    }

    #[test]
    fn properties_read_secrets_from_the_environment_and_name_what_is_missing() {
        let mut props = BTreeMap::new();
        props.insert(
            "sasl.password".to_owned(),
            "${STROM_TEST_NO_SUCH_VAR}".to_owned(),
        );
        let err = client_config("h:1", &props, &[]).unwrap_err();
        assert!(err.contains("STROM_TEST_NO_SUCH_VAR"), "{err}");
        props.insert("sasl.password".to_owned(), "${PATH}".to_owned());
        let config = client_config("h:1", &props, &[("group.id", "g")]).unwrap();
        assert_eq!(
            config.get("sasl.password"),
            std::env::var("PATH").ok().as_deref()
        );
        assert_eq!(config.get("group.id"), Some("g"));
    }
}
