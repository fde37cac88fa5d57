//! One subtask: its context (vertex, outputs, metrics, checkpoint hand-in), what stops it
//! (typed, so the cause of a failure is told apart from the tasks it stopped), and the
//! dispatch to a source or an operator task.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc::Receiver;

use arrow::error::ArrowError;

use super::launch::{TaskCheckpoints, TaskRestore};
use super::message::Envelope;
use super::metrics::TaskMetrics;
use super::outputs::Outputs;
use super::source_position::SourcePosition;
use super::{kafka_source_task, operator_task, source_task};
use crate::io::source::{Datagen, Watermarker};
use crate::ops::Chain;
use crate::plan::{Vertex, VertexKind};
use crate::snapshot::coordinator::{Ack, OpState};
use crate::snapshot::{Commit, StateOut, encode};

/// Why a task stopped before its end.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// The job was cancelled (or is stopping with a savepoint).
    #[error("cancelled")]
    Cancelled,
    /// A task it reads from stopped.
    #[error("an upstream task stopped")]
    UpstreamStopped,
    /// A task it sends to stopped.
    #[error("a downstream task stopped")]
    DownstreamStopped,
    /// Its thread panicked.
    #[error("a task panicked")]
    Panicked,
    /// Reading, computing or writing rows failed.
    #[error("{0}")]
    Arrow(#[from] ArrowError),
    /// Anything else, said for people.
    #[error("{0}")]
    Failed(String),
}

impl TaskError {
    /// Whether this task stopped because another one did (not a cause of a failure).
    pub fn is_knock_on(&self) -> bool {
        matches!(
            self,
            TaskError::Cancelled | TaskError::UpstreamStopped | TaskError::DownstreamStopped
        )
    }
}

fn build_chain(v: &Vertex) -> Chain {
    Chain(v.chain.iter().map(|f| f()).collect())
}

/// What a task runs with.
pub(crate) struct TaskContext<'a> {
    pub(crate) v: Vertex,
    pub(crate) subtask: usize,
    /// Per input, how many channels feed it.
    pub(crate) upstream: Vec<usize>,
    pub(crate) outputs: Outputs,
    pub(crate) metrics: Arc<TaskMetrics>,
    pub(crate) cancel: &'a AtomicBool,
    pub(crate) ckpt: TaskCheckpoints,
}

impl TaskContext<'_> {
    /// The states of the chain's operators, for an acknowledgement.
    pub(crate) fn chain_states(&self, chain: &Chain) -> Result<Vec<OpState>, TaskError> {
        let mut states = Vec::new();
        for (op, uid) in chain.0.iter().zip(&self.v.uids) {
            let Some(kind) = op.state_kind() else {
                continue;
            };
            let mut out = StateOut::default();
            op.snapshot(&mut out)?;
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
    pub(crate) fn source_state(
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

    pub(crate) fn ack(&self, id: u64, states: Vec<OpState>, commits: Vec<Commit>, finished: bool) {
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

/// Runs one subtask to its end: restores its operators, then reads its source or its
/// inputs.
pub(crate) fn run(
    ctx: TaskContext<'_>,
    rx: Receiver<Envelope>,
    restore: TaskRestore,
) -> Result<(), TaskError> {
    let mut chain = build_chain(&ctx.v);
    for (op, state) in chain.0.iter_mut().zip(restore.ops) {
        if let Some(state) = state {
            op.restore(state)
                .map_err(|e| TaskError::Failed(format!("restoring its state: {e}")))?;
        }
    }
    match &ctx.v.kind {
        VertexKind::File { .. } | VertexKind::Datagen { .. } => {
            source_task::run(&ctx, chain, restore.source)
        }
        VertexKind::Kafka { .. } => kafka_source_task::run(&ctx, chain, restore.source),
        VertexKind::Ops | VertexKind::Sink(_) => operator_task::run(&ctx, chain, rx),
    }
}

pub(crate) fn source_schema(v: &Vertex) -> crate::batch::SchemaRef {
    // A source vertex's own schema is that of its first operator's input: the declared
    // columns. The plan keeps it as the source schema until operators are fused onto it.
    v.source_schema.clone()
}
