//! The garbage collector: deletes objects whose owners are gone, honours the `orphan` and
//! `foregroundDeletion` finalizers, empties terminating namespaces, and removes the objects
//! of deleted CRDs.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use super::ops::{DeleteOptions, WriteOptions};
use super::registry::ResourceType;
use super::store::EventKind;
use super::{ApiServer, meta};

struct Entry {
    rt: Arc<ResourceType>,
    object: Arc<Value>,
}

/// Runs until the server's store is dropped, sweeping after every burst of changes.
pub async fn run(server: Arc<ApiServer>) {
    let (_, _, mut events) = server.store.watch_now("", None);
    loop {
        match events.recv().await {
            Ok(event) => {
                if event.kind == EventKind::Deleted
                    && event.key == "apiextensions.k8s.io/customresourcedefinitions"
                {
                    super::crd::unregister_crd(&server, &event.object);
                }
            }
            Err(RecvError::Lagged(_)) => {}
            Err(RecvError::Closed) => return,
        }
        // Let a burst of changes settle, then sweep once.
        tokio::time::sleep(Duration::from_millis(50)).await;
        while let Ok(event) = events.try_recv() {
            if event.kind == EventKind::Deleted
                && event.key == "apiextensions.k8s.io/customresourcedefinitions"
            {
                super::crd::unregister_crd(&server, &event.object);
            }
        }
        sweep(&server);
    }
}

fn finalizers(object: &Value) -> Vec<String> {
    object
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|f| f.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn remove_finalizer(server: &ApiServer, e: &Entry, finalizer: &str) {
    let ns = meta::meta_str(&e.object, "namespace").map(str::to_owned);
    let opts = WriteOptions {
        field_manager: Some("garbage-collector".into()),
        ..Default::default()
    };
    let _ = server.modify(
        &e.rt,
        ns.as_deref(),
        meta::name_of(&e.object),
        None,
        &opts,
        |old| {
            let mut new = old.clone();
            let left: Vec<String> = finalizers(old)
                .into_iter()
                .filter(|f| f != finalizer)
                .collect();
            meta::metadata_mut(&mut new).insert("finalizers".into(), json!(left));
            Ok(new)
        },
    );
}

/// One pass over every object.
pub fn sweep(server: &ApiServer) {
    let mut by_uid: HashMap<String, Entry> = HashMap::new();
    let mut all = Vec::new();
    for rt in server.registry.all() {
        // Several versions of one kind share storage: visit each stored object once.
        if all
            .iter()
            .any(|(t, _): &(Arc<ResourceType>, Arc<Value>)| t.storage_key() == rt.storage_key())
        {
            continue;
        }
        let (items, _) = server.store.list(&rt.storage_key(), None);
        for item in items {
            if let Some(uid) = meta::meta_str(&item, "uid") {
                by_uid.insert(
                    uid.to_owned(),
                    Entry {
                        rt: rt.clone(),
                        object: item.clone(),
                    },
                );
            }
            all.push((rt.clone(), item));
        }
    }
    let dependents = |owner_uid: &str| -> Vec<&(Arc<ResourceType>, Arc<Value>)> {
        all.iter()
            .filter(|(_, o)| {
                o.pointer("/metadata/ownerReferences")
                    .and_then(Value::as_array)
                    .is_some_and(|refs| refs.iter().any(|r| r["uid"] == owner_uid))
            })
            .collect()
    };
    let background = DeleteOptions {
        propagation: Some("Background".into()),
        ..Default::default()
    };

    for (rt, object) in &all {
        let name = meta::name_of(object);
        let ns = meta::meta_str(object, "namespace");
        let deleting = object.pointer("/metadata/deletionTimestamp").is_some();
        let uid = meta::meta_str(object, "uid").unwrap_or_default();
        let fins = finalizers(object);
        let entry = Entry {
            rt: rt.clone(),
            object: object.clone(),
        };

        // An owner being deleted in the foreground waits for its dependents.
        if deleting && fins.iter().any(|f| f == "foregroundDeletion") {
            let deps = dependents(uid);
            if deps.is_empty() {
                remove_finalizer(server, &entry, "foregroundDeletion");
            } else {
                for (drt, d) in deps {
                    if d.pointer("/metadata/deletionTimestamp").is_none() {
                        let _ = server.delete(
                            drt,
                            meta::meta_str(d, "namespace"),
                            meta::name_of(d),
                            &DeleteOptions {
                                propagation: Some("Foreground".into()),
                                ..Default::default()
                            },
                        );
                    }
                }
            }
        }
        // An owner deleted with orphaning lets go of its dependents first.
        if deleting && fins.iter().any(|f| f == "orphan") {
            for (drt, d) in dependents(uid) {
                let opts = WriteOptions {
                    field_manager: Some("garbage-collector".into()),
                    ..Default::default()
                };
                let _ = server.modify(
                    drt,
                    meta::meta_str(d, "namespace"),
                    meta::name_of(d),
                    None,
                    &opts,
                    |old| {
                        let mut new = old.clone();
                        let refs: Vec<Value> = old
                            .pointer("/metadata/ownerReferences")
                            .and_then(Value::as_array)
                            .cloned()
                            .unwrap_or_default()
                            .into_iter()
                            .filter(|r| r["uid"] != uid)
                            .collect();
                        let m = meta::metadata_mut(&mut new);
                        if refs.is_empty() {
                            m.remove("ownerReferences");
                        } else {
                            m.insert("ownerReferences".into(), json!(refs));
                        }
                        Ok(new)
                    },
                );
            }
            remove_finalizer(server, &entry, "orphan");
        }
        // A terminating namespace is emptied, then removed.
        if deleting && rt.plural == "namespaces" && rt.group.is_empty() {
            let inside: Vec<_> = all
                .iter()
                .filter(|(t, o)| t.namespaced && meta::meta_str(o, "namespace") == Some(name))
                .collect();
            if inside.is_empty() {
                let _ = server.store.write::<()>(&rt.storage_key(), "", name, |_| {
                    Ok(super::store::Write::Delete)
                });
            } else {
                for (t, o) in inside {
                    if o.pointer("/metadata/deletionTimestamp").is_none() {
                        let _ = server.delete(t, Some(name), meta::name_of(o), &background);
                    }
                }
            }
        }
        // Dependents of vanished owners go; dangling references to some owners are dropped.
        let refs = object
            .pointer("/metadata/ownerReferences")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if !refs.is_empty() && !deleting {
            let live: Vec<&Value> = refs
                .iter()
                .filter(|r| r["uid"].as_str().is_some_and(|u| by_uid.contains_key(u)))
                .collect();
            if live.is_empty() {
                let _ = server.delete(rt, ns, name, &background);
            }
        }
    }
}
