//! A Kafka source task: polls its partitions, stamps per-partition watermarks, runs the
//! fused chain, and takes part in checkpoints by saving every partition's offset before
//! it sends the barrier. In bounded mode it ends when every partition reached the offset
//! that was the latest when the job first started.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::message::Message;
use super::metrics::{Clock, Phase};
use super::task::{TaskContext, TaskError, source_schema};
use super::{operator_task, source_task};
use crate::batch::{Batch, MIN_WATERMARK};
use crate::io::kafka::partition_owner;
use crate::io::kafka::source::{KafkaPosition, KafkaReader, OpenFailure};
use crate::io::source::BATCH_ROWS;
use crate::ops::{Chain, Pace};
use crate::plan::VertexKind;
use crate::snapshot::coordinator::OpState;
use crate::snapshot::{StateOut, decode, encode};

/// The state kind of a Kafka source's position in snapshots.
pub(crate) const KIND: &str = "source-kafka";

/// How long one poll waits for records before the task looks at checkpoints, idleness
/// and cancellation again.
const POLL_WAIT: Duration = Duration::from_millis(50);

/// How often the task works out its partitions' lag for `/v1/job` and `/metrics`: the
/// figure is read by people and the autoscaler every few seconds, so per batch is waste.
const LAG_EVERY: Duration = Duration::from_millis(250);

pub(crate) fn run(
    ctx: &TaskContext<'_>,
    mut chain: Chain,
    restored: Vec<Vec<u8>>,
) -> Result<(), TaskError> {
    let (v, metrics, outputs) = (&ctx.v, &ctx.metrics, &ctx.outputs);
    let VertexKind::Kafka {
        spec,
        name,
        metadata,
    } = &v.kind
    else {
        return Err(TaskError::Failed("not a Kafka source".into()));
    };
    let mut clock = Clock::new(metrics.clone());
    let mut out = Vec::new();
    let saved = restored
        .iter()
        .map(|b| decode::<KafkaPosition>(b))
        .collect::<Result<Vec<_>, _>>()?;
    let mut last_checkpoint = ctx.ckpt.shared.trigger.load(Ordering::SeqCst);
    // Until the reader opens, a checkpoint holds the restored positions this subtask owns,
    // so nothing restored is lost while the brokers are away.
    let owned = KafkaPosition {
        partitions: saved
            .iter()
            .flat_map(|p| p.partitions.iter())
            .filter(|p| partition_owner(&p.topic, p.partition, v.parallelism) == ctx.subtask)
            .cloned()
            .collect(),
    };
    let mut backoff = Duration::from_millis(500);
    let mut reader = loop {
        match KafkaReader::open(
            spec,
            name,
            source_schema(v),
            metadata,
            ctx.subtask,
            v.parallelism,
            &saved,
        ) {
            Ok(r) => break r,
            Err(OpenFailure::Invalid(e)) => return Err(e.into()),
            Err(OpenFailure::Unavailable(why)) => {
                tracing::warn!(source = %name, subtask = ctx.subtask, reason = %why, "the Kafka source waits and retries");
                metrics.set_waiting(Some(format!(
                    "{why} (retrying every {} s)",
                    backoff.as_secs().max(1)
                )));
                let until = Instant::now() + backoff;
                while Instant::now() < until {
                    if ctx.cancel.load(Ordering::Relaxed)
                        || ctx.ckpt.shared.stop.load(Ordering::Relaxed)
                    {
                        return Err(TaskError::Cancelled);
                    }
                    let id = ctx.ckpt.shared.trigger.load(Ordering::SeqCst);
                    if id > last_checkpoint {
                        last_checkpoint = id;
                        let mut states = ctx.chain_states(&chain)?;
                        states.push(position_state(ctx, &owned));
                        ctx.ack(id, states, Vec::new(), false);
                        outputs.broadcast(&mut clock, &Message::Barrier(id))?;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    };
    metrics.set_waiting(None);
    metrics
        .source_partitions
        .store(reader.total_partitions() as u64, Ordering::Relaxed);
    let (delay, column) = match v.watermark {
        Some((col, delay)) => (delay, Some(col)),
        None => (0, None),
    };
    let idle_timeout = v.idle_timeout;
    let state = |reader: &KafkaReader| position_state(ctx, &reader.position());
    // The positions at each barrier whose checkpoint has not completed yet.
    let mut at_barriers: Vec<(u64, KafkaPosition)> = Vec::new();
    let mut last_wm = MIN_WATERMARK;
    let mut idle = false;
    let mut lag_at: Option<Instant> = None;
    // `max_records_per_second`: at most 50 ms of records per poll, and the held-back time
    // is busy, as a slow source's would be.
    let mut pace = spec.max_records_per_second.map(Pace::new);
    let batch_rows = pace
        .as_ref()
        .map_or(BATCH_ROWS, |p| p.rows_in(0.05).min(BATCH_ROWS));
    if reader.partition_count() == 0 {
        // More subtasks than partitions: this one has nothing to hold back.
        idle = true;
        metrics.watermark_idle.store(true, Ordering::Relaxed);
        outputs.broadcast(&mut clock, &Message::Idle(true))?;
    }
    loop {
        if ctx.cancel.load(Ordering::Relaxed) || ctx.ckpt.shared.stop.load(Ordering::Relaxed) {
            return Err(TaskError::Cancelled);
        }
        let id = ctx.ckpt.shared.trigger.load(Ordering::SeqCst);
        if id > last_checkpoint {
            last_checkpoint = id;
            // The checkpoint takes the offsets past every bad record read so far: those
            // must be in the dead-letter topic first.
            reader.bad.flush()?;
            let mut states = ctx.chain_states(&chain)?;
            states.push(state(&reader));
            ctx.ack(id, states, Vec::new(), false);
            outputs.broadcast(&mut clock, &Message::Barrier(id))?;
            at_barriers.push((id, reader.position()));
        }
        // A completed checkpoint's offsets go to the consumer group, for monitoring (as
        // Flink's commit.offsets.on.checkpoint); a failed commit is only logged.
        let completed = ctx.ckpt.shared.completed.load(Ordering::SeqCst);
        if let Some(at) = at_barriers.iter().rposition(|(id, _)| *id <= completed) {
            let (id, position) = &at_barriers[at];
            if let Err(e) = reader.commit_to_group(position) {
                tracing::warn!(source = %name, checkpoint = id, error = %e, "could not commit offsets to the consumer group");
            }
            at_barriers.drain(..=at);
        }
        if reader.finished() {
            break;
        }
        reader.discover(spec, ctx.subtask, v.parallelism);
        metrics
            .source_partitions
            .store(reader.total_partitions() as u64, Ordering::Relaxed);
        if ctx.ckpt.shared.holds(last_checkpoint) {
            // Past a stop-with-savepoint's barrier: nothing more is read.
            clock.switch(Phase::Idle);
            std::thread::sleep(source_task::HOLD);
            continue;
        }
        // Waiting for the first record is idle; fetching and decoding the batch is work.
        // (Counting the wait as busy would make a quiet topic's source look saturated to
        // the autoscaler.)
        clock.switch(Phase::Busy);
        let mut arrived = false;
        let polled = reader.poll(batch_rows, POLL_WAIT, || {
            clock.switch(Phase::Idle);
            arrived = true;
        })?;
        clock.switch(if arrived { Phase::Busy } else { Phase::Idle });
        metrics
            .skipped_records
            .store(reader.bad.skipped(), Ordering::Relaxed);
        metrics
            .dead_letter_records
            .store(reader.bad.dead_lettered(), Ordering::Relaxed);
        metrics.set_waiting(reader.waiting());
        if lag_at.is_none_or(|at| at.elapsed() >= LAG_EVERY) {
            lag_at = Some(Instant::now());
            metrics.set_lag(reader.lag());
        }
        if let Some(polled) = polled {
            let rows = polled.batch.num_rows() as u64;
            if let Some(pace) = &mut pace {
                pace.pay(rows as usize);
            }
            metrics.records_in.fetch_add(rows, Ordering::Relaxed);
            if idle {
                idle = false;
                metrics.watermark_idle.store(false, Ordering::Relaxed);
                outputs.broadcast(&mut clock, &Message::Idle(false))?;
            }
            let batch = match column {
                Some(col) => reader.stamp(polled, col, delay, idle_timeout)?,
                None => Batch::plain(polled.batch),
            };
            chain.process(0, batch, &mut out)?;
            for b in out.drain(..) {
                outputs.data(&mut clock, b)?;
            }
            operator_task::late_out(&mut chain, outputs, &mut clock)?;
        }
        if column.is_some() {
            let w = match reader.watermark(delay, idle_timeout) {
                Some(w) => w,
                // Every partition idle or finished: the others decide (idle), or the
                // highest mark stands (a finished partition has no more records).
                None => reader.highest(delay).unwrap_or(MIN_WATERMARK),
            };
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
            let all_idle = reader.partition_count() > 0
                && !reader.finished()
                && reader.watermark(delay, idle_timeout).is_none()
                && idle_timeout.is_some();
            if all_idle != idle && reader.partition_count() > 0 {
                idle = all_idle;
                metrics.watermark_idle.store(idle, Ordering::Relaxed);
                outputs.broadcast(&mut clock, &Message::Idle(idle))?;
            }
        }
        metrics.late_records.store(chain.late(), Ordering::Relaxed);
    }
    reader.bad.flush()?;
    source_task::end_of_input(ctx, &mut chain, &mut clock, state(&reader), last_checkpoint)
}

/// A source subtask's positions as its state in a snapshot.
fn position_state(ctx: &TaskContext<'_>, position: &KafkaPosition) -> OpState {
    OpState {
        uid: ctx.v.uid.clone(),
        kind: KIND.into(),
        subtask: ctx.subtask,
        parallelism: ctx.v.parallelism,
        state: StateOut {
            scalar: encode(position),
            ..Default::default()
        },
    }
}
