//! Starting a plan: restoring each task's state from a snapshot (or refusing a snapshot
//! that does not fit), claiming the checkpoint directory, wiring the channels, starting one
//! thread per subtask and the checkpoint coordinator; waiting for them and telling the
//! cause of a failure from the tasks that stopped because of it.

use crate::Error;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, SyncSender, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::message::Envelope;
use super::metrics::TaskMetrics;
use super::outputs::{CHANNEL_CAPACITY, Outputs};
use super::source_position;
use super::task::{self, TaskContext, TaskError};
use crate::io::sink::discard_staged;
use crate::plan::{Partition, Plan, SinkKind, VertexKind};
use crate::snapshot::commit::commit_restored;
use crate::snapshot::coordinator::{self, Ack, CheckpointConfig, SavepointRequest, Shared};
use crate::snapshot::storage::Storage;
use crate::snapshot::{Metadata, Restored, StateIn, state_in};

/// A running job.
pub struct Running {
    handles: Vec<JoinHandle<Result<(), Error>>>,
    coordinator: Option<JoinHandle<Result<Option<u64>, Error>>>,
    /// Checkpoint progress and history.
    pub checkpoints: Arc<Shared>,
    savepoints: Sender<SavepointRequest>,
    /// State of the restored snapshot that this job dropped (non-restored state allowed).
    pub dropped: Vec<String>,
    /// Every task's counters.
    pub metrics: Vec<Arc<TaskMetrics>>,
    /// When it started.
    pub started: Instant,
    cancelled: Arc<AtomicBool>,
}

/// What a finished job did.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    /// Rows read by sources.
    pub records_in: u64,
    /// Rows written by sinks.
    pub records_out: u64,
    /// Rows dropped as late.
    pub late_records: u64,
    /// Wall time.
    pub elapsed: Duration,
    /// Whether it stopped with a savepoint rather than finishing.
    pub stopped: bool,
}

/// How a job runs beyond its plan: checkpointing and what it restores from.
#[derive(Default)]
pub struct RunOptions {
    /// Periodic checkpoints, if any.
    pub checkpoints: Option<CheckpointConfig>,
    /// The snapshot to start from: its manifest and state.
    pub restore: Option<(Metadata, Restored)>,
    /// Where that snapshot is (recorded in this run's attempt claim, so retention keeps it).
    pub restored_from: Option<String>,
    /// That snapshot was the newest complete checkpoint of its directory when the run chose
    /// it (not one named on purpose): the claim refuses the run if a newer one completed
    /// meanwhile.
    pub restored_latest: bool,
    /// The deployment this run belongs to (recorded in its claim).
    pub deployment: Option<String>,
    /// Start even if some of the snapshot's state belongs to no operator of this job.
    pub allow_non_restored_state: bool,
}

/// One task's restored state: per chain operator, and for a source its own.
#[derive(Default)]
pub(crate) struct TaskRestore {
    pub(crate) ops: Vec<Option<StateIn>>,
    pub(crate) source: Vec<Vec<u8>>,
}

/// What a task needs to take part in checkpoints.
#[derive(Clone)]
pub(crate) struct TaskCheckpoints {
    pub(crate) shared: Arc<Shared>,
    pub(crate) acks: Sender<Ack>,
    pub(crate) task: usize,
}

impl Running {
    /// Starts every task of `plan`.
    pub fn start(plan: Plan) -> Running {
        Running::start_with(plan, RunOptions::default()).expect("nothing to restore")
    }

    /// Starts every task of `plan`, restoring state and checkpointing as `options` say. The
    /// operators that had state in the snapshot but are not in this job are in `dropped`.
    pub fn start_with(plan: Plan, options: RunOptions) -> Result<Running, Error> {
        let started = Instant::now();
        let cancelled = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(Shared::default());
        let (ack_tx, ack_rx) = std::sync::mpsc::channel::<Ack>();
        let (savepoint_tx, savepoint_rx) = std::sync::mpsc::channel::<SavepointRequest>();

        // What each task restores.
        let mut restores: Vec<Vec<TaskRestore>> = plan
            .vertices
            .iter()
            .map(|v| (0..v.parallelism).map(|_| TaskRestore::default()).collect())
            .collect();
        let mut dropped = Vec::new();
        let mut first_id = 0;
        if let Some((meta, state)) = &options.restore {
            first_id = meta.id;
            let mut homeless = Vec::new();
            for (uid, (kind, old_p, files)) in state {
                let home = plan.vertices.iter().enumerate().find_map(|(vi, v)| {
                    if &v.uid == uid && kind.starts_with("source") {
                        return Some((vi, None));
                    }
                    v.uids.iter().position(|u| u == uid).map(|i| (vi, Some(i)))
                });
                let Some((vi, op)) = home else {
                    homeless.push(format!("  operator {uid:?} ({kind}) is not in this job"));
                    continue;
                };
                let v = &plan.vertices[vi];
                if let Some(i) = op {
                    let probe = (v.chain[i])();
                    let now = probe.state_kind().unwrap_or("stateless");
                    if now != kind {
                        homeless.push(format!(
                            "  operator {uid:?} held {kind} state, but in this job it is {now}"
                        ));
                        continue;
                    }
                    for (s, slot) in restores[vi].iter_mut().enumerate() {
                        if slot.ops.len() < v.chain.len() {
                            slot.ops.resize_with(v.chain.len(), || None);
                        }
                        slot.ops[i] = Some(
                            state_in(files, *old_p, s, v.parallelism)
                                .map_err(|e| Error::Restore(format!("{uid}: {e}")))?,
                        );
                    }
                } else {
                    // A source's own position: the snapshot's complete set of splits, handed
                    // out again (see source_position.rs).
                    let saved: Vec<(usize, Vec<u8>)> = files
                        .iter()
                        .map(|(old, file)| (*old, file.scalar.clone()))
                        .collect();
                    let assigned = source_position::assign(kind, &saved, v.parallelism)
                        .map_err(|e| Error::Restore(format!("{uid}: {e}")))?;
                    for (slot, positions) in restores[vi].iter_mut().zip(assigned) {
                        slot.source.extend(positions);
                    }
                }
            }
            if !homeless.is_empty() {
                if !options.allow_non_restored_state {
                    return Err(Error::Incompatible(homeless));
                }
                dropped = homeless;
            }
            // Exactly-once Kafka sinks' brokers, for the transactions the snapshot names.
            for v in &plan.vertices {
                if let VertexKind::Sink(SinkKind::Kafka { spec, name, .. }) = &v.kind
                    && spec.delivery() == crate::spec::Delivery::ExactlyOnce
                {
                    let config = crate::io::kafka::sink::producer_config(spec)
                        .map_err(|e| Error::Restore(format!("sink {name}: {e}")))?;
                    shared.transactions.register_client(
                        &crate::io::kafka::sink::transactional_prefix(spec, name),
                        config,
                    );
                }
            }
            // The snapshot's sink parts become visible; parts staged after it are redone.
            // A part that cannot be committed stops the restore before the staged parts
            // are cleaned up below, so it is not lost.
            commit_restored(meta, &shared.transactions)
                .map_err(|e| Error::Restore(e.to_string()))?;
        }
        if let Some(c) = &options.checkpoints {
            // This run's fencing token: checkpoints numbered from above everything in the
            // directory, and a stale writer of an earlier run can no longer commit.
            let widest = plan
                .vertices
                .iter()
                .map(|v| v.parallelism)
                .max()
                .unwrap_or(1);
            let (claim, ever) = c
                .storage
                .claim(
                    first_id,
                    options.restored_from.clone(),
                    options.restored_latest,
                    options.deployment.as_deref(),
                    widest as u32,
                )
                .map_err(|e| Error::Claim(Box::new(e)))?;
            // Exactly-once Kafka sinks fence the transactional ids of every subtask any
            // run of this directory may have had, not only this run's.
            shared.transactions.fence_subtasks_below(ever as usize);
            shared.attempt.store(claim.attempt, Ordering::SeqCst);
            first_id = claim.first_checkpoint - 1;
        }
        for v in &plan.vertices {
            if let VertexKind::Sink(SinkKind::File(dir, _)) = &v.kind {
                discard_staged(std::path::Path::new(dir)).map_err(|e| {
                    Error::Restore(format!("cannot clean the sink directory {dir}: {e}"))
                })?;
            }
        }

        let mut receivers: Vec<Vec<Option<Receiver<Envelope>>>> = Vec::new();
        let mut senders: Vec<Vec<SyncSender<Envelope>>> = Vec::new();
        for v in &plan.vertices {
            let (mut tx, mut rx) = (Vec::new(), Vec::new());
            for _ in 0..v.parallelism {
                let (s, r) = sync_channel(CHANNEL_CAPACITY);
                tx.push(s);
                rx.push(Some(r));
            }
            senders.push(tx);
            receivers.push(rx);
        }
        let mut metrics = Vec::new();
        let mut handles = Vec::new();
        let mut task = 0usize;
        for (vi, v) in plan.vertices.iter().enumerate() {
            let slots = std::mem::take(&mut receivers[vi]);
            let mut vertex_restores = std::mem::take(&mut restores[vi]);
            for (subtask, slot) in slots.into_iter().enumerate() {
                let mut edges = Vec::new();
                for (ci, c) in plan.vertices.iter().enumerate() {
                    for (input, e) in c.inputs.iter().enumerate() {
                        if e.from == vi {
                            edges.push((e.port, input, e.partition.clone(), senders[ci].clone()));
                        }
                    }
                }
                let outputs = Outputs { edges, subtask };
                let m = TaskMetrics::of_vertex(
                    &v.name,
                    &v.uid,
                    v.inputs
                        .iter()
                        .map(|e| plan.vertices[e.from].uid.clone())
                        .collect(),
                    v.scalable,
                    subtask,
                );
                metrics.push(m.clone());
                let rx = slot.expect("one receiver per subtask");
                let upstream: Vec<usize> = v
                    .inputs
                    .iter()
                    .map(|e| match e.partition {
                        Partition::Forward => 1,
                        _ => plan.vertices[e.from].parallelism,
                    })
                    .collect();
                let vertex = v.clone();
                let cancel = cancelled.clone();
                let restore = std::mem::take(&mut vertex_restores[subtask]);
                let ckpt = TaskCheckpoints {
                    shared: shared.clone(),
                    acks: ack_tx.clone(),
                    task,
                };
                task += 1;
                handles.push(
                    std::thread::Builder::new()
                        .name(format!("{}-{subtask}", v.name))
                        .spawn(move || {
                            let name = vertex.name.clone();
                            let ctx = TaskContext {
                                v: vertex,
                                subtask,
                                upstream,
                                outputs,
                                metrics: m,
                                cancel: &cancel,
                                ckpt,
                            };
                            let result = task::run(ctx, rx, restore);
                            result.map_err(|error| {
                                cancel.store(true, Ordering::Relaxed);
                                Error::Task {
                                    vertex: name,
                                    subtask,
                                    error,
                                }
                            })
                        })
                        .expect("a task thread starts"),
                );
            }
        }
        drop(senders);
        drop(ack_tx);
        let coordinator = {
            let (shared, cancelled) = (shared.clone(), cancelled.clone());
            let config = options.checkpoints.clone();
            std::thread::Builder::new()
                .name("checkpoint-coordinator".into())
                .spawn(move || {
                    coordinator::run(
                        config,
                        task,
                        first_id,
                        shared,
                        ack_rx,
                        savepoint_rx,
                        cancelled,
                    )
                })
                .expect("the coordinator thread starts")
        };
        Ok(Running {
            handles,
            coordinator: Some(coordinator),
            metrics,
            started,
            cancelled,
            checkpoints: shared,
            savepoints: savepoint_tx,
            dropped,
        })
    }

    /// Whether every task has finished.
    pub fn is_finished(&self) -> bool {
        self.handles.iter().all(JoinHandle::is_finished)
            && self
                .coordinator
                .as_ref()
                .is_none_or(JoinHandle::is_finished)
    }

    /// Asks every task to stop.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }

    /// A handle that requests savepoints (for the control endpoint).
    pub fn savepoint_requests(&self) -> Sender<SavepointRequest> {
        self.savepoints.clone()
    }

    /// Requests a savepoint into `target`; the answer (its URL, or why it failed) arrives on
    /// the returned channel. With `stop`, the job stops once it is written.
    pub fn savepoint(&self, target: Storage, stop: bool) -> Receiver<crate::Result<String>> {
        let (reply, answer) = std::sync::mpsc::channel();
        let request = SavepointRequest {
            target,
            stop,
            reply,
        };
        if let Err(e) = self.savepoints.send(request) {
            let _ = e.0.reply.send(Err(Error::NotRunning("is not running")));
        }
        answer
    }

    /// Waits for the job; the first task failure, if any, is the error.
    pub fn wait(mut self) -> Result<Summary, Error> {
        let mut first_error = None;
        for h in std::mem::take(&mut self.handles) {
            match h.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    // Prefer the cause over the tasks that stopped because of it.
                    let knock_on =
                        |e: &Error| matches!(e, Error::Task { error, .. } if error.is_knock_on());
                    if first_error
                        .as_ref()
                        .is_none_or(|f| knock_on(f) && !knock_on(&e))
                    {
                        first_error = Some(e);
                    }
                }
                Err(_) => {
                    first_error.get_or_insert(Error::Task {
                        vertex: "?".into(),
                        subtask: 0,
                        error: TaskError::Panicked,
                    });
                }
            }
        }
        if first_error.is_some() {
            self.cancelled.store(true, Ordering::Relaxed);
        }
        if let Some(c) = self.coordinator.take() {
            match c.join() {
                Ok(Ok(_)) => {}
                Ok(Err(message)) => {
                    first_error.get_or_insert(Error::Coordinator(Box::new(message)));
                }
                Err(_) => {
                    first_error.get_or_insert(Error::CoordinatorPanicked);
                }
            }
        }
        let mut done = summary(&self.metrics, self.started.elapsed());
        if self.checkpoints.stop.load(Ordering::SeqCst) {
            // Stopped with a savepoint: the tasks were told to stop, their "errors" say so.
            done.stopped = true;
            return Ok(done);
        }
        if let Some(e) = first_error {
            return Err(e);
        }
        Ok(done)
    }
}

/// Totals over task counters.
pub fn summary(metrics: &[Arc<TaskMetrics>], elapsed: Duration) -> Summary {
    let mut s = Summary {
        elapsed,
        ..Default::default()
    };
    for m in metrics {
        s.late_records += m.late_records.load(Ordering::Relaxed);
        if m.vertex.starts_with("source:") {
            s.records_in += m.records_in.load(Ordering::Relaxed);
        }
        if m.vertex.starts_with("sink:") {
            s.records_out += m.records_in.load(Ordering::Relaxed);
        }
    }
    s
}
