//! The Terraform modules and examples (`terraform/`), checked as far as a machine without
//! the provider registry allows: `terraform fmt -check`; every file parsed (hcl-rs) and every
//! reference resolved — variables, locals, resources, data sources, module outputs — with
//! every module call passing each required input and no unknown one; the chart values the
//! release module sets exist in the chart's values.schema.json; the example FlinkJobs valid
//! once their bucket is filled in; and checkov (PyPI) finding nothing wrong with the security
//! posture of the buckets and identities. `terraform init/validate/plan` need the providers,
//! which these machines cannot download: they are not run (docs/terraform.md says so).

#![allow(
    clippy::unwrap_used,
    reason = "a test should fail loudly at the first surprise"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use hcl::expr::{Operation, TraversalOperator};
use hcl::template::{Directive, Element, Template};
use hcl::{Block, Body, Expression, ObjectKey};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn terraform_dir() -> PathBuf {
    root().join("terraform")
}

/// What one module directory declares, and what its expressions reference.
#[derive(Default, Debug)]
struct Module {
    dir: PathBuf,
    /// Variable name → whether it has a default.
    variables: BTreeMap<String, bool>,
    locals: BTreeSet<String>,
    outputs: BTreeSet<String>,
    /// `type.name` of resources.
    resources: BTreeSet<String>,
    /// `type.name` of data sources.
    data: BTreeSet<String>,
    /// Module call name → (source, the arguments given).
    calls: BTreeMap<String, (String, BTreeSet<String>)>,
    /// Every reference, with where it appears (`file: block`).
    references: Vec<(String, String)>,
    /// Blocks lacking a description or type, and the like.
    complaints: Vec<String>,
}

fn label(block: &Block, i: usize) -> String {
    block
        .labels
        .get(i)
        .map(|l| l.as_str().to_owned())
        .unwrap_or_default()
}

/// The reference chains (`var.x`, `module.m.o`, `aws_s3_bucket.state.arn`) in an expression:
/// each traversal's root variable and the attribute names after it, up to the first index or
/// splat.
fn chains(expr: &Expression) -> Vec<String> {
    let mut out = Vec::new();
    collect(expr, &mut out);
    out.retain(|c| c.contains('.'));
    out
}

fn collect(expr: &Expression, out: &mut Vec<String>) {
    match expr {
        Expression::Traversal(t) => {
            let mut chain = match &t.expr {
                Expression::Variable(v) => Some(v.as_str().to_owned()),
                other => {
                    collect(other, out);
                    None
                }
            };
            for op in &t.operators {
                match op {
                    TraversalOperator::GetAttr(id) => {
                        if let Some(c) = chain.as_mut() {
                            c.push('.');
                            c.push_str(id.as_str());
                        }
                    }
                    TraversalOperator::Index(index) => {
                        collect(index, out);
                        out.extend(chain.take());
                    }
                    _ => out.extend(chain.take()),
                }
            }
            out.extend(chain);
        }
        Expression::Array(items) => items.iter().for_each(|e| collect(e, out)),
        Expression::Object(object) => {
            for (key, value) in object {
                if let ObjectKey::Expression(k) = key {
                    collect(k, out);
                }
                collect(value, out);
            }
        }
        Expression::TemplateExpr(t) => {
            let template = Template::from_expr(t).unwrap();
            collect_template(&template, out);
        }
        Expression::FuncCall(f) => f.args.iter().for_each(|e| collect(e, out)),
        Expression::Parenthesis(e) => collect(e, out),
        Expression::Conditional(c) => {
            collect(&c.cond_expr, out);
            collect(&c.true_expr, out);
            collect(&c.false_expr, out);
        }
        Expression::Operation(op) => match op.as_ref() {
            Operation::Unary(u) => collect(&u.expr, out),
            Operation::Binary(b) => {
                collect(&b.lhs_expr, out);
                collect(&b.rhs_expr, out);
            }
        },
        Expression::ForExpr(f) => {
            collect(&f.collection_expr, out);
            if let Some(k) = &f.key_expr {
                collect(k, out);
            }
            collect(&f.value_expr, out);
            if let Some(c) = &f.cond_expr {
                collect(c, out);
            }
        }
        _ => {}
    }
}

fn collect_template(template: &Template, out: &mut Vec<String>) {
    for element in template.elements() {
        match element {
            Element::Interpolation(i) => collect(&i.expr, out),
            Element::Directive(Directive::If(d)) => {
                collect(&d.cond_expr, out);
                collect_template(&d.true_template, out);
                if let Some(f) = &d.false_template {
                    collect_template(f, out);
                }
            }
            Element::Directive(Directive::For(d)) => {
                collect(&d.collection_expr, out);
                collect_template(&d.template, out);
            }
            Element::Literal(_) => {}
        }
    }
}

fn walk_body(body: &Body, module: &mut Module, file: &str, context: &str) {
    for attribute in body.attributes() {
        for chain in chains(&attribute.expr) {
            module
                .references
                .push((chain, format!("{file}: {context}")));
        }
    }
    for block in body.blocks() {
        walk_body(&block.body, module, file, context);
    }
}

fn load(dir: &Path) -> Module {
    let mut module = Module {
        dir: dir.to_owned(),
        ..Module::default()
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "tf"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} has no .tf files", dir.display());
    for path in files {
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        let body: Body =
            hcl::parse(&text).unwrap_or_else(|e| panic!("{}: does not parse: {e}", path.display()));
        for block in body.blocks() {
            let kind = block.identifier.as_str();
            let context = format!(
                "{kind} {}",
                block
                    .labels
                    .iter()
                    .map(|l| l.as_str())
                    .collect::<Vec<_>>()
                    .join(".")
            );
            match kind {
                "variable" => {
                    let name = label(block, 0);
                    let has = |k: &str| block.body.attributes().any(|a| a.key.as_str() == k);
                    if !has("description") || !has("type") {
                        module.complaints.push(format!(
                            "{file}: variable {name} needs a description and a type"
                        ));
                    }
                    module.variables.insert(name, has("default"));
                }
                "output" => {
                    let name = label(block, 0);
                    if !block
                        .body
                        .attributes()
                        .any(|a| a.key.as_str() == "description")
                    {
                        module
                            .complaints
                            .push(format!("{file}: output {name} needs a description"));
                    }
                    let value = block.body.attributes().find(|a| a.key.as_str() == "value");
                    match value {
                        Some(v) if !chains(&v.expr).is_empty() => {}
                        _ => module
                            .complaints
                            .push(format!("{file}: output {name} refers to nothing")),
                    }
                    module.outputs.insert(name);
                }
                "locals" => {
                    for a in block.body.attributes() {
                        module.locals.insert(a.key.as_str().to_owned());
                    }
                }
                "resource" => {
                    module
                        .resources
                        .insert(format!("{}.{}", label(block, 0), label(block, 1)));
                }
                "data" => {
                    module
                        .data
                        .insert(format!("{}.{}", label(block, 0), label(block, 1)));
                }
                "module" => {
                    let source = block
                        .body
                        .attributes()
                        .find(|a| a.key.as_str() == "source")
                        .and_then(|a| match &a.expr {
                            Expression::String(s) => Some(s.clone()),
                            _ => None,
                        })
                        .unwrap_or_default();
                    let args = block
                        .body
                        .attributes()
                        .map(|a| a.key.as_str().to_owned())
                        .filter(|k| {
                            !matches!(
                                k.as_str(),
                                "source"
                                    | "version"
                                    | "providers"
                                    | "depends_on"
                                    | "count"
                                    | "for_each"
                            )
                        })
                        .collect();
                    module.calls.insert(label(block, 0), (source, args));
                }
                "terraform" | "provider" => {}
                other => module
                    .complaints
                    .push(format!("{file}: unexpected top-level block {other}")),
            }
            walk_body(&block.body, &mut module, &file, &context);
        }
    }
    module
}

/// Every module directory under terraform/: modules/* and examples/*.
fn module_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    for group in ["modules", "examples"] {
        for entry in std::fs::read_dir(terraform_dir().join(group)).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            }
        }
    }
    dirs.sort();
    dirs
}

fn problems(module: &Module, modules: &BTreeMap<PathBuf, Module>) -> Vec<String> {
    let mut problems = module.complaints.clone();
    let mut used_variables = BTreeSet::new();
    for (chain, at) in &module.references {
        let parts: Vec<&str> = chain.split('.').collect();
        let missing = match parts[0] {
            "var" => {
                used_variables.insert(parts[1].to_owned());
                (!module.variables.contains_key(parts[1])).then(|| format!("variable {}", parts[1]))
            }
            "local" => (!module.locals.contains(parts[1])).then(|| format!("local {}", parts[1])),
            "data" => {
                let key = format!("{}.{}", parts[1], parts.get(2).unwrap_or(&""));
                (!module.data.contains(&key)).then(|| format!("data source {key}"))
            }
            "module" => match module.calls.get(parts[1]) {
                None => Some(format!("module {}", parts[1])),
                Some((source, _)) => {
                    let target = module.dir.join(source).canonicalize().unwrap();
                    let output = parts.get(2).unwrap_or(&"");
                    (!modules[&target].outputs.contains(*output))
                        .then(|| format!("output {output} of module {}", parts[1]))
                }
            },
            kind if ["aws_", "google_", "azurerm_", "helm_"]
                .iter()
                .any(|p| kind.starts_with(p)) =>
            {
                let key = format!("{kind}.{}", parts[1]);
                (!module.resources.contains(&key)).then(|| format!("resource {key}"))
            }
            // each.*, count.*, path.*, dynamic-block iterators, attribute chains of locals.
            _ => None,
        };
        if let Some(what) = missing {
            problems.push(format!("{at}: {chain} refers to an undeclared {what}"));
        }
    }
    for name in module.variables.keys() {
        if !used_variables.contains(name) {
            problems.push(format!("variable {name} is declared but never used"));
        }
    }
    for (name, (source, args)) in &module.calls {
        let target = module.dir.join(source);
        let Ok(target) = target.canonicalize() else {
            problems.push(format!("module {name}: source {source} does not exist"));
            continue;
        };
        let callee = &modules[&target];
        for (variable, has_default) in &callee.variables {
            if !has_default && !args.contains(variable) {
                problems.push(format!(
                    "module {name} ({source}): required input {variable} is not passed"
                ));
            }
        }
        for arg in args {
            if !callee.variables.contains_key(arg) {
                problems.push(format!(
                    "module {name} ({source}): {arg} is not an input of it"
                ));
            }
        }
    }
    problems
}

#[test]
fn every_reference_resolves_and_every_module_call_is_complete() {
    let modules: BTreeMap<PathBuf, Module> = module_dirs()
        .into_iter()
        .map(|d| (d.canonicalize().unwrap(), load(&d)))
        .collect();
    let names: Vec<String> = modules
        .keys()
        .map(|d| {
            d.strip_prefix(terraform_dir().canonicalize().unwrap())
                .unwrap()
                .display()
                .to_string()
        })
        .collect();
    for expected in [
        "modules/aws",
        "modules/gcp",
        "modules/azure",
        "modules/release",
        "examples/eks",
        "examples/gke",
        "examples/aks",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} is missing: {names:?}"
        );
    }
    let mut all = Vec::new();
    for (dir, module) in &modules {
        for p in problems(module, &modules) {
            all.push(format!("{}: {p}", dir.display()));
        }
    }
    assert!(all.is_empty(), "{}", all.join("\n"));

    // The checks see what they should (they are not vacuous).
    let aws = &modules[&terraform_dir().join("modules/aws").canonicalize().unwrap()];
    assert!(
        aws.references
            .iter()
            .any(|(c, _)| c == "var.oidc_provider_arn")
    );
    assert!(
        aws.references
            .iter()
            .any(|(c, _)| c.starts_with("aws_iam_role.engine"))
    );
    assert!(aws.calls.contains_key("release"));
    assert!(
        !aws.variables["oidc_provider_arn"],
        "oidc_provider_arn must be required"
    );
}

#[test]
fn a_broken_module_is_caught() {
    // The checker itself: an undeclared variable, a missing required input and an unknown
    // one are each reported.
    let dir = std::env::temp_dir().join(format!("strom-tf-broken-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("child")).unwrap();
    std::fs::create_dir_all(dir.join("root")).unwrap();
    std::fs::write(
        dir.join("child/main.tf"),
        "variable \"needed\" {\n  description = \"x\"\n  type = string\n}\noutput \"o\" {\n  description = \"x\"\n  value = var.needed\n}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("root/main.tf"),
        "module \"c\" {\n  source = \"../child\"\n  wrong = 1\n}\noutput \"p\" {\n  description = \"x\"\n  value = \"${var.undeclared}-${module.c.nope}\"\n}\n",
    )
    .unwrap();
    let modules: BTreeMap<PathBuf, Module> = ["child", "root"]
        .iter()
        .map(|d| {
            let p = dir.join(d).canonicalize().unwrap();
            (p.clone(), load(&p))
        })
        .collect();
    let root = &modules[&dir.join("root").canonicalize().unwrap()];
    let found = problems(root, &modules).join("\n");
    for expect in [
        "var.undeclared refers to an undeclared variable undeclared",
        "module.c.nope refers to an undeclared output nope of module c",
        "required input needed is not passed",
        "wrong is not an input of it",
    ] {
        assert!(found.contains(expect), "{expect:?} not in:\n{found}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn terraform_fmt_finds_nothing_to_change() {
    let out = Command::new("terraform")
        .args(["fmt", "-check", "-recursive", "-diff"])
        .current_dir(terraform_dir())
        .output()
        .unwrap_or_else(|e| panic!("terraform (on PATH on these machines): {e}"));
    assert!(
        out.status.success(),
        "terraform fmt -check:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The dotted paths of the nested object keys in `expr` (`operator.serviceAccount.annotations`).
fn object_paths(expr: &Expression, prefix: &str, out: &mut Vec<String>) {
    if let Expression::Object(object) = expr {
        for (key, value) in object {
            let key = match key {
                ObjectKey::Identifier(id) => id.as_str().to_owned(),
                ObjectKey::Expression(Expression::String(s)) => s.clone(),
                other => panic!("unexpected object key {other:?}"),
            };
            let path = if prefix.is_empty() {
                key
            } else {
                format!("{prefix}.{key}")
            };
            out.push(path.clone());
            object_paths(value, &path, out);
        }
    }
}

#[test]
fn the_values_the_release_module_sets_are_chart_values() {
    let text = std::fs::read_to_string(terraform_dir().join("modules/release/main.tf")).unwrap();
    let body: Body = hcl::parse(&text).unwrap();
    let values = body
        .blocks()
        .filter(|b| b.identifier.as_str() == "locals")
        .flat_map(|b| b.body.attributes())
        .find(|a| a.key.as_str() == "values")
        .expect("locals.values in modules/release/main.tf");
    let Expression::FuncCall(call) = &values.expr else {
        panic!("values is merge({{…}}, var.extra_values)");
    };
    let mut paths = Vec::new();
    object_paths(&call.args[0], "", &mut paths);
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("charts/strom/values.schema.json")).unwrap(),
    )
    .unwrap();
    for path in &paths {
        let mut node = &schema;
        for part in path.split('.') {
            node = &node["properties"][part];
            assert!(
                !node.is_null(),
                "modules/release sets {path}, which charts/strom/values.schema.json does not have"
            );
        }
    }
    for expected in [
        "operator.serviceAccount.annotations",
        "engine.serviceAccount.annotations",
        "operator.watchNamespaces",
        "controlPlane.storage",
    ] {
        assert!(paths.iter().any(|p| p == expected), "{expected}: {paths:?}");
    }
}

#[test]
fn the_example_flinkjobs_are_valid_once_their_bucket_is_filled_in() {
    let dir = std::env::temp_dir().join(format!("strom-tf-jobs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut files = Vec::new();
    for (example, bucket) in [
        ("eks", "s3://acme-strom-state"),
        ("gke", "gs://acme-strom-state"),
        ("aks", "abfss://strom-state@acmestrom.dfs.core.windows.net"),
    ] {
        let text = std::fs::read_to_string(
            terraform_dir().join(format!("examples/{example}/flinkjob.yaml")),
        )
        .unwrap();
        assert!(
            text.contains("BUCKET_URL"),
            "{example}: no BUCKET_URL placeholder"
        );
        let filled = text
            .replace("BUCKET_URL", bucket)
            .replace("AWS_REGION_NAME", "eu-west-1");
        let path = dir.join(format!("{example}.yaml"));
        std::fs::write(&path, filled).unwrap();
        files.push(path);
    }
    let out = Command::new(env!("CARGO_BIN_EXE_strom-local"))
        .arg("check")
        .args(&files)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.matches("is valid").count(), 3, "{stdout}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn checkov_finds_no_failed_security_check() {
    let checkov = root().join("target/tools/checkov-venv/bin/checkov");
    assert!(
        checkov.is_file(),
        "{} is missing: run scripts/install-tools.sh",
        checkov.display()
    );
    let out = Command::new(checkov)
        .args([
            "--directory",
            "terraform",
            "--framework",
            "terraform",
            "--output",
            "json",
            "--quiet",
            "--skip-download",
        ])
        .current_dir(root())
        .env("BC_SKIP_MAPPING", "TRUE")
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "checkov printed no JSON ({e}):\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let reports = match &report {
        serde_json::Value::Array(a) => a.clone(),
        other => vec![other.clone()],
    };
    let mut failed = Vec::new();
    let mut passed = 0;
    for r in &reports {
        assert_eq!(r["summary"]["parsing_errors"], 0, "{}", r["summary"]);
        passed += r["summary"]["passed"].as_u64().unwrap_or(0);
        for f in r["results"]["failed_checks"]
            .as_array()
            .into_iter()
            .flatten()
        {
            failed.push(format!(
                "{} {} ({} {})",
                f["check_id"].as_str().unwrap_or(""),
                f["check_name"].as_str().unwrap_or(""),
                f["resource"].as_str().unwrap_or(""),
                f["file_path"].as_str().unwrap_or("")
            ));
        }
    }
    assert!(failed.is_empty(), "checkov:\n{}", failed.join("\n"));
    // It really looked at the buckets and identities.
    assert!(
        passed >= 50,
        "only {passed} checks passed: did checkov see the modules?"
    );
}
