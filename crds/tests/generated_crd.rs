//! The committed CRD is exactly what the types generate, and it carries what `kubectl`
//! users rely on: field docs for `kubectl explain`, subresources, printer columns.

#![allow(
    clippy::unwrap_used,
    reason = "a test should fail loudly at the first surprise"
)]

use serde_json::Value;

const COMMITTED: &str = include_str!("../flinkjob.yaml");

#[test]
fn committed_crd_matches_the_types() {
    let generated = strom_crds::crd_yaml();
    assert!(
        COMMITTED == generated,
        "crds/flinkjob.yaml is out of date with the Rust types; regenerate it with\n\n    cargo run -p strom-crds --bin crdgen > crds/flinkjob.yaml\n"
    );
}

fn schema() -> Value {
    let crd = serde_json::to_value(strom_crds::crd()).unwrap();
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
}

/// Collects the path of every property without a description.
fn undocumented(schema: &Value, path: &str, out: &mut Vec<String>) {
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (name, sub) in props {
            let child = format!("{path}.{name}");
            let described = sub
                .get("description")
                .and_then(Value::as_str)
                .is_some_and(|d| !d.trim().is_empty());
            if !described {
                out.push(child.clone());
            }
            undocumented(sub, &child, out);
        }
    }
    for key in ["items", "additionalProperties"] {
        if let Some(sub) = schema.get(key).filter(|s| s.is_object()) {
            undocumented(sub, path, out);
        }
    }
}

#[test]
fn every_field_has_a_description_for_kubectl_explain() {
    let schema = schema();
    let mut missing = Vec::new();
    for part in ["spec", "status"] {
        undocumented(&schema["properties"][part], part, &mut missing);
    }
    assert!(
        missing.is_empty(),
        "fields without a description: {missing:#?}"
    );
    assert!(
        schema["properties"]["spec"]["properties"]["upgradeMode"]["description"]
            .as_str()
            .unwrap()
            .contains("last-state")
    );
}

#[test]
fn crd_names_scope_and_subresources_are_what_kubectl_expects() {
    let crd = serde_json::to_value(strom_crds::crd()).unwrap();
    assert_eq!(crd["metadata"]["name"], "flinkjobs.strom.dev");
    assert_eq!(crd["spec"]["group"], "strom.dev");
    assert_eq!(crd["spec"]["scope"], "Namespaced");
    assert_eq!(crd["spec"]["names"]["kind"], "FlinkJob");
    assert_eq!(crd["spec"]["names"]["plural"], "flinkjobs");
    assert_eq!(
        crd["spec"]["names"]["shortNames"],
        serde_json::json!(["fj"])
    );
    let version = &crd["spec"]["versions"][0];
    assert_eq!(version["name"], "v1alpha1");
    assert_eq!(version["served"], true);
    assert_eq!(version["storage"], true);
    assert_eq!(version["subresources"]["status"], serde_json::json!({}));
    let scale = &version["subresources"]["scale"];
    assert_eq!(scale["specReplicasPath"], ".spec.parallelism");
    assert_eq!(scale["statusReplicasPath"], ".status.parallelism");
    let columns: Vec<&str> = version["additionalPrinterColumns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        columns,
        [
            "State",
            "Job",
            "Parallelism",
            "Checkpoint",
            "Savepoint",
            "Age"
        ]
    );
}

#[test]
fn crd_fits_in_the_last_applied_annotation_of_client_side_apply() {
    // `kubectl apply` (client-side) stores the whole object in an annotation limited to
    // 256 KiB; a larger CRD could only be installed with server-side apply.
    let json = serde_json::to_string(&strom_crds::crd()).unwrap();
    assert!(
        json.len() < 200 * 1024,
        "CRD is {} bytes as JSON",
        json.len()
    );
}

#[test]
fn every_cross_field_rule_names_the_field_it_is_about() {
    let schema = schema();
    let rules = schema["properties"]["spec"]["x-kubernetes-validations"]
        .as_array()
        .unwrap();
    assert!(rules.len() >= 7);
    for rule in rules {
        assert!(
            rule["fieldPath"].is_string(),
            "rule without fieldPath: {rule}"
        );
        assert!(rule["message"].is_string(), "rule without message: {rule}");
    }
}

/// Words YAML 1.1 readers (kubectl's among them) read as booleans when unquoted.
const YAML11_BOOLEANS: &[&str] = &[
    "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "on", "On", "ON", "off", "Off",
    "OFF",
];

fn strings_in(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| strings_in(v, out)),
        Value::Object(map) => {
            for (k, v) in map {
                out.push(k.clone());
                if k != "description" {
                    strings_in(v, out);
                }
            }
        }
        _ => {}
    }
}

#[test]
fn no_field_name_or_value_turns_into_a_boolean_in_kubectls_yaml() {
    // kubectl reads YAML 1.1: a field named `on` became `true` and broke the CRD on apply.
    let mut strings = Vec::new();
    strings_in(
        &serde_json::to_value(strom_crds::crd()).unwrap(),
        &mut strings,
    );
    let bad: Vec<&String> = strings
        .iter()
        .filter(|s| YAML11_BOOLEANS.contains(&s.as_str()))
        .collect();
    assert!(bad.is_empty(), "YAML 1.1 boolean words in the CRD: {bad:?}");
}
