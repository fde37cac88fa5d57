//! A whole local cluster in one process: the API server, the garbage collector, the
//! workload controllers and the kubelet, with a kubeconfig for kubectl and kube-rs.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::apiserver::{ApiServer, gc, http};
use crate::kubelet::Kubelet;

/// What to start.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the kubeconfig, pod directories and logs go.
    pub dir: PathBuf,
    /// Address to listen on; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Image prefix → local executable, e.g. `strom/engine` → `target/debug/strom-engine`.
    pub images: Vec<(String, PathBuf)>,
}

/// A running local cluster. Dropping it (or calling [`Cluster::stop`]) stops everything it
/// started.
pub struct Cluster {
    /// The API server's state, for in-process access.
    pub server: Arc<ApiServer>,
    /// The kubelet, for failure injection.
    pub kubelet: Arc<Kubelet>,
    /// Where it listens.
    pub addr: SocketAddr,
    /// The kubeconfig file.
    pub kubeconfig: PathBuf,
    cancel: CancellationToken,
    tasks: JoinSet<()>,
}

impl Cluster {
    /// A `kubectl` (the binary `bin`) pointed at this cluster: its kubeconfig, and a home
    /// beside it so that kubectl's cache never mixes clusters.
    pub fn kubectl(&self, bin: impl AsRef<std::ffi::OsStr>) -> std::process::Command {
        let mut c = std::process::Command::new(bin);
        c.env("KUBECONFIG", &self.kubeconfig);
        if let Some(home) = self.kubeconfig.parent() {
            c.env("HOME", home);
        }
        c
    }

    /// Starts the API server and the controllers; writes the kubeconfig last, once the
    /// server answers.
    pub async fn start(mut config: Config) -> anyhow::Result<Cluster> {
        std::fs::create_dir_all(&config.dir)?;
        // Pods run in directories of their own: the kubeconfig they are given must not be
        // relative to where `strom-local up` was started.
        config.dir = std::fs::canonicalize(&config.dir)?;
        let server = Arc::new(ApiServer::new());
        let listener = tokio::net::TcpListener::bind(config.listen).await?;
        let addr = listener.local_addr()?;
        let cancel = CancellationToken::new();
        let mut tasks = JoinSet::new();
        {
            let server = server.clone();
            let stop = cancel.clone();
            tasks.spawn(async move {
                if let Err(e) =
                    http::serve(server, listener, async move { stop.cancelled().await }).await
                {
                    tracing::error!(error = %e, "API server stopped");
                }
            });
        }
        {
            let server = server.clone();
            let stop = cancel.clone();
            tasks.spawn(async move {
                tokio::select! {
                    _ = gc::run(server) => {}
                    _ = stop.cancelled() => {}
                }
            });
        }
        crate::controllers::spawn(&server, &cancel, &mut tasks);
        let kubelet = crate::kubelet::spawn(&server, &config, &cancel, &mut tasks)?;
        let kubeconfig = config.dir.join("kubeconfig");
        write_kubeconfig(&kubeconfig, addr)?;
        Ok(Cluster {
            server,
            kubelet,
            addr,
            kubeconfig,
            cancel,
            tasks,
        })
    }

    /// The API server's URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops every task and process the cluster started, and waits for them.
    pub async fn stop(mut self) {
        self.cancel.cancel();
        while self.tasks.join_next().await.is_some() {}
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

fn write_kubeconfig(path: &Path, addr: SocketAddr) -> std::io::Result<()> {
    let text = format!(
        "apiVersion: v1
kind: Config
clusters:
- name: strom-local
  cluster:
    server: http://{addr}
contexts:
- name: strom-local
  context:
    cluster: strom-local
    user: strom-local
    namespace: default
current-context: strom-local
users:
- name: strom-local
  user: {{}}
"
    );
    // Written whole, then renamed: a reader never sees a half-written file.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(tmp, path)
}
