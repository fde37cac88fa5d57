//! A union step: every input to one subtask.

use std::sync::Arc;

use super::builder::{Builder, Step};
use super::{OpFactory, Partition, problem};
use crate::batch::SchemaRef;
use crate::ops::{self, Operator};

impl Builder {
    /// `union:`.
    pub(super) fn union(&mut self, step: &Step) {
        let Step { path, t, .. } = step.clone();
        let schemas: Vec<SchemaRef> = t.union.iter().map(|n| self.outputs[n].1.clone()).collect();
        for (j, s) in schemas.iter().enumerate().skip(1) {
            let same = s.fields().len() == schemas[0].fields().len()
                && s.fields()
                    .iter()
                    .zip(schemas[0].fields())
                    .all(|(a, b)| a.data_type() == b.data_type());
            if !same {
                self.problems.push(problem(
                    format!("{path}.union[{j}]"),
                    "has different columns than the first input",
                ));
                return;
            }
        }
        let schema = schemas[0].clone();
        let s2 = schema.clone();
        let factory: OpFactory =
            Arc::new(move || Box::new(ops::Union::new(s2.clone())) as Box<dyn Operator>);
        let edges = t
            .union
            .iter()
            .map(|n| self.edge(n, Partition::Single))
            .collect();
        self.attach(&t.name, None, 1, factory, schema.clone(), edges);
        self.post_select(&path, t, &schema);
    }
}
