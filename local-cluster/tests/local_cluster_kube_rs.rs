//! The local cluster serves kube-rs, the client Strom's operator is built on, as a real API
//! server does: watches with bookmarks, controllers, conflicts, finalizers, garbage
//! collection, server-side apply between managers, selectors, pagination, metadata-only
//! reads, and pods whose crashed processes restart by policy.

#![allow(
    clippy::unwrap_used,
    reason = "a test should fail loudly at the first surprise"
)]

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::runtime::{Controller, controller::Action, watcher};
use kube::{Client, Resource, ResourceExt};
use serde_json::json;
use strom_local_cluster::cluster::Cluster;
use support::*;

async fn client(cluster: &Cluster) -> Client {
    let kubeconfig = kube::config::Kubeconfig::read_from(&cluster.kubeconfig).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    Client::try_from(config).unwrap()
}

fn cm(name: &str, data: &[(&str, &str)]) -> ConfigMap {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name},
        "data": data.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>(),
    }))
    .unwrap()
}

fn api_status(err: kube::Error) -> kube::core::Status {
    match err {
        kube::Error::Api(s) => *s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_sees_added_modified_deleted_and_bookmarks() {
    let (cluster, _dir) = start_cluster().await;
    let client = client(&cluster).await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");

    // The runtime watcher, in both of its initial-list modes.
    for config in [
        watcher::Config::default(),
        watcher::Config::default().streaming_lists(),
    ] {
        let name = format!("w-{}", uuid::Uuid::new_v4().simple());
        let mut events =
            watcher(api.clone(), config.fields(&format!("metadata.name={name}"))).boxed();
        // The initial list completes before anything exists.
        loop {
            if let watcher::Event::InitDone = events.try_next().await.unwrap().unwrap() {
                break;
            }
        }
        api.create(&PostParams::default(), &cm(&name, &[("v", "1")]))
            .await
            .unwrap();
        match events.try_next().await.unwrap().unwrap() {
            watcher::Event::Apply(o) => assert_eq!(o.data.unwrap()["v"], "1"),
            other => panic!("expected the creation, got {other:?}"),
        }
        api.patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"v": "2"}})),
        )
        .await
        .unwrap();
        match events.try_next().await.unwrap().unwrap() {
            watcher::Event::Apply(o) => assert_eq!(o.data.unwrap()["v"], "2"),
            other => panic!("expected the modification, got {other:?}"),
        }
        api.delete(&name, &DeleteParams::default()).await.unwrap();
        match events.try_next().await.unwrap().unwrap() {
            watcher::Event::Delete(o) => assert_eq!(o.name_any(), name),
            other => panic!("expected the deletion, got {other:?}"),
        }
    }

    // The raw watch: typed events in order from a version, and a bookmark while idle.
    let start = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    api.create(&PostParams::default(), &cm("raw", &[]))
        .await
        .unwrap();
    api.delete("raw", &DeleteParams::default()).await.unwrap();
    let params = WatchParams::default().timeout(10);
    let mut stream = api.watch(&params, &start).await.unwrap().boxed();
    let mut seen = Vec::new();
    while let Some(event) = stream.try_next().await.unwrap() {
        match event {
            WatchEvent::Added(o) => seen.push(format!("ADDED {}", o.name_any())),
            WatchEvent::Deleted(o) => seen.push(format!("DELETED {}", o.name_any())),
            WatchEvent::Bookmark(b) => {
                seen.push("BOOKMARK".into());
                assert!(
                    b.metadata.resource_version.parse::<u64>().unwrap()
                        >= start.parse::<u64>().unwrap()
                );
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(seen, ["ADDED raw", "DELETED raw", "BOOKMARK"]);
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kube_runtime_controller_reconciles_objects() {
    let (cluster, _dir) = start_cluster().await;
    let client = client(&cluster).await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");

    async fn reconcile(
        obj: Arc<ConfigMap>,
        api: Arc<Api<ConfigMap>>,
    ) -> Result<Action, kube::Error> {
        if obj.annotations().get("reconciled").is_none() {
            let keys = obj.data.as_ref().map_or(0, |d| d.len());
            let patch = json!({"metadata": {"annotations": {"reconciled": keys.to_string()}}});
            api.patch(
                &obj.name_any(),
                &PatchParams::default(),
                &Patch::Merge(patch),
            )
            .await?;
        }
        Ok(Action::await_change())
    }
    fn error_policy(_: Arc<ConfigMap>, _: &kube::Error, _: Arc<Api<ConfigMap>>) -> Action {
        Action::requeue(Duration::from_millis(200))
    }
    let controller = Controller::new(api.clone(), watcher::Config::default())
        .run(reconcile, error_policy, Arc::new(api.clone()))
        .for_each(|_| async {});
    let running = tokio::spawn(controller);

    api.create(
        &PostParams::default(),
        &cm("one", &[("a", "1"), ("b", "2")]),
    )
    .await
    .unwrap();
    let reconciled = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let o = api.get("one").await.unwrap();
            if let Some(v) = o.annotations().get("reconciled") {
                return v.clone();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the controller reconciled the object");
    assert_eq!(reconciled, "2");
    running.abort();
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_writes_conflict_and_finalizers_hold_deletion() {
    let (cluster, _dir) = start_cluster().await;
    let client = client(&cluster).await;
    let api: Api<ConfigMap> = Api::namespaced(client, "default");

    // Optimistic concurrency.
    let first = api
        .create(&PostParams::default(), &cm("c", &[("v", "1")]))
        .await
        .unwrap();
    let mut newer = first.clone();
    newer.data = Some(BTreeMap::from([("v".into(), "2".into())]));
    let newer = api
        .replace("c", &PostParams::default(), &newer)
        .await
        .unwrap();
    assert_ne!(newer.resource_version(), first.resource_version());
    let mut stale = first.clone();
    stale.data = Some(BTreeMap::from([("v".into(), "3".into())]));
    let status = api_status(
        api.replace("c", &PostParams::default(), &stale)
            .await
            .unwrap_err(),
    );
    assert_eq!(status.code, 409);
    assert_eq!(status.reason, "Conflict");
    assert!(
        status.message.contains("the object has been modified"),
        "{}",
        status.message
    );
    let status = api_status(
        api.create(&PostParams::default(), &cm("c", &[]))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (status.code, status.reason.as_str()),
        (409, "AlreadyExists")
    );
    // A write that changes nothing keeps the version.
    let same = api
        .replace("c", &PostParams::default(), &newer)
        .await
        .unwrap();
    assert_eq!(same.resource_version(), newer.resource_version());

    // Finalizers: deletion waits until the last one is removed (with a guarded JSON patch, as
    // kube's finalizer helper does).
    let mut held = cm("held", &[]);
    held.metadata.finalizers = Some(vec!["strom.dev/test".into()]);
    api.create(&PostParams::default(), &held).await.unwrap();
    api.delete("held", &DeleteParams::default()).await.unwrap();
    let marked = api.get("held").await.unwrap();
    assert!(marked.metadata.deletion_timestamp.is_some());
    let wrong_guard = json!([
        {"op": "test", "path": "/metadata/finalizers/0", "value": "someone-else"},
        {"op": "remove", "path": "/metadata/finalizers/0"}
    ]);
    let patch: json_patch::Patch = serde_json::from_value(wrong_guard).unwrap();
    assert!(
        api.patch("held", &PatchParams::default(), &Patch::<()>::Json(patch))
            .await
            .is_err()
    );
    assert!(api.get_opt("held").await.unwrap().is_some());
    let guard = json!([
        {"op": "test", "path": "/metadata/finalizers/0", "value": "strom.dev/test"},
        {"op": "remove", "path": "/metadata/finalizers/0"}
    ]);
    let patch: json_patch::Patch = serde_json::from_value(guard).unwrap();
    api.patch("held", &PatchParams::default(), &Patch::<()>::Json(patch))
        .await
        .unwrap();
    assert!(api.get_opt("held").await.unwrap().is_none());
    cluster.stop().await;
}

fn sleeper_deployment(name: &str, replicas: i32) -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"terminationGracePeriodSeconds": 2, "containers": [{"name": "main", "image": "strom/shell:1", "command": ["sleep", "3600"]}]}
            }
        }
    }))
    .unwrap()
}

async fn running_pods(pods: &Api<Pod>, app: &str, n: usize) -> Vec<Pod> {
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let list = pods
                .list(&ListParams::default().labels(&format!("app={app}")))
                .await
                .unwrap();
            let running: Vec<Pod> = list
                .items
                .into_iter()
                .filter(|p| {
                    p.metadata.deletion_timestamp.is_none()
                        && p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
                })
                .collect();
            if running.len() == n {
                return running;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{n} running pods of {app}"))
}

async fn pods_gone(pods: &Api<Pod>, app: &str) {
    tokio::time::timeout(Duration::from_secs(30), async {
        while !pods
            .list(&ListParams::default().labels(&format!("app={app}")))
            .await
            .unwrap()
            .items
            .is_empty()
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("pods of {app} were not collected"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_an_owner_garbage_collects_or_orphans_its_pods() {
    let (cluster, _dir) = start_cluster().await;
    let client = client(&cluster).await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let sets: Api<k8s_openapi::api::apps::v1::ReplicaSet> =
        Api::namespaced(client.clone(), "default");

    // Background (the default): the ReplicaSet and pods follow the Deployment.
    deployments
        .create(&PostParams::default(), &sleeper_deployment("bg", 2))
        .await
        .unwrap();
    let running = running_pods(&pods, "bg", 2).await;
    let owner = &running[0].metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(owner.kind, "ReplicaSet");
    assert_eq!(owner.controller, Some(true));
    deployments
        .delete("bg", &DeleteParams::background())
        .await
        .unwrap();
    pods_gone(&pods, "bg").await;

    // Foreground: the owner stays, marked, until its dependents are gone.
    deployments
        .create(&PostParams::default(), &sleeper_deployment("fg", 1))
        .await
        .unwrap();
    running_pods(&pods, "fg", 1).await;
    deployments
        .delete("fg", &DeleteParams::foreground())
        .await
        .unwrap();
    pods_gone(&pods, "fg").await;
    tokio::time::timeout(Duration::from_secs(30), async {
        while deployments.get_opt("fg").await.unwrap().is_some() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the foreground-deleted owner goes once its dependents are gone");

    // Orphan: the pods stay, without the owner reference.
    deployments
        .create(&PostParams::default(), &sleeper_deployment("orphans", 2))
        .await
        .unwrap();
    running_pods(&pods, "orphans", 2).await;
    deployments
        .delete("orphans", &DeleteParams::orphan())
        .await
        .unwrap();
    let rs = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if deployments.get_opt("orphans").await.unwrap().is_none() {
                let list = sets
                    .list(&ListParams::default().labels("app=orphans"))
                    .await
                    .unwrap();
                if let Some(rs) = list.items.into_iter().next()
                    && rs
                        .metadata
                        .owner_references
                        .as_ref()
                        .is_none_or(|r| r.is_empty())
                {
                    return rs;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the orphaned ReplicaSet keeps running without its owner");
    assert_eq!(running_pods(&pods, "orphans", 2).await.len(), 2);
    sets.delete(&rs.name_any(), &DeleteParams::background())
        .await
        .unwrap();
    pods_gone(&pods, "orphans").await;
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_apply_merges_two_managers_and_reports_conflicts() {
    let (cluster, _dir) = start_cluster().await;
    let client = client(&cluster).await;
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    let apply = |manager: &str, force: bool| {
        let mut p = PatchParams::apply(manager);
        p.force = force;
        p
    };
    let config = |data: serde_json::Value| {
        Patch::Apply(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "shared"}, "data": data}),
        )
    };

    // Apply creates.
    api.patch(
        "shared",
        &apply("alice", false),
        &config(json!({"a": "1", "common": "x"})),
    )
    .await
    .unwrap();
    api.patch("shared", &apply("bob", false), &config(json!({"b": "2"})))
        .await
        .unwrap();
    let both = api.get("shared").await.unwrap();
    let data = both.data.clone().unwrap();
    assert_eq!(
        (
            data["a"].as_str(),
            data["b"].as_str(),
            data["common"].as_str()
        ),
        ("1", "2", "x")
    );
    let managers: Vec<String> = both
        .metadata
        .managed_fields
        .unwrap()
        .iter()
        .map(|m| m.manager.clone().unwrap())
        .collect();
    assert!(
        managers.contains(&"alice".into()) && managers.contains(&"bob".into()),
        "{managers:?}"
    );

    // Bob may not change alice's field without force; the error names the field and owner.
    let status = api_status(
        api.patch(
            "shared",
            &apply("bob", false),
            &config(json!({"b": "2", "common": "y"})),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(status.code, 409);
    assert!(
        status.message.contains("conflict with \"alice\"")
            && status.message.contains(".data.common"),
        "{}",
        status.message
    );
    // Agreeing on the same value is no conflict.
    api.patch(
        "shared",
        &apply("bob", false),
        &config(json!({"b": "2", "common": "x"})),
    )
    .await
    .unwrap();
    // With force, bob takes it over.
    api.patch(
        "shared",
        &apply("bob", true),
        &config(json!({"b": "2", "common": "y"})),
    )
    .await
    .unwrap();
    assert_eq!(
        api.get("shared").await.unwrap().data.unwrap()["common"],
        "y"
    );

    // A field alice stops applying is removed; bob's stay.
    api.patch("shared", &apply("alice", false), &config(json!({})))
        .await
        .unwrap();
    let data = api.get("shared").await.unwrap().data.unwrap();
    assert!(!data.contains_key("a"), "{data:?}");
    assert_eq!((data["b"].as_str(), data["common"].as_str()), ("2", "y"));

    // Apply needs a field manager.
    let status = api_status(
        api.patch("shared", &PatchParams::default(), &config(json!({})))
            .await
            .unwrap_err(),
    );
    assert_eq!(status.code, 400);
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selectors_pagination_and_metadata_only_reads() {
    let (cluster, _dir) = start_cluster().await;
    let client = client(&cluster).await;
    let client_for_meta = client.clone();
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    for (name, tier) in [("a", "web"), ("b", "db"), ("c", "cache"), ("d", "")] {
        let mut o = cm(name, &[]);
        if !tier.is_empty() {
            o.metadata.labels = Some(BTreeMap::from([("tier".into(), tier.into())]));
        }
        api.create(&PostParams::default(), &o).await.unwrap();
    }
    let names = |list: kube::core::ObjectList<ConfigMap>| {
        list.items.iter().map(|o| o.name_any()).collect::<Vec<_>>()
    };
    assert_eq!(
        names(
            api.list(&ListParams::default().labels("tier in (web,db)"))
                .await
                .unwrap()
        ),
        ["a", "b"]
    );
    assert_eq!(
        names(
            api.list(&ListParams::default().labels("tier notin (web),tier"))
                .await
                .unwrap()
        ),
        ["b", "c"]
    );
    assert_eq!(
        names(
            api.list(&ListParams::default().labels("!tier"))
                .await
                .unwrap()
        ),
        ["d"]
    );
    assert_eq!(
        names(
            api.list(&ListParams::default().labels("tier!=web"))
                .await
                .unwrap()
        ),
        ["b", "c", "d"]
    );
    assert_eq!(
        names(
            api.list(&ListParams::default().fields("metadata.name=c"))
                .await
                .unwrap()
        ),
        ["c"]
    );

    let first = api.list(&ListParams::default().limit(3)).await.unwrap();
    assert_eq!(names(first.clone()), ["a", "b", "c"]);
    let token = first.metadata.continue_.clone().unwrap();
    let second = api
        .list(&ListParams::default().limit(3).continue_token(&token))
        .await
        .unwrap();
    assert_eq!(names(second.clone()), ["d"]);
    assert!(
        second
            .metadata
            .continue_
            .as_deref()
            .is_none_or(str::is_empty)
    );

    let meta = api
        .list_metadata(&ListParams::default().labels("tier=db"))
        .await
        .unwrap();
    assert_eq!(meta.items.len(), 1);
    assert_eq!(meta.items[0].metadata.name.as_deref(), Some("b"));
    let mut stream = watcher(
        Api::<kube::core::PartialObjectMeta<ConfigMap>>::namespaced(client_for_meta, "default"),
        watcher::Config::default().labels("tier=web"),
    )
    .boxed();
    let mut found = false;
    while let Some(event) = stream.try_next().await.unwrap() {
        match event {
            watcher::Event::InitApply(o) => found |= o.metadata.name.as_deref() == Some("a"),
            watcher::Event::InitDone => break,
            _ => {}
        }
    }
    assert!(found, "the metadata watcher listed the matching object");
    cluster.stop().await;
}

fn pod_with_policy(name: &str, policy: &str, script: &str) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"restartPolicy": policy, "terminationGracePeriodSeconds": 1, "containers": [{"name": "main", "image": "strom/shell:1", "command": ["sh", "-c", script]}]}
    }))
    .unwrap()
}

async fn status_of(
    pods: &Api<Pod>,
    name: &str,
    what: &str,
    check: impl Fn(&k8s_openapi::api::core::v1::PodStatus) -> bool,
) -> k8s_openapi::api::core::v1::PodStatus {
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if let Some(status) = pods.get(name).await.unwrap().status
                && check(&status)
            {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("pod {name}: {what}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashed_containers_restart_by_policy_with_the_right_restart_count() {
    let (cluster, _dir) = start_cluster().await;
    let client = client(&cluster).await;
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let running = |s: &k8s_openapi::api::core::v1::PodStatus| {
        s.container_statuses
            .as_ref()
            .and_then(|c| c[0].state.as_ref())
            .and_then(|st| st.running.as_ref())
            .is_some()
    };
    let restarts = |s: &k8s_openapi::api::core::v1::PodStatus| {
        s.container_statuses
            .as_ref()
            .map_or(0, |c| c[0].restart_count)
    };

    // Always: a crash (SIGKILL) is restarted, and counted.
    pods.create(
        &PostParams::default(),
        &pod_with_policy("always", "Always", "sleep 3600"),
    )
    .await
    .unwrap();
    status_of(&pods, "always", "running", running).await;
    assert!(cluster.kubelet.crash_container("default", "always", "main"));
    let st = status_of(&pods, "always", "restarted once", |s| {
        running(s) && restarts(s) == 1
    })
    .await;
    let last = st.container_statuses.unwrap()[0]
        .last_state
        .clone()
        .unwrap();
    assert_eq!(last.terminated.unwrap().exit_code, 137);
    assert!(cluster.kubelet.crash_container("default", "always", "main"));
    status_of(&pods, "always", "restarted twice", |s| {
        running(s) && restarts(s) == 2
    })
    .await;

    // OnFailure: a clean exit is final.
    pods.create(
        &PostParams::default(),
        &pod_with_policy("done", "OnFailure", "echo bye"),
    )
    .await
    .unwrap();
    let st = status_of(&pods, "done", "Succeeded", |s| {
        s.phase.as_deref() == Some("Succeeded")
    })
    .await;
    assert_eq!(restarts(&st), 0);

    // OnFailure: a failing exit is retried.
    pods.create(
        &PostParams::default(),
        &pod_with_policy("flaky", "OnFailure", "exit 3"),
    )
    .await
    .unwrap();
    let st = status_of(&pods, "flaky", "restarted", |s| restarts(s) >= 1).await;
    assert_eq!(
        st.container_statuses.unwrap()[0]
            .last_state
            .clone()
            .unwrap()
            .terminated
            .unwrap()
            .exit_code,
        3
    );

    // Never: a crash ends the pod as Failed.
    pods.create(
        &PostParams::default(),
        &pod_with_policy("never", "Never", "sleep 3600"),
    )
    .await
    .unwrap();
    status_of(&pods, "never", "running", running).await;
    assert!(cluster.kubelet.crash_container("default", "never", "main"));
    let st = status_of(&pods, "never", "Failed", |s| {
        s.phase.as_deref() == Some("Failed")
    })
    .await;
    assert_eq!(restarts(&st), 0);
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_node_has_its_pods_recreated_on_another() {
    let (cluster, _dir) = start_cluster().await;
    let client = client(&cluster).await;
    let sets: Api<k8s_openapi::api::apps::v1::StatefulSet> =
        Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let set = json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "s"},
        "spec": {"replicas": 2, "podManagementPolicy": "Parallel", "serviceName": "s", "selector": {"matchLabels": {"app": "s"}},
                 "template": {"metadata": {"labels": {"app": "s"}}, "spec": {"containers": [{"name": "main", "image": "strom/shell:1", "command": ["sleep", "3600"]}]}}}
    });
    sets.create(
        &PostParams::default(),
        &serde_json::from_value(set).unwrap(),
    )
    .await
    .unwrap();
    let before = running_pods(&pods, "s", 2).await;
    let victim_node = before[0].spec.as_ref().unwrap().node_name.clone().unwrap();
    let victim = before[0].name_any();
    let victim_uid = before[0].uid().unwrap();
    cluster.kubelet.fail_node(&victim_node);
    let after = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let now = running_pods(&pods, "s", 2).await;
            if let Some(p) = now.iter().find(|p| p.name_any() == victim)
                && p.uid().unwrap() != victim_uid
            {
                return p.clone();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the lost pod comes back");
    assert_ne!(
        after.spec.unwrap().node_name.unwrap(),
        victim_node,
        "it runs on a ready node"
    );
    cluster.kubelet.restore_node(&victim_node);
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_recorded_with_kube_runtime_show_in_kubectl_describe() {
    use kube::runtime::events::{Event, EventType, Recorder, Reporter};
    let (cluster, _dir) = start_cluster().await;
    let client = client(&cluster).await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let object = api
        .create(&PostParams::default(), &cm("subject", &[]))
        .await
        .unwrap();
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "strom-test".into(),
            instance: None,
        },
    );
    let event = Event {
        type_: EventType::Warning,
        reason: "SavepointFailed".into(),
        note: Some("the bucket refused the write".into()),
        action: "Savepoint".into(),
        secondary: None,
    };
    let reference = object.object_ref(&());
    recorder.publish(&event, &reference).await.unwrap();
    // The same event again becomes a series (a patch of the first), not a second event.
    recorder.publish(&event, &reference).await.unwrap();

    let core: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(client.clone(), "default");
    let listed = core
        .list(&ListParams::default().fields("involvedObject.name=subject"))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1, "{:?}", listed.items);
    assert_eq!(listed.items[0].reason.as_deref(), Some("SavepointFailed"));
    assert_eq!(
        listed.items[0].message.as_deref(),
        Some("the bucket refused the write")
    );

    for bin in kubectls() {
        let described = ok(&bin, &cluster, &["describe", "configmap", "subject"]);
        assert!(
            described.contains("SavepointFailed")
                && described.contains("the bucket refused the write"),
            "{described}"
        );
        assert!(described.contains("Warning"), "{described}");
    }
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_liveness_probe_restarts_the_container() {
    let (cluster, _dir) = start_cluster().await;
    let client = client(&cluster).await;
    let pods: Api<Pod> = Api::namespaced(client, "default");
    // Live while the file exists; the container removes it after a moment.
    let pod: Pod = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "sick"},
        "spec": {"containers": [{
            "name": "main", "image": "strom/shell:1",
            "command": ["sh", "-c", "touch /tmp/alive-$HOSTNAME-$$; sleep 1; rm -f /tmp/alive-$HOSTNAME-*; sleep 3600"],
            "livenessProbe": {"exec": {"command": ["sh", "-c", "ls /tmp/alive-sick-* >/dev/null 2>&1"]}, "periodSeconds": 1, "failureThreshold": 2}
        }]}
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let st = status_of(&pods, "sick", "restarted by its liveness probe", |s| {
        s.container_statuses
            .as_ref()
            .is_some_and(|c| c[0].restart_count >= 1)
    })
    .await;
    let last = st.container_statuses.unwrap()[0]
        .last_state
        .clone()
        .unwrap()
        .terminated
        .unwrap();
    assert_eq!(last.exit_code, 137, "killed by the kubelet");
    cluster.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_from_a_compacted_version_gets_410_expired() {
    let (cluster, _dir) = start_cluster().await;
    let client = client(&cluster).await;
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    let first = api
        .create(&PostParams::default(), &cm("old", &[]))
        .await
        .unwrap();
    let from = first.resource_version().unwrap();
    // Push the first write out of the watch history.
    let rt = cluster
        .server
        .registry
        .find("", "v1", "configmaps")
        .unwrap();
    for i in 0..20_100 {
        let body = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "churn"}, "data": {"i": i.to_string()}});
        if i == 0 {
            cluster
                .server
                .create(&rt, Some("default"), body, &Default::default())
                .unwrap();
        } else {
            cluster
                .server
                .update(
                    &rt,
                    Some("default"),
                    "churn",
                    body,
                    None,
                    &Default::default(),
                )
                .unwrap();
        }
    }
    let mut stream = api
        .watch(&WatchParams::default(), &from)
        .await
        .unwrap()
        .boxed();
    match stream.try_next().await.unwrap() {
        Some(WatchEvent::Error(e)) => {
            assert_eq!(e.code, 410);
            assert_eq!(e.reason, "Expired");
        }
        other => panic!("expected a 410 ERROR event, got {other:?}"),
    }
    // A relist and a watch from its version work again.
    let rv = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut again = api
        .watch(&WatchParams::default().timeout(1), &rv)
        .await
        .unwrap()
        .boxed();
    assert!(
        again.try_next().await.unwrap().is_none(),
        "nothing changed since the relist"
    );
    cluster.stop().await;
}
