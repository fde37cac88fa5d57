//! The controllers a job needs, running in the cluster's process against the API server's
//! verbs: Deployment → ReplicaSet → Pods, StatefulSet → Pods, and a scheduler that puts
//! pods on ready nodes. Each is level-based: after any change it compares what exists with
//! what is wanted and closes the gap.

mod deployment;
mod replicaset;
mod scheduler;
mod statefulset;

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::apiserver::ops::WriteOptions;
use crate::apiserver::registry::ResourceType;
use crate::apiserver::{ApiServer, meta};

/// Starts the controllers as tasks of the cluster.
pub fn spawn(server: &Arc<ApiServer>, cancel: &CancellationToken, tasks: &mut JoinSet<()>) {
    let server = server.clone();
    let stop = cancel.clone();
    tasks.spawn(async move {
        tokio::select! {
            _ = run(server) => {}
            _ = stop.cancelled() => {}
        }
    });
}

async fn run(server: Arc<ApiServer>) {
    let (_, _, mut events) = server.store.watch_now("", None);
    let mut resync = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            received = events.recv() => {
                if let Err(RecvError::Closed) = received {
                    return;
                }
                // Let a burst settle, then reconcile once.
                tokio::time::sleep(Duration::from_millis(20)).await;
                while events.try_recv().is_ok() {}
            }
            _ = resync.tick() => {}
        }
        reconcile_all(&server);
    }
}

/// One pass of every controller.
pub fn reconcile_all(server: &ApiServer) {
    scheduler::reconcile(server);
    deployment::reconcile(server);
    replicaset::reconcile(server);
    statefulset::reconcile(server);
}

pub(crate) fn rt(server: &ApiServer, group: &str, plural: &str) -> Arc<ResourceType> {
    let version = "v1";
    server
        .registry
        .find(group, version, plural)
        .expect("built-in kind")
}

pub(crate) fn opts(manager: &str) -> WriteOptions {
    WriteOptions {
        field_manager: Some(manager.into()),
        ..Default::default()
    }
}

/// A short, stable hash of a pod template (the `pod-template-hash` / revision label).
pub(crate) fn template_hash(template: &Value) -> String {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    template.to_string().hash(&mut hasher);
    let h = hasher.finish();
    // Kubernetes' alphabet for hashes: no vowels, no ambiguous characters.
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..10)
        .map(|i| ALPHABET[((h >> (i * 6)) % ALPHABET.len() as u64) as usize] as char)
        .collect()
}

/// An owner reference that marks `owner` as the controller of a dependent.
pub(crate) fn controller_ref(owner: &Value, api_version: &str, kind: &str) -> Value {
    json!({
        "apiVersion": api_version,
        "kind": kind,
        "name": meta::name_of(owner),
        "uid": meta::meta_str(owner, "uid").unwrap_or_default(),
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

/// Whether `object` is controlled by the owner with `uid`.
pub(crate) fn controlled_by(object: &Value, uid: &str) -> bool {
    object
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .is_some_and(|refs| {
            refs.iter()
                .any(|r| r["uid"] == uid && r["controller"] == true)
        })
}

pub(crate) fn is_ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|c| {
            c.iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
}

pub(crate) fn is_terminating(object: &Value) -> bool {
    object.pointer("/metadata/deletionTimestamp").is_some()
}

pub(crate) fn is_finished(pod: &Value) -> bool {
    matches!(
        pod.pointer("/status/phase").and_then(Value::as_str),
        Some("Succeeded" | "Failed")
    )
}

/// Writes `status` if it differs from the object's current status.
pub(crate) fn set_status(
    server: &ApiServer,
    rt: &ResourceType,
    object: &Value,
    status: Value,
    manager: &str,
) {
    if object.get("status") == Some(&status) {
        return;
    }
    let ns = meta::meta_str(object, "namespace").map(str::to_owned);
    let result = server.modify(
        rt,
        ns.as_deref(),
        meta::name_of(object),
        Some("status"),
        &opts(manager),
        |old| {
            let mut new = old.clone();
            new["status"] = status;
            Ok(new)
        },
    );
    if let Err(e) = result {
        tracing::debug!(error = %e.message, "status update skipped");
    }
}
