//! Throttle: a step whose every row costs `1 / rate` seconds of work, so a subtask passes
//! at most `rate` rows per second. The waiting counts as busy time (the task is doing its
//! work slowly), so a throttle behaves like a slow operator: its busy fraction is its input
//! rate ÷ `rate`, and beyond that it backpressures its input. It is the predictable
//! workload the autoscaler's tests scale. [`Pace`] is the same rule for a source's
//! `max_records_per_second`.

use std::time::{Duration, Instant};

use arrow::error::ArrowError;

use super::Operator;
use crate::batch::{Batch, SchemaRef};

/// At most `per_second` rows per second: each row owes `1 / per_second` s, slept off.
#[derive(Debug)]
pub struct Pace {
    per_second: u64,
    /// Work owed (positive) or done ahead by oversleeping (negative), in seconds.
    debt: f64,
}

impl Pace {
    /// At most `per_second` rows per second.
    pub fn new(per_second: u64) -> Self {
        Pace {
            per_second: per_second.max(1),
            debt: 0.0,
        }
    }

    /// Rows that take about `secs` seconds at this pace (at least one): a source reads no
    /// more at once, so it is never held back long between checkpoint barriers.
    pub fn rows_in(&self, secs: f64) -> usize {
        ((self.per_second as f64 * secs) as usize).max(1)
    }

    /// Sleeps off what `rows` rows cost.
    pub fn pay(&mut self, rows: usize) {
        let cost = rows as f64 / self.per_second as f64;
        self.debt += cost;
        if self.debt > 0.0 {
            let start = Instant::now();
            std::thread::sleep(Duration::from_secs_f64(self.debt));
            self.debt -= start.elapsed().as_secs_f64();
        }
        // Oversleeping may pay for the next row or so, never for idle time.
        self.debt = self.debt.max(-cost);
    }
}

/// Rate-limited pass-through.
pub struct Throttle {
    pace: Pace,
    schema: SchemaRef,
}

impl Throttle {
    /// At most `per_second` rows per second.
    pub fn new(per_second: u64, schema: SchemaRef) -> Self {
        Throttle {
            pace: Pace::new(per_second),
            schema,
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
        self.pace.pay(batch.len());
        out.push(batch);
        Ok(())
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}
