//! An interval join step: both inputs exchanged by their keys, then `IntervalJoin`.

use std::sync::Arc;

use super::builder::{Builder, Step};
use super::{OpFactory, Partition};
use strom_jobspec::typing;

use crate::ops::{self, Operator};
use crate::spec::IntervalJoinSpec;

impl Builder {
    /// `interval_join:`.
    pub(super) fn interval_join(&mut self, step: &Step, j: &IntervalJoinSpec) {
        let Step {
            path,
            t,
            parallelism: p,
            input,
            input_schema,
            ..
        } = step.clone();
        let Some(left_schema) = input_schema else {
            return;
        };
        let right_schema = self.outputs[&j.right].1.clone();
        let left_name = input.clone().unwrap_or_default();
        let (Some(left), Some(right)) = (
            self.scope(&path, &left_schema),
            self.scope(&path, &right_schema),
        ) else {
            return;
        };
        let (lk, rk, li, ri) = typing::join_keys(
            &left,
            &right,
            &format!("{path}.interval_join.keys"),
            &j.keys,
            &mut self.problems,
        );
        let Some((lower, upper)) = typing::interval_bounds(
            &format!("{path}.interval_join"),
            &j.lower,
            &j.upper,
            &mut self.problems,
        ) else {
            return;
        };
        let (right_name, ls, rs) = (j.right.clone(), left_schema.clone(), right_schema.clone());
        let ln = left_name.clone();
        let proto = ops::IntervalJoin::new(
            lk.clone(),
            rk.clone(),
            lower,
            upper,
            (&ln, ls.clone()),
            (&right_name, rs.clone()),
        );
        let out_schema = proto.schema();
        let factory: OpFactory = Arc::new(move || {
            Box::new(ops::IntervalJoin::new(
                lk.clone(),
                rk.clone(),
                lower,
                upper,
                (&ln, ls.clone()),
                (&right_name, rs.clone()),
            )) as Box<dyn Operator>
        });
        let edges = vec![
            self.edge(&left_name, Partition::Hash(li)),
            self.edge(&j.right, Partition::Hash(ri)),
        ];
        self.attach(&t.name, None, p, factory, out_schema.clone(), edges);
        self.post_select(&path, t, &out_schema);
    }
}
