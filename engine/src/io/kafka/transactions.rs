//! Kafka transactions written by exactly-once sinks and waiting for their checkpoint.
//!
//! At a checkpoint barrier a sink subtask flushes its open transaction (every record is
//! on the brokers, not yet visible to `read_committed` readers) and hands the producer
//! over here; the checkpoint names the transaction. Once the checkpoint's `_metadata` is
//! written, the coordinator commits it ([`Transactions::commit`]) and gives the producer
//! back to its subtask's pool; a checkpoint that fails carries its transactions to the
//! next one, which commits them.
//!
//! A restore names the restored checkpoint's transactions again. The producer that wrote
//! one is gone with the process that died, and librdkafka cannot take over another
//! producer's transaction (Flink does so by setting the producer id and epoch by
//! reflection). Such a transaction was committed unless the old process died in the moment
//! between writing `_metadata` and committing; then it is still open, and the restore
//! commits it with the producer id and epoch the checkpoint recorded ([`super::resume`]).
//! That is safe only while the recorded epoch still holds that transaction: a committed
//! producer stays here until the checkpoint's `_committed` marker is written beside its
//! `_metadata` ([`Transactions::release`]) — a restore of a marked checkpoint resumes
//! nothing — and only then carries a later transaction; if the marker cannot be written,
//! the producer is renewed (a new epoch) first.
//! A checkpoint without them (written before they were recorded) has its transactions
//! fenced instead (aborted if open: their records are lost, as the log says).

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::Sender;

use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, Producer};

use super::BROKER_TIMEOUT;
use super::sink::{Pooled, transactional_producer};

/// A committed transaction's producer, not yet free for another.
struct Held {
    id: String,
    checkpoint: u64,
    producer: Pooled,
    give_back: Sender<Pooled>,
}

struct Pending {
    /// The checkpoint whose interval the transaction holds.
    checkpoint: u64,
    producer: Pooled,
    give_back: Sender<Pooled>,
}

/// The pending transactions of this process, by transactional id.
#[derive(Default)]
pub struct Transactions {
    pending: Mutex<HashMap<String, Pending>>,
    /// (id, checkpoint) of those committed.
    committed: Mutex<BTreeSet<(String, u64)>>,
    /// How to reach the brokers of each transactional-id prefix, for a restore's fencing.
    clients: Mutex<Vec<(String, ClientConfig)>>,
    /// See [`Transactions::fence_subtasks_below`].
    fence_below: AtomicUsize,
    /// Committed, waiting for [`Transactions::release`].
    held: Mutex<Vec<Held>>,
}

/// Fences transactional id `id` on the brokers of `config`: a new epoch for it, which
/// aborts a transaction left open under it and refuses the producer that held it.
pub fn fence(config: &mut ClientConfig, id: &str) -> Result<(), String> {
    config.set("transactional.id", id);
    let producer: BaseProducer = config
        .create()
        .map_err(|e| format!("cannot reach the brokers to fence {id}: {e}"))?;
    producer
        .init_transactions(BROKER_TIMEOUT)
        .map_err(|e| format!("cannot fence Kafka transaction {id}: {e}"))
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
    /// Keeps a flushed transaction (of `checkpoint`'s interval) until its checkpoint
    /// completes; the producer goes back through `give_back` once committed.
    pub fn hand_over(
        &self,
        id: String,
        checkpoint: u64,
        producer: Pooled,
        give_back: Sender<Pooled>,
    ) {
        self.pending.lock().expect("transactions").insert(
            id,
            Pending {
                checkpoint,
                producer,
                give_back,
            },
        );
    }

    /// Says how to reach the brokers of the transactional ids starting `prefix-`.
    pub fn register_client(&self, prefix: &str, config: ClientConfig) {
        let mut clients = self.clients.lock().expect("clients");
        if !clients.iter().any(|(p, _)| p == prefix) {
            clients.push((prefix.to_owned(), config));
        }
    }

    /// Commits transaction `id` (of `checkpoint`'s interval): idempotent for one this
    /// process committed; one it never held (named by a restored checkpoint) is committed
    /// as `producer` (id, epoch), or fenced when the checkpoint did not record them.
    pub fn commit(
        &self,
        id: &str,
        checkpoint: u64,
        producer: Option<(i64, i16)>,
    ) -> Result<(), String> {
        let key = (id.to_owned(), checkpoint);
        // A pooled id is reused for later intervals: the open transaction is the one to
        // commit only if it holds this checkpoint's interval.
        let pending = {
            let mut pending = self.pending.lock().expect("transactions");
            match pending.get(id).map(|p| p.checkpoint) {
                Some(held) if held == checkpoint => pending.remove(id),
                Some(held) if !self.committed.lock().expect("transactions").contains(&key) => {
                    return Err(format!(
                        "the checkpoint names transaction {id} of checkpoint {checkpoint}, \
                         but that id now holds checkpoint {held}'s"
                    ));
                }
                _ => None,
            }
        };
        let Some(Pending {
            producer: (slot, producer),
            give_back,
            ..
        }) = pending
        else {
            if self.committed.lock().expect("transactions").contains(&key) {
                return Ok(());
            }
            return match producer {
                Some((producer_id, epoch)) => self.resume(id, checkpoint, producer_id, epoch),
                None => self.fence(id, checkpoint),
            };
        };
        match producer.commit_transaction(BROKER_TIMEOUT) {
            Ok(()) => {
                self.committed.lock().expect("transactions").insert(key);
                // Held until the snapshot says its transactions are committed
                // ([`Transactions::release`]).
                self.held.lock().expect("transactions").push(Held {
                    id: id.to_owned(),
                    checkpoint,
                    producer: (slot, producer),
                    give_back,
                });
                Ok(())
            }
            Err(e) => {
                let message = e.to_string();
                // A retriable failure keeps the transaction for the next attempt; any other
                // means it can no longer commit, and the checkpoint's failure says so.
                if matches!(&e, rdkafka::error::KafkaError::Transaction(t) if t.is_retriable()) {
                    self.hand_over(id.to_owned(), checkpoint, (slot, producer), give_back);
                }
                Err(message)
            }
        }
    }

    /// The client configuration of the sink whose transactional ids `id` is one of.
    fn client_of(&self, id: &str, checkpoint: u64) -> Option<ClientConfig> {
        let clients = self.clients.lock().expect("clients");
        let config = clients
            .iter()
            .filter(|(prefix, _)| id.starts_with(&format!("{prefix}-")))
            .max_by_key(|(prefix, _)| prefix.len())
            .map(|(_, c)| c.clone());
        if config.is_none() {
            tracing::warn!(
                transaction = id,
                checkpoint,
                "the restored checkpoint names a Kafka transaction of a sink this job no longer has; left alone"
            );
        }
        config
    }

    /// A restored checkpoint's transaction that this process never held, with the producer
    /// id and epoch that held it: committed if still open.
    fn resume(
        &self,
        id: &str,
        checkpoint: u64,
        producer_id: i64,
        epoch: i16,
    ) -> Result<(), String> {
        let Some(config) = self.client_of(id, checkpoint) else {
            return Ok(());
        };
        if !super::resume::speaks(&config) {
            tracing::warn!(
                transaction = id,
                checkpoint,
                "committing a restored checkpoint's Kafka transaction is built for plaintext \
                 brokers only; it is fenced instead"
            );
            return self.fence(id, checkpoint);
        }
        match super::resume::commit(&config, id, producer_id, epoch)? {
            super::resume::Ended::Committed => tracing::info!(
                transaction = id,
                checkpoint,
                "a Kafka transaction of the restored checkpoint is committed"
            ),
            // Its epoch is no longer current: the run that wrote it committed it and
            // renewed the producer.
            super::resume::Ended::NotOpen(answer) if answer != "InvalidTxnState" => {
                tracing::debug!(
                    transaction = id,
                    checkpoint,
                    answer,
                    "a Kafka transaction of the restored checkpoint was committed by the run that wrote it"
                )
            }
            super::resume::Ended::NotOpen(answer) => tracing::warn!(
                transaction = id,
                checkpoint,
                answer,
                "a Kafka transaction of the restored checkpoint is no longer open and was not \
                 committed: the brokers aborted it (its transaction.timeout.ms passed before \
                 the restore); its records are lost"
            ),
        }
        self.committed
            .lock()
            .expect("transactions")
            .insert((id.to_owned(), checkpoint));
        Ok(())
    }

    /// A restored checkpoint's transaction that this process never held: fences its id,
    /// which aborts it if the process that wrote it died before committing.
    fn fence(&self, id: &str, checkpoint: u64) -> Result<(), String> {
        let Some(mut config) = self.client_of(id, checkpoint) else {
            return Ok(());
        };
        fence(&mut config, id)?;
        tracing::warn!(
            transaction = id,
            checkpoint,
            "a Kafka transaction named by the restored checkpoint was written by an earlier run; \
             it was committed then unless that run died between completing the checkpoint and \
             committing, in which case it is now aborted and its records are not visible"
        );
        self.committed
            .lock()
            .expect("transactions")
            .insert((id.to_owned(), checkpoint));
        Ok(())
    }

    /// Gives the producers of committed transactions back to their subtasks. `marked`:
    /// the snapshot that named them carries its [`crate::snapshot::COMMITTED`] marker, so a
    /// restore of it resumes none, and each producer goes back as it is. Otherwise a
    /// restore would resume them with the producer id and epoch it recorded, which must
    /// then not hold a later transaction: each is renewed first (a new producer, a new
    /// epoch; off this thread). A renewal that fails costs its subtask that slot.
    pub fn release(&self, marked: bool) {
        let held = std::mem::take(&mut *self.held.lock().expect("transactions"));
        for Held {
            id,
            checkpoint,
            producer,
            give_back,
        } in held
        {
            if marked {
                if let Err(back) = give_back.send(producer) {
                    // The subtask is gone: close the producer off this thread.
                    std::thread::spawn(move || drop(back));
                }
                continue;
            }
            let config = self.client_of(&id, checkpoint);
            std::thread::spawn(move || {
                let (slot, old) = producer;
                drop(old);
                let Some(config) = config else { return };
                match transactional_producer(&config, &id) {
                    Ok(renewed) => {
                        let _ = give_back.send((slot, renewed));
                    }
                    Err(e) => tracing::warn!(
                        transaction = id,
                        error = %e,
                        "could not renew a committed producer; its subtask opens another"
                    ),
                }
            });
        }
    }

    /// Exactly-once sinks fence the transactional ids of subtasks below `subtasks` (the
    /// widest any run of this job's checkpoint directory had), besides their own.
    pub fn fence_subtasks_below(&self, subtasks: usize) {
        self.fence_below.store(subtasks, Ordering::SeqCst);
    }

    /// See [`Transactions::fence_subtasks_below`].
    pub fn subtasks_to_fence(&self) -> usize {
        self.fence_below.load(Ordering::SeqCst)
    }

    /// How many are waiting.
    pub fn pending(&self) -> usize {
        self.pending.lock().expect("transactions").len()
    }
}
