//! `strom-control-plane`: the managed-service REST API. Keeps tenants, tokens, application
//! versions and the audit log in SQLite (default) or PostgreSQL; runs applications as
//! FlinkJobs in the cluster of `KUBECONFIG` (or the in-cluster service account).

use std::io::IsTerminal;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use strom_control_plane::{AppState, auth, db};

#[derive(Parser)]
#[command(
    version,
    about = "The Strom control plane: a multi-tenant REST API over FlinkJobs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API.
    Serve {
        /// Listen here.
        #[arg(long, default_value = "0.0.0.0:8090")]
        listen: std::net::SocketAddr,
        #[command(flatten)]
        store: Store,
        /// Where tenants' checkpoints and savepoints live, e.g. `s3://strom-state`: each
        /// tenant's under `<storage>/strom-<tenant>/` (each job's under its `<app>/` there);
        /// tenants cannot name storage outside their prefix.
        #[arg(long)]
        storage: String,
        /// An object-storage endpoint tenants may name in `spec.objectStorage.endpoint`
        /// (repeat for several), e.g. `https://minio.storage.svc:9000`. Default: none, the
        /// clouds' own only; the control plane's credentials go to no other address.
        #[arg(long = "allowed-storage-endpoint")]
        allowed_storage_endpoints: Vec<String>,
        /// An annotation of each tenant's engine service account `strom-engine`, as
        /// `KEY=VALUE` with `{tenant}` replaced by the tenant's name (repeat for several),
        /// e.g. `eks.amazonaws.com/role-arn=arn:aws:iam::123456789012:role/strom-{tenant}`.
        #[arg(long = "engine-service-account-annotation", value_parser = annotation)]
        engine_service_account_annotations: Vec<(String, String)>,
        /// An image repository engines may come from (repeat for several), e.g.
        /// `registry.example.com/strom/engine`; images are compared without tag or digest.
        #[arg(long = "allowed-image-repository", default_values_t = [strom_control_plane::policy::DEFAULT_IMAGE_REPOSITORY.to_owned()])]
        allowed_image_repositories: Vec<String>,
        /// A `podTemplate` field tenants may set (repeat for several); the others are
        /// refused. Default: labels, annotations, env, envFrom, volumes (of configMaps,
        /// secrets, emptyDirs, claims, downward API), volumeMounts, imagePullSecrets.
        #[arg(long = "allowed-pod-template-field", default_values_t = strom_control_plane::policy::DEFAULT_POD_TEMPLATE_FIELDS.iter().map(|f| (*f).to_owned()))]
        allowed_pod_template_fields: Vec<String>,
        /// Let tenants name `file://` storage: only where every pod is a process of one
        /// machine (a local cluster). In a real cluster such a path is the disk of whoever
        /// opens it, the control plane's own included.
        #[arg(long)]
        allow_local_storage: bool,
        /// Requests one token may make a minute (sustained).
        #[arg(long, default_value = "1200")]
        token_requests_per_minute: NonZeroU32,
        /// Requests one token may make at once.
        #[arg(long, default_value = "200")]
        token_burst: NonZeroU32,
        /// Failed authentications a client address (an IPv6 client's /64) may make a minute
        /// (sustained); beyond, every request from it is refused for a while (429).
        #[arg(long, default_value = "20")]
        failed_auth_per_minute: NonZeroU32,
        /// Failed authentications a client address may make at once.
        #[arg(long, default_value = "20")]
        failed_auth_burst: NonZeroU32,
        /// A change whose FlinkJob is still not updated this long after it was recorded
        /// (its request died, or Kubernetes did not answer) is applied by the reconciler
        /// (units ms, s, m, h).
        #[arg(long, default_value = "60s", value_parser = duration)]
        reconcile_after: std::time::Duration,
    },
    /// Create a platform admin token (it manages tenants) and print it once.
    CreateAdminToken {
        #[command(flatten)]
        store: Store,
        /// What it is for.
        #[arg(long, default_value = "platform admin")]
        description: String,
        /// Its lifetime (units ms, s, m, h), at most 8760h (a year).
        #[arg(long, default_value = strom_control_plane::routes::tokens::PLATFORM_TOKEN_DEFAULT_LIFETIME)]
        expires_in: String,
    },
    /// Revoke a token (platform or tenant) by its id: it stops working at once. For a
    /// platform whose last admin token leaked or was lost.
    RevokeToken {
        #[command(flatten)]
        store: Store,
        /// The token's id (`strom_<id>_…`).
        id: String,
    },
    /// Print the OpenAPI document.
    Openapi,
}

/// A positive duration such as `60s` or `5m`.
fn duration(text: &str) -> Result<std::time::Duration, String> {
    strom_control_plane::routes::request::positive_duration_ms("", text)
        .map(|ms| std::time::Duration::from_millis(ms.unsigned_abs()))
        .map_err(|_| format!("{text:?} is not a positive duration such as 60s or 5m"))
}

/// `KEY=VALUE`, the key a Kubernetes annotation key.
fn annotation(text: &str) -> Result<(String, String), String> {
    let (k, v) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not KEY=VALUE"))?;
    let name = k.rsplit('/').next().unwrap_or(k);
    let well_formed = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if !well_formed {
        return Err(format!("{k:?} is not an annotation key"));
    }
    Ok((k.to_owned(), v.to_owned()))
}

#[derive(clap::Args)]
struct Store {
    /// `postgres://user:pass@host/db`; default: SQLite in `--data-dir`.
    #[arg(long, env = "STROM_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Where the SQLite database lives.
    #[arg(long, default_value = "strom-data")]
    data_dir: PathBuf,
}

impl Store {
    async fn open(&self) -> Result<db::Db, String> {
        let url = match &self.database_url {
            Some(u) => u.clone(),
            None => {
                std::fs::create_dir_all(&self.data_dir)
                    .map_err(|e| format!("--data-dir {}: {e}", self.data_dir.display()))?;
                format!("sqlite://{}/strom.db", self.data_dir.display())
            }
        };
        db::Db::connect(&url)
            .await
            .map_err(|e| format!("cannot open the database: {e}"))
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("STROM_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colour only on a terminal: pod logs and files get plain text.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    match Cli::parse().command {
        Command::Openapi => {
            println!("{}", strom_control_plane::openapi_json());
            ExitCode::SUCCESS
        }
        Command::CreateAdminToken {
            store,
            description,
            expires_in,
        } => {
            let expires_at = match strom_control_plane::routes::tokens::platform_token_expiry(
                "--expires-in",
                Some(&expires_in),
            ) {
                Ok(at) => at,
                Err(e) => {
                    eprintln!("error: {}", e.body.message);
                    return ExitCode::from(2);
                }
            };
            let db = match store.open().await {
                Ok(d) => d,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            let created =
                auth::create(&db, None, auth::Role::Admin, &description, Some(expires_at)).await;
            let (id, token) = match created {
                Ok(created) => created,
                Err(e) => {
                    eprintln!("error: cannot store the token: {}", e.body.message);
                    return ExitCode::from(2);
                }
            };
            println!("{token}");
            eprintln!(
                "platform admin token {id} created, expires {}; it is shown only now",
                db::rfc3339(expires_at)
            );
            ExitCode::SUCCESS
        }
        Command::RevokeToken { store, id } => {
            let db = match store.open().await {
                Ok(d) => d,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            let now = db::now_ms();
            match strom_control_plane::store::tokens::revoke_any(&db.pool, &id, now).await {
                Ok(true) => {
                    eprintln!("token {id} revoked");
                    ExitCode::SUCCESS
                }
                Ok(false) => {
                    eprintln!("error: no active token {id:?}");
                    ExitCode::from(1)
                }
                Err(e) => {
                    eprintln!("error: cannot revoke the token: {}", e.body.message);
                    ExitCode::from(2)
                }
            }
        }
        Command::Serve {
            listen,
            store,
            storage,
            allowed_image_repositories,
            allowed_pod_template_fields,
            allow_local_storage,
            allowed_storage_endpoints,
            engine_service_account_annotations,
            token_requests_per_minute,
            token_burst,
            failed_auth_per_minute,
            failed_auth_burst,
            reconcile_after,
        } => {
            let policy = match strom_control_plane::policy::Policy::new(
                allowed_image_repositories,
                allowed_pod_template_fields,
            ) {
                Ok(p) => strom_control_plane::policy::Policy {
                    allow_local_storage,
                    storage_endpoints: allowed_storage_endpoints,
                    engine_account_annotations: engine_service_account_annotations
                        .into_iter()
                        .collect(),
                    ..p
                },
                Err(e) => {
                    eprintln!("error: --allowed-pod-template-field: {e}");
                    return ExitCode::from(2);
                }
            };
            let db = match store.open().await {
                Ok(d) => d,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            let kube = match kube::Client::try_default().await {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: cannot reach the Kubernetes API: {e}");
                    return ExitCode::from(2);
                }
            };
            let state = AppState {
                db,
                kube,
                storage,
                policy,
                metrics: Default::default(),
                verified: Default::default(),
                limits: strom_control_plane::rate_limit::RateLimits::new(
                    strom_control_plane::rate_limit::Limits {
                        per_token: strom_control_plane::rate_limit::Rate::new(
                            token_requests_per_minute,
                            token_burst,
                        ),
                        failed_auth_per_address: strom_control_plane::rate_limit::Rate::new(
                            failed_auth_per_minute,
                            failed_auth_burst,
                        ),
                    },
                ),
                sync_locks: Default::default(),
            };
            // Changes a crash or a silent Kubernetes left half-done are finished, from now on.
            tokio::spawn(strom_control_plane::sync::run(
                state.clone(),
                reconcile_after,
                reconcile_after.min(std::time::Duration::from_secs(10)),
            ));
            let listener = match tokio::net::TcpListener::bind(listen).await {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("error: --listen {listen}: {e}");
                    return ExitCode::from(2);
                }
            };
            tracing::info!(%listen, "strom-control-plane serving");
            // Connection info: the rate limit of failed authentications is per client address.
            let app = strom_control_plane::router(state)
                .into_make_service_with_connect_info::<std::net::SocketAddr>();
            if let Err(e) = axum::serve(listener, app).await {
                eprintln!("error: {e}");
                return ExitCode::from(1);
            }
            ExitCode::SUCCESS
        }
    }
}
