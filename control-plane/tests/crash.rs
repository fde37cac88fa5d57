//! Kubernetes and the database agree after a crash (docs/security.md, scenario 11): the
//! control plane binary, serving against a local cluster, is stopped (aborted) right after
//! it applied a FlinkJob and before its database recorded that; restarted, its reconciler
//! brings the two together — on SQLite and on a real PostgreSQL. Before, the change was
//! applied inside the open transaction, so the same crash left a running FlinkJob beside a
//! database that said stopped.

#![allow(
    clippy::unwrap_used,
    reason = "a test should fail loudly at the first surprise"
)]

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use strom_control_plane::sync::ABORT_AFTER_APPLY;
use support::Api;

/// The binary serving on `port`; `abort`: it dies right after its first FlinkJob apply.
fn serve(
    database_url: &str,
    kubeconfig: &std::path::Path,
    storage: &str,
    port: u16,
    abort: bool,
) -> Child {
    let mut c = Command::new(env!("CARGO_BIN_EXE_strom-control-plane"));
    c.args(["serve", "--allow-local-storage", "--reconcile-after", "1s"])
        .arg(format!("--listen=127.0.0.1:{port}"))
        .arg(format!("--storage={storage}"))
        .arg(format!("--database-url={database_url}"))
        .env("KUBECONFIG", kubeconfig)
        .env("STROM_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if abort {
        c.env(ABORT_AFTER_APPLY, "1");
    } else {
        c.env_remove(ABORT_AFTER_APPLY);
    }
    let child = c.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "the control plane did not listen"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

fn run(postgres: bool) {
    let bench = support::Bench::start("crash", postgres);
    let (rt, url, client) = (&bench.rt, &bench.url, &bench.client);
    let storage = format!("file://{}", bench.dir.join("state").display());
    // The platform's token, straight from the command line.
    let out = Command::new(env!("CARGO_BIN_EXE_strom-control-plane"))
        .args(["create-admin-token", "--database-url", url])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let admin = String::from_utf8(out.stdout).unwrap().trim().to_owned();

    let port = strom_testkit::free_port().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let api = Api { base: &base };
    let mut first = serve(url, bench.kubeconfig(), &storage, port, true);
    let t = api.send(
        "POST",
        "/v1/tenants",
        &admin,
        &[],
        json!({"name": "acme", "maxParallelism": 8, "maxJobs": 2}),
    );
    assert_eq!(t.status, 201, "{:?}", t.body);
    let editor = api.send(
        "POST",
        "/v1/tenants/acme/tokens",
        &admin,
        &[],
        json!({"role": "editor"}),
    );
    let editor = editor.body["token"].as_str().unwrap().to_owned();
    let made = api.send(
        "POST",
        "/v1/tenants/acme/applications",
        &editor,
        &[],
        json!({"name": "clicks", "spec": {
            "image": "strom/engine:0.1.0",
            "parallelism": 1,
            "job": {
                "sources": [{"name": "s", "datagen": {"rate": 10, "columns": [{"name": "v", "expr": "id"}]}}],
                "sinks": [{"name": "o", "input": "s", "blackhole": {}}]
            }
        }}),
    );
    assert_eq!(made.status, 201, "{:?}", made.body);
    // The start: the FlinkJob is applied, then the process dies before recording it.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let answer = agent
        .post(&format!("{base}/v1/tenants/acme/applications/clicks/start"))
        .header("authorization", &format!("Bearer {editor}"))
        .header("if-match", "\"1\"")
        .header("content-type", "application/json")
        .send("");
    assert!(answer.is_err(), "the control plane answered: {answer:?}");
    let status = first.wait().unwrap();
    assert!(!status.success(), "{status:?}");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut first.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(stderr.contains("aborting after the apply"), "{stderr}");
    let jobs: kube::Api<strom_crds::FlinkJob> = kube::Api::namespaced(client.clone(), "strom-acme");
    let job = rt.block_on(jobs.get("clicks")).unwrap();
    assert_eq!(job.spec.state, strom_crds::spec::DesiredState::Running);

    // Restarted without the hook: the application says running and its FlinkJob runs its
    // version, with the generation recorded and no intent left.
    let mut second = serve(url, bench.kubeconfig(), &storage, port, false);
    let db = rt
        .block_on(strom_control_plane::db::Db::connect(url))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let app = api.get("/v1/tenants/acme/applications/clicks", &editor);
        let intents: i64 = rt
            .block_on(sqlx::query_scalar("SELECT COUNT(*) FROM intents").fetch_one(&db.pool))
            .unwrap();
        let generation: Option<i64> = rt
            .block_on(
                sqlx::query_scalar("SELECT generation FROM versions WHERE version = 1")
                    .fetch_one(&db.pool),
            )
            .unwrap();
        let job = rt.block_on(jobs.get("clicks")).unwrap();
        let agree = app.body["desired"] == "running"
            && job.spec.state == strom_crds::spec::DesiredState::Running
            && generation == job.metadata.generation
            && intents == 0;
        if agree {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "they do not agree: application {:?}, FlinkJob {:?} at generation {:?}, recorded {generation:?}, {intents} intents",
            app.body,
            job.spec.state,
            job.metadata.generation
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // And it goes on working: a stop is applied as usual.
    let stop = api.send(
        "POST",
        "/v1/tenants/acme/applications/clicks/stop",
        &editor,
        &[("If-Match", "\"1\"")],
        Value::Null,
    );
    assert_eq!(stop.status, 200, "{:?}", stop.body);
    let job = rt.block_on(jobs.get("clicks")).unwrap();
    assert_eq!(job.spec.state, strom_crds::spec::DesiredState::Suspended);

    let _ = second.kill();
    let _ = second.wait();
}

#[test]
fn a_crash_between_the_apply_and_the_record_is_finished_on_sqlite() {
    run(false);
}

#[test]
fn a_crash_between_the_apply_and_the_record_is_finished_on_postgresql() {
    run(true);
}
