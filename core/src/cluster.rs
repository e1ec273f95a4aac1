//! The `Cluster` trait: the only door through which controllers read and write Kubernetes objects and emit
//! events. Production backs it with a kube-rs client; the simulator with its fake API store.
//!
//! Every write is optimistic: `replace` and `replace_status` carry the resourceVersion the caller read, and a
//! stale one is a [`ClusterError::Conflict`] — never a blind overwrite.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;

use k8s_openapi::NamespaceResourceScope;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A namespaced Kubernetes object the operator reads and writes: SeiNode, SeiNodeDeployment, StatefulSet,
/// Service, Job, PersistentVolumeClaim.
pub trait ClusterObject:
    kube::Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + fmt::Debug
    + Serialize
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
}

impl<T> ClusterObject for T where
    T: kube::Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + fmt::Debug
        + Serialize
        + DeserializeOwned
        + Send
        + Sync
        + 'static
{
}

/// Equality-based label selector (`matchLabels`): an object matches when it carries every pair.
pub type LabelSelector = BTreeMap<String, String>;

/// Reads and writes of Kubernetes objects, and Kubernetes Events.
///
/// `list` returns objects sorted by name, so that callers never depend on a backend's order.
pub trait Cluster: Send + Sync {
    fn get<K: ClusterObject>(
        &self,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = Result<K, ClusterError>> + Send;

    /// [`Cluster::get`] for a caller that only reads the object: a backend that holds it shared (a watch cache)
    /// hands out its copy instead of cloning it. The same read as `get`, by the same [`crate::read_policy`].
    fn get_shared<K: ClusterObject>(
        &self,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = Result<Arc<K>, ClusterError>> + Send {
        async move { self.get(namespace, name).await.map(Arc::new) }
    }

    /// The objects of `namespace` matching `selector`, shared as [`Cluster::get_shared`] hands them out: every
    /// caller only reads a list, and a backend that holds the objects (a watch cache) need not clone each one.
    fn list<K: ClusterObject>(
        &self,
        namespace: &str,
        selector: &LabelSelector,
    ) -> impl Future<Output = Result<Vec<Arc<K>>, ClusterError>> + Send;

    /// [`Cluster::get`] from the API server itself, never from a watch cache ([`crate::read_policy`]): for a read
    /// whose staleness would do harm, or that follows the caller's own write and would be stale for certain.
    fn get_fresh<K: ClusterObject>(
        &self,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = Result<K, ClusterError>> + Send;

    /// Creates the object; `AlreadyExists` when one of that name exists. Writes answer the object as stored, shared
    /// as [`Cluster::get_shared`] hands objects out: most callers drop the answer, and a backend that keeps decoded
    /// objects need not copy one for them.
    fn create<K: ClusterObject>(&self, object: &K) -> impl Future<Output = Result<Arc<K>, ClusterError>> + Send;

    /// Replaces metadata and spec; the object's `metadata.resourceVersion` must be the stored one.
    fn replace<K: ClusterObject>(&self, object: &K) -> impl Future<Output = Result<Arc<K>, ClusterError>> + Send;

    /// Replaces the status subresource; the object's `metadata.resourceVersion` must be the stored one.
    fn replace_status<K: ClusterObject>(&self, object: &K)
    -> impl Future<Output = Result<Arc<K>, ClusterError>> + Send;

    /// Deletes the object (graceful: finalizers run first). `NotFound` when it does not exist.
    fn delete<K: ClusterObject>(
        &self,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = Result<(), ClusterError>> + Send;

    /// Records a Kubernetes Event about an object; AlreadyExists when it has a key and an Event under that key was
    /// recorded about the object before.
    fn emit_event(&self, event: &Event) -> impl Future<Output = Result<(), ClusterError>> + Send;
}

/// A borrowed client is a client: a reconcile hands its callers `&C` (or a wrapper around it).
impl<T: Cluster> Cluster for &T {
    fn get<K: ClusterObject>(
        &self,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = Result<K, ClusterError>> + Send {
        (**self).get(namespace, name)
    }

    fn get_shared<K: ClusterObject>(
        &self,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = Result<Arc<K>, ClusterError>> + Send {
        (**self).get_shared(namespace, name)
    }

    fn list<K: ClusterObject>(
        &self,
        namespace: &str,
        selector: &LabelSelector,
    ) -> impl Future<Output = Result<Vec<Arc<K>>, ClusterError>> + Send {
        (**self).list(namespace, selector)
    }

    fn get_fresh<K: ClusterObject>(
        &self,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = Result<K, ClusterError>> + Send {
        (**self).get_fresh(namespace, name)
    }

    fn create<K: ClusterObject>(&self, object: &K) -> impl Future<Output = Result<Arc<K>, ClusterError>> + Send {
        (**self).create(object)
    }

    fn replace<K: ClusterObject>(&self, object: &K) -> impl Future<Output = Result<Arc<K>, ClusterError>> + Send {
        (**self).replace(object)
    }

    fn replace_status<K: ClusterObject>(
        &self,
        object: &K,
    ) -> impl Future<Output = Result<Arc<K>, ClusterError>> + Send {
        (**self).replace_status(object)
    }

    fn delete<K: ClusterObject>(
        &self,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = Result<(), ClusterError>> + Send {
        (**self).delete::<K>(namespace, name)
    }

    fn emit_event(&self, event: &Event) -> impl Future<Output = Result<(), ClusterError>> + Send {
        (**self).emit_event(event)
    }
}

/// Which object an error or event is about.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ObjectRef {
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

impl ObjectRef {
    pub fn new(kind: impl Into<String>, namespace: impl Into<String>, name: impl Into<String>) -> Self {
        ObjectRef { kind: kind.into(), namespace: namespace.into(), name: name.into() }
    }

    /// The reference to an object of kind `K`.
    pub fn of<K: ClusterObject>(namespace: &str, name: &str) -> Self {
        ObjectRef::new(K::kind(&()), namespace, name)
    }

    /// The reference to a stored object.
    pub fn to<K: ClusterObject>(object: &K) -> Self {
        let meta = object.meta();
        ObjectRef::new(K::kind(&()), meta.namespace.clone().unwrap_or_default(), meta.name.clone().unwrap_or_default())
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
    }
}

/// What can go wrong talking to the API server.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClusterError {
    #[error("{0} not found")]
    NotFound(ObjectRef),
    #[error("{0} was modified since it was read (resourceVersion conflict)")]
    Conflict(ObjectRef),
    #[error("{0} already exists")]
    AlreadyExists(ObjectRef),
    #[error("{object} is invalid: {message}")]
    Invalid { object: ObjectRef, message: String },
    #[error("API server unavailable: {0}")]
    Transient(String),
    /// 403: the operator's ServiceAccount lacks the permission (RBAC). Retrying cannot help until someone grants
    /// it, and nothing about the object is wrong: the message names the permission, as the API server words it.
    #[error("forbidden: {message}")]
    Forbidden { object: ObjectRef, message: String },
}

impl ClusterError {
    /// Whether retrying the same call later may succeed without anyone changing anything.
    pub fn is_transient(&self) -> bool {
        matches!(self, ClusterError::Transient(_))
    }
}

/// Turns `NotFound` into `None`, for reads where absence is an answer.
pub trait OptionalExt<T> {
    fn optional(self) -> Result<Option<T>, ClusterError>;
}

impl<T> OptionalExt<T> for Result<T, ClusterError> {
    fn optional(self) -> Result<Option<T>, ClusterError> {
        match self {
            Ok(value) => Ok(Some(value)),
            Err(ClusterError::NotFound(_)) => Ok(None),
            Err(other) => Err(other),
        }
    }
}

/// Normal or Warning, as Kubernetes Events are typed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum EventType {
    Normal,
    Warning,
}

/// A Kubernetes Event: something an operator of the cluster should be able to read with `kubectl describe`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Event {
    pub regarding: ObjectRef,
    pub type_: EventType,
    /// CamelCase, machine-readable (`RolloutStarted`).
    pub reason: String,
    pub message: String,
    /// The identity of the transition the event reports. A keyed event is recorded at most once per object: its
    /// name derives from the key, and a second emission is refused as AlreadyExists (delivered already).
    pub key: Option<String>,
}

impl Event {
    pub fn normal(regarding: ObjectRef, reason: &str, message: impl Into<String>) -> Self {
        Event { regarding, type_: EventType::Normal, reason: reason.into(), message: message.into(), key: None }
    }

    pub fn warning(regarding: ObjectRef, reason: &str, message: impl Into<String>) -> Self {
        Event { regarding, type_: EventType::Warning, reason: reason.into(), message: message.into(), key: None }
    }

    /// The same event, recorded once per `key`.
    pub fn keyed(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }
}

/// Creates `object` unless one of its name exists already (created by an earlier, interrupted run).
pub async fn create_if_missing<C: Cluster, K: ClusterObject>(cluster: &C, object: &K) -> Result<(), ClusterError> {
    match cluster.create(object).await {
        Ok(_) | Err(ClusterError::AlreadyExists(_)) => Ok(()),
        Err(other) => Err(other),
    }
}

/// Deletes the object unless it is gone already.
pub async fn delete_if_present<C: Cluster, K: ClusterObject>(
    cluster: &C,
    namespace: &str,
    name: &str,
) -> Result<(), ClusterError> {
    match cluster.delete::<K>(namespace, name).await {
        Ok(()) | Err(ClusterError::NotFound(_)) => Ok(()),
        Err(other) => Err(other),
    }
}

/// Who holds the name of a child the operator wants to create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChildHolder {
    /// The owner's own object (created now or by an earlier, interrupted run), or an orphan it just adopted.
    Owner,
    /// An object controlled by another uid — a deleted predecessor of the same name, whose dependents the garbage
    /// collector has yet to remove — or one being deleted: wait for it to go.
    Predecessor { object: ObjectRef, controller_uid: Option<String> },
    /// An object the owner cannot claim: no controller and not carrying the owner's labels. Reported, never used.
    Stranger { object: ObjectRef },
}

/// What to do about an existing object of a child's name — a pure decision over the two objects' metadata.
/// Mirrors Kubernetes' `ControllerRefManager` (kubernetes/kubernetes `pkg/controller/controller_ref_manager.go`):
/// an object controlled by someone else is not ours; an orphan that matches is adopted, unless it is being
/// deleted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExistingChild {
    Ours,
    Adopt,
    Wait { controller_uid: Option<String> },
    Foreign,
}

/// Classifies `existing` against the child the owner `desired` describes (its controller reference and labels).
pub fn classify_existing(
    existing: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    desired: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> ExistingChild {
    let wanted_uid = crate::objects::meta::controller_of(desired).map(|r| r.uid.as_str());
    let controller_uid = crate::objects::meta::controller_of(existing).map(|r| r.uid.clone());
    if existing.deletion_timestamp.is_some() {
        return ExistingChild::Wait { controller_uid };
    }
    match (controller_uid, wanted_uid) {
        (Some(uid), Some(wanted)) if uid == wanted => ExistingChild::Ours,
        (Some(uid), _) => ExistingChild::Wait { controller_uid: Some(uid) },
        (None, _) => {
            let labels = desired.labels.clone().unwrap_or_default();
            if !labels.is_empty() && crate::objects::meta::matches_selector(existing.labels.as_ref(), &labels) {
                ExistingChild::Adopt
            } else {
                ExistingChild::Foreign
            }
        }
    }
}

/// The kinds whose orphans [`ensure_child`] adopts, as (API group, plural resource). Adopting rewrites an
/// object's `ownerReferences`, which the API server's OwnerReferencesPermissionEnforcement admission plugin
/// (kubernetes/kubernetes `plugin/pkg/admission/gc/gc_admission.go`) allows only to a client that may *delete*
/// the object — and the operator's ClusterRole grants no delete on StatefulSets or PersistentVolumeClaims, nor
/// update on Jobs. An orphan of another kind (left by `kubectl delete --cascade=orphan`) is a stranger: reported,
/// never touched. `sim/tests/authorization.rs` checks that `deploy/` grants update and delete on each kind here.
pub const ADOPTABLE: &[(&str, &str)] = &[("", "services")];

/// Creates the child `object` (which carries its owner's controller reference) unless its name is taken, and
/// says who holds the name. AlreadyExists is success only when the existing object is the owner's: a SeiNode
/// deleted and made again must never act on its dying predecessor's objects. An orphan carrying the child's
/// labels is adopted (its owner references set to the desired ones) when its kind is [`ADOPTABLE`].
pub async fn ensure_child<C: Cluster, K: ClusterObject>(cluster: &C, object: &K) -> Result<ChildHolder, ClusterError> {
    let meta = object.meta();
    let namespace = meta.namespace.clone().unwrap_or_default();
    let name = meta.name.clone().unwrap_or_default();
    match cluster.create(object).await {
        Ok(_) => return Ok(ChildHolder::Owner),
        Err(ClusterError::AlreadyExists(_)) => {}
        Err(other) => return Err(other),
    }
    let existing = match cluster.get::<K>(&namespace, &name).await.optional()? {
        Some(existing) => existing,
        // Gone between the create and the read: created at the next attempt.
        None => {
            return Ok(ChildHolder::Predecessor {
                object: ObjectRef::of::<K>(&namespace, &name),
                controller_uid: None,
            });
        }
    };
    let object_ref = ObjectRef::to(&existing);
    Ok(match classify_existing(existing.meta(), meta) {
        ExistingChild::Ours => ChildHolder::Owner,
        ExistingChild::Adopt if !ADOPTABLE.contains(&(&*K::group(&()), &*K::plural(&()))) => {
            ChildHolder::Stranger { object: object_ref }
        }
        ExistingChild::Adopt => {
            let mut adopted = existing;
            adopted.meta_mut().owner_references = meta.owner_references.clone();
            cluster.replace(&adopted).await?;
            ChildHolder::Owner
        }
        ExistingChild::Wait { controller_uid } => ChildHolder::Predecessor { object: object_ref, controller_uid },
        ExistingChild::Foreign => ChildHolder::Stranger { object: object_ref },
    })
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};

    use super::*;

    fn meta(controller: Option<&str>, labels: &[(&str, &str)]) -> ObjectMeta {
        ObjectMeta {
            name: Some("explorer".into()),
            labels: Some(labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()),
            owner_references: controller.map(|uid| {
                vec![OwnerReference {
                    api_version: "sei.io/v1alpha1".into(),
                    kind: "SeiNode".into(),
                    name: "explorer".into(),
                    uid: uid.into(),
                    controller: Some(true),
                    block_owner_deletion: Some(true),
                }]
            }),
            ..Default::default()
        }
    }

    #[test]
    fn an_existing_child_is_ours_only_by_uid_an_orphan_with_our_labels_is_adopted_else_waited_for_or_foreign() {
        let desired = meta(Some("new"), &[("sei.io/node", "explorer")]);
        assert_eq!(classify_existing(&meta(Some("new"), &[]), &desired), ExistingChild::Ours);
        assert_eq!(
            classify_existing(&meta(Some("old"), &[("sei.io/node", "explorer")]), &desired),
            ExistingChild::Wait { controller_uid: Some("old".into()) },
            "a predecessor's child, of the same name and labels, is not ours"
        );
        assert_eq!(classify_existing(&meta(None, &[("sei.io/node", "explorer")]), &desired), ExistingChild::Adopt);
        assert_eq!(classify_existing(&meta(None, &[("app", "other")]), &desired), ExistingChild::Foreign);
        let mut dying = meta(None, &[("sei.io/node", "explorer")]);
        dying.deletion_timestamp = Some(Time(crate::clock::Timestamp::UNIX_EPOCH));
        assert_eq!(classify_existing(&dying, &desired), ExistingChild::Wait { controller_uid: None });
    }
}
