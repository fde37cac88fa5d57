//! The job-spec schema committed at `crds/job-schema.json` (which the FlinkJob CRD embeds as
//! `spec.job`) is what the engine's types generate.

#![allow(
    clippy::unwrap_used,
    reason = "a test should fail loudly at the first surprise"
)]

#[test]
fn committed_job_schema_matches_the_engine_types() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../crds/job-schema.json");
    let committed = std::fs::read_to_string(path).unwrap();
    let generated = format!(
        "{}\n",
        serde_json::to_string_pretty(&strom_engine::spec::JobSpec::json_schema()).unwrap()
    );
    assert!(
        committed == generated,
        "crds/job-schema.json is out of date; regenerate it and the CRD with\n\n    cargo run -q -p strom-engine -- schema > crds/job-schema.json\n    cargo run -q -p strom-crds --bin crdgen > crds/flinkjob.yaml\n"
    );
}

#[test]
fn every_example_job_satisfies_the_engine() {
    // The pipelines inside the example FlinkJobs and examples/jobs are real jobs.
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples");
    let mut checked = 0;
    for entry in std::fs::read_dir(root)
        .unwrap()
        .chain(std::fs::read_dir(format!("{root}/jobs")).unwrap())
    {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        // An example may hold several objects (the Kafka example's broker pod and jobs).
        let text = std::fs::read_to_string(&path).unwrap();
        for doc in text.split("\n---\n") {
            let doc: serde_json::Value = serde_yaml_ng::from_str(doc).unwrap();
            let job = if path.to_string_lossy().contains("/jobs/") {
                Some(doc)
            } else if doc["kind"] == "FlinkJob" {
                doc["spec"].get("job").cloned()
            } else {
                None
            };
            let Some(job) = job else { continue };
            let spec = strom_engine::spec::JobSpec::parse(&job.to_string())
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            strom_engine::plan::Plan::build(&spec, 2)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            checked += 1;
        }
    }
    assert!(checked >= 5, "only {checked} jobs checked");
}
