//! Columns of a Kafka source read from each record's metadata rather than its value (a
//! field's `metadata:`, as Flink's `METADATA FROM`): the key, topic, partition, offset,
//! timestamp or a header. The value decoder reads the other columns; [`MetadataColumns`]
//! puts the metadata columns in their places.

use std::sync::Arc;

use arrow::array::{ArrayRef, Int32Array, Int64Array, StringArray};
use arrow::datatypes::{DataType, Schema};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use rdkafka::message::{BorrowedMessage, Headers, Message};

use crate::batch::SchemaRef;
use crate::spec::KafkaMetadata;

/// What one record carries besides its value, as far as the columns (or the dead-letter
/// topic, which keeps keys) need it.
#[derive(Debug, Default)]
pub struct Extra {
    /// The key, if asked for and present.
    pub key: Option<Vec<u8>>,
    /// The timestamp (epoch ms), if asked for and present.
    pub timestamp: Option<i64>,
    /// The headers asked for, in column order (`None`: absent).
    pub headers: Vec<Option<Vec<u8>>>,
}

/// Where a row of a polled batch came from.
pub struct Origin<'a> {
    /// Topic.
    pub topic: &'a str,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
}

/// A source's columns: which come from the value, which from metadata.
pub struct MetadataColumns {
    full: SchemaRef,
    value: SchemaRef,
    metadata: Vec<Option<KafkaMetadata>>,
    /// Header names asked for, in column order.
    header_names: Vec<String>,
    keys: bool,
}

impl MetadataColumns {
    /// The columns of `full`, the `i`-th from `metadata[i]` where set (else the value).
    /// `keys`: keep keys even if no column reads them (for dead letters).
    pub fn new(full: SchemaRef, metadata: &[Option<KafkaMetadata>], keys: bool) -> Self {
        let value = Arc::new(Schema::new(
            full.fields()
                .iter()
                .zip(metadata)
                .filter(|(_, m)| m.is_none())
                .map(|(f, _)| f.clone())
                .collect::<Vec<_>>(),
        ));
        let header_names = metadata
            .iter()
            .filter_map(|m| match m {
                Some(KafkaMetadata::Header(name)) => Some(name.clone()),
                _ => None,
            })
            .collect();
        let keys = keys || metadata.contains(&Some(KafkaMetadata::Key));
        MetadataColumns {
            full,
            value,
            metadata: metadata.to_vec(),
            header_names,
            keys,
        }
    }

    /// The columns the value decoder reads.
    pub fn value_schema(&self) -> SchemaRef {
        self.value.clone()
    }

    /// Whether anything besides the value is read.
    pub fn reads_metadata(&self) -> bool {
        self.metadata.iter().any(Option::is_some)
    }

    /// What `m` carries that is needed (nothing at all if nothing is).
    pub fn extra(&self, m: &BorrowedMessage<'_>) -> Extra {
        let wants_time = self.metadata.contains(&Some(KafkaMetadata::Timestamp));
        Extra {
            key: self.keys.then(|| m.key().map(<[u8]>::to_vec)).flatten(),
            timestamp: wants_time.then(|| m.timestamp().to_millis()).flatten(),
            headers: self
                .header_names
                .iter()
                .map(|name| {
                    m.headers().and_then(|hs| {
                        hs.iter()
                            .filter(|h| h.key == name)
                            .last()
                            .and_then(|h| h.value.map(<[u8]>::to_vec))
                    })
                })
                .collect(),
        }
    }

    /// Why a record's metadata cannot fill its columns (a key or header it lacks, or one
    /// that is not UTF-8 text), if it cannot.
    pub fn missing(&self, extra: &Extra) -> Option<String> {
        let mut header = 0;
        for m in self.metadata.iter().flatten() {
            match m {
                KafkaMetadata::Key => match &extra.key {
                    None => return Some("the record has no key".into()),
                    Some(k) if std::str::from_utf8(k).is_err() => {
                        return Some("the record's key is not UTF-8 text".into());
                    }
                    _ => {}
                },
                KafkaMetadata::Timestamp if extra.timestamp.is_none() => {
                    return Some("the record has no timestamp".into());
                }
                KafkaMetadata::Header(name) => {
                    match &extra.headers[header] {
                        None => return Some(format!("the record has no header {name:?}")),
                        Some(v) if std::str::from_utf8(v).is_err() => {
                            return Some(format!("the record's header {name:?} is not UTF-8 text"));
                        }
                        _ => {}
                    }
                    header += 1;
                }
                _ => {}
            }
        }
        None
    }

    /// The full rows: `values` (the value columns) with the metadata columns put in their
    /// places, row `r` from `origins[r]` and `extras[r]` (each checked by [`Self::missing`]).
    pub fn assemble(
        &self,
        values: RecordBatch,
        origins: &[Origin<'_>],
        extras: &[Extra],
    ) -> Result<RecordBatch, ArrowError> {
        if !self.reads_metadata() {
            return Ok(values);
        }
        fn text(bytes: Option<&Vec<u8>>) -> &str {
            bytes.map_or("", |b| std::str::from_utf8(b).unwrap_or_default())
        }
        let mut value_columns = values.columns().iter();
        let mut header = 0;
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.metadata.len());
        for (field, m) in self.full.fields().iter().zip(&self.metadata) {
            let column: ArrayRef = match m {
                None => value_columns
                    .next()
                    .ok_or_else(|| ArrowError::SchemaError("a value column is missing".into()))?
                    .clone(),
                Some(KafkaMetadata::Key) => Arc::new(StringArray::from_iter_values(
                    extras.iter().map(|e| text(e.key.as_ref())),
                )),
                Some(KafkaMetadata::Topic) => Arc::new(StringArray::from_iter_values(
                    origins.iter().map(|o| o.topic),
                )),
                Some(KafkaMetadata::Partition) => match field.data_type() {
                    DataType::Int32 => Arc::new(Int32Array::from_iter_values(
                        origins.iter().map(|o| o.partition),
                    )),
                    _ => Arc::new(Int64Array::from_iter_values(
                        origins.iter().map(|o| i64::from(o.partition)),
                    )),
                },
                Some(KafkaMetadata::Offset) => Arc::new(Int64Array::from_iter_values(
                    origins.iter().map(|o| o.offset),
                )),
                Some(KafkaMetadata::Timestamp) => Arc::new(Int64Array::from_iter_values(
                    extras.iter().map(|e| e.timestamp.unwrap_or_default()),
                )),
                Some(KafkaMetadata::Header(_)) => {
                    let i = header;
                    header += 1;
                    Arc::new(StringArray::from_iter_values(
                        extras.iter().map(|e| text(e.headers[i].as_ref())),
                    ))
                }
            };
            columns.push(column);
        }
        RecordBatch::try_new(self.full.clone(), columns)
    }
}
