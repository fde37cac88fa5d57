//! An interval join step: both inputs exchanged by their keys, then `IntervalJoin`.

use std::sync::Arc;

use super::builder::{Builder, Step};
use super::{OpFactory, Partition, problem};
use crate::expr::{Expr, Scope};
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
        let (mut lk, mut rk, mut li, mut ri) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (k, cond) in j.keys.iter().enumerate() {
            let parts: Vec<&str> = cond.split('=').map(str::trim).collect();
            let resolved = match parts.as_slice() {
                [l, r] => Scope::new(&left_schema)
                    .column(l.rsplit('.').next().unwrap_or(l))
                    .and_then(|a| {
                        Ok((
                            a,
                            Scope::new(&right_schema).column(r.rsplit('.').next().unwrap_or(r))?,
                        ))
                    }),
                _ => Err("write the condition as left_column = right_column".into()),
            };
            match resolved {
                Ok(((a, at), (b, bt))) if at == bt => {
                    lk.push(Expr::Column(a, at));
                    rk.push(Expr::Column(b, bt));
                    li.push(a);
                    ri.push(b);
                }
                Ok(_) => self.problems.push(problem(
                    format!("{path}.interval_join.keys[{k}]"),
                    "the two columns have different types",
                )),
                Err(e) => self
                    .problems
                    .push(problem(format!("{path}.interval_join.keys[{k}]"), e)),
            }
        }
        let bound = |s: &str| -> Result<i64, String> {
            match s.strip_prefix('-') {
                Some(rest) => crate::spec::Duration(rest.into())
                    .millis()
                    .map(|v| -v)
                    .map_err(|e| e.to_string()),
                None => crate::spec::Duration(s.into())
                    .millis()
                    .map_err(|e| e.to_string()),
            }
        };
        let (lower, upper) = match (bound(&j.lower), bound(&j.upper)) {
            (Ok(l), Ok(u)) if l <= u => (l, u),
            (Ok(_), Ok(_)) => {
                self.problems.push(problem(
                    format!("{path}.interval_join"),
                    "lower must not exceed upper",
                ));
                return;
            }
            (Err(e), _) => {
                self.problems
                    .push(problem(format!("{path}.interval_join.lower"), e));
                return;
            }
            (_, Err(e)) => {
                self.problems
                    .push(problem(format!("{path}.interval_join.upper"), e));
                return;
            }
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
