//! Snapshots: what a checkpoint or savepoint holds and how it is stored.
//!
//! A snapshot is a directory (`chk-7/` under the checkpoint directory, or a savepoint's own
//! directory) with one state file per operator subtask and a `_metadata` manifest written
//! **last**: a snapshot without `_metadata` does not exist. The manifest lists every state
//! file with its size and CRC-32, so a truncated or damaged file is found before restoring
//! and reported by name.
//!
//! Keyed state is stored as entries tagged with the 64-bit hash of their key — the hash that
//! routes rows to subtasks. Subtask `i` of `p` owns the hashes in `[i·2⁶⁴/p, (i+1)·2⁶⁴/p)`,
//! so a snapshot taken at one parallelism restores at any other: each new subtask reads the
//! files of the old subtasks whose ranges overlap its own and keeps the entries in its range.

pub mod commit;
pub mod coordinator;
pub mod storage;

use std::collections::BTreeMap;

use arrow::array::{Array, UInt64Array};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use serde::{Deserialize, Serialize};

use crate::hash::owner;

/// The snapshot format this engine writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// The manifest's file name.
pub const METADATA: &str = "_metadata";

/// Written beside `_metadata` once every Kafka transaction the snapshot names is committed:
/// a restore of it has none to resume (see `io::kafka::transactions`).
pub const COMMITTED: &str = "_committed";

/// Checkpoint or savepoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SnapshotKind {
    /// Taken periodically, owned by the job.
    Checkpoint,
    /// Taken on request, owned by the user.
    Savepoint,
}

/// `_metadata`: what a complete snapshot holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    /// [`FORMAT_VERSION`] of the writer.
    pub format_version: u32,
    /// Checkpoint number (savepoints carry the number of the checkpoint they were taken as).
    pub id: u64,
    /// The attempt of the job that wrote it (its fencing token); its files are under
    /// `a<attempt>/`.
    #[serde(default)]
    pub attempt: u64,
    /// Checkpoint or savepoint.
    pub kind: SnapshotKind,
    /// When it completed (epoch ms).
    pub completed_ms: i64,
    /// Whether the job had finished (every source at its end and every result written).
    pub job_finished: bool,
    /// Whether the job was stopped right after this snapshot (stop-with-savepoint): a
    /// restart of the same deployment must not run it again.
    #[serde(default)]
    pub stopped: bool,
    /// The state of every operator.
    pub operators: Vec<OperatorMeta>,
    /// What the sinks staged for this snapshot: committed when it completes, and again
    /// (idempotently) when a job restores from it.
    pub commits: Vec<Commit>,
    /// Read, not written: the snapshot's directory holds [`COMMITTED`].
    #[serde(skip)]
    pub transactions_committed: bool,
}

/// Output a sink staged for a checkpoint, made visible when the checkpoint completes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Commit {
    /// A staged part file (`.part-….inprogress`), made visible by renaming it. Written as
    /// a bare path, as manifests have always held them.
    File(String),
    /// A Kafka transaction, committed by the producer that wrote it
    /// (see `io::kafka::transactions`).
    Kafka {
        /// Its transactional id.
        kafka_transaction: String,
        /// The checkpoint its records belong to (the id is reused by later intervals).
        checkpoint: u64,
        /// The producer id and epoch that hold it open: a restore commits it with them if
        /// the run that wrote it died before committing. Absent in older checkpoints.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        producer_id: Option<i64>,
        /// See `producer_id`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        producer_epoch: Option<i16>,
    },
}

/// One operator's state in a snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OperatorMeta {
    /// The operator's identity in the job: its step name (`source:bids`, `per_key`, …).
    pub uid: String,
    /// What kind of operator it is (`window`, `dedup`, `source`, …); state restores only
    /// into the same kind.
    pub kind: String,
    /// Parallelism at the time of the snapshot.
    pub parallelism: u32,
    /// One file per subtask that had state.
    pub files: Vec<FileMeta>,
}

/// A state file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileMeta {
    /// Subtask.
    pub subtask: u32,
    /// Path relative to the snapshot directory.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// CRC-32 of the contents.
    pub crc32: u32,
}

/// What one operator subtask saves.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct StateFile {
    /// State that belongs to the subtask rather than to keys (a position, a counter).
    pub scalar: Vec<u8>,
    /// Keyed entries: (key hash, encoded entry).
    pub keyed: Vec<(u64, Vec<u8>)>,
    /// Keyed rows kept as Arrow data: (tag, IPC stream whose first column `__hash` is the key
    /// hash of each row).
    pub batches: Vec<(u8, Vec<u8>)>,
}

/// What an operator writes into a snapshot.
#[derive(Default)]
pub struct StateOut {
    /// Subtask state.
    pub scalar: Vec<u8>,
    /// Keyed entries (key hash, encoded entry).
    pub keyed: Vec<(u64, Vec<u8>)>,
    /// Keyed rows: (tag, batch whose first column `__hash` is each row's key hash).
    pub batches: Vec<(u8, RecordBatch)>,
}

/// What an operator subtask restores: the subtask state of every old subtask whose key range
/// overlaps its own, and the keyed entries and rows in its range.
#[derive(Default)]
pub struct StateIn {
    /// Subtask states of the overlapping old subtasks.
    pub scalars: Vec<Vec<u8>>,
    /// Keyed entries in range.
    pub keyed: Vec<(u64, Vec<u8>)>,
    /// Keyed rows in range, `__hash` column removed: (tag, batch).
    pub batches: Vec<(u8, RecordBatch)>,
}

/// Encodes a value for a state file.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    postcard::to_stdvec(value).expect("state values serialize")
}

/// Decodes a value of a state file.
pub fn decode<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, ArrowError> {
    postcard::from_bytes(bytes)
        .map_err(|e| ArrowError::ParseError(format!("state does not decode: {e}")))
}

impl StateOut {
    /// The file contents (Arrow rows encoded as IPC streams: done by the coordinator, off
    /// the task's thread).
    pub fn to_file(&self) -> Result<StateFile, ArrowError> {
        let mut batches = Vec::new();
        for (tag, batch) in &self.batches {
            let mut bytes = Vec::new();
            {
                let mut w = arrow::ipc::writer::StreamWriter::try_new(&mut bytes, &batch.schema())?;
                w.write(batch)?;
                w.finish()?;
            }
            batches.push((*tag, bytes));
        }
        let mut keyed = self.keyed.clone();
        keyed.sort_by_key(|(h, _)| *h);
        Ok(StateFile {
            scalar: self.scalar.clone(),
            keyed,
            batches,
        })
    }

    /// Whether there is nothing to save.
    pub fn is_empty(&self) -> bool {
        self.scalar.is_empty() && self.keyed.is_empty() && self.batches.is_empty()
    }
}

/// Whether old subtask `old` of `old_p` owns any hash that new subtask `new` of `new_p` owns.
pub fn overlaps(old: usize, old_p: usize, new: usize, new_p: usize) -> bool {
    // Ranges [a·2⁶⁴/p, (a+1)·2⁶⁴/p) compared as fractions.
    let (lo_old, hi_old) = (
        old as u128 * new_p as u128,
        (old as u128 + 1) * new_p as u128,
    );
    let (lo_new, hi_new) = (
        new as u128 * old_p as u128,
        (new as u128 + 1) * old_p as u128,
    );
    lo_old < hi_new && lo_new < hi_old
}

/// Builds what new subtask `subtask` of `parallelism` restores from the files of old
/// subtasks (`(old subtask, file)`) taken at `old_parallelism`.
pub fn state_in(
    files: &[(usize, StateFile)],
    old_parallelism: usize,
    subtask: usize,
    parallelism: usize,
) -> Result<StateIn, ArrowError> {
    let mut state = StateIn::default();
    for (old, file) in files {
        if !overlaps(*old, old_parallelism, subtask, parallelism) {
            continue;
        }
        if !file.scalar.is_empty() {
            state.scalars.push(file.scalar.clone());
        }
        state.keyed.extend(
            file.keyed
                .iter()
                .filter(|(h, _)| owner(*h, parallelism) == subtask)
                .cloned(),
        );
        for (tag, bytes) in &file.batches {
            let reader = arrow::ipc::reader::StreamReader::try_new(bytes.as_slice(), None)?;
            for batch in reader {
                let batch = batch?;
                let hashes = batch
                    .column(0)
                    .as_any()
                    .downcast_ref::<UInt64Array>()
                    .ok_or_else(|| ArrowError::ParseError("state rows lack __hash".into()))?;
                let keep: arrow::array::BooleanArray = hashes
                    .values()
                    .iter()
                    .map(|h| Some(owner(*h, parallelism) == subtask))
                    .collect();
                let kept = arrow::compute::filter_record_batch(&batch, &keep)?;
                let kept = kept.project(&(1..kept.num_columns()).collect::<Vec<_>>())?;
                if kept.num_rows() > 0 {
                    state.batches.push((*tag, kept));
                }
            }
        }
    }
    Ok(state)
}

/// The state of a whole job at one snapshot, read back: operator uid → (kind, old
/// parallelism, files by old subtask).
pub type Restored = BTreeMap<String, (String, usize, Vec<(usize, StateFile)>)>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_new_subtask_reads_exactly_the_old_subtasks_it_overlaps() {
        // 2 → 3: new 0 = [0, 1/3) overlaps old 0; new 1 = [1/3, 2/3) overlaps both; new 2 old 1.
        let reads = |new| {
            (0..2)
                .filter(|old| overlaps(*old, 2, new, 3))
                .collect::<Vec<_>>()
        };
        assert_eq!(reads(0), [0]);
        assert_eq!(reads(1), [0, 1]);
        assert_eq!(reads(2), [1]);
        // 4 → 1: the one subtask reads everything.
        assert!((0..4).all(|old| overlaps(old, 4, 0, 1)));
    }

    #[test]
    fn keyed_entries_land_in_the_owning_subtask_at_any_parallelism() {
        let file = StateFile {
            scalar: vec![1],
            keyed: (0..1000u64)
                .map(|i| (i.wrapping_mul(0x9e37_79b9_7f4a_7c15), vec![i as u8]))
                .collect(),
            batches: vec![],
        };
        let total: usize = (0..3)
            .map(|s| {
                let st = state_in(&[(0, file.clone())], 1, s, 3).unwrap();
                assert!(st.keyed.iter().all(|(h, _)| owner(*h, 3) == s));
                st.keyed.len()
            })
            .sum();
        assert_eq!(total, 1000);
    }
}
