//! Which topics and partitions a Kafka source reads: at start, the named topics (each must
//! exist) and those its pattern matches (at least one); while running, every
//! `partition_discovery_interval`, partitions added since and, with a pattern, new topics
//! (read from their first record, as Flink reads newly discovered partitions).

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::metadata::Metadata;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaRespErr;

use super::{KafkaReader, OpenFailure, Partition, PartitionPosition, kafka};
use crate::io::kafka::lag::Ends;
use crate::io::kafka::{BROKER_TIMEOUT, METADATA_TIMEOUT, partition_owner};
use crate::spec::{KafkaSource, TopicFilter};

/// The source's topics and their partitions, in topic order; an error if a named topic is
/// missing, no topic matches the pattern, or the brokers cannot be reached.
pub(super) fn list(
    consumer: &BaseConsumer<Ends>,
    spec: &KafkaSource,
    filter: &TopicFilter,
) -> Result<Vec<(String, Vec<i32>)>, OpenFailure> {
    let brokers = &spec.bootstrap_servers;
    let metadata = |topic: Option<&str>| -> Result<Metadata, OpenFailure> {
        consumer
            .fetch_metadata(topic, METADATA_TIMEOUT)
            .map_err(|e| {
                // The client's own report says why (a failed SASL authentication) where the
                // call's error only says the transport failed; it arrives as an error event on
                // the consumer's queue.
                let reported = (0..16).find_map(|_| match consumer.poll(Duration::ZERO) {
                    Some(Err(reported))
                        if reported.rdkafka_error_code() != e.rdkafka_error_code() =>
                    {
                        Some(reported.to_string())
                    }
                    _ => None,
                });
                let why = match reported {
                    Some(reported) => format!("{reported} ({e})"),
                    None => e.to_string(),
                };
                let what = topic.map_or("the topics".to_owned(), |t| format!("topic {t}"));
                OpenFailure::Unavailable(format!(
                    "cannot read the metadata of {what} from {brokers}: {why}"
                ))
            })
    };
    let mut found: Vec<(String, Vec<i32>)> = Vec::new();
    for topic in filter.named() {
        let meta = metadata(Some(topic))?;
        let why = match meta.topics().iter().find(|t| t.name() == topic) {
            Some(t) if t.error().is_none() && !t.partitions().is_empty() => {
                found.push((
                    topic.clone(),
                    t.partitions().iter().map(|p| p.id()).collect(),
                ));
                continue;
            }
            Some(t) => match t.error() {
                None => "it has no partitions".to_owned(),
                Some(RDKafkaRespErr::RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) => {
                    "it does not exist".to_owned()
                }
                Some(e) => format!("{e:?}"),
            },
            None => "it does not exist".to_owned(),
        };
        return Err(OpenFailure::Unavailable(format!(
            "topic {topic} on {brokers} cannot be read: {why}"
        )));
    }
    if let Some(pattern) = &spec.topic_pattern {
        let meta = metadata(None)?;
        let mut matched: Vec<(String, Vec<i32>)> = meta
            .topics()
            .iter()
            .filter(|t| {
                t.error().is_none()
                    && !t.partitions().is_empty()
                    && filter.matches(t.name())
                    && !filter.named().iter().any(|n| n == t.name())
            })
            .map(|t| {
                (
                    t.name().to_owned(),
                    t.partitions().iter().map(|p| p.id()).collect(),
                )
            })
            .collect();
        if matched.is_empty() && found.is_empty() {
            return Err(OpenFailure::Unavailable(format!(
                "no topic on {brokers} matches the pattern {pattern:?} yet"
            )));
        }
        matched.sort();
        found.extend(matched);
    }
    Ok(found)
}

impl KafkaReader {
    /// Every `partition_discovery_interval`: starts reading the partitions (of its topics,
    /// or of new topics its pattern matches) that appeared since, those this subtask owns,
    /// from their first record. A failed look is logged and tried again next time.
    pub fn discover(&mut self, spec: &KafkaSource, subtask: usize, parallelism: usize) {
        let Some(every) = self.discover_every else {
            return;
        };
        if self.discovered_at.elapsed() < every {
            return;
        }
        self.discovered_at = Instant::now();
        let listed = match list(&self.consumer, spec, &self.filter) {
            Ok(listed) => listed,
            Err(e) => {
                tracing::warn!(error = ?e, "looking for new Kafka partitions failed; trying again later");
                return;
            }
        };
        self.total_partitions = listed.iter().map(|(_, ids)| ids.len()).sum();
        let mut tpl = TopicPartitionList::new();
        for (topic, ids) in listed {
            for q in ids {
                if self.index.contains_key(&(topic.clone(), q))
                    || partition_owner(&topic, q, parallelism) != subtask
                {
                    continue;
                }
                let low = match self.consumer.fetch_watermarks(&topic, q, BROKER_TIMEOUT) {
                    Ok((low, _)) => low,
                    Err(e) => {
                        tracing::warn!(topic, partition = q, error = %e, "cannot read a new partition's offsets; trying again later");
                        continue;
                    }
                };
                if let Err(e) = tpl.add_partition_offset(&topic, q, Offset::Offset(low)) {
                    tracing::warn!(error = %kafka(format!("cannot read {topic}/{q}"), e), "skipping a new partition until the next look");
                    continue;
                }
                tracing::info!(
                    topic,
                    partition = q,
                    from = low,
                    "reading a newly discovered partition"
                );
                self.index.insert((topic.clone(), q), self.partitions.len());
                self.partitions.push(Partition {
                    at: PartitionPosition {
                        topic: topic.clone(),
                        partition: q,
                        next: low,
                        stop: None,
                        max_seen: None,
                    },
                    finished: false,
                    last_data: Instant::now(),
                });
            }
        }
        if tpl.count() > 0
            && let Err(e) = self.consumer.incremental_assign(&tpl)
        {
            tracing::warn!(error = %e, "cannot start reading the new partitions");
        }
    }
}
