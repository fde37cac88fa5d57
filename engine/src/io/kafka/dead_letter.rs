//! The dead-letter topic of a Kafka source (`bad_records: dead-letter`): each record that
//! does not decode is written there as it was (key and value), with headers saying where
//! it came from and why it was refused, as Kafka Connect's dead-letter queue does.
//!
//! Delivery is at least once: the source flushes its dead letters before it acknowledges a
//! checkpoint barrier, so a checkpoint past a bad record's offset means the record is in
//! the dead-letter topic. A restore may write the bad records after its checkpoint again.

use std::sync::Mutex;

use arrow::error::ArrowError;
use rdkafka::ClientContext;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};

use super::{BROKER_TIMEOUT, client_config};
use crate::spec::KafkaSource;

/// Headers of a dead letter.
pub mod header {
    /// The job's source that refused it.
    pub const SOURCE: &str = "strom.source";
    /// The topic it was read from.
    pub const TOPIC: &str = "strom.topic";
    /// Its partition there (decimal text).
    pub const PARTITION: &str = "strom.partition";
    /// Its offset there (decimal text).
    pub const OFFSET: &str = "strom.offset";
    /// Why it could not be read.
    pub const ERROR: &str = "strom.error";
}

/// Remembers the first record the brokers refused.
#[derive(Default)]
struct Refusals(Mutex<Option<String>>);

impl ClientContext for Refusals {}

impl ProducerContext for Refusals {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result {
            let mut first = self.0.lock().expect("refusals");
            if first.is_none() {
                *first = Some(e.to_string());
            }
        }
    }
}

/// A record that did not decode: where it was and what it held.
pub struct BadRecord<'a> {
    /// Topic read.
    pub topic: &'a str,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Its key, if it had one.
    pub key: Option<&'a [u8]>,
    /// Its value (empty for a tombstone).
    pub value: &'a [u8],
    /// Why it could not be read.
    pub reason: &'a str,
}

/// The writer of one source subtask's dead letters.
pub struct DeadLetters {
    producer: ThreadedProducer<Refusals>,
    topic: String,
    source: String,
    /// Records written so far (counted when handed to the client).
    pub written: u64,
}

impl DeadLetters {
    /// A writer to `topic` on the source's brokers, with its client properties (security).
    pub fn open(spec: &KafkaSource, source: &str, topic: &str) -> Result<Self, ArrowError> {
        let producer = client_config(
            &spec.bootstrap_servers,
            &spec.properties,
            &[("enable.idempotence", "true"), ("acks", "all")],
        )
        .map_err(|e| ArrowError::ExternalError(e.into()))?
        .create_with_context(Refusals::default())
        .map_err(|e| {
            ArrowError::ExternalError(
                format!("cannot create the producer for dead-letter topic {topic}: {e}").into(),
            )
        })?;
        Ok(DeadLetters {
            producer,
            topic: topic.to_owned(),
            source: source.to_owned(),
            written: 0,
        })
    }

    /// Hands `bad` to the client (it is on the brokers after the next [`Self::flush`]).
    pub fn send(&mut self, bad: &BadRecord<'_>) -> Result<(), ArrowError> {
        let (partition, offset) = (bad.partition.to_string(), bad.offset.to_string());
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: header::SOURCE,
                value: Some(&self.source),
            })
            .insert(Header {
                key: header::TOPIC,
                value: Some(bad.topic),
            })
            .insert(Header {
                key: header::PARTITION,
                value: Some(&partition),
            })
            .insert(Header {
                key: header::OFFSET,
                value: Some(&offset),
            })
            .insert(Header {
                key: header::ERROR,
                value: Some(bad.reason),
            });
        let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(&self.topic)
            .payload(bad.value)
            .headers(headers);
        if let Some(key) = bad.key {
            record = record.key(key);
        }
        loop {
            match self.producer.send(record) {
                Ok(()) => break,
                Err((
                    rdkafka::error::KafkaError::MessageProduction(
                        rdkafka::types::RDKafkaErrorCode::QueueFull,
                    ),
                    back,
                )) => {
                    // The client's queue is full: wait for deliveries.
                    record = back;
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err((e, _)) => {
                    return Err(ArrowError::ExternalError(
                        format!("cannot write to dead-letter topic {}: {e}", self.topic).into(),
                    ));
                }
            }
        }
        self.written += 1;
        Ok(())
    }

    /// Waits until every dead letter so far is on the brokers; an error if one was refused
    /// (the checkpoint must not pass a bad record that is nowhere).
    pub fn flush(&self) -> Result<(), ArrowError> {
        if self.written == 0 {
            return Ok(());
        }
        self.producer.flush(BROKER_TIMEOUT).map_err(|e| {
            ArrowError::ExternalError(
                format!("cannot flush the dead letters to {}: {e}", self.topic).into(),
            )
        })?;
        if let Some(refused) = self.producer.context().0.lock().expect("refusals").take() {
            return Err(ArrowError::ExternalError(
                format!(
                    "a bad record could not be written to dead-letter topic {}: {refused}",
                    self.topic
                )
                .into(),
            ));
        }
        Ok(())
    }
}
