//! StatefulSet → Pods with stable names (`<set>-0`, `<set>-1`, …): created in order (each
//! after the previous is ready, unless `podManagementPolicy: Parallel`), removed from the
//! highest ordinal down, replaced one at a time when the template changes, and recreated
//! when deleted or lost.

use serde_json::{Value, json};

use super::{
    controlled_by, controller_ref, is_finished, is_ready, is_terminating, opts, rt, set_status,
    template_hash,
};
use crate::apiserver::ops::DeleteOptions;
use crate::apiserver::{ApiServer, meta};

const MANAGER: &str = "statefulset-controller";
const REVISION: &str = "controller-revision-hash";

/// One pass over every StatefulSet.
pub fn reconcile(server: &ApiServer) {
    let sts_rt = rt(server, "apps", "statefulsets");
    let pods_rt = rt(server, "", "pods");
    let (sets, _) = server.store.list(&sts_rt.storage_key(), None);
    let (pods, _) = server.store.list(&pods_rt.storage_key(), None);
    for set in sets.iter().filter(|s| !is_terminating(s)) {
        let name = meta::name_of(set).to_owned();
        let uid = meta::meta_str(set, "uid").unwrap_or_default();
        let ns = meta::meta_str(set, "namespace")
            .unwrap_or("default")
            .to_owned();
        let want = set
            .pointer("/spec/replicas")
            .and_then(Value::as_i64)
            .unwrap_or(1)
            .max(0) as usize;
        let parallel = set.pointer("/spec/podManagementPolicy") == Some(&json!("Parallel"));
        let template = set.pointer("/spec/template").cloned().unwrap_or(json!({}));
        let revision = format!("{name}-{}", template_hash(&template));
        let mine: Vec<&Value> = pods
            .iter()
            .map(|p| p.as_ref())
            .filter(|p| controlled_by(p, uid))
            .collect();
        let ordinal = |p: &Value| {
            meta::name_of(p)
                .strip_prefix(&format!("{name}-"))
                .and_then(|o| o.parse::<usize>().ok())
        };
        let at = |i: usize| mine.iter().copied().find(|p| ordinal(p) == Some(i));

        // Failed or finished pods are removed so they can be recreated.
        for p in mine.iter().filter(|p| is_finished(p) && !is_terminating(p)) {
            let _ = server.delete(
                &pods_rt,
                Some(&ns),
                meta::name_of(p),
                &DeleteOptions {
                    grace_period: Some(0),
                    ..Default::default()
                },
            );
        }
        // Create missing ordinals, in order unless parallel.
        for i in 0..want {
            match at(i) {
                Some(p) if !parallel && (!is_ready(p) || is_terminating(p)) => break,
                Some(_) => continue,
                None => {
                    let pod_name = format!("{name}-{i}");
                    let mut metadata = template.get("metadata").cloned().unwrap_or(json!({}));
                    metadata["name"] = json!(pod_name);
                    metadata["namespace"] = json!(ns);
                    metadata["labels"]["statefulset.kubernetes.io/pod-name"] = json!(pod_name);
                    metadata["labels"]["apps.kubernetes.io/pod-index"] = json!(i.to_string());
                    metadata["labels"][REVISION] = json!(revision);
                    metadata["ownerReferences"] =
                        json!([controller_ref(set, "apps/v1", "StatefulSet")]);
                    let mut spec = template.get("spec").cloned().unwrap_or(json!({}));
                    spec["hostname"] = json!(pod_name);
                    if let Some(service) = set.pointer("/spec/serviceName").and_then(Value::as_str)
                    {
                        spec["subdomain"] = json!(service);
                    }
                    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec});
                    match server.create(&pods_rt, Some(&ns), pod, &opts(MANAGER)) {
                        Ok(_) => crate::apiserver::events::record(
                            server,
                            set,
                            "Normal",
                            "SuccessfulCreate",
                            &format!("create Pod {pod_name} in StatefulSet {name} successful"),
                            MANAGER,
                        ),
                        Err(e) => tracing::debug!(error = %e.message, "pod not created"),
                    }
                    if !parallel {
                        break;
                    }
                }
            }
        }
        // Remove surplus ordinals, highest first (one at a time unless parallel).
        let mut surplus: Vec<&Value> = mine
            .iter()
            .copied()
            .filter(|p| ordinal(p).is_none_or(|o| o >= want))
            .collect();
        surplus.sort_by_key(|p| std::cmp::Reverse(ordinal(p)));
        if !surplus.iter().any(|p| is_terminating(p)) {
            for p in surplus.iter().take(if parallel { usize::MAX } else { 1 }) {
                let _ = server.delete(
                    &pods_rt,
                    Some(&ns),
                    meta::name_of(p),
                    &DeleteOptions::default(),
                );
            }
        }
        // Rolling update: replace the highest outdated pod once all are ready.
        let current: Vec<&Value> = (0..want).filter_map(at).collect();
        let all_ready =
            current.len() == want && current.iter().all(|p| is_ready(p) && !is_terminating(p));
        let outdated = current.iter().rev().find(|p| {
            p.pointer(&format!("/metadata/labels/{}", REVISION.replace('/', "~1")))
                .and_then(Value::as_str)
                != Some(revision.as_str())
        });
        if all_ready
            && let Some(p) = outdated
            && set.pointer("/spec/updateStrategy/type") != Some(&json!("OnDelete"))
        {
            let _ = server.delete(
                &pods_rt,
                Some(&ns),
                meta::name_of(p),
                &DeleteOptions::default(),
            );
        }
        let live: Vec<&&Value> = current.iter().filter(|p| !is_terminating(p)).collect();
        let ready = live.iter().filter(|p| is_ready(p)).count();
        let updated = live
            .iter()
            .filter(|p| {
                p.pointer(&format!("/metadata/labels/{REVISION}"))
                    .and_then(Value::as_str)
                    == Some(revision.as_str())
            })
            .count();
        let status = json!({
            "observedGeneration": set.pointer("/metadata/generation").cloned().unwrap_or(json!(1)),
            "replicas": mine.iter().filter(|p| !is_terminating(p)).count(),
            "readyReplicas": ready,
            "availableReplicas": ready,
            "currentReplicas": updated,
            "updatedReplicas": updated,
            "currentRevision": revision,
            "updateRevision": revision,
            "collisionCount": 0,
        });
        set_status(server, &sts_rt, set, status, MANAGER);
    }
}
