//! Running a plan: one thread per subtask, bounded channels between them. A full channel
//! blocks its sender — that blocking is backpressure, and it is measured: every task splits
//! its time into busy, idle (waiting for input) and backpressured (waiting to send).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, SyncSender, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arrow::error::ArrowError;

use super::metrics::{Clock, Phase, TaskMetrics};
use super::source_position::{self, SourcePosition};
use super::{Batch, MAX_WATERMARK, MIN_WATERMARK, Message, partition};
use crate::io::sink::{SinkWriter, discard_staged};
use crate::io::source::{BATCH_ROWS, Datagen, FileReader, Watermarker};
use crate::ops::Chain;
use crate::plan::{Partition, Plan, SinkKind, Vertex, VertexKind};
use crate::snapshot::coordinator::{
    self, Ack, CheckpointConfig, OpState, SavepointRequest, Shared, commit_all,
};
use crate::snapshot::storage::Storage;
use crate::snapshot::{Metadata, Restored, StateIn, StateOut, decode, encode, state_in};

/// How many messages a channel holds before its sender blocks.
pub const CHANNEL_CAPACITY: usize = 8;

type Envelope = (usize, usize, Message);

/// Why a job failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A task failed; the message names it.
    #[error("{vertex}[{subtask}]: {message}")]
    Task {
        /// Vertex name.
        vertex: String,
        /// Subtask.
        subtask: usize,
        /// What went wrong.
        message: String,
    },
}

/// A running job.
pub struct Running {
    handles: Vec<JoinHandle<Result<(), RunError>>>,
    coordinator: Option<JoinHandle<Result<Option<u64>, String>>>,
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

struct Outputs {
    /// (output port, consumer's input index, partition, senders to the consumer's subtasks)
    edges: Vec<(usize, usize, Partition, Vec<SyncSender<Envelope>>)>,
    subtask: usize,
}

impl Outputs {
    fn send(
        &self,
        clock: &mut Clock,
        to: &SyncSender<Envelope>,
        env: Envelope,
    ) -> Result<(), String> {
        clock.switch(Phase::Busy);
        let result = to
            .send(env)
            .map_err(|_| "a downstream task stopped".to_owned());
        clock.switch(Phase::Backpressured);
        result
    }

    /// Sends rows of the main output (port 0).
    fn data(&self, clock: &mut Clock, batch: Batch) -> Result<(), String> {
        self.data_on(clock, 0, batch)
    }

    /// Sends rows of output `port` (0 main, 1 the late-data side output).
    fn data_on(&self, clock: &mut Clock, port: usize, batch: Batch) -> Result<(), String> {
        if batch.is_empty() {
            return Ok(());
        }
        clock
            .metrics()
            .records_out
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        for (_, input, part, senders) in self.edges.iter().filter(|e| e.0 == port) {
            match part {
                Partition::Forward => self.send(
                    clock,
                    &senders[self.subtask],
                    (*input, self.subtask, Message::Data(batch.clone())),
                )?,
                Partition::Single => self.send(
                    clock,
                    &senders[0],
                    (*input, self.subtask, Message::Data(batch.clone())),
                )?,
                Partition::Hash(keys) => {
                    for (to, part) in
                        partition(&batch, keys, senders.len()).map_err(|e| e.to_string())?
                    {
                        self.send(
                            clock,
                            &senders[to],
                            (*input, self.subtask, Message::Data(part)),
                        )?;
                    }
                }
            }
        }
        Ok(())
    }

    fn broadcast(&self, clock: &mut Clock, msg: &Message) -> Result<(), String> {
        for (_, input, part, senders) in &self.edges {
            let targets: Vec<usize> = match part {
                Partition::Forward => vec![self.subtask],
                Partition::Single => vec![0],
                Partition::Hash(_) => (0..senders.len()).collect(),
            };
            for t in targets {
                self.send(clock, &senders[t], (*input, self.subtask, msg.clone()))?;
            }
        }
        Ok(())
    }
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
    /// The deployment this run belongs to (recorded in its claim).
    pub deployment: Option<String>,
    /// Start even if some of the snapshot's state belongs to no operator of this job.
    pub allow_non_restored_state: bool,
}

/// Why a job could not start from a snapshot.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// State in the snapshot has no operator to go to.
    #[error(
        "the snapshot holds state that no operator of this job takes:\n{}\nrestore it into the job it was taken from, or allow non-restored state (--allow-non-restored-state) to drop it",
        .0.join("\n")
    )]
    Incompatible(Vec<String>),
    /// The state could not be read into the operators.
    #[error("{0}")]
    Restore(String),
    /// The checkpoint directory could not be claimed for this run.
    #[error("checkpoint directory: {0}")]
    Storage(String),
}

/// One task's restored state: per chain operator, and for a source its own.
#[derive(Default)]
struct TaskRestore {
    ops: Vec<Option<StateIn>>,
    source: Vec<Vec<u8>>,
}

/// What a task needs to take part in checkpoints.
#[derive(Clone)]
struct TaskCheckpoints {
    shared: Arc<Shared>,
    acks: Sender<Ack>,
    task: usize,
}

impl Running {
    /// Starts every task of `plan`.
    pub fn start(plan: Plan) -> Running {
        Running::start_with(plan, RunOptions::default()).expect("nothing to restore")
    }

    /// Starts every task of `plan`, restoring state and checkpointing as `options` say. The
    /// operators that had state in the snapshot but are not in this job are in `dropped`.
    pub fn start_with(plan: Plan, options: RunOptions) -> Result<Running, StartError> {
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
                                .map_err(|e| StartError::Restore(format!("{uid}: {e}")))?,
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
                        .map_err(|e| StartError::Restore(format!("{uid}: {e}")))?;
                    for (slot, positions) in restores[vi].iter_mut().zip(assigned) {
                        slot.source.extend(positions);
                    }
                }
            }
            if !homeless.is_empty() {
                if !options.allow_non_restored_state {
                    return Err(StartError::Incompatible(homeless));
                }
                dropped = homeless;
            }
            // The snapshot's sink parts become visible; parts staged after it are redone.
            // A part that cannot be committed stops the restore before the staged parts
            // are cleaned up below, so it is not lost.
            commit_all(meta.commits.iter()).map_err(|e| StartError::Restore(e.to_string()))?;
        }
        if let Some(c) = &options.checkpoints {
            // This run's fencing token: checkpoints numbered from above everything in the
            // directory, and a stale writer of an earlier run can no longer commit.
            let claim = c
                .storage
                .claim(
                    first_id,
                    options.restored_from.clone(),
                    options.deployment.as_deref(),
                )
                .map_err(|e| StartError::Storage(e.to_string()))?;
            shared.attempt.store(claim.attempt, Ordering::SeqCst);
            first_id = claim.first_checkpoint - 1;
        }
        for v in &plan.vertices {
            if let VertexKind::Sink(SinkKind::File(dir, _)) = &v.kind {
                discard_staged(std::path::Path::new(dir)).map_err(|e| {
                    StartError::Restore(format!("cannot clean the sink directory {dir}: {e}"))
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
                            let result = run_task(ctx, rx, restore);
                            result.map_err(|message| {
                                cancel.store(true, Ordering::Relaxed);
                                RunError::Task {
                                    vertex: name,
                                    subtask,
                                    message,
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
                    .map_err(|e| e.to_string())
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
    pub fn savepoint(&self, target: Storage, stop: bool) -> Receiver<Result<String, String>> {
        let (reply, answer) = std::sync::mpsc::channel();
        let request = SavepointRequest {
            target,
            stop,
            reply,
        };
        if let Err(e) = self.savepoints.send(request) {
            let _ = e.0.reply.send(Err("the job is not running".into()));
        }
        answer
    }

    /// Waits for the job; the first task failure, if any, is the error.
    pub fn wait(mut self) -> Result<Summary, RunError> {
        let mut first_error = None;
        for h in std::mem::take(&mut self.handles) {
            match h.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    // Prefer the cause over the tasks that stopped because of it.
                    let knock_on = |e: &RunError| {
                        let RunError::Task { message, .. } = e;
                        message == "cancelled" || message.ends_with("task stopped")
                    };
                    if first_error
                        .as_ref()
                        .is_none_or(|f| knock_on(f) && !knock_on(&e))
                    {
                        first_error = Some(e);
                    }
                }
                Err(_) => {
                    first_error.get_or_insert(RunError::Task {
                        vertex: "?".into(),
                        subtask: 0,
                        message: "a task panicked".into(),
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
                    first_error.get_or_insert(RunError::Task {
                        vertex: "checkpoint-coordinator".into(),
                        subtask: 0,
                        message,
                    });
                }
                Err(_) => {
                    first_error.get_or_insert(RunError::Task {
                        vertex: "checkpoint-coordinator".into(),
                        subtask: 0,
                        message: "panicked".into(),
                    });
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

fn build_chain(v: &Vertex) -> Chain {
    Chain(v.chain.iter().map(|f| f()).collect())
}

struct TaskContext<'a> {
    v: Vertex,
    subtask: usize,
    upstream: Vec<usize>,
    outputs: Outputs,
    metrics: Arc<TaskMetrics>,
    cancel: &'a AtomicBool,
    ckpt: TaskCheckpoints,
}

impl TaskContext<'_> {
    /// The states of the chain's operators, for an acknowledgement.
    fn chain_states(&self, chain: &Chain) -> Result<Vec<OpState>, String> {
        let mut states = Vec::new();
        for (op, uid) in chain.0.iter().zip(&self.v.uids) {
            let Some(kind) = op.state_kind() else {
                continue;
            };
            let mut out = StateOut::default();
            op.snapshot(&mut out).map_err(|e| e.to_string())?;
            states.push(OpState {
                uid: uid.clone(),
                kind: kind.to_owned(),
                subtask: self.subtask,
                parallelism: self.v.parallelism,
                state: out,
            });
        }
        Ok(states)
    }

    /// A source subtask's position, as its state in a snapshot.
    fn source_state(
        &self,
        generator: Option<&Datagen>,
        marker: Option<&Watermarker>,
        rows_read: u64,
        produced: u64,
    ) -> OpState {
        let (streams, stride) = generator.map(Datagen::position).unwrap_or_default();
        let here = SourcePosition {
            rows_read,
            streams,
            stride,
            max_seen: marker.and_then(Watermarker::max_seen),
            produced,
        };
        OpState {
            uid: self.v.uid.clone(),
            kind: if generator.is_some() {
                "source-datagen"
            } else {
                "source-file"
            }
            .into(),
            subtask: self.subtask,
            parallelism: self.v.parallelism,
            state: StateOut {
                scalar: encode(&here),
                ..Default::default()
            },
        }
    }

    fn ack(&self, id: u64, states: Vec<OpState>, commits: Vec<String>, finished: bool) {
        // The coordinator may be gone (the job is stopping); nothing to do then.
        let _ = self.ckpt.acks.send(Ack {
            id,
            task: self.ckpt.task,
            states,
            commits,
            finished,
        });
    }
}

fn run_task(
    ctx: TaskContext<'_>,
    rx: Receiver<Envelope>,
    restore: TaskRestore,
) -> Result<(), String> {
    let mut chain = build_chain(&ctx.v);
    for (op, state) in chain.0.iter_mut().zip(restore.ops) {
        if let Some(state) = state {
            op.restore(state)
                .map_err(|e| format!("restoring its state: {e}"))?;
        }
    }
    match &ctx.v.kind {
        VertexKind::File { .. } | VertexKind::Datagen { .. } => {
            run_source(&ctx, chain, restore.source)
        }
        VertexKind::Ops | VertexKind::Sink(_) => run_ops(&ctx, chain, rx),
    }
}

fn run_source(
    ctx: &TaskContext<'_>,
    mut chain: Chain,
    restored: Vec<Vec<u8>>,
) -> Result<(), String> {
    let (v, subtask, metrics, outputs) = (&ctx.v, ctx.subtask, &ctx.metrics, &ctx.outputs);
    let mut clock = Clock::new(metrics.clone());
    let mut out = Vec::new();
    let err = |e: ArrowError| e.to_string();
    let mut marker = v.watermark.map(|(col, delay)| Watermarker::new(col, delay));
    let mut file = match &v.kind {
        VertexKind::File {
            path,
            format,
            batch_rows,
        } => Some(
            FileReader::open(
                path,
                *format,
                source_schema(v),
                subtask,
                v.parallelism,
                *batch_rows,
            )
            .map_err(err)?,
        ),
        _ => None,
    };
    let mut generator = match &v.kind {
        VertexKind::Datagen {
            generator,
            seed,
            count,
            ..
        } => Some(Datagen::new(
            generator.clone(),
            *seed,
            source_schema(v),
            *count,
            subtask,
            v.parallelism,
        )),
        _ => None,
    };
    // Each subtask takes its share of the rate.
    let phases: Vec<(f64, f64)> = match &v.kind {
        VertexKind::Datagen { rate, .. } => rate
            .iter()
            .map(|(r, secs)| (r / v.parallelism as f64, *secs))
            .collect(),
        _ => Vec::new(),
    };
    let mut position = SourcePosition::default();
    // Resume where the snapshot left off.
    if !restored.is_empty() {
        let mut streams = Vec::new();
        let mut stride = 0;
        for bytes in &restored {
            let p: SourcePosition = decode(bytes).map_err(err)?;
            position.rows_read += p.rows_read;
            position.produced += p.produced;
            position.max_seen = match (position.max_seen, p.max_seen) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
            streams.extend(p.streams);
            stride = p.stride;
        }
        if let Some(g) = &mut generator {
            g.resume(streams, stride);
        }
        if let Some(m) = &mut marker {
            m.resume(position.max_seen);
        }
        if let Some(f) = &mut file {
            if v.parallelism > 1 && restored.len() != 1 {
                return Err(
                    "a Parquet source restores only at the parallelism its snapshot was taken at"
                        .into(),
                );
            }
            f.skip_rows(position.rows_read).map_err(err)?;
        }
    }
    let (mut produced, begun) = (position.produced, Instant::now());
    let schedule_offset = crate::plan::due_after(&phases, produced as f64).unwrap_or_default();
    let since_start = || begun.elapsed() + schedule_offset;
    let mut last_wm = MIN_WATERMARK;
    let (mut idle, mut last_data) = (false, Instant::now());
    let last_checkpoint = std::cell::Cell::new(ctx.ckpt.shared.trigger.load(Ordering::SeqCst));
    // Takes a checkpoint if one was triggered: saves the position, then sends the barrier.
    let checkpoint = |chain: &Chain,
                      clock: &mut Clock,
                      rows_read: u64,
                      produced: u64,
                      marker: &Option<Watermarker>,
                      generator: &Option<Datagen>|
     -> Result<(), String> {
        let id = ctx.ckpt.shared.trigger.load(Ordering::SeqCst);
        if id <= last_checkpoint.get() {
            return Ok(());
        }
        last_checkpoint.set(id);
        let mut states = ctx.chain_states(chain)?;
        states.push(ctx.source_state(generator.as_ref(), marker.as_ref(), rows_read, produced));
        ctx.ack(id, states, Vec::new(), false);
        outputs.broadcast(clock, &Message::Barrier(id))
    };
    let mut rows_read = position.rows_read;
    loop {
        if ctx.cancel.load(Ordering::Relaxed) || ctx.ckpt.shared.stop.load(Ordering::Relaxed) {
            return Err("cancelled".into());
        }
        checkpoint(&chain, &mut clock, rows_read, produced, &marker, &generator)?;
        // Wait until the next record is due; a wait longer than the idle timeout
        // makes the subtask idle, so it stops holding back the watermark.
        if let Some(due) = crate::plan::due_after(&phases, produced as f64) {
            clock.switch(Phase::Busy);
            loop {
                let now = since_start();
                if now >= due {
                    break;
                }
                if ctx.cancel.load(Ordering::Relaxed) {
                    return Err("cancelled".into());
                }
                if ctx.ckpt.shared.trigger.load(Ordering::SeqCst) > last_checkpoint.get() {
                    clock.switch(Phase::Idle);
                    checkpoint(&chain, &mut clock, rows_read, produced, &marker, &generator)?;
                    clock.switch(Phase::Backpressured);
                }
                let mut nap = (due - now).min(Duration::from_millis(20));
                if let (Some(timeout), false) = (v.idle_timeout, idle) {
                    let quiet = last_data.elapsed();
                    if quiet >= timeout {
                        idle = true;
                        metrics.watermark_idle.store(true, Ordering::Relaxed);
                        clock.switch(Phase::Idle);
                        outputs.broadcast(&mut clock, &Message::Idle(true))?;
                        clock.switch(Phase::Backpressured);
                        continue;
                    }
                    nap = nap.min(timeout - quiet);
                }
                std::thread::sleep(nap);
            }
            clock.switch(Phase::Idle);
        }
        // At a limited rate, batches hold about 100 ms of records, also while catching up
        // (a lagging source sends more batches, not bigger ones): a slow consumer then
        // holds only a few hundred milliseconds of records in its input channel, so
        // checkpoint barriers behind them stay quick.
        let limit = if phases.is_empty() {
            BATCH_ROWS
        } else {
            let now = since_start().as_secs_f64();
            let soon = crate::plan::due_by(&phases, now + 0.1);
            let step = (soon - crate::plan::due_by(&phases, now)).clamp(1.0, BATCH_ROWS as f64);
            (soon - produced as f64).clamp(1.0, step) as usize
        };
        let next = match (&mut file, &mut generator) {
            (Some(f), _) => f.next_batch(),
            (_, Some(g)) => g.next_batch(limit),
            _ => None,
        };
        let Some(data) = next else { break };
        let data = data.map_err(err)?;
        rows_read += data.num_rows() as u64;
        if let Some(g) = &generator {
            // A rate-limited generator stands for a stream that arrives on a schedule: its
            // backlog is how far it is behind (a consumer's lag); otherwise, what is left.
            let pending = if phases.is_empty() {
                g.pending().map_or(-1, |p| p as i64)
            } else {
                let due = crate::plan::due_by(&phases, since_start().as_secs_f64());
                (due - (produced + data.num_rows() as u64) as f64).max(0.0) as i64
            };
            metrics.pending_records.store(pending, Ordering::Relaxed);
        }
        last_data = Instant::now();
        if idle {
            idle = false;
            metrics.watermark_idle.store(false, Ordering::Relaxed);
            outputs.broadcast(&mut clock, &Message::Idle(false))?;
        }
        produced += data.num_rows() as u64;
        metrics
            .records_in
            .fetch_add(data.num_rows() as u64, Ordering::Relaxed);
        let batch = match &mut marker {
            Some(m) => m.stamp(data).map_err(err)?,
            None => Batch::plain(data),
        };
        chain.process(0, batch, &mut out).map_err(err)?;
        for b in out.drain(..) {
            outputs.data(&mut clock, b)?;
        }
        late_out(&mut chain, outputs, &mut clock)?;
        if let Some(m) = &marker {
            let w = m.current();
            if w > last_wm {
                last_wm = w;
                metrics.watermark.store(w, Ordering::Relaxed);
                chain.on_watermark(w, &mut out).map_err(err)?;
                for b in out.drain(..) {
                    outputs.data(&mut clock, b)?;
                }
                late_out(&mut chain, outputs, &mut clock)?;
                outputs.broadcast(&mut clock, &Message::Watermark(w))?;
            }
        }
        metrics.late_records.store(chain.late(), Ordering::Relaxed);
    }
    chain.on_watermark(MAX_WATERMARK, &mut out).map_err(err)?;
    for b in out.drain(..) {
        outputs.data(&mut clock, b)?;
    }
    metrics.late_records.store(chain.late(), Ordering::Relaxed);
    // The final position: everything read.
    let mut states = ctx.chain_states(&chain)?;
    states.push(ctx.source_state(generator.as_ref(), marker.as_ref(), rows_read, produced));
    outputs.broadcast(&mut clock, &Message::Watermark(MAX_WATERMARK))?;
    outputs.broadcast(&mut clock, &Message::End)?;
    ctx.ack(last_checkpoint.get(), states, Vec::new(), true);
    clock.switch(Phase::Busy);
    Ok(())
}

fn run_ops(ctx: &TaskContext<'_>, mut chain: Chain, rx: Receiver<Envelope>) -> Result<(), String> {
    let (v, metrics, outputs) = (&ctx.v, &ctx.metrics, &ctx.outputs);
    let mut clock = Clock::new(metrics.clone());
    let mut out = Vec::new();
    let err = |e: ArrowError| e.to_string();
    let mut sink = match &v.kind {
        VertexKind::Sink(SinkKind::File(path, format)) => {
            Some(SinkWriter::parts(path, *format, ctx.subtask).map_err(err)?)
        }
        VertexKind::Sink(SinkKind::Stdout) => Some(SinkWriter::Stdout),
        VertexKind::Sink(SinkKind::Blackhole) => Some(SinkWriter::Blackhole),
        VertexKind::Sink(SinkKind::Collect(f)) => Some(SinkWriter::Collect(f.clone())),
        _ => None,
    };
    let upstream = &ctx.upstream;
    let mut watermarks: Vec<Vec<i64>> = upstream.iter().map(|n| vec![MIN_WATERMARK; *n]).collect();
    let mut idle: Vec<Vec<bool>> = upstream.iter().map(|n| vec![false; *n]).collect();
    // Checkpoint alignment: which channels have sent the barrier, and which have ended.
    let mut barrier_seen: Vec<Vec<bool>> = upstream.iter().map(|n| vec![false; *n]).collect();
    let mut ended: Vec<Vec<bool>> = upstream.iter().map(|n| vec![false; *n]).collect();
    let mut aligning: Option<u64> = None;
    let mut aligning_since = Instant::now();
    let mut last_checkpoint = 0u64;
    // Messages held back from channels that already sent the barrier, and messages to
    // handle before reading more from the channel.
    let mut blocked: VecDeque<Envelope> = VecDeque::new();
    let mut pending: VecDeque<Envelope> = VecDeque::new();
    let mut all_idle = false;
    let total: usize = upstream.iter().sum();
    let (mut ended_count, mut current) = (0usize, MIN_WATERMARK);
    let deliver = |clock: &mut Clock,
                   out: &mut Vec<Batch>,
                   chain: &mut Chain,
                   sink: &mut Option<SinkWriter>|
     -> Result<(), String> {
        late_out(chain, outputs, clock)?;
        for b in out.drain(..) {
            match sink {
                Some(s) => {
                    clock
                        .metrics()
                        .records_out
                        .fetch_add(b.len() as u64, Ordering::Relaxed);
                    s.write(&b.data).map_err(|e| e.to_string())?
                }
                None => outputs.data(clock, b)?,
            }
        }
        Ok(())
    };
    loop {
        let received = match pending.pop_front() {
            Some(env) => Ok(env),
            None => {
                clock.switch(Phase::Busy);
                let r = rx.recv();
                clock.switch(Phase::Idle);
                r
            }
        };
        let Ok((input, from, msg)) = received else {
            return Err("an upstream task stopped".into());
        };
        if ctx.cancel.load(Ordering::Relaxed) {
            return Err("cancelled".into());
        }
        let from = if matches!(v.inputs[input].partition, Partition::Forward) {
            0
        } else {
            from
        };
        if aligning.is_some() && barrier_seen[input][from] {
            blocked.push_back((input, from, msg));
            continue;
        }
        match msg {
            Message::Data(b) => {
                metrics
                    .records_in
                    .fetch_add(b.len() as u64, Ordering::Relaxed);
                if chain.0.is_empty() {
                    out.push(b);
                } else {
                    chain.process(input, b, &mut out).map_err(err)?;
                }
                deliver(&mut clock, &mut out, &mut chain, &mut sink)?;
                metrics.late_records.store(chain.late(), Ordering::Relaxed);
            }
            Message::Watermark(_) | Message::Idle(_) => {
                match msg {
                    Message::Watermark(w) => {
                        watermarks[input][from] = watermarks[input][from].max(w);
                    }
                    Message::Idle(now_idle) => idle[input][from] = now_idle,
                    _ => {}
                }
                // The minimum over active inputs (idle ones excluded); nothing moves
                // while every input is idle.
                let combined = watermarks
                    .iter()
                    .flatten()
                    .zip(idle.iter().flatten())
                    .filter(|(_, idle)| !**idle)
                    .map(|(w, _)| *w)
                    .min();
                let every_input_idle = combined.is_none();
                if every_input_idle != all_idle {
                    all_idle = every_input_idle;
                    metrics.watermark_idle.store(all_idle, Ordering::Relaxed);
                    if sink.is_none() {
                        outputs.broadcast(&mut clock, &Message::Idle(all_idle))?;
                    }
                }
                let combined = combined.unwrap_or(current);
                if combined > current {
                    current = combined;
                    metrics.watermark.store(current, Ordering::Relaxed);
                    chain.on_watermark(current, &mut out).map_err(err)?;
                    deliver(&mut clock, &mut out, &mut chain, &mut sink)?;
                    if sink.is_none() {
                        outputs.broadcast(&mut clock, &Message::Watermark(current))?;
                    }
                }
            }
            Message::Barrier(id) => {
                if id > last_checkpoint && aligning.is_none_or(|a| a < id) {
                    aligning = Some(id);
                    aligning_since = Instant::now();
                    barrier_seen.iter_mut().flatten().for_each(|s| *s = false);
                }
                if aligning == Some(id) {
                    barrier_seen[input][from] = true;
                }
            }
            Message::End => {
                ended[input][from] = true;
                ended_count += 1;
            }
        }
        // Aligned: every channel has sent the barrier or ended.
        if let Some(id) = aligning {
            let aligned = barrier_seen
                .iter()
                .flatten()
                .zip(ended.iter().flatten())
                .all(|(seen, done)| *seen || *done);
            if aligned {
                aligning = None;
                last_checkpoint = id;
                metrics.last_alignment_us.store(
                    aligning_since.elapsed().as_micros() as u64,
                    Ordering::Relaxed,
                );
                let states = ctx.chain_states(&chain)?;
                let commits = match &mut sink {
                    Some(s) => s.stage().map_err(err)?,
                    None => Vec::new(),
                };
                ctx.ack(id, states, commits, false);
                if sink.is_none() {
                    outputs.broadcast(&mut clock, &Message::Barrier(id))?;
                }
                // What was held back comes first, in arrival order per channel.
                blocked.extend(pending.drain(..));
                std::mem::swap(&mut blocked, &mut pending);
            }
        }
        if ended_count == total && aligning.is_none() && pending.is_empty() {
            if current < MAX_WATERMARK {
                chain.on_watermark(MAX_WATERMARK, &mut out).map_err(err)?;
                deliver(&mut clock, &mut out, &mut chain, &mut sink)?;
            }
            metrics.late_records.store(chain.late(), Ordering::Relaxed);
            let states = ctx.chain_states(&chain)?;
            let commits = match &mut sink {
                Some(s) => s.stage().map_err(err)?,
                None => {
                    if current < MAX_WATERMARK {
                        outputs.broadcast(&mut clock, &Message::Watermark(MAX_WATERMARK))?;
                    }
                    outputs.broadcast(&mut clock, &Message::End)?;
                    Vec::new()
                }
            };
            ctx.ack(last_checkpoint, states, commits, true);
            clock.switch(Phase::Busy);
            return Ok(());
        }
    }
}

/// Sends what the chain set aside for the late-data side output.
fn late_out(chain: &mut Chain, outputs: &Outputs, clock: &mut Clock) -> Result<(), String> {
    let mut late = Vec::new();
    chain.take_late(&mut late);
    for b in late {
        outputs.data_on(clock, 1, b)?;
    }
    Ok(())
}

fn source_schema(v: &Vertex) -> crate::runtime::SchemaRef {
    // A source vertex's own schema is that of its first operator's input: the declared
    // columns. The plan keeps it as the source schema until operators are fused onto it.
    v.source_schema.clone()
}
