//! DELETE: finalizers, propagation, and pods' graceful termination.

use std::sync::Arc;

use serde_json::{Value, json};

use super::*;
use crate::apiserver::ApiServer;
use crate::apiserver::meta::{self, metadata_mut};
use crate::apiserver::registry::ResourceType;
use crate::apiserver::status::ApiError;
use crate::apiserver::store::Write;

impl ApiServer {
    /// Deletes an object (DELETE): at once, or by marking it when finalizers, graceful pod
    /// termination or namespace cleanup must run first. Returns the object as last stored.
    pub fn delete(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<Arc<Value>, ApiError> {
        let namespace = ns_of(rt, ns);
        let mut last = None;
        let result = self.store.write(&rt.storage_key(), &namespace, name, |old| {
            let old = old.ok_or_else(|| ApiError::not_found(rt, name))?;
            if let Some(uid) = &opts.uid
                && Some(uid.as_str()) != meta::meta_str(old, "uid")
            {
                return Err(ApiError::conflict(rt, name, &format!("Precondition failed: UID in precondition: {uid}, UID in object meta: {}", meta::meta_str(old, "uid").unwrap_or_default())));
            }
            if let Some(rv) = &opts.resource_version
                && Some(rv.as_str()) != meta::meta_str(old, "resourceVersion")
            {
                return Err(ApiError::conflict(rt, name, ApiError::MODIFIED));
            }
            let mut obj = old.clone();
            let marked = old.pointer("/metadata/deletionTimestamp").is_some();
            let mut finalizers: Vec<String> = old
                .pointer("/metadata/finalizers")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|f| f.as_str().map(str::to_owned)).collect())
                .unwrap_or_default();
            match opts.propagation.as_deref() {
                Some("Foreground") if !finalizers.iter().any(|f| f == "foregroundDeletion") => finalizers.push("foregroundDeletion".into()),
                Some("Orphan") if !finalizers.iter().any(|f| f == "orphan") => finalizers.push("orphan".into()),
                _ => {}
            }
            let graceful_pod = rt.plural == "pods"
                && rt.group.is_empty()
                && old.pointer("/spec/nodeName").and_then(Value::as_str).is_some_and(|n| !n.is_empty())
                && old.pointer("/status/phase").and_then(Value::as_str).is_none_or(|p| p != "Succeeded" && p != "Failed")
                && opts.grace_period != Some(0);
            let namespace_cleanup = rt.plural == "namespaces" && rt.group.is_empty();
            if finalizers.is_empty() && !graceful_pod && !namespace_cleanup {
                last = Some(old.clone());
                return Ok(if opts.dry_run { Write::Keep } else { Write::Delete });
            }
            let unchanged_finalizers: Vec<String> = old
                .pointer("/metadata/finalizers")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|f| f.as_str().map(str::to_owned)).collect())
                .unwrap_or_default();
            if marked && graceful_pod_confirmed(rt, old, opts) {
                // The kubelet confirms a pod's end while finalizers still hold it: the
                // last finalizer's removal then deletes it at once.
                let mut obj = old.clone();
                metadata_mut(&mut obj).insert("deletionGracePeriodSeconds".into(), json!(0));
                last = Some(obj.clone());
                return Ok(if opts.dry_run { Write::Keep } else { Write::Put(obj) });
            }
            if marked && finalizers == unchanged_finalizers {
                // Already being deleted; a second DELETE changes nothing.
                last = Some(old.clone());
                return Ok(Write::Keep);
            }
            let m = metadata_mut(&mut obj);
            if !marked {
                let grace = if graceful_pod {
                    opts.grace_period
                        .or_else(|| old.pointer("/spec/terminationGracePeriodSeconds").and_then(Value::as_i64))
                        .unwrap_or(30)
                } else {
                    0
                };
                m.insert("deletionTimestamp".into(), json!(meta::now()));
                m.insert("deletionGracePeriodSeconds".into(), json!(grace));
            }
            if !finalizers.is_empty() {
                m.insert("finalizers".into(), json!(finalizers));
            }
            if namespace_cleanup {
                obj["status"]["phase"] = json!("Terminating");
            }
            last = Some(obj.clone());
            Ok(if opts.dry_run { Write::Keep } else { Write::Put(obj) })
        })?;
        Ok(result
            .or(last.map(Arc::new))
            .unwrap_or_else(|| self.deleted_placeholder(rt, &namespace, name)))
    }
}

pub(super) fn graceful_pod_confirmed(rt: &ResourceType, old: &Value, opts: &DeleteOptions) -> bool {
    rt.plural == "pods"
        && rt.group.is_empty()
        && opts.grace_period == Some(0)
        && old
            .pointer("/metadata/deletionGracePeriodSeconds")
            .and_then(Value::as_i64)
            .unwrap_or(0)
            > 0
}
