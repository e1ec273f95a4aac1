//! `SimCluster`: the [`Cluster`] trait on the fake API store. The operator's client carries the operator's
//! faults — injected Conflicts and transient errors, reads from a lagging cache, and a crash right after its
//! i-th write in a reconcile; the harness's client (tests, scenarios) has none. The operator's requests are
//! counted (`WorldState::api_requests`), but not the reads production's watch caches answer (`read_policy`).

use std::any::Any;
use std::sync::Arc;

use rand::Rng;
use sei_operator_core::api::{SeiNode, SeiNodeDeployment};
use sei_operator_core::api_retry::API_RETRY;
use sei_operator_core::cluster::{Cluster, ClusterError, ClusterObject, Event, LabelSelector, ObjectRef};
use sei_operator_core::permissions::Permission;
use sei_operator_core::read_policy;
use serde_json::Value;

use crate::apiserver::decoded::DecodedObjects;
use crate::apiserver::faults::RefusalStatus;
use crate::apiserver::json::Fields;
use crate::harness::state::{SharedWorld, WorldState, lock};
use crate::harness::trace::Category;

/// How long the store must be quiet before a lagging cache has caught up with it.
pub const STALE_CACHE_CATCH_UP: std::time::Duration = std::time::Duration::from_secs(2);

/// The version of the store the operator's cache holds, when it lags (`None`: it is up to date). The lag is in
/// versions, but a real informer cache lags the API server only by its event delivery: once the store has been
/// quiet for [`STALE_CACHE_CATCH_UP`] the cache holds the latest version. (Without this, a store whose only
/// writer is the operator — every write of it refused as stale — would stay behind forever: a livelock no real
/// cluster has.) The operator's watch delivers events only up to this version too: an informer's event *is* its
/// cache update, so a controller is never told of an object its cache does not hold yet.
pub fn operator_cache_version(world: &WorldState) -> Option<u64> {
    let lagging = world.operator.read_lag > 0 && world.now < world.api.changed_at + STALE_CACHE_CATCH_UP;
    lagging.then(|| {
        let lag = world.operator.read_lag.min(world.api.store.max_lag());
        // A cache never goes back in time: not behind what its watch already delivered.
        world.api.store.version().saturating_sub(lag).max(world.operator.cache_floor)
    })
}

/// Whose client this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientKind {
    /// The operator under test: faults apply.
    Operator,
    /// The test harness: reads and writes the store as it is.
    Harness,
}

#[derive(Clone)]
pub struct SimCluster {
    shared: SharedWorld,
    kind: ClientKind,
    /// The reconcile this client serves, for "crash after the i-th write in a reconcile".
    reconcile: Option<u64>,
    /// The kind of the object that reconcile is for.
    reconciling: Option<String>,
    /// The operator replica whose client this is (`crate::operator_host::replicas`; 0 in a world of one).
    replica: usize,
    /// The replica's lease loop: its writes count toward no reconcile's crash point.
    elector: bool,
    /// The world's decoded objects (the store's).
    decoded: DecodedObjects,
}

/// A read or a write, for fault injection.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Access {
    Read,
    Write,
}

impl SimCluster {
    pub fn new(shared: SharedWorld, kind: ClientKind) -> Self {
        let decoded = lock(&shared).api.store.decoded().clone();
        SimCluster { decoded, shared, kind, reconcile: None, reconciling: None, replica: 0, elector: false }
    }

    /// The same client, as operator replica `index`'s.
    pub fn for_replica(&self, index: usize) -> Self {
        SimCluster { replica: index, ..self.clone() }
    }

    /// The same client, as its replica's lease loop's.
    pub fn for_elector(&self) -> Self {
        SimCluster { elector: true, ..self.clone() }
    }

    /// In a world of replicas, after a call of one of them landed: a dead or deposed process gets no answer, and
    /// a paused one handles the answer only once it resumes, with whatever it believed before.
    async fn after_call(&self) {
        if self.kind != ClientKind::Operator || lock(&self.shared).replicas.list.is_empty() {
            return;
        }
        if crate::operator_host::replicas::dead(&lock(&self.shared), self.replica) {
            std::future::pending::<()>().await;
        }
        crate::operator_host::replicas::wait_while_paused(&self.shared, self.replica).await;
    }

    /// The same client, counting its writes as those of reconcile `id`, of an object of kind `kind`.
    pub fn for_reconcile(&self, id: u64, kind: &str) -> Self {
        SimCluster { reconcile: Some(id), reconciling: Some(kind.into()), ..self.clone() }
    }

    /// The reconcile this client writes for, as the write-time invariants see it (the operator's only).
    fn writer(&self) -> crate::harness::ledger::Writer<'_> {
        let reconcile = self.reconcile.zip(self.reconciling.as_deref()).filter(|_| self.kind == ClientKind::Operator);
        crate::harness::ledger::Writer { reconcile }
    }

    fn actor(&self) -> String {
        match self.kind {
            ClientKind::Operator => crate::operator_host::replicas::host_name(self.replica),
            ClientKind::Harness => "harness".into(),
        }
    }

    /// An injected failure for this call, if one is due.
    fn injected(&self, world: &mut WorldState, access: Access, key: &ObjectRef) -> Option<ClusterError> {
        if self.kind != ClientKind::Operator {
            return None;
        }
        if let Some(until) = world.replicas.get(self.replica).and_then(|r| r.api_unreachable_until)
            && world.now < until
        {
            return Some(ClusterError::Transient(format!("injected: {} cannot reach the API server", self.actor())));
        }
        let faults = &mut world.api.faults;
        if faults.transient > 0 {
            faults.transient -= 1;
            return Some(ClusterError::Transient("injected: API server unavailable".into()));
        }
        if access == Access::Write && faults.conflicts > 0 {
            faults.conflicts -= 1;
            return Some(ClusterError::Conflict(key.clone()));
        }
        let (transient_rate, conflict_rate) = (faults.transient_rate, faults.conflict_rate);
        if transient_rate > 0.0 && world.rng.random_bool(transient_rate.min(1.0)) {
            return Some(ClusterError::Transient("injected: API server unavailable".into()));
        }
        if access == Access::Write && conflict_rate > 0.0 && world.rng.random_bool(conflict_rate.min(1.0)) {
            return Some(ClusterError::Conflict(key.clone()));
        }
        None
    }

    /// The API server's authorization of one call of the operator (the harness is an administrator): a 403
    /// naming the permission when no RBAC rule in `deploy/` grants it. A 403 nobody provoked — the manifests
    /// lack a rule the operator's code needs — is a violation in its own right: on a cluster that call fails.
    fn authorize(&self, world: &mut WorldState, permission: Permission, key: &ObjectRef) -> Option<ClusterError> {
        if self.kind != ClientKind::Operator {
            return None;
        }
        let message = world.api.authorization.authorize(&permission, &key.namespace, &key.name).err()?;
        world.record(Category::Write, format_args!("operator {permission} {key} forbidden: {message}"));
        if !world.api.authorization.revoked.contains(&permission) {
            let text = format!("the operator called `{permission}` on {key}, which deploy/ does not grant: {message}");
            world.ledger.write_violations.push(crate::harness::ledger::InvariantViolation::new(
                crate::harness::invariants::OPERATOR_CALLS_AUTHORIZED,
                text,
            ));
        }
        Some(ClusterError::Forbidden { object: key.clone(), message })
    }

    /// The `OwnerReferencesPermissionEnforcement` admission plugin, which production clusters run
    /// (kubernetes/kubernetes `plugin/pkg/admission/gc/gc_admission.go`): an update that changes an object's
    /// ownerReferences needs `delete` on the object, and every ownerReference that newly blocks its owner's
    /// deletion (`blockOwnerDeletion: true`) needs `update` on the owner's `finalizers` subresource.
    fn admit_owner_references(&self, key: &ObjectRef, verb: &str, value: &Value) -> Option<ClusterError> {
        if self.kind != ClientKind::Operator || !matches!(verb, "create" | "replace") {
            return None;
        }
        let mut world = lock(&self.shared);
        let owners = |object: &Value| -> Vec<Value> {
            object.metadata_field("ownerReferences").and_then(Value::as_array).cloned().unwrap_or_default()
        };
        let blocking = |reference: &Value| reference.get("blockOwnerDeletion").and_then(Value::as_bool) == Some(true);
        let uid = |reference: &Value| reference.get("uid").and_then(Value::as_str).map(str::to_owned);
        let new_owners = owners(value);
        let old_owners = if verb == "replace" { world.api.store.get(key, None).map(owners) } else { None };
        if let Some(old) = &old_owners
            && *old != new_owners
        {
            let (group, resource) = (Self::group_of(value), plural_of(&key.kind));
            if let Some(forbidden) = self.authorize(&mut world, Permission::new(&group, &resource, "delete"), key) {
                return Some(forbidden);
            }
        }
        let was_blocking =
            |reference: &Value| old_owners.iter().flatten().any(|old| uid(old) == uid(reference) && blocking(old));
        for reference in new_owners.iter().filter(|r| blocking(r) && !was_blocking(r)) {
            let kind = reference.get("kind").and_then(Value::as_str).unwrap_or_default();
            let name = reference.get("name").and_then(Value::as_str).unwrap_or_default();
            let permission =
                Permission::new(&Self::group_of(reference), &format!("{}/finalizers", plural_of(kind)), "update");
            if let Some(forbidden) = self.authorize(&mut world, permission, &ObjectRef::new(kind, &key.namespace, name))
            {
                return Some(forbidden);
            }
        }
        None
    }

    /// The API group of an object or an ownerReference, from its `apiVersion` (`""` for the core group).
    fn group_of(value: &Value) -> String {
        let api_version = value.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
        api_version.rsplit_once('/').map(|(group, _)| group.to_owned()).unwrap_or_default()
    }

    /// Counts one request of the operator's client (`WorldState::api_requests`); the harness's are not counted.
    fn count(&self, world: &mut WorldState, verb: &'static str, kind: &str) {
        if self.kind == ClientKind::Operator {
            world.api.requests.count(verb, kind);
        }
    }

    /// Whether production's watch caches would answer a get of `key` ([`read_policy`]): by what the operator's
    /// cache holds — the store at the version this client reads at.
    fn cache_answers_get(&self, world: &WorldState, key: &ObjectRef) -> bool {
        // Only a label-filtered cache's answer depends on the object: read its labels only then, and only those
        // the cache filters by (the answer depends on no other).
        let read_policy::ReadSource::LabelledCache(filtered_by) =
            read_policy::read_source(&key.kind, read_policy::Read::Get)
        else {
            return read_policy::cache_answers_get(&key.kind, None);
        };
        let found = world.api.store.get(key, self.read_at(world)).map(|value| {
            value.metadata_field("labels").and_then(Value::as_object).map(|labels| {
                labels
                    .iter()
                    .filter(|(k, _)| filtered_by.contains(&k.as_str()))
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                    .collect::<LabelSelector>()
            })
        });
        read_policy::cache_answers_get(&key.kind, found.as_ref().map(Option::as_ref))
    }

    /// The version this client reads at: the store's, or (the operator's) a lagging cache's.
    fn read_at(&self, world: &WorldState) -> Option<u64> {
        match self.kind {
            ClientKind::Operator => operator_cache_version(world),
            ClientKind::Harness => None,
        }
    }

    /// Runs a write under the lock; returns whether the operator must now stop dead (its crash point).
    fn write(
        &self,
        key: &ObjectRef,
        verb: &str,
        permission: Permission,
        apply: impl FnOnce(&mut WorldState) -> Result<Arc<Value>, ClusterError>,
    ) -> (Result<Arc<Value>, ClusterError>, bool) {
        let mut world = lock(&self.shared);
        if let Some(forbidden) = self.authorize(&mut world, permission, key) {
            return (Err(forbidden), false);
        }
        let version_before = world.api.store.version();
        let deleted_uid = (verb == "delete")
            .then(|| world.api.store.get(key, None).and_then(|v| v.metadata_field("uid")?.as_str().map(str::to_owned)))
            .flatten();
        let result = match self.injected(&mut world, Access::Write, key) {
            Some(error) => Err(error),
            None => apply(&mut world),
        };
        let actor = self.actor();
        match &result {
            Ok(value) => {
                let version = value.metadata_field("resourceVersion").and_then(Value::as_str).unwrap_or("-");
                world.record(Category::Write, format_args!("{actor} {verb} {key} rv={version}"));
                // After the write's trace line: a user edit aimed at this write is traced after it. A write the
                // API server answered without storing anything (an update that changes nothing: the store keeps
                // its version, as kubernetes `staging/src/k8s.io/apiserver/pkg/storage/etcd3/store.go`,
                // `GuaranteedUpdate`, writes no unchanged data) is no step of anyone's: the write-time checks judge
                // what writes change.
                if world.api.store.version() != version_before {
                    world.observer.on_write(&mut world, key, verb, value, self.writer());
                }
                if self.kind == ClientKind::Operator && !world.replicas.list.is_empty() {
                    crate::operator_host::replicas::on_write(
                        &mut world,
                        self.replica,
                        key,
                        verb,
                        value,
                        deleted_uid.as_deref(),
                    );
                }
            }
            Err(error) => world.record(Category::Write, format_args!("{actor} {verb} {key} failed: {error}")),
        }
        let result = match result {
            Ok(applied) if self.kind == ClientKind::Operator => {
                let changed = world.api.store.version() != version_before;
                self.lose_response(&mut world, key, verb, applied, changed)
            }
            other => other,
        };
        let mut crash = false;
        if self.kind == ClientKind::Operator && result.is_ok() && !self.elector {
            world.api.faults.writes_succeeded += 1;
            let faults = &mut world.operator;
            let writes = faults.writes_in_reconcile.entry(self.reconcile.unwrap_or(0)).or_default();
            *writes += 1;
            let this_kind =
                faults.crash_reconciling.as_ref().is_none_or(|kind| Some(kind) == self.reconciling.as_ref());
            if faults.crash_after_write == Some(*writes) && this_kind {
                if !faults.crash_until_healed {
                    faults.crash_after_write = None;
                    faults.crash_reconciling = None;
                }
                match world.replicas.get_mut(self.replica).filter(|_| self.replica > 0) {
                    Some(replica) => replica.crash_requested = true,
                    None => world.operator.crash_requested = true,
                }
                crash = true;
                world.record(Category::Fault, format_args!("{actor} crashes right after this write ({key})"));
            }
        }
        (result, crash)
    }

    /// A write the API server applied, whose response may be lost on the way back (`ApiFaults::lost_responses`):
    /// the client then sees a timeout — Transient, though the write happened — or the API server's 504 (its
    /// request timeout fired while the write went through), which kube's retry layer sends again (kube-client
    /// `src/client/retry.rs` retries 429, 503 and 504 whatever the verb). The second attempt meets the first's
    /// effect: a create finds the object (409 AlreadyExists), an update its own new resourceVersion (409
    /// Conflict, unless it changed nothing), a delete the object gone (404) or still terminating (200).
    fn lose_response(
        &self,
        world: &mut WorldState,
        key: &ObjectRef,
        verb: &str,
        applied: Arc<Value>,
        changed: bool,
    ) -> Result<Arc<Value>, ClusterError> {
        let faults = &mut world.api.faults;
        let lost = if faults.lost_responses > 0 {
            faults.lost_responses -= 1;
            true
        } else {
            let rate = faults.lost_response_rate;
            rate > 0.0 && world.rng.random_bool(rate.min(1.0))
        };
        if !lost {
            return Ok(applied);
        }
        if !world.api.faults.lost_as_gateway_timeout {
            world.record(Category::Fault, format_args!("response to operator {verb} {key} lost: the client timed out"));
            return Err(ClusterError::Transient(format!("{key}: request timed out (it may have been applied)")));
        }
        let second = match verb {
            "create" => Err(ClusterError::AlreadyExists(key.clone())),
            "delete" if world.api.store.get(key, None).is_some() => Ok(applied),
            "delete" => Err(ClusterError::NotFound(key.clone())),
            // An update that changed nothing kept its resourceVersion, and the re-sent one succeeds alike.
            _ if !changed => Ok(applied),
            _ => Err(ClusterError::Conflict(key.clone())),
        };
        let answer = match &second {
            Ok(_) => "succeeds".to_owned(),
            Err(error) => format!("fails: {error}"),
        };
        world.record(
            Category::Fault,
            format!("operator {verb} {key} answered 504; the client re-sends it, which {answer}"),
        );
        second
    }

    /// The API server round trip of the operator's calls: other tasks on the operator's host run meanwhile, so
    /// concurrent reconciles interleave at every call, as they do against a real API server.
    async fn round_trip(&self) -> Result<(), ClusterError> {
        if self.kind != ClientKind::Operator {
            return Ok(());
        }
        crate::operator_host::replicas::wait_while_paused(&self.shared, self.replica).await;
        let (latency, dead) = {
            let world = lock(&self.shared);
            (world.timings.api_latency, crate::operator_host::replicas::dead(&world, self.replica))
        };
        if dead {
            // The operator process died at its crash point: none of its tasks gets another call through.
            std::future::pending::<()>().await;
        }
        if latency.is_zero() {
            tokio::task::yield_now().await;
        } else {
            tokio::time::sleep(latency).await;
        }
        self.through_refusals().await
    }

    /// The operator's client facing an API server that refuses its calls (`ApiFaults::refusal`), as production's
    /// kube client is configured (`sei_operator_core::api_retry`, the retry layer of kube-client
    /// `src/client/retry.rs` with tower's `ExponentialBackoff`): a 429 or 503 is sent again up to 15 times, after
    /// [`API_RETRY`]'s delay for the attempt, or after the 429's `Retry-After` when that is longer; the 16th
    /// refusal reaches the caller. A 500 is not retried. What reaches the caller is Transient, as production's
    /// error mapping (`operator/src/backend/kube_error.rs`) makes every 429 and 5xx.
    async fn through_refusals(&self) -> Result<(), ClusterError> {
        for attempt in 0..=API_RETRY.max_retries {
            let delay = {
                let mut world = lock(&self.shared);
                let now = world.now;
                let Some(refusal) = world.api.faults.refusal.filter(|r| now < r.until) else { return Ok(()) };
                let status = match refusal.status {
                    RefusalStatus::TooManyRequests { .. } => 429,
                    RefusalStatus::Unavailable => 503,
                    RefusalStatus::Internal => 500,
                };
                if refusal.status == RefusalStatus::Internal || attempt == API_RETRY.max_retries {
                    world.record(
                        Category::Fault,
                        format!("operator call refused with {status} (attempt {})", attempt + 1),
                    );
                    return Err(ClusterError::Transient(format!("HTTP {status} from the API server")));
                }
                let retry_after = match refusal.status {
                    RefusalStatus::TooManyRequests { retry_after } => Some(retry_after),
                    _ => None,
                };
                API_RETRY.delay_honouring(attempt, world.rng.random::<f64>(), retry_after)
            };
            tokio::time::sleep(delay).await;
        }
        Ok(())
    }

    /// Reads one object and decodes it straight from the store, under the lock: no copy of the stored JSON.
    async fn get_typed<K: ClusterObject>(&self, key: ObjectRef, fresh: bool) -> Result<Arc<K>, ClusterError> {
        self.round_trip().await?;
        let result = self.get_locked(key, fresh);
        self.after_call().await;
        result
    }

    /// A get: from the operator's (possibly lagging) cache as always, counted as a request to the API server
    /// unless the read policy serves it from the cache (never when `fresh`). Production would answer a fresh
    /// read from the API server; here it lags like the rest, a harsher test of the reconcilers.
    fn get_locked<K: ClusterObject>(&self, key: ObjectRef, fresh: bool) -> Result<Arc<K>, ClusterError> {
        let mut world = lock(&self.shared);
        if fresh || !self.cache_answers_get(&world, &key) {
            self.count(&mut world, "get", &key.kind);
        }
        if let Some(forbidden) = self.authorize(&mut world, Permission::of_call::<K>("get", None), &key) {
            return Err(forbidden);
        }
        if let Some(error) = self.injected(&mut world, Access::Read, &key) {
            return Err(error);
        }
        let at = self.read_at(&world);
        world.observer.on_operator_get(&mut world, self.writer().reconcile, &key, at);
        match world.api.store.get(&key, at) {
            Some(value) => self.decode_shared(&key, value),
            None => Err(ClusterError::NotFound(key)),
        }
    }

    /// `value` as a shared `K`: the object decoded at the same resourceVersion if the world keeps one.
    fn decode_shared<K: ClusterObject>(&self, key: &ObjectRef, value: &Value) -> Result<Arc<K>, ClusterError> {
        self.decoded
            .decode::<K>(key, value)
            .map_err(|error| ClusterError::Invalid { object: key.clone(), message: error.to_string() })
    }

    /// A stored object (listed, or what a write stored) as a shared `K`, kept as [`SimCluster::decode_shared`] keeps
    /// reads: the reconcile that wrote or listed it, and the next, read that version again.
    fn decode_stored<K: ClusterObject>(&self, value: &Value) -> Result<Arc<K>, ClusterError> {
        match crate::apiserver::store::key_of(value) {
            Ok(key) => self.decode_shared(&key, value),
            Err(_) => decode_ref(value).map(Arc::new),
        }
    }

    /// What a write answered, as a shared `K`: through the world's decoded objects only if the store now holds
    /// that version. An update that completed a deletion (the last finalizer removed) answers the object as sent,
    /// under the version it read, which the store held with other content: cached, it would stand for that.
    fn decode_written<K: ClusterObject>(&self, value: &Value) -> Result<Arc<K>, ClusterError> {
        let version =
            |value: &Value| value.metadata_field("resourceVersion").and_then(Value::as_str).map(str::to_owned);
        let Ok(key) = crate::apiserver::store::key_of(value) else { return decode_ref(value).map(Arc::new) };
        let held = lock(&self.shared).api.store.get(&key, None).and_then(version);
        if held.is_none() || held != version(value) {
            return decode_ref(value).map(Arc::new);
        }
        self.decode_shared(&key, value)
    }

    async fn list_typed<K: ClusterObject>(
        &self,
        kind: String,
        namespace: String,
        selector: LabelSelector,
    ) -> Result<Vec<Arc<K>>, ClusterError> {
        self.round_trip().await?;
        let result = self.list_locked(kind, namespace, selector);
        self.after_call().await;
        result
    }

    fn list_locked<K: ClusterObject>(
        &self,
        kind: String,
        namespace: String,
        selector: LabelSelector,
    ) -> Result<Vec<Arc<K>>, ClusterError> {
        let mut world = lock(&self.shared);
        if !read_policy::cache_answers_list(&kind) {
            self.count(&mut world, "list", &kind);
        }
        let all = ObjectRef::new(&kind, &namespace, "");
        if let Some(forbidden) = self.authorize(&mut world, Permission::of_call::<K>("list", None), &all) {
            return Err(forbidden);
        }
        if let Some(error) = self.injected(&mut world, Access::Read, &all) {
            return Err(error);
        }
        let at = self.read_at(&world);
        world.observer.on_operator_list(&mut world, self.writer().reconcile, &kind, &namespace, &selector, at);
        world.api.store.list(&kind, &namespace, &selector, at).into_iter().map(|v| self.decode_stored(v)).collect()
    }

    /// Encodes, writes, and — at the operator's crash point — never returns: the process died right after the
    /// write, and the world crashes its host at the end of the step.
    async fn write_object<K: ClusterObject>(
        &self,
        object: &K,
        verb: &str,
        apply: impl FnOnce(&mut WorldState, Value) -> Result<Arc<Value>, ClusterError>,
    ) -> Result<Arc<Value>, ClusterError> {
        self.write_object_as(object, verb, encode(object)?, apply).await
    }

    /// [`SimCluster::write_object`], sending `value` as `object`'s request body.
    async fn write_object_as<K: ClusterObject>(
        &self,
        object: &K,
        verb: &str,
        value: Value,
        apply: impl FnOnce(&mut WorldState, Value) -> Result<Arc<Value>, ClusterError>,
    ) -> Result<Arc<Value>, ClusterError> {
        self.round_trip().await?;
        let key = ObjectRef::to(object);
        let counted = match verb {
            "replace" => "update",
            "replace-status" => "update-status",
            _ => "create",
        };
        self.count(&mut lock(&self.shared), counted, &key.kind);
        // RBAC's verbs: a replace is an update, of the status subresource for replace-status.
        let permission = match verb {
            "replace" => Permission::of_call::<K>("update", None),
            "replace-status" => Permission::of_call::<K>("update", Some("status")),
            other => Permission::of_call::<K>(other, None),
        };
        if let Some(forbidden) = self.admit_owner_references(&key, verb, &value) {
            return Err(forbidden);
        }
        let (result, crash) = self.write(&key, verb, permission, |world| apply(world, value));
        if crash {
            std::future::pending::<()>().await;
        }
        self.after_call().await;
        result
    }
}

/// The resource name of a kind, as the API server's REST mapping names it (the kinds the operator touches).
fn plural_of(kind: &str) -> String {
    match kind {
        "Event" => "events".into(),
        other => format!("{}s", other.to_lowercase()),
    }
}

/// The typed object as a store value, with its apiVersion and kind.
fn encode<K: ClusterObject>(object: &K) -> Result<Value, ClusterError> {
    let mut value = serde_json::to_value(object)
        .map_err(|e| ClusterError::Invalid { object: ObjectRef::to(object), message: e.to_string() })?;
    if let Some(map) = value.as_object_mut() {
        map.insert("apiVersion".into(), K::api_version(&()).into_owned().into());
        map.insert("kind".into(), K::kind(&()).into_owned().into());
    }
    Ok(value)
}

/// What a status write of `object` sends that the API server reads of it: apiVersion, kind, name, namespace,
/// resourceVersion and status. A status write of a custom resource keeps the stored object but for its status
/// (kubernetes `staging/src/k8s.io/apiextensions-apiserver/pkg/registry/customresource/status_strategy.go`,
/// `PrepareForUpdate`; [`crate::apiserver::store::Store::replace_status`]), so the spec and the rest of the
/// metadata were encoded only to be set aside. Done for the kinds the operator writes the status of; any other
/// object is sent whole.
fn encode_status_write<K: ClusterObject>(object: &K) -> Result<Value, ClusterError> {
    let any: &dyn Any = object;
    let status = if let Some(node) = any.downcast_ref::<SeiNode>() {
        serde_json::to_value(&node.status)
    } else if let Some(deployment) = any.downcast_ref::<SeiNodeDeployment>() {
        serde_json::to_value(&deployment.status)
    } else {
        return encode(object);
    };
    let status = status.map_err(|e| ClusterError::Invalid { object: ObjectRef::to(object), message: e.to_string() })?;
    let meta = object.meta();
    let mut metadata = serde_json::Map::new();
    for (field, value) in
        [("name", &meta.name), ("namespace", &meta.namespace), ("resourceVersion", &meta.resource_version)]
    {
        if let Some(value) = value {
            metadata.insert(field.into(), value.clone().into());
        }
    }
    let mut body = serde_json::Map::new();
    body.insert("apiVersion".into(), K::api_version(&()).into_owned().into());
    body.insert("kind".into(), K::kind(&()).into_owned().into());
    body.insert("metadata".into(), metadata.into());
    body.insert("status".into(), status);
    Ok(Value::Object(body))
}

/// Decodes a stored value without copying it: serde_json deserializes `&Value` as it does `Value` (same visitor
/// calls, same errors), only borrowing strings where the owned form would move them.
fn decode_ref<K: ClusterObject>(value: &Value) -> Result<K, ClusterError> {
    K::deserialize(value).map_err(|e| {
        let key = crate::apiserver::store::key_of(value).unwrap_or_else(|_| ObjectRef::new(K::kind(&()), "", ""));
        ClusterError::Invalid { object: key, message: e.to_string() }
    })
}

impl Cluster for SimCluster {
    async fn get<K: ClusterObject>(&self, namespace: &str, name: &str) -> Result<K, ClusterError> {
        self.get_typed(ObjectRef::of::<K>(namespace, name), false).await.map(Arc::unwrap_or_clone)
    }

    async fn get_shared<K: ClusterObject>(&self, namespace: &str, name: &str) -> Result<Arc<K>, ClusterError> {
        self.get_typed(ObjectRef::of::<K>(namespace, name), false).await
    }

    async fn get_fresh<K: ClusterObject>(&self, namespace: &str, name: &str) -> Result<K, ClusterError> {
        self.get_typed(ObjectRef::of::<K>(namespace, name), true).await.map(Arc::unwrap_or_clone)
    }

    async fn list<K: ClusterObject>(
        &self,
        namespace: &str,
        selector: &LabelSelector,
    ) -> Result<Vec<Arc<K>>, ClusterError> {
        self.list_typed(K::kind(&()).into_owned(), namespace.to_owned(), selector.clone()).await
    }

    async fn create<K: ClusterObject>(&self, object: &K) -> Result<Arc<K>, ClusterError> {
        let created = self
            .write_object(object, "create", |world, value| {
                let now = world.timestamp();
                world.api.store.create(value, now)
            })
            .await?;
        self.decode_written(&created)
    }

    async fn replace<K: ClusterObject>(&self, object: &K) -> Result<Arc<K>, ClusterError> {
        let written = self.write_object(object, "replace", |world, value| world.api.store.replace(value)).await?;
        self.decode_written(&written)
    }

    async fn replace_status<K: ClusterObject>(&self, object: &K) -> Result<Arc<K>, ClusterError> {
        let written = self
            .write_object_as(object, "replace-status", encode_status_write(object)?, |world, value| {
                world.api.store.replace_status(value)
            })
            .await?;
        self.decode_written(&written)
    }

    async fn delete<K: ClusterObject>(&self, namespace: &str, name: &str) -> Result<(), ClusterError> {
        self.round_trip().await?;
        let key = ObjectRef::of::<K>(namespace, name);
        self.count(&mut lock(&self.shared), "delete", &key.kind);
        let (result, crash) = self.write(&key, "delete", Permission::of_call::<K>("delete", None), |world| {
            let now = world.timestamp();
            // The delete-time invariants judge the operator, not a scenario deleting things on purpose; what a
            // user deletes is remembered, so the invariants can tell the user's doing from the operator's.
            match self.kind {
                ClientKind::Operator => world.observer.on_delete(world, &key),
                ClientKind::Harness => world.observer.on_user_delete(world, &key),
            }
            world.api.store.delete(&key, now).map(|()| Arc::new(Value::Null))
        });
        if crash {
            std::future::pending::<()>().await;
        }
        self.after_call().await;
        result.map(|_| ())
    }

    async fn emit_event(&self, event: &Event) -> Result<(), ClusterError> {
        self.round_trip().await?;
        let mut world = lock(&self.shared);
        // Production looks the regarded object up for its uid (`KubeCluster::emit_event`), then creates the Event.
        if !self.cache_answers_get(&world, &event.regarding) {
            self.count(&mut world, "get", &event.regarding.kind);
        }
        self.count(&mut world, "event", "Event");
        // events.k8s.io/v1, as kube-runtime's recorder and the keyed create in production write them.
        let new_event = ObjectRef::new("Event", &event.regarding.namespace, "");
        let permission = Permission::of_call::<k8s_openapi::api::events::v1::Event>("create", None);
        if let Some(forbidden) = self.authorize(&mut world, permission, &new_event) {
            return Err(forbidden);
        }
        if let Some(error) = self.injected(&mut world, Access::Read, &event.regarding) {
            return Err(error);
        }
        // A keyed Event has a name derived from its key: the API server refuses a second one under that name.
        let recorded = |(_, e): &(std::time::Duration, Event)| e.regarding == event.regarding && e.key == event.key;
        if event.key.is_some() && world.ledger.events.iter().any(recorded) {
            return Err(ClusterError::AlreadyExists(event.regarding.clone()));
        }
        let text = format!("{:?} {} {}: {}", event.type_, event.reason, event.regarding, event.message);
        world.record(Category::Event, text);
        let now = world.now;
        world.ledger.events.push((now, event.clone()));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::Service;
    use sei_operator_core::api::{SeiNodePhase, SeiNodeSpec, SeiNodeStatus};
    use serde_json::json;

    use super::*;
    use crate::apiserver::store::Store;

    fn node(image: &str, label: &str) -> SeiNode {
        let spec: SeiNodeSpec =
            serde_json::from_value(json!({"chainId": "pacific-1", "image": image, "fullNode": {}})).expect("a spec");
        let mut node = SeiNode::new("rpc-0", spec);
        node.metadata.namespace = Some("sei".into());
        node.metadata.labels = Some([("team".to_owned(), label.to_owned())].into());
        node
    }

    #[test]
    fn a_status_write_sends_the_key_the_version_and_the_status_and_stores_what_a_whole_object_would() {
        let mut store = Store::new(None);
        let stored = store.create(encode(&node("sei:v1", "a")).expect("encodes"), Default::default()).expect("made");
        let version = stored.metadata_field("resourceVersion").and_then(Value::as_str).map(str::to_owned);
        // What the operator holds: its own edits of the spec and labels beside the status it writes.
        let mut edited = node("sei:v2", "b");
        edited.metadata.resource_version = version;
        edited.status = Some(SeiNodeStatus { phase: Some(SeiNodePhase::Running), ..Default::default() });

        let body = encode_status_write(&edited).expect("encodes");
        let whole = encode(&edited).expect("encodes");
        assert_eq!(
            body,
            json!({
                "apiVersion": whole["apiVersion"], "kind": "SeiNode",
                "metadata": {"name": "rpc-0", "namespace": "sei", "resourceVersion": whole["metadata"]["resourceVersion"]},
                "status": whole["status"],
            })
        );
        let mut other = Store::new(None);
        other.create(encode(&node("sei:v1", "a")).expect("encodes"), Default::default()).expect("made");
        let from_body = store.replace_status(body).expect("written");
        let from_whole = other.replace_status(whole).expect("written");
        assert_eq!(from_body, from_whole, "the store keeps the same object either way");
        assert_eq!(from_body["spec"]["image"], "sei:v1");
        assert_eq!(from_body["metadata"]["labels"]["team"], "a");
        assert_eq!(from_body["status"]["phase"], "Running");

        // A kind the operator does not write the status of is sent whole.
        let mut service = Service::default();
        service.metadata.name = Some("s".into());
        service.metadata.namespace = Some("sei".into());
        assert_eq!(encode_status_write(&service).expect("encodes"), encode(&service).expect("encodes"));
    }
}
