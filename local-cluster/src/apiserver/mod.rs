//! An in-memory Kubernetes API server that real `kubectl` and kube-rs talk to over HTTP.
//!
//! One [`ApiServer`] holds the [`store::Store`] of objects and the [`registry::Registry`] of
//! kinds; [`http`] answers requests; [`ops`] implements the verbs (create, update, patch,
//! server-side apply, delete) once, for the HTTP layer and for the in-process controllers.

pub mod apply;
pub mod builtin;
pub mod crd;
pub mod discovery;
pub mod events;
pub mod gc;
pub mod http;
pub mod meta;
pub mod openapi;
pub mod ops;
pub mod patch;
pub mod pod_security;
pub mod protobuf;
pub mod registry;
pub mod selector;
pub mod status;
pub mod store;
pub mod table;
pub mod watch;

use std::sync::atomic::{AtomicU32, AtomicU64};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

pub use registry::{Registry, ResourceType};
pub use status::ApiError;
pub use store::Store;

/// Streams a container's log, for `GET pods/<name>/log`.
pub trait PodLogs: Send + Sync {
    /// The log of `container` in pod `namespace/pod` (None: no such container has run).
    /// With `follow`, the stream stays open while the container runs.
    fn log(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        follow: bool,
        tail_lines: Option<usize>,
    ) -> Option<futures::stream::BoxStream<'static, bytes::Bytes>>;
}

/// The API server's state.
pub struct ApiServer {
    /// Every object.
    pub store: Store,
    /// Every kind served.
    pub registry: Registry,
    /// How often idle watches get a BOOKMARK.
    pub bookmark_interval: Duration,
    /// Where pod logs come from (the kubelet), once it runs.
    pub logs: OnceLock<Arc<dyn PodLogs>>,
    /// Next cluster IP to hand to a Service.
    next_cluster_ip: AtomicU32,
    /// Changes whenever the set of kinds changes, for discovery and OpenAPI caches.
    pub discovery_generation: AtomicU64,
}

impl Default for ApiServer {
    fn default() -> Self {
        Self::new()
    }
}

impl ApiServer {
    /// A server with the built-in kinds and the `default`, `kube-system` and `kube-public`
    /// namespaces.
    pub fn new() -> Self {
        let server = ApiServer {
            store: Store::new(),
            registry: Registry::new(),
            bookmark_interval: Duration::from_secs(5),
            logs: OnceLock::new(),
            next_cluster_ip: AtomicU32::new(10),
            discovery_generation: AtomicU64::new(1),
        };
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            let rt = server
                .registry
                .find("", "v1", "namespaces")
                .expect("built in");
            let body = serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
            server
                .create(&rt, None, body, &ops::WriteOptions::default())
                .expect("the built-in namespaces are valid");
        }
        server
    }
}
