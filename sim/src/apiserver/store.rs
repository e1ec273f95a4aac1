//! The fake API server's storage: every object as JSON, one global resourceVersion counter, optimistic
//! concurrency, status-subresource semantics, finalizers and graceful deletion, owner-reference garbage
//! collection, an append-only change log that watches read, and per-key history so that a lagging client can
//! read the store as it was a few versions ago.
//!
//! Objects are kept as `serde_json::Value` so one store serves every kind; typed access lives in
//! [`crate::operator_host::cluster`]. Each stored version is one shared allocation (`Arc`): the live map, its
//! hashed index and the history of a key hold the same value rather than deep copies of it. A status write moves
//! the stored object into its new version and keeps, for lagging readers, only what it replaced (the status and
//! the resourceVersion): copying the rest of every version (a Pod's or a StatefulSet's spec) and freeing it again
//! was a fifth of the cost of a write.

use std::cell::OnceCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use foldhash::fast::FixedState;

use crate::apiserver::decoded::DecodedObjects;
use crate::apiserver::json::Fields;
use sei_operator_core::api::Time;
use sei_operator_core::clock::Timestamp;
use sei_operator_core::cluster::{ClusterError, LabelSelector, ObjectRef};
use sei_operator_core::manifest::{ManifestError, ManifestValidator};
use sei_operator_core::objects::meta::matches_selector;
use serde_json::{Map, Value};

/// What happened to an object, as a watch reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ChangeType {
    Added,
    Modified,
    Deleted,
}

/// One entry of the change log: the store's resourceVersion after the change, and the object it touched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub version: u64,
    pub change: ChangeType,
    pub object: ObjectRef,
    /// The object's controller owner (kind, name), so a watcher can enqueue the owner without a read.
    pub controller: Option<(String, String)>,
    /// What the operator's watches fingerprint of the object as this change left it.
    pub fingerprints: TriggerFingerprints,
}

/// The fingerprints the operator's trigger rules (`sei_operator_core::controller::triggers`) take of an object
/// version, computed when it is stored: an event is delivered later (a lagging cache holds it back), yet must be
/// judged by the object as it was then, and the log keeps no values. `None`: the event always wakes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TriggerFingerprints {
    /// For the controller of the object's own kind.
    pub itself: Option<u64>,
    /// For the controller of its controller owner's kind.
    pub owner: Option<u64>,
}

impl TriggerFingerprints {
    fn of(key: &ObjectRef, value: &Value, decoded: &DecodedObjects) -> Self {
        use sei_operator_core::controller::triggers::{
            deployment_wakes_for_child, deployment_wakes_itself, node_wakes_itself,
        };
        if key.kind == "SeiNodeDeployment" {
            return match decoded.decode::<sei_operator_core::api::SeiNodeDeployment>(key, value) {
                Ok(deployment) => TriggerFingerprints { itself: deployment_wakes_itself(&deployment), owner: None },
                Err(_) => TriggerFingerprints::default(),
            };
        }
        if key.kind != "SeiNode" {
            return TriggerFingerprints::default();
        }
        // An object the operator cannot decode is always delivered, as production's watch would error on it.
        match decoded.decode::<sei_operator_core::api::SeiNode>(key, value) {
            Ok(node) => {
                TriggerFingerprints { itself: node_wakes_itself(&node), owner: deployment_wakes_for_child(&node) }
            }
            Err(_) => TriggerFingerprints::default(),
        }
    }
}

/// A watch stream on the store: each poll returns the changes since the previous one, in order (a watch resumed
/// from its last resourceVersion, which never misses a change).
#[derive(Clone, Debug, Default)]
pub struct Watch {
    cursor: usize,
}

impl Watch {
    /// A watch that sees only changes made from now on.
    pub fn from_now(store: &Store) -> Self {
        Watch { cursor: store.log.len() }
    }

    /// A watch from a cache at `version`: changes after it are still to come (an informer's initial list is
    /// its cache, so what the cache does not hold yet arrives as events).
    pub fn from_version(store: &Store, version: u64) -> Self {
        Watch { cursor: store.log.partition_point(|change| change.version <= version) }
    }

    /// The changes since the last poll.
    pub fn poll<'a>(&mut self, store: &'a Store) -> &'a [Change] {
        let changes = store.log.get(self.cursor..).unwrap_or(&[]);
        self.cursor = store.log.len();
        changes
    }
}

/// The kinds the operator's CRDs define: writes to them are admitted against the generated schema.
const ADMITTED_KINDS: [&str; 2] = ["SeiNode", "SeiNodeDeployment"];

/// One version of an object: the store's resourceVersion after a change, and the object then.
type Version = (u64, Kept);

/// What the history keeps of one version of an object.
#[derive(Debug)]
enum Kept {
    /// The whole value (the newest version shares it with the live maps).
    Whole(Arc<Value>),
    /// A version a status write replaced: the same object as the next version but for its resourceVersion and its
    /// status (a status write changes nothing else: [`Store::replace_status`]). Rebuilt from the next version the
    /// first time a lagging reader asks for it.
    BeforeStatusWrite {
        resource_version: String,
        status: Option<Value>,
        rebuilt: OnceCell<Value>,
    },
    Deleted,
}

/// The API server's storage.
pub struct Store {
    /// Sorted as the API server lists (by kind, namespace, name): lists and scans by kind are ranges of it.
    objects: BTreeMap<ObjectRef, Arc<Value>>,
    /// The same objects hashed (fixed seed, never iterated), for the reads and writes of one key: a lookup in
    /// the sorted map compares kind, namespace and name at each of its levels.
    by_key: HashMap<ObjectRef, Arc<Value>, FixedState>,
    /// Per key, `(version, value after the change)` for the versions a lagging reader may still ask for.
    history: BTreeMap<ObjectRef, Vec<Version>>,
    version: u64,
    next_uid: u64,
    log: Vec<Change>,
    /// How many versions behind the most lagging reader may read; history older than that is dropped.
    max_lag: u64,
    validator: Option<Arc<ManifestValidator>>,
    /// Set when an object disappeared, so the garbage collector only scans when it may find something.
    gc_pending: bool,
    /// The world's decoded objects (see [`DecodedObjects`]): the custom resources committed are decoded into it.
    decoded: DecodedObjects,
}

impl Store {
    /// An empty store. `validator` admits SeiNode / SeiNodeDeployment writes as the CRD would.
    pub fn new(validator: Option<Arc<ManifestValidator>>) -> Self {
        Store {
            objects: BTreeMap::new(),
            by_key: HashMap::default(),
            history: BTreeMap::new(),
            version: 0,
            next_uid: 0,
            log: Vec::new(),
            max_lag: 0,
            validator,
            gc_pending: false,
            decoded: DecodedObjects::default(),
        }
    }

    /// The world's decoded objects: a stored value at a version once decoded, by anyone, is not decoded again.
    pub fn decoded(&self) -> &DecodedObjects {
        &self.decoded
    }

    /// The current resourceVersion of the whole store.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// How many versions behind the store a reader may read.
    pub fn max_lag(&self) -> u64 {
        self.max_lag
    }

    /// Lets readers lag up to `lag` versions behind (history is kept that far back).
    pub fn allow_lag(&mut self, lag: u64) {
        self.max_lag = self.max_lag.max(lag);
    }

    /// The change log from position `cursor` on (a cursor is an index into the log, not a version).
    pub fn changes_since(&self, cursor: usize) -> &[Change] {
        self.log.get(cursor..).unwrap_or(&[])
    }

    /// The log's length: the cursor a new watcher starts from.
    pub fn log_len(&self) -> usize {
        self.log.len()
    }

    /// Reads one object, as of `at` (a past version) or now.
    pub fn get(&self, key: &ObjectRef, at: Option<u64>) -> Option<&Value> {
        match at {
            Some(version) if version < self.version => self.value_at(key, version),
            _ => self.by_key.get(key).map(|value| &**value),
        }
    }

    fn value_at(&self, key: &ObjectRef, version: u64) -> Option<&Value> {
        let entries = self.history.get(key)?;
        // The newest change at or before `version`; none means the object did not exist yet.
        let index = entries.partition_point(|(v, _)| *v <= version).checked_sub(1)?;
        match &entries.get(index)?.1 {
            Kept::Whole(value) => Some(value),
            Kept::Deleted => None,
            Kept::BeforeStatusWrite { resource_version, status, rebuilt } => Some(rebuilt.get_or_init(|| {
                // Every version from here to the next whole one differs from it only in status and version.
                let whole = entries
                    .iter()
                    .skip(index)
                    .find_map(|(_, kept)| match kept {
                        Kept::BeforeStatusWrite { .. } => None,
                        Kept::Whole(value) => Some(Some(&**value)),
                        Kept::Deleted => Some(None),
                    })
                    .flatten();
                let mut object = whole.map(without_status).unwrap_or_default();
                if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
                    meta.insert("resourceVersion".into(), resource_version.as_str().into());
                }
                if let Some(status) = status {
                    object.insert("status".into(), status.clone());
                }
                Value::Object(object)
            })),
        }
    }

    /// Objects of `kind` in `namespace` whose labels match `selector`, sorted by name, as of `at` or now.
    pub fn list(&self, kind: &str, namespace: &str, selector: &LabelSelector, at: Option<u64>) -> Vec<&Value> {
        let from = ObjectRef::new(kind, namespace, "");
        let in_scope = |key: &&ObjectRef| key.kind == kind && key.namespace == namespace;
        let matches = |value: &Value| {
            let labels = value
                .metadata_field("labels")
                .and_then(Value::as_object)
                .map(|labels| labels.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned()))).collect());
            matches_selector(labels.as_ref(), selector)
        };
        match at {
            Some(version) if version < self.version => self
                .history
                .range(from..)
                .map(|(key, _)| key)
                .take_while(in_scope)
                .filter_map(|key| self.value_at(key, version))
                .filter(|value| matches(value))
                .collect(),
            _ => self
                .objects
                .range(from..)
                .take_while(|(key, _)| in_scope(key))
                .map(|(_, value)| &**value)
                .filter(|value| matches(value))
                .collect(),
        }
    }

    /// The sequence number of the last uid assigned: every object created later has a higher one.
    pub fn last_uid(&self) -> u64 {
        self.next_uid
    }

    /// Every stored object of `kind`, in every namespace, sorted by (namespace, name). Keys sort by kind first,
    /// so the objects of a kind are one contiguous range of the map: no scan over the other kinds.
    pub fn all_of_kind<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = (&'a ObjectRef, &'a Value)> + 'a {
        self.objects
            .range(ObjectRef::new(kind, "", "")..)
            .take_while(move |(key, _)| key.kind == kind)
            .map(|(key, value)| (key, &**value))
    }

    /// Creates an object. Status is dropped, as the API server's create strategies (and CRDs with a status
    /// subresource) do; uid, creationTimestamp, generation 1 and a resourceVersion are assigned.
    pub fn create(&mut self, mut value: Value, now: Timestamp) -> Result<Arc<Value>, ClusterError> {
        let key = key_of(&value)?;
        self.admit(&key, None, &value)?;
        if self.by_key.contains_key(&key) {
            return Err(ClusterError::AlreadyExists(key));
        }
        // As the API server does: an object to create must not claim a version (it was read, not made).
        if value.metadata_field("resourceVersion").is_some_and(|v| !v.is_null()) {
            return Err(ClusterError::Invalid {
                object: key,
                message: "metadata.resourceVersion: Invalid value: must not be set on create".into(),
            });
        }
        self.next_uid += 1;
        let uid = format!("00000000-0000-4000-8000-{:012x}", self.next_uid);
        let object = as_object(&mut value, &key)?;
        object.remove("status");
        let meta = metadata(object, &key)?;
        meta.insert("uid".into(), uid.into());
        meta.insert("creationTimestamp".into(), time_value(now));
        meta.insert("generation".into(), 1.into());
        meta.remove("deletionTimestamp");
        self.commit(key, Some(value), ChangeType::Added)
    }

    /// Replaces metadata and spec (everything but status) under optimistic concurrency. `generation` moves only
    /// when something outside metadata and status changed; an update that changes nothing is a no-op that keeps
    /// the resourceVersion and sends no watch event, as on a real API server.
    pub fn replace(&mut self, value: Value) -> Result<Arc<Value>, ClusterError> {
        let key = key_of(&value)?;
        // Borrowed, not copied: everything needed from the stored object is read before the commit.
        let stored = self.check_version(&key, &value)?;
        let mut merged = value;
        let object = as_object(&mut merged, &key)?;
        match stored.get("status") {
            Some(status) => object.insert("status".into(), status.clone()),
            None => object.remove("status"),
        };
        let meta = metadata(object, &key)?;
        // Fields the server owns: a client cannot change them with an update.
        for field in ["uid", "creationTimestamp", "deletionTimestamp", "generation"] {
            match stored.at(&format!("/metadata/{field}")) {
                Some(v) => meta.insert(field.into(), v.clone()),
                None => meta.remove(field),
            };
        }
        if !equal_except(stored, &merged, &["metadata", "status"]) {
            let generation = stored.metadata_field("generation").and_then(Value::as_i64).unwrap_or(0);
            if let Some(meta) = merged.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.insert("generation".into(), (generation + 1).into());
            }
        }
        self.admit(&key, Some(stored), &merged)?;
        if merged == *stored {
            // Equal to the stored object: returning it or the merged value is the same.
            return Ok(Arc::new(merged));
        }
        // As the API server does: an object being deleted may lose finalizers, never gain one.
        if is_deleting(stored) && finalizers(&merged).iter().any(|f| !finalizers(stored).contains(f)) {
            return Err(ClusterError::Invalid {
                object: key,
                message:
                    "metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted"
                        .into(),
            });
        }
        // Removing the last finalizer of an object being deleted completes its deletion — but a pod's only
        // once its kubelet has stopped it too ([`Store::remove_terminated_pod`]).
        if is_deleting(&merged) && finalizers(&merged).is_empty() && key.kind != "Pod" {
            return self.commit(key, None, ChangeType::Deleted).map(|_| Arc::new(merged));
        }
        self.commit(key, Some(merged), ChangeType::Modified)
    }

    /// Replaces the status subresource only: everything else in `value` is ignored, generation never moves —
    /// the stored object with the request's status (kubernetes
    /// `staging/src/k8s.io/apiextensions-apiserver/pkg/registry/customresource/status_strategy.go`,
    /// `PrepareForUpdate`: "update is only allowed to set status"; managedFields, which this store does not keep,
    /// are the request's there).
    pub fn replace_status(&mut self, value: Value) -> Result<Arc<Value>, ClusterError> {
        let key = key_of(&value)?;
        let stored = self.check_version(&key, &value)?;
        if !stored.is_object() {
            return Err(ClusterError::Invalid { object: key, message: "not a JSON object".into() });
        }
        let mut value = value;
        let written = as_object(&mut value, &key)?;
        let status = written.remove("status").filter(|status| !status.is_null());
        // Everything but the status is the stored object's own: an unchanged status is the stored object (which
        // is admitted as the written one would be: they are equal), and nothing is written.
        if status.as_ref() == stored.get("status") {
            self.admit(&key, Some(stored), stored)?;
            return self.by_key.get(&key).cloned().ok_or(ClusterError::NotFound(key));
        }
        match self.take_stored(&key) {
            Some((object, in_history)) => self.write_status_over(key, object, status, in_history),
            None => self.write_status_over_shared(key, status),
        }
    }

    /// The stored value of `key`, taken out of the live maps (and out of the history's newest entry, when it is
    /// that entry: the flag says so) to be written over in place — when nothing else holds it. `None` (a reader
    /// holds a clone of it) leaves everything as it was.
    fn take_stored(&mut self, key: &ObjectRef) -> Option<(Value, bool)> {
        let live = self.by_key.get(key)?;
        let newest_kept = self.history.get(key).and_then(|entries| entries.last());
        let in_history = matches!(newest_kept, Some((_, Kept::Whole(kept))) if Arc::ptr_eq(kept, live));
        // The live map, its index and the history: no other holder.
        if Arc::strong_count(live) != 2 + usize::from(in_history) {
            return None;
        }
        let vacant = || Arc::new(Value::Null);
        let live = std::mem::replace(self.by_key.get_mut(key)?, vacant());
        if let Some(listed) = self.objects.get_mut(key) {
            *listed = vacant();
        }
        if in_history && let Some((_, kept)) = self.history.get_mut(key).and_then(|entries| entries.last_mut()) {
            *kept = Kept::Deleted;
        }
        match Arc::try_unwrap(live) {
            Ok(value) => Some((value, in_history)),
            // Not reached (the count above was the holders'); put back as it was.
            Err(live) => {
                self.put_back(key, live, in_history);
                None
            }
        }
    }

    /// Returns a value [`Store::take_stored`] took to the places it took it from.
    fn put_back(&mut self, key: &ObjectRef, value: Arc<Value>, in_history: bool) {
        if in_history && let Some((_, kept)) = self.history.get_mut(key).and_then(|entries| entries.last_mut()) {
            *kept = Kept::Whole(value.clone());
        }
        if let Some(listed) = self.objects.get_mut(key) {
            *listed = value.clone();
        }
        if let Some(live) = self.by_key.get_mut(key) {
            *live = value;
        }
    }

    /// A status write over the stored `object`, owned: its status is swapped for the written one in place, and
    /// the history keeps of the version replaced only its status and resourceVersion ([`Kept::BeforeStatusWrite`]).
    fn write_status_over(
        &mut self,
        key: ObjectRef,
        mut object: Value,
        status: Option<Value>,
        in_history: bool,
    ) -> Result<Arc<Value>, ClusterError> {
        let swap_status = |object: &mut Value, status: Option<Value>| {
            let fields = object.as_object_mut()?;
            let before = fields.remove("status");
            if let Some(status) = status {
                fields.insert("status".into(), status);
            }
            before
        };
        let before = swap_status(&mut object, status);
        // The object before the write differs from this one only in its status, and admission reads of the object
        // before a status write only what the two share (its kind, name and spec: ratcheting, and the built-in
        // kinds' immutable fields), so this one stands for both.
        if let Err(refused) = self.admit(&key, Some(&object), &object) {
            swap_status(&mut object, before);
            self.put_back(&key, Arc::new(object), in_history);
            return Err(refused);
        }
        let replaced = object.metadata_field("resourceVersion").and_then(Value::as_str).unwrap_or_default().to_owned();
        if in_history && let Some((_, kept)) = self.history.get_mut(&key).and_then(|entries| entries.last_mut()) {
            *kept = Kept::BeforeStatusWrite {
                resource_version: replaced.clone(),
                status: before,
                rebuilt: OnceCell::new(),
            };
        }
        self.commit_write(key, Some(object), ChangeType::Modified, Some(&replaced))
    }

    /// A status write over a stored object a reader still holds: the new version is a copy of the stored
    /// object's rest with the written status.
    fn write_status_over_shared(&mut self, key: ObjectRef, status: Option<Value>) -> Result<Arc<Value>, ClusterError> {
        let stored = self.by_key.get(&key).ok_or_else(|| ClusterError::NotFound(key.clone()))?;
        let mut object = without_status(stored);
        if let Some(status) = status {
            object.insert("status".into(), status);
        }
        let merged = Value::Object(object);
        self.admit(&key, Some(stored), &merged)?;
        let replaced = stored.metadata_field("resourceVersion").and_then(Value::as_str).map(str::to_owned);
        self.commit_write(key, Some(merged), ChangeType::Modified, replaced.as_deref())
    }

    /// Deletes an object gracefully: with finalizers it only gets a deletionTimestamp (once); without, it is
    /// removed. A Pod is always deleted gracefully: it turns Terminating and stays until its kubelet has stopped
    /// its containers ([`Store::remove_terminated_pod`]) — on a dead node, it stays. Dependents are left to
    /// [`Store::collect_garbage`], as the real garbage collector runs apart.
    pub fn delete(&mut self, key: &ObjectRef, now: Timestamp) -> Result<(), ClusterError> {
        let stored = self.by_key.get(key).ok_or_else(|| ClusterError::NotFound(key.clone()))?;
        let graceful = key.kind == "Pod";
        if finalizers(stored).is_empty() && !graceful {
            return self.commit(key.clone(), None, ChangeType::Deleted).map(|_| ());
        }
        if is_deleting(stored) {
            return Ok(());
        }
        let mut marked = Value::clone(stored);
        if let Some(meta) = marked.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert("deletionTimestamp".into(), time_value(now));
            // The first deletionTimestamp bumps a generation in use, for every kind: kubernetes
            // `staging/src/k8s.io/apiserver/pkg/registry/rest/delete.go` (`BeforeDelete`, graceful deletion) and
            // `pkg/registry/generic/registry/store.go` (`markAsDeleting`, finalizers).
            if let Some(generation) = meta.get("generation").and_then(Value::as_i64).filter(|g| *g > 0) {
                meta.insert("generation".into(), (generation + 1).into());
            }
            // A pod's default terminationGracePeriodSeconds.
            meta.insert("deletionGracePeriodSeconds".into(), (if graceful { 30 } else { 0 }).into());
        }
        self.commit(key.clone(), Some(marked), ChangeType::Modified).map(|_| ())
    }

    /// The kubelet's final delete of a Terminating pod whose containers have stopped (it waits for the pod's
    /// own finalizers, if any).
    pub fn remove_terminated_pod(&mut self, key: &ObjectRef) -> Result<(), ClusterError> {
        let stored = self.by_key.get(key).ok_or_else(|| ClusterError::NotFound(key.clone()))?;
        if !is_deleting(stored) || !finalizers(stored).is_empty() {
            return Ok(());
        }
        self.commit(key.clone(), None, ChangeType::Deleted).map(|_| ())
    }

    /// Whether some object not yet being deleted has owners, all gone: garbage the collector has yet to take.
    pub fn has_garbage(&self) -> bool {
        let uids: BTreeSet<&str> =
            self.objects.values().filter_map(|v| v.metadata_field("uid").and_then(Value::as_str)).collect();
        self.objects.values().filter(|value| !is_deleting(value)).any(|value| {
            let owners = owner_uids(value);
            !owners.is_empty() && owners.iter().all(|uid| !uids.contains(uid.as_str()))
        })
    }

    /// Owner-reference garbage collection (background propagation): deletes every object all of whose owners
    /// are gone. Like Kubernetes' garbage collector, an object with several owners survives while any one
    /// remains. Returns what it deleted (or marked for deletion).
    pub fn collect_garbage(&mut self, now: Timestamp) -> Vec<ObjectRef> {
        let mut collected = Vec::new();
        while std::mem::take(&mut self.gc_pending) {
            let uids: BTreeSet<&str> =
                self.objects.values().filter_map(|v| v.metadata_field("uid").and_then(Value::as_str)).collect();
            let orphans: Vec<ObjectRef> = self
                .objects
                .iter()
                .filter(|(_, value)| !is_deleting(value))
                .filter(|(_, value)| {
                    let owners = owner_uids(value);
                    !owners.is_empty() && owners.iter().all(|uid| !uids.contains(uid.as_str()))
                })
                .map(|(key, _)| key.clone())
                .collect();
            for key in orphans {
                if self.delete(&key, now).is_ok() {
                    collected.push(key);
                }
            }
        }
        collected
    }

    fn check_version(&self, key: &ObjectRef, value: &Value) -> Result<&Value, ClusterError> {
        let stored = self.by_key.get(key).ok_or_else(|| ClusterError::NotFound(key.clone()))?;
        // The operator's contract forbids unconditional updates (a real API server would accept one for most
        // kinds): a write without the version it read is refused rather than silently overwriting.
        let Some(version) = value.metadata_field("resourceVersion").and_then(Value::as_str) else {
            return Err(ClusterError::Invalid {
                object: key.clone(),
                message: "metadata.resourceVersion: Required value: an update must carry the version it read".into(),
            });
        };
        if stored.metadata_field("resourceVersion").and_then(Value::as_str) != Some(version) {
            return Err(ClusterError::Conflict(key.clone()));
        }
        Ok(stored)
    }

    /// Admits a create (`stored` is `None`) or an update of `stored` as the API server does: a custom resource by
    /// its CRD's schema and CEL rules, never decoded into the operator's types ([`ManifestValidator::check`]), an
    /// update ratcheted against the stored object ([`ManifestValidator::check_update`]).
    fn admit(&self, key: &ObjectRef, stored: Option<&Value>, value: &Value) -> Result<(), ClusterError> {
        // The built-in kinds' own validation (names, immutable fields): see `crate::apiserver::validation`.
        crate::apiserver::validation::validate(&key.kind, stored, value)
            .map_err(|message| ClusterError::Invalid { object: key.clone(), message })?;
        let Some(validator) = self.validator.as_ref().filter(|_| ADMITTED_KINDS.contains(&key.kind.as_str())) else {
            return Ok(());
        };
        let admitted = match stored {
            Some(stored) => validator.check_update(stored, value),
            None => validator.check(value),
        };
        admitted.map_err(|error| ClusterError::Invalid {
            object: key.clone(),
            message: match error {
                ManifestError::Invalid { violations, .. } => {
                    violations.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
                }
                other => other.to_string(),
            },
        })
    }

    /// Stores the new state of `key` under the next resourceVersion and logs the change. Returns the stored
    /// value itself (shared, not copied: most writers only read its resourceVersion).
    fn commit(&mut self, key: ObjectRef, value: Option<Value>, change: ChangeType) -> Result<Arc<Value>, ClusterError> {
        self.commit_write(key, value, change, None)
    }

    /// [`Store::commit`]; for a status write over the value at resourceVersion `status_write_over`, the decoded
    /// object is carried over to the new version (`DecodedObjects::carry_over_status_write`) before the trigger
    /// fingerprints read it, so they do not decode the whole object again.
    fn commit_write(
        &mut self,
        key: ObjectRef,
        value: Option<Value>,
        change: ChangeType,
        status_write_over: Option<&str>,
    ) -> Result<Arc<Value>, ClusterError> {
        self.version += 1;
        let version = self.version;
        let (controller, fingerprints, result) = match value {
            Some(mut value) => {
                if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) {
                    meta.insert("resourceVersion".into(), version.to_string().into());
                }
                let controller = controller_of(&value);
                // An object written with an owner already gone is garbage too (Kubernetes' collector checks
                // owners of every dependent it learns of, not only when an owner is deleted).
                if change == ChangeType::Added && !owner_uids(&value).is_empty() {
                    self.gc_pending = true;
                }
                if let Some(replaced) = status_write_over {
                    self.decoded.carry_over_status_write(&key, replaced, &value);
                }
                let fingerprints = TriggerFingerprints::of(&key, &value, &self.decoded);
                let shared = Arc::new(value);
                // An existing key's slots are overwritten in place: the key is cloned only for a new object.
                match self.by_key.get_mut(&key) {
                    Some(live) => *live = shared.clone(),
                    None => {
                        self.by_key.insert(key.clone(), shared.clone());
                    }
                }
                match self.objects.get_mut(&key) {
                    Some(listed) => *listed = shared.clone(),
                    None => {
                        self.objects.insert(key.clone(), shared.clone());
                    }
                }
                self.record_history(&key, version, Some(shared.clone()));
                (controller, fingerprints, shared)
            }
            None => {
                self.by_key.remove(&key);
                let removed = self.objects.remove(&key).unwrap_or_else(|| Arc::new(Value::Null));
                self.gc_pending = true;
                self.record_history(&key, version, None);
                // A deletion always wakes: its fingerprints are not consulted.
                (controller_of(&removed), TriggerFingerprints::default(), removed)
            }
        };
        self.log.push(Change { version, change, object: key, controller, fingerprints });
        Ok(result)
    }

    fn record_history(&mut self, key: &ObjectRef, version: u64, value: Option<Arc<Value>>) {
        if self.max_lag == 0 {
            return;
        }
        let oldest_readable = version.saturating_sub(self.max_lag);
        let entries = match self.history.get_mut(key) {
            Some(entries) => entries,
            None => self.history.entry(key.clone()).or_default(),
        };
        entries.push((version, value.map_or(Kept::Deleted, Kept::Whole)));
        // Keep the newest entry at or before the oldest readable version, and everything after it.
        let keep_from = entries.partition_point(|(v, _)| *v <= oldest_readable).saturating_sub(1);
        entries.drain(..keep_from);
    }
}

/// What a controller that has just read `stored` sends to write `status` through [`Store::replace_status`]: the
/// object's apiVersion, kind and metadata as read, and the status — not the spec, which every status strategy keeps
/// from the stored object. The metadata is sent as the kubelet and the controllers send it: the built-in kinds'
/// status strategies take the request's labels and annotations (kubernetes `pkg/registry/core/pod/strategy.go`,
/// `podStatusStrategy.PrepareForUpdate`, keeps only the spec, ownerReferences and deletionTimestamp;
/// `pkg/registry/apps/statefulset/strategy.go` only the spec). This store keeps all of the stored metadata, which
/// is the same outcome for a request that carries the stored metadata, as this one does.
pub fn status_update(stored: &Value, status: Value) -> Value {
    let mut update = Map::new();
    for field in ["apiVersion", "kind", "metadata"] {
        if let Some(value) = stored.get(field) {
            update.insert(field.into(), value.clone());
        }
    }
    update.insert("status".into(), status);
    Value::Object(update)
}

/// The key of an object value: kind, namespace and name, all required.
pub fn key_of(value: &Value) -> Result<ObjectRef, ClusterError> {
    let text = |field: Option<&Value>| field.and_then(Value::as_str).unwrap_or_default().to_owned();
    let key = ObjectRef::new(
        text(value.get("kind")),
        text(value.metadata_field("namespace")),
        text(value.metadata_field("name")),
    );
    if key.kind.is_empty() || key.namespace.is_empty() || key.name.is_empty() {
        return Err(ClusterError::Invalid {
            object: key,
            message: "kind, metadata.namespace and metadata.name are required".into(),
        });
    }
    Ok(key)
}

fn as_object<'a>(value: &'a mut Value, key: &ObjectRef) -> Result<&'a mut Map<String, Value>, ClusterError> {
    value
        .as_object_mut()
        .ok_or_else(|| ClusterError::Invalid { object: key.clone(), message: "not a JSON object".into() })
}

fn metadata<'a>(
    object: &'a mut Map<String, Value>,
    key: &ObjectRef,
) -> Result<&'a mut Map<String, Value>, ClusterError> {
    object
        .get_mut("metadata")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| ClusterError::Invalid { object: key.clone(), message: "metadata is required".into() })
}

/// Whether two objects are equal once `fields` are left out of both (a non-object counts as an empty object).
/// Maps iterate in key order, so comparing the filtered entries pairwise is map equality, without copying either.
fn equal_except(a: &Value, b: &Value, fields: &[&str]) -> bool {
    fn entries<'v>(value: &'v Value, fields: &[&str]) -> impl Iterator<Item = (&'v String, &'v Value)> {
        value.as_object().into_iter().flatten().filter(|(field, _)| !fields.contains(&field.as_str()))
    }
    entries(a, fields).eq(entries(b, fields))
}

/// A copy of an object's fields but its status (none if it is not an object).
fn without_status(object: &Value) -> Map<String, Value> {
    object
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(field, _)| field.as_str() != "status")
        .map(|(field, value)| (field.clone(), value.clone()))
        .collect()
}

/// A timestamp as the API server writes it (RFC 3339).
pub fn time_value(now: Timestamp) -> Value {
    serde_json::to_value(Time(now)).unwrap_or(Value::Null)
}

/// Whether the object has a deletionTimestamp.
pub fn is_deleting(value: &Value) -> bool {
    value.metadata_field("deletionTimestamp").is_some_and(|v| !v.is_null())
}

/// The object's finalizers.
pub fn finalizers(value: &Value) -> Vec<&str> {
    value
        .metadata_field("finalizers")
        .and_then(Value::as_array)
        .map(|list| list.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn owner_uids(value: &Value) -> Vec<String> {
    value
        .metadata_field("ownerReferences")
        .and_then(Value::as_array)
        .map(|refs| refs.iter().filter_map(|r| r.get("uid").and_then(Value::as_str).map(str::to_owned)).collect())
        .unwrap_or_default()
}

fn controller_of(value: &Value) -> Option<(String, String)> {
    let refs = value.metadata_field("ownerReferences").and_then(Value::as_array)?;
    let controller = refs.iter().find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))?;
    Some((controller.get("kind")?.as_str()?.to_owned(), controller.get("name")?.as_str()?.to_owned()))
}

#[cfg(test)]
mod tests;
