//! Kafka transactions written by exactly-once sinks and waiting for their checkpoint.
//!
//! At a checkpoint barrier a sink subtask flushes its open transaction (every record is
//! on the brokers, not yet visible to `read_committed` readers) and hands the producer
//! over here; the checkpoint names the transaction. Once the checkpoint's `_metadata` is
//! written, the coordinator commits it ([`Transactions::commit`]); a checkpoint that fails
//! carries its transactions to the next one, which commits them.
//!
//! A restore names the restored checkpoint's transactions again. The producer that wrote
//! one is gone with the process that died, and librdkafka cannot take over another
//! producer's transaction (Flink does so by setting the producer id and epoch by
//! reflection), so such a transaction is reported, not committed: it is lost if the old
//! process died in the moment between writing `_metadata` and committing (see
//! docs/engine.md, "Kafka").

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use rdkafka::producer::{Producer, ThreadedProducer};

use super::BROKER_TIMEOUT;
use super::sink::Delivered;

/// The pending transactions of this process, by transactional id.
#[derive(Default)]
pub struct Transactions {
    pending: Mutex<HashMap<String, ThreadedProducer<Delivered>>>,
    committed: Mutex<BTreeSet<String>>,
}

impl std::fmt::Debug for Transactions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let pending: Vec<String> = self
            .pending
            .lock()
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default();
        f.debug_struct("Transactions")
            .field("pending", &pending)
            .finish()
    }
}

impl Transactions {
    /// Keeps a flushed transaction until its checkpoint completes.
    pub fn hand_over(&self, id: String, producer: ThreadedProducer<Delivered>) {
        self.pending
            .lock()
            .expect("transactions")
            .insert(id, producer);
    }

    /// Commits transaction `id`: idempotent for one this process committed; one it never
    /// held (named by a restored checkpoint) is reported and left alone.
    pub fn commit(&self, id: &str) -> Result<(), String> {
        let producer = self.pending.lock().expect("transactions").remove(id);
        let Some(producer) = producer else {
            if !self.committed.lock().expect("transactions").contains(id) {
                tracing::warn!(
                    transaction = id,
                    "a Kafka transaction named by the restored checkpoint was written by an \
                     earlier run; it was committed then unless that run died between completing \
                     the checkpoint and committing (its records are then not visible)"
                );
            }
            return Ok(());
        };
        match producer.commit_transaction(BROKER_TIMEOUT) {
            Ok(()) => {
                self.committed
                    .lock()
                    .expect("transactions")
                    .insert(id.to_owned());
                // Closing a producer can wait on the network: not on the coordinator's
                // thread.
                std::thread::spawn(move || drop(producer));
                Ok(())
            }
            Err(e) => {
                let message = e.to_string();
                // A retriable failure keeps the transaction for the next attempt; any other
                // means it can no longer commit, and the checkpoint's failure says so.
                if matches!(&e, rdkafka::error::KafkaError::Transaction(t) if t.is_retriable()) {
                    self.hand_over(id.to_owned(), producer);
                }
                Err(message)
            }
        }
    }

    /// How many are waiting.
    pub fn pending(&self) -> usize {
        self.pending.lock().expect("transactions").len()
    }
}
