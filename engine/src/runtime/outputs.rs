//! A task's outputs: sending rows (routed by the edge's partitioning) and broadcasting
//! watermarks, barriers and the end. A full channel blocks: that wait is backpressure, and
//! the task's clock counts it.

use std::sync::atomic::Ordering;
use std::sync::mpsc::SyncSender;

use super::message::{Envelope, Message};
use super::metrics::{Clock, Phase};
use super::task::TaskError;
use crate::batch::Batch;
use crate::hash::partition;
use crate::plan::Partition;

/// How many messages a channel holds before its sender blocks.
pub const CHANNEL_CAPACITY: usize = 8;

/// Where a task sends what it produces: per output edge, the senders to the consumer's
/// subtasks, and how rows are routed to them.
pub(crate) struct Outputs {
    /// (output port, consumer's input index, partition, senders to the consumer's subtasks)
    pub(crate) edges: Vec<(usize, usize, Partition, Vec<SyncSender<Envelope>>)>,
    pub(crate) subtask: usize,
}

impl Outputs {
    pub(crate) fn send(
        &self,
        clock: &mut Clock,
        to: &SyncSender<Envelope>,
        env: Envelope,
    ) -> Result<(), TaskError> {
        clock.switch(Phase::Busy);
        let result = to.send(env).map_err(|_| TaskError::DownstreamStopped);
        clock.switch(Phase::Backpressured);
        result
    }

    /// Sends rows of the main output (port 0).
    pub(crate) fn data(&self, clock: &mut Clock, batch: Batch) -> Result<(), TaskError> {
        self.data_on(clock, 0, batch)
    }

    /// Sends rows of output `port` (0 main, 1 the late-data side output).
    pub(crate) fn data_on(
        &self,
        clock: &mut Clock,
        port: usize,
        batch: Batch,
    ) -> Result<(), TaskError> {
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
                    for (to, part) in partition(&batch, keys, senders.len())? {
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

    pub(crate) fn broadcast(&self, clock: &mut Clock, msg: &Message) -> Result<(), TaskError> {
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
