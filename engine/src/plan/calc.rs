//! A filter-and-projection step (`where`, `select` only): fused with its input where it can
//! be.

use super::Partition;
use super::builder::{Builder, Step};

impl Builder {
    /// `where` and `select` alone.
    pub(super) fn calc_step(&mut self, step: &Step) {
        let Step {
            path,
            t,
            parallelism: p,
            input,
            input_schema,
            ..
        } = step.clone();
        // Filter and projection.
        let Some(schema) = input_schema else { return };
        let Some((factory, out_schema)) = self.calc(&path, &schema, t.where_.as_ref(), &t.select)
        else {
            return;
        };
        let input_name = input.unwrap_or_default();
        let from = self.outputs[&input_name].0;
        let from_p = self.vertices[from].parallelism;
        let (partition, p) = if t.parallelism.is_none() || p == from_p {
            (Partition::Forward, from_p)
        } else {
            (Partition::Single, 1)
        };
        self.attach(
            &t.name,
            Some(&input_name),
            p,
            factory,
            out_schema,
            vec![self.edge(&input_name, partition)],
        );
    }
}
