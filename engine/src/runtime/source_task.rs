//! A source task.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::message::Message;
use super::metrics::{Clock, Phase};
use super::operator_task;
use super::source_position::{self, SourcePosition};
use super::task::{TaskContext, TaskError, source_schema};
use crate::batch::{Batch, MAX_WATERMARK, MIN_WATERMARK};
use crate::io::source::{BATCH_ROWS, Datagen, FileReader, Watermarker};
use crate::ops::Chain;

/// How long a source past a stop-with-savepoint's barrier sleeps between looks at whether
/// the job stops (or the savepoint failed and it reads on).
pub(crate) const HOLD: Duration = Duration::from_millis(10);
use crate::plan::VertexKind;
use crate::snapshot::coordinator::OpState;
use crate::snapshot::decode;

/// Reads the source (a file or generated records) at its rate, stamps watermarks, runs
/// the fused chain, and takes part in checkpoints by saving its position before it sends
/// the barrier.
pub(crate) fn run(
    ctx: &TaskContext<'_>,
    mut chain: Chain,
    restored: Vec<Vec<u8>>,
) -> Result<(), TaskError> {
    let (v, subtask, metrics, outputs) = (&ctx.v, ctx.subtask, &ctx.metrics, &ctx.outputs);
    let mut clock = Clock::new(metrics.clone());
    let mut out = Vec::new();
    let mut marker = v.watermark.map(|(col, delay)| Watermarker::new(col, delay));
    let mut file = match &v.kind {
        VertexKind::File {
            path,
            format,
            batch_rows,
        } => Some(FileReader::open(
            path,
            *format,
            source_schema(v),
            subtask,
            v.parallelism,
            *batch_rows,
        )?),
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
        let mut bases = Vec::new();
        for bytes in &restored {
            let p: SourcePosition = decode(bytes)?;
            position.rows_read += p.rows_read;
            position.produced += p.produced;
            bases.push(p.max_seen);
            streams.extend(p.streams);
            stride = p.stride;
        }
        position.max_seen = source_position::merged_basis(bases);
        if let Some(g) = &mut generator {
            g.resume(streams, stride);
        }
        if let Some(m) = &mut marker {
            m.resume(position.max_seen);
        }
        if let Some(f) = &mut file {
            if v.parallelism > 1 && restored.len() != 1 {
                return Err(TaskError::Failed(
                    "a Parquet source restores only at the parallelism its snapshot was taken at"
                        .into(),
                ));
            }
            f.skip_rows(position.rows_read)?;
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
     -> Result<(), TaskError> {
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
            return Err(TaskError::Cancelled);
        }
        checkpoint(&chain, &mut clock, rows_read, produced, &marker, &generator)?;
        if ctx.ckpt.shared.holds(last_checkpoint.get()) {
            std::thread::sleep(HOLD);
            continue;
        }
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
                    return Err(TaskError::Cancelled);
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
        let data = data?;
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
            Some(m) => m.stamp(data)?,
            None => Batch::plain(data),
        };
        chain.process(0, batch, &mut out)?;
        for b in out.drain(..) {
            outputs.data(&mut clock, b)?;
        }
        operator_task::late_out(&mut chain, outputs, &mut clock)?;
        if let Some(m) = &marker {
            let w = m.current();
            if w > last_wm {
                last_wm = w;
                metrics.watermark.store(w, Ordering::Relaxed);
                chain.on_watermark(w, &mut out)?;
                for b in out.drain(..) {
                    outputs.data(&mut clock, b)?;
                }
                operator_task::late_out(&mut chain, outputs, &mut clock)?;
                outputs.broadcast(&mut clock, &Message::Watermark(w))?;
            }
        }
        metrics.late_records.store(chain.late(), Ordering::Relaxed);
    }
    // The final position: everything read.
    let position = ctx.source_state(generator.as_ref(), marker.as_ref(), rows_read, produced);
    end_of_input(ctx, &mut chain, &mut clock, position, last_checkpoint.get())
}

/// A source subtask's end: fires what the chain holds (the watermark goes to the end of
/// time), acknowledges its final state (`position`, valid for every later checkpoint; the
/// last one it saw: `last_checkpoint`), and tells its outputs.
pub(crate) fn end_of_input(
    ctx: &TaskContext<'_>,
    chain: &mut Chain,
    clock: &mut Clock,
    position: OpState,
    last_checkpoint: u64,
) -> Result<(), TaskError> {
    let mut out = Vec::new();
    chain.on_watermark(MAX_WATERMARK, &mut out)?;
    for b in out.drain(..) {
        ctx.outputs.data(clock, b)?;
    }
    ctx.metrics
        .late_records
        .store(chain.late(), Ordering::Relaxed);
    let mut states = ctx.chain_states(chain)?;
    states.push(position);
    ctx.outputs
        .broadcast(clock, &Message::Watermark(MAX_WATERMARK))?;
    ctx.outputs.broadcast(clock, &Message::End)?;
    ctx.ack(last_checkpoint, states, Vec::new(), true);
    clock.switch(Phase::Busy);
    Ok(())
}
