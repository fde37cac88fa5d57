//! `strom-operator`: the FlinkJob controller. Talks to the cluster of `KUBECONFIG` (or the
//! in-cluster service account) and to engines over HTTP.

use clap::Parser;

#[derive(Parser)]
#[command(version, about = "The Strom operator: runs FlinkJobs")]
struct Cli {
    /// Watch only this namespace (default: all namespaces).
    #[arg(long)]
    namespace: Option<String>,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("STROM_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let client = match kube::Client::try_default().await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: cannot reach the Kubernetes API: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    tracing::info!(
        namespace = cli.namespace.as_deref().unwrap_or("(all)"),
        "strom-operator started"
    );
    strom_operator::controller::run(client, cli.namespace).await;
    std::process::ExitCode::SUCCESS
}
