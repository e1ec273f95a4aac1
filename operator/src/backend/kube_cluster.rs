//! The production [`Cluster`]: typed kube-rs `Api`s per kind, against the API server.
//!
//! Writes are optimistic (the object's resourceVersion travels with every replace, and a stale one comes back as
//! 409 → [`ClusterError::Conflict`]); status goes through the status subresource; Events go through kube-runtime's
//! event recorder (events.k8s.io/v1) — or, when keyed, are created under a name derived from their key — and
//! count rollout transitions for `/metrics`. Gets and lists are answered from the controllers' watch caches
//! ([`Caches`]) where [`crate::read_policy`] allows it, and from the API server otherwise.

use std::sync::Arc;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ObjectReference, PersistentVolumeClaim, Service};
use k8s_openapi::api::events::v1::Event as K8sEvent;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::runtime::events::{Event as KubeEvent, EventType as KubeEventType, Recorder, Reporter};
use kube::{Client, Resource};

use super::caches::{Cached, Caches};
use super::clock::SystemClock;
use super::kube_error::{Operation, map_kube_error};
use super::metrics::Metrics;
use super::plan_timing::PlanTaskTimer;
use crate::api::{SeiNode, SeiNodeDeployment};
use crate::clock::Clock;
use crate::cluster::{Cluster, ClusterError, ClusterObject, Event, EventType, LabelSelector, ObjectRef};

/// The events.k8s.io limit on an Event's note.
const MAX_EVENT_NOTE_BYTES: usize = 1024;

/// A [`Cluster`] on a kube-rs [`Client`]. Cheap to clone: clones share the client, the event recorder's
/// de-duplication cache, the metrics and the plan-task timer.
#[derive(Clone)]
pub struct KubeCluster {
    client: Client,
    recorder: Recorder,
    reporter: Reporter,
    metrics: Arc<Metrics>,
    plan_timer: Arc<PlanTaskTimer>,
    clock: SystemClock,
    /// The watch caches reads are answered from; none: every read goes to the API server.
    caches: Option<Caches>,
}

impl KubeCluster {
    /// `reporter` names the controller (and its pod) on the Events it publishes.
    pub fn new(client: Client, reporter: Reporter, metrics: Arc<Metrics>) -> Self {
        KubeCluster {
            recorder: Recorder::new(client.clone(), reporter.clone()),
            reporter,
            client,
            metrics,
            plan_timer: Arc::new(PlanTaskTimer::default()),
            clock: SystemClock,
            caches: None,
        }
    }

    /// The same client, answering reads from `caches` where the read policy allows it.
    pub fn with_caches(self, caches: Caches) -> Self {
        KubeCluster { caches: Some(caches), ..self }
    }

    fn api<K: ClusterObject>(&self, namespace: &str) -> Api<K> {
        Api::namespaced(self.client.clone(), namespace)
    }

    /// Tells the caches of the operator's own write (read-your-writes).
    fn note_write<K: ClusterObject>(&self, written: &K) {
        if let Some(caches) = &self.caches {
            caches.note_write(written);
        }
    }

    /// The uid of the object an Event is about, so that `kubectl describe` (which matches Events by uid) shows it.
    /// `None` when it cannot be read: the Event is still worth publishing.
    async fn uid_of(&self, regarding: &ObjectRef) -> Option<String> {
        let (namespace, name) = (regarding.namespace.as_str(), regarding.name.as_str());
        let meta = match regarding.kind.as_str() {
            "SeiNodeDeployment" => self.get::<SeiNodeDeployment>(namespace, name).await.map(|o| o.metadata),
            "SeiNode" => self.get::<SeiNode>(namespace, name).await.map(|o| o.metadata),
            "StatefulSet" => self.get::<StatefulSet>(namespace, name).await.map(|o| o.metadata),
            "Service" => self.get::<Service>(namespace, name).await.map(|o| o.metadata),
            "Job" => self.get::<Job>(namespace, name).await.map(|o| o.metadata),
            "PersistentVolumeClaim" => self.get::<PersistentVolumeClaim>(namespace, name).await.map(|o| o.metadata),
            _ => return None,
        };
        meta.ok().and_then(|m| m.uid)
    }
}

/// The name of the Event recorded for `key` about object `name`: `<name>.<16 hex digits of the key's digest>`, so
/// the API server refuses a second one (AlreadyExists), from this operator process or a later one. The object's
/// name is cut to keep the whole within a DNS subdomain's 253 characters.
fn keyed_event_name(name: &str, key: &str) -> String {
    let digest = sei_operator_core::digest::short_sha256(key.as_bytes());
    format!("{}.{digest}", truncate_utf8(name, 253 - 17))
}

/// The apiVersion of the kinds the operator emits Events about.
fn api_version_of(kind: &str) -> Option<String> {
    let version = match kind {
        "SeiNodeDeployment" => SeiNodeDeployment::api_version(&()),
        "SeiNode" => SeiNode::api_version(&()),
        "StatefulSet" => StatefulSet::api_version(&()),
        "Service" => Service::api_version(&()),
        "Job" => Job::api_version(&()),
        "PersistentVolumeClaim" => PersistentVolumeClaim::api_version(&()),
        _ => return None,
    };
    Some(version.into_owned())
}

/// `k=v,k2=v2`: the equality-based selector syntax of `labelSelector`.
fn selector_query(selector: &LabelSelector) -> String {
    selector.iter().map(|(key, value)| format!("{key}={value}")).collect::<Vec<_>>().join(",")
}

/// Truncates to at most `max` bytes on a character boundary.
fn truncate_utf8(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The namespace and name a write addresses; a write without them cannot be sent.
fn write_target<K: ClusterObject>(object: &K) -> Result<(String, String), ClusterError> {
    let meta = object.meta();
    match (&meta.namespace, &meta.name) {
        (Some(namespace), Some(name)) => Ok((namespace.clone(), name.clone())),
        _ => Err(ClusterError::Invalid {
            object: ObjectRef::to(object),
            message: "metadata.namespace and metadata.name are required".into(),
        }),
    }
}

/// An update without a resourceVersion would be an unconditional overwrite: refused before it is sent.
fn require_resource_version<K: ClusterObject>(object: &K) -> Result<(), ClusterError> {
    match object.meta().resource_version {
        Some(_) => Ok(()),
        None => Err(ClusterError::Invalid {
            object: ObjectRef::to(object),
            message: "metadata.resourceVersion is required: an update without it would be a blind overwrite".into(),
        }),
    }
}

impl Cluster for KubeCluster {
    async fn get<K: ClusterObject>(&self, namespace: &str, name: &str) -> Result<K, ClusterError> {
        self.get_shared(namespace, name).await.map(Arc::unwrap_or_clone)
    }

    async fn get_shared<K: ClusterObject>(&self, namespace: &str, name: &str) -> Result<Arc<K>, ClusterError> {
        match self.caches.as_ref().map(|caches| caches.get::<K>(namespace, name)) {
            Some(Cached::Answer(Some(object))) => {
                self.plan_timer.observe_read(&*object);
                Ok(object)
            }
            Some(Cached::Answer(None)) => Err(ClusterError::NotFound(ObjectRef::of::<K>(namespace, name))),
            Some(Cached::AskTheApi) | None => self.get_fresh(namespace, name).await.map(Arc::new),
        }
    }

    async fn get_fresh<K: ClusterObject>(&self, namespace: &str, name: &str) -> Result<K, ClusterError> {
        let object = self
            .api::<K>(namespace)
            .get(name)
            .await
            .map_err(|e| map_kube_error(e, ObjectRef::of::<K>(namespace, name), Operation::Read))?;
        self.plan_timer.observe_read(&object);
        Ok(object)
    }

    async fn list<K: ClusterObject>(
        &self,
        namespace: &str,
        selector: &LabelSelector,
    ) -> Result<Vec<Arc<K>>, ClusterError> {
        if let Some(items) = self.caches.as_ref().and_then(|caches| caches.list::<K>(namespace, selector)) {
            return Ok(items);
        }
        let mut params = ListParams::default();
        if !selector.is_empty() {
            params = params.labels(&selector_query(selector));
        }
        let list = self
            .api::<K>(namespace)
            .list(&params)
            .await
            .map_err(|e| map_kube_error(e, ObjectRef::of::<K>(namespace, ""), Operation::Read))?;
        let mut items = list.items;
        // The trait promises name order; the API server's order is by key too, but that is not a documented contract.
        items.sort_by(|a, b| a.meta().name.cmp(&b.meta().name));
        Ok(items.into_iter().map(Arc::new).collect())
    }

    async fn create<K: ClusterObject>(&self, object: &K) -> Result<Arc<K>, ClusterError> {
        let (namespace, _) = write_target(object)?;
        let created = self
            .api::<K>(&namespace)
            .create(&PostParams::default(), object)
            .await
            .map_err(|e| map_kube_error(e, ObjectRef::to(object), Operation::Create))?;
        self.note_write(&created);
        Ok(Arc::new(created))
    }

    async fn replace<K: ClusterObject>(&self, object: &K) -> Result<Arc<K>, ClusterError> {
        let (namespace, name) = write_target(object)?;
        require_resource_version(object)?;
        let replaced = self
            .api::<K>(&namespace)
            .replace(&name, &PostParams::default(), object)
            .await
            .map_err(|e| map_kube_error(e, ObjectRef::to(object), Operation::Update))?;
        self.note_write(&replaced);
        Ok(Arc::new(replaced))
    }

    async fn replace_status<K: ClusterObject>(&self, object: &K) -> Result<Arc<K>, ClusterError> {
        let (namespace, name) = write_target(object)?;
        require_resource_version(object)?;
        let stored = self
            .api::<K>(&namespace)
            .replace_status(&name, &PostParams::default(), object)
            .await
            .map_err(|e| map_kube_error(e, ObjectRef::to(object), Operation::Update))?;
        self.note_write(&stored);
        self.plan_timer.observe_write(&stored, self.clock.now(), &self.metrics);
        Ok(Arc::new(stored))
    }

    async fn delete<K: ClusterObject>(&self, namespace: &str, name: &str) -> Result<(), ClusterError> {
        // Background propagation, as kubectl does: the API's own default for batch/v1 Jobs is to orphan their pods,
        // which would leave a bootstrap pod running on the node's volume.
        self.api::<K>(namespace)
            .delete(name, &DeleteParams::background())
            .await
            .map_err(|e| map_kube_error(e, ObjectRef::of::<K>(namespace, name), Operation::Delete))?;
        if let Some(caches) = &self.caches {
            caches.note_delete::<K>(namespace, name);
        }
        Ok(())
    }

    async fn emit_event(&self, event: &Event) -> Result<(), ClusterError> {
        let regarding = &event.regarding;
        let reference = ObjectReference {
            api_version: api_version_of(&regarding.kind),
            kind: Some(regarding.kind.clone()),
            namespace: Some(regarding.namespace.clone()),
            name: Some(regarding.name.clone()),
            uid: self.uid_of(regarding).await,
            ..ObjectReference::default()
        };
        let kube_event = KubeEvent {
            type_: match event.type_ {
                EventType::Normal => KubeEventType::Normal,
                EventType::Warning => KubeEventType::Warning,
            },
            reason: event.reason.clone(),
            note: Some(truncate_utf8(&event.message, MAX_EVENT_NOTE_BYTES).to_owned()),
            action: "Reconcile".into(),
            secondary: None,
        };
        let published = match &event.key {
            // The recorder names an Event after the time it is sent, and folds repeats into a series in memory
            // only: a keyed Event is created under its own name instead, so a repeat is refused by the API server.
            Some(key) => {
                let k8s_event = K8sEvent {
                    metadata: ObjectMeta {
                        name: Some(keyed_event_name(&regarding.name, key)),
                        namespace: Some(regarding.namespace.clone()),
                        ..ObjectMeta::default()
                    },
                    event_time: Some(MicroTime(self.clock.now())),
                    action: Some(kube_event.action),
                    reason: Some(kube_event.reason),
                    note: kube_event.note,
                    regarding: Some(reference),
                    reporting_controller: Some(self.reporter.controller.clone()),
                    reporting_instance: Some(
                        self.reporter.instance.clone().unwrap_or_else(|| self.reporter.controller.clone()),
                    ),
                    type_: Some(format!("{:?}", event.type_)),
                    ..K8sEvent::default()
                };
                Api::<K8sEvent>::namespaced(self.client.clone(), &regarding.namespace)
                    .create(&PostParams::default(), &k8s_event)
                    .await
                    .map(|_| ())
            }
            None => self.recorder.publish(&kube_event, &reference).await,
        };
        published.map_err(|e| map_kube_error(e, regarding.clone(), Operation::Create))?;
        // Counted and logged once it is recorded: a repeat refused as AlreadyExists is not a second transition.
        self.metrics.record_event(event);
        let regarding = format!("{} {}/{}", regarding.kind, regarding.namespace, regarding.name);
        match event.type_ {
            EventType::Normal => tracing::info!(%regarding, reason = %event.reason, message = %event.message, "event"),
            EventType::Warning => tracing::warn!(%regarding, reason = %event.reason, message = %event.message, "event"),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_use_the_equality_syntax_in_key_order() {
        let selector: LabelSelector =
            [("sei.io/revision".to_owned(), "abc".to_owned()), ("sei.io/nodedeployment".to_owned(), "d".to_owned())]
                .into();
        assert_eq!(selector_query(&selector), "sei.io/nodedeployment=d,sei.io/revision=abc");
    }

    #[test]
    fn notes_are_cut_on_a_character_boundary() {
        assert_eq!(truncate_utf8("héllo", 2), "h");
        assert_eq!(truncate_utf8("héllo", 3), "hé");
        assert_eq!(truncate_utf8("ok", 10), "ok");
    }

    #[test]
    fn a_keyed_event_is_named_after_its_key_within_a_dns_subdomain() {
        let name = keyed_event_name("rpc", "RolloutStarted/2/abc");
        assert_eq!(name, keyed_event_name("rpc", "RolloutStarted/2/abc"));
        assert_ne!(name, keyed_event_name("rpc", "RolloutStarted/3/abc"));
        assert!(name.starts_with("rpc.") && name.len() == "rpc.".len() + 16, "{name}");
        assert!(keyed_event_name(&"x".repeat(300), "k").len() <= 253);
    }

    #[test]
    fn events_name_the_api_version_of_their_kind() {
        assert_eq!(api_version_of("SeiNodeDeployment").as_deref(), Some("sei.io/v1alpha1"));
        assert_eq!(api_version_of("StatefulSet").as_deref(), Some("apps/v1"));
        assert_eq!(api_version_of("Pod"), None);
    }
}
