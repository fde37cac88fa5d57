//! A window aggregation step: an optional pre-filter fused with its input, a keyed
//! exchange, and `WindowAggregate` with its late-data side output.

use std::sync::Arc;

use super::builder::{Builder, Step};
use super::{OpFactory, Partition, problem};
use crate::expr::{self, Scope, Ty};
use crate::ops::window::OutItem;
use crate::ops::{self, AggKind, Aggregates, Operator};
use crate::spec::{WindowKind, WindowSpec};

impl Builder {
    /// `window:` keyed by `key_by`.
    pub(super) fn window(&mut self, step: &Step, w: &WindowSpec) {
        let Step {
            path,
            t,
            parallelism: p,
            input,
            input_schema,
            ..
        } = step.clone();
        let Some(mut schema) = input_schema else {
            return;
        };
        let mut input_name = input.clone().unwrap_or_default();
        if t.where_.is_some() {
            // The filter runs before the exchange, fused with its input when it can be.
            let Some((f, s)) = self.calc(&path, &schema, t.where_.as_ref(), &[]) else {
                return;
            };
            let pre = format!("{}.where", t.name);
            self.consumers.insert(pre.clone(), 1);
            let from_p = self.vertices[self.outputs[&input_name].0].parallelism;
            let edge = self.edge(&input_name, Partition::Forward);
            self.attach(&pre, Some(&input_name), from_p, f, s.clone(), vec![edge]);
            input_name = pre;
            schema = s;
        }
        let Some((key_exprs, key_idx)) = self.keys(&format!("{path}.key_by"), &schema, &t.key_by)
        else {
            return;
        };
        let kind = match w.kind() {
            Some(WindowKind::Tumble(d)) => ops::WindowKind::Tumble {
                size: d.millis().unwrap_or(1),
            },
            Some(WindowKind::Hop(h)) => ops::WindowKind::Hop {
                size: h.size.millis().unwrap_or(1),
                slide: h.slide.millis().unwrap_or(1),
            },
            Some(WindowKind::Session(g)) => ops::WindowKind::Session {
                gap: g.millis().unwrap_or(1),
            },
            None => return,
        };
        let scope = Scope::new(&schema);
        let mut calls = Vec::new();
        let mut items = Vec::new();
        for (j, s) in t.select.iter().enumerate() {
            let item_path = format!("{path}.select[{j}]");
            let parsed = match expr::parse_select_item(s) {
                Ok(x) => x,
                Err(e) => {
                    self.problems.push(problem(item_path, e));
                    continue;
                }
            };
            let name = parsed
                .1
                .clone()
                .unwrap_or_else(|| expr::default_name(&parsed.0));
            match compile_aggregate(&scope, &parsed.0) {
                Ok(Some(call)) => {
                    calls.push(call);
                    items.push((name, OutItem::Agg(calls.len() - 1)));
                }
                Ok(None) => {
                    let col = expr::default_name(&parsed.0).to_lowercase();
                    if col == "window_start" {
                        items.push((name, OutItem::Start));
                    } else if col == "window_end" {
                        items.push((name, OutItem::End));
                    } else if let Some(k) =
                        t.key_by.iter().position(|k| k.eq_ignore_ascii_case(&col))
                    {
                        items.push((name, OutItem::Key(k)));
                    } else {
                        self.problems.push(problem(item_path, format!("{s:?} must be a key_by column, window_start, window_end or an aggregate such as COUNT(*)")));
                    }
                }
                Err(e) => self.problems.push(problem(item_path, e)),
            }
        }
        let aggs = Aggregates(calls);
        let lateness = ops::window::Lateness {
            allowed: w
                .allowed_lateness
                .as_ref()
                .and_then(|d| d.millis().ok())
                .unwrap_or(0),
            side_output: w
                .late_output
                .as_ref()
                .is_some_and(|l| self.consumers.contains_key(l)),
        };
        let proto = ops::WindowAggregate::new(
            kind,
            lateness,
            key_exprs.clone(),
            aggs.clone(),
            items.clone(),
        );
        let out_schema = proto.schema();
        let factory: OpFactory = Arc::new(move || {
            Box::new(ops::WindowAggregate::new(
                kind,
                lateness,
                key_exprs.clone(),
                aggs.clone(),
                items.clone(),
            )) as Box<dyn Operator>
        });
        let edge = self.edge(&input_name, Partition::Hash(key_idx));
        self.attach(&t.name, None, p, factory, out_schema, vec![edge]);
        if let Some(late) = &w.late_output {
            let v = self.outputs[&t.name].0;
            self.outputs.insert(late.clone(), (v, schema.clone()));
            self.ports.insert(late.clone(), 1);
        }
    }
}

/// An aggregate call, if `e` is one (`COUNT(*)`, `SUM(v)`, …).
pub fn compile_aggregate(
    scope: &Scope,
    e: &sqlparser::ast::Expr,
) -> Result<Option<ops::aggregate::AggCall>, String> {
    use sqlparser::ast::{Expr as E, FunctionArg, FunctionArgExpr, FunctionArguments};
    let E::Function(f) = e else { return Ok(None) };
    let name = f.name.to_string();
    let FunctionArguments::List(list) = &f.args else {
        return Ok(None);
    };
    let distinct = matches!(
        list.duplicate_treatment,
        Some(sqlparser::ast::DuplicateTreatment::Distinct)
    );
    let star = matches!(
        list.args.as_slice(),
        [FunctionArg::Unnamed(FunctionArgExpr::Wildcard)]
    );
    let Some(kind) = AggKind::from_name(&name, distinct, star) else {
        return Ok(None);
    };
    let arg = if star {
        None
    } else {
        match list.args.as_slice() {
            [FunctionArg::Unnamed(FunctionArgExpr::Expr(a))] => Some(scope.compile(a)?),
            _ => return Err(format!("{name} takes one argument")),
        }
    };
    if let (AggKind::Sum | AggKind::Avg, Some(a)) = (kind, &arg)
        && !matches!(a.ty(), Ty::Int | Ty::Float)
    {
        return Err(format!("{name} needs a number"));
    }
    Ok(Some(ops::aggregate::AggCall { kind, arg }))
}
