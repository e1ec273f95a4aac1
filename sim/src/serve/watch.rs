//! `watch=true`: a stream of JSON lines `{"type": ADDED|MODIFIED|DELETED|BOOKMARK|ERROR, "object": ...}` read
//! from the store's change log, as the API server's watch cache sends them (kubernetes/kubernetes
//! `staging/src/k8s.io/apiserver/pkg/storage/cacher/cache_watcher.go`): an object that starts matching the
//! selectors arrives as ADDED and one that stops as DELETED; a DELETED event carries the object's last state at
//! the deletion's resourceVersion; a watch from resourceVersion "0" or none first sends every matching object as
//! ADDED; one resuming from a version older than the history kept gets a 410 Gone ERROR event
//! (`NewResourceExpired`) and ends; bookmarks (`allowWatchBookmarks=true`) carry only a resourceVersion.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::Frame;
use serde_json::{Value, json};

use crate::apiserver::store::{ChangeType, Watch};
use crate::harness::state::lock;
use crate::serve::Server;
use crate::serve::resources::{self, Resource};
use crate::serve::selector::{FieldSelector, LabelSelector};

/// How often a watch that asked for bookmarks gets one (the API server sends one about every minute; sooner
/// here keeps a resumed watch's resourceVersion fresh in a short-lived playground).
const BOOKMARK_EVERY: Duration = Duration::from_secs(10);
/// The longest a watch runs when the client names no timeout (the API server's default is 30-60 minutes).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1800);

/// A response body fed by a channel: each message is one chunk, sent as soon as it is written.
pub struct ChannelBody(pub tokio::sync::mpsc::Receiver<Bytes>);

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.0.poll_recv(cx).map(|chunk| chunk.map(|bytes| Ok(Frame::data(bytes))))
    }
}

/// What a watch selects and how it prints.
pub struct WatchRequest {
    pub resource: &'static Resource,
    pub namespace: Option<String>,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    pub resource_version: Option<String>,
    pub bookmarks: bool,
    pub timeout: Option<Duration>,
    /// `as=Table`: each object printed as a one-row Table.
    pub table: bool,
}

/// Where a watch starts, decided under the lock: the initial events and the cursor, or 410.
enum Start {
    From { initial: Vec<Bytes>, cursor: Watch },
    Expired(Bytes),
    BadVersion(String),
}

fn line(event_type: &str, object: &Value) -> Bytes {
    let mut text = json!({"type": event_type, "object": object}).to_string();
    text.push('\n');
    Bytes::from(text)
}

/// The 410 event (apimachinery `pkg/api/errors/errors.go`, `NewResourceExpired`).
fn expired(message: String) -> Bytes {
    line(
        "ERROR",
        &json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": "Expired", "code": 410,
        }),
    )
}

impl WatchRequest {
    fn selects(&self, object: &Value) -> bool {
        self.labels.matches(object) && self.fields.matches(object)
    }

    /// The event's object as the client asked for it.
    fn shaped(&self, object: &Value, now: sei_operator_core::clock::Timestamp, first: &mut bool) -> Value {
        if !self.table {
            return object.clone();
        }
        let table = resources::table(self.resource, &[object], 0, now, *first);
        *first = false;
        table
    }

    fn start(&self, server: &Server, first: &mut bool) -> Start {
        let world = lock(&server.shared);
        let store = &world.api.store;
        let version = store.version();
        let compacted_below = server.faults().compacted_below;
        let oldest = version.saturating_sub(server.watch_window).max(compacted_below);
        let now = world.timestamp();
        match self.resource_version.as_deref().filter(|v| !v.is_empty() && *v != "0") {
            None => {
                let objects: Vec<&Value> = match &self.namespace {
                    Some(namespace) => store.list(self.resource.kind, namespace, &Default::default(), None),
                    None => store.all_of_kind(self.resource.kind).map(|(_, value)| value).collect(),
                };
                let initial = objects
                    .into_iter()
                    .filter(|object| self.selects(object))
                    .map(|object| line("ADDED", &self.shaped(object, now, first)))
                    .collect();
                Start::From { initial, cursor: Watch::from_now(store) }
            }
            Some(text) => {
                let Ok(from) = text.parse::<u64>() else {
                    return Start::BadVersion(format!("invalid resourceVersion {text:?}"));
                };
                if from < oldest {
                    return Start::Expired(expired(format!("too old resource version: {from} ({oldest})")));
                }
                Start::From { initial: Vec::new(), cursor: Watch::from_version(store, from) }
            }
        }
    }

    /// The events for the changes since the cursor, and the store's version.
    fn poll(&self, server: &Server, cursor: &mut Watch, first: &mut bool) -> (Vec<Bytes>, u64) {
        let world = lock(&server.shared);
        let store = &world.api.store;
        let now = world.timestamp();
        let changes: Vec<_> = cursor.poll(store).to_vec();
        let mut lines = Vec::new();
        for change in changes {
            let key = &change.object;
            if key.kind != self.resource.kind || self.namespace.as_ref().is_some_and(|ns| *ns != key.namespace) {
                continue;
            }
            let after = store.get(key, Some(change.version)).filter(|_| change.change != ChangeType::Deleted);
            let before = store.get(key, Some(change.version.saturating_sub(1)));
            let (matched_before, matched_after) =
                (before.is_some_and(|v| self.selects(v)), after.is_some_and(|v| self.selects(v)));
            let (event_type, object) = match (matched_before && change.change != ChangeType::Added, matched_after) {
                (false, true) => ("ADDED", after),
                (true, true) => ("MODIFIED", after),
                (true, false) => ("DELETED", after.or(before)),
                (false, false) => continue,
            };
            let Some(object) = object else { continue };
            let mut object = object.clone();
            if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.insert("resourceVersion".into(), change.version.to_string().into());
            }
            lines.push(line(event_type, &self.shaped(&object, now, first)));
        }
        (lines, store.version())
    }

    fn bookmark(&self, version: u64) -> Bytes {
        let object = json!({
            "kind": self.resource.kind, "apiVersion": self.resource.api_version(),
            "metadata": {"resourceVersion": version.to_string()},
        });
        line("BOOKMARK", &object)
    }
}

/// Starts a watch: the body's channel and the task that feeds it. `Err` is a bad request's message.
pub fn stream(server: Arc<Server>, request: WatchRequest) -> Result<ChannelBody, String> {
    let (sender, receiver) = tokio::sync::mpsc::channel::<Bytes>(256);
    let mut first = true;
    let start = request.start(&server, &mut first);
    let (initial, mut cursor) = match start {
        Start::BadVersion(message) => return Err(message),
        Start::Expired(event) => {
            // A fresh channel has room for the one event; the stream then ends.
            let _ = sender.try_send(event);
            return Ok(ChannelBody(receiver));
        }
        Start::From { initial, cursor } => (initial, cursor),
    };
    let expiry_at_start = server.faults().expiry;
    let mut versions = server.versions.subscribe();
    tokio::spawn(async move {
        for event in initial {
            if sender.send(event).await.is_err() {
                return;
            }
        }
        let deadline = tokio::time::Instant::now() + request.timeout.unwrap_or(DEFAULT_TIMEOUT);
        let mut next_bookmark = tokio::time::Instant::now() + BOOKMARK_EVERY;
        loop {
            if server.faults().expiry != expiry_at_start {
                let floor = server.faults().compacted_below;
                let _ =
                    sender.send(expired(format!("too old resource version: the watch was expired ({floor})"))).await;
                return;
            }
            let (events, version) = request.poll(&server, &mut cursor, &mut first);
            for event in events {
                if sender.send(event).await.is_err() {
                    return;
                }
            }
            tokio::select! {
                changed = versions.changed() => if changed.is_err() { return },
                () = tokio::time::sleep_until(next_bookmark) => {
                    next_bookmark += BOOKMARK_EVERY;
                    if request.bookmarks && sender.send(request.bookmark(version)).await.is_err() {
                        return;
                    }
                }
                () = tokio::time::sleep_until(deadline) => return,
                () = sender.closed() => return,
            }
        }
    });
    Ok(ChannelBody(receiver))
}
