//! Dependencies flow one way (docs/architecture.md): the engine, the protocol types and the
//! autoscaler never link Kubernetes client code, and the operator and control plane reach
//! engines over HTTP only, never by linking the engine.

#![allow(
    clippy::unwrap_used,
    reason = "a test should fail loudly at the first surprise"
)]

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

/// Package name → names of the packages it depends on for building and running (not dev).
fn dependency_graph() -> (BTreeMap<String, String>, BTreeMap<String, Vec<String>>) {
    let output = std::process::Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--locked"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: Value = serde_json::from_slice(&output.stdout).unwrap();
    let names: BTreeMap<String, String> = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["id"].as_str().unwrap().to_owned(),
                p["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let mut graph = BTreeMap::new();
    for node in metadata["resolve"]["nodes"].as_array().unwrap() {
        let deps = node["deps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| {
                d["dep_kinds"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|k| k["kind"].as_str() != Some("dev"))
            })
            .map(|d| d["pkg"].as_str().unwrap().to_owned())
            .collect();
        graph.insert(node["id"].as_str().unwrap().to_owned(), deps);
    }
    (names, graph)
}

fn transitive_dependencies(package: &str) -> BTreeSet<String> {
    let (names, graph) = dependency_graph();
    let root = names
        .iter()
        .find(|(_, n)| *n == package)
        .map(|(id, _)| id.clone())
        .unwrap();
    let mut seen = BTreeSet::new();
    let mut stack = vec![root];
    while let Some(id) = stack.pop() {
        for dep in &graph[&id] {
            if seen.insert(dep.clone()) {
                stack.push(dep.clone());
            }
        }
    }
    seen.into_iter().map(|id| names[&id].clone()).collect()
}

const KUBERNETES: &[&str] = &[
    "kube",
    "kube-client",
    "kube-core",
    "kube-runtime",
    "k8s-openapi",
];

#[test]
fn engine_protocol_storage_and_autoscaler_never_depend_on_kubernetes_crates() {
    for package in [
        "strom-engine",
        "strom-jobspec",
        "strom-protocol",
        "strom-autoscaler",
        "strom-storage",
    ] {
        let deps = transitive_dependencies(package);
        let bad: Vec<_> = KUBERNETES.iter().filter(|k| deps.contains(**k)).collect();
        assert!(bad.is_empty(), "{package} depends on {bad:?}");
    }
}

#[test]
fn operator_and_control_plane_never_link_the_engine() {
    for package in ["strom-operator", "strom-control-plane", "strom-crds"] {
        let deps = transitive_dependencies(package);
        assert!(
            !deps.contains("strom-engine"),
            "{package} depends on strom-engine"
        );
    }
}

#[test]
fn the_check_itself_sees_transitive_dependencies() {
    // Guard against a vacuous pass: strom-crds and the operator reach kube-core only through
    // other crates, so the walk must be transitive to see it.
    assert!(transitive_dependencies("strom-crds").contains("kube-core"));
    assert!(transitive_dependencies("strom-operator").contains("kube-core"));
}
