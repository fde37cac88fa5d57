//! The object store: every object as JSON, one global `resourceVersion` counter, and an
//! event history that watches resume from. Writers never wait on watchers: events go out on
//! a broadcast channel, and a watcher that falls too far behind is cut off (its client
//! re-watches from its last version, or re-lists after `410 Expired`).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::sync::broadcast;

/// How many past events a watch can resume from.
const HISTORY: usize = 20_000;
/// How many events a live watcher may lag behind before it is cut off.
const LIVE_BUFFER: usize = 8_192;

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// Created.
    Added,
    /// Changed.
    Modified,
    /// Removed.
    Deleted,
}

/// One change, as watches see it.
#[derive(Debug)]
pub struct Event {
    /// The resourceVersion the change produced.
    pub rv: u64,
    /// The storage key of the object's type (`group/plural`).
    pub key: String,
    /// The object's namespace ("" for cluster-scoped objects).
    pub namespace: String,
    /// What happened.
    pub kind: EventKind,
    /// The object after the change (for deletions: as it was last).
    pub object: Arc<Value>,
    /// The object before the change, for modifications.
    pub old: Option<Arc<Value>>,
}

/// The outcome a write function asks for.
pub enum Write {
    /// Store this object (create or replace).
    Put(Value),
    /// Remove the object.
    Delete,
    /// Change nothing (a no-op write keeps the resourceVersion).
    Keep,
}

/// A watch asked to resume from a version whose events are gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expired {
    /// The oldest version a watch can resume from now.
    pub oldest: u64,
}

/// The recorded events after a version, and the receiver of the live ones that follow.
pub type Resumed = (Vec<Arc<Event>>, broadcast::Receiver<Arc<Event>>);

type ObjectKey = (String, String, String); // (type key, namespace, name)

struct Inner {
    rv: u64,
    objects: BTreeMap<ObjectKey, Arc<Value>>,
    history: VecDeque<Arc<Event>>,
    /// Events up to this version are no longer in `history`.
    compacted: u64,
}

/// The in-memory store.
pub struct Store {
    inner: Mutex<Inner>,
    live: broadcast::Sender<Arc<Event>>,
}

impl Default for Store {
    fn default() -> Self {
        Self::new()
    }
}

impl Store {
    /// An empty store at resourceVersion 1.
    pub fn new() -> Self {
        let (live, _) = broadcast::channel(LIVE_BUFFER);
        Store {
            inner: Mutex::new(Inner {
                rv: 1,
                objects: BTreeMap::new(),
                history: VecDeque::new(),
                compacted: 1,
            }),
            live,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("store lock")
    }

    /// The latest resourceVersion.
    pub fn current_rv(&self) -> u64 {
        self.lock().rv
    }

    /// One object.
    pub fn get(&self, key: &str, namespace: &str, name: &str) -> Option<Arc<Value>> {
        self.lock()
            .objects
            .get(&(key.to_owned(), namespace.to_owned(), name.to_owned()))
            .cloned()
    }

    /// Every object of a type, in one namespace or (None) all, sorted by namespace and name,
    /// with the resourceVersion the list is consistent at.
    pub fn list(&self, key: &str, namespace: Option<&str>) -> (Vec<Arc<Value>>, u64) {
        let inner = self.lock();
        let items = inner
            .objects
            .range((key.to_owned(), String::new(), String::new())..)
            .take_while(|((k, _, _), _)| k == key)
            .filter(|((_, ns, _), _)| namespace.is_none_or(|want| want == ns))
            .map(|(_, v)| v.clone())
            .collect();
        (items, inner.rv)
    }

    /// Reads the object (if any), lets `f` decide, and applies the decision atomically.
    /// A `Put` gets the next resourceVersion written into `metadata.resourceVersion`.
    /// Returns the stored object after the write (None after a delete or for a missing
    /// object that was kept absent).
    pub fn write<E>(
        &self,
        key: &str,
        namespace: &str,
        name: &str,
        f: impl FnOnce(Option<&Value>) -> Result<Write, E>,
    ) -> Result<Option<Arc<Value>>, E> {
        let mut inner = self.lock();
        let object_key = (key.to_owned(), namespace.to_owned(), name.to_owned());
        let old = inner.objects.get(&object_key).cloned();
        match f(old.as_deref())? {
            Write::Keep => Ok(old),
            Write::Put(mut object) => {
                inner.rv += 1;
                let rv = inner.rv;
                if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
                    meta.insert("resourceVersion".into(), Value::String(rv.to_string()));
                }
                let object = Arc::new(object);
                inner.objects.insert(object_key, object.clone());
                let kind = if old.is_some() {
                    EventKind::Modified
                } else {
                    EventKind::Added
                };
                self.publish(&mut inner, key, namespace, kind, object.clone(), old);
                Ok(Some(object))
            }
            Write::Delete => {
                let Some(old) = inner.objects.remove(&object_key) else {
                    return Ok(None);
                };
                inner.rv += 1;
                let rv = inner.rv;
                // The deletion event carries the object at the deletion's version.
                let mut last = (*old).clone();
                if let Some(meta) = last.get_mut("metadata").and_then(Value::as_object_mut) {
                    meta.insert("resourceVersion".into(), Value::String(rv.to_string()));
                }
                self.publish(
                    &mut inner,
                    key,
                    namespace,
                    EventKind::Deleted,
                    Arc::new(last),
                    Some(old),
                );
                Ok(None)
            }
        }
    }

    fn publish(
        &self,
        inner: &mut Inner,
        key: &str,
        namespace: &str,
        kind: EventKind,
        object: Arc<Value>,
        old: Option<Arc<Value>>,
    ) {
        let event = Arc::new(Event {
            rv: inner.rv,
            key: key.to_owned(),
            namespace: namespace.to_owned(),
            kind,
            object,
            old,
        });
        inner.history.push_back(event.clone());
        if inner.history.len() > HISTORY
            && let Some(dropped) = inner.history.pop_front()
        {
            inner.compacted = dropped.rv;
        }
        // No receivers is fine; a lagging receiver is cut off by the channel, never waited on.
        let _ = self.live.send(event);
    }

    /// Starts a watch of every change after `from`: the recorded events since then, and a
    /// receiver of the live ones that follow without a gap.
    pub fn watch_from(&self, from: u64) -> Result<Resumed, Expired> {
        let inner = self.lock();
        if from < inner.compacted {
            return Err(Expired {
                oldest: inner.compacted,
            });
        }
        let past = inner
            .history
            .iter()
            .filter(|e| e.rv > from)
            .cloned()
            .collect();
        Ok((past, self.live.subscribe()))
    }

    /// Starts a watch at the current state: the objects that exist now (to be sent as
    /// ADDED), the version they are at, and a receiver of every later change.
    pub fn watch_now(
        &self,
        key: &str,
        namespace: Option<&str>,
    ) -> (Vec<Arc<Value>>, u64, broadcast::Receiver<Arc<Event>>) {
        let receiver = self.live.subscribe();
        // Subscribing first and listing under the same lock the writers take means no
        // change can fall between the list and the live events.
        let inner = self.lock();
        let items = inner
            .objects
            .range((key.to_owned(), String::new(), String::new())..)
            .take_while(|((k, _, _), _)| k == key)
            .filter(|((_, ns, _), _)| namespace.is_none_or(|want| want == ns))
            .map(|(_, v)| v.clone())
            .collect();
        // Events with a version at or below `rv` may also be queued on the receiver; they
        // are already reflected in the list, and the caller skips them.
        let rv = inner.rv;
        drop(inner);
        (items, rv, receiver)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn put(store: &Store, name: &str, v: i64) -> Arc<Value> {
        store
            .write::<()>("/configmaps", "ns", name, |_| {
                Ok(Write::Put(
                    json!({"metadata": {"name": name}, "data": {"v": v}}),
                ))
            })
            .unwrap()
            .unwrap()
    }

    #[test]
    fn every_write_gets_a_higher_resource_version_and_keep_changes_nothing() {
        let store = Store::new();
        let a = put(&store, "a", 1);
        let b = put(&store, "b", 1);
        let rv = |o: &Value| {
            o["metadata"]["resourceVersion"]
                .as_str()
                .unwrap()
                .parse::<u64>()
                .unwrap()
        };
        assert!(rv(&b) > rv(&a));
        let kept = store
            .write::<()>("/configmaps", "ns", "a", |_| Ok(Write::Keep))
            .unwrap()
            .unwrap();
        assert_eq!(rv(&kept), rv(&a));
        assert_eq!(store.current_rv(), rv(&b));
    }

    #[test]
    fn watches_resume_from_history_and_expire_when_it_is_gone() {
        let store = Store::new();
        let first = put(&store, "a", 1);
        put(&store, "a", 2);
        store
            .write::<()>("/configmaps", "ns", "a", |_| Ok(Write::Delete))
            .unwrap();
        let from: u64 = first["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let (past, _) = store.watch_from(from).unwrap();
        let kinds: Vec<_> = past.iter().map(|e| e.kind).collect();
        assert_eq!(kinds, [EventKind::Modified, EventKind::Deleted]);
        for i in 0..HISTORY + 10 {
            put(&store, "b", i as i64);
        }
        assert!(store.watch_from(from).is_err());
    }

    #[test]
    fn lists_are_per_type_and_namespace() {
        let store = Store::new();
        put(&store, "a", 1);
        store
            .write::<()>("/configmaps", "other", "z", |_| {
                Ok(Write::Put(json!({"metadata": {"name": "z"}})))
            })
            .unwrap();
        store
            .write::<()>("/secrets", "ns", "s", |_| {
                Ok(Write::Put(json!({"metadata": {"name": "s"}})))
            })
            .unwrap();
        assert_eq!(store.list("/configmaps", Some("ns")).0.len(), 1);
        assert_eq!(store.list("/configmaps", None).0.len(), 2);
        assert_eq!(store.list("/secrets", None).0.len(), 1);
    }
}
