//! Throttle: passes rows on at no more than a set rate per subtask. The waiting counts as
//! busy time (the task is doing its work slowly), so a throttle behaves like a slow operator:
//! it backpressures its input.

use std::time::{Duration, Instant};

use arrow::error::ArrowError;

use super::Operator;
use crate::runtime::{Batch, SchemaRef};

/// Rate-limited pass-through.
pub struct Throttle {
    per_second: u64,
    schema: SchemaRef,
    started: Option<Instant>,
    passed: u64,
}

impl Throttle {
    /// At most `per_second` rows per second.
    pub fn new(per_second: u64, schema: SchemaRef) -> Self {
        Throttle {
            per_second: per_second.max(1),
            schema,
            started: None,
            passed: 0,
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
        let started = *self.started.get_or_insert_with(Instant::now);
        self.passed += batch.len() as u64;
        let due = Duration::from_secs_f64(self.passed as f64 / self.per_second as f64);
        let spent = started.elapsed();
        if due > spent {
            std::thread::sleep(due - spent);
        }
        out.push(batch);
        Ok(())
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}
