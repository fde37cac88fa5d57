//! The operator on the local cluster, driven with the real kubectl: a FlinkJob is applied,
//! its engine pod runs, checkpoints appear in storage and in `kubectl get fj`; `kubectl
//! scale` rescales it through a savepoint, and the new pod restores exactly that savepoint.

#![allow(
    clippy::unwrap_used,
    reason = "a test should fail loudly at the first surprise"
)]

mod kafka;
mod kafka_autoscale;
mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use support::{apply, kubectl, kubectl_fails, kubectl_succeeds, setup, wait};

fn manifest(state: &Path, out: &Path, parallelism: u32) -> String {
    format!(
        r#"apiVersion: strom.dev/v1alpha1
kind: FlinkJob
metadata:
  name: clicks
  namespace: default
spec:
  image: strom/engine:0.1.0
  parallelism: {parallelism}
  upgradeMode: savepoint
  checkpoints:
    storage: file://{state}
    interval: 1s
  savepoints:
    storage: file://{state}
  job:
    sources:
      - name: clicks
        datagen: {{rate: 400, columns: [{{name: user, expr: "id % 7"}}]}}
    sinks:
      - {{name: out, input: clicks, file: {{path: "{out}", format: csv}}}}
"#,
        state = state.display(),
        out = out.display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flinkjob_runs_checkpoints_and_rescales_through_a_savepoint() {
    let (cluster, client, dir) = setup("run").await;
    let operator = tokio::spawn(strom_operator::controller::run(
        client,
        Some("default".into()),
    ));

    let (state, out) = (dir.join("state"), dir.join("out"));
    apply(&cluster, &manifest(&state, &out, 2));
    let field = |path: &str| {
        kubectl(
            &cluster,
            &["get", "fj", "clicks", "-o", &format!("jsonpath={{{path}}}")],
        )
    };
    wait(&cluster, "the job to run", 90, || {
        field(".status.lifecycleState") == "Running"
    })
    .await;
    let checkpoints = state.join("default/clicks/checkpoints");
    wait(
        &cluster,
        "a checkpoint in storage and in the status",
        60,
        || !field(".status.lastCheckpoint.location").is_empty(),
    )
    .await;
    let location = field(".status.lastCheckpoint.location");
    assert!(
        location.starts_with(&format!("file://{}", checkpoints.display())),
        "{location}"
    );
    let table = kubectl(&cluster, &["get", "fj"]);
    assert!(table.contains("Running"), "{table}");
    let owned = kubectl(
        &cluster,
        &[
            "get",
            "statefulset,svc,configmap",
            "-l",
            "strom.dev/job=clicks",
            "-o",
            "name",
        ],
    );
    assert!(owned.contains("statefulset.apps/clicks-engine"), "{owned}");
    assert!(owned.contains("service/clicks-rest"), "{owned}");
    assert!(owned.contains("configmap/clicks-job"), "{owned}");

    // Rescale: a savepoint, then the new pod restores exactly it.
    kubectl(&cluster, &["scale", "fj/clicks", "--replicas=3"]);
    wait(&cluster, "the rescale", 120, || {
        field(".status.parallelism") == "3" && field(".status.lifecycleState") == "Running"
    })
    .await;
    let savepoint = field(".status.lastSavepoint.location");
    assert!(
        savepoint.ends_with("/default/clicks/savepoints/sp-1"),
        "{savepoint}"
    );
    let sp_dir = savepoint.strip_prefix("file://").unwrap();
    assert!(Path::new(sp_dir).join("_metadata").is_file());
    let args = kubectl(
        &cluster,
        &[
            "get",
            "pod",
            "clicks-engine-0",
            "-o",
            "jsonpath={.spec.containers[0].args}",
        ],
    );
    assert!(args.contains("\"--parallelism\",\"3\""), "{args}");
    assert!(
        args.contains(&format!("\"--restore\",\"{savepoint}\"")),
        "{args}"
    );
    let events = kubectl(
        &cluster,
        &["get", "events", "-o", "jsonpath={.items[*].reason}"],
    );
    for reason in [
        "DeployStarted",
        "Deployed",
        "RescaleStarted",
        "SavepointCompleted",
        "Rescaled",
    ] {
        assert!(events.contains(reason), "no {reason} event in {events}");
    }
    operator.abort();
    drop(cluster);
    let _ = std::fs::remove_dir_all(&dir);
}

fn counting_job(state: &Path, out: &Path, filter: &str) -> String {
    counts(state, out, filter, 2, 800)
}

/// Keyed 1 s counts of a generated source (`ts = id * 10`: 100 ids per second of event
/// time, 25 per key, whatever the rate) at `parallelism`, generating `rate` ids a second.
fn counts(state: &Path, out: &Path, filter: &str, parallelism: u32, rate: u32) -> String {
    format!(
        r#"apiVersion: strom.dev/v1alpha1
kind: FlinkJob
metadata:
  name: counts
  namespace: default
spec:
  image: strom/engine:0.1.0
  parallelism: {parallelism}
  upgradeMode: savepoint
  checkpoints: {{storage: "file://{state}", interval: 500ms}}
  savepoints: {{storage: "file://{state}"}}
  job:
    sources:
      - name: events
        datagen:
          rate: {rate}
          columns:
            - {{name: k, expr: "MOD(id, 4)"}}
            - {{name: ts, expr: "id * 10"}}
        watermark: {{field: ts, max_out_of_orderness: 0s}}
    transforms:
      - {{name: kept, input: events, where: "{filter}"}}
      - name: per_key
        input: kept
        key_by: [k]
        window: {{tumble: 1s}}
        select: [window_start, k, "COUNT(*) AS cnt"]
    sinks:
      - {{name: out, input: per_key, file: {{path: "{out}", format: csv}}}}
"#,
        state = state.display(),
        out = out.display()
    )
}

/// Committed rows of the file sink: (window_start, k, cnt).
fn committed(out: &Path) -> Vec<(i64, i64, i64)> {
    let mut rows = Vec::new();
    for entry in std::fs::read_dir(out).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !name.starts_with("part-") {
            continue;
        }
        for line in std::fs::read_to_string(entry.path()).unwrap().lines() {
            let f: Vec<&str> = line.split(',').collect();
            if let [w, k, c] = f[..]
                && let (Ok(w), Ok(k), Ok(c)) = (w.parse(), k.parse(), c.parse())
            {
                rows.push((w, k, c));
            }
        }
    }
    rows.sort_unstable();
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_savepoint_upgrade_survives_operator_kills_and_counts_continue_exactly_once() {
    let (cluster, client, dir) = setup("upgrade").await;
    let start_operator = || {
        tokio::spawn(strom_operator::controller::run(
            client.clone(),
            Some("default".into()),
        ))
    };
    let field = |path: &str| {
        kubectl(
            &cluster,
            &["get", "fj", "counts", "-o", &format!("jsonpath={{{path}}}")],
        )
    };
    let (state, out) = (dir.join("state"), dir.join("out"));
    let mut operator = start_operator();
    apply(&cluster, &counting_job(&state, &out, "k >= 0"));
    wait(&cluster, "version 1 to run and commit windows", 90, || {
        field(".status.lifecycleState") == "Running" && committed(&out).len() >= 12
    })
    .await;

    // The changed filter, applied while the operator is killed again and again: at the
    // first sight of every phase of the upgrade, and every 300 ms besides.
    apply(&cluster, &counting_job(&state, &out, "k >= 1"));
    let mut seen_at_kill: Vec<String> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut last_kill = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let phase = field(".status.operation.phase");
        let new_phase = !phase.is_empty() && !seen_at_kill.contains(&phase);
        if !new_phase && last_kill.elapsed() < Duration::from_millis(300) {
            continue;
        }
        operator.abort();
        let _ = operator.await;
        last_kill = Instant::now();
        seen_at_kill.push(field(".status.operation.phase"));
        if field(".status.lifecycleState") == "Running"
            && field(".status.observedGeneration") == "2"
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the upgrade did not finish; phases at kills: {seen_at_kill:?}"
        );
        operator = start_operator();
    }
    eprintln!("operator killed with the upgrade at: {seen_at_kill:?}");
    for phase in ["Savepointing", "Stopping", "Starting"] {
        assert!(
            seen_at_kill.iter().any(|p| p == phase),
            "the operator was never killed while the upgrade was {phase}: {seen_at_kill:?}"
        );
    }
    operator = start_operator();
    let savepoint = field(".status.lastSavepoint.location");
    assert!(
        savepoint.ends_with("/default/counts/savepoints/sp-1"),
        "{savepoint}"
    );
    let before = committed(&out).iter().map(|r| r.0).max().unwrap();
    wait(&cluster, "version 2 to commit windows", 60, || {
        committed(&out).iter().map(|r| r.0).max().unwrap() >= before + 4000
    })
    .await;
    operator.abort();

    // Exactly once: every (window, key) once; every window complete (100 events per second
    // of event time, 25 per key) except key 0's last, cut short by the new filter; no key 0
    // after it; no window missing.
    let rows = committed(&out);
    let mut keys = std::collections::BTreeSet::new();
    for r in &rows {
        assert!(
            keys.insert((r.0, r.1)),
            "window {} key {} written twice",
            r.0,
            r.1
        );
    }
    let last = rows.iter().map(|r| r.0).max().unwrap();
    let last_zero = rows.iter().filter(|r| r.1 == 0).map(|r| r.0).max().unwrap();
    assert!(last_zero < last, "key 0 kept coming after the new filter");
    for w in (0..=last).step_by(1000) {
        for k in 0..4 {
            let row = rows.iter().find(|r| r.0 == w && r.1 == k);
            match (k, row) {
                (0, None) => assert!(w > last_zero, "window {w} key 0 missing"),
                (0, Some(r)) if w == last_zero => assert!(r.2 <= 25, "{r:?}"),
                (_, Some(r)) => assert_eq!(r.2, 25, "window {w} key {k}: {r:?}"),
                (_, None) => panic!("window {w} key {k} missing"),
            }
        }
    }
    drop(cluster);
    let _ = std::fs::remove_dir_all(&dir);
}

/// The defect a user met: a rescale up followed by a savepoint upgrade counted every id
/// twice from the upgrade on. Here: 1 → `kubectl scale` 2 → an upgrade that changes the
/// source's rate → `kubectl scale` 1 → another rate upgrade; every window of every key is
/// counted exactly once, and none is missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rescales_and_upgrades_in_turn_count_every_window_once() {
    let (cluster, client, dir) = setup("rescale-path").await;
    let operator = tokio::spawn(strom_operator::controller::run(
        client.clone(),
        Some("default".into()),
    ));
    let field = |path: &str| {
        kubectl(
            &cluster,
            &["get", "fj", "counts", "-o", &format!("jsonpath={{{path}}}")],
        )
    };
    let (state, out) = (dir.join("state"), dir.join("out"));
    let newest = || committed(&out).iter().map(|r| r.0).max().unwrap_or(-1);
    // Generation `g` has been acted on and runs at parallelism `p`.
    let settled = |g: &str, p: &str| {
        field(".status.lifecycleState") == "Running"
            && field(".status.observedGeneration") == g
            && field(".status.parallelism") == p
    };
    apply(&cluster, &counts(&state, &out, "k >= 0", 1, 400));
    wait(&cluster, "p=1 to run and commit windows", 90, || {
        settled("1", "1") && newest() >= 3000
    })
    .await;
    let steps: [(&str, &str, &str); 4] = [
        ("scale", "2", "2"),
        ("upgrade", "3", "2"),
        ("scale", "4", "1"),
        ("upgrade", "5", "1"),
    ];
    let mut rate = 400;
    for (how, generation, p) in steps {
        match how {
            "scale" => {
                kubectl(
                    &cluster,
                    &["scale", "fj/counts", &format!("--replicas={p}")],
                );
            }
            _ => {
                rate += 200;
                apply(
                    &cluster,
                    &counts(&state, &out, "k >= 0", p.parse().unwrap(), rate),
                );
            }
        }
        let before = newest();
        wait(
            &cluster,
            &format!("the {how} to generation {generation} at p={p}"),
            120,
            || settled(generation, p) && newest() >= before + 3000,
        )
        .await;
    }
    let savepoints = field(".status.savepoints[*].state");
    assert_eq!(
        savepoints
            .split_whitespace()
            .filter(|s| *s == "Completed")
            .count(),
        4,
        "a savepoint per change: {savepoints}"
    );
    operator.abort();

    let rows = committed(&out);
    let mut seen = std::collections::BTreeSet::new();
    for r in &rows {
        assert!(
            seen.insert((r.0, r.1)),
            "window {} key {} written twice",
            r.0,
            r.1
        );
        assert_eq!(
            r.2, 25,
            "window {} key {} counted {} ids, not 25",
            r.0, r.1, r.2
        );
    }
    let last = rows.iter().map(|r| r.0).max().unwrap();
    for w in (0..=last).step_by(1000) {
        for k in 0..4 {
            assert!(seen.contains(&(w, k)), "window {w} key {k} missing");
        }
    }
    drop(cluster);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipeline_the_engine_would_refuse_is_an_invalid_spec_and_starts_no_pod() {
    let (cluster, client, dir) = setup("badpipe").await;
    let operator = tokio::spawn(strom_operator::controller::run(
        client,
        Some("default".into()),
    ));
    // The CRD's schema accepts it (an input is a string, a condition is a string); the
    // pipeline is wrong: a misspelt input and a condition that is not SQL.
    let bad = manifest(&dir.join("state"), &dir.join("out"), 1).replace(
        "    sinks:\n",
        "    transforms:\n      - {name: odd, input: clikcs, where: \"user = = 1\"}\n    sinks:\n",
    );
    apply(&cluster, &bad);
    let condition = |what: &str| {
        kubectl(
            &cluster,
            &[
                "get",
                "fj",
                "clicks",
                "-o",
                &format!("jsonpath={{.status.conditions[?(@.type==\"Degraded\")].{what}}}"),
            ],
        )
    };
    wait(&cluster, "the job to be marked InvalidSpec", 60, || {
        condition("reason") == "InvalidSpec"
    })
    .await;
    let described = kubectl(&cluster, &["describe", "fj", "clicks"]);
    for path in [
        "spec.job.transforms[0].input",
        "spec.job.transforms[0].where",
    ] {
        assert!(described.contains(path), "{path} not shown:\n{described}");
    }
    assert!(described.contains("\"clikcs\""), "{described}");
    // A few reconciles later, still no engine: nothing was ever started.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let pods = kubectl(&cluster, &["get", "pods,statefulsets", "-o", "name"]);
    assert!(
        pods.trim().is_empty(),
        "engine objects were created: {pods}"
    );
    operator.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_edits_suspend_resume_failure_and_delete() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("strom_operator=debug")
        .with_test_writer()
        .try_init();
    let (cluster, client, dir) = setup("life").await;
    let operator = tokio::spawn(strom_operator::controller::run(
        client,
        Some("default".into()),
    ));
    let field = |name: &str, path: &str| {
        kubectl(
            &cluster,
            &["get", "fj", name, "-o", &format!("jsonpath={{{path}}}")],
        )
    };
    let (state, out) = (dir.join("state"), dir.join("out"));
    apply(&cluster, &manifest(&state, &out, 1));
    wait(&cluster, "the job to run", 90, || {
        field("clicks", ".status.lifecycleState") == "Running"
    })
    .await;

    // An invalid edit is refused, naming the field; the job runs on untouched.
    let refused = {
        let file = dir.join("bad.yaml");
        std::fs::write(&file, manifest(&state, &out, 0)).unwrap();
        kubectl_fails(&cluster, &["apply", "-f", file.to_str().unwrap()])
    };
    assert!(refused.contains("spec.parallelism"), "{refused}");
    assert_eq!(field("clicks", ".metadata.generation"), "1");
    assert_eq!(field("clicks", ".status.lifecycleState"), "Running");

    // Suspend: a savepoint, then no pods.
    kubectl(
        &cluster,
        &[
            "patch",
            "fj",
            "clicks",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"state":"suspended"}}"#,
        ],
    );
    wait(&cluster, "the suspension", 60, || {
        field("clicks", ".status.lifecycleState") == "Suspended"
    })
    .await;
    // The status has caught up with the spec, so `kubectl wait` and GitOps tools settle.
    assert_eq!(
        field("clicks", ".status.observedGeneration"),
        field("clicks", ".metadata.generation")
    );
    let savepoint = field("clicks", ".status.lastSavepoint.location");
    assert!(
        Path::new(savepoint.strip_prefix("file://").unwrap())
            .join("_metadata")
            .is_file(),
        "{savepoint}"
    );
    wait(&cluster, "the engine pod to go", 30, || {
        kubectl(
            &cluster,
            &["get", "pods", "-l", "strom.dev/job=clicks", "-o", "name"],
        )
        .trim()
        .is_empty()
    })
    .await;
    // Resume: from that savepoint.
    kubectl(
        &cluster,
        &[
            "patch",
            "fj",
            "clicks",
            "--type",
            "merge",
            "-p",
            r#"{"spec":{"state":"running"}}"#,
        ],
    );
    wait(&cluster, "the job to resume", 60, || {
        field("clicks", ".status.lifecycleState") == "Running"
    })
    .await;
    let args = kubectl(
        &cluster,
        &[
            "get",
            "pod",
            "clicks-engine-0",
            "-o",
            "jsonpath={.spec.containers[0].args}",
        ],
    );
    assert!(
        args.contains(&format!("\"--restore\",\"{savepoint}\"")),
        "{args}"
    );

    // On-demand savepoints, with retention keeping one besides the one restored from.
    let sp_root = Path::new(savepoint.strip_prefix("file://").unwrap())
        .parent()
        .unwrap()
        .to_path_buf();
    for nonce in [1, 2] {
        kubectl(
            &cluster,
            &[
                "patch",
                "fj",
                "clicks",
                "--type",
                "merge",
                "-p",
                &format!(
                    r#"{{"spec":{{"savepoints":{{"triggerNonce":{nonce},"history":{{"maxCount":1}}}}}}}}"#
                ),
            ],
        );
        let want = format!("sp-{}", nonce + 1);
        wait(&cluster, "the on-demand savepoint", 60, || {
            field("clicks", ".status.lastSavepoint.location").ends_with(&want)
                && field("clicks", ".status.operation.kind").is_empty()
        })
        .await;
    }
    wait(&cluster, "retention", 30, || !sp_root.join("sp-2").exists()).await;
    assert!(
        sp_root.join("sp-1/_metadata").is_file(),
        "the savepoint restored from is kept"
    );
    assert!(
        sp_root.join("sp-3/_metadata").is_file(),
        "the newest is kept"
    );
    let states = field("clicks", ".status.savepoints[*].state");
    assert_eq!(states, "Completed Disposed Completed");
    let triggers = field("clicks", ".status.savepoints[*].trigger");
    assert_eq!(triggers, "suspend manual manual");

    // A job that cannot run ends Failed, with the engine's reason where people look.
    let broken = format!(
        r#"apiVersion: strom.dev/v1alpha1
kind: FlinkJob
metadata: {{name: broken, namespace: default}}
spec:
  image: strom/engine:0.1.0
  job:
    sources:
      - {{name: s, file: {{path: "{}/missing.csv", format: csv}}, schema: [{{name: v, type: BIGINT}}]}}
    sinks: [{{name: o, input: s, stdout: {{}}}}]
"#,
        dir.display()
    );
    apply(&cluster, &broken);
    wait(&cluster, "the broken job to fail", 150, || {
        field("broken", ".status.lifecycleState") == "Failed"
    })
    .await;
    let describe = kubectl(&cluster, &["describe", "fj", "broken"]);
    assert!(describe.contains("missing.csv"), "{describe}");
    assert!(describe.contains("JobFailed"), "{describe}");

    // Delete: the job stops with a final savepoint (kept), the objects go with the job.
    kubectl(&cluster, &["delete", "fj", "clicks", "--wait=false"]);
    wait(&cluster, "the FlinkJob to go", 60, || {
        !kubectl_succeeds(&cluster, &["get", "fj", "clicks"])
    })
    .await;
    assert!(
        sp_root.join("sp-4/_metadata").is_file(),
        "no savepoint on deletion"
    );
    wait(&cluster, "the job's objects to go", 60, || {
        kubectl(
            &cluster,
            &[
                "get",
                "statefulset,svc,configmap,pods",
                "-l",
                "strom.dev/job=clicks",
                "-o",
                "name",
            ],
        )
        .trim()
        .is_empty()
    })
    .await;
    assert!(
        Path::new(savepoint.strip_prefix("file://").unwrap())
            .join("_metadata")
            .is_file()
    );
    operator.abort();
    drop(cluster);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_replica_takes_over_when_the_leader_dies() {
    use strom_operator::leader::{Election, Held, lead};
    let (cluster, client, dir) = setup("ha").await;
    let replica = |identity: &str| {
        let client = client.clone();
        let election = Election::new(
            kube::Api::namespaced(client.clone(), "default"),
            "strom-operator",
            identity,
            Duration::from_secs(3),
        );
        tokio::spawn(async move {
            lead(
                &election,
                strom_operator::controller::run(client, Some("default".into())),
            )
            .await
            .unwrap();
        })
    };
    let first = replica("replica-a");
    wait(&cluster, "replica-a to lead", 30, || {
        kubectl(
            &cluster,
            &[
                "get",
                "lease",
                "strom-operator",
                "-o",
                "jsonpath={.spec.holderIdentity}",
            ],
        ) == "replica-a"
    })
    .await;
    let second = replica("replica-b");
    let probe = Election::new(
        kube::Api::namespaced(client.clone(), "default"),
        "strom-operator",
        "probe",
        Duration::from_secs(3),
    );
    assert_eq!(
        probe.try_hold().await.unwrap(),
        Held::By("replica-a".into())
    );

    let field = |path: &str| {
        kubectl(
            &cluster,
            &["get", "fj", "clicks", "-o", &format!("jsonpath={{{path}}}")],
        )
    };
    let (state, out) = (dir.join("state"), dir.join("out"));
    apply(&cluster, &manifest(&state, &out, 1));
    wait(&cluster, "the job to run", 90, || {
        field(".status.lifecycleState") == "Running"
    })
    .await;

    // The leader dies; within seconds the standby holds the lease and runs the jobs.
    first.abort();
    let killed = Instant::now();
    wait(&cluster, "replica-b to take over", 30, || {
        kubectl(
            &cluster,
            &[
                "get",
                "lease",
                "strom-operator",
                "-o",
                "jsonpath={.spec.holderIdentity}",
            ],
        ) == "replica-b"
    })
    .await;
    eprintln!(
        "replica-b took over {:?} after the leader died",
        killed.elapsed()
    );
    kubectl(&cluster, &["scale", "fj/clicks", "--replicas=2"]);
    wait(&cluster, "the new leader to rescale the job", 60, || {
        field(".status.parallelism") == "2" && field(".status.lifecycleState") == "Running"
    })
    .await;
    second.abort();
    drop(cluster);
    let _ = std::fs::remove_dir_all(&dir);
}

fn surge_job(state: &Path, out: &Path) -> String {
    format!(
        r#"apiVersion: strom.dev/v1alpha1
kind: FlinkJob
metadata:
  name: surge
  namespace: default
spec:
  image: strom/engine:0.1.0
  parallelism: 1
  checkpoints: {{storage: "file://{state}", interval: 1s}}
  savepoints: {{storage: "file://{state}"}}
  autoscaler:
    mode: active
    targetUtilization: 0.9
    utilizationBand: 0.09
    metricsWindow: 30s
    stabilizationInterval: 15s
    scaleDownDelay: 40s
    catchUpDuration: 5m
    restartTime: 10s
    maxScaleDownFactor: 3
  job:
    sources:
      - name: orders
        datagen:
          rate_schedule:
            - {{rate: 70, for: 50s}}
            - {{rate: 210, for: 150s}}
            - {{rate: 70, for: 1h}}
          columns: [{{name: seq, expr: id}}]
    transforms:
      # Each subtask passes at most 100 rows/s: 70/s fits one, 210/s needs three.
      - {{name: work, input: orders, throttle: 100}}
    sinks:
      - {{name: out, input: work, file: {{path: "{out}", format: csv}}}}
"#,
        state = state.display(),
        out = out.display()
    )
}

/// Committed values of a one-column file sink.
fn committed_numbers(out: &Path) -> Vec<i64> {
    let mut rows = Vec::new();
    for entry in std::fs::read_dir(out).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !name.starts_with("part-") {
            continue;
        }
        for line in std::fs::read_to_string(entry.path()).unwrap().lines() {
            if let Ok(n) = line.trim().parse() {
                rows.push(n);
            }
        }
    }
    rows.sort_unstable();
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_autoscaler_follows_a_load_surge_up_and_down_exactly_once() {
    let (cluster, client, dir) = setup("autoscale").await;
    let operator = tokio::spawn(strom_operator::controller::run_with(
        client,
        Some("default".into()),
        std::sync::Arc::new(strom_operator::controller::Metrics::default()),
        strom_operator::controller::Settings {
            autoscaler_interval: Duration::from_secs(5),
            engine_ingress_namespaces: vec!["strom-system".into(), "monitoring".into()],
            ..Default::default()
        },
    ));
    let field = |path: &str| {
        kubectl(
            &cluster,
            &["get", "fj", "surge", "-o", &format!("jsonpath={{{path}}}")],
        )
    };
    let (state, out) = (dir.join("state"), dir.join("out"));
    apply(&cluster, &surge_job(&state, &out));
    // Only the platform's namespaces reach the engine, on its control port; the savepoints
    // the autoscaler takes go through the job's own token.
    wait(&cluster, "the engine's network policy", 60, || {
        kubectl_succeeds(&cluster, &["get", "networkpolicy", "surge-engine"])
    })
    .await;
    assert_eq!(
        kubectl(
            &cluster,
            &[
                "get",
                "networkpolicy",
                "surge-engine",
                "-o",
                "jsonpath={.spec.ingress[0].ports[0].port} {.spec.ingress[0].from[0].namespaceSelector.matchExpressions[0].values}"
            ]
        )
        .trim(),
        "8081 [\"strom-system\",\"monitoring\"]"
    );
    assert!(kubectl_succeeds(
        &cluster,
        &["get", "secret", "surge-control"]
    ));
    wait(&cluster, "the job to run", 60, || {
        field(".status.lifecycleState") == "Running"
    })
    .await;

    // The load triples after 50 s: one decision takes `work` from 1 to 3, the parallelism
    // at which 100 rows/s per subtask carry 210/s (at most 90% busy, backlog included).
    let mut outcomes = Vec::new();
    wait(&cluster, "the scale-up to 3", 300, || {
        let o = field(".status.autoscaler.outcome");
        if outcomes.last() != Some(&o) {
            outcomes.push(o);
        }
        field(".status.autoscaler.vertexParallelism.work") == "3"
            && field(".status.lifecycleState") == "Running"
            && field(".status.parallelism") == "3"
    })
    .await;
    eprintln!("autoscaler outcomes up to the scale-up: {outcomes:?}");
    let up = field(".status.autoscaler.lastScaling.summary");
    assert!(up.contains("work 1 → 3"), "{up}");
    let args = kubectl(
        &cluster,
        &[
            "get",
            "statefulset",
            "surge-engine",
            "-o",
            "jsonpath={.spec.template.spec.containers[0].args}",
        ],
    );
    assert!(args.contains("--vertex-parallelism"), "{args}");
    assert!(args.contains("work=3"), "{args}");
    assert!(
        field(".status.lastSavepoint.location").ends_with("/default/surge/savepoints/sp-1"),
        "the rescale went through a savepoint"
    );

    // Back at 70/s: after the scale-down delay it returns to one subtask.
    wait(&cluster, "the scale-down to 1", 360, || {
        field(".status.autoscaler.vertexParallelism.work") == "1"
            && field(".status.lifecycleState") == "Running"
            && field(".status.parallelism") == "1"
    })
    .await;
    let down = field(".status.autoscaler.lastScaling.summary");
    assert!(down.contains("work 3 → 1"), "{down}");
    let described = kubectl(&cluster, &["describe", "fj", "surge"]);
    eprintln!("{described}");
    // Each report under its own line, with its own message.
    let events = &described[described.find("Events:").unwrap()..];
    for expected in [
        "ScalingReport",
        "rescale work 1 → 3",
        "scale-down recommended",
        "rescale work 3 → 1",
        "savepoints/sp-2",
        "per vertex: source:orders=1, work=3",
    ] {
        assert!(events.contains(expected), "the events lack {expected:?}");
    }

    // Exactly once across both rescales: the committed numbers are 0, 1, 2, … with no gap
    // and no repeat, and they reach past the second rescale.
    let before = committed_numbers(&out).len();
    wait(&cluster, "output after the scale-down", 60, || {
        committed_numbers(&out).len() > before + 200
    })
    .await;
    operator.abort();
    let numbers = committed_numbers(&out);
    for (i, n) in numbers.iter().enumerate() {
        assert_eq!(*n, i as i64, "record {i} lost or duplicated (found {n})");
    }
    drop(cluster);
    let _ = std::fs::remove_dir_all(&dir);
}
