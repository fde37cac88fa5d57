//! An operator task: reads its inputs, runs its chain (and writes, for a sink), passes on
//! the merged watermark and aligned barriers ([`Gate`]), and acknowledges checkpoints with
//! its operators' state and its sink's staged parts.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Receiver;

use super::gate::Gate;
use super::message::{Envelope, Message};
use super::metrics::{Clock, Phase};
use super::outputs::Outputs;
use super::task::{TaskContext, TaskError};
use crate::batch::{Batch, MAX_WATERMARK};
use crate::io::kafka::sink::KafkaWriter;
use crate::io::sink::SinkWriter;
use crate::ops::Chain;
use crate::plan::{Partition, SinkKind, VertexKind};

/// Runs the task until every input ended.
pub(crate) fn run(
    ctx: &TaskContext<'_>,
    mut chain: Chain,
    rx: Receiver<Envelope>,
) -> Result<(), TaskError> {
    let (v, metrics, outputs) = (&ctx.v, &ctx.metrics, &ctx.outputs);
    let mut clock = Clock::new(metrics.clone());
    let mut out = Vec::new();
    let mut sink = match &v.kind {
        VertexKind::Sink(SinkKind::File(path, format)) => {
            Some(SinkWriter::parts(path, *format, ctx.subtask)?)
        }
        VertexKind::Sink(SinkKind::Kafka { spec, name, key }) => {
            Some(SinkWriter::Kafka(Box::new(KafkaWriter::new(
                spec,
                name,
                *key,
                ctx.subtask,
                v.parallelism,
                ctx.ckpt.shared.transactions.clone(),
            )?)))
        }
        VertexKind::Sink(SinkKind::Stdout) => Some(SinkWriter::Stdout),
        VertexKind::Sink(SinkKind::Blackhole) => Some(SinkWriter::Blackhole),
        VertexKind::Sink(SinkKind::Collect(f)) => Some(SinkWriter::Collect(f.clone())),
        _ => None,
    };
    let mut gate = Gate::new(&ctx.upstream);
    // Messages held back from channels that already sent the barrier, and messages to
    // handle before reading more from the channel.
    let mut blocked: VecDeque<Envelope> = VecDeque::new();
    let mut pending: VecDeque<Envelope> = VecDeque::new();
    let deliver = |clock: &mut Clock,
                   out: &mut Vec<Batch>,
                   chain: &mut Chain,
                   sink: &mut Option<SinkWriter>|
     -> Result<(), TaskError> {
        late_out(chain, outputs, clock)?;
        for b in out.drain(..) {
            match sink {
                Some(s) => {
                    clock
                        .metrics()
                        .records_out
                        .fetch_add(b.len() as u64, Ordering::Relaxed);
                    s.write(&b.data)?
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
            return Err(TaskError::UpstreamStopped);
        };
        if ctx.cancel.load(Ordering::Relaxed) {
            return Err(TaskError::Cancelled);
        }
        let from = if matches!(v.inputs[input].partition, Partition::Forward) {
            0
        } else {
            from
        };
        if gate.holds(input, from) {
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
                    chain.process(input, b, &mut out)?;
                }
                deliver(&mut clock, &mut out, &mut chain, &mut sink)?;
                metrics.late_records.store(chain.late(), Ordering::Relaxed);
            }
            Message::Watermark(_) | Message::Idle(_) => {
                let change = match msg {
                    Message::Watermark(w) => gate.watermark(input, from, w),
                    Message::Idle(idle) => gate.idleness(input, from, idle),
                    _ => unreachable!("matched above"),
                };
                if let Some(all_idle) = change.idle {
                    metrics.watermark_idle.store(all_idle, Ordering::Relaxed);
                    if sink.is_none() {
                        outputs.broadcast(&mut clock, &Message::Idle(all_idle))?;
                    }
                }
                if let Some(w) = change.watermark {
                    metrics.watermark.store(w, Ordering::Relaxed);
                    chain.on_watermark(w, &mut out)?;
                    deliver(&mut clock, &mut out, &mut chain, &mut sink)?;
                    if sink.is_none() {
                        outputs.broadcast(&mut clock, &Message::Watermark(w))?;
                    }
                }
            }
            Message::Barrier(id) => gate.barrier(input, from, id),
            Message::End => gate.end(input, from),
        }
        if let Some(aligned) = gate.aligned() {
            metrics
                .last_alignment_us
                .store(aligned.took.as_micros() as u64, Ordering::Relaxed);
            let states = ctx.chain_states(&chain)?;
            let commits = match &mut sink {
                Some(s) => s.stage(aligned.id)?,
                None => Vec::new(),
            };
            ctx.ack(aligned.id, states, commits, false);
            if sink.is_none() {
                outputs.broadcast(&mut clock, &Message::Barrier(aligned.id))?;
            }
            // What was held back comes first, in arrival order per channel.
            blocked.extend(pending.drain(..));
            std::mem::swap(&mut blocked, &mut pending);
        }
        if gate.finished() && pending.is_empty() {
            let current = gate.current();
            if current < MAX_WATERMARK {
                chain.on_watermark(MAX_WATERMARK, &mut out)?;
                deliver(&mut clock, &mut out, &mut chain, &mut sink)?;
            }
            metrics.late_records.store(chain.late(), Ordering::Relaxed);
            let states = ctx.chain_states(&chain)?;
            let commits = match &mut sink {
                // What came after the last barrier is the next interval's: a pooled Kafka
                // id may have carried the last barrier's transaction already.
                Some(s) => s.stage(gate.last_checkpoint() + 1)?,
                None => {
                    if current < MAX_WATERMARK {
                        outputs.broadcast(&mut clock, &Message::Watermark(MAX_WATERMARK))?;
                    }
                    outputs.broadcast(&mut clock, &Message::End)?;
                    Vec::new()
                }
            };
            ctx.ack(gate.last_checkpoint(), states, commits, true);
            clock.switch(Phase::Busy);
            return Ok(());
        }
    }
}

/// Sends what the chain set aside for the late-data side output.
pub(crate) fn late_out(
    chain: &mut Chain,
    outputs: &Outputs,
    clock: &mut Clock,
) -> Result<(), TaskError> {
    let mut late = Vec::new();
    chain.take_late(&mut late);
    for b in late {
        outputs.data_on(clock, 1, b)?;
    }
    Ok(())
}
