//! Columns of a Kafka source read from each record's metadata (a field's `metadata:`).

use serde::{Deserialize, Serialize};

/// Where a Kafka source column comes from when not from the record's value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum KafkaMetadata {
    /// The record's key, as UTF-8 text.
    Key,
    /// The topic it was read from.
    Topic,
    /// Its partition.
    Partition,
    /// Its offset.
    Offset,
    /// Its timestamp (epoch milliseconds).
    Timestamp,
    /// The value of its header with this name, as UTF-8 text.
    Header(String),
}

impl TryFrom<String> for KafkaMetadata {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        Ok(match s.as_str() {
            "key" => KafkaMetadata::Key,
            "topic" => KafkaMetadata::Topic,
            "partition" => KafkaMetadata::Partition,
            "offset" => KafkaMetadata::Offset,
            "timestamp" => KafkaMetadata::Timestamp,
            _ => match s.strip_prefix("header:") {
                Some(name) if !name.is_empty() => KafkaMetadata::Header(name.to_owned()),
                _ => {
                    return Err(format!(
                        "{s:?} is not record metadata (key, topic, partition, offset, \
                         timestamp or header:<name>)"
                    ));
                }
            },
        })
    }
}

impl From<KafkaMetadata> for String {
    fn from(m: KafkaMetadata) -> String {
        match m {
            KafkaMetadata::Key => "key".into(),
            KafkaMetadata::Topic => "topic".into(),
            KafkaMetadata::Partition => "partition".into(),
            KafkaMetadata::Offset => "offset".into(),
            KafkaMetadata::Timestamp => "timestamp".into(),
            KafkaMetadata::Header(name) => format!("header:{name}"),
        }
    }
}

impl KafkaMetadata {
    /// Whether a column of type `t` can hold it.
    pub fn fits(&self, t: crate::FieldType) -> bool {
        use crate::FieldType::{Bigint, Int, String};
        match self {
            KafkaMetadata::Key | KafkaMetadata::Topic | KafkaMetadata::Header(_) => t == String,
            KafkaMetadata::Partition => matches!(t, Int | Bigint),
            KafkaMetadata::Offset | KafkaMetadata::Timestamp => t == Bigint,
        }
    }
}
