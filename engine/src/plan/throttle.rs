//! A throttle step: its own task, so a slow throttle backpressures its input.

use std::sync::Arc;

use super::builder::{Builder, Step};
use super::{OpFactory, Partition};
use crate::ops::{self, Operator};

impl Builder {
    /// `throttle:` rows per second per subtask.
    pub(super) fn throttle(&mut self, step: &Step, rate: u64) {
        let Step {
            path,
            t,
            input,
            input_schema,
            ..
        } = step.clone();
        let Some(schema) = input_schema else { return };
        let input_name = input.unwrap_or_default();
        let from = self.outputs[&input_name].0;
        let p = t
            .parallelism
            .map_or(self.vertices[from].parallelism, |p| p as usize);
        let partition = if p == self.vertices[from].parallelism {
            Partition::Forward
        } else {
            Partition::Hash((0..schema.fields().len()).collect())
        };
        let s2 = schema.clone();
        let factory: OpFactory =
            Arc::new(move || Box::new(ops::Throttle::new(rate, s2.clone())) as Box<dyn Operator>);
        // Never fused: a throttle is its own task, so its slowness backpressures the input.
        self.attach(
            &t.name,
            None,
            p,
            factory,
            schema.clone(),
            vec![self.edge(&input_name, partition)],
        );
        self.post_select(&path, t, &schema);
    }
}
