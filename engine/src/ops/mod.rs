//! Operators: what a task does to the rows and watermarks it receives.
//!
//! An operator implements [`Operator::process`] and overrides the hooks it needs. The
//! runtime calls `on_watermark` when the combined watermark of its inputs rises (to
//! [`crate::batch::MAX_WATERMARK`] at the end of bounded input) and forwards the watermark
//! downstream afterwards, so results of windows a watermark closes travel ahead of it.

pub mod aggregate;
mod calc;
mod dedup;
mod join;
mod throttle;
mod topn;
mod union;
pub mod value;
pub mod window;

use arrow::error::ArrowError;

pub use aggregate::{AggKind, Aggregates};
pub use calc::Calc;
pub use dedup::Deduplicate;
pub use join::IntervalJoin;
pub use throttle::{Pace, Throttle};
pub use topn::TopN;
pub use union::Union;
pub use window::{WindowAggregate, WindowKind};

use crate::batch::{Batch, SchemaRef};
use crate::snapshot::{StateIn, StateOut};

/// Counters an operator reports.
#[derive(Debug, Default, Clone, Copy)]
pub struct OpStats {
    /// Rows dropped (or sent to the late-data side output) because they arrived after their
    /// window (or row) was final.
    pub late: u64,
}

/// A step of a dataflow.
pub trait Operator: Send {
    /// Handles rows from input `input` (0 for single-input operators), appending results.
    fn process(
        &mut self,
        input: usize,
        batch: Batch,
        out: &mut Vec<Batch>,
    ) -> Result<(), ArrowError>;

    /// The combined watermark of the inputs rose to `watermark`.
    fn on_watermark(&mut self, _watermark: i64, _out: &mut Vec<Batch>) -> Result<(), ArrowError> {
        Ok(())
    }

    /// The schema of what it emits.
    fn schema(&self) -> SchemaRef;

    /// Moves rows meant for the late-data side output (port 1) into `out`.
    fn take_late(&mut self, _out: &mut Vec<Batch>) {}

    /// What kind of state it keeps (`window`, `dedup`, …); None for a stateless operator.
    /// A snapshot's state restores only into an operator of the same kind.
    fn state_kind(&self) -> Option<&'static str> {
        None
    }

    /// Saves its state (at a checkpoint barrier).
    fn snapshot(&self, _out: &mut StateOut) -> Result<(), ArrowError> {
        Ok(())
    }

    /// Takes over restored state (before any row arrives).
    fn restore(&mut self, _state: StateIn) -> Result<(), ArrowError> {
        Ok(())
    }

    /// Counters so far.
    fn stats(&self) -> OpStats {
        OpStats::default()
    }
}

/// Operators run one after another in one task (a fused stateless chain ends in at most one
/// stateful operator).
pub struct Chain(pub Vec<Box<dyn Operator>>);

impl Chain {
    /// Runs a batch through every operator.
    pub fn process(
        &mut self,
        input: usize,
        batch: Batch,
        out: &mut Vec<Batch>,
    ) -> Result<(), ArrowError> {
        let mut current = vec![batch];
        for (i, op) in self.0.iter_mut().enumerate() {
            let mut next = Vec::new();
            for b in current {
                op.process(if i == 0 { input } else { 0 }, b, &mut next)?;
            }
            current = next;
        }
        out.extend(current.into_iter().filter(|b| !b.is_empty()));
        Ok(())
    }

    /// Passes a watermark through every operator; what an earlier one emits is processed by
    /// the later ones before they see the watermark.
    pub fn on_watermark(&mut self, watermark: i64, out: &mut Vec<Batch>) -> Result<(), ArrowError> {
        let mut carried: Vec<Batch> = Vec::new();
        for op in self.0.iter_mut() {
            let mut next = Vec::new();
            for b in carried {
                op.process(0, b, &mut next)?;
            }
            op.on_watermark(watermark, &mut next)?;
            carried = next;
        }
        out.extend(carried.into_iter().filter(|b| !b.is_empty()));
        Ok(())
    }

    /// Rows for the late-data side output that the chain's operators set aside.
    pub fn take_late(&mut self, out: &mut Vec<Batch>) {
        for op in &mut self.0 {
            op.take_late(out);
        }
    }

    /// Late rows dropped (or set aside) by the chain.
    pub fn late(&self) -> u64 {
        self.0.iter().map(|o| o.stats().late).sum()
    }
}
