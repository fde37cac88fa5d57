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
    assert!(
        !args.iter().any(|a| a.starts_with("--namespace")),
        "{args:?}"
    );
    // Least privilege: no wildcard anywhere.
    let role = find(&objects, "ClusterRole");
    assert!(!role.to_string().contains("\"*\""), "{role}");
}

#[test]
fn one_namespace_gets_roles_there_and_no_cluster_role() {
    let objects = render(&["operator.watchNamespace=jobs", "crds.install=false"]);
    let k = kinds(&objects);
    assert!(
        !k.iter()
            .any(|k| k.starts_with("Cluster") || k == "CustomResourceDefinition"),
        "{k:?}"
    );
    let roles: Vec<&serde_json::Value> = objects.iter().filter(|o| o["kind"] == "Role").collect();
    let namespaces: Vec<&str> = roles
        .iter()
        .map(|r| r["metadata"]["namespace"].as_str().unwrap())
        .collect();
    assert!(
        namespaces.contains(&"jobs") && namespaces.contains(&"strom-system"),
        "{namespaces:?}"
    );
    let c = &find(&objects, "Deployment")["spec"]["template"]["spec"]["containers"][0];
    assert!(
        c["args"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == "--namespace=jobs")
    );
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
        let set = format!("operator.serviceAccount.annotations.{key}={value}");
        let objects = render(&[
            &set,
            "string:operator.podLabels.azure\\.workload\\.identity/use=true",
        ]);
        let sa = find(&objects, "ServiceAccount");
        assert_eq!(sa["metadata"]["annotations"][key.replace('\\', "")], value);
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
            "operator.watchNamespace=Not_A_Namespace",
            "/operator/watchNamespace",
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
