//! A deduplication step: keyed exchange, then `Deduplicate`.

use std::sync::Arc;

use super::builder::{Builder, Step};
use super::{OpFactory, Partition};
use crate::ops::{self, Operator};
use crate::spec::DeduplicateSpec;

impl Builder {
    /// `deduplicate:`.
    pub(super) fn deduplicate(&mut self, step: &Step, d: &DeduplicateSpec) {
        let Step {
            path,
            t,
            parallelism: p,
            input,
            input_schema,
            ..
        } = step.clone();
        let Some(schema) = input_schema else { return };
        let Some((key_exprs, key_idx)) =
            self.keys(&format!("{path}.deduplicate.key"), &schema, &d.key)
        else {
            return;
        };
        let s2 = schema.clone();
        let ttl = d.ttl.as_ref().and_then(|t| t.millis().ok());
        let factory: OpFactory = Arc::new(move || {
            Box::new(ops::Deduplicate::new(key_exprs.clone(), s2.clone(), ttl)) as Box<dyn Operator>
        });
        let edge = self.edge(
            input.as_deref().unwrap_or_default(),
            Partition::Hash(key_idx),
        );
        self.attach(&t.name, None, p, factory, schema.clone(), vec![edge]);
        self.post_select(&path, t, &schema);
    }
}
