//! A Kafka sink subtask: rows encoded ([`Encoder`]) and produced to one topic.
//!
//! - `none`: produced and not waited for.
//! - `at-least-once`: at every checkpoint barrier the producer is flushed and every
//!   delivery must have succeeded, so a completed checkpoint never covers a lost record; a
//!   restore may write the records after it again.
//! - `exactly-once`: the records of one checkpoint interval go into one Kafka transaction;
//!   at the barrier it is flushed and handed to [`Transactions`], and committed when the
//!   checkpoint completes. Transactions run on a pool of producers per subtask,
//!   transactional ids `<prefix>-<subtask>-<slot>` (as Flink's pooled producer): one holds
//!   the open transaction, others wait for their checkpoints to complete, and a committed
//!   one goes back to the pool for a later interval once its checkpoint is marked
//!   committed (see [`Transactions::release`]). A new run fences every slot of its subtask before it writes (and those of
//!   subtasks an earlier, wider run had): whatever an earlier run left open under those ids
//!   is aborted and a zombie of it can no longer write.

use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use rdkafka::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{
    BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer,
};

use super::codec::Encoder;
use super::resume::identity_in_statistics;
use super::transactions::{Transactions, fence};
use super::{BROKER_TIMEOUT, client_config};
use crate::snapshot::Commit;
use crate::spec::{Delivery, KafkaPartitioner, KafkaSink};

/// Collects the outcome of deliveries (the first failure is kept for the next flush) and,
/// for a transactional producer, its producer id and epoch from librdkafka's statistics.
#[derive(Default)]
pub struct Delivered {
    failure: Mutex<Option<String>>,
    identity: Mutex<Option<(i64, i16)>>,
}

impl ClientContext for Delivered {
    fn stats_raw(&self, statistics: &[u8]) {
        if let Some(identity) = identity_in_statistics(statistics) {
            *self.identity.lock().expect("identity") = Some(identity);
        }
    }
}

impl Delivered {
    /// The producer id and epoch, waiting (up to 10 s) for the first statistics after
    /// `InitProducerId` to report them.
    fn identity(&self, id: &str) -> Result<(i64, i16), ArrowError> {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(identity) = *self.identity.lock().expect("identity") {
                return Ok(identity);
            }
            if std::time::Instant::now() > deadline {
                return Err(ArrowError::ExternalError(
                    format!("the producer {id} did not report its producer id within 10 s").into(),
                ));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// How often a transactional producer reports its statistics (its producer id and epoch).
const STATISTICS_MS: &str = "100";

impl ProducerContext for Delivered {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result {
            let mut failure = self.failure.lock().expect("delivery failure");
            if failure.is_none() {
                *failure = Some(e.to_string());
            }
        }
    }
}

/// Transactional ids (slots) per exactly-once subtask, as Flink's default producer pool:
/// one holds the open transaction, the others wait for their checkpoints to complete or are
/// being renewed. A subtask that needs a sixth waits for one to come back; if none does
/// within [`BROKER_TIMEOUT`] (checkpoints keep failing), the job fails, as Flink's does
/// ("too many ongoing snapshots").
pub const POOL_SLOTS: usize = 5;

/// Slots opened when a subtask starts; the others are opened when needed.
const WARM_SLOTS: usize = 2;

/// A pooled producer: its slot and itself.
pub type Pooled = (usize, ThreadedProducer<Delivered>);

fn kafka(context: &str, e: KafkaError) -> ArrowError {
    ArrowError::ExternalError(format!("{context}: {e}").into())
}

/// The producers' configuration of a sink.
pub fn producer_config(spec: &KafkaSink) -> Result<ClientConfig, String> {
    let acks = match spec.delivery() {
        Delivery::None => "1",
        _ => "all",
    };
    let mut ours = vec![("acks", acks), ("partitioner", "murmur2_random")];
    if spec.delivery() == Delivery::ExactlyOnce {
        ours.push(("enable.idempotence", "true"));
        ours.push(("statistics.interval.ms", STATISTICS_MS));
        // A transaction must outlive a restore that commits it: the brokers' default
        // maximum (15 min) rather than librdkafka's 60 s, unless the spec sets one.
        if !spec.properties.contains_key("transaction.timeout.ms") {
            ours.push(("transaction.timeout.ms", "900000"));
        }
    }
    client_config(&spec.bootstrap_servers, &spec.properties, &ours)
}

/// A producer of transactional id `id` (its sink's `config`), ready for a transaction: its
/// `InitProducerId` gives it a new epoch, which fences every earlier holder of the id and
/// aborts what one left open; its producer id and epoch are known, for the checkpoint to
/// record with each transaction (so that a restore can commit one this process could not).
/// Also how a committed producer is renewed when its checkpoint could not be marked
/// committed ([`Transactions::release`]).
pub fn transactional_producer(
    config: &ClientConfig,
    id: &str,
) -> Result<ThreadedProducer<Delivered>, String> {
    let mut config = config.clone();
    config.set("transactional.id", id);
    let producer: ThreadedProducer<Delivered> = config
        .create_with_context(Delivered::default())
        .map_err(|e| format!("cannot create the producer {id}: {e}"))?;
    producer
        .init_transactions(BROKER_TIMEOUT)
        .map_err(|e| format!("cannot start Kafka transactions as {id}: {e}"))?;
    Ok(producer)
}

/// The start of a sink's transactional ids.
pub fn transactional_prefix(spec: &KafkaSink, sink_name: &str) -> String {
    spec.transactional_id_prefix
        .clone()
        .unwrap_or_else(|| format!("strom-{sink_name}"))
}

/// Where a Kafka sink subtask writes.
pub struct KafkaWriter {
    topic: String,
    /// With the fixed partitioner: the one partition this subtask writes.
    partition: Option<i32>,
    encoder: Encoder,
    delivery: Delivery,
    config: ClientConfig,
    /// The producer of `none`/`at-least-once`, or of the open transaction.
    producer: Option<ThreadedProducer<Delivered>>,
    /// Exactly-once: the open transaction's slot; the prefix and subtask of every id;
    /// producers free for a transaction, and those the coordinator gives back after their
    /// commit; how many slots exist.
    open: Option<usize>,
    prefix: String,
    subtask: usize,
    free: Vec<Pooled>,
    returned: Receiver<Pooled>,
    give_back: Sender<Pooled>,
    slots: usize,
    transactions: Arc<Transactions>,
}

impl KafkaWriter {
    /// Subtask `subtask`'s writer; exactly-once transactions go to `transactions` at each
    /// barrier.
    pub fn new(
        spec: &KafkaSink,
        sink_name: &str,
        key: Option<usize>,
        subtask: usize,
        parallelism: usize,
        transactions: Arc<Transactions>,
    ) -> Result<KafkaWriter, ArrowError> {
        let delivery = spec.delivery();
        let config = producer_config(spec).map_err(|e| ArrowError::ExternalError(e.into()))?;
        let prefix = transactional_prefix(spec, sink_name);
        if delivery == Delivery::ExactlyOnce {
            transactions.register_client(&prefix, config.clone());
        }
        let partition = match spec.partitioner {
            Some(KafkaPartitioner::Fixed) => {
                let probe: BaseProducer = config.create().map_err(|e| {
                    kafka(&format!("cannot reach the brokers of {}", spec.topic), e)
                })?;
                let meta = probe
                    .client()
                    .fetch_metadata(Some(&spec.topic), BROKER_TIMEOUT)
                    .map_err(|e| {
                        kafka(
                            &format!("cannot read the metadata of topic {}", spec.topic),
                            e,
                        )
                    })?;
                let count = meta
                    .topics()
                    .iter()
                    .find(|t| t.name() == spec.topic && t.error().is_none())
                    .map_or(0, |t| t.partitions().len());
                if count == 0 {
                    return Err(ArrowError::ExternalError(
                        format!(
                            "topic {} does not exist on {}",
                            spec.topic, spec.bootstrap_servers
                        )
                        .into(),
                    ));
                }
                Some((subtask % count) as i32)
            }
            _ => None,
        };
        let (give_back, returned) = std::sync::mpsc::channel();
        let mut writer = KafkaWriter {
            topic: spec.topic.clone(),
            partition,
            encoder: Encoder::new(spec.format, key),
            delivery,
            config,
            producer: None,
            open: None,
            prefix,
            subtask,
            free: Vec::new(),
            returned,
            give_back,
            slots: 0,
            transactions,
        };
        if delivery == Delivery::ExactlyOnce {
            for _ in 0..WARM_SLOTS {
                let pooled = writer.new_slot()?;
                writer.free.push(pooled);
            }
            writer.fence_earlier_runs(parallelism)?;
        } else {
            writer.producer = Some(writer.create(&writer.config.clone())?);
        }
        Ok(writer)
    }

    /// The transactional id of `slot`.
    fn id(&self, slot: usize) -> String {
        format!("{}-{}-{slot}", self.prefix, self.subtask)
    }

    /// Fences what earlier runs may have left open: this subtask's slots not opened yet,
    /// and every slot of the subtasks an earlier, wider run had beyond this run's
    /// `parallelism` (subtask `s` takes `s + parallelism`, `s + 2 × parallelism`, …), as
    /// Flink's sink aborts the transactions of subtasks that no longer exist.
    fn fence_earlier_runs(&self, parallelism: usize) -> Result<(), ArrowError> {
        let parallelism = parallelism.max(1);
        let below = self.transactions.subtasks_to_fence().max(parallelism);
        let others = (self.subtask + parallelism..below).step_by(parallelism);
        let ids = (self.slots..POOL_SLOTS)
            .map(|slot| self.id(slot))
            .chain(others.flat_map(|subtask| {
                (0..POOL_SLOTS).map(move |slot| format!("{}-{subtask}-{slot}", self.prefix))
            }));
        // Each fence waits for the brokers: all at once.
        let ids: Vec<String> = ids.collect();
        let config = &self.config;
        std::thread::scope(|scope| {
            let fences: Vec<_> = ids
                .iter()
                .map(|id| scope.spawn(move || fence(&mut config.clone(), id)))
                .collect();
            fences
                .into_iter()
                .try_for_each(|f| f.join().unwrap_or_else(|_| Err("a fence panicked".into())))
        })
        .map_err(|e| ArrowError::ExternalError(e.into()))
    }

    /// A producer for a new slot, its id fenced: a transaction an earlier run left open
    /// under it is aborted.
    fn new_slot(&mut self) -> Result<Pooled, ArrowError> {
        let slot = self.slots;
        let producer = transactional_producer(&self.config, &self.id(slot))
            .map_err(|e| ArrowError::ExternalError(e.into()))?;
        self.slots += 1;
        Ok((slot, producer))
    }

    fn create(&self, config: &ClientConfig) -> Result<ThreadedProducer<Delivered>, ArrowError> {
        config
            .create_with_context(Delivered::default())
            .map_err(|e| {
                kafka(
                    &format!("cannot create a producer for topic {}", self.topic),
                    e,
                )
            })
    }

    /// Starts the transaction of the current interval on a free producer, a new slot, or
    /// — all [`POOL_SLOTS`] taken — the first one given back.
    fn begin(&mut self) -> Result<(), ArrowError> {
        self.free.extend(self.returned.try_iter());
        let (slot, producer) = match self.free.pop() {
            Some(p) => p,
            None if self.slots < POOL_SLOTS => self.new_slot()?,
            None => self.returned.recv_timeout(BROKER_TIMEOUT).map_err(|_| {
                ArrowError::ExternalError(
                    format!(
                        "all {POOL_SLOTS} Kafka transactions of this subtask wait for their \
                         checkpoints, and none completed within {} s",
                        BROKER_TIMEOUT.as_secs()
                    )
                    .into(),
                )
            })?,
        };
        producer.begin_transaction().map_err(|e| {
            kafka(
                &format!("cannot begin a Kafka transaction as {}", self.id(slot)),
                e,
            )
        })?;
        self.producer = Some(producer);
        self.open = Some(slot);
        Ok(())
    }

    /// Produces the rows of `batch`.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), ArrowError> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        if self.delivery == Delivery::ExactlyOnce && self.open.is_none() {
            self.begin()?;
        }
        let Some(producer) = &self.producer else {
            return Err(ArrowError::ExternalError(
                "the Kafka producer is closed".into(),
            ));
        };
        let (topic, partition) = (self.topic.as_str(), self.partition);
        self.encoder.encode(batch, |key, value| {
            let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic).payload(value);
            if let Some(p) = partition {
                record = record.partition(p);
            }
            if let Some(k) = key {
                record = record.key(k);
            }
            loop {
                match producer.send(record) {
                    Ok(()) => return Ok(()),
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        // The local queue is full: wait for deliveries (backpressure).
                        record = back;
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    Err((e, _)) => return Err(kafka(&format!("cannot produce to {topic}"), e)),
                }
            }
        })?;
        self.check(producer)
    }

    fn check(&self, producer: &ThreadedProducer<Delivered>) -> Result<(), ArrowError> {
        if let Some(f) = producer.context().failure.lock().expect("failure").take() {
            return Err(ArrowError::ExternalError(
                format!("a record could not be delivered to {}: {f}", self.topic).into(),
            ));
        }
        Ok(())
    }

    /// At checkpoint `checkpoint`'s barrier (at the end: the number after the last barrier,
    /// the interval its records belong to): makes sure every record so far is on the
    /// brokers, and for exactly-once hands the interval's transaction to the checkpoint.
    pub fn stage(&mut self, checkpoint: u64) -> Result<Vec<Commit>, ArrowError> {
        let Some(producer) = &self.producer else {
            return Ok(Vec::new());
        };
        if self.delivery != Delivery::None {
            producer
                .flush(BROKER_TIMEOUT)
                .map_err(|e| kafka(&format!("cannot flush the records for {}", self.topic), e))?;
            self.check(producer)?;
        }
        if self.delivery != Delivery::ExactlyOnce {
            return Ok(Vec::new());
        }
        let (Some(slot), Some(producer)) = (self.open.take(), self.producer.take()) else {
            return Ok(Vec::new());
        };
        let id = self.id(slot);
        let (producer_id, epoch) = producer.context().identity(&id)?;
        self.transactions.hand_over(
            id.clone(),
            checkpoint,
            (slot, producer),
            self.give_back.clone(),
        );
        Ok(vec![Commit::Kafka {
            kafka_transaction: id,
            checkpoint,
            producer_id: Some(producer_id),
            producer_epoch: Some(epoch),
        }])
    }
}
