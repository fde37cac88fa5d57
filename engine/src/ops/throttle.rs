//! Throttle: a step whose every row costs `1 / rate` seconds of work, so a subtask passes
//! at most `rate` rows per second. The waiting counts as busy time (the task is doing its
//! work slowly), so a throttle behaves like a slow operator: its busy fraction is its input
//! rate ÷ `rate`, and beyond that it backpressures its input. It is the predictable
//! workload the autoscaler's tests scale.

use std::time::{Duration, Instant};

use arrow::error::ArrowError;

use super::Operator;
use crate::batch::{Batch, SchemaRef};

/// Rate-limited pass-through.
pub struct Throttle {
    per_second: u64,
    schema: SchemaRef,
    /// Work owed (positive) or done ahead by oversleeping (negative), in seconds.
    debt: f64,
}

impl Throttle {
    /// At most `per_second` rows per second.
    pub fn new(per_second: u64, schema: SchemaRef) -> Self {
        Throttle {
            per_second: per_second.max(1),
            schema,
            debt: 0.0,
        }
    }
}

impl Operator for Throttle {
    fn process(
        &mut self,
        _input: usize,
        batch: Batch,
        out: &mut Vec<Batch>,
    ) -> Result<(), ArrowError> {
        let cost = batch.len() as f64 / self.per_second as f64;
        self.debt += cost;
        if self.debt > 0.0 {
            let start = Instant::now();
            std::thread::sleep(Duration::from_secs_f64(self.debt));
            self.debt -= start.elapsed().as_secs_f64();
        }
        // Oversleeping may pay for the next row or so, never for idle time.
        self.debt = self.debt.max(-cost);
        out.push(batch);
        Ok(())
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}
