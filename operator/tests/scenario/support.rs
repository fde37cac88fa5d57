//! What the scenarios share: the local cluster with the engine image (and, for the Kafka
//! scenarios, the broker image), kubectl, and waiting with the cluster's state on timeout.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use strom_local_cluster::cluster::{Cluster, Config};
use strom_testkit::engine_binary;

pub fn kubectl(cluster: &Cluster, args: &[&str]) -> String {
    let out = cluster.kubectl("kubectl").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Whether kubectl succeeds.
pub fn kubectl_succeeds(cluster: &Cluster, args: &[&str]) -> bool {
    cluster
        .kubectl("kubectl")
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

pub fn apply(cluster: &Cluster, manifest: &str) {
    let file = cluster.kubeconfig.parent().unwrap().join("job.yaml");
    std::fs::write(&file, manifest).unwrap();
    kubectl(cluster, &["apply", "-f", file.to_str().unwrap()]);
}

pub async fn wait(cluster: &Cluster, what: &str, secs: u64, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done() {
        if Instant::now() >= deadline {
            let status = cluster
                .kubectl("kubectl")
                .args(["get", "fj,pods,events", "-o", "yaml"])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            panic!("timed out waiting for {what}\n{status}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A fresh local cluster serving the engine image, with the FlinkJob CRD installed, a
/// kube client for it, and a scratch directory (removed at the end by the caller).
pub async fn setup(tag: &str) -> (Cluster, kube::Client, PathBuf) {
    setup_with(tag, Vec::new()).await
}

/// [`setup`], serving `more` images besides the engine's.
pub async fn setup_with(
    tag: &str,
    more: Vec<(String, PathBuf)>,
) -> (Cluster, kube::Client, PathBuf) {
    let dir = std::env::temp_dir().join(format!("strom-operator-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let cluster = Cluster::start(Config {
        dir: dir.join("cluster"),
        listen: "127.0.0.1:0".parse().unwrap(),
        images: [("strom/engine:*".into(), engine_binary())]
            .into_iter()
            .chain(more)
            .collect(),
    })
    .await
    .unwrap();
    let kubeconfig = kube::config::Kubeconfig::read_from(&cluster.kubeconfig).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    let client = kube::Client::try_from(config).unwrap();
    let crd = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crds/flinkjob.yaml");
    kubectl(&cluster, &["apply", "-f", crd.to_str().unwrap()]);
    wait(&cluster, "the FlinkJob CRD", 30, || {
        kubectl_succeeds(&cluster, &["get", "fj"])
    })
    .await;
    (cluster, client, dir)
}

pub fn kubectl_fails(cluster: &Cluster, args: &[&str]) -> String {
    let out = cluster.kubectl("kubectl").args(args).output().unwrap();
    assert!(!out.status.success(), "kubectl {args:?} succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}
