//! A top-N step over a windowed input: exchange by window, then `TopN`.

use std::sync::Arc;

use super::builder::{Builder, Step};
use super::{OpFactory, Partition, problem};
use crate::expr::{self, Scope};
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
        let scope = Scope::new(&schema);
        let (start, end) = match (scope.column("window_start"), scope.column("window_end")) {
            (Ok((s, _)), Ok((e, _))) => (s, e),
            _ => {
                self.problems.push(problem(format!("{path}.input"), "top_n needs an input with window_start and window_end columns (a windowed aggregation)"));
                return;
            }
        };
        let order = match expr::parse_order_by(&n.order_by).and_then(|items| {
            items
                .into_iter()
                .map(|(e, asc)| Ok((scope.compile(&e)?, asc)))
                .collect::<Result<Vec<_>, String>>()
        }) {
            Ok(o) => o,
            Err(e) => {
                self.problems
                    .push(problem(format!("{path}.top_n.order_by"), e));
                return;
            }
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
