//! `strom-local up` as a user runs it: it writes the kubeconfig only once the cluster
//! answers, kubectl works against it, and SIGTERM stops every process it started.

#![allow(
    clippy::unwrap_used,
    reason = "a test should fail loudly at the first surprise"
)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn strom_local_up_serves_kubectl_and_stops_everything_on_sigterm() {
    let dir = std::env::temp_dir().join(format!("strom-local-{}", uuid::Uuid::new_v4()));
    let mut up = Command::new(env!("CARGO_BIN_EXE_strom-local"))
        .args(["up", "--dir", dir.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let kubeconfig = dir.join("kubeconfig");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !kubeconfig.exists() {
        assert!(Instant::now() < deadline, "no kubeconfig after 30 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    let kubectl = |args: &[&str]| {
        Command::new("kubectl")
            .args(args)
            .env("KUBECONFIG", &kubeconfig)
            .output()
            .unwrap()
    };
    // The FlinkJob CRD is installed and served.
    let out = kubectl(&["get", "crd", "flinkjobs.strom.dev", "-o", "name"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A pod runs as a process of this machine.
    let pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: sleeper\nspec:\n  containers:\n  - name: c\n    image: strom/shell:1\n    command: [sleep, '3600']\n";
    let mut apply = Command::new("kubectl")
        .args(["apply", "-f", "-"])
        .env("KUBECONFIG", &kubeconfig)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut apply.stdin.take().unwrap(), pod.as_bytes()).unwrap();
    assert!(apply.wait().unwrap().success());
    let out = kubectl(&[
        "wait",
        "--for=condition=Ready",
        "pod/sleeper",
        "--timeout=30s",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pod_json = String::from_utf8(
        kubectl(&[
            "get",
            "pod",
            "sleeper",
            "-o",
            "jsonpath={.status.containerStatuses[0].containerID}",
        ])
        .stdout,
    )
    .unwrap();
    let pid: i32 = pod_json
        .trim_start_matches("strom-local://")
        .parse()
        .unwrap();
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(up.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = up.wait().unwrap();
    assert!(status.success(), "strom-local exited with {status}");
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut up.stdout.take().unwrap(), &mut stdout).unwrap();
    assert!(
        stdout.contains("Strom local cluster is up at http://127.0.0.1:"),
        "{stdout}"
    );
    // Nothing it started is left running, and the kubeconfig no longer points at it.
    let gone = (0..50).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| s.contains(") Z "))
    });
    assert!(gone, "the pod's process {pid} outlived strom-local");
    assert!(!kubeconfig.exists());
    let _ = std::fs::remove_dir_all(&dir);
}
