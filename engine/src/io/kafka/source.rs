//! A Kafka source subtask: the partitions it owns ([`partition_owner`]), read from the
//! offsets its checkpoint holds (or from where the spec says to start), decoded into rows
//! with each row's partition, and each partition's event-time high mark for watermarks
//! combined as Flink combines them: the minimum over the subtask's partitions, leaving out
//! partitions that are idle or, in bounded mode, finished.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use strom_protocol::PartitionLag;

use super::bad_records::BadRecordPolicy;
use super::codec::Decoder;
use super::dead_letter::BadRecord;
use super::lag::{Ends, STATISTICS_MS};
use super::metadata::{Extra, MetadataColumns, Origin};
use super::{BROKER_TIMEOUT, client_config, partition_owner};
use crate::batch::SchemaRef;
use crate::spec::{KafkaMetadata, KafkaSource, KafkaStart, TopicFilter};

mod discovery;
mod watermarks;

/// Where a source subtask is, per partition it owns (saved in checkpoints, format 1: the
/// field order is the encoding).
#[derive(Debug, Default, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct KafkaPosition {
    /// Every partition the subtask owned.
    pub partitions: Vec<PartitionPosition>,
}

/// One partition's place.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PartitionPosition {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// The next offset to read.
    pub next: i64,
    /// Bounded mode: the offset it stops at (fixed when the job first started).
    pub stop: Option<i64>,
    /// The highest event time read from it.
    pub max_seen: Option<i64>,
}

/// A partition being read.
#[derive(Debug)]
struct Partition {
    at: PartitionPosition,
    finished: bool,
    last_data: Instant,
}

/// Rows read, with the index (into the reader's partitions) of each row's partition.
pub struct Polled {
    /// The rows.
    pub batch: RecordBatch,
    /// Per row, its partition.
    pub partition_of: Vec<u32>,
}

/// The Kafka reader of one source subtask.
pub struct KafkaReader {
    consumer: BaseConsumer<Ends>,
    partitions: Vec<Partition>,
    /// Partitions of the source's topics, over all subtasks.
    total_partitions: usize,
    index: HashMap<(String, i32), usize>,
    decoder: Decoder,
    columns: MetadataColumns,
    /// What happens to records that do not decode.
    pub bad: BadRecordPolicy,
    bounded: bool,
    /// The last error the client reported (it retries on its own) and when.
    last_error: Option<(String, Instant)>,
    /// Which topics it reads, how often it looks for new partitions, and when it last did.
    filter: TopicFilter,
    discover_every: Option<Duration>,
    discovered_at: Instant,
}

fn kafka(context: String, e: rdkafka::error::KafkaError) -> ArrowError {
    ArrowError::ExternalError(format!("{context}: {e}").into())
}

/// Why a reader could not open.
#[derive(Debug)]
pub enum OpenFailure {
    /// The spec cannot work as written (a property's environment variable is missing, a
    /// client property is refused): retrying cannot help.
    Invalid(ArrowError),
    /// The brokers cannot be reached or a topic does not exist (yet): worth retrying.
    Unavailable(String),
}

impl From<ArrowError> for OpenFailure {
    fn from(e: ArrowError) -> Self {
        OpenFailure::Unavailable(e.to_string())
    }
}

impl KafkaReader {
    /// Opens subtask `subtask` of `parallelism` of source `name`, resuming the partitions
    /// that `restored` (every saved position of the source) holds.
    pub fn open(
        spec: &KafkaSource,
        name: &str,
        schema: SchemaRef,
        metadata: &[Option<KafkaMetadata>],
        subtask: usize,
        parallelism: usize,
        restored: &[KafkaPosition],
    ) -> Result<KafkaReader, OpenFailure> {
        let group = spec
            .group_id
            .clone()
            .unwrap_or_else(|| format!("strom-{name}"));
        let config = client_config(
            &spec.bootstrap_servers,
            &spec.properties,
            &[
                ("group.id", group.as_str()),
                ("enable.auto.commit", "false"),
                ("enable.auto.offset.store", "false"),
                ("enable.partition.eof", "false"),
                ("statistics.interval.ms", STATISTICS_MS),
            ],
        )
        .map_err(|e| OpenFailure::Invalid(ArrowError::ExternalError(e.into())))?;
        let read_committed = spec
            .properties
            .get("isolation.level")
            .is_some_and(|l| l == "read_committed");
        let consumer: BaseConsumer<Ends> = config
            .create_with_context(Ends::new(read_committed))
            .map_err(|e| {
                OpenFailure::Invalid(kafka(
                    format!("cannot create a Kafka consumer for {name}"),
                    e,
                ))
            })?;
        let saved: HashMap<(String, i32), &PartitionPosition> = restored
            .iter()
            .flat_map(|p| p.partitions.iter())
            .map(|p| ((p.topic.clone(), p.partition), p))
            .collect();
        let mut partitions = Vec::new();
        let mut total_partitions = 0;
        let filter = spec.topic_filter();
        for (topic, ids) in discovery::list(&consumer, spec, &filter)? {
            let topic = &topic;
            total_partitions += ids.len();
            for q in ids {
                if partition_owner(topic, q, parallelism) != subtask {
                    continue;
                }
                let at = match saved.get(&(topic.clone(), q)) {
                    Some(p) => (*p).clone(),
                    None => {
                        let (low, high) = consumer
                            .fetch_watermarks(topic, q, BROKER_TIMEOUT)
                            .map_err(|e| {
                                kafka(format!("cannot read the offsets of {topic}/{q}"), e)
                            })?;
                        let next = start_offset(&consumer, spec, &group, topic, q, low, high)?;
                        PartitionPosition {
                            topic: topic.clone(),
                            partition: q,
                            next,
                            stop: (spec.bounded == Some(true)).then_some(high),
                            max_seen: None,
                        }
                    }
                };
                let finished = at.stop.is_some_and(|s| at.next >= s);
                partitions.push(Partition {
                    at,
                    finished,
                    last_data: Instant::now(),
                });
            }
        }
        partitions
            .sort_by(|a, b| (&a.at.topic, a.at.partition).cmp(&(&b.at.topic, b.at.partition)));
        let mut tpl = TopicPartitionList::new();
        for p in partitions.iter().filter(|p| !p.finished) {
            tpl.add_partition_offset(&p.at.topic, p.at.partition, Offset::Offset(p.at.next))
                .map_err(|e| kafka(format!("cannot read {}/{}", p.at.topic, p.at.partition), e))?;
        }
        consumer
            .assign(&tpl)
            .map_err(|e| kafka(format!("cannot assign the partitions of {name}"), e))?;
        let index = partitions
            .iter()
            .enumerate()
            .map(|(i, p)| ((p.at.topic.clone(), p.at.partition), i))
            .collect();
        let bad = BadRecordPolicy::open(spec, name).map_err(OpenFailure::Invalid)?;
        let columns = MetadataColumns::new(schema, metadata, bad.wants_keys());
        Ok(KafkaReader {
            consumer,
            partitions,
            total_partitions,
            index,
            filter,
            discover_every: spec.discovery_interval(),
            discovered_at: Instant::now(),
            decoder: Decoder::new(spec.format, columns.value_schema()),
            columns,
            bad,
            bounded: spec.bounded == Some(true),
            last_error: None,
        })
    }

    /// What the reader waits for, for the job's status: the client's last error, until
    /// records flow again or it has been quiet for 30 s.
    pub fn waiting(&self) -> Option<String> {
        self.last_error
            .as_ref()
            .filter(|(_, at)| at.elapsed() < Duration::from_secs(30))
            .map(|(e, _)| format!("the Kafka client reports: {e} (it retries on its own)"))
    }

    /// How many partitions this subtask reads.
    pub fn partition_count(&self) -> usize {
        self.partitions.len()
    }

    /// How many partitions the source's topics have, over all subtasks.
    pub fn total_partitions(&self) -> usize {
        self.total_partitions
    }

    /// Each partition this subtask reads and how far behind its end (in bounded mode: its
    /// stop offset) it is, where known.
    pub fn lag(&self) -> Vec<PartitionLag> {
        let ends = self.consumer.context();
        self.partitions
            .iter()
            .map(|p| {
                let end = p.at.stop.or_else(|| ends.end(&p.at.topic, p.at.partition));
                PartitionLag {
                    topic: p.at.topic.clone(),
                    partition: p.at.partition,
                    offset: p.at.next,
                    pending_records: end.map(|e| e.saturating_sub(p.at.next).max(0) as u64),
                }
            })
            .collect()
    }

    /// Commits `position` (a completed checkpoint's) to the consumer group, without
    /// waiting: for tools that watch the group's lag; the checkpoint stays the truth.
    pub fn commit_to_group(&self, position: &KafkaPosition) -> Result<(), ArrowError> {
        let mut tpl = TopicPartitionList::new();
        for p in &position.partitions {
            tpl.add_partition_offset(&p.topic, p.partition, Offset::Offset(p.next))
                .map_err(|e| kafka(format!("cannot commit {}/{}", p.topic, p.partition), e))?;
        }
        if tpl.count() == 0 {
            return Ok(());
        }
        self.consumer
            .commit(&tpl, rdkafka::consumer::CommitMode::Async)
            .map_err(|e| kafka("cannot commit offsets to the consumer group".into(), e))
    }

    /// Whether a bounded source has read everything up to its stop offsets.
    pub fn finished(&self) -> bool {
        self.bounded && self.partitions.iter().all(|p| p.finished)
    }

    /// The position of every partition (for a checkpoint).
    pub fn position(&self) -> KafkaPosition {
        KafkaPosition {
            partitions: self.partitions.iter().map(|p| p.at.clone()).collect(),
        }
    }

    /// Up to `max_rows` records, waiting at most `wait` for the first; None if none came.
    /// `arrived` is called once the first record is in hand: the time before it was spent
    /// waiting, the time after it working (the task's busy-time accounting).
    pub fn poll(
        &mut self,
        max_rows: usize,
        wait: Duration,
        mut arrived: impl FnMut(),
    ) -> Result<Option<Polled>, ArrowError> {
        let mut values: Vec<u8> = Vec::new();
        let mut ends: Vec<usize> = Vec::new();
        // Per record: partition index, offset; and its key, if bad ones are dead-lettered.
        let mut origin: Vec<(u32, i64)> = Vec::new();
        // Per record, what the metadata columns and dead letters need beyond the value.
        let mut extras: Vec<Extra> = Vec::new();
        let extra = self.columns.reads_metadata() || self.bad.wants_keys();
        let mut timeout = wait;
        while origin.len() < max_rows {
            let Some(polled) = self.consumer.poll(timeout) else {
                break;
            };
            if !timeout.is_zero() {
                arrived();
            }
            timeout = Duration::ZERO;
            let message = match polled {
                Ok(m) => m,
                Err(e) => {
                    // The client retries on its own (brokers away, leaders moving); the
                    // error is shown in the job's status until records flow again.
                    tracing::warn!(error = %e, "the Kafka consumer reported an error");
                    self.last_error = Some((e.to_string(), Instant::now()));
                    continue;
                }
            };
            let Some(&i) = self
                .index
                .get(&(message.topic().to_owned(), message.partition()))
            else {
                continue;
            };
            let p = &mut self.partitions[i];
            let offset = message.offset();
            if p.finished || offset < p.at.next || p.at.stop.is_some_and(|s| offset >= s) {
                continue;
            }
            p.at.next = offset + 1;
            p.last_data = Instant::now();
            if p.at.stop.is_some_and(|s| p.at.next >= s) {
                p.finished = true;
            }
            if extra {
                extras.push(self.columns.extra(&message));
            }
            match message.payload() {
                Some(v) => values.extend_from_slice(v),
                None => {
                    // A tombstone: no value to decode (a bad record under the policy).
                    ends.push(usize::MAX);
                    origin.push((i as u32, offset));
                    continue;
                }
            }
            ends.push(values.len());
            origin.push((i as u32, offset));
        }
        self.last_error = if origin.is_empty() {
            self.last_error.take()
        } else {
            None
        };
        if origin.is_empty() {
            self.check_positions();
            return Ok(None);
        }
        let mut slices: Vec<&[u8]> = Vec::with_capacity(ends.len());
        let mut start = 0;
        let mut tombstones = false;
        for &end in &ends {
            if end == usize::MAX {
                slices.push(&[]);
                tombstones = true;
            } else {
                slices.push(&values[start..end]);
                start = end;
            }
        }
        let lacking = self.columns.reads_metadata()
            && extras.iter().any(|e| self.columns.missing(e).is_some());
        let decoded = if tombstones || lacking {
            Err(ArrowError::ParseError("a record has no value".into()))
        } else {
            self.decoder.decode(&slices)
        };
        let batch = match decoded {
            Ok(b) => b,
            Err(_) => {
                // Find the records that do not decode, and apply the policy to them.
                let mut good = Vec::new();
                let mut kept = Vec::new();
                for (r, value) in slices.iter().enumerate() {
                    let lacks = extras.get(r).and_then(|e| self.columns.missing(e));
                    let outcome = match lacks {
                        _ if ends[r] == usize::MAX => {
                            Err("the record has no value (a tombstone)".to_owned())
                        }
                        Some(reason) => Err(reason),
                        None => self.decoder.decode_one(value),
                    };
                    match outcome {
                        Ok(b) => {
                            good.push(b);
                            kept.push(r);
                        }
                        Err(reason) => {
                            let (i, offset) = origin[r];
                            let p = &self.partitions[i as usize].at;
                            self.bad.refuse(&BadRecord {
                                topic: &p.topic,
                                partition: p.partition,
                                offset,
                                key: extras.get(r).and_then(|e| e.key.as_deref()),
                                value,
                                reason: &reason,
                            })?;
                        }
                    }
                }
                origin = kept.iter().map(|&r| origin[r]).collect();
                if !extras.is_empty() {
                    let mut all: Vec<Option<Extra>> = extras.into_iter().map(Some).collect();
                    extras = kept.iter().filter_map(|&r| all[r].take()).collect();
                }
                if good.is_empty() {
                    return Ok(None);
                }
                arrow::compute::concat_batches(&good[0].schema(), &good)?
            }
        };
        let batch = if self.columns.reads_metadata() {
            let origins: Vec<Origin<'_>> = origin
                .iter()
                .map(|&(i, offset)| {
                    let p = &self.partitions[i as usize].at;
                    Origin {
                        topic: &p.topic,
                        partition: p.partition,
                        offset,
                    }
                })
                .collect();
            self.columns.assemble(batch, &origins, &extras)?
        } else {
            batch
        };
        Ok(Some(Polled {
            batch,
            partition_of: origin.iter().map(|(i, _)| *i).collect(),
        }))
    }

    /// A bounded partition whose last records are transaction markers (never delivered)
    /// is finished once the client's position passes its stop offset.
    fn check_positions(&mut self) {
        if !self.bounded || self.partitions.iter().all(|p| p.finished) {
            return;
        }
        let Ok(positions) = self.consumer.position() else {
            return;
        };
        for e in positions.elements() {
            let Some(&i) = self.index.get(&(e.topic().to_owned(), e.partition())) else {
                continue;
            };
            let p = &mut self.partitions[i];
            if let Offset::Offset(o) = e.offset()
                && o > p.at.next
            {
                p.at.next = o;
            }
            if p.at.stop.is_some_and(|s| p.at.next >= s) {
                p.finished = true;
            }
        }
    }
}

/// Where a partition the checkpoint does not hold starts.
fn start_offset(
    consumer: &BaseConsumer<Ends>,
    spec: &KafkaSource,
    group: &str,
    topic: &str,
    q: i32,
    low: i64,
    high: i64,
) -> Result<i64, ArrowError> {
    let mut tpl = TopicPartitionList::new();
    Ok(match spec.start.unwrap_or(KafkaStart::Earliest) {
        KafkaStart::Earliest => low,
        KafkaStart::Latest => high,
        KafkaStart::Timestamp => {
            let t = spec.start_timestamp.unwrap_or(0);
            tpl.add_partition_offset(topic, q, Offset::Offset(t))
                .map_err(|e| kafka(format!("{topic}/{q}"), e))?;
            let found = consumer
                .offsets_for_times(tpl, BROKER_TIMEOUT)
                .map_err(|e| kafka(format!("cannot find the offset at {t} in {topic}/{q}"), e))?;
            match found.elements().first().map(|e| e.offset()) {
                Some(Offset::Offset(o)) => o,
                _ => high,
            }
        }
        KafkaStart::GroupOffsets => {
            tpl.add_partition(topic, q);
            let found = consumer
                .committed_offsets(tpl, BROKER_TIMEOUT)
                .map_err(|e| {
                    kafka(
                        format!("cannot read group {group}'s offsets of {topic}/{q}"),
                        e,
                    )
                })?;
            match found.elements().first().map(|e| e.offset()) {
                Some(Offset::Offset(o)) => o.clamp(low, high),
                _ => low,
            }
        }
    })
}
