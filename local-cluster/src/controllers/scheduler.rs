//! Puts pods without a node on the ready node with the fewest pods whose labels satisfy the
//! pod's `nodeSelector`.

use serde_json::{Value, json};

use super::{opts, rt};
use crate::apiserver::{ApiServer, meta};

/// One scheduling pass.
pub fn reconcile(server: &ApiServer) {
    let pods_rt = rt(server, "", "pods");
    let nodes_rt = rt(server, "", "nodes");
    let (nodes, _) = server.store.list(&nodes_rt.storage_key(), None);
    let (pods, _) = server.store.list(&pods_rt.storage_key(), None);
    let ready: Vec<&Value> = nodes
        .iter()
        .map(|n| n.as_ref())
        .filter(|n| {
            n.pointer("/status/conditions")
                .and_then(Value::as_array)
                .is_some_and(|c| {
                    c.iter()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                })
                && n.pointer("/spec/unschedulable") != Some(&json!(true))
        })
        .collect();
    // Pods placed in this pass count toward their node's load at once.
    let mut placed: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for pod in pods
        .iter()
        .filter(|p| p.pointer("/spec/nodeName").is_none() && !super::is_terminating(p))
    {
        let selector = pod.pointer("/spec/nodeSelector").and_then(Value::as_object);
        let fits = |n: &&Value| {
            selector.is_none_or(|sel| {
                sel.iter()
                    .all(|(k, v)| n.pointer("/metadata/labels").and_then(|l| l.get(k)) == Some(v))
            })
        };
        let load = |n: &Value| {
            pods.iter()
                .filter(|p| {
                    p.pointer("/spec/nodeName").and_then(Value::as_str) == Some(meta::name_of(n))
                })
                .count()
                + placed.get(meta::name_of(n)).copied().unwrap_or(0)
        };
        let Some(node) = ready.iter().copied().filter(fits).min_by_key(|n| load(n)) else {
            continue;
        };
        let node_name = meta::name_of(node).to_owned();
        *placed.entry(node_name.clone()).or_default() += 1;
        let message = format!(
            "Successfully assigned {}/{} to {node_name}",
            meta::meta_str(pod, "namespace").unwrap_or_default(),
            meta::name_of(pod)
        );
        crate::apiserver::events::record(
            server,
            pod,
            "Normal",
            "Scheduled",
            &message,
            "default-scheduler",
        );
        let ns = meta::meta_str(pod, "namespace").map(str::to_owned);
        let _ = server.modify(
            &pods_rt,
            ns.as_deref(),
            meta::name_of(pod),
            None,
            &opts("default-scheduler"),
            |old| {
                let mut new = old.clone();
                if new.pointer("/spec/nodeName").is_none() {
                    new["spec"]["nodeName"] = json!(node_name);
                }
                Ok(new)
            },
        );
        let _ = server.modify(&pods_rt, ns.as_deref(), meta::name_of(pod), Some("status"), &opts("default-scheduler"), |old| {
            let mut new = old.clone();
            let conditions = new["status"]["conditions"].as_array().cloned().unwrap_or_default();
            if !conditions.iter().any(|c| c["type"] == "PodScheduled") {
                let mut c = conditions;
                c.push(json!({"type": "PodScheduled", "status": "True", "lastTransitionTime": meta::now()}));
                new["status"]["conditions"] = json!(c);
            }
            Ok(new)
        });
    }
}
