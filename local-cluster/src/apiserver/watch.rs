//! Watches: newline-delimited `{"type": …, "object": …}` events over a chunked response.
//! A watch starts from a resourceVersion (replaying recorded events) or from now (sending the
//! current objects as ADDED first), sends BOOKMARKs when asked, ends after `timeoutSeconds`,
//! and answers a too-old version with an ERROR event carrying `410 Expired`.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt};
use serde_json::{Value, json};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::time::{Instant, Interval};

use super::ApiServer;
use super::registry::ResourceType;
use super::selector::{FieldSelector, LabelSelector};
use super::status::ApiError;
use super::store::{Event, EventKind};
use super::table;

/// How each event's object is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The whole object.
    Full,
    /// `PartialObjectMetadata`.
    Metadata,
    /// A one-row `Table` (kubectl get -w).
    Table,
}

/// What a watch asks for.
#[derive(Debug, Clone)]
pub struct WatchParams {
    /// Resume after this version; None: start from the current state.
    pub from: Option<u64>,
    /// Namespace, or all.
    pub namespace: Option<String>,
    /// Label selector.
    pub labels: LabelSelector,
    /// Field selector.
    pub fields: FieldSelector,
    /// Send BOOKMARK events.
    pub bookmarks: bool,
    /// Send the current objects first and mark their end with a bookmark.
    pub send_initial_events: bool,
    /// End the watch after this long.
    pub timeout: Option<Duration>,
    /// How objects are written.
    pub format: Format,
}

struct State {
    rt: Arc<ResourceType>,
    params: WatchParams,
    queue: VecDeque<Bytes>,
    receiver: broadcast::Receiver<Arc<Event>>,
    skip_through: u64,
    last_rv: u64,
    bookmark: Interval,
    deadline: Option<Instant>,
    done: bool,
}

fn line(kind: &str, object: Value) -> Bytes {
    let mut text = json!({"type": kind, "object": object}).to_string();
    text.push('\n');
    Bytes::from(text)
}

impl State {
    fn render(&self, object: &Value) -> Value {
        let converted;
        let object = if self.rt.is_events_v1() {
            converted = super::events::to_events_v1(object);
            &converted
        } else {
            object
        };
        match self.params.format {
            Format::Full => object.clone(),
            Format::Metadata => {
                json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": object["metadata"]})
            }
            Format::Table => table::table(&self.rt, &[object], self.last_rv, "Metadata"),
        }
    }

    fn matches(&self, object: &Value) -> bool {
        self.params.labels.matches(object) && self.params.fields.matches(object)
    }

    fn bookmark(&self, initial_end: bool) -> Bytes {
        let mut metadata = json!({"resourceVersion": self.last_rv.to_string()});
        if initial_end {
            metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        line(
            "BOOKMARK",
            json!({"kind": self.rt.kind, "apiVersion": self.rt.api_version(), "metadata": metadata}),
        )
    }

    fn accept(&mut self, event: &Event) {
        if event.rv <= self.skip_through || event.key != self.rt.storage_key() {
            return;
        }
        if let Some(ns) = &self.params.namespace
            && *ns != event.namespace
        {
            return;
        }
        self.last_rv = event.rv;
        let now = self.matches(&event.object);
        let before = event.old.as_deref().is_some_and(|o| self.matches(o));
        let kind = match (event.kind, before, now) {
            (EventKind::Deleted, true, _) => "DELETED",
            (EventKind::Deleted, false, _) => return,
            (EventKind::Added, _, true) => "ADDED",
            (EventKind::Modified, true, true) => "MODIFIED",
            (EventKind::Modified, false, true) => "ADDED",
            (EventKind::Modified, true, false) => "DELETED",
            _ => return,
        };
        let rendered = self.render(&event.object);
        self.queue.push_back(line(kind, rendered));
    }
}

/// Starts a watch; the stream ends when the timeout passes, the server drops the watcher for
/// lagging, or the client goes away.
pub fn watch(
    server: Arc<ApiServer>,
    rt: Arc<ResourceType>,
    params: WatchParams,
) -> BoxStream<'static, Result<Bytes, std::io::Error>> {
    match params.from.filter(|_| !params.send_initial_events) {
        Some(from) => match server.store.watch_from(from) {
            Ok((past, receiver)) => {
                let skip = past.last().map_or(from, |e| e.rv);
                let mut s = new_state(server, rt, params, receiver, 0, from);
                for event in &past {
                    s.accept(event);
                }
                s.skip_through = skip;
                into_stream(s)
            }
            Err(expired) => {
                let (_, rv, receiver) = server.store.watch_now(&rt.storage_key(), None);
                let mut s = new_state(server, rt, params, receiver, rv, rv);
                let status = ApiError::expired(format!(
                    "too old resource version: {from} ({})",
                    expired.oldest
                ))
                .to_status();
                s.queue.push_back(line("ERROR", status));
                s.done = true;
                into_stream(s)
            }
        },
        None => {
            let (items, rv, receiver) = server
                .store
                .watch_now(&rt.storage_key(), params.namespace.as_deref());
            let mut s = new_state(server, rt, params, receiver, rv, rv);
            for item in &items {
                if s.matches(item) {
                    let rendered = s.render(item);
                    s.queue.push_back(line("ADDED", rendered));
                }
            }
            if s.params.send_initial_events && s.params.bookmarks {
                let b = s.bookmark(true);
                s.queue.push_back(b);
            }
            into_stream(s)
        }
    }
}

fn new_state(
    server: Arc<ApiServer>,
    rt: Arc<ResourceType>,
    params: WatchParams,
    receiver: broadcast::Receiver<Arc<Event>>,
    skip_through: u64,
    last_rv: u64,
) -> State {
    let period = server.bookmark_interval;
    let mut bookmark = tokio::time::interval_at(Instant::now() + period, period);
    bookmark.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let deadline = params.timeout.map(|t| Instant::now() + t);
    State {
        rt,
        params,
        queue: VecDeque::new(),
        receiver,
        skip_through,
        last_rv,
        bookmark,
        deadline,
        done: false,
    }
}

fn into_stream(state: State) -> BoxStream<'static, Result<Bytes, std::io::Error>> {
    stream::unfold(state, |mut s| async move {
        loop {
            if let Some(next) = s.queue.pop_front() {
                return Some((Ok(next), s));
            }
            if s.done {
                return None;
            }
            let deadline = s.deadline;
            let sleep = async move {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => futures::future::pending().await,
                }
            };
            tokio::select! {
                received = s.receiver.recv() => match received {
                    Ok(event) => s.accept(&event),
                    // Cut off for lagging, or the server is stopping: the client re-watches.
                    Err(RecvError::Lagged(_)) | Err(RecvError::Closed) => return None,
                },
                _ = s.bookmark.tick() => {
                    if s.params.bookmarks {
                        let b = s.bookmark(false);
                        s.queue.push_back(b);
                    }
                }
                _ = sleep => return None,
            }
        }
    })
    .boxed()
}
