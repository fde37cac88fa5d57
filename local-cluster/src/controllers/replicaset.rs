//! ReplicaSet → Pods: creates missing pods (`<replicaset>-<random>`), removes surplus ones
//! (not-ready and newest first), and reports counts.

use serde_json::{Value, json};

use super::{
    controlled_by, controller_ref, is_finished, is_ready, is_terminating, opts, rt, set_status,
};
use crate::apiserver::ops::DeleteOptions;
use crate::apiserver::{ApiServer, meta};

const MANAGER: &str = "replicaset-controller";

/// One pass over every ReplicaSet.
pub fn reconcile(server: &ApiServer) {
    let rs_rt = rt(server, "apps", "replicasets");
    let pods_rt = rt(server, "", "pods");
    let (sets, _) = server.store.list(&rs_rt.storage_key(), None);
    let (pods, _) = server.store.list(&pods_rt.storage_key(), None);
    for rs in sets.iter().filter(|r| !is_terminating(r)) {
        let uid = meta::meta_str(rs, "uid").unwrap_or_default();
        let ns = meta::meta_str(rs, "namespace")
            .unwrap_or("default")
            .to_owned();
        let want = rs
            .pointer("/spec/replicas")
            .and_then(Value::as_i64)
            .unwrap_or(1)
            .max(0) as usize;
        let mut mine: Vec<&Value> = pods
            .iter()
            .map(|p| p.as_ref())
            .filter(|p| controlled_by(p, uid) && !is_terminating(p) && !is_finished(p))
            .collect();
        // Finished pods of a ReplicaSet are replaced (its pods always restart).
        for p in pods
            .iter()
            .filter(|p| controlled_by(p, uid) && is_finished(p) && !is_terminating(p))
        {
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
        if mine.len() < want {
            let template = rs.pointer("/spec/template").cloned().unwrap_or(json!({}));
            for _ in mine.len()..want {
                let mut pod = json!({
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": template.get("metadata").cloned().unwrap_or(json!({})),
                    "spec": template.get("spec").cloned().unwrap_or(json!({})),
                });
                let m = meta::metadata_mut(&mut pod);
                m.insert(
                    "generateName".into(),
                    json!(format!("{}-", meta::name_of(rs))),
                );
                m.remove("name");
                m.insert("namespace".into(), json!(ns));
                m.insert(
                    "ownerReferences".into(),
                    json!([controller_ref(rs, "apps/v1", "ReplicaSet")]),
                );
                match server.create(&pods_rt, Some(&ns), pod, &opts(MANAGER)) {
                    Ok(w) => crate::apiserver::events::record(
                        server,
                        rs,
                        "Normal",
                        "SuccessfulCreate",
                        &format!("Created pod: {}", meta::name_of(&w.object)),
                        MANAGER,
                    ),
                    Err(e) => tracing::debug!(error = %e.message, "pod not created"),
                }
            }
        } else if mine.len() > want {
            mine.sort_by_key(|p| {
                (
                    is_ready(p),
                    std::cmp::Reverse(
                        meta::meta_str(p, "creationTimestamp")
                            .unwrap_or_default()
                            .to_owned(),
                    ),
                )
            });
            for p in &mine[..mine.len() - want] {
                let _ = server.delete(
                    &pods_rt,
                    Some(&ns),
                    meta::name_of(p),
                    &DeleteOptions::default(),
                );
            }
            mine.truncate(want);
        }
        let ready = mine.iter().filter(|p| is_ready(p)).count();
        let status = json!({
            "replicas": mine.len(),
            "fullyLabeledReplicas": mine.len(),
            "readyReplicas": ready,
            "availableReplicas": ready,
            "observedGeneration": rs.pointer("/metadata/generation").cloned().unwrap_or(json!(1)),
        });
        set_status(server, &rs_rt, rs, status, MANAGER);
    }
}
