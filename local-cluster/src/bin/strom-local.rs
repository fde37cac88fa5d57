//! `strom-local`: Strom on this machine, without a Kubernetes cluster.
//!
//! - `strom-local up` runs a local cluster in the foreground: an in-memory Kubernetes API
//!   server, the workload controllers and a kubelet that runs pods as local processes, with
//!   the FlinkJob CRD installed. `kubectl --kubeconfig .strom/kubeconfig …` talks to it.
//! - `strom-local check FILE…` validates FlinkJob manifests exactly as the cluster will.
//! - `strom-local docs` writes the documentation site's generated references
//!   (`docs/reference/`) from the CRD, the job schema and the OpenAPI document.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use serde_json::Value;
use strom_local_cluster::admission::SchemaValidator;
use strom_local_cluster::cluster::{Cluster, Config};

#[derive(Parser)]
#[command(version, about = "Strom on this machine, without a Kubernetes cluster")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a local cluster in the foreground until Ctrl-C.
    Up {
        /// Where the kubeconfig, pod directories and logs go.
        #[arg(long, default_value = ".strom")]
        dir: PathBuf,
        /// Address of the API server (port 0: any free port).
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
        /// Map an image to a local executable, e.g. `--image 'strom/engine:*=target/debug/strom-engine'`.
        /// Containers that set `command` run that command (found on PATH) instead.
        #[arg(long = "image", value_parser = parse_image)]
        images: Vec<(String, PathBuf)>,
        /// Do not install the FlinkJob CRD (e.g. to install it with the Helm chart).
        #[arg(long)]
        without_crd: bool,
    },
    /// Validate FlinkJob manifests as the API server and the operator will.
    Check {
        /// YAML files; each may hold several documents separated by `---`.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Write the generated references of the documentation site into `<repo>/docs/`.
    Docs {
        /// The repository's root.
        #[arg(long, default_value = ".")]
        repo: PathBuf,
    },
}

fn parse_image(text: &str) -> Result<(String, PathBuf), String> {
    let (pattern, exe) = text.split_once('=').ok_or("expected PATTERN=EXECUTABLE")?;
    Ok((pattern.to_owned(), PathBuf::from(exe)))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Up {
            dir,
            listen,
            images,
            without_crd,
        } => {
            tracing_subscriber::fmt()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| "info".into()),
                )
                .with_writer(std::io::stderr)
                // Colour only on a terminal: pod logs and files get plain text.
                .with_ansi(std::io::stderr().is_terminal())
                .init();
            let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
            match runtime.block_on(up(dir, listen, images, without_crd)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Docs { repo } => match write_docs(&repo) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::from(2)
            }
        },
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

/// The default image mappings: the shell image for quick experiments, plus what the user adds.
fn default_images(mut images: Vec<(String, PathBuf)>) -> Vec<(String, PathBuf)> {
    images.push(("strom/shell:*".into(), PathBuf::from("/bin/sh")));
    images
}

async fn up(
    dir: PathBuf,
    listen: SocketAddr,
    images: Vec<(String, PathBuf)>,
    without_crd: bool,
) -> anyhow::Result<()> {
    let config = Config {
        dir: dir.clone(),
        listen,
        images: default_images(images),
    };
    let kubeconfig = dir.join("kubeconfig");
    let _ = std::fs::remove_file(&kubeconfig);
    let cluster = Cluster::start(config)
        .await
        .context("starting the local cluster")?;
    if !without_crd {
        install_crd(&cluster)?;
    }
    println!("Strom local cluster is up at {}", cluster.url());
    println!("  kubeconfig: {}", cluster.kubeconfig.display());
    println!(
        "  try:        kubectl --kubeconfig {} get nodes",
        cluster.kubeconfig.display()
    );
    println!(
        "              kubectl --kubeconfig {} apply -f examples/minimal.yaml",
        cluster.kubeconfig.display()
    );
    println!("Press Ctrl-C to stop; every process it started stops with it.");
    shutdown_signal().await;
    println!("stopping…");
    let _ = std::fs::remove_file(&cluster.kubeconfig);
    cluster.stop().await;
    Ok(())
}

/// Installs the FlinkJob CRD as `kubectl apply` would, so a later `kubectl apply -f
/// crds/flinkjob.yaml` updates it without a warning.
fn install_crd(cluster: &Cluster) -> anyhow::Result<()> {
    let mut crd = serde_json::to_value(strom_crds::crd())?;
    let applied = crd.to_string();
    crd["metadata"]["annotations"] =
        serde_json::json!({"kubectl.kubernetes.io/last-applied-configuration": applied});
    let rt = cluster
        .server
        .registry
        .find("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        .expect("built in");
    let opts = strom_local_cluster::apiserver::ops::WriteOptions {
        field_manager: Some("strom-local".into()),
        ..Default::default()
    };
    cluster
        .server
        .create(&rt, None, crd, &opts)
        .map_err(|e| anyhow::anyhow!("installing the FlinkJob CRD: {}", e.message))?;
    Ok(())
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("signal handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
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

fn write_docs(repo: &std::path::Path) -> anyhow::Result<()> {
    for (page, text) in strom_local_cluster::docgen::pages(repo)? {
        let path = repo.join("docs").join(&page);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
