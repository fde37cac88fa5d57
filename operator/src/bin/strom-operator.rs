//! `strom-operator`: the FlinkJob controller. Talks to the cluster of `KUBECONFIG` (or the
//! in-cluster service account) and to engines over HTTP. Several replicas may run: one leads
//! (through a Lease), the others stand by.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use strom_operator::controller::Metrics;
use strom_operator::leader::{Election, lead};

#[derive(Parser)]
#[command(version, about = "The Strom operator: runs FlinkJobs")]
struct Cli {
    /// Watch only this namespace; repeat (or separate with commas) for several. Default: all
    /// namespaces.
    #[arg(long = "namespace", value_delimiter = ',')]
    namespaces: Vec<String>,
    /// Serve /healthz, /readyz and /metrics here.
    #[arg(long, default_value = "0.0.0.0:8080")]
    listen: std::net::SocketAddr,
    /// The Lease replicas compete for.
    #[arg(long, default_value = "strom-operator")]
    lease_name: String,
    /// Namespace of the Lease (default: $POD_NAMESPACE, else `default`).
    #[arg(long)]
    lease_namespace: Option<String>,
    /// A leader that has not renewed the Lease for this many seconds is replaced.
    #[arg(long, default_value_t = 15)]
    lease_seconds: u64,
    /// Run without leader election (a single replica).
    #[arg(long)]
    no_leader_election: bool,
    /// How often the autoscaler samples each job's engine metrics and decides, in seconds.
    #[arg(long, default_value_t = 10)]
    autoscaler_interval: u64,
    /// The service account engine pods run as when their FlinkJob names none
    /// (`spec.podTemplate.serviceAccountName`); it must exist in every namespace watched.
    #[arg(long)]
    engine_service_account: Option<String>,
    /// A namespace whose pods may reach engines' control ports (repeat for several: the
    /// operator's, the control plane's, Prometheus'). With any, each job gets a
    /// NetworkPolicy admitting only those; without, none is made.
    #[arg(long = "engine-ingress-namespace")]
    engine_ingress_namespaces: Vec<String>,
    /// An object-storage endpoint FlinkJobs may name in `spec.objectStorage.endpoint`
    /// (repeat for several), e.g. `https://minio.storage.svc:9000`: the operator sends its
    /// credentials to these and the clouds' own only, and refuses a job naming another.
    #[arg(long = "allowed-storage-endpoint")]
    allowed_storage_endpoints: Vec<String>,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("STROM_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colour only on a terminal: pod logs and files get plain text.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let cli = Cli::parse();
    let client = match kube::Client::try_default().await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: cannot reach the Kubernetes API: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let metrics = Arc::new(Metrics::default());
    let listener = match tokio::net::TcpListener::bind(cli.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: --listen {}: {e}", cli.listen);
            return std::process::ExitCode::from(2);
        }
    };
    let served = metrics.clone();
    let app = axum::Router::new()
        .route("/healthz", axum::routing::get(|| async { "ok" }))
        .route("/readyz", axum::routing::get(|| async { "ok" }))
        .route(
            "/metrics",
            axum::routing::get(move || {
                let m = served.clone();
                async move {
                    let mut out = String::new();
                    let _ =
                        prometheus::TextEncoder::new().encode_utf8(&m.registry.gather(), &mut out);
                    out
                }
            }),
        );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    tracing::info!(
        namespaces = if cli.namespaces.is_empty() {
            "(all)".to_owned()
        } else {
            cli.namespaces.join(",")
        },
        listen = %cli.listen,
        "strom-operator started"
    );
    let settings = strom_operator::controller::Settings {
        autoscaler_interval: Duration::from_secs(cli.autoscaler_interval.max(1)),
        engine_service_account: cli.engine_service_account,
        engine_ingress_namespaces: cli.engine_ingress_namespaces,
        storage_endpoints: cli.allowed_storage_endpoints,
    };
    let controller = {
        let (client, metrics) = (client.clone(), metrics.clone());
        async move {
            metrics.leader.set(1);
            strom_operator::controller::run_in(client, cli.namespaces, metrics, settings).await;
        }
    };
    if cli.no_leader_election {
        controller.await;
        return std::process::ExitCode::SUCCESS;
    }
    let ns = cli
        .lease_namespace
        .or_else(|| std::env::var("POD_NAMESPACE").ok())
        .unwrap_or_else(|| "default".into());
    let identity = std::env::var("POD_NAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| format!("strom-operator-{}", std::process::id()));
    let election = Election::new(
        kube::Api::namespaced(client, &ns),
        &cli.lease_name,
        &identity,
        Duration::from_secs(cli.lease_seconds.max(2)),
    );
    match lead(&election, controller).await {
        Ok(()) => {
            // Lost the lease: stop acting at once; the pod restarts as a standby.
            eprintln!("error: lost the leader lease; exiting");
            std::process::ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("error: leader election: {e}");
            std::process::ExitCode::from(1)
        }
    }
}
