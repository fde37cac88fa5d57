//! The Helm chart installed on the local cluster: `helm template | kubectl apply` brings up
//! the operator Deployment (two replicas, real `strom-operator` processes run by the local
//! kubelet), one replica takes the leader Lease, and it reconciles an example FlinkJob into
//! a running engine whose output reaches the pod log. The engine pod runs as the chart's
//! engine service account. And the real `helm install`, `upgrade` and `uninstall` there.

#![allow(
    clippy::unwrap_used,
    reason = "a test should fail loudly at the first surprise"
)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use strom_testkit::workspace_binary;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

struct Local {
    up: Child,
    dir: PathBuf,
}

impl Drop for Local {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.up.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.up.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Local {
    /// `strom-local up` with the operator and engine images mapped to this build's binaries.
    fn start(name: &str, extra: &[&str]) -> Local {
        let dir = std::env::temp_dir().join(format!("strom-chart-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let operator = format!(
            "strom/operator:*={}",
            workspace_binary("strom-operator").display()
        );
        let engine = format!(
            "strom/engine:*={}",
            workspace_binary("strom-engine").display()
        );
        let control_plane = format!(
            "strom/control-plane:*={}",
            workspace_binary("strom-control-plane").display()
        );
        let up = Command::new(env!("CARGO_BIN_EXE_strom-local"))
            .args([
                "up",
                "--dir",
                dir.to_str().unwrap(),
                "--image",
                &operator,
                "--image",
                &engine,
                "--image",
                &control_plane,
            ])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let local = Local { up, dir };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !local.dir.join("kubeconfig").exists() {
            assert!(Instant::now() < deadline, "no kubeconfig after 30 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        local
    }

    /// The real helm 4, against this cluster.
    fn helm(&self, args: &[&str]) -> Output {
        Command::new(root().join("target/tools/helm-4/helm"))
            .args(args)
            .current_dir(root())
            .env("KUBECONFIG", self.dir.join("kubeconfig"))
            .env("HELM_CACHE_HOME", self.dir.join("helm-cache"))
            .env("HELM_CONFIG_HOME", self.dir.join("helm-config"))
            .env("HELM_DATA_HOME", self.dir.join("helm-data"))
            .output()
            .unwrap()
    }

    fn kubectl(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        let mut child = Command::new("kubectl")
            .args(args)
            .env("KUBECONFIG", self.dir.join("kubeconfig"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        if let Some(bytes) = stdin {
            input.write_all(bytes).unwrap();
        }
        drop(input);
        child.wait_with_output().unwrap()
    }

    fn ok(&self, args: &[&str], stdin: Option<&[u8]>) -> String {
        let out = self.kubectl(args, stdin);
        assert!(
            out.status.success(),
            "kubectl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Polls `kubectl get … -o jsonpath=…` until `done` accepts the value.
    fn wait_for(
        &self,
        what: &str,
        args: &[&str],
        done: impl Fn(&str) -> bool,
        secs: u64,
    ) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let mut last = String::new();
        while Instant::now() < deadline {
            let out = self.kubectl(args, None);
            last = String::from_utf8_lossy(&out.stdout).into_owned();
            if out.status.success() && done(&last) {
                return last;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        let pods = self.kubectl(&["get", "pods", "-A", "-o", "wide"], None);
        panic!(
            "{what}: not after {secs} s (last: {last:?})\n{}",
            String::from_utf8_lossy(&pods.stdout)
        );
    }
}

#[test]
fn the_rendered_chart_runs_an_operator_that_reconciles_a_job() {
    let local = Local::start("render", &["--without-crd"]);

    // Install: the release namespace, then everything the chart renders.
    local.ok(
        &["apply", "-f", "-"],
        Some(b"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: strom-system\n"),
    );
    let helm = local.helm(&[
        "template",
        "strom",
        "charts/strom",
        "--namespace",
        "strom-system",
        // Namespaced: Roles instead of a ClusterRole, and the engines' account created
        // where the jobs run, so it is their default.
        "--set",
        "operator.watchNamespaces={default}",
    ]);
    assert!(
        helm.status.success(),
        "{}",
        String::from_utf8_lossy(&helm.stderr)
    );
    let applied = local.ok(&["apply", "-f", "-"], Some(&helm.stdout));
    for object in [
        "customresourcedefinition.apiextensions.k8s.io/flinkjobs.strom.dev",
        "deployment.apps/strom-operator",
        "role.rbac.authorization.k8s.io/strom-operator",
        "poddisruptionbudget.policy/strom-operator",
        "serviceaccount/strom-engine",
    ] {
        assert!(applied.contains(object), "{object} not applied:\n{applied}");
    }

    // Both replicas come up ready (their readiness probe answers), and one leads.
    local.wait_for(
        "the operator Deployment to be available",
        &[
            "-n",
            "strom-system",
            "get",
            "deployment",
            "strom-operator",
            "-o",
            "jsonpath={.status.readyReplicas}",
        ],
        |ready| ready == "2",
        60,
    );
    let pods = local.ok(
        &[
            "-n",
            "strom-system",
            "get",
            "pods",
            "-l",
            "app.kubernetes.io/component=operator",
            "-o",
            "jsonpath={.items[*].metadata.name}",
        ],
        None,
    );
    let pods: Vec<&str> = pods.split_whitespace().collect();
    assert_eq!(pods.len(), 2, "{pods:?}");
    let holder = local.wait_for(
        "an operator replica to take the Lease",
        &[
            "-n",
            "strom-system",
            "get",
            "lease",
            "strom-operator",
            "-o",
            "jsonpath={.spec.holderIdentity}",
        ],
        |h| !h.is_empty(),
        30,
    );
    assert!(
        pods.contains(&holder.as_str()),
        "{holder} is not one of {pods:?}"
    );

    // An example job that names no service account: it runs as the chart's engine account.
    let job = std::fs::read_to_string(root().join("examples/minimal.yaml")).unwrap();
    assert!(!job.contains("serviceAccountName"));
    local.ok(&["apply", "-f", "-"], Some(job.as_bytes()));
    local.wait_for(
        "the FlinkJob to be running",
        &[
            "get",
            "flinkjob",
            "hello",
            "-o",
            "jsonpath={.status.lifecycleState}/{.status.jobState}",
        ],
        |s| s == "Running/Running",
        90,
    );
    let account = local.ok(
        &[
            "get",
            "pod",
            "hello-engine-0",
            "-o",
            "jsonpath={.spec.serviceAccountName}",
        ],
        None,
    );
    assert_eq!(account, "strom-engine");
    // Its records reach the log: the job really runs.
    local.wait_for(
        "the engine to print records",
        &["logs", "hello-engine-0"],
        |log| log.lines().filter(|l| l.contains(',')).count() >= 3,
        60,
    );
    // The leader acted on it: the job's events were reported by that replica.
    let reporters = local.ok(
        &[
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=hello",
            "-o",
            "jsonpath={.items[*].reportingInstance}",
        ],
        None,
    );
    assert!(
        !reporters.is_empty() && reporters.split_whitespace().all(|r| r == holder),
        "events reported by {reporters:?}, the leader is {holder}"
    );
}

/// `helm <verb> strom <chart> --namespace strom-system --wait` with `extra` arguments; its
/// output, once it succeeded.
fn release(local: &Local, verb: &str, chart: &str, extra: &[&str]) -> String {
    let mut args = vec![
        verb,
        "strom",
        chart,
        "--namespace",
        "strom-system",
        "--wait",
        "--timeout",
        "120s",
    ];
    args.extend_from_slice(extra);
    helm_ok(&local.helm(&args), verb)
}

fn helm_ok(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "helm {what}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn helm_install_upgrade_and_uninstall_carry_the_crd_and_keep_flinkjobs() {
    let local = Local::start("lifecycle", &["--without-crd"]);
    local.ok(&["create", "namespace", "strom-system"], None);
    assert!(release(&local, "install", "charts/strom", &[]).contains("STATUS: deployed"));
    let ready = local.ok(
        &[
            "-n",
            "strom-system",
            "get",
            "deployment",
            "strom-operator",
            "-o",
            "jsonpath={.status.readyReplicas}",
        ],
        None,
    );
    assert_eq!(ready, "2");
    let job = std::fs::read(root().join("examples/minimal.yaml")).unwrap();
    local.ok(&["apply", "-f", "-"], Some(&job));

    // The next chart version's CRD has a new field: `helm upgrade` must apply it (Helm
    // never upgrades a chart's crds/ folder; this chart renders the CRD as a template).
    let next = local.dir.join("chart-next");
    copy_dir(&root().join("charts/strom"), &next);
    let crd_path = next.join("files/flinkjob.yaml");
    let mut crd: serde_json::Value =
        serde_yaml_ng::from_str(&std::fs::read_to_string(&crd_path).unwrap()).unwrap();
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["nextVersionField"] =
        serde_json::json!({"type": "string", "description": "new in 0.2.0"});
    std::fs::write(&crd_path, serde_yaml_ng::to_string(&crd).unwrap()).unwrap();
    let chart = next.join("Chart.yaml");
    let text = std::fs::read_to_string(&chart).unwrap();
    std::fs::write(&chart, text.replace("version: 0.1.0", "version: 0.2.0")).unwrap();
    assert!(release(&local, "upgrade", next.to_str().unwrap(), &[]).contains("REVISION: 2"));
    let field = local.ok(
        &[
            "get",
            "crd",
            "flinkjobs.strom.dev",
            "-o",
            "jsonpath={.spec.versions[0].schema.openAPIV3Schema.properties.spec.properties.nextVersionField.description}",
        ],
        None,
    );
    assert_eq!(
        field, "new in 0.2.0",
        "helm upgrade did not upgrade the CRD"
    );

    // Uninstalling removes the operator but keeps the CRD, and so every FlinkJob.
    helm_ok(
        &local.helm(&[
            "uninstall",
            "strom",
            "--namespace",
            "strom-system",
            "--wait",
        ]),
        "uninstall",
    );
    let left = local.ok(
        &["-n", "strom-system", "get", "deployments", "-o", "name"],
        None,
    );
    assert!(left.is_empty(), "{left}");
    local.ok(&["get", "crd", "flinkjobs.strom.dev"], None);
    local.ok(&["get", "flinkjob", "hello"], None);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn the_charts_control_plane_serves_its_api_from_sqlite_on_its_claim() {
    let local = Local::start("control-plane", &["--without-crd"]);
    local.ok(&["create", "namespace", "strom-system"], None);
    let installed = release(
        &local,
        "install",
        "charts/strom",
        &[
            "--set",
            "controlPlane.enabled=true",
            "--set",
            "controlPlane.storage=file:///tmp/strom-chart-control-plane",
        ],
    );
    assert!(installed.contains("STATUS: deployed"));
    let ip = local.ok(
        &[
            "-n",
            "strom-system",
            "get",
            "pods",
            "-l",
            "app.kubernetes.io/component=control-plane",
            "-o",
            "jsonpath={.items[0].status.podIP}",
        ],
        None,
    );
    assert!(!ip.is_empty());
    // It answers, and its API wants a token: the database on the claim opened and migrated.
    let health = ureq::get(&format!("http://{ip}:8090/healthz"))
        .call()
        .unwrap();
    assert_eq!(health.status(), 200);
    let tenants = ureq::get(&format!("http://{ip}:8090/v1/tenants")).call();
    match tenants {
        Err(ureq::Error::StatusCode(code)) => assert_eq!(code, 401),
        other => panic!("GET /v1/tenants without a token: {other:?}"),
    }
    let db = local
        .dir
        .join("claims/strom-system/strom-control-plane-data/strom.db");
    assert!(db.is_file(), "no SQLite database at {}", db.display());
}
