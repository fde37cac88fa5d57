//! A window aggregation step: an optional pre-filter fused with its input, a keyed
//! exchange, and `WindowAggregate` with its late-data side output.

use std::sync::Arc;

use super::builder::{Builder, Step};
use super::{OpFactory, Partition};
use strom_jobspec::typing;

use crate::expr::{Expr, Ty};
use crate::ops::{self, Aggregates, Operator};
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
        let Some(scope) = self.scope(&path, &schema) else {
            return;
        };
        let key_types: Vec<Ty> = key_exprs.iter().map(Expr::ty).collect();
        let (calls, items, _) = typing::window_items(
            &scope,
            &path,
            &t.key_by,
            &key_types,
            &t.select,
            &mut self.problems,
        );
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
