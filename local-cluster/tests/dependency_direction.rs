//! Dependencies flow one way (docs/architecture.md): the engine, the job spec, the protocol
//! types, storage, the autoscaler and the test kit never link Kubernetes client code — not
//! even through their tests' dev-dependencies — and the operator and control plane reach
//! engines over HTTP only, never by linking the engine.

#![allow(
    clippy::unwrap_used,
    reason = "a test should fail loudly at the first surprise"
)]

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

/// Package id → (dependency id, whether it is only a dev-dependency).
type Graph = BTreeMap<String, Vec<(String, bool)>>;

/// Package ids → names, and the dependency graph.
fn dependency_graph() -> (BTreeMap<String, String>, Graph) {
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
            .map(|d| {
                let dev_only = d["dep_kinds"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|k| k["kind"].as_str() == Some("dev"));
                (d["pkg"].as_str().unwrap().to_owned(), dev_only)
            })
            .collect();
        graph.insert(node["id"].as_str().unwrap().to_owned(), deps);
    }
    (names, graph)
}

/// Everything `package` links to build and run (not its tests).
fn transitive_dependencies(package: &str) -> BTreeSet<String> {
    walk(package, false)
}

/// Everything `package` and its tests link: its dependencies and dev-dependencies, and
/// everything those link.
fn with_dev_dependencies(package: &str) -> BTreeSet<String> {
    walk(package, true)
}

fn walk(package: &str, dev: bool) -> BTreeSet<String> {
    let (names, graph) = dependency_graph();
    let root = names
        .iter()
        .find(|(_, n)| *n == package)
        .map(|(id, _)| id.clone())
        .unwrap();
    let mut seen = BTreeSet::new();
    // A package's own dev-dependencies count for the root only: cargo builds no one
    // else's tests.
    let mut stack: Vec<String> = graph[&root]
        .iter()
        .filter(|(_, dev_only)| dev || !dev_only)
        .map(|(d, _)| d.clone())
        .collect();
    seen.extend(stack.iter().cloned());
    while let Some(id) = stack.pop() {
        for (dep, dev_only) in &graph[&id] {
            if !dev_only && seen.insert(dep.clone()) {
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
        "strom-testkit",
    ] {
        let deps = with_dev_dependencies(package);
        let bad: Vec<_> = KUBERNETES.iter().filter(|k| deps.contains(**k)).collect();
        assert!(
            bad.is_empty(),
            "{package} (or its tests' dev-dependencies) depends on {bad:?}"
        );
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
    // And it sees dev-dependencies: the engine's tests use the test kit, the operator's the
    // local cluster (which links kube).
    assert!(with_dev_dependencies("strom-engine").contains("strom-testkit"));
    assert!(!transitive_dependencies("strom-engine").contains("strom-testkit"));
    assert!(with_dev_dependencies("strom-operator").contains("strom-local-cluster"));
}
