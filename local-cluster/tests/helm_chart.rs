//! The Helm chart (`charts/strom/`) through the real `helm` (4.x, installed into
//! `target/tools/helm-4` by `scripts/install-tools.sh`): lint, render with several value
//! sets and check the objects, refuse bad values at install time, and keep the chart's copy
//! of the CRD identical to `crds/flinkjob.yaml`.

#![allow(
    clippy::unwrap_used,
    reason = "a test should fail loudly at the first surprise"
)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn helm(args: &[&str]) -> std::process::Output {
    let bin = root().join("target/tools/helm-4/helm");
    assert!(
        bin.is_file(),
        "{} is missing: run scripts/install-tools.sh",
        bin.display()
    );
    Command::new(bin)
        .args(args)
        .current_dir(root())
        .env(
            "HELM_CACHE_HOME",
            std::env::temp_dir().join("strom-helm-cache"),
        )
        .env(
            "HELM_CONFIG_HOME",
            std::env::temp_dir().join("strom-helm-config"),
        )
        .output()
        .unwrap()
}

/// The objects `helm template` renders with `sets`.
fn render(sets: &[&str]) -> Vec<serde_json::Value> {
    let mut args = vec![
        "template",
        "strom",
        "charts/strom",
        "--namespace",
        "strom-system",
    ];
    for s in sets {
        // `string:` forces a string value (`--set-string`).
        match s.strip_prefix("string:") {
            Some(v) => args.extend(["--set-string", v]),
            None => args.extend(["--set", s]),
        }
    }
    let out = helm(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_yaml_ng::Deserializer::from_str(&String::from_utf8(out.stdout).unwrap())
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .filter(|v: &serde_json::Value| !v.is_null())
        .collect()
}

fn kinds(objects: &[serde_json::Value]) -> Vec<String> {
    let mut k: Vec<String> = objects
        .iter()
        .map(|o| o["kind"].as_str().unwrap().to_owned())
        .collect();
    k.sort();
    k
}

fn find<'a>(objects: &'a [serde_json::Value], kind: &str) -> &'a serde_json::Value {
    objects.iter().find(|o| o["kind"] == kind).unwrap()
}

fn named<'a>(objects: &'a [serde_json::Value], kind: &str, name: &str) -> &'a serde_json::Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

#[test]
fn the_chart_lints_strictly() {
    let out = helm(&["lint", "--strict", "charts/strom"]);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn defaults_install_the_crd_and_a_hardened_operator_watching_all_namespaces() {
    let objects = render(&[]);
    assert_eq!(
        kinds(&objects),
        [
            "ClusterRole",
            "ClusterRoleBinding",
            "CustomResourceDefinition",
            "Deployment",
            "PodDisruptionBudget",
            "Role",
            "RoleBinding",
            "Service",
            "ServiceAccount",
            "ServiceAccount"
        ]
    );
    let crd = find(&objects, "CustomResourceDefinition");
    assert_eq!(crd["metadata"]["name"], "flinkjobs.strom.dev");
    assert_eq!(
        crd["metadata"]["annotations"]["helm.sh/resource-policy"],
        "keep"
    );
    let d = find(&objects, "Deployment");
    assert_eq!(d["spec"]["replicas"], 2);
    assert_eq!(
        d["spec"]["template"]["spec"]["serviceAccountName"],
        "strom-operator"
    );
    let spread = &d["spec"]["template"]["spec"]["topologySpreadConstraints"][0];
    assert_eq!(spread["topologyKey"], "kubernetes.io/hostname");
    assert_eq!(
        spread["labelSelector"]["matchLabels"]["app.kubernetes.io/component"],
        "operator"
    );
    let c = &d["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["image"], "strom/operator:0.1.0");
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(c["securityContext"]["runAsNonRoot"], true);
    assert!(c["resources"]["limits"]["memory"].is_string());
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    let args: Vec<&str> = c["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    // All namespaces: the engines' account is only in the release namespace, so it is not
    // every job's default.
    assert!(
        !args
            .iter()
            .any(|a| a.starts_with("--namespace") || a.starts_with("--engine-service-account")),
        "{args:?}"
    );
    // Least privilege: no wildcard anywhere.
    let role = find(&objects, "ClusterRole");
    assert!(!role.to_string().contains("\"*\""), "{role}");
    // The engines' account, in the release namespace, with no API access at all.
    let engine = named(&objects, "ServiceAccount", "strom-engine");
    assert_eq!(engine["metadata"]["namespace"], "strom-system");
    assert_eq!(engine["automountServiceAccountToken"], false);
    assert!(
        !objects
            .iter()
            .filter(|o| o["kind"].as_str().unwrap().ends_with("Binding"))
            .any(|b| b["subjects"].to_string().contains("strom-engine")),
        "a role is bound to the engines' account"
    );
}

#[test]
fn listed_namespaces_get_roles_there_and_no_cluster_role() {
    let objects = render(&["operator.watchNamespaces={jobs,etl}", "crds.install=false"]);
    let k = kinds(&objects);
    assert!(
        !k.iter()
            .any(|k| k.starts_with("Cluster") || k == "CustomResourceDefinition"),
        "{k:?}"
    );
    let roles: Vec<&serde_json::Value> = objects.iter().filter(|o| o["kind"] == "Role").collect();
    let mut namespaces: Vec<&str> = roles
        .iter()
        .map(|r| r["metadata"]["namespace"].as_str().unwrap())
        .collect();
    namespaces.sort();
    assert_eq!(namespaces, ["etl", "jobs", "strom-system"]);
    let mut bindings: Vec<&str> = objects
        .iter()
        .filter(|o| o["kind"] == "RoleBinding")
        .map(|r| r["metadata"]["namespace"].as_str().unwrap())
        .collect();
    bindings.sort();
    assert_eq!(bindings, ["etl", "jobs", "strom-system"]);
    let c = &find(&objects, "Deployment")["spec"]["template"]["spec"]["containers"][0];
    assert!(
        c["args"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "--namespace=jobs,etl"),
        "{}",
        c["args"]
    );
    // The engines' account exists in every watched namespace, so engines default to it.
    assert!(
        c["args"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "--engine-service-account=strom-engine"),
        "{}",
        c["args"]
    );
    // The engines' account where the jobs run, not in the operator's namespace.
    let engine_namespaces: Vec<&str> = objects
        .iter()
        .filter(|o| o["kind"] == "ServiceAccount" && o["metadata"]["name"] == "strom-engine")
        .map(|o| o["metadata"]["namespace"].as_str().unwrap())
        .collect();
    assert_eq!(engine_namespaces, ["jobs", "etl"]);
}

#[test]
fn each_clouds_workload_identity_reaches_the_service_account_and_pods() {
    for (key, value) in [
        (
            "eks\\.amazonaws\\.com/role-arn",
            "arn:aws:iam::123456789012:role/strom",
        ),
        (
            "iam\\.gke\\.io/gcp-service-account",
            "strom@p.iam.gserviceaccount.com",
        ),
        (
            "azure\\.workload\\.identity/client-id",
            "00000000-0000-0000-0000-000000000000",
        ),
    ] {
        let operator = format!("operator.serviceAccount.annotations.{key}={value}");
        let engine = format!("engine.serviceAccount.annotations.{key}={value}");
        let objects = render(&[
            &operator,
            &engine,
            "string:operator.podLabels.azure\\.workload\\.identity/use=true",
        ]);
        for name in ["strom-operator", "strom-engine"] {
            let sa = named(&objects, "ServiceAccount", name);
            assert_eq!(
                sa["metadata"]["annotations"][key.replace('\\', "")],
                value,
                "{name}"
            );
        }
        let labels = &find(&objects, "Deployment")["spec"]["template"]["metadata"]["labels"];
        assert_eq!(labels["azure.workload.identity/use"], "true");
    }
}

#[test]
fn bad_values_fail_at_install_naming_the_value() {
    for (set, expect) in [
        ("operator.replicas=two", "/operator/replicas"),
        ("operator.replicaz=2", "replicaz"),
        ("operator.logLevel=loud", "/operator/logLevel"),
        (
            "operator.watchNamespaces={Not_A_Namespace}",
            "/operator/watchNamespaces/0",
        ),
        ("controlPlane.storage=bucket", "/controlPlane/storage"),
        ("controlPlane.service.port=0", "/controlPlane/service/port"),
        // Rules across values, from the templates.
        (
            "controlPlane.enabled=true,operator.watchNamespaces={jobs}",
            "the operator must watch all namespaces",
        ),
        (
            "controlPlane.enabled=true,controlPlane.replicas=2",
            "controlPlane.replicas: more than one replica needs a shared PostgreSQL",
        ),
        (
            "controlPlane.enabled=true",
            "controlPlane.storage: the control plane needs the storage tenants' state lives in",
        ),
        (
            "objectStorage.allowedEndpoints={https://minio/x?y}",
            "/objectStorage/allowedEndpoints/0",
        ),
    ] {
        let out = helm(&["template", "strom", "charts/strom", "--set", set]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains(expect),
            "{set}: {err}"
        );
    }
}

#[test]
fn the_charts_crd_is_the_generated_one() {
    let chart = std::fs::read_to_string(root().join("charts/strom/files/flinkjob.yaml")).unwrap();
    let generated = std::fs::read_to_string(root().join("crds/flinkjob.yaml")).unwrap();
    assert!(
        chart == generated,
        "charts/strom/files/flinkjob.yaml is stale: cp crds/flinkjob.yaml charts/strom/files/"
    );
}

#[test]
fn the_control_plane_keeps_sqlite_on_a_volume_or_uses_postgres_from_a_secret() {
    let objects = render(&[
        "controlPlane.enabled=true",
        "controlPlane.storage=s3://strom-state",
        "objectStorage.allowedEndpoints={https://minio.storage.svc:9000}",
        "engine.serviceAccount.annotations.eks\\.amazonaws\\.com/role-arn=arn:aws:iam::1:role/strom-{tenant}",
    ]);
    let d = named(&objects, "Deployment", "strom-control-plane");
    assert_eq!(d["spec"]["replicas"], 1);
    assert_eq!(d["spec"]["strategy"]["type"], "Recreate");
    let pod = &d["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    assert_eq!(c["image"], "strom/control-plane:0.1.0");
    assert_eq!(c["args"][0], "serve");
    let args: Vec<&str> = c["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    for expected in [
        "--data-dir=/data",
        "--storage=s3://strom-state",
        "--allowed-storage-endpoint=https://minio.storage.svc:9000",
        "--engine-service-account-annotation=eks.amazonaws.com/role-arn=arn:aws:iam::1:role/strom-{tenant}",
        // The chart's default rate limits, passed on.
        "--token-requests-per-minute=1200",
        "--failed-auth-per-minute=20",
    ] {
        assert!(args.contains(&expected), "{expected}: {args:?}");
    }
    // The operator sends its credentials to the same endpoints only.
    let operator = named(&objects, "Deployment", "strom-operator");
    assert!(
        operator["spec"]["template"]["spec"]["containers"][0]["args"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "--allowed-storage-endpoint=https://minio.storage.svc:9000"),
        "{operator}"
    );
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(
        pod["volumes"][0]["persistentVolumeClaim"]["claimName"],
        "strom-control-plane-data"
    );
    let pvc = named(
        &objects,
        "PersistentVolumeClaim",
        "strom-control-plane-data",
    );
    assert_eq!(
        pvc["metadata"]["annotations"]["helm.sh/resource-policy"],
        "keep"
    );
    // It creates tenants' namespaces (with their quota) and FlinkJobs, and nothing it does
    // not need.
    let role = named(&objects, "ClusterRole", "strom-control-plane");
    let rules = role["rules"].to_string();
    assert!(
        rules.contains("namespaces")
            && rules.contains("flinkjobs")
            && rules.contains("serviceaccounts")
            && rules.contains("resourcequotas")
            && rules.contains("limitranges"),
        "{rules}"
    );
    assert!(
        !rules.contains("secrets") && !rules.contains("\"*\""),
        "{rules}"
    );

    let objects = render(&[
        "controlPlane.enabled=true",
        "controlPlane.storage=s3://strom-state",
        "controlPlane.replicas=3",
        "controlPlane.database.existingSecret=strom-db",
    ]);
    assert!(!kinds(&objects).contains(&"PersistentVolumeClaim".to_owned()));
    let d = named(&objects, "Deployment", "strom-control-plane");
    assert_eq!(d["spec"]["replicas"], 3);
    let c = &d["spec"]["template"]["spec"]["containers"][0];
    let env = c["env"].as_array().unwrap();
    let url = env
        .iter()
        .find(|e| e["name"] == "STROM_DATABASE_URL")
        .unwrap();
    assert_eq!(url["valueFrom"]["secretKeyRef"]["name"], "strom-db");
    assert_eq!(url["valueFrom"]["secretKeyRef"]["key"], "database-url");
    assert!(!c["args"].to_string().contains("--data-dir"));

    // Off by default.
    assert!(
        !render(&[])
            .iter()
            .any(|o| o["metadata"]["name"] == "strom-control-plane")
    );
}

#[test]
fn monitoring_scrapes_operator_and_engines_and_the_dashboard_queries_real_metrics() {
    let objects = render(&[
        "metrics.serviceMonitor.enabled=true",
        "metrics.grafanaDashboard.enabled=true",
    ]);
    let sm = find(&objects, "ServiceMonitor");
    assert_eq!(sm["spec"]["endpoints"][0]["port"], "metrics");
    let pm = find(&objects, "PodMonitor");
    assert_eq!(pm["spec"]["podMetricsEndpoints"][0]["port"], "control");
    assert_eq!(
        pm["spec"]["selector"]["matchExpressions"][0]["key"],
        "strom.dev/job"
    );
    let cm = named(&objects, "ConfigMap", "strom-grafana-dashboard");
    assert_eq!(cm["metadata"]["labels"]["grafana_dashboard"], "1");
    let dashboard: serde_json::Value =
        serde_json::from_str(cm["data"]["strom.json"].as_str().unwrap()).unwrap();

    // Every metric a panel queries is one the operator or the engine exports (names taken
    // from their sources), so a renamed metric cannot leave a panel silently empty.
    let mut defined = String::new();
    for file in [
        "operator/src/controller.rs",
        "engine/src/control/mod.rs",
        "engine/src/control/exposition.rs",
    ] {
        defined += &std::fs::read_to_string(root().join(file)).unwrap();
    }
    let mut queried = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().unwrap();
            for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                if let Some(metric) = word.strip_prefix("strom_") {
                    let metric = format!("strom_{metric}");
                    let base = metric.strip_suffix("_bucket").unwrap_or(&metric);
                    assert!(
                        defined.contains(&format!("\"{base}\"")),
                        "panel {:?} queries {metric}, which nothing exports",
                        panel["title"]
                    );
                    queried += 1;
                }
            }
        }
    }
    assert!(queried >= 15, "{queried}");
}
