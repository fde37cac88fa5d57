//! Every example manifest is accepted, and every bad one rejected with the right field path,
//! by both validators: the API server's (from the committed CRD file: schema, unknown fields,
//! CEL rules) and the Rust `validate()` the operator uses. The two must agree.

#![allow(
    clippy::unwrap_used,
    reason = "a test should fail loudly at the first surprise"
)]

use std::path::{Path, PathBuf};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::Value;
use strom_local_cluster::admission::SchemaValidator;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The validator built from the CRD file users apply, not from the types.
fn committed_crd_validator() -> SchemaValidator {
    let text = std::fs::read_to_string(repo().join("crds/flinkjob.yaml")).unwrap();
    let crd: CustomResourceDefinition = serde_yaml_ng::from_str(&text).unwrap();
    SchemaValidator::new(&crd, "v1alpha1").unwrap()
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    files
}

fn load(path: &Path) -> (String, Value) {
    let text = std::fs::read_to_string(path).unwrap();
    let value: Value = serde_yaml_ng::from_str(&text).unwrap();
    (text, value)
}

/// The FlinkJobs of an example, each as its text and value: an example may hold other
/// objects besides (the Kafka example's broker pod), in documents separated by `---`.
fn flinkjobs(path: &Path) -> Vec<(String, Value)> {
    let text = std::fs::read_to_string(path).unwrap();
    let jobs: Vec<(String, Value)> = text
        .split("\n---\n")
        .map(|doc| {
            (
                doc.to_owned(),
                serde_yaml_ng::from_str::<Value>(doc).unwrap(),
            )
        })
        .filter(|(_, v)| v["kind"] == "FlinkJob")
        .collect();
    assert!(!jobs.is_empty(), "{}: no FlinkJob", path.display());
    jobs
}

#[test]
fn every_example_is_accepted_by_the_api_server_schema_and_by_validate() {
    let validator = committed_crd_validator();
    let examples = yaml_files(&repo().join("examples"));
    assert!(
        examples.len() >= 5,
        "expected at least five examples, found {examples:?}"
    );
    for (path, (text, value)) in examples
        .iter()
        .flat_map(|p| flinkjobs(p).into_iter().map(move |j| (p, j)))
    {
        let errors = validator.validate(&value);
        assert!(
            errors.is_empty(),
            "{}: rejected by the CRD schema: {errors:#?}",
            path.display()
        );
        if let Err(violations) = strom_crds::validate::from_yaml(&text) {
            panic!("{}: rejected by validate():\n{violations}", path.display());
        }
    }
}

#[test]
fn examples_cover_the_stores_and_features_users_start_from() {
    let jobs: Vec<strom_crds::FlinkJob> = yaml_files(&repo().join("examples"))
        .iter()
        .flat_map(|p| flinkjobs(p))
        .map(|(text, _)| strom_crds::validate::from_yaml(&text).unwrap())
        .collect();
    let savepoint_schemes: Vec<&str> = jobs
        .iter()
        .filter_map(|j| j.spec.savepoints.as_ref()?.storage.as_ref()?.scheme())
        .collect();
    for scheme in ["s3", "gs", "az"] {
        assert!(
            savepoint_schemes.contains(&scheme),
            "no example keeps savepoints on {scheme}://"
        );
    }
    assert!(
        jobs.iter().any(|j| j.spec.autoscaler.is_some()),
        "no autoscaled example"
    );
    assert!(
        jobs.iter().any(|j| j.spec.checkpoints.is_none()),
        "no minimal example"
    );
    assert!(
        jobs.iter()
            .any(|j| j.spec.job.as_ref().is_some_and(|job| job
                .sources
                .iter()
                .any(|s| s.kafka.is_some())
                && job.sinks.iter().any(|s| s.kafka.is_some()))),
        "no Kafka-to-Kafka example"
    );
}

/// The field paths a bad manifest must be rejected at, from its `# expect: <path>` lines.
fn expected_paths(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# expect: "))
        .map(|p| p.trim().to_owned())
        .collect()
}

#[test]
fn every_bad_manifest_is_rejected_by_both_validators_naming_the_field() {
    let validator = committed_crd_validator();
    let bad = yaml_files(&repo().join("examples/bad"));
    assert!(
        bad.len() >= 15,
        "expected at least 15 bad manifests, found {}",
        bad.len()
    );
    for path in bad {
        let (text, value) = load(&path);
        let expected = expected_paths(&text);
        assert!(
            !expected.is_empty(),
            "{}: no `# expect: <path>` line",
            path.display()
        );

        let schema_errors: Vec<String> = validator
            .validate(&value)
            .iter()
            .map(ToString::to_string)
            .collect();
        let rust_errors: Vec<String> = match strom_crds::validate::from_yaml(&text) {
            Ok(_) => panic!("{}: accepted by validate()", path.display()),
            Err(v) => v.0.iter().map(ToString::to_string).collect(),
        };
        for field in &expected {
            let names = |msg: &String| msg.starts_with(&format!("{field}: "));
            assert!(
                schema_errors.iter().any(names),
                "{}: the CRD schema did not reject {field}; it said {schema_errors:#?}",
                path.display()
            );
            assert!(
                rust_errors.iter().any(names),
                "{}: validate() did not reject {field}; it said {rust_errors:#?}",
                path.display()
            );
        }
    }
}

#[test]
fn schema_defaults_equal_the_rust_defaults() {
    // What the API server stores for a minimal manifest must read back as the same spec the
    // operator builds from the bare manifest with serde defaults.
    let text = std::fs::read_to_string(repo().join("examples/minimal.yaml")).unwrap();
    let mut value: Value = serde_yaml_ng::from_str(&text).unwrap();
    value["spec"]["checkpoints"] = serde_json::json!({"storage": "file:///tmp/x"});
    value["spec"]["savepoints"] = serde_json::json!({});
    value["spec"]["autoscaler"] = serde_json::json!({});
    value["spec"]["rollback"] = serde_json::json!({});
    value["spec"]["restore"] = serde_json::json!({});

    let crd = strom_crds::crd();
    let schema =
        serde_json::to_value(&crd.spec.versions[0].schema).unwrap()["openAPIV3Schema"].clone();
    let defaulted = kube::core::cel::apply_defaults(&schema, &value);

    let mut from_serde = strom_crds::validate::from_value(value).unwrap();
    let mut from_schema = strom_crds::validate::from_value(defaulted.clone()).unwrap();
    // Inside spec.job the schema also applies the engine's defaults (e.g. `schema: []`),
    // which the engine applies itself when it reads the job: compare the rest.
    assert!(from_schema.spec.job.is_some());
    from_serde.spec.job = None;
    from_schema.spec.job = None;
    assert_eq!(from_schema.spec, from_serde.spec);
    // And the schema really did fill them in (the comparison above is not vacuous).
    assert_eq!(defaulted["spec"]["checkpoints"]["interval"], "30s");
    assert_eq!(defaulted["spec"]["autoscaler"]["targetUtilization"], 0.7);
    assert_eq!(defaulted["spec"]["upgradeMode"], "stateless");
}

#[test]
fn strom_local_check_prints_each_verdict_and_fails_on_a_bad_manifest() {
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_strom-local"))
            .arg("check")
            .args(args)
            .current_dir(repo())
            .output()
            .unwrap()
    };
    let good = run(&["examples/minimal.yaml"]);
    let stdout = String::from_utf8_lossy(&good.stdout);
    assert!(good.status.success(), "{stdout}");
    assert!(
        stdout.contains("FlinkJob default/hello is valid"),
        "{stdout}"
    );

    let bad = run(&[
        "examples/minimal.yaml",
        "examples/bad/03-autoscaler-min-above-max.yaml",
    ]);
    let stdout = String::from_utf8_lossy(&bad.stdout);
    assert_eq!(bad.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("03-autoscaler-min-above-max.yaml#1: rejected"),
        "{stdout}"
    );
    assert!(
        stdout.contains("api server: spec.autoscaler.minParallelism: must not exceed"),
        "{stdout}"
    );

    let missing = run(&["examples/no-such-file.yaml"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("cannot read examples/no-such-file.yaml")
    );
}

#[test]
fn the_crd_checks_the_pipeline_in_spec_job_too() {
    // spec.job carries the engine's job-spec schema, so the API server refuses a broken
    // pipeline with its path (the engine reports the same when it starts).
    let validator = committed_crd_validator();
    let text = std::fs::read_to_string(repo().join("examples/autoscaled.yaml")).unwrap();
    let mut value: Value = serde_yaml_ng::from_str(&text).unwrap();
    value["spec"]["job"]["transforms"][0]["window"]["tumble"] = serde_json::json!("1x");
    value["spec"]["job"]["transforms"][0]["colour"] = serde_json::json!("red");
    let errors: Vec<String> = validator
        .validate(&value)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("spec.job.transforms[0].window.tumble: ")),
        "{errors:#?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("spec.job.transforms[0].colour: unknown field")),
        "{errors:#?}"
    );
}
