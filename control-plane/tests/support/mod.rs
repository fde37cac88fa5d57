//! Shared by the control plane's tests: a real PostgreSQL server, a local cluster with the
//! FlinkJob CRD, the control plane serving on loopback, and an HTTP client.

#![allow(dead_code, reason = "each test binary uses a part")]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use strom_control_plane::{AppState, auth, db};
use strom_local_cluster::cluster::{Cluster, Config};

/// A PostgreSQL server of the machine's packages on a free loopback port, in a scratch
/// directory; stopped on drop.
pub struct Postgres {
    dir: PathBuf,
    bin: PathBuf,
    /// `postgres://…` of its `postgres` database.
    pub url: String,
}

fn postgres_bin() -> PathBuf {
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        return PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").is_file())
        .collect();
    found.sort();
    found.pop().expect(
        "PostgreSQL is not installed (initdb not found): scripts/install-tools.sh installs it",
    )
}

/// Runs `program` as the `postgres` user when we are root (PostgreSQL refuses root).
fn as_postgres(bin: &Path, program: &str) -> Command {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin.join(program));
        c
    } else {
        Command::new(bin.join(program))
    }
}

fn free_port() -> u16 {
    strom_testkit::free_port().unwrap()
}

impl Postgres {
    /// Initializes and starts a server.
    pub fn start(tag: &str) -> Postgres {
        let bin = postgres_bin();
        let dir = std::env::temp_dir().join(format!("strom-pg-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let _ = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(&dir)
            .status();
        let data = dir.join("data");
        let out = as_postgres(&bin, "initdb")
            .args(["-U", "strom", "--auth=trust", "-E", "UTF8", "-D"])
            .arg(&data)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = free_port();
        let out = as_postgres(&bin, "pg_ctl")
            .arg("-D")
            .arg(&data)
            .args(["-w", "-l"])
            .arg(dir.join("log"))
            .arg("-o")
            .arg(format!(
                "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
                dir.display()
            ))
            .arg("start")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl start: {}{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(dir.join("log")).unwrap_or_default()
        );
        Postgres {
            url: format!("postgres://strom@127.0.0.1:{port}/postgres"),
            dir,
            bin,
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = as_postgres(&self.bin, "pg_ctl")
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What a control-plane test runs on: a runtime, a scratch directory, a database (SQLite in
/// the directory, or a real PostgreSQL server) and a local cluster with the FlinkJob CRD.
/// Dropped, it stops the cluster and the server and removes the directory.
pub struct Bench {
    /// Drives the async parts.
    pub rt: tokio::runtime::Runtime,
    /// The scratch directory.
    pub dir: PathBuf,
    /// The database URL.
    pub url: String,
    /// The local cluster.
    pub cluster: Option<Cluster>,
    /// A kube client for it.
    pub client: kube::Client,
    pg: Option<Postgres>,
}

impl Bench {
    /// A bench for the test `name`, on PostgreSQL if `postgres`, else on SQLite.
    pub fn start(name: &str, postgres: bool) -> Bench {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let tag = if postgres { "pg" } else { "sqlite" };
        let dir =
            std::env::temp_dir().join(format!("strom-cp-{name}-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let pg = postgres.then(|| Postgres::start(&format!("{name}{tag}")));
        let url = match &pg {
            Some(p) => p.url.clone(),
            None => format!("sqlite://{}/strom.db", dir.display()),
        };
        let (cluster, client) = rt.block_on(cluster(&dir, Vec::new()));
        Bench {
            rt,
            dir,
            url,
            cluster: Some(cluster),
            client,
            pg,
        }
    }

    /// The cluster's kubeconfig.
    pub fn kubeconfig(&self) -> &Path {
        &self.cluster.as_ref().expect("the cluster runs").kubeconfig
    }
}

impl Drop for Bench {
    fn drop(&mut self) {
        drop(self.cluster.take());
        // Without waiting for the tasks still serving (the control plane, its clients).
        let idle = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        std::mem::replace(&mut self.rt, idle).shutdown_background();
        drop(self.pg.take());
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A local cluster with the FlinkJob CRD and a kube client for it.
pub async fn cluster(dir: &Path, images: Vec<(String, PathBuf)>) -> (Cluster, kube::Client) {
    let cluster = Cluster::start(Config {
        dir: dir.join("cluster"),
        listen: "127.0.0.1:0".parse().unwrap(),
        images,
    })
    .await
    .unwrap();
    let kubeconfig = kube::config::Kubeconfig::read_from(&cluster.kubeconfig).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    let client = kube::Client::try_from(config).unwrap();
    let crds: kube::Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        kube::Api::all(client.clone());
    crds.create(&Default::default(), &strom_crds::crd())
        .await
        .unwrap();
    let jobs: kube::Api<strom_crds::FlinkJob> = kube::Api::all(client.clone());
    let deadline = Instant::now() + Duration::from_secs(30);
    while jobs.list(&Default::default()).await.is_err() {
        assert!(Instant::now() < deadline, "the FlinkJob API did not appear");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (cluster, client)
}

/// The control plane serving on a free loopback port: (base URL, platform admin token,
/// state).
pub async fn serve(
    database_url: &str,
    kube: kube::Client,
    storage: &str,
) -> (String, String, AppState) {
    let state = AppState {
        db: db::Db::connect(database_url).await.unwrap(),
        kube,
        storage: storage.to_owned(),
        // The local cluster runs every pod as a process of this machine, as strom-local
        // does, so tenants may name file:// storage here.
        policy: strom_control_plane::policy::Policy {
            allow_local_storage: true,
            // One cloud identity per tenant, as a platform on EKS would bind them.
            engine_account_annotations: [(
                "eks.amazonaws.com/role-arn".to_owned(),
                "arn:aws:iam::123456789012:role/strom-{tenant}".to_owned(),
            )]
            .into(),
            ..Default::default()
        },
        metrics: Default::default(),
        verified: Default::default(),
        limits: Default::default(),
        sync_locks: Default::default(),
    };
    let (_, admin) = auth::create(&state.db, None, auth::Role::Admin, "tests", None)
        .await
        .unwrap();
    let base = serve_state(state.clone()).await;
    (base, admin, state)
}

/// Serves `state` on a free loopback port, as the binary does (with the client's address
/// for the rate limits); its base URL.
pub async fn serve_state(state: AppState) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = strom_control_plane::router(state)
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

/// An HTTP answer: status, ETag, whether it was replayed, `Retry-After`, JSON body (Null
/// if none).
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub etag: Option<String>,
    pub retry_after: Option<String>,
    pub replayed: bool,
    pub body: Value,
}

/// One HTTP call. `headers` are extra headers; `body` is sent as JSON (raw if a string
/// starting with `RAW:`).
pub fn call(
    method: &str,
    url: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> Answer {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let auth = token.map(|t| format!("Bearer {t}"));
    macro_rules! with_headers {
        ($req:expr) => {{
            let mut r = $req;
            if let Some(a) = &auth {
                r = r.header("authorization", a);
            }
            for (k, v) in headers {
                r = r.header(*k, *v);
            }
            r
        }};
    }
    let send = |text: String| -> Result<ureq::http::Response<ureq::Body>, ureq::Error> {
        match method {
            "POST" => with_headers!(agent.post(url))
                .header("content-type", "application/json")
                .send(text),
            "PUT" => with_headers!(agent.put(url))
                .header("content-type", "application/json")
                .send(text),
            "DELETE" => with_headers!(agent.delete(url))
                .force_send_body()
                .send(text),
            _ => with_headers!(agent.get(url)).call(),
        }
    };
    let text = match &body {
        Some(Value::String(s)) if s.starts_with("RAW:") => s[4..].to_owned(),
        Some(Value::Null) | None => String::new(),
        Some(v) => v.to_string(),
    };
    let mut response = send(text).unwrap();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (etag, replayed) = (header("etag"), header("idempotent-replayed").is_some());
    let retry_after = header("retry-after");
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap_or_default();
    Answer {
        status,
        etag,
        retry_after,
        replayed,
        body: serde_json::from_str(&text).unwrap_or(if text.is_empty() {
            Value::Null
        } else {
            Value::String(text)
        }),
    }
}

/// The API at `base`, called as a client would.
pub struct Api<'a> {
    /// The base URL.
    pub base: &'a str,
}

impl Api<'_> {
    /// `GET path` with `token`.
    pub fn get(&self, path: &str, token: &str) -> Answer {
        call(
            "GET",
            &format!("{}{path}", self.base),
            Some(token),
            &[],
            None,
        )
    }
    /// `method path` with `token`, `headers` and a JSON `body`.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        token: &str,
        headers: &[(&str, &str)],
        body: Value,
    ) -> Answer {
        call(
            method,
            &format!("{}{path}", self.base),
            Some(token),
            headers,
            Some(body),
        )
    }
}
