//! One pod's life: its volumes, its containers (each a `container::ContainerRunner`), its
//! status, and its graceful end.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::container::*;
use super::{Kubelet, MANAGER, env};
use crate::apiserver::meta;
use crate::apiserver::ops::{DeleteOptions, WriteOptions};

/// Runs one pod until it ends, is deleted or is killed.
pub struct PodWorker {
    pub(super) kubelet: Arc<Kubelet>,
    pub(super) pod: Value,
    pub(super) ip: Ipv4Addr,
    pub(super) stop: CancellationToken,
    pub(super) kill: CancellationToken,
    pub(super) containers: Arc<Mutex<Vec<ContainerState>>>,
}

impl PodWorker {
    fn dir(&self) -> PathBuf {
        let uid = meta::meta_str(&self.pod, "uid").unwrap_or_default();
        self.kubelet.dir.join(format!(
            "{}_{}_{uid}",
            meta::meta_str(&self.pod, "namespace").unwrap_or_default(),
            meta::name_of(&self.pod)
        ))
    }

    pub(super) async fn run(self) {
        let dir = self.dir();
        let ns = meta::meta_str(&self.pod, "namespace")
            .unwrap_or("default")
            .to_owned();
        let name = meta::name_of(&self.pod).to_owned();
        let start_time = meta::now();
        let specs: Vec<Value> = self
            .pod
            .pointer("/spec/containers")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        {
            let mut states = self.containers.lock().expect("containers");
            for c in &specs {
                let cname = c["name"].as_str().unwrap_or_default().to_owned();
                states.push(ContainerState {
                    name: cname.clone(),
                    image: c["image"].as_str().unwrap_or_default().to_owned(),
                    state: json!({"waiting": {"reason": "ContainerCreating"}}),
                    last_state: json!({}),
                    ready: false,
                    restart_count: 0,
                    pid: None,
                    done: false,
                    exit_code: None,
                    log: dir.join("logs").join(format!("{cname}.log")),
                });
            }
        }
        let changed = Arc::new(tokio::sync::Notify::new());
        let volumes = match env::materialize_volumes(
            &self.kubelet.server,
            &self.pod,
            &dir,
            &self.kubelet.claims_dir(),
        ) {
            Ok(v) => v,
            Err(message) => {
                self.set_all_waiting("CreateContainerConfigError", &message);
                self.write_status(&start_time);
                // Wait for deletion; the pod cannot start.
                tokio::select! { _ = self.stop.cancelled() => {}, _ = self.kill.cancelled() => {} }
                self.finish(&ns, &name).await;
                return;
            }
        };
        let mut runs = JoinSet::new();
        for (index, spec) in specs.into_iter().enumerate() {
            let runner = ContainerRunner {
                kubelet: self.kubelet.clone(),
                pod: self.pod.clone(),
                spec,
                index,
                ip: self.ip,
                dir: dir.clone(),
                volumes: volumes.clone(),
                states: self.containers.clone(),
                changed: changed.clone(),
                stop: self.stop.clone(),
                kill: self.kill.clone(),
            };
            runs.spawn(runner.run());
        }
        self.write_status(&start_time);
        loop {
            tokio::select! {
                _ = changed.notified() => self.write_status(&start_time),
                finished = runs.join_next() => {
                    if finished.is_none() { break; }
                    self.write_status(&start_time);
                }
            }
        }
        self.write_status(&start_time);
        self.finish(&ns, &name).await;
    }

    async fn finish(&self, ns: &str, name: &str) {
        self.kubelet.release_ip(self.ip);
        // A graceful stop ends with the kubelet confirming the deletion.
        if self.stop.is_cancelled() && !self.kill.is_cancelled() {
            let rt = self
                .kubelet
                .server
                .registry
                .find("", "v1", "pods")
                .expect("built in");
            let uid = meta::meta_str(&self.pod, "uid").map(str::to_owned);
            let _ = self.kubelet.server.delete(
                &rt,
                Some(ns),
                name,
                &DeleteOptions {
                    grace_period: Some(0),
                    uid,
                    ..Default::default()
                },
            );
        }
    }

    fn set_all_waiting(&self, reason: &str, message: &str) {
        for c in self.containers.lock().expect("containers").iter_mut() {
            c.state = json!({"waiting": {"reason": reason, "message": message}});
        }
    }

    fn write_status(&self, start_time: &str) {
        let states = self.containers.lock().expect("containers").clone();
        let statuses: Vec<Value> = states
            .iter()
            .map(|c| {
                json!({
                    "name": c.name,
                    "image": c.image,
                    "imageID": format!("strom-local://{}", c.image),
                    "containerID": c.pid.map(|p| format!("strom-local://{p}")),
                    "ready": c.ready,
                    "started": c.state.get("running").is_some(),
                    "restartCount": c.restart_count,
                    "state": c.state,
                    "lastState": c.last_state,
                })
            })
            .collect();
        let all_ready = !states.is_empty() && states.iter().all(|c| c.ready);
        let all_done = states.iter().all(|c| c.done);
        let phase = if all_done && states.iter().all(|c| c.exit_code == Some(0)) {
            "Succeeded"
        } else if all_done && states.iter().any(|c| c.exit_code.is_some()) {
            "Failed"
        } else if states.iter().any(|c| {
            c.state.get("running").is_some() || c.restart_count > 0 || c.exit_code.is_some()
        }) {
            "Running"
        } else {
            "Pending"
        };
        let rt = self
            .kubelet
            .server
            .registry
            .find("", "v1", "pods")
            .expect("built in");
        let ns = meta::meta_str(&self.pod, "namespace").map(str::to_owned);
        let ip = self.ip.to_string();
        let opts = WriteOptions {
            field_manager: Some(MANAGER.into()),
            ..Default::default()
        };
        let start_time = start_time.to_owned();
        let _ = self.kubelet.server.modify(&rt, ns.as_deref(), meta::name_of(&self.pod), Some("status"), &opts, move |old| {
            let mut new = old.clone();
            let previous: Vec<Value> = old.pointer("/status/conditions").and_then(Value::as_array).cloned().unwrap_or_default();
            let condition = |type_: &str, ok: bool| {
                let status = if ok { "True" } else { "False" };
                let since = previous
                    .iter()
                    .find(|c| c["type"] == type_ && c["status"] == status)
                    .and_then(|c| c.get("lastTransitionTime").cloned())
                    .unwrap_or(json!(meta::now()));
                json!({"type": type_, "status": status, "lastTransitionTime": since, "lastProbeTime": null})
            };
            new["status"] = json!({
                "phase": phase,
                "conditions": [
                    condition("PodReadyToStartContainers", true),
                    condition("Initialized", true),
                    condition("Ready", all_ready),
                    condition("ContainersReady", all_ready),
                    condition("PodScheduled", true),
                ],
                "hostIP": super::HOST_IP.to_string(),
                "hostIPs": [{"ip": super::HOST_IP.to_string()}],
                "podIP": ip,
                "podIPs": [{"ip": ip}],
                "startTime": start_time,
                "containerStatuses": statuses,
                "qosClass": old.pointer("/status/qosClass").cloned().unwrap_or(json!("BestEffort")),
            });
            Ok(new)
        });
    }
}
