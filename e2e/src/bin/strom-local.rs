//! `strom-local`: Strom on this machine, without a Kubernetes cluster.
//!
//! `strom-local check FILE…` validates FlinkJob manifests exactly as the cluster will: the
//! API server's checks from the committed CRD (schema, unknown fields, CEL rules) and the
//! operator's own validation.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use serde_json::Value;
use strom_e2e::admission::SchemaValidator;

#[derive(Parser)]
#[command(version, about = "Strom on this machine, without a Kubernetes cluster")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate FlinkJob manifests as the API server and the operator will.
    Check {
        /// YAML files; each may hold several documents separated by `---`.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { files } => match check(&files) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::from(1),
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::from(2)
            }
        },
    }
}

/// Prints a verdict per document; returns whether all were accepted.
fn check(files: &[PathBuf]) -> anyhow::Result<bool> {
    let validator = SchemaValidator::new(&strom_crds::crd(), "v1alpha1")?;
    let mut all_ok = true;
    for file in files {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        for (i, document) in serde_yaml_ng::Deserializer::from_str(&text).enumerate() {
            let label = format!("{}#{}", file.display(), i + 1);
            let value: Value = match serde::Deserialize::deserialize(document) {
                Ok(v) => v,
                Err(e) => {
                    println!("{label}: rejected\n  not valid YAML: {e}");
                    all_ok = false;
                    continue;
                }
            };
            let mut problems: Vec<String> = validator
                .validate(&value)
                .iter()
                .map(|e| format!("api server: {e}"))
                .collect();
            let job = match strom_crds::validate::from_value(value) {
                Ok(job) => Some(job),
                Err(violations) => {
                    problems.extend(violations.0.iter().map(|v| format!("operator:   {v}")));
                    None
                }
            };
            match job {
                Some(job) if problems.is_empty() => println!(
                    "{label}: FlinkJob {}/{} is valid (parallelism {}, upgradeMode {}, {})",
                    job.metadata.namespace.as_deref().unwrap_or("default"),
                    job.metadata.name.as_deref().unwrap_or("<generated>"),
                    job.spec.parallelism,
                    job.spec.upgrade_mode,
                    match &job.spec.checkpoints {
                        Some(c) => format!("checkpoints every {} to {}", c.interval, c.storage),
                        None => "no checkpoints".into(),
                    },
                ),
                _ => {
                    all_ok = false;
                    println!("{label}: rejected");
                    for p in problems {
                        println!("  {p}");
                    }
                }
            }
        }
    }
    Ok(all_ok)
}
