//! The security suite (docs/security.md): what a tenant's editor token, tried as an attacker
//! would, cannot do — over real HTTP, on SQLite and on a real PostgreSQL, with a local
//! cluster (and its Pod Security admission) behind the control plane. Each scenario failed
//! before its fix.

#![allow(
    clippy::unwrap_used,
    reason = "a test should fail loudly at the first surprise"
)]

mod support;

use k8s_openapi::api::core::v1::{Namespace, Pod};
use serde_json::{Value, json};
use strom_control_plane::AppState;
use strom_control_plane::rate_limit::{Limits, Rate, RateLimits};
use support::{Answer, Api, call};

fn spec(extra: Value) -> Value {
    let mut spec = json!({
        "image": "strom/engine:0.1.0",
        "parallelism": 1,
        "job": {
            "sources": [{"name": "clicks", "datagen": {"rate": 10, "columns": [{"name": "v", "expr": "id"}]}}],
            "sinks": [{"name": "out", "input": "clicks", "blackhole": {}}]
        }
    });
    for (k, v) in extra.as_object().unwrap() {
        spec[k] = v.clone();
    }
    spec
}

/// The fields a 422 names.
fn fields(a: &Answer) -> Vec<String> {
    a.body["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e["field"].as_str().unwrap().to_owned())
        .collect()
}

fn scenarios(
    rt: &tokio::runtime::Runtime,
    base: &str,
    admin: &str,
    client: &kube::Client,
    state: &std::path::Path,
    app_state: &AppState,
    database_url: &str,
) {
    let db = &app_state.db.pool;
    let api = Api { base };
    let namespaces: kube::Api<Namespace> = kube::Api::all(client.clone());

    // 6. A tenant cannot land in a namespace that is not its own: `system` would be the
    // platform's `strom-system`. Refused before the tenant exists.
    rt.block_on(namespaces.create(
        &Default::default(),
        &serde_json::from_value(json!({"metadata": {"name": "strom-system"}})).unwrap(),
    ))
    .unwrap();
    let t = api.send(
        "POST",
        "/v1/tenants",
        admin,
        &[],
        json!({"name": "system", "maxParallelism": 4, "maxJobs": 2}),
    );
    assert_eq!(t.status, 409, "{:?}", t.body);
    assert_eq!(t.body["code"], "namespace_taken");
    assert_eq!(api.get("/v1/tenants/system", admin).status, 404);

    let t = api.send(
        "POST",
        "/v1/tenants",
        admin,
        &[],
        json!({"name": "acme", "maxParallelism": 4, "maxJobs": 4}),
    );
    assert_eq!(t.status, 201, "{:?}", t.body);
    // The tenant's namespace is its own and enforces the restricted Pod Security level.
    let ns = rt.block_on(namespaces.get("strom-acme")).unwrap();
    let labels = ns.metadata.labels.unwrap();
    assert_eq!(labels["strom.dev/tenant"], "acme");
    assert_eq!(labels["pod-security.kubernetes.io/enforce"], "restricted");
    let acme_admin = api.send(
        "POST",
        "/v1/tenants/acme/tokens",
        admin,
        &[],
        json!({"role": "admin"}),
    );
    assert_eq!(acme_admin.status, 201, "{:?}", acme_admin.body);
    let acme_admin = acme_admin.body["token"].as_str().unwrap().to_owned();
    let editor = api.send(
        "POST",
        "/v1/tenants/acme/tokens",
        &acme_admin,
        &[],
        json!({"role": "editor"}),
    );
    let editor = editor.body["token"].as_str().unwrap().to_owned();

    // 1. Engine pods are not whatever the tenant says: each way out of the pod is refused
    // with its path, and nothing is created.
    let apps = "/v1/tenants/acme/applications";
    let attempts = [
        (
            json!({"podTemplate": {"volumes": [{"name": "root", "hostPath": {"path": "/"}}],
                                    "volumeMounts": [{"name": "root", "mountPath": "/host"}]}}),
            "spec.podTemplate.volumes[0].hostPath",
        ),
        (json!({"image": "evil.example/miner:1"}), "spec.image"),
        (
            json!({"image": "strom/engine-but-not@sha256:00"}),
            "spec.image",
        ),
        (
            json!({"podTemplate": {"tolerations": [{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"}]}}),
            "spec.podTemplate.tolerations",
        ),
        (
            json!({"podTemplate": {"serviceAccountName": "strom-operator"}}),
            "spec.podTemplate.serviceAccountName",
        ),
        (
            json!({"podTemplate": {"nodeSelector": {"kubernetes.io/hostname": "control-plane-1"}}}),
            "spec.podTemplate.nodeSelector",
        ),
        (
            json!({"podTemplate": {"priorityClassName": "system-node-critical"}}),
            "spec.podTemplate.priorityClassName",
        ),
        (
            json!({"podTemplate": {"volumes": [{"name": "t", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}}]}}),
            "spec.podTemplate.volumes[0].projected.sources[0].serviceAccountToken",
        ),
    ];
    for (i, (extra, field)) in attempts.iter().enumerate() {
        let name = format!("escape{i}");
        let a = api.send(
            "POST",
            apps,
            &editor,
            &[],
            json!({"name": name, "spec": spec(extra.clone())}),
        );
        assert_eq!(a.status, 422, "{extra}: {:?}", a.body);
        assert!(
            fields(&a).iter().any(|f| f == field),
            "{extra}: expected {field}, got {:?}",
            a.body
        );
        assert_eq!(api.get(&format!("{apps}/{name}"), &editor).status, 404);
    }
    // What a job needs is still allowed: settings, secrets, scratch and config volumes.
    let ok = api.send("POST", apps, &editor, &[], json!({"name": "fine", "spec": spec(json!({"podTemplate": {
            "labels": {"team": "a"},
            "env": [{"name": "AWS_REGION", "value": "eu-west-1"}],
            "volumes": [{"name": "scratch", "emptyDir": {}}, {"name": "conf", "configMap": {"name": "c"}}],
            "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}]
        }}))}),
    );
    assert_eq!(ok.status, 201, "{:?}", ok.body);

    // 2. Storage URLs stay under their own prefix. Another tenant's savepoints, where the
    // operator's retention (keep one) would have deleted them through a URL whose `?` cut off
    // the job's own path.
    let theirs = state.join("strom-globex/app/savepoints");
    for n in 1..=3 {
        std::fs::create_dir_all(theirs.join(format!("sp-{n}"))).unwrap();
        std::fs::write(theirs.join(format!("sp-{n}/_metadata")), "{}").unwrap();
    }
    let escape = format!("file://{}?", theirs.display());
    for storage in [
        escape.clone(),
        format!("file://{}#", theirs.display()),
        format!(
            "file://{}/../../strom-globex/app/savepoints",
            state.join("strom-acme").display()
        ),
    ] {
        let a = api.send("POST", apps, &editor, &[], json!({"name": "thief", "spec": spec(json!({"savepoints": {"storage": storage, "history": {"maxCount": 1}}}))}),
        );
        assert_eq!(a.status, 422, "{storage}: {:?}", a.body);
        assert!(
            fields(&a).iter().any(|f| f == "spec.savepoints.storage"),
            "{storage}: {:?}",
            a.body
        );
    }
    // Nor through kubectl: the API server's schema refuses it too.
    let jobs: kube::Api<strom_crds::FlinkJob> = kube::Api::namespaced(client.clone(), "strom-acme");
    let mut thief = strom_crds::FlinkJob::new(
        "thief",
        serde_json::from_value(spec(json!({"savepoints": {"storage": escape}}))).unwrap(),
    );
    thief.metadata.namespace = Some("strom-acme".into());
    let e = rt
        .block_on(jobs.create(&Default::default(), &thief))
        .unwrap_err();
    assert!(
        matches!(&e, kube::Error::Api(ae) if ae.code == 422 && ae.message.contains("spec.savepoints.storage")),
        "{e:?}"
    );
    for n in 1..=3 {
        assert!(theirs.join(format!("sp-{n}/_metadata")).exists());
    }

    // 3. Snapshot deletion deletes only the application's own savepoint directories. An
    // engine runs the tenant's image and could answer any location; the operator records
    // only its target now, and the control plane recomputes the directory whatever the
    // status says. A status naming another place (as a forged answer once did):
    let victim = state.join("victim");
    std::fs::create_dir_all(&victim).unwrap();
    std::fs::write(victim.join("strom.db"), "the control plane's database").unwrap();
    let own = format!("file://{}/strom-acme/fine/savepoints/sp-2", state.display());
    let started = call(
        "POST",
        &format!("{base}{apps}/fine/start"),
        Some(&editor),
        &[("If-Match", "1")],
        Some(json!({})),
    );
    assert_eq!(started.status, 200, "{:?}", started.body);
    let at = |s: i64| jiff::Timestamp::from_second(s).unwrap().to_string();
    let status = json!({"status": {"savepoints": [
        {"id": "sp-1", "location": format!("file://{}", victim.display()), "trigger": "manual",
         "time": at(1), "state": "Completed"},
        {"id": "sp-2", "location": own, "trigger": "manual", "time": at(2), "state": "Completed"},
    ]}});
    rt.block_on(jobs.patch_status(
        "fine",
        &Default::default(),
        &kube::api::Patch::Merge(&status),
    ))
    .unwrap();
    let version = api.get(&format!("{apps}/fine"), &editor).body["version"].to_string();
    let a = call(
        "DELETE",
        &format!("{base}{apps}/fine/snapshots/sp-1"),
        Some(&editor),
        &[("If-Match", &version)],
        None,
    );
    assert_eq!(a.status, 409, "{:?}", a.body);
    assert_eq!(a.body["code"], "foreign_location");
    assert!(
        victim.join("strom.db").exists(),
        "the forged location was deleted"
    );

    // 13. Snapshot deletion spares what a start is about to restore: the savepoint an
    // upgrade under way has chosen. And a rollback whose savepoint was deleted says so
    // instead of starting a job that cannot restore.
    let own_dir = state.join("strom-acme/fine/savepoints/sp-2");
    std::fs::create_dir_all(&own_dir).unwrap();
    std::fs::write(own_dir.join("_metadata"), "{}").unwrap();
    let generation = rt
        .block_on(jobs.get("fine"))
        .unwrap()
        .metadata
        .generation
        .unwrap();
    let upgrading = json!({"status": {
        "savepoints": [
            {"id": "sp-1", "location": format!("file://{}", victim.display()), "trigger": "manual",
             "time": at(1), "state": "Completed"},
            {"id": "sp-2", "location": own, "trigger": "upgrade", "time": at(2),
             "state": "Completed", "generation": generation},
        ],
        "operation": {"kind": "Upgrade", "phase": "Starting", "restoreFrom": own,
            "target": {"generation": generation + 1, "hash": "h", "spec": "{}"},
            "started": at(3)},
    }});
    rt.block_on(jobs.patch_status(
        "fine",
        &Default::default(),
        &kube::api::Patch::Merge(&upgrading),
    ))
    .unwrap();
    let delete_sp2 = |version: &str| {
        call(
            "DELETE",
            &format!("{base}{apps}/fine/snapshots/sp-2"),
            Some(&editor),
            &[("If-Match", version)],
            None,
        )
    };
    let a = delete_sp2(&version);
    assert_eq!(
        (a.status, a.body["code"].as_str()),
        (409, Some("snapshot_in_use")),
        "{:?}",
        a.body
    );
    assert!(own_dir.join("_metadata").exists());
    // The upgrade done, the savepoint may go.
    rt.block_on(jobs.patch_status(
        "fine",
        &Default::default(),
        &kube::api::Patch::Merge(&json!({"status": {"operation": null}})),
    ))
    .unwrap();
    let a = delete_sp2(&version);
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert!(!own_dir.exists(), "sp-2 is still in storage");
    let updated = api.send(
        "PUT",
        &format!("{apps}/fine"),
        &editor,
        &[("If-Match", &version)],
        json!({"spec": spec(json!({"parallelism": 2})), "note": "wider"}),
    );
    assert_eq!(updated.status, 200, "{:?}", updated.body);
    let v2 = updated.body["application"]["version"].to_string();
    let a = api.send(
        "POST",
        &format!("{apps}/fine/rollback"),
        &editor,
        &[("If-Match", &v2)],
        json!({"version": version.parse::<i64>().unwrap()}),
    );
    assert_eq!(
        (a.status, a.body["code"].as_str()),
        (409, Some("savepoint_deleted")),
        "{:?}",
        a.body
    );

    // 5. State stays in the tenant's prefix of the platform's storage: no other bucket, no
    // other tenant's prefix, no restore of another tenant's savepoint.
    let globex_sp = format!(
        "file://{}/strom-globex/app/savepoints/sp-1",
        state.display()
    );
    for (extra, field) in [
        (
            json!({"savepoints": {"storage": format!("file://{}/strom-globex", state.display())}}),
            "spec.savepoints.storage",
        ),
        (
            json!({"checkpoints": {"storage": "file:///var/lib/elsewhere"}}),
            "spec.checkpoints.storage",
        ),
        (
            json!({"restore": {"initialSavepoint": globex_sp}}),
            "spec.restore.initialSavepoint",
        ),
        // 7. An endpoint of the tenant's choice would receive the platform's credentials.
        (
            json!({"objectStorage": {"endpoint": "https://collector.example"}}),
            "spec.objectStorage.endpoint",
        ),
    ] {
        let a = api.send(
            "POST",
            apps,
            &editor,
            &[],
            json!({"name": "reach", "spec": spec(extra.clone())}),
        );
        assert_eq!(a.status, 422, "{extra}: {:?}", a.body);
        assert_eq!(fields(&a), [field], "{extra}: {:?}", a.body);
    }
    let own_place = format!("file://{}/strom-acme/fast", state.display());
    let a = api.send(
        "POST",
        apps,
        &editor,
        &[],
        json!({"name": "inside", "spec": spec(json!({"savepoints": {"storage": own_place}}))}),
    );
    assert_eq!(a.status, 201, "{:?}", a.body);
    let a = api.send(
        "POST",
        &format!("{apps}/inside/start"),
        &editor,
        &[("If-Match", "1")],
        json!({"restoreFrom": globex_sp}),
    );
    assert_eq!(
        (a.status, fields(&a)),
        (422, vec!["restoreFrom".to_owned()]),
        "{:?}",
        a.body
    );
    // Engines run as the tenant's own account, which mounts no token.
    let fine = rt.block_on(jobs.get("fine")).unwrap();
    assert_eq!(
        fine.spec
            .pod_template
            .and_then(|t| t.service_account_name)
            .as_deref(),
        Some("strom-engine")
    );
    let accounts: kube::Api<k8s_openapi::api::core::v1::ServiceAccount> =
        kube::Api::namespaced(client.clone(), "strom-acme");
    let account = rt.block_on(accounts.get("strom-engine")).unwrap();
    assert_eq!(account.automount_service_account_token, Some(false));
    assert_eq!(
        account
            .metadata
            .annotations
            .unwrap_or_default()
            .get("eks.amazonaws.com/role-arn")
            .map(String::as_str),
        Some("arn:aws:iam::123456789012:role/strom-acme")
    );

    // 8. The audit log records who a verified token says, never what a path or a header
    // claims: a caller without a valid token writes no row anywhere (a metric counts it),
    // and another tenant's token writes only into its own tenant's log.
    let acme_admin_log = |limit: usize| {
        let log = api.get(
            &format!("/v1/tenants/acme/audit?limit={limit}"),
            &acme_admin,
        );
        assert_eq!(log.status, 200, "{:?}", log.body);
        log.body["items"].as_array().unwrap().len()
    };
    let before = acme_admin_log(200);
    let acme_admin_id = acme_admin.split('_').nth(1).unwrap().to_owned();
    for token in [
        "nonsense".to_owned(),
        format!("strom_{acme_admin_id}_not-the-secret"),
    ] {
        let a = api.send(
            "POST",
            apps,
            &token,
            &[],
            json!({"name": "x", "spec": spec(json!({}))}),
        );
        assert_eq!(a.status, 401, "{:?}", a.body);
    }
    let g = api.send(
        "POST",
        "/v1/tenants",
        admin,
        &[],
        json!({"name": "globex", "maxParallelism": 4, "maxJobs": 4}),
    );
    assert_eq!(g.status, 201, "{:?}", g.body);
    let globex_admin = api.send(
        "POST",
        "/v1/tenants/globex/tokens",
        admin,
        &[],
        json!({"role": "admin"}),
    );
    let globex_admin = globex_admin.body["token"].as_str().unwrap().to_owned();
    let a = api.send(
        "POST",
        apps,
        &globex_admin,
        &[],
        json!({"name": "x", "spec": spec(json!({}))}),
    );
    assert_eq!(a.status, 404, "{:?}", a.body);
    assert_eq!(
        acme_admin_log(200),
        before,
        "rows were written into acme's log"
    );
    let theirs = api.get("/v1/tenants/globex/audit?limit=200", &globex_admin);
    assert!(
        theirs.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["path"] == apps && e["status"] == 404),
        "{:?}",
        theirs.body
    );
    let metrics = call("GET", &format!("{base}/metrics"), None, &[], None);
    let text = metrics.body.as_str().unwrap_or_default().to_owned();
    assert!(
        text.contains("strom_control_plane_unauthenticated_requests_total{status=\"401\"} 2"),
        "{text}"
    );

    // 9. Idempotency keys belong to the token that sent them; answers carrying a secret are
    // never kept; a key whose request died with its server does not block retries forever.
    let viewer = api.send(
        "POST",
        "/v1/tenants/acme/tokens",
        &acme_admin,
        &[],
        json!({"role": "viewer"}),
    );
    let viewer = viewer.body["token"].as_str().unwrap().to_owned();
    let create = json!({"name": "keyed", "spec": spec(json!({}))});
    let first = api.send(
        "POST",
        apps,
        &editor,
        &[("Idempotency-Key", "k-1")],
        create.clone(),
    );
    assert_eq!(first.status, 201, "{:?}", first.body);
    let again = api.send(
        "POST",
        apps,
        &editor,
        &[("Idempotency-Key", "k-1")],
        create.clone(),
    );
    assert!(again.replayed && again.status == 201, "{again:?}");
    // The viewer sending the editor's key is not answered with the editor's result: its own
    // request runs, and its role refuses it.
    let stolen = api.send(
        "POST",
        apps,
        &viewer,
        &[("Idempotency-Key", "k-1")],
        create.clone(),
    );
    assert!(!stolen.replayed, "{stolen:?}");
    assert_eq!(stolen.status, 403, "{:?}", stolen.body);
    let minted = api.send(
        "POST",
        "/v1/tenants/acme/tokens",
        &acme_admin,
        &[("Idempotency-Key", "t-1")],
        json!({"role": "viewer"}),
    );
    assert_eq!(minted.status, 201);
    let secret = minted.body["token"].as_str().unwrap().to_owned();
    let replay = api.send(
        "POST",
        "/v1/tenants/acme/tokens",
        &acme_admin,
        &[("Idempotency-Key", "t-1")],
        json!({"role": "viewer"}),
    );
    assert_eq!((replay.status, replay.replayed), (409, true), "{replay:?}");
    assert_eq!(replay.body["code"], "answer_not_kept");
    assert!(!replay.body.to_string().contains(&secret));
    let stored: Vec<String> = rt
        .block_on(sqlx::query_scalar::<_, String>("SELECT body FROM idempotency").fetch_all(db))
        .unwrap();
    assert!(
        stored.iter().all(|b| !b.contains(&secret)),
        "a secret was stored"
    );
    // A reservation left by a server that stopped mid-request (ten minutes old, no answer).
    let editor_id = editor.split('_').nth(1).unwrap();
    let ten_minutes_ago = jiff::Timestamp::now().as_millisecond() - 600_000;
    assert!(
        rt.block_on(strom_control_plane::store::idempotency::reserve(
            db,
            &format!("acme/{editor_id}"),
            "k-stuck",
            "whatever it was",
            ten_minutes_ago,
        ))
        .unwrap()
    );
    let retried = api.send(
        "POST",
        apps,
        &editor,
        &[("Idempotency-Key", "k-stuck")],
        json!({"name": "unstuck", "spec": spec(json!({}))}),
    );
    assert_eq!(retried.status, 201, "{:?}", retried.body);

    // 10 (in part). Secrets are stored as SHA-256 digests (no Argon2 per request) and
    // compared in constant time; whoever lacks the secret learns nothing about the token,
    // not even that it expired.
    let brief = api.send(
        "POST",
        "/v1/tenants/acme/tokens",
        &acme_admin,
        &[],
        json!({"role": "viewer", "expiresIn": "1s"}),
    );
    let brief = brief.body["token"].as_str().unwrap().to_owned();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let (prefix, _) = brief.rsplit_once('_').unwrap();
    let guessed = api.get(
        "/v1/tenants/acme/applications",
        &format!("{prefix}_{}", "0".repeat(64)),
    );
    assert_eq!(guessed.status, 401);
    assert!(
        !guessed.body.to_string().contains("expired"),
        "{:?}",
        guessed.body
    );
    let expired = api.get("/v1/tenants/acme/applications", &brief);
    assert_eq!(expired.status, 401);
    assert!(
        expired.body.to_string().contains("expired"),
        "{:?}",
        expired.body
    );
    let hashes: Vec<String> = rt
        .block_on(sqlx::query_scalar::<_, String>("SELECT hash FROM tokens").fetch_all(db))
        .unwrap();
    assert!(
        hashes
            .iter()
            .all(|h| h.starts_with("sha256:") && h.len() == 7 + 64),
        "{hashes:?}"
    );

    // 10. Platform admin tokens expire (90 days unless asked, at most a year) and can be
    // revoked, over the API and from the command line; a tenant's admin cannot mint one.
    let minted = api.send(
        "POST",
        "/v1/tokens",
        admin,
        &[],
        json!({"description": "ops"}),
    );
    assert_eq!(minted.status, 201, "{:?}", minted.body);
    let expires = minted.body["expiresAt"].as_str().unwrap();
    let days = (expires.parse::<jiff::Timestamp>().unwrap().as_second()
        - jiff::Timestamp::now().as_second()) as f64
        / 86_400.0;
    assert!((89.9..=90.0).contains(&days), "{expires}: {days} days");
    let ops = minted.body["token"].as_str().unwrap().to_owned();
    let ops_id = minted.body["id"].as_str().unwrap().to_owned();
    let too_long = api.send(
        "POST",
        "/v1/tokens",
        admin,
        &[],
        json!({"expiresIn": "9000h"}),
    );
    assert_eq!(too_long.status, 422);
    assert_eq!(fields(&too_long), ["expiresIn"]);
    let by_tenant = api.send("POST", "/v1/tokens", &acme_admin, &[], json!({}));
    assert_eq!(by_tenant.status, 403, "{:?}", by_tenant.body);
    let listed = api.get("/v1/tokens", &ops);
    assert_eq!(listed.status, 200);
    assert!(
        listed
            .body
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["id"] == ops_id.as_str())
            && !listed
                .body
                .to_string()
                .contains(ops.rsplit('_').next().unwrap()),
        "{:?}",
        listed.body
    );
    assert_eq!(api.get("/v1/tokens", &acme_admin).status, 403);
    // The platform revokes the token it minted; the last working one it cannot.
    let admin_id = admin.split('_').nth(1).unwrap();
    let revoked = api.send(
        "DELETE",
        &format!("/v1/tokens/{ops_id}"),
        admin,
        &[],
        Value::Null,
    );
    assert_eq!(revoked.status, 204, "{:?}", revoked.body);
    assert_eq!(api.get("/v1/tenants", &ops).status, 401);
    let last = api.send(
        "DELETE",
        &format!("/v1/tokens/{admin_id}"),
        admin,
        &[],
        Value::Null,
    );
    assert_eq!(last.status, 409, "{:?}", last.body);
    assert_eq!(last.body["code"], "last_platform_token");
    assert_eq!(api.get("/v1/tenants", admin).status, 200);
    // From the command line: mint one that expires, use it, revoke it.
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_strom-control-plane"))
            .args(args)
            .args(["--database-url", database_url])
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8(out.stdout).unwrap().trim().to_owned(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    let (code, _, err) = cli(&["create-admin-token", "--expires-in", "9000h"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("--expires-in") && err.contains("a year"),
        "{err}"
    );
    let (code, brief_admin, err) = cli(&["create-admin-token", "--expires-in", "2s"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("expires 20"), "{err}");
    assert_eq!(api.get("/v1/tenants", &brief_admin).status, 200);
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let gone = api.get("/v1/tenants", &brief_admin);
    assert_eq!(gone.status, 401);
    assert!(gone.body.to_string().contains("expired"), "{:?}", gone.body);
    let (_, second, _) = cli(&["create-admin-token", "--description", "break-glass test"]);
    assert_eq!(api.get("/v1/tenants", &second).status, 200);
    let second_id = second.split('_').nth(1).unwrap();
    let (code, _, err) = cli(&["revoke-token", second_id]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(api.get("/v1/tenants", &second).status, 401);
    let (code, _, err) = cli(&["revoke-token", second_id]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("no active token"), "{err}");

    // 10. Rate limits: per verified token, and per client address on failed
    // authentication — once over, the address is refused before any token it sends is
    // looked at, the right one included. (A second server on the same database, with
    // limits small enough to reach.)
    let n = |v| std::num::NonZeroU32::new(v).unwrap();
    let tight = rt.block_on(support::serve_state(AppState {
        limits: RateLimits::new(Limits {
            per_token: Rate::new(n(1), n(3)),
            failed_auth_per_address: Rate::new(n(1), n(3)),
        }),
        metrics: Default::default(),
        ..app_state.clone()
    }));
    let limited = Api { base: &tight };
    for _ in 0..3 {
        assert_eq!(
            limited.get("/v1/tenants/acme/applications", &viewer).status,
            200
        );
    }
    let over = limited.get("/v1/tenants/acme/applications", &viewer);
    assert_eq!(over.status, 429, "{:?}", over.body);
    assert_eq!(over.body["code"], "rate_limited");
    let wait: u64 = over.retry_after.as_deref().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    // Another token has its own budget.
    assert_eq!(
        limited.get("/v1/tenants/acme/applications", &editor).status,
        200
    );
    let wrong = format!("{}_{}", editor.rsplit_once('_').unwrap().0, "f".repeat(64));
    for _ in 0..3 {
        assert_eq!(
            limited.get("/v1/tenants/acme/applications", &wrong).status,
            401
        );
    }
    let blocked = limited.get("/v1/tenants/acme/applications", &wrong);
    assert_eq!(blocked.status, 429, "{:?}", blocked.body);
    assert!(blocked.retry_after.is_some());
    let right = limited.get("/v1/tenants/acme/applications", &editor);
    assert_eq!(
        right.status, 429,
        "the blocked address is refused, right token or not"
    );
    let metrics = call("GET", &format!("{tight}/metrics"), None, &[], None);
    let text = metrics.body.as_str().unwrap();
    assert!(
        text.contains(r#"strom_control_plane_rate_limited_requests_total{limit="address"} 2"#)
            && text.contains(r#"strom_control_plane_rate_limited_requests_total{limit="token"} 1"#),
        "{text}"
    );

    // 12. Quotas count CPU and memory as well as subtasks (per-vertex parallelism
    // included), the tenant's namespace carries them as a ResourceQuota and a LimitRange,
    // concurrent starts cannot both pass on the same headroom, applications and versions
    // are limited, and versions come a page at a time.
    for (field, bad) in [("maxCpu", json!("lots")), ("maxMemory", json!("1"))] {
        let mut body = json!({"name": "q", "maxParallelism": 10, "maxJobs": 2});
        body[field] = bad;
        let refused = api.send("POST", "/v1/tenants", admin, &[], body);
        assert_eq!(refused.status, 422, "{:?}", refused.body);
        assert_eq!(fields(&refused), [field]);
    }
    let quota = api.send(
        "POST",
        "/v1/tenants",
        admin,
        &[],
        json!({"name": "quota", "maxParallelism": 100, "maxJobs": 10, "maxCpu": 3,
               "maxMemory": "8192Mi", "maxApplications": 3, "maxVersions": 3}),
    );
    assert_eq!(quota.status, 201, "{:?}", quota.body);
    assert_eq!(
        (&quota.body["maxCpu"], &quota.body["maxMemory"]),
        (&json!("3"), &json!("8Gi"))
    );
    let resource_quota = rt
        .block_on(
            kube::Api::<k8s_openapi::api::core::v1::ResourceQuota>::namespaced(
                client.clone(),
                "strom-quota",
            )
            .get("strom-tenant"),
        )
        .unwrap();
    let hard = serde_json::to_value(resource_quota.spec.unwrap().hard.unwrap()).unwrap();
    assert_eq!(
        hard,
        json!({"requests.cpu": "3", "limits.cpu": "3", "requests.memory": "8Gi",
               "limits.memory": "8Gi", "count/flinkjobs.strom.dev": "3"})
    );
    let limit_range = rt
        .block_on(
            kube::Api::<k8s_openapi::api::core::v1::LimitRange>::namespaced(
                client.clone(),
                "strom-quota",
            )
            .get("strom-tenant"),
        )
        .unwrap();
    let item = &limit_range.spec.unwrap().limits[0];
    assert_eq!(item.max.as_ref().unwrap()["cpu"].0, "3");
    assert!(item.default_request.is_some());
    let quota_editor = api.send(
        "POST",
        "/v1/tenants/quota/tokens",
        admin,
        &[],
        json!({"role": "editor"}),
    );
    let quota_editor = quota_editor.body["token"].as_str().unwrap().to_owned();
    let apps = "/v1/tenants/quota/applications";
    // Two engines of 2 CPU each (parallelism 2, one slot per worker, 1 CPU per worker).
    for name in ["a", "b", "c"] {
        let p = if name == "c" { 1 } else { 2 };
        let made = api.send(
            "POST",
            apps,
            &quota_editor,
            &[],
            json!({"name": name, "spec": spec(json!({"parallelism": p}))}),
        );
        assert_eq!(made.status, 201, "{:?}", made.body);
    }
    let fourth = api.send(
        "POST",
        apps,
        &quota_editor,
        &[],
        json!({"name": "d", "spec": spec(json!({}))}),
    );
    assert_eq!(fourth.status, 403, "{:?}", fourth.body);
    assert!(
        fourth.body["message"]
            .as_str()
            .unwrap()
            .contains("may have 3 applications"),
        "{:?}",
        fourth.body
    );
    // Both starts at once: one runs, the other is refused for CPU.
    let barrier = std::sync::Barrier::new(2);
    let starts: Vec<Answer> = std::thread::scope(|s| {
        let handles: Vec<_> = ["a", "b"]
            .iter()
            .map(|name| {
                let (api, barrier, token) = (&api, &barrier, &quota_editor);
                s.spawn(move || {
                    barrier.wait();
                    api.send(
                        "POST",
                        &format!("{apps}/{name}/start"),
                        token,
                        &[("If-Match", "\"1\"")],
                        Value::Null,
                    )
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut statuses: Vec<u16> = starts.iter().map(|a| a.status).collect();
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 403], "{starts:?}");
    let refused = starts.iter().find(|a| a.status == 403).unwrap();
    assert!(
        refused.body["message"]
            .as_str()
            .unwrap()
            .contains("may use 3 CPU"),
        "{:?}",
        refused.body
    );
    // Per-vertex parallelism counts: one vertex at 4 needs 4 workers' CPU.
    let wide = api.send(
        "PUT",
        &format!("{apps}/c"),
        &quota_editor,
        &[("If-Match", "\"1\"")],
        json!({"spec": spec(json!({"parallelism": 1, "vertexParallelism": {"source:clicks": 4}}))}),
    );
    assert_eq!(wide.status, 403, "{:?}", wide.body);
    assert!(
        wide.body["message"]
            .as_str()
            .unwrap()
            .contains("up to 4 CPU"),
        "{:?}",
        wide.body
    );
    let heavy = api.send(
        "PUT",
        &format!("{apps}/c"),
        &quota_editor,
        &[("If-Match", "\"1\"")],
        json!({"spec": spec(json!({"parallelism": 1, "resources": {"memory": "9Gi"}}))}),
    );
    assert_eq!(heavy.status, 403, "{:?}", heavy.body);
    assert!(
        heavy.body["message"]
            .as_str()
            .unwrap()
            .contains("9Gi memory"),
        "{:?}",
        heavy.body
    );
    // Versions: three kept at most, listed a page at a time.
    for version in 1..=2 {
        let updated = api.send(
            "PUT",
            &format!("{apps}/c"),
            &quota_editor,
            &[("If-Match", &format!("\"{version}\""))],
            json!({"spec": spec(json!({"parallelism": 1})), "note": format!("v{}", version + 1)}),
        );
        assert_eq!(updated.status, 200, "{:?}", updated.body);
    }
    let too_many = api.send(
        "PUT",
        &format!("{apps}/c"),
        &quota_editor,
        &[("If-Match", "\"3\"")],
        json!({"spec": spec(json!({"parallelism": 1}))}),
    );
    assert_eq!(too_many.status, 403, "{:?}", too_many.body);
    assert!(
        too_many.body["message"]
            .as_str()
            .unwrap()
            .contains("has 3 versions"),
        "{:?}",
        too_many.body
    );
    let first = api.get(&format!("{apps}/c/versions?limit=2"), &quota_editor);
    assert_eq!(first.status, 200, "{:?}", first.body);
    let numbers = |a: &Answer| -> Vec<i64> {
        a.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["version"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(numbers(&first), [3, 2]);
    let cursor = first.body["nextCursor"].as_str().unwrap();
    let rest = api.get(
        &format!("{apps}/c/versions?limit=2&cursor={cursor}"),
        &quota_editor,
    );
    assert_eq!(numbers(&rest), [1]);
    assert!(rest.body.get("nextCursor").is_none(), "{:?}", rest.body);

    // 8. A call whose audit row cannot be written fails (the database refuses the row: a
    // trigger on SQLite, a trigger function on PostgreSQL).
    let (refuse, allow): (&[&str], &[&str]) = if database_url.starts_with("postgres") {
        (
            &[
                "CREATE FUNCTION refuse_audit() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'audit refused'; END $$ LANGUAGE plpgsql",
                "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit FOR EACH ROW EXECUTE FUNCTION refuse_audit()",
            ],
            &[
                "DROP TRIGGER refuse_audit ON audit",
                "DROP FUNCTION refuse_audit()",
            ],
        )
    } else {
        (
            &[
                "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit BEGIN SELECT RAISE(ABORT, 'audit refused'); END",
            ],
            &["DROP TRIGGER refuse_audit"],
        )
    };
    for sql in refuse {
        rt.block_on(sqlx::query(sql).execute(db)).unwrap();
    }
    let running = starts.iter().find(|a| a.status == 200).unwrap();
    let running = running.body["application"]["name"].as_str().unwrap();
    let unrecorded = api.send(
        "POST",
        &format!("/v1/tenants/quota/applications/{running}/snapshots"),
        &quota_editor,
        &[("If-Match", "\"1\"")],
        Value::Null,
    );
    for sql in allow {
        rt.block_on(sqlx::query(sql).execute(db)).unwrap();
    }
    assert_eq!(unrecorded.status, 500, "{:?}", unrecorded.body);
    assert_eq!(unrecorded.body["code"], "audit_unavailable");
    assert!(
        unrecorded.body["message"]
            .as_str()
            .unwrap()
            .contains("check its outcome"),
        "{:?}",
        unrecorded.body
    );

    // The namespace refuses any pod that could reach the node, whoever creates it.
    let pods: kube::Api<Pod> = kube::Api::namespaced(client.clone(), "strom-acme");
    let loose: Pod = serde_json::from_value(json!({
        "metadata": {"name": "loose"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}],
                 "volumes": [{"name": "root", "hostPath": {"path": "/"}}]}
    }))
    .unwrap();
    let e = rt
        .block_on(pods.create(&Default::default(), &loose))
        .unwrap_err();
    let kube::Error::Api(e) = e else {
        panic!("{e}")
    };
    assert_eq!(e.code, 403, "{e:?}");
    assert!(
        e.message
            .contains("violates PodSecurity \"restricted:latest\"")
            && e.message.contains("hostPath volumes"),
        "{}",
        e.message
    );
}

fn run(postgres: bool) {
    let bench = support::Bench::start("sec", postgres);
    let rt = &bench.rt;
    let state = bench.dir.join("state");
    let (base, admin, app_state) = rt.block_on(support::serve(
        &bench.url,
        bench.client.clone(),
        &format!("file://{}", state.display()),
    ));
    scenarios(
        rt,
        &base,
        &admin,
        &bench.client,
        &state,
        &app_state,
        &bench.url,
    );
}

#[test]
fn tenants_cannot_reach_the_node_or_the_platform_on_sqlite() {
    run(false);
}

#[test]
fn tenants_cannot_reach_the_node_or_the_platform_on_postgresql() {
    run(true);
}
