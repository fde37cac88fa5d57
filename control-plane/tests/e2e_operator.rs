//! The control plane with the operator and real engines on the local cluster: an
//! application created and started through the API runs; an update is a savepoint upgrade;
//! a rollback restores the savepoint that ended the earlier version; a stop leaves a
//! savepoint listed under the application's snapshots.

#![allow(
    clippy::unwrap_used,
    reason = "a test should fail loudly at the first surprise"
)]

mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use strom_testkit::engine_binary;
use support::call;

fn spec(out: &str, filter: &str) -> Value {
    json!({
        "image": "strom/engine:0.1.0",
        "parallelism": 1,
        "checkpoints": {"interval": "1s", "storage": "PLACEHOLDER"},
        "job": {
            "sources": [{"name": "events", "datagen": {"rate": 200, "columns": [
                {"name": "k", "expr": "MOD(id, 4)"}, {"name": "ts", "expr": "id * 10"}]},
                "watermark": {"field": "ts", "max_out_of_orderness": "0s"}}],
            "transforms": [
                {"name": "kept", "input": "events", "where": filter},
                {"name": "per_key", "input": "kept", "key_by": ["k"], "window": {"tumble": "1s"},
                 "select": ["window_start", "k", "COUNT(*) AS cnt"]}
            ],
            "sinks": [{"name": "out", "input": "per_key", "file": {"path": out, "format": "csv"}}]
        }
    })
}

#[test]
fn applications_run_upgrade_roll_back_and_stop_through_the_operator() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = std::env::temp_dir().join(format!("strom-cp-e2e-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (cluster, client) = rt.block_on(support::cluster(
        &dir,
        vec![("strom/engine:*".into(), engine_binary())],
    ));
    rt.spawn(strom_operator::controller::run(client.clone(), None));
    let storage = format!("file://{}/state", dir.display());
    let db = format!("sqlite://{}/strom.db", dir.display());
    let (base, admin, _) = rt.block_on(support::serve(&db, client.clone(), &storage));
    let url = |p: &str| format!("{base}{p}");

    let t = call(
        "POST",
        &url("/v1/tenants"),
        Some(&admin),
        &[],
        Some(json!({"name": "acme", "maxParallelism": 4, "maxJobs": 2})),
    );
    assert_eq!(t.status, 201);
    let tok = call(
        "POST",
        &url("/v1/tenants/acme/tokens"),
        Some(&admin),
        &[],
        Some(json!({"role": "editor"})),
    );
    let editor = tok.body["token"].as_str().unwrap().to_owned();
    let app = url("/v1/tenants/acme/applications/counts");
    let out = dir.join("out");
    let mut v1 = spec(out.to_str().unwrap(), "k >= 0");
    v1["checkpoints"]["storage"] = storage.clone().into();
    let a = call(
        "POST",
        &url("/v1/tenants/acme/applications"),
        Some(&editor),
        &[],
        Some(json!({"name": "counts", "spec": v1})),
    );
    assert_eq!(a.status, 201, "{:?}", a.body);

    let status = |path: &str| -> Value {
        let s = call("GET", &format!("{app}/status"), Some(&editor), &[], None);
        s.body["job"].pointer(path).cloned().unwrap_or(Value::Null)
    };
    let wait = |what: &str, secs: u64, done: &dyn Fn() -> bool| {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !done() {
            if Instant::now() > deadline {
                let s = call("GET", &format!("{app}/status"), Some(&editor), &[], None);
                let e = call("GET", &format!("{app}/events"), Some(&editor), &[], None);
                panic!(
                    "timed out waiting for {what}\nstatus: {:#}\nevents: {:#}",
                    s.body, e.body
                );
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    };
    let running_generation = |g: i64| {
        move || status("/lifecycleState") == "Running" && status("/observedGeneration") == g
    };

    // Start: the FlinkJob runs and its windows reach the sink.
    let a = call(
        "POST",
        &format!("{app}/start"),
        Some(&editor),
        &[("if-match", "1")],
        Some(json!({})),
    );
    assert_eq!(a.status, 200, "{:?}", a.body);
    wait("version 1 to run", 90, &running_generation(1));
    let s = call("GET", &format!("{app}/status"), Some(&editor), &[], None);
    assert!(
        s.body["engine"]["vertices"].is_array(),
        "engine metrics: {:?}",
        s.body["engine"]
    );

    // Update: version 2 by a savepoint upgrade; the savepoint ends generation 1.
    let mut v2 = spec(out.to_str().unwrap(), "k >= 1");
    v2["checkpoints"]["storage"] = storage.clone().into();
    let a = call(
        "PUT",
        &app,
        Some(&editor),
        &[("if-match", "1")],
        Some(json!({"spec": v2, "note": "drop key 0"})),
    );
    assert_eq!(
        (a.status, a.body["operation"]["outcome"].as_str()),
        (200, Some("accepted")),
        "{:?}",
        a.body
    );
    wait("version 2 to run", 120, &running_generation(2));
    let snaps = call("GET", &format!("{app}/snapshots"), Some(&editor), &[], None);
    let first = snaps.body.as_array().unwrap()[0].clone();
    assert_eq!(
        (first["trigger"].as_str(), first["state"].as_str()),
        (Some("Upgrade"), Some("Completed")),
        "{:#}",
        snaps.body
    );
    let end_of_v1 = first["location"].as_str().unwrap().to_owned();

    // Rollback: version 3 = version 1, restored from the savepoint that ended version 1.
    let a = call(
        "POST",
        &format!("{app}/rollback"),
        Some(&editor),
        &[("if-match", "2")],
        Some(json!({})),
    );
    assert_eq!(a.status, 200, "{:?}", a.body);
    assert!(
        a.body["operation"]["message"]
            .as_str()
            .unwrap()
            .contains(&end_of_v1),
        "{:?}",
        a.body
    );
    wait("version 3 to run", 120, &running_generation(3));
    let sets: kube::Api<k8s_openapi::api::apps::v1::StatefulSet> =
        kube::Api::namespaced(client.clone(), "strom-acme");
    let set = rt.block_on(sets.get("counts-engine")).unwrap();
    assert_eq!(
        set.metadata
            .annotations
            .unwrap()
            .get("strom.dev/restored-from")
            .map(String::as_str),
        Some(end_of_v1.as_str()),
        "the rollback restores the savepoint that ended version 1"
    );
    let events = call("GET", &format!("{app}/events"), Some(&editor), &[], None);
    assert!(
        events.body.to_string().contains("RedeployStarted"),
        "{:#}",
        events.body
    );

    // Stop: with a savepoint, listed under snapshots.
    let a = call(
        "POST",
        &format!("{app}/stop"),
        Some(&editor),
        &[("if-match", "3")],
        None,
    );
    assert_eq!(a.status, 200, "{:?}", a.body);
    wait("the job to stop", 90, &|| {
        status("/lifecycleState") == "Suspended"
    });
    let snaps = call("GET", &format!("{app}/snapshots"), Some(&editor), &[], None);
    let last = snaps.body.as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (last["trigger"].as_str(), last["state"].as_str()),
        (Some("Suspend"), Some("Completed")),
        "{:#}",
        snaps.body
    );
    // Snapshots can be deleted, except the one the stopped application resumes from.
    let newest = last["id"].as_str().unwrap();
    let a = call(
        "DELETE",
        &format!("{app}/snapshots/{newest}"),
        Some(&editor),
        &[("if-match", "3")],
        None,
    );
    assert_eq!(
        (a.status, a.body["code"].as_str()),
        (409, Some("snapshot_in_use")),
        "{:?}",
        a.body
    );
    let a = call(
        "DELETE",
        &format!("{app}/snapshots/sp-1"),
        Some(&editor),
        &[("if-match", "3")],
        None,
    );
    assert_eq!(a.status, 200, "{:?}", a.body);
    let sp1 = PathBuf::from(end_of_v1.trim_start_matches("file://"));
    assert!(
        !sp1.join("_metadata").exists(),
        "{} still holds a savepoint",
        sp1.display()
    );
    let snaps = call("GET", &format!("{app}/snapshots"), Some(&editor), &[], None);
    assert_eq!(snaps.body[0]["state"], "Disposed", "{:#}", snaps.body);
    let a = call(
        "DELETE",
        &format!("{app}/snapshots/sp-1"),
        Some(&editor),
        &[("if-match", "3")],
        None,
    );
    assert_eq!(a.status, 404);

    // Start again (from the suspend savepoint), stop without a savepoint, start again:
    // the job resumes its latest checkpoint, and no savepoint was added.
    let count = snaps.body.as_array().unwrap().len();
    let a = call(
        "POST",
        &format!("{app}/start"),
        Some(&editor),
        &[("if-match", "3")],
        None,
    );
    assert_eq!(a.status, 200, "{:?}", a.body);
    wait("the job to resume", 90, &|| {
        status("/lifecycleState") == "Running"
    });
    let a = call(
        "POST",
        &format!("{app}/stop"),
        Some(&editor),
        &[("if-match", "3")],
        Some(json!({"savepoint": false})),
    );
    assert_eq!(a.status, 200, "{:?}", a.body);
    wait("the job to stop at a checkpoint", 90, &|| {
        status("/lifecycleState") == "Suspended"
    });
    let a = call(
        "POST",
        &format!("{app}/start"),
        Some(&editor),
        &[("if-match", "3")],
        None,
    );
    assert_eq!(a.status, 200, "{:?}", a.body);
    wait("the job to resume from its checkpoint", 90, &|| {
        status("/lifecycleState") == "Running"
    });
    let set = rt.block_on(sets.get("counts-engine")).unwrap();
    let from = set.metadata.annotations.unwrap()["strom.dev/restored-from"].clone();
    assert!(from.contains("/checkpoints/chk-"), "resumed from {from}");
    let snaps = call("GET", &format!("{app}/snapshots"), Some(&editor), &[], None);
    assert_eq!(
        snaps.body.as_array().unwrap().len(),
        count,
        "{:#}",
        snaps.body
    );

    let ops = call(
        "GET",
        &format!("{app}/operations"),
        Some(&editor),
        &[],
        None,
    );
    let kinds: Vec<&str> = ops.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "start",
            "stop",
            "start",
            "dispose-snapshot",
            "stop",
            "rollback",
            "update",
            "start",
            "create"
        ]
    );

    drop(cluster);
    rt.shutdown_background();
    let _ = std::fs::remove_dir_all(&dir);
}
