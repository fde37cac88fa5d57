//! The kubelet: runs the pods scheduled to this machine's nodes as local processes.
//!
//! Images map to local executables (`strom/engine:*` → the built `strom-engine`). Each pod
//! gets its own loopback address as pod IP, its ConfigMap/Secret/emptyDir volumes as files
//! under a per-pod directory (mount paths in the command, args and env are rewritten to
//! them), its env resolved from field refs, ConfigMaps and Secrets, probes, restarts by
//! `restartPolicy` with back-off, logs per container, and SIGTERM then SIGKILL after the
//! grace period on deletion. Tests can crash a container or take a node down.

mod container;
mod env;
mod logs;
mod pod;
mod probe;

use std::collections::{BTreeSet, HashMap};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::apiserver::ops::{DeleteOptions, WriteOptions};
use crate::apiserver::{ApiServer, meta};
use crate::cluster::Config;

/// The node's address: `status.hostIP` of every pod, and the pod IP of a `hostNetwork` pod.
pub(crate) const HOST_IP: Ipv4Addr = Ipv4Addr::LOCALHOST;

pub use container::ContainerState;

const MANAGER: &str = "kubelet";

/// The names of the nodes the local kubelet serves.
pub const NODES: &[&str] = &["local-node-1", "local-node-2"];

/// A pod the kubelet runs.
struct PodHandle {
    namespace: String,
    name: String,
    node: String,
    /// Graceful stop (deletion): SIGTERM, then SIGKILL after the grace period.
    stop: CancellationToken,
    /// Immediate stop (node lost, pod force-deleted).
    kill: CancellationToken,
    containers: Arc<Mutex<Vec<ContainerState>>>,
}

/// The kubelet's shared state.
pub struct Kubelet {
    server: Arc<ApiServer>,
    dir: PathBuf,
    images: Vec<(String, PathBuf)>,
    kubeconfig: PathBuf,
    pods: Mutex<HashMap<String, PodHandle>>,
    used_ips: Mutex<BTreeSet<Ipv4Addr>>,
    down: Mutex<BTreeSet<String>>,
    ip_range: IpRange,
    tasks: Mutex<JoinSet<()>>,
    cancel: CancellationToken,
}

/// Starts the kubelet: registers the nodes and runs pods until `cancel`.
pub fn spawn(
    server: &Arc<ApiServer>,
    config: &Config,
    cancel: &CancellationToken,
    tasks: &mut JoinSet<()>,
) -> anyhow::Result<Arc<Kubelet>> {
    let kubelet = Arc::new(Kubelet {
        server: server.clone(),
        dir: config.dir.join("pods"),
        images: config.images.clone(),
        kubeconfig: config.dir.join("kubeconfig"),
        pods: Mutex::new(HashMap::new()),
        used_ips: Mutex::new(BTreeSet::new()),
        down: Mutex::new(BTreeSet::new()),
        ip_range: IpRange::claim()?,
        tasks: Mutex::new(JoinSet::new()),
        cancel: cancel.child_token(),
    });
    std::fs::create_dir_all(&kubelet.dir)?;
    for node in NODES {
        kubelet.register_node(node, true);
    }
    let _ = server.logs.set(Arc::new(logs::Logs {
        kubelet: Arc::downgrade(&kubelet),
    }));
    let k = kubelet.clone();
    tasks.spawn(async move { k.run().await });
    Ok(kubelet)
}

impl Kubelet {
    /// Where PersistentVolumeClaims' data lives: beside the pod directories, kept when pods go.
    pub fn claims_dir(&self) -> PathBuf {
        self.dir.with_file_name("claims")
    }

    fn node_status(ready: bool) -> Value {
        let now = meta::now();
        json!({
            "conditions": [{
                "type": "Ready",
                "status": if ready { "True" } else { "False" },
                "reason": if ready { "KubeletReady" } else { "NodeStatusUnknown" },
                "message": if ready { "kubelet is posting ready status" } else { "Kubelet stopped posting node status." },
                "lastHeartbeatTime": now,
                "lastTransitionTime": now,
            }],
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}, {"type": "Hostname", "address": "localhost"}],
            "capacity": {"cpu": "2", "memory": "24Gi", "pods": "110"},
            "allocatable": {"cpu": "2", "memory": "24Gi", "pods": "110"},
            "nodeInfo": {"kubeletVersion": "v1.32.0-strom", "operatingSystem": "linux", "architecture": "amd64", "containerRuntimeVersion": "strom-local://0.1"},
        })
    }

    fn register_node(&self, name: &str, ready: bool) {
        let rt = self
            .server
            .registry
            .find("", "v1", "nodes")
            .expect("built in");
        let opts = WriteOptions {
            field_manager: Some(MANAGER.into()),
            ..Default::default()
        };
        if self.server.get(&rt, None, name).is_err() {
            let node = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux"}}});
            let _ = self.server.create(&rt, None, node, &opts);
        }
        let status = Self::node_status(ready);
        let _ = self
            .server
            .modify(&rt, None, name, Some("status"), &opts, |old| {
                let mut new = old.clone();
                new["status"] = status;
                Ok(new)
            });
    }

    async fn run(self: Arc<Self>) {
        let (_, _, mut events) = self.server.store.watch_now("", None);
        let mut resync = tokio::time::interval(Duration::from_millis(500));
        loop {
            tokio::select! {
                _ = self.cancel.cancelled() => break,
                received = events.recv() => {
                    if let Err(RecvError::Closed) = received { break; }
                    while events.try_recv().is_ok() {}
                }
                _ = resync.tick() => {}
            }
            self.sync();
        }
        // Stop every pod's processes before the cluster goes away.
        for (_, pod) in self.pods.lock().expect("pods").drain() {
            pod.kill.cancel();
        }
        let mut tasks = std::mem::take(&mut *self.tasks.lock().expect("tasks"));
        while tasks.join_next().await.is_some() {}
    }

    fn sync(self: &Arc<Self>) {
        let rt = self
            .server
            .registry
            .find("", "v1", "pods")
            .expect("built in");
        let (pods, _) = self.server.store.list(&rt.storage_key(), None);
        let down = self.down.lock().expect("down").clone();
        let mut seen = BTreeSet::new();
        for pod in &pods {
            let Some(node) = pod.pointer("/spec/nodeName").and_then(Value::as_str) else {
                continue;
            };
            if !NODES.contains(&node) || down.contains(node) {
                continue;
            }
            let uid = meta::meta_str(pod, "uid").unwrap_or_default().to_owned();
            seen.insert(uid.clone());
            let terminating = pod.pointer("/metadata/deletionTimestamp").is_some();
            let mut handles = self.pods.lock().expect("pods");
            match handles.get(&uid) {
                Some(h) if terminating => h.stop.cancel(),
                Some(_) => {}
                None if terminating => {
                    // Never started here: nothing to stop.
                    drop(handles);
                    let ns = meta::meta_str(pod, "namespace").map(str::to_owned);
                    let _ = self.server.delete(
                        &rt,
                        ns.as_deref(),
                        meta::name_of(pod),
                        &DeleteOptions {
                            grace_period: Some(0),
                            ..Default::default()
                        },
                    );
                }
                None => {
                    if is_finished(pod) {
                        continue;
                    }
                    // `hostNetwork: true`: the pod shares the node's address, so what it
                    // listens on is reachable at a fixed address (the Kafka example's
                    // broker); releasing the host's address is a no-op.
                    let ip = if pod.pointer("/spec/hostNetwork").and_then(Value::as_bool)
                        == Some(true)
                    {
                        HOST_IP
                    } else {
                        self.allocate_ip()
                    };
                    let handle = PodHandle {
                        namespace: meta::meta_str(pod, "namespace")
                            .unwrap_or("default")
                            .to_owned(),
                        name: meta::name_of(pod).to_owned(),
                        node: node.to_owned(),
                        stop: CancellationToken::new(),
                        kill: self.cancel.child_token(),
                        containers: Arc::new(Mutex::new(Vec::new())),
                    };
                    let worker = pod::PodWorker {
                        kubelet: self.clone(),
                        pod: (**pod).clone(),
                        ip,
                        stop: handle.stop.clone(),
                        kill: handle.kill.clone(),
                        containers: handle.containers.clone(),
                    };
                    handles.insert(uid.clone(), handle);
                    drop(handles);
                    self.tasks.lock().expect("tasks").spawn(worker.run());
                }
            }
        }
        // Pods removed from the API without a graceful stop (force deletion): kill.
        let mut handles = self.pods.lock().expect("pods");
        for (uid, h) in handles.iter() {
            if !seen.contains(uid) {
                h.kill.cancel();
            }
        }
        handles.retain(|uid, _| seen.contains(uid));
    }

    fn allocate_ip(&self) -> Ipv4Addr {
        let mut used = self.used_ips.lock().expect("ips");
        let octet = self.ip_range.octet;
        for n in 0..64_000u32 {
            let ip = Ipv4Addr::new(127, octet, (n / 250) as u8, (n % 250 + 2) as u8);
            if used.insert(ip) {
                return ip;
            }
        }
        Ipv4Addr::new(127, octet, 255, 254)
    }

    pub(crate) fn release_ip(&self, ip: Ipv4Addr) {
        if ip == HOST_IP {
            return;
        }
        self.used_ips.lock().expect("ips").remove(&ip);
    }

    /// The state of a container of a running pod.
    pub fn container_state(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
    ) -> Option<ContainerState> {
        let handles = self.pods.lock().expect("pods");
        let h = handles
            .values()
            .find(|h| h.namespace == namespace && h.name == pod)?;
        let states = h.containers.lock().expect("containers");
        states.iter().find(|c| c.name == container).cloned()
    }

    /// Kills a container's process with SIGKILL, as if it crashed; its restart policy
    /// decides what follows. Returns whether a running process was found.
    pub fn crash_container(&self, namespace: &str, pod: &str, container: &str) -> bool {
        match self
            .container_state(namespace, pod, container)
            .and_then(|c| c.pid)
        {
            Some(pid) => container::kill_group(pid, nix::sys::signal::Signal::SIGKILL),
            None => false,
        }
    }

    /// Takes a node down: its status turns NotReady, every process of its pods is killed,
    /// and its pods are removed (as the node lifecycle controller evicts them), so their
    /// controllers recreate them on a ready node.
    pub fn fail_node(&self, node: &str) {
        self.down.lock().expect("down").insert(node.to_owned());
        self.register_node(node, false);
        let victims: Vec<(String, String)> = {
            let mut handles = self.pods.lock().expect("pods");
            let uids: Vec<String> = handles
                .iter()
                .filter(|(_, h)| h.node == node)
                .map(|(u, _)| u.clone())
                .collect();
            uids.iter()
                .filter_map(|u| handles.remove(u))
                .map(|h| {
                    h.kill.cancel();
                    (h.namespace, h.name)
                })
                .collect()
        };
        let rt = self
            .server
            .registry
            .find("", "v1", "pods")
            .expect("built in");
        let (pods, _) = self.server.store.list(&rt.storage_key(), None);
        for pod in pods
            .iter()
            .filter(|p| p.pointer("/spec/nodeName").and_then(Value::as_str) == Some(node))
        {
            let ns = meta::meta_str(pod, "namespace").map(str::to_owned);
            let _ = self.server.delete(
                &rt,
                ns.as_deref(),
                meta::name_of(pod),
                &DeleteOptions {
                    grace_period: Some(0),
                    ..Default::default()
                },
            );
        }
        tracing::info!(node, pods = victims.len(), "node taken down");
    }

    /// Brings a node back.
    pub fn restore_node(&self, node: &str) {
        self.down.lock().expect("down").remove(node);
        self.register_node(node, true);
    }
}

/// The pod IPs of one kubelet: `127.<octet>.0.0/16`, with the octet held by a lock file
/// for the kubelet's lifetime, so that local clusters running side by side (tests, several
/// users) never hand out the same address.
struct IpRange {
    octet: u8,
    _lock: nix::fcntl::Flock<std::fs::File>,
}

impl IpRange {
    fn claim() -> anyhow::Result<IpRange> {
        use nix::fcntl::{Flock, FlockArg};
        let dir = std::env::temp_dir().join("strom-local-ip-ranges");
        std::fs::create_dir_all(&dir)?;
        let start = std::process::id() as usize;
        for i in 0..253usize {
            // 127.0.0.0/16 is left alone: 127.0.0.1 is everyone's loopback.
            let octet = (1 + (start + i) % 253) as u8;
            let file = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(dir.join(format!("{octet}.lock")))?;
            // The lock is released when the kubelet (and so this handle) goes away.
            if let Ok(lock) = Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                return Ok(IpRange { octet, _lock: lock });
            }
        }
        anyhow::bail!("every pod IP range 127.1-253.0.0/16 is held by another local cluster")
    }
}

fn is_finished(pod: &Value) -> bool {
    matches!(
        pod.pointer("/status/phase").and_then(Value::as_str),
        Some("Succeeded" | "Failed")
    )
}
