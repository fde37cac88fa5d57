//! The control plane's API over real HTTP, against SQLite and against a real PostgreSQL,
//! with a local cluster behind it: every route, tenant isolation, token roles, expiry and
//! revocation, optimistic concurrency, idempotent retries, pagination, quotas, bad bodies,
//! the audit log, and the FlinkJobs the calls produce. No operator runs here (the jobs are
//! only created, changed and deleted); `e2e_operator.rs` runs them.

#![allow(
    clippy::unwrap_used,
    reason = "a test should fail loudly at the first surprise"
)]

mod support;

use serde_json::{Value, json};
use strom_crds::FlinkJob;
use support::{Answer, Api, call};

fn spec(parallelism: i32) -> Value {
    json!({
        "image": "strom/engine:0.1.0",
        "parallelism": parallelism,
        "job": {
            "sources": [{"name": "clicks", "datagen": {"rate": 10, "columns": [{"name": "v", "expr": "id"}]}}],
            "sinks": [{"name": "out", "input": "clicks", "blackhole": {}}]
        }
    })
}

fn code(a: &Answer) -> &str {
    a.body["code"].as_str().unwrap_or_default()
}

fn job(
    rt: &tokio::runtime::Runtime,
    client: &kube::Client,
    ns: &str,
    name: &str,
) -> Option<FlinkJob> {
    rt.block_on(kube::Api::<FlinkJob>::namespaced(client.clone(), ns).get_opt(name))
        .unwrap()
}

fn exercise(rt: &tokio::runtime::Runtime, base: &str, admin: &str, client: &kube::Client) {
    let api = Api { base };
    let apps = "/v1/tenants/acme/applications";

    // Authentication: none, garbage, wrong secret.
    let a = call("GET", &format!("{base}/v1/tenants"), None, &[], None);
    assert_eq!((a.status, code(&a)), (401, "unauthenticated"));
    assert_eq!(api.get("/v1/tenants", "nonsense").status, 401);
    let forged = format!("{}x", &admin[..admin.len() - 1]);
    assert_eq!(api.get("/v1/tenants", &forged).status, 401);

    // Tenants: created by the platform admin, validated, unique, paginated.
    let t = api.send(
        "POST",
        "/v1/tenants",
        admin,
        &[],
        json!({"name": "acme", "maxParallelism": 4, "maxJobs": 2}),
    );
    assert_eq!(t.status, 201, "{:?}", t.body);
    assert_eq!(t.body["namespace"], "strom-acme");
    for (name, max) in [("globex", 8), ("initech", 8)] {
        let t = api.send(
            "POST",
            "/v1/tenants",
            admin,
            &[],
            json!({"name": name, "maxParallelism": max, "maxJobs": 1}),
        );
        assert_eq!(t.status, 201);
    }
    let a = api.send(
        "POST",
        "/v1/tenants",
        admin,
        &[],
        json!({"name": "acme", "maxParallelism": 4, "maxJobs": 2}),
    );
    assert_eq!((a.status, code(&a)), (409, "already_exists"));
    let a = api.send(
        "POST",
        "/v1/tenants",
        admin,
        &[],
        json!({"name": "Acme!", "maxParallelism": 4, "maxJobs": 2}),
    );
    assert_eq!(
        (a.status, a.body["errors"][0]["field"].as_str()),
        (422, Some("name"))
    );
    let a = api.send(
        "POST",
        "/v1/tenants",
        admin,
        &[],
        json!({"name": "x", "maxParallelism": 4, "maxJobs": "two"}),
    );
    assert_eq!(
        (a.status, a.body["errors"][0]["field"].as_str()),
        (422, Some("maxJobs")),
        "{:?}",
        a.body
    );
    let a = api.send(
        "POST",
        "/v1/tenants",
        admin,
        &[],
        json!({"name": "x", "maxParallelism": 0, "maxJobs": 1, "color": 1}),
    );
    assert_eq!(
        (a.status, a.body["errors"][0]["field"].as_str()),
        (422, Some("color")),
        "{:?}",
        a.body
    );
    let a = api.send("POST", "/v1/tenants", admin, &[], json!("RAW:{\"name\": "));
    assert_eq!((a.status, code(&a)), (400, "bad_json"));
    let page = api.get("/v1/tenants?limit=2", admin);
    assert_eq!(page.body["items"].as_array().unwrap().len(), 2);
    let cursor = page.body["nextCursor"].as_str().unwrap().to_owned();
    let page2 = api.get(&format!("/v1/tenants?limit=2&cursor={cursor}"), admin);
    let names: Vec<&str> = page2.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["initech"]);
    assert!(page2.body.get("nextCursor").is_none());
    assert_eq!(api.get("/v1/tenants?limit=0", admin).status, 422);

    // Tokens: shown once, scoped, roles, expiry, bad lifetimes.
    let token = |tenant: &str, by: &str, role: &str, expires: Option<&str>| -> String {
        let mut body = json!({"role": role, "description": format!("{role} of {tenant}")});
        if let Some(e) = expires {
            body["expiresIn"] = e.into();
        }
        let t = api.send(
            "POST",
            &format!("/v1/tenants/{tenant}/tokens"),
            by,
            &[],
            body,
        );
        assert_eq!(t.status, 201, "{:?}", t.body);
        t.body["token"].as_str().unwrap().to_owned()
    };
    let acme_admin = token("acme", admin, "admin", None);
    let editor = token("acme", &acme_admin, "editor", None);
    let viewer = token("acme", &acme_admin, "viewer", Some("720h"));
    let brief = token("acme", &acme_admin, "viewer", Some("1s"));
    let other = token("globex", admin, "editor", None);
    assert_eq!(
        api.send(
            "POST",
            "/v1/tenants/acme/tokens",
            &editor,
            &[],
            json!({"role": "viewer"})
        )
        .status,
        403
    );
    let a = api.send(
        "POST",
        "/v1/tenants/acme/tokens",
        &acme_admin,
        &[],
        json!({"role": "viewer", "expiresIn": "soon"}),
    );
    assert_eq!(
        (a.status, a.body["errors"][0]["field"].as_str()),
        (422, Some("expiresIn"))
    );
    let a = api.send(
        "POST",
        "/v1/tenants/acme/tokens",
        &acme_admin,
        &[],
        json!({"role": "owner"}),
    );
    assert_eq!(
        (a.status, a.body["errors"][0]["field"].as_str()),
        (422, Some("role"))
    );
    let listed = api.get("/v1/tenants/acme/tokens", &acme_admin);
    assert_eq!(listed.body.as_array().unwrap().len(), 4);
    assert!(
        !listed.body.to_string().contains(&editor[20..]),
        "a secret was listed"
    );
    assert_eq!(api.get("/v1/tenants/acme", &brief).status, 200);
    std::thread::sleep(std::time::Duration::from_millis(1200));
    let a = api.get("/v1/tenants/acme", &brief);
    assert_eq!(a.status, 401);
    assert!(a.body["message"].as_str().unwrap().contains("expired"));
    // Tenant tokens do not manage tenants.
    assert_eq!(
        api.send(
            "POST",
            "/v1/tenants",
            &acme_admin,
            &[],
            json!({"name": "evil", "maxParallelism": 1, "maxJobs": 1})
        )
        .status,
        403
    );

    // Applications: roles and isolation.
    let create = |name: &str, s: Value, by: &str| {
        api.send(
            "POST",
            apps,
            by,
            &[],
            json!({"name": name, "spec": s, "note": "first"}),
        )
    };
    assert_eq!(create("clicks", spec(1), &viewer).status, 403);
    assert_eq!(create("clicks", spec(1), &other).status, 404);
    let a = create("clicks", spec(1), &editor);
    assert_eq!(a.status, 201, "{:?}", a.body);
    assert_eq!(a.etag.as_deref(), Some("\"1\""));
    assert_eq!(a.body["application"]["version"], 1);
    assert_eq!(a.body["application"]["spec"]["upgradeMode"], "savepoint");
    assert_eq!(
        a.body["application"]["spec"]["savepoints"]["storage"],
        "file:///tmp/strom-cp-state"
    );
    assert_eq!(a.body["operation"]["kind"], "create");
    assert_eq!((create("clicks", spec(1), &editor).status), 409);
    assert_eq!(api.get(&format!("{apps}/clicks"), &other).status, 404);
    assert_eq!(api.get(apps, &other).status, 404);
    assert_eq!(api.get(&format!("{apps}/clicks"), &viewer).status, 200);

    // Bad specs: every wrong field named, with the CRD's rules.
    let mut bad = spec(0);
    bad["paralelism"] = 2.into();
    bad["checkpoints"] = json!({"storage": "ftp://x", "interval": "soon"});
    let a = create("bad", bad, &editor);
    assert_eq!(a.status, 422);
    let fields: Vec<&str> = a.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert!(fields.contains(&"spec.paralelism"), "{fields:?}");
    assert!(
        fields.iter().any(|f| f.starts_with("spec.checkpoints")),
        "{fields:?}"
    );
    let mut with_state = spec(1);
    with_state["state"] = "running".into();
    assert_eq!(
        create("bad", with_state, &editor).body["errors"][0]["field"],
        "spec.state"
    );
    let mut stateless = spec(1);
    stateless["upgradeMode"] = "stateless".into();
    assert_eq!(
        create("bad", stateless, &editor).body["errors"][0]["field"],
        "spec.upgradeMode"
    );
    assert_eq!(
        create("Bad_Name", spec(1), &editor).body["errors"][0]["field"],
        "name"
    );
    let mut unbounded = spec(1);
    unbounded["autoscaler"] = json!({"mode": "active"});
    let a = create("auto", unbounded, &editor);
    assert_eq!(
        (a.status, a.body["errors"][0]["field"].as_str()),
        (422, Some("spec.autoscaler.maxParallelism"))
    );
    // Quota: one application wider than the tenant.
    let a = create("huge", spec(5), &editor);
    assert_eq!((a.status, code(&a)), (403, "quota_exceeded"));

    // Versions: If-Match required, stale refused, idempotent retries.
    let app = format!("{apps}/clicks");
    let update = |version: Option<&str>, key: Option<&str>, p: i32| {
        let mut h = Vec::new();
        if let Some(v) = version {
            h.push(("if-match", v));
        }
        if let Some(k) = key {
            h.push(("idempotency-key", k));
        }
        api.send(
            "PUT",
            &app,
            &editor,
            &h,
            json!({"spec": spec(p), "note": format!("p={p}")}),
        )
    };
    assert_eq!((update(None, None, 2).status), 428);
    let a = update(Some("\"7\""), None, 2);
    assert_eq!((a.status, code(&a)), (409, "version_conflict"));
    assert!(a.body["message"].as_str().unwrap().contains("version 1"));
    let a = update(Some("\"1\""), None, 2);
    assert_eq!(
        (a.status, a.body["application"]["version"].as_i64()),
        (200, Some(2))
    );
    let first = update(Some("2"), Some("retry-1"), 1);
    assert_eq!((first.status, first.replayed), (200, false));
    let again = update(Some("2"), Some("retry-1"), 1);
    assert_eq!((again.status, again.replayed), (200, true));
    assert_eq!(again.body, first.body, "a retry gets the same answer");
    assert_eq!(
        api.get(&app, &viewer).body["version"],
        3,
        "and changes nothing"
    );
    let a = update(Some("2"), Some("retry-1"), 2);
    assert_eq!((a.status, code(&a)), (422, "idempotency_key_reused"));
    // Another tenant's key of the same name is its own.
    let g = api.send(
        "POST",
        "/v1/tenants/globex/applications",
        &other,
        &[("idempotency-key", "retry-1")],
        json!({"name": "g", "spec": spec(1)}),
    );
    assert_eq!((g.status, g.replayed), (201, false));
    let versions = api.get(&format!("{app}/versions"), &viewer);
    let numbers: Vec<i64> = versions.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, [3, 2, 1]);

    // Start: a FlinkJob in the tenant's namespace, running version 3.
    let start = |v: &str, body: Value| {
        api.send(
            "POST",
            &format!("{app}/start"),
            &editor,
            &[("if-match", v)],
            body,
        )
    };
    let a = start("3", json!({}));
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert_eq!(a.body["application"]["desired"], "running");
    assert_eq!(a.body["operation"]["outcome"], "accepted");
    let fj = job(rt, client, "strom-acme", "clicks").expect("a FlinkJob");
    assert_eq!(fj.spec.parallelism, 1);
    assert_eq!(fj.spec.state, strom_crds::spec::DesiredState::Running);
    assert_eq!(fj.metadata.labels.unwrap()["strom.dev/version"], "3");
    assert_eq!(code(&start("3", json!({}))), "already_running");

    // Scale and quotas while running: 3 fits (of 4), 5 does not; a second application
    // does not fit beside it.
    let scale = |v: &str, p: i32| {
        api.send(
            "POST",
            &format!("{app}/scale"),
            &editor,
            &[("if-match", v)],
            json!({"parallelism": p}),
        )
    };
    let a = scale("3", 3);
    assert_eq!(
        (a.status, a.body["application"]["version"].as_i64()),
        (200, Some(4)),
        "{:?}",
        a.body
    );
    assert_eq!(
        job(rt, client, "strom-acme", "clicks")
            .unwrap()
            .spec
            .parallelism,
        3
    );
    let a = scale("4", 5);
    assert_eq!((a.status, code(&a)), (403, "quota_exceeded"));
    let a = scale("4", 0);
    assert_eq!(
        (a.status, a.body["errors"][0]["field"].as_str()),
        (422, Some("parallelism"))
    );
    assert_eq!(create("second", spec(2), &editor).status, 201);
    let a = api.send(
        "POST",
        &format!("{apps}/second/start"),
        &editor,
        &[("if-match", "1")],
        json!({}),
    );
    assert_eq!((a.status, code(&a)), (403, "quota_exceeded"));
    assert!(
        a.body["message"].as_str().unwrap().contains("use up to 3"),
        "{:?}",
        a.body
    );

    // Rollback: a new version equal to the one before.
    let a = api.send(
        "POST",
        &format!("{app}/rollback"),
        &editor,
        &[("if-match", "4")],
        json!({}),
    );
    assert_eq!(
        (a.status, a.body["application"]["version"].as_i64()),
        (200, Some(5))
    );
    assert_eq!(a.body["application"]["spec"]["parallelism"], 1);
    assert_eq!(
        job(rt, client, "strom-acme", "clicks")
            .unwrap()
            .spec
            .parallelism,
        1
    );
    let a = api.send(
        "POST",
        &format!("{app}/rollback"),
        &editor,
        &[("if-match", "5")],
        json!({"version": 9}),
    );
    assert_eq!(
        (a.status, a.body["errors"][0]["field"].as_str()),
        (422, Some("version"))
    );

    // Snapshots: a savepoint request reaches the FlinkJob.
    let a = api.send(
        "POST",
        &format!("{app}/snapshots"),
        &editor,
        &[("if-match", "5")],
        json!({}),
    );
    assert_eq!(a.status, 202, "{:?}", a.body);
    assert!(
        job(rt, client, "strom-acme", "clicks")
            .unwrap()
            .spec
            .savepoints
            .unwrap()
            .trigger_nonce
            .is_some()
    );
    assert_eq!(api.get(&format!("{app}/snapshots"), &viewer).status, 200);

    // Stop at the latest checkpoint (no savepoint): the FlinkJob suspends with last-state.
    let a = api.send(
        "POST",
        &format!("{app}/stop"),
        &editor,
        &[("if-match", "5")],
        json!({"savepoint": "no"}),
    );
    assert_eq!(
        (a.status, a.body["errors"][0]["field"].as_str()),
        (422, Some("savepoint"))
    );
    let a = api.send(
        "POST",
        &format!("{app}/stop"),
        &editor,
        &[("if-match", "5")],
        json!({"savepoint": false}),
    );
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert_eq!(
        job(rt, client, "strom-acme", "clicks")
            .unwrap()
            .spec
            .upgrade_mode,
        strom_crds::spec::UpgradeMode::LastState
    );
    assert_eq!(
        job(rt, client, "strom-acme", "clicks").unwrap().spec.state,
        strom_crds::spec::DesiredState::Suspended
    );
    let status = api.get(&format!("{app}/status"), &viewer);
    assert_eq!(
        (status.status, status.body["desired"].as_str()),
        (200, Some("stopped"))
    );
    assert_eq!(api.get(&format!("{app}/events"), &viewer).status, 200);

    // A first start may restore a snapshot (e.g. another application's); a bad URL is named.
    let second = format!("{apps}/second/start");
    let a = api.send(
        "POST",
        &second,
        &editor,
        &[("if-match", "1")],
        json!({"restoreFrom": "ftp://elsewhere/sp-1"}),
    );
    assert_eq!(
        (a.status, a.body["errors"][0]["field"].as_str()),
        (422, Some("restoreFrom")),
        "{:?}",
        a.body
    );
    let a = api.send(
        "POST",
        &second,
        &editor,
        &[("if-match", "1")],
        json!({"restoreFrom": "file:///tmp/strom-cp-state/strom-acme/clicks/savepoints/sp-1"}),
    );
    assert_eq!(a.status, 200, "{:?}", a.body);
    let restore = job(rt, client, "strom-acme", "second")
        .unwrap()
        .spec
        .restore
        .unwrap();
    assert_eq!(
        restore.initial_savepoint.unwrap().0,
        "file:///tmp/strom-cp-state/strom-acme/clicks/savepoints/sp-1"
    );

    // Operations: newest first, paginated.
    let ops = api.get(&format!("{app}/operations?limit=3"), &viewer);
    let kinds: Vec<&str> = ops.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["stop", "snapshot", "rollback"]);
    let cursor = ops.body["nextCursor"].as_str().unwrap();
    let rest = api.get(
        &format!("{app}/operations?limit=50&cursor={cursor}"),
        &viewer,
    );
    let kinds: Vec<&str> = rest.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["scale", "start", "update", "update", "create"]);
    assert_eq!(
        api.get(&format!("{app}/operations?cursor=nonsense"), &viewer)
            .status,
        422
    );

    // The audit log: every mutating call of the tenant, refusals included; admins only.
    assert_eq!(api.get("/v1/tenants/acme/audit", &viewer).status, 403);
    let log = api.get("/v1/tenants/acme/audit?limit=200", &acme_admin);
    let entries = log.body["items"].as_array().unwrap();
    let statuses: Vec<i64> = entries
        .iter()
        .map(|e| e["status"].as_i64().unwrap())
        .collect();
    for s in [201, 200, 409, 428, 403, 422] {
        assert!(
            statuses.contains(&s),
            "no {s} in the audit log: {statuses:?}"
        );
    }
    assert!(
        entries
            .iter()
            .any(|e| e["outcome"].as_str().unwrap().contains("version_conflict"))
    );
    // Rows are the verified caller's: acme's own calls, and the attempts its tokens made on
    // other tenants (refused), never another tenant's calls on acme's paths.
    assert!(entries.iter().all(|e| {
        e["path"].as_str().unwrap().starts_with("/v1/tenants/acme")
            || [403, 404].contains(&e["status"].as_i64().unwrap())
    }));
    assert_eq!(api.get("/v1/tenants/globex/audit", &acme_admin).status, 404);

    // Revocation takes effect at once.
    let editor_id =
        &editor["strom_".len()..editor["strom_".len()..].find('_').unwrap() + "strom_".len()];
    assert_eq!(
        api.send(
            "DELETE",
            &format!("/v1/tenants/acme/tokens/{editor_id}"),
            &acme_admin,
            &[],
            Value::Null
        )
        .status,
        204
    );
    assert_eq!(api.get(&app, &editor).status, 401);
    assert_eq!(
        api.send(
            "DELETE",
            &format!("/v1/tenants/acme/tokens/{editor_id}"),
            &acme_admin,
            &[],
            Value::Null
        )
        .status,
        404
    );

    // Delete: the FlinkJob goes (no operator here to hold it with its finalizer).
    let a = api.send(
        "DELETE",
        &app,
        &acme_admin,
        &[("if-match", "4")],
        Value::Null,
    );
    assert_eq!(a.status, 409);
    let a = api.send(
        "DELETE",
        &app,
        &acme_admin,
        &[("if-match", "5")],
        Value::Null,
    );
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert!(job(rt, client, "strom-acme", "clicks").is_none());
    assert_eq!(api.get(&app, &acme_admin).status, 404);

    // The document served is the one committed.
    let doc = call("GET", &format!("{base}/openapi.json"), None, &[], None);
    let committed: Value = serde_json::from_str(include_str!("../openapi.json")).unwrap();
    assert!(
        doc.body == committed,
        "/openapi.json differs from control-plane/openapi.json"
    );
    assert_eq!(
        call("GET", &format!("{base}/v1/nothing"), Some(admin), &[], None).status,
        404
    );
}

fn run(postgres: bool) {
    let bench = support::Bench::start("api", postgres);
    let rt = &bench.rt;
    let (base, admin, _state) = rt.block_on(support::serve(
        &bench.url,
        bench.client.clone(),
        "file:///tmp/strom-cp-state",
    ));
    exercise(rt, &base, &admin, &bench.client);
}

#[test]
fn every_route_on_sqlite() {
    run(false);
}

#[test]
fn every_route_on_postgresql() {
    run(true);
}

#[test]
fn the_committed_openapi_document_matches_the_code() {
    let committed = include_str!("../openapi.json");
    assert!(
        committed.trim() == strom_control_plane::openapi_json().trim(),
        "control-plane/openapi.json is stale: run `cargo run -p strom-control-plane -- openapi > control-plane/openapi.json`"
    );
}
