//! Running a plan: one thread per subtask, bounded channels between them. A full channel
//! blocks its sender — that blocking is backpressure, and it is measured: every task splits
//! its time into busy, idle (waiting for input) and backpressured (waiting to send).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arrow::error::ArrowError;

use super::metrics::{Clock, Phase, TaskMetrics};
use super::{Batch, MAX_WATERMARK, MIN_WATERMARK, Message, partition};
use crate::io::sink::SinkWriter;
use crate::io::source::{BATCH_ROWS, Datagen, FileReader, Watermarker};
use crate::ops::Chain;
use crate::plan::{Partition, Plan, SinkKind, Vertex, VertexKind};

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

impl Running {
    /// Starts every task of `plan`.
    pub fn start(plan: Plan) -> Running {
        let started = Instant::now();
        let cancelled = Arc::new(AtomicBool::new(false));
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
        for (vi, v) in plan.vertices.iter().enumerate() {
            let slots = std::mem::take(&mut receivers[vi]);
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
                let m = TaskMetrics::new(&v.name, subtask);
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
                handles.push(
                    std::thread::Builder::new()
                        .name(format!("{}-{subtask}", v.name))
                        .spawn(move || {
                            let name = vertex.name.clone();
                            let result =
                                run_task(vertex, subtask, rx, upstream, outputs, m, &cancel);
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
        Running {
            handles,
            metrics,
            started,
            cancelled,
        }
    }

    /// Whether every task has finished.
    pub fn is_finished(&self) -> bool {
        self.handles.iter().all(JoinHandle::is_finished)
    }

    /// Asks every task to stop.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }

    /// Waits for the job; the first task failure, if any, is the error.
    pub fn wait(self) -> Result<Summary, RunError> {
        let mut first_error = None;
        for h in self.handles {
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
        if let Some(e) = first_error {
            return Err(e);
        }
        Ok(summary(&self.metrics, self.started.elapsed()))
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

fn run_task(
    v: Vertex,
    subtask: usize,
    rx: Receiver<Envelope>,
    upstream: Vec<usize>,
    outputs: Outputs,
    metrics: Arc<TaskMetrics>,
    cancel: &AtomicBool,
) -> Result<(), String> {
    let mut chain = build_chain(&v);
    let mut clock = Clock::new(metrics.clone());
    let mut out = Vec::new();
    let err = |e: ArrowError| e.to_string();
    match &v.kind {
        VertexKind::File { .. } | VertexKind::Datagen { .. } => {
            let mut marker = v.watermark.map(|(col, delay)| Watermarker::new(col, delay));
            let mut file = match &v.kind {
                VertexKind::File { path, format } => Some(
                    FileReader::open(path, *format, source_schema(&v), subtask, v.parallelism)
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
                    source_schema(&v),
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
            let (mut produced, begun) = (0u64, Instant::now());
            let mut last_wm = MIN_WATERMARK;
            let (mut idle, mut last_data) = (false, Instant::now());
            loop {
                if cancel.load(Ordering::Relaxed) {
                    return Err("cancelled".into());
                }
                // Wait until the next record is due; a wait longer than the idle timeout
                // makes the subtask idle, so it stops holding back the watermark.
                if let Some(due) = crate::plan::due_after(&phases, produced as f64) {
                    clock.switch(Phase::Busy);
                    loop {
                        let now = begun.elapsed();
                        if now >= due {
                            break;
                        }
                        if cancel.load(Ordering::Relaxed) {
                            return Err("cancelled".into());
                        }
                        let mut nap = (due - now).min(Duration::from_millis(50));
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
                // At a limited rate, batches hold about 100 ms of records.
                let limit = if phases.is_empty() {
                    BATCH_ROWS
                } else {
                    let soon = begun.elapsed().as_secs_f64() + 0.1;
                    (crate::plan::due_by(&phases, soon) - produced as f64)
                        .clamp(1.0, BATCH_ROWS as f64) as usize
                };
                let next = match (&mut file, &mut generator) {
                    (Some(f), _) => f.next_batch(),
                    (_, Some(g)) => g.next_batch(limit),
                    _ => None,
                };
                let Some(data) = next else { break };
                let data = data.map_err(err)?;
                if let Some(g) = &generator {
                    metrics
                        .pending_records
                        .store(g.pending().map_or(-1, |p| p as i64), Ordering::Relaxed);
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
                late_out(&mut chain, &outputs, &mut clock)?;
                if let Some(m) = &marker {
                    let w = m.current();
                    if w > last_wm {
                        last_wm = w;
                        metrics.watermark.store(w, Ordering::Relaxed);
                        chain.on_watermark(w, &mut out).map_err(err)?;
                        for b in out.drain(..) {
                            outputs.data(&mut clock, b)?;
                        }
                        late_out(&mut chain, &outputs, &mut clock)?;
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
            outputs.broadcast(&mut clock, &Message::Watermark(MAX_WATERMARK))?;
            outputs.broadcast(&mut clock, &Message::End)?;
            clock.switch(Phase::Busy);
            Ok(())
        }
        VertexKind::Ops | VertexKind::Sink(_) => {
            let mut sink = match &v.kind {
                VertexKind::Sink(SinkKind::File(path, format)) => {
                    Some(SinkWriter::file(path, *format).map_err(err)?)
                }
                VertexKind::Sink(SinkKind::Stdout) => Some(SinkWriter::Stdout),
                VertexKind::Sink(SinkKind::Blackhole) => Some(SinkWriter::Blackhole),
                VertexKind::Sink(SinkKind::Collect(f)) => Some(SinkWriter::Collect(f.clone())),
                _ => None,
            };
            let mut watermarks: Vec<Vec<i64>> =
                upstream.iter().map(|n| vec![MIN_WATERMARK; *n]).collect();
            let mut idle: Vec<Vec<bool>> = upstream.iter().map(|n| vec![false; *n]).collect();
            let mut all_idle = false;
            let total: usize = upstream.iter().sum();
            let (mut ended, mut current) = (0usize, MIN_WATERMARK);
            let deliver = |clock: &mut Clock,
                           out: &mut Vec<Batch>,
                           chain: &mut Chain,
                           sink: &mut Option<SinkWriter>|
             -> Result<(), String> {
                late_out(chain, &outputs, clock)?;
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
                clock.switch(Phase::Busy);
                let received = rx.recv();
                clock.switch(Phase::Idle);
                let Ok((input, from, msg)) = received else {
                    return Err("an upstream task stopped".into());
                };
                if cancel.load(Ordering::Relaxed) {
                    return Err("cancelled".into());
                }
                let from = if matches!(v.inputs[input].partition, Partition::Forward) {
                    0
                } else {
                    from
                };
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
                    Message::End => {
                        ended += 1;
                        if ended == total {
                            if current < MAX_WATERMARK {
                                chain.on_watermark(MAX_WATERMARK, &mut out).map_err(err)?;
                                deliver(&mut clock, &mut out, &mut chain, &mut sink)?;
                            }
                            metrics.late_records.store(chain.late(), Ordering::Relaxed);
                            if let Some(s) = &mut sink {
                                s.finish(&v.schema).map_err(err)?;
                            } else {
                                if current < MAX_WATERMARK {
                                    outputs.broadcast(
                                        &mut clock,
                                        &Message::Watermark(MAX_WATERMARK),
                                    )?;
                                }
                                outputs.broadcast(&mut clock, &Message::End)?;
                            }
                            clock.switch(Phase::Busy);
                            return Ok(());
                        }
                    }
                }
            }
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
