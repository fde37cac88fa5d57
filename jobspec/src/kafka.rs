//! Kafka topics as a source and a sink: where the brokers are, which topics, the record
//! format, where reading starts and stops, how bad records are handled, and the sink's
//! delivery guarantee.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

mod metadata;
#[cfg(test)]
mod tests;

pub use metadata::KafkaMetadata;

/// How records' values are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum KafkaFormat {
    /// One JSON object per record, fields by column name.
    Json,
    /// One CSV line per record, columns in the declared order, no header.
    Csv,
    /// The value as UTF-8 text: a source declares one STRING column; a sink writes its
    /// one column's text.
    Raw,
}

/// Where a source starts reading a partition that the restored snapshot does not hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum KafkaStart {
    /// The oldest record still in the partition (the default).
    Earliest,
    /// Only records written after the job started.
    Latest,
    /// The first record whose timestamp is at or after `start_timestamp`.
    Timestamp,
    /// The offsets committed by `group_id` (earliest where it has none).
    GroupOffsets,
}

/// What a source does with a record it cannot decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum BadRecords {
    /// Stop the job; the error names the topic, partition and offset (the default).
    Fail,
    /// Leave it out and count it (`strom_engine_source_skipped_records_total`).
    Skip,
    /// Write it as it was to `dead_letter_topic`, with headers naming its topic, partition,
    /// offset and the reason, and count it (`strom_engine_source_dead_letter_records_total`).
    DeadLetter,
}

/// A Kafka source: every partition of its topics, spread over the source's subtasks. The
/// offsets read are part of each checkpoint, so a restore resumes exactly where the
/// checkpoint was, at any parallelism.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub struct KafkaSource {
    /// `host:port` of one or more brokers, comma-separated.
    pub bootstrap_servers: String,
    /// The topics to read, unless `topic_pattern` names them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub topics: Vec<String>,
    /// A regular expression that each topic to read matches as a whole (as Flink's topic
    /// pattern), e.g. `orders-.*`; topics created later are read from their first record
    /// once discovered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_pattern: Option<String>,
    /// How often the source looks for partitions added to its topics and, with a pattern,
    /// for new topics (default 5m, as Flink; `0s`: never). Bounded sources do not look.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition_discovery_interval: Option<crate::Duration>,
    /// How values are encoded.
    pub format: KafkaFormat,
    /// Where to start a partition the restored snapshot does not hold (default earliest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<KafkaStart>,
    /// With `start: timestamp`: epoch milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_timestamp: Option<i64>,
    /// Stop at the offsets that were the latest when the job started (a backfill; the
    /// source then ends like a file). Unset: read for ever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bounded: Option<bool>,
    /// The consumer group (for `start: group-offsets`, and the offsets committed for
    /// monitoring). Default `strom-<source name>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
    /// What to do with a record that does not decode (default fail).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bad_records: Option<BadRecords>,
    /// With `bad_records: dead-letter`: the topic bad records go to (on the same brokers,
    /// with the same client properties).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead_letter_topic: Option<String>,
    /// At most this many records per second per subtask (unset: as fast as the brokers
    /// give them): spares downstream systems during a backfill. The total grows with the
    /// parallelism, and the time a subtask is held back counts as busy, so the autoscaler
    /// sees a capped source that falls behind its topic as saturated and adds subtasks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_records_per_second: Option<u64>,
    /// Client properties passed to librdkafka as they are (e.g. `isolation.level`,
    /// `security.protocol`, `sasl.mechanism`); a value `${NAME}` is read from the
    /// environment variable NAME (set from a Kubernetes Secret), so secrets never sit in the
    /// spec.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: BTreeMap<String, String>,
}

/// Which topics a Kafka source reads: those it names and those its pattern matches.
#[derive(Debug, Clone)]
pub struct TopicFilter {
    topics: Vec<String>,
    pattern: Option<regex::Regex>,
}

impl TopicFilter {
    /// Whether `topic` is one of the source's.
    pub fn matches(&self, topic: &str) -> bool {
        self.topics.iter().any(|t| t == topic)
            || self.pattern.as_ref().is_some_and(|p| p.is_match(topic))
    }

    /// Whether only the named topics are read (no pattern).
    pub fn named_only(&self) -> bool {
        self.pattern.is_none()
    }

    /// The named topics.
    pub fn named(&self) -> &[String] {
        &self.topics
    }
}

/// `pattern` anchored at both ends, as Java's `Pattern.matcher(topic).matches()`.
fn whole_topic_pattern(pattern: &str) -> Result<regex::Regex, regex::Error> {
    regex::Regex::new(&format!("^(?:{pattern})$"))
}

impl KafkaSource {
    /// The topics it reads (a checked spec's pattern compiles).
    pub fn topic_filter(&self) -> TopicFilter {
        TopicFilter {
            topics: self.topics.clone(),
            pattern: self
                .topic_pattern
                .as_deref()
                .and_then(|p| whole_topic_pattern(p).ok()),
        }
    }

    /// How often it looks for new partitions and topics (`None`: never).
    pub fn discovery_interval(&self) -> Option<std::time::Duration> {
        if self.bounded == Some(true) {
            return None;
        }
        match &self.partition_discovery_interval {
            None => Some(std::time::Duration::from_secs(300)),
            Some(d) => d.to_std().ok().filter(|d| !d.is_zero()),
        }
    }
}

/// A sink's delivery guarantee.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Delivery {
    /// Kafka transactions committed when the checkpoint that covers their records
    /// completes: a `read_committed` reader sees every record exactly once.
    ExactlyOnce,
    /// Every record is acknowledged by the brokers before a checkpoint completes; a
    /// restore may write records again (the default).
    AtLeastOnce,
    /// Fire and forget.
    None,
}

/// Which partition a sink's record goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum KafkaPartitioner {
    /// By the key's murmur2 hash, as Java clients place keys (keyless records: spread at
    /// random). The default.
    Default,
    /// Each sink subtask writes one partition: subtask `i` writes partition
    /// `i % partitions` (Flink's `sink.partitioner: fixed`).
    Fixed,
}

/// A Kafka sink.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub struct KafkaSink {
    /// `host:port` of one or more brokers, comma-separated.
    pub bootstrap_servers: String,
    /// The topic written.
    pub topic: String,
    /// How values are encoded.
    pub format: KafkaFormat,
    /// A column whose text is each record's key (records with one key go to one
    /// partition). Unset: no key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Which partition each record goes to (default `default`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partitioner: Option<KafkaPartitioner>,
    /// Delivery guarantee (default at-least-once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<Delivery>,
    /// With exactly-once: the start of every transactional id this sink uses
    /// (`<prefix>-<subtask>-<slot>`); must be unique per job on a Kafka cluster.
    /// Default `strom-<sink name>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transactional_id_prefix: Option<String>,
    /// Client properties passed to librdkafka (see the source's).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: BTreeMap<String, String>,
}

impl KafkaSink {
    /// The delivery guarantee in force.
    pub fn delivery(&self) -> Delivery {
        self.delivery.unwrap_or(Delivery::AtLeastOnce)
    }
}

/// Client properties that the engine sets itself: a spec that passes one is refused, so
/// the guarantee the spec names is the one that holds.
pub const RESERVED_PROPERTIES: &[&str] = &[
    "bootstrap.servers",
    "group.id",
    "enable.auto.commit",
    "enable.auto.offset.store",
    "transactional.id",
    "enable.idempotence",
    "statistics.interval.ms",
];

/// Problems with a property list, as (key, reason).
pub(crate) fn property_problems(properties: &BTreeMap<String, String>) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (k, v) in properties {
        if RESERVED_PROPERTIES.contains(&k.as_str()) {
            out.push((
                k.clone(),
                "is set by the engine (use the spec's own field) and cannot be overridden".into(),
            ));
        } else if k.is_empty()
            || !k
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_')
        {
            out.push((k.clone(), "is not a client property name".into()));
        } else if v.starts_with("${") && !(v.ends_with('}') && v.len() > 3) {
            out.push((
                k.clone(),
                "an environment reference is written ${NAME}".into(),
            ));
        }
    }
    out
}

fn check_common(
    bootstrap_servers: &str,
    properties: &BTreeMap<String, String>,
    path: &str,
    fail: &mut impl FnMut(String, String),
) {
    if bootstrap_servers.split(',').any(|s| {
        let s = s.trim();
        s.rsplit_once(':')
            .is_none_or(|(host, port)| host.is_empty() || port.parse::<u16>().is_err())
    }) {
        fail(
            format!("{path}.bootstrap_servers"),
            format!("{bootstrap_servers:?} is not a comma-separated list of host:port"),
        );
    }
    for (key, reason) in property_problems(properties) {
        fail(format!("{path}.properties.{key}"), reason);
    }
}

/// Checks a Kafka source (`path` is its `kafka` field).
pub(crate) fn check_source(
    k: &KafkaSource,
    s: &crate::SourceSpec,
    path: &str,
    fail: &mut impl FnMut(String, String),
) {
    check_common(&k.bootstrap_servers, &k.properties, path, fail);
    match &k.topic_pattern {
        None if k.topics.is_empty() => fail(
            format!("{path}.topics"),
            "name at least one topic, or a topic_pattern".into(),
        ),
        Some(p) => {
            if let Err(e) = whole_topic_pattern(p) {
                fail(
                    format!("{path}.topic_pattern"),
                    format!("{p:?} is not a regular expression: {e}"),
                );
            }
        }
        None => {}
    }
    if let Some(d) = &k.partition_discovery_interval
        && d.to_std().is_err()
    {
        fail(
            format!("{path}.partition_discovery_interval"),
            format!("{d} is not a duration"),
        );
    }
    for (i, t) in k.topics.iter().enumerate() {
        if !valid_topic(t) {
            fail(
                format!("{path}.topics[{i}]"),
                format!("{t:?} is not a Kafka topic name (1–249 of a-z A-Z 0-9 . _ -)"),
            );
        }
    }
    match (k.start, k.start_timestamp) {
        (Some(KafkaStart::Timestamp), None) => fail(
            format!("{path}.start_timestamp"),
            "start: timestamp needs start_timestamp (epoch milliseconds)".into(),
        ),
        (Some(KafkaStart::Timestamp), Some(t)) if t < 0 => fail(
            format!("{path}.start_timestamp"),
            "must not be negative".into(),
        ),
        (start, Some(_)) if start != Some(KafkaStart::Timestamp) => fail(
            format!("{path}.start_timestamp"),
            "is only read with start: timestamp".into(),
        ),
        _ => {}
    }
    match (k.bad_records, &k.dead_letter_topic) {
        (Some(BadRecords::DeadLetter), None) => fail(
            format!("{path}.dead_letter_topic"),
            "bad_records: dead-letter needs the topic to write bad records to".into(),
        ),
        (Some(BadRecords::DeadLetter), Some(t)) if !valid_topic(t) => fail(
            format!("{path}.dead_letter_topic"),
            format!("{t:?} is not a Kafka topic name (1–249 of a-z A-Z 0-9 . _ -)"),
        ),
        (Some(BadRecords::DeadLetter), Some(t)) if k.topic_filter().matches(t) => fail(
            format!("{path}.dead_letter_topic"),
            format!("{t:?} is a topic this source reads: its bad records would come back"),
        ),
        (bad, Some(_)) if bad != Some(BadRecords::DeadLetter) => fail(
            format!("{path}.dead_letter_topic"),
            "is only written with bad_records: dead-letter".into(),
        ),
        _ => {}
    }
    if k.max_records_per_second == Some(0) {
        fail(
            format!("{path}.max_records_per_second"),
            "must be at least 1 (leave it unset for no limit)".into(),
        );
    }
    let value_columns: Vec<&crate::FieldSpec> =
        s.schema.iter().filter(|f| f.metadata.is_none()).collect();
    if k.format == KafkaFormat::Raw
        && (value_columns.len() != 1 || value_columns[0].type_ != crate::FieldType::String)
    {
        fail(
            format!("{path}.format"),
            "raw reads each value into one STRING column: declare exactly that (besides \
             metadata columns)"
                .into(),
        );
    }
}

/// Checks a Kafka sink (`path` is its `kafka` field).
pub(crate) fn check_sink(k: &KafkaSink, path: &str, fail: &mut impl FnMut(String, String)) {
    check_common(&k.bootstrap_servers, &k.properties, path, fail);
    if !valid_topic(&k.topic) {
        fail(
            format!("{path}.topic"),
            format!(
                "{:?} is not a Kafka topic name (1–249 of a-z A-Z 0-9 . _ -)",
                k.topic
            ),
        );
    }
    if let Some(p) = &k.transactional_id_prefix
        && (p.is_empty() || p.len() > 200)
    {
        fail(
            format!("{path}.transactional_id_prefix"),
            "must be 1 to 200 characters".into(),
        );
    }
}

/// Kafka's own rule for topic names.
pub fn valid_topic(t: &str) -> bool {
    (1..=249).contains(&t.len())
        && t != "."
        && t != ".."
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}
