//! The job spec's type check (`strom_jobspec::typing`, which the FlinkJob API runs before any
//! pod starts) and the engine's planner agree: for every job this repository ships — the
//! golden cases and the examples — each step's columns as the spec sees them are exactly the
//! planner's schema, and a pipeline with an unknown column or a type error is refused by the
//! spec with the same path and words the planner would use.

#![allow(
    clippy::unwrap_used,
    reason = "a test should fail loudly at the first surprise"
)]

use std::path::{Path, PathBuf};

use strom_engine::expr::{columns, schema_of};
use strom_engine::plan::Plan;
use strom_engine::spec::JobSpec;

/// Every job spec in the repository: the golden cases' specs and the example jobs.
fn shipped_specs() -> Vec<(PathBuf, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    for dir in [root.join("tests/golden"), root.join("../examples/jobs")] {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "yaml") {
                let text = std::fs::read_to_string(&path)
                    .unwrap()
                    .replace("${DIR}", "/tmp/in")
                    .replace("${OUT}", "/tmp/out");
                out.push((path, text));
            }
        }
    }
    assert!(out.len() >= 12, "found only {} specs", out.len());
    out
}

#[test]
fn every_steps_columns_are_the_planners_schema() {
    for (path, text) in shipped_specs() {
        let spec = JobSpec::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let typed = spec.columns().unwrap();
        let plan = Plan::build(&spec, 2).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for (step, cols) in &typed {
            let planned = plan
                .outputs
                .get(step)
                .unwrap_or_else(|| panic!("{}: the plan has no step {step}", path.display()));
            assert_eq!(
                &columns(planned).unwrap(),
                cols,
                "{}: step {step}",
                path.display()
            );
            assert_eq!(
                schema_of(cols).fields().len(),
                planned.fields().len(),
                "{}: step {step}",
                path.display()
            );
        }
        // Every step the planner built, bar its internal pre-filters, was typed.
        for step in plan.outputs.keys() {
            assert!(
                typed.contains_key(step) || step.ends_with(".where"),
                "{}: {step} was not typed",
                path.display()
            );
        }
    }
}

fn refused(text: &str) -> Vec<(String, String)> {
    JobSpec::parse(text)
        .unwrap_err()
        .0
        .into_iter()
        .map(|v| (v.path, v.reason))
        .collect()
}

const SOURCE: &str = "sources:
  - name: gen
    datagen:
      count: 10
      columns: [{name: id, expr: id}, {name: ts, expr: id * 10}, {name: k, expr: \"CONCAT('k', MOD(id, 3))\"}]
    watermark: {field: ts, max_out_of_orderness: 1s}
";

#[test]
fn unknown_columns_and_type_errors_are_refused_by_path_before_planning() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "transforms: [{name: f, input: gen, where: 'nope > 1'}]",
            "transforms[0].where",
            "unknown column \"nope\" (the input has id, ts, k)",
        ),
        (
            "transforms: [{name: f, input: gen, where: 'k + 1 > 2'}]",
            "transforms[0].where",
            "arithmetic needs numbers but got STRING",
        ),
        (
            "transforms: [{name: f, input: gen, where: 'id'}]",
            "transforms[0].where",
            "must be a condition (true or false)",
        ),
        (
            "transforms: [{name: f, input: gen, select: [id, 'UPPER(id) AS u']}]",
            "transforms[0].select[1]",
            "UPPER needs STRING but got BIGINT",
        ),
        (
            "transforms: [{name: w, input: gen, key_by: [kk], window: {tumble: 1s}, select: ['COUNT(*) AS n']}]",
            "transforms[0].key_by[0]",
            "unknown column \"kk\"",
        ),
        (
            "transforms: [{name: w, input: gen, key_by: [k], window: {tumble: 1s}, select: [k, 'SUM(k) AS s']}]",
            "transforms[0].select[1]",
            "SUM needs a number",
        ),
        (
            "transforms: [{name: w, input: gen, key_by: [k], window: {tumble: 1s}, select: [k, id]}]",
            "transforms[0].select[1]",
            "must be a key_by column, window_start, window_end or an aggregate",
        ),
        (
            "transforms: [{name: w, input: gen, key_by: [k], window: {tumble: 1s}, select: [k, 'COUNT(*) AS n']}, {name: after, input: w, where: 'id > 1'}]",
            "transforms[1].where",
            "unknown column \"id\" (the input has k, n)",
        ),
        (
            "transforms: [{name: t, input: gen, top_n: {limit: 1, order_by: id}}]",
            "transforms[0].input",
            "top_n needs an input with window_start and window_end columns",
        ),
    ];
    for (transforms, path, reason) in cases {
        let text = format!(
            "{SOURCE}{transforms}\nsinks: [{{name: out, input: {}, blackhole: {{}}}}]",
            if transforms.contains("name: after") {
                "after"
            } else {
                transforms
                    .split("name: ")
                    .nth(1)
                    .unwrap()
                    .split(',')
                    .next()
                    .unwrap()
            }
        );
        let got = refused(&text);
        assert!(
            got.iter().any(|(p, r)| p == path && r.contains(reason)),
            "{transforms}: expected {path}: {reason}; got {got:?}"
        );
        // The spec was refused before the planner ran, with the planner's own words: the
        // planner, given the same steps, reports the same problem.
        let spec: JobSpec = serde_yaml_ng::from_str(&text).unwrap();
        let planned = Plan::build(&spec, 1).err().unwrap().0;
        assert!(
            planned
                .iter()
                .any(|v| &v.path == path && v.reason.contains(reason)),
            "{transforms}: the planner said {planned:?}"
        );
    }
}
