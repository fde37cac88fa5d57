//! Deployment → ReplicaSets: one ReplicaSet per pod template (named by its hash) holds the
//! replicas; older templates' ReplicaSets are scaled to zero.

use serde_json::{Value, json};

use super::{controlled_by, controller_ref, opts, rt, set_status, template_hash};
use crate::apiserver::{ApiServer, meta};

const MANAGER: &str = "deployment-controller";

/// One pass over every Deployment.
pub fn reconcile(server: &ApiServer) {
    let deploy_rt = rt(server, "apps", "deployments");
    let rs_rt = rt(server, "apps", "replicasets");
    let (deployments, _) = server.store.list(&deploy_rt.storage_key(), None);
    let (replica_sets, _) = server.store.list(&rs_rt.storage_key(), None);
    for d in deployments.iter().filter(|d| !super::is_terminating(d)) {
        let uid = meta::meta_str(d, "uid").unwrap_or_default();
        let ns = meta::meta_str(d, "namespace")
            .unwrap_or("default")
            .to_owned();
        let replicas = d
            .pointer("/spec/replicas")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let template = d.pointer("/spec/template").cloned().unwrap_or(json!({}));
        let hash = template_hash(&template);
        let name = format!("{}-{hash}", meta::name_of(d));
        let owned: Vec<&Value> = replica_sets
            .iter()
            .map(|r| r.as_ref())
            .filter(|r| controlled_by(r, uid))
            .collect();

        if !owned.iter().any(|r| meta::name_of(r) == name) {
            let mut labels = template
                .pointer("/metadata/labels")
                .cloned()
                .unwrap_or(json!({}));
            labels["pod-template-hash"] = json!(hash);
            let mut selector = d.pointer("/spec/selector").cloned().unwrap_or(json!({}));
            selector["matchLabels"]["pod-template-hash"] = json!(hash);
            let mut rs_template = template.clone();
            rs_template["metadata"]["labels"] = labels.clone();
            let rs = json!({
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "metadata": {"name": name, "namespace": ns, "labels": labels, "ownerReferences": [controller_ref(d, "apps/v1", "Deployment")]},
                "spec": {"replicas": replicas, "selector": selector, "template": rs_template},
            });
            if let Err(e) = server.create(&rs_rt, Some(&ns), rs, &opts(MANAGER)) {
                tracing::debug!(error = %e.message, "replicaset not created");
            }
        }
        for r in &owned {
            let want = if meta::name_of(r) == name {
                replicas
            } else {
                0
            };
            if r.pointer("/spec/replicas").and_then(Value::as_i64) != Some(want) {
                let _ = server.modify(
                    &rs_rt,
                    Some(&ns),
                    meta::name_of(r),
                    None,
                    &opts(MANAGER),
                    |old| {
                        let mut new = old.clone();
                        new["spec"]["replicas"] = json!(want);
                        Ok(new)
                    },
                );
            }
        }
        let sum = |field: &str, only_new: bool| -> i64 {
            owned
                .iter()
                .filter(|r| !only_new || meta::name_of(r) == name)
                .filter_map(|r| {
                    r.pointer(&format!("/status/{field}"))
                        .and_then(Value::as_i64)
                })
                .sum()
        };
        let ready = sum("readyReplicas", false);
        let updated = sum("replicas", true);
        let available = sum("availableReplicas", false);
        let total = sum("replicas", false);
        let generation = d
            .pointer("/metadata/generation")
            .cloned()
            .unwrap_or(json!(1));
        let now = meta::now();
        let previous = d
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let condition = |type_: &str, ok: bool, reason: &str, message: String| {
            let status = if ok { "True" } else { "False" };
            let since = previous
                .iter()
                .find(|c| c["type"] == type_ && c["status"] == status)
                .and_then(|c| c.get("lastTransitionTime").cloned())
                .unwrap_or(json!(now));
            json!({"type": type_, "status": status, "reason": reason, "message": message, "lastTransitionTime": since, "lastUpdateTime": since})
        };
        let complete = updated == replicas && available >= replicas && total == replicas;
        let status = json!({
            "observedGeneration": generation,
            "replicas": total,
            "updatedReplicas": updated,
            "readyReplicas": ready,
            "availableReplicas": available,
            "unavailableReplicas": (replicas - available).max(0),
            "conditions": [
                condition("Available", available >= replicas, if available >= replicas { "MinimumReplicasAvailable" } else { "MinimumReplicasUnavailable" }, format!("Deployment has {available} of {replicas} replicas available.")),
                condition("Progressing", true, if complete { "NewReplicaSetAvailable" } else { "ReplicaSetUpdated" }, format!("ReplicaSet \"{name}\" {}.", if complete { "has successfully progressed" } else { "is progressing" })),
            ],
        });
        let mut status = status;
        // Omit zero counts as Kubernetes does, so `kubectl get` and rollout status read alike.
        for f in [
            "readyReplicas",
            "availableReplicas",
            "updatedReplicas",
            "unavailableReplicas",
        ] {
            if status[f] == 0 {
                status.as_object_mut().expect("object").remove(f);
            }
        }
        set_status(server, &deploy_rt, d, status, MANAGER);
    }
}
