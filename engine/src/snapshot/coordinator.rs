//! The checkpoint coordinator: a thread that triggers checkpoints, collects every subtask's
//! state, writes the snapshot (state files first, `_metadata` last) and then makes the sinks'
//! staged part files visible.
//!
//! A checkpoint starts when the coordinator raises the trigger number: every source subtask
//! notices it between batches, saves its position and sends a barrier behind its last rows.
//! Tasks align the barriers of all their inputs, save their state, acknowledge and pass the
//! barrier on. A subtask that has finished (its input ended) takes part with its final state.
//! When every subtask has acknowledged, the checkpoint is written; when every subtask has
//! finished, a final checkpoint marks the job finished.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::commit::{commit_all, mark_committed};
use super::storage::Storage;
use super::{
    Commit, FORMAT_VERSION, FileMeta, METADATA, Metadata, OperatorMeta, SnapshotKind, StateOut,
};
use crate::Error;
use crate::io::kafka::transactions::Transactions;

/// How a job checkpoints.
#[derive(Debug, Clone)]
pub struct CheckpointConfig {
    /// Where checkpoints go.
    pub storage: Storage,
    /// Time between checkpoints.
    pub interval: Duration,
    /// How many completed checkpoints to keep.
    pub retain: usize,
}

/// A checkpoint not complete after this long is given up (and counted as failed), as
/// Flink's default checkpoint timeout.
pub const CHECKPOINT_TIMEOUT: Duration = Duration::from_secs(600);

/// One operator subtask's state in an acknowledgement.
pub struct OpState {
    /// Operator identity (step name).
    pub uid: String,
    /// Operator kind.
    pub kind: String,
    /// Subtask.
    pub subtask: usize,
    /// Parallelism.
    pub parallelism: usize,
    /// Its state (encoded by the coordinator).
    pub state: StateOut,
}

/// A task's part of a checkpoint.
pub struct Ack {
    /// Checkpoint number (for a finished task: the last one it saw).
    pub id: u64,
    /// Global task index.
    pub task: usize,
    /// The states of the task's operators.
    pub states: Vec<OpState>,
    /// What its sink staged for this checkpoint.
    pub commits: Vec<Commit>,
    /// The task has finished; these are its final states, valid for every later checkpoint.
    pub finished: bool,
}

/// A completed checkpoint or savepoint, for the control endpoint.
#[derive(Debug, Clone)]
pub struct Completed {
    /// Number.
    pub id: u64,
    /// Kind.
    pub kind: SnapshotKind,
    /// Where it is.
    pub url: String,
    /// From trigger to `_metadata` written.
    pub duration: Duration,
    /// Bytes of state.
    pub size: u64,
    /// When it completed (epoch ms).
    pub completed_ms: i64,
}

/// A savepoint request.
pub struct SavepointRequest {
    /// Directory to write it to.
    pub target: Storage,
    /// Stop the job once it is written.
    pub stop: bool,
    /// Told where it went, or why it failed.
    pub reply: Sender<crate::Result<String>>,
}

/// State shared between the coordinator and the tasks.
#[derive(Debug, Default)]
pub struct Shared {
    /// The newest checkpoint sources should take.
    pub trigger: AtomicU64,
    /// The newest completed checkpoint.
    pub completed: AtomicU64,
    /// Completed snapshots, oldest first.
    pub history: Mutex<Vec<Completed>>,
    /// Failed checkpoints.
    pub failures: AtomicU64,
    /// Set after a stop-with-savepoint: the job is to stop.
    pub stop: AtomicBool,
    /// The stop-with-savepoint under way (0: none). A source that has sent its barrier
    /// reads nothing more until the job stops (or, should the savepoint fail, goes on), as
    /// in Flink: nothing is written after the savepoint, so an at-least-once sink repeats
    /// nothing on the restore and an exactly-once sink leaves no transaction open.
    pub stopping: AtomicU64,
    /// This run's attempt on the checkpoint directory (its fencing token); 0 without
    /// checkpoints.
    pub attempt: AtomicU64,
    /// Why the last checkpoint failed, if the last one did.
    pub last_failure: Mutex<Option<String>>,
    /// Kafka transactions written and waiting for their checkpoint to complete.
    pub transactions: Arc<Transactions>,
}

impl Shared {
    /// Whether a source whose last barrier was `sent` must hold: it has passed the barrier
    /// of a stop-with-savepoint under way.
    pub fn holds(&self, sent: u64) -> bool {
        let stopping = self.stopping.load(Ordering::SeqCst);
        stopping != 0 && sent >= stopping
    }
}

struct Pending {
    id: u64,
    started: Instant,
    acks: BTreeMap<usize, Ack>,
    savepoint: Option<SavepointRequest>,
}

/// Runs the coordinator of a job with `tasks` tasks until every task has finished (or
/// `cancelled` is set). Returns the number of the final checkpoint, if one was written.
#[allow(clippy::too_many_arguments, reason = "one call site in the runtime")]
pub fn run(
    config: Option<CheckpointConfig>,
    tasks: usize,
    first_id: u64,
    shared: Arc<Shared>,
    acks: Receiver<Ack>,
    savepoints: Receiver<SavepointRequest>,
    cancelled: Arc<AtomicBool>,
) -> Result<Option<u64>, Error> {
    let mut id = first_id;
    let mut finals: BTreeMap<usize, Ack> = BTreeMap::new();
    let mut pending: Option<Pending> = None;
    // Sink parts staged for checkpoints that failed: the next checkpoint that completes
    // commits them (as Flink commits pending files on a later checkpoint).
    let mut carried: Vec<Commit> = Vec::new();
    let mut last = Instant::now();
    loop {
        if cancelled.load(Ordering::Relaxed) {
            return Ok(None);
        }
        if pending.is_none() {
            let request = savepoints.try_recv().ok();
            let due = config
                .as_ref()
                .is_some_and(|c| last.elapsed() >= c.interval);
            if (request.is_some() || due) && finals.len() < tasks {
                id += 1;
                if request.as_ref().is_some_and(|r| r.stop) {
                    shared.stopping.store(id, Ordering::SeqCst);
                }
                shared.trigger.store(id, Ordering::SeqCst);
                pending = Some(Pending {
                    id,
                    started: Instant::now(),
                    acks: BTreeMap::new(),
                    savepoint: request,
                });
            } else if let Some(r) = request {
                let _ = r.reply.send(Err(Error::NotRunning("has finished")));
            }
        }
        let wait = match (&pending, &config) {
            (Some(_), _) | (None, None) => Duration::from_millis(10),
            (None, Some(c)) => c
                .interval
                .saturating_sub(last.elapsed())
                .max(Duration::from_millis(1)),
        };
        match acks.recv_timeout(wait) {
            Ok(ack) => receive(ack, &mut pending, &mut finals, &mut carried),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                // Every task is gone; what they sent is all there is.
            }
        }
        while let Ok(ack) = acks.try_recv() {
            receive(ack, &mut pending, &mut finals, &mut carried);
        }
        if pending
            .as_ref()
            .is_some_and(|p| p.started.elapsed() > CHECKPOINT_TIMEOUT)
            && let Some(p) = pending.take()
        {
            shared.failures.fetch_add(1, Ordering::Relaxed);
            carried.extend(p.acks.values().flat_map(|a| a.commits.iter().cloned()));
            *shared.last_failure.lock().expect("last failure") = Some(format!(
                "checkpoint {} did not complete within {} s",
                p.id,
                CHECKPOINT_TIMEOUT.as_secs()
            ));
            shared.stopping.store(0, Ordering::SeqCst);
            if let Some(r) = p.savepoint {
                let _ = r.reply.send(Err(Error::CheckpointTimedOut {
                    id: p.id,
                    seconds: CHECKPOINT_TIMEOUT.as_secs(),
                }));
            }
            last = Instant::now();
            continue;
        }
        if let Some(p) = &pending
            && (0..tasks).all(|t| p.acks.contains_key(&t) || finals.contains_key(&t))
        {
            let Some(p) = pending.take() else { continue };
            let finished = finals.len() == tasks;
            // While some task runs, a task's acknowledgement of this checkpoint is its part
            // (its final state is later than the others' barrier). Once every task has
            // finished, the final states are the snapshot, and what a task staged both at
            // this barrier and at its end is committed.
            let mut staged = carried.clone();
            let parts: Vec<&Ack> = (0..tasks)
                .map(|t| match (p.acks.get(&t), finals.get(&t)) {
                    (Some(ack), Some(last)) if finished => {
                        staged.extend(ack.commits.iter().cloned());
                        last
                    }
                    (Some(ack), _) => ack,
                    (None, last) => last.expect("checked above"),
                })
                .collect();
            let written = match write(&config, &p, &parts, &staged, finished, &shared) {
                Ok(url) => {
                    carried.clear();
                    if let Some(r) = p.savepoint {
                        let _ = r.reply.send(Ok(url));
                        if r.stop {
                            shared.stop.store(true, Ordering::SeqCst);
                        }
                    }
                    true
                }
                Err(e) => {
                    shared.failures.fetch_add(1, Ordering::Relaxed);
                    carried = staged;
                    carried.extend(
                        parts
                            .iter()
                            .filter(|a| !a.finished)
                            .flat_map(|a| a.commits.iter().cloned()),
                    );
                    tracing::warn!(checkpoint = p.id, error = %e, "checkpoint failed; the job goes on and the next checkpoint tries again");
                    *shared.last_failure.lock().expect("last failure") = Some(e.to_string());
                    // A stop that failed is no stop: the sources read on.
                    shared.stopping.store(0, Ordering::SeqCst);
                    if let Some(r) = p.savepoint {
                        let _ = r.reply.send(Err(e));
                    }
                    false
                }
            };
            last = Instant::now();
            // Finished and written: done. Finished but not written: the final checkpoint
            // below tries again, and its failure is the job's.
            if finished && written {
                return Ok(Some(p.id));
            }
            continue;
        }
        if pending.is_none() && finals.len() == tasks {
            // Every task has finished: a final checkpoint records it (and commits the last
            // part files), so a restore after this point does not redo any work.
            if config.is_none() {
                commit_all(
                    carried
                        .iter()
                        .chain(finals.values().flat_map(|a| a.commits.iter())),
                    &shared.transactions,
                )?;
                // Nothing can restore this run: its producers are free at once.
                shared.transactions.release(true);
                return Ok(None);
            }
            id += 1;
            let p = Pending {
                id,
                started: Instant::now(),
                acks: BTreeMap::new(),
                savepoint: None,
            };
            let parts: Vec<&Ack> = finals.values().collect();
            write(&config, &p, &parts, &carried, true, &shared)?;
            return Ok(Some(id));
        }
    }
}

/// Files an acknowledgement where it belongs: a finished task's final state, a part of the
/// pending checkpoint, or — late, for a checkpoint already given up — its staged sink parts,
/// carried to the next checkpoint.
fn receive(
    ack: Ack,
    pending: &mut Option<Pending>,
    finals: &mut BTreeMap<usize, Ack>,
    carried: &mut Vec<Commit>,
) {
    if ack.finished {
        finals.insert(ack.task, ack);
    } else if let Some(p) = pending
        && p.id == ack.id
    {
        p.acks.insert(ack.task, ack);
    } else {
        carried.extend(ack.commits);
    }
}

fn write(
    config: &Option<CheckpointConfig>,
    p: &Pending,
    parts: &[&Ack],
    carried: &[Commit],
    finished: bool,
    shared: &Shared,
) -> Result<String, Error> {
    let kind = if p.savepoint.is_some() {
        SnapshotKind::Savepoint
    } else {
        SnapshotKind::Checkpoint
    };
    let attempt = shared.attempt.load(Ordering::SeqCst);
    let data = strom_storage::layout::data_dir(attempt);
    let mut operators: BTreeMap<String, OperatorMeta> = BTreeMap::new();
    let mut files: Vec<(String, bytes::Bytes)> = Vec::new();
    let mut commits = carried.to_vec();
    let mut size = 0u64;
    for ack in parts {
        commits.extend(ack.commits.iter().cloned());
        for st in &ack.states {
            let file = st
                .state
                .to_file()
                .map_err(|e| Error::Io(format!("cannot encode the state of {}: {e}", st.uid)))?;
            let bytes = postcard::to_stdvec(&file).expect("state files serialize");
            let name = format!("{data}/{}/{}.state", file_safe(&st.uid), st.subtask);
            size += bytes.len() as u64;
            let op = operators
                .entry(st.uid.clone())
                .or_insert_with(|| OperatorMeta {
                    uid: st.uid.clone(),
                    kind: st.kind.clone(),
                    parallelism: st.parallelism as u32,
                    files: Vec::new(),
                });
            op.files.push(FileMeta {
                subtask: st.subtask as u32,
                name: name.clone(),
                size: bytes.len() as u64,
                crc32: crc32fast::hash(&bytes),
            });
            files.push((name, bytes.into()));
        }
    }
    let completed_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let meta = Metadata {
        format_version: FORMAT_VERSION,
        id: p.id,
        attempt,
        kind,
        completed_ms,
        job_finished: finished,
        stopped: p.savepoint.as_ref().is_some_and(|r| r.stop),
        operators: operators.into_values().collect(),
        commits: commits.clone(),
        transactions_committed: false,
    };
    let manifest = serde_json::to_vec_pretty(&meta).expect("metadata serializes");
    let mut url = String::new();
    if let Some(c) = config {
        let dir = format!("chk-{}", p.id);
        let at_dir: Vec<(String, bytes::Bytes)> = files
            .iter()
            .map(|(n, b)| (format!("{dir}/{n}"), b.clone()))
            .collect();
        c.storage.put_all(&at_dir)?;
        // Last, and only if no other writer committed this number and no newer attempt
        // has taken over: the checkpoint exists from here on.
        c.storage
            .commit_checkpoint(p.id, attempt, manifest.clone())?;
        url = c.storage.url_of(&dir);
    }
    if let Some(r) = &p.savepoint {
        if strom_storage::block_on(r.target.location().exists(METADATA))? {
            return Err(Error::Io(format!(
                "{} already holds a savepoint; it is not overwritten (choose another target)",
                r.target.url()
            )));
        }
        r.target.put_all(&files)?;
        // A savepoint directory that already holds one is never overwritten.
        r.target.put_new(METADATA, manifest.clone())?;
        url = r.target.url().to_owned();
    }
    // The checkpoint is on storage from here on, and a restore from it commits these parts
    // again; a part that cannot be committed now fails the checkpoint as the job sees it, so
    // the part is carried to the next one rather than forgotten.
    if let Err(e) = commit_all(commits.iter(), &shared.transactions) {
        // This snapshot cannot be marked: the producers of what did commit are renewed
        // before they carry anything else.
        shared.transactions.release(false);
        return Err(e);
    }
    if commits.iter().any(|c| matches!(c, Commit::Kafka { .. })) {
        let marked = mark_committed(
            config.as_ref().map(|c| (&c.storage, p.id)),
            p.savepoint.as_ref().map(|r| &r.target),
        );
        if let Err(e) = &marked {
            tracing::warn!(checkpoint = p.id, error = %e, "could not write the commit marker; the committed producers are renewed instead");
        }
        shared.transactions.release(marked.is_ok());
    }
    shared.completed.store(p.id, Ordering::SeqCst);
    *shared.last_failure.lock().expect("last failure") = None;
    {
        let mut history = shared.history.lock().expect("history");
        history.push(Completed {
            id: p.id,
            kind,
            url: url.clone(),
            duration: p.started.elapsed(),
            size,
            completed_ms,
        });
        let excess = history.len().saturating_sub(100);
        history.drain(..excess);
    }
    if let Some(c) = config {
        // Keep the newest `retain` checkpoints (and the one this run restored from). A
        // failure here does not fail the checkpoint, which is complete: the next one retries.
        if let Err(e) = c.storage.retain(c.retain.max(1)) {
            tracing::warn!(error = %e, "could not delete old checkpoints; will retry after the next checkpoint");
        }
    }
    Ok(url)
}

/// A directory name for an operator uid.
fn file_safe(uid: &str) -> String {
    uid.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    #[test]
    fn a_part_that_cannot_be_committed_fails_the_commit_and_stays_staged() {
        let dir = std::env::temp_dir().join(format!("strom-commit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let ok = dir.join(".part-a-0-0.csv.inprogress");
        let blocked = dir.join(".part-a-0-1.csv.inprogress");
        std::fs::write(&ok, "x\n1\n").unwrap();
        std::fs::write(&blocked, "x\n2\n").unwrap();
        // A non-empty directory where the visible name goes: the rename cannot happen.
        std::fs::create_dir_all(dir.join("part-a-0-1.csv").join("in-the-way")).unwrap();
        let files: Vec<Commit> = [&ok, &blocked]
            .iter()
            .map(|p| Commit::File(p.display().to_string()))
            .collect();
        let none = Transactions::default();
        let err = commit_all(files.iter(), &none).unwrap_err().to_string();
        assert!(err.contains(".part-a-0-1.csv.inprogress"), "{err}");
        assert!(
            dir.join("part-a-0-0.csv").is_file(),
            "the other part is committed"
        );
        assert!(blocked.is_file(), "the failed part stays staged");
        // Once the way is clear, committing again finishes the job and is idempotent.
        std::fs::remove_dir_all(dir.join("part-a-0-1.csv")).unwrap();
        commit_all(files.iter(), &none).unwrap();
        commit_all(files.iter(), &none).unwrap();
        assert!(dir.join("part-a-0-1.csv").is_file());
        assert!(!blocked.exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_task_that_acknowledged_and_then_finished_has_both_its_stagings_committed() {
        let dir = std::env::temp_dir().join(format!("strom-final-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let at_barrier = dir.join(".part-a-0-0.csv.inprogress");
        let at_end = dir.join(".part-a-0-1.csv.inprogress");
        std::fs::write(&at_barrier, "x\n1\n").unwrap();
        std::fs::write(&at_end, "x\n2\n").unwrap();
        let (ack_tx, ack_rx) = std::sync::mpsc::channel();
        let (sp_tx, sp_rx) = std::sync::mpsc::channel();
        let (reply, answer) = std::sync::mpsc::channel();
        sp_tx
            .send(SavepointRequest {
                target: Storage::open(dir.join("savepoint").to_str().unwrap()).unwrap(),
                stop: false,
                reply,
            })
            .unwrap();
        // The one task acknowledges savepoint 1, then finishes before it is written.
        let file = |p: &std::path::Path| Commit::File(p.display().to_string());
        ack_tx
            .send(Ack {
                id: 1,
                task: 0,
                states: Vec::new(),
                commits: vec![file(&at_barrier)],
                finished: false,
            })
            .unwrap();
        ack_tx
            .send(Ack {
                id: 1,
                task: 0,
                states: Vec::new(),
                commits: vec![file(&at_end)],
                finished: true,
            })
            .unwrap();
        let shared = Arc::new(Shared::default());
        let done = run(
            None,
            1,
            0,
            shared,
            ack_rx,
            sp_rx,
            Arc::new(AtomicBool::new(false)),
        )
        .unwrap();
        assert_eq!(done, Some(1));
        assert!(answer.recv().unwrap().is_ok());
        assert!(
            dir.join("part-a-0-0.csv").is_file(),
            "staged at the barrier"
        );
        assert!(dir.join("part-a-0-1.csv").is_file(), "staged at the end");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
