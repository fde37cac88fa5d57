//! A top-N step over a windowed input: exchange by window, then `TopN`.

use std::sync::Arc;

use super::builder::{Builder, Step};
use super::{OpFactory, Partition};
use strom_jobspec::typing;

use crate::ops::{self, Operator};
use crate::spec::TopNSpec;

impl Builder {
    /// `top_n:`.
    pub(super) fn top_n(&mut self, step: &Step, n: &TopNSpec) {
        let Step {
            path,
            t,
            parallelism: p,
            input,
            input_schema,
            ..
        } = step.clone();
        let Some(schema) = input_schema else { return };
        let Some(scope) = self.scope(&path, &schema) else {
            return;
        };
        let Some((start, end, order)) =
            typing::top_n_order(&scope, &path, &n.order_by, &mut self.problems)
        else {
            return;
        };
        let (count, ties, number) = (n.limit as usize, n.with_ties, n.number_as.clone());
        let s2 = schema.clone();
        let proto = ops::TopN::new(
            count,
            ties,
            order.clone(),
            start,
            end,
            s2.clone(),
            number.clone(),
        );
        let out_schema = proto.schema();
        let factory: OpFactory = Arc::new(move || {
            Box::new(ops::TopN::new(
                count,
                ties,
                order.clone(),
                start,
                end,
                s2.clone(),
                number.clone(),
            )) as Box<dyn Operator>
        });
        let edge = self.edge(
            input.as_deref().unwrap_or_default(),
            Partition::Hash(vec![start, end]),
        );
        self.attach(&t.name, None, p, factory, out_schema.clone(), vec![edge]);
        self.post_select(&path, t, &out_schema);
    }
}
