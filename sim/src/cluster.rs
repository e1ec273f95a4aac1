//! `SimCluster`: the [`Cluster`] trait on the fake API store. The operator's client carries the operator's
//! faults — injected Conflicts and transient errors, reads from a lagging cache, and a crash right after its
//! i-th write in a reconcile; the harness's client (tests, scenarios) has none.

use std::future::Future;

use rand::Rng;
use sei_operator::cluster::{Cluster, ClusterError, ClusterObject, Event, LabelSelector, ObjectRef};
use serde_json::Value;

use crate::state::{Shared, WorldState, lock};
use crate::trace::Category;

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
    shared: Shared,
    kind: ClientKind,
    /// The reconcile this client serves, for "crash after the i-th write in a reconcile".
    reconcile: Option<u64>,
}

/// A read or a write, for fault injection.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Access {
    Read,
    Write,
}

impl SimCluster {
    pub fn new(shared: Shared, kind: ClientKind) -> Self {
        SimCluster { shared, kind, reconcile: None }
    }

    /// The same client, counting its writes as those of reconcile `id`.
    pub fn for_reconcile(&self, id: u64) -> Self {
        SimCluster { shared: self.shared.clone(), kind: self.kind, reconcile: Some(id) }
    }

    fn actor(&self) -> &'static str {
        match self.kind {
            ClientKind::Operator => "operator",
            ClientKind::Harness => "harness",
        }
    }

    /// An injected failure for this call, if one is due.
    fn injected(&self, world: &mut WorldState, access: Access, key: &ObjectRef) -> Option<ClusterError> {
        if self.kind != ClientKind::Operator {
            return None;
        }
        let faults = &mut world.api_faults;
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

    /// The version this client reads at: the store's, or a lagging cache's.
    fn read_at(&self, world: &WorldState) -> Option<u64> {
        match self.kind {
            ClientKind::Operator if world.operator.read_lag > 0 => {
                let lag = world.operator.read_lag.min(world.store.max_lag());
                Some(world.store.version().saturating_sub(lag))
            }
            _ => None,
        }
    }

    /// Runs a write under the lock; returns whether the operator must now stop dead (its crash point).
    fn write(
        &self,
        key: &ObjectRef,
        verb: &str,
        apply: impl FnOnce(&mut WorldState) -> Result<Value, ClusterError>,
    ) -> (Result<Value, ClusterError>, bool) {
        let mut world = lock(&self.shared);
        let result = match self.injected(&mut world, Access::Write, key) {
            Some(error) => Err(error),
            None => apply(&mut world),
        };
        let actor = self.actor();
        match &result {
            Ok(value) => {
                let version = value.pointer("/metadata/resourceVersion").and_then(Value::as_str).unwrap_or("-");
                let text = format!("{actor} {verb} {key} rv={version}");
                world.record(Category::Write, text);
            }
            Err(error) => world.record(Category::Write, format!("{actor} {verb} {key} failed: {error}")),
        }
        let mut crash = false;
        if self.kind == ClientKind::Operator && result.is_ok() {
            let faults = &mut world.operator;
            let writes = faults.writes_in_reconcile.entry(self.reconcile.unwrap_or(0)).or_default();
            *writes += 1;
            if faults.crash_after_write == Some(*writes) {
                faults.crash_after_write = None;
                faults.crash_requested = true;
                crash = true;
                world.record(Category::Fault, format!("operator crashes right after this write ({key})"));
            }
        }
        (result, crash)
    }

    async fn finish_write<K: ClusterObject>(
        &self,
        outcome: (Result<Value, ClusterError>, bool),
    ) -> Result<K, ClusterError> {
        let (result, crash) = outcome;
        if crash {
            // The process dies here: nothing after this write runs. The world crashes the host after the step.
            std::future::pending::<()>().await;
        }
        decode(result?)
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

fn decode<K: ClusterObject>(value: Value) -> Result<K, ClusterError> {
    let key = crate::store::key_of(&value).unwrap_or_else(|_| ObjectRef::new(K::kind(&()), "", ""));
    serde_json::from_value(value).map_err(|e| ClusterError::Invalid { object: key, message: e.to_string() })
}

impl Cluster for SimCluster {
    fn get<K: ClusterObject>(
        &self,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = Result<K, ClusterError>> + Send {
        let key = ObjectRef::of::<K>(namespace, name);
        let result = {
            let mut world = lock(&self.shared);
            match self.injected(&mut world, Access::Read, &key) {
                Some(error) => Err(error),
                None => {
                    let at = self.read_at(&world);
                    world.store.get(&key, at).cloned().ok_or(ClusterError::NotFound(key))
                }
            }
        };
        async move { decode(result?) }
    }

    fn list<K: ClusterObject>(
        &self,
        namespace: &str,
        selector: &LabelSelector,
    ) -> impl Future<Output = Result<Vec<K>, ClusterError>> + Send {
        let kind = K::kind(&()).into_owned();
        let result = {
            let mut world = lock(&self.shared);
            match self.injected(&mut world, Access::Read, &ObjectRef::new(&kind, namespace, "")) {
                Some(error) => Err(error),
                None => {
                    let at = self.read_at(&world);
                    Ok(world.store.list(&kind, namespace, selector, at).into_iter().cloned().collect::<Vec<_>>())
                }
            }
        };
        async move { result?.into_iter().map(decode).collect() }
    }

    fn create<K: ClusterObject>(&self, object: &K) -> impl Future<Output = Result<K, ClusterError>> + Send {
        let key = ObjectRef::to(object);
        let outcome = match encode(object) {
            Ok(value) => self.write(&key, "create", |world| {
                let now = world.timestamp();
                world.store.create(value, now)
            }),
            Err(error) => (Err(error), false),
        };
        self.finish_write(outcome)
    }

    fn replace<K: ClusterObject>(&self, object: &K) -> impl Future<Output = Result<K, ClusterError>> + Send {
        let key = ObjectRef::to(object);
        let outcome = match encode(object) {
            Ok(value) => self.write(&key, "replace", |world| world.store.replace(value)),
            Err(error) => (Err(error), false),
        };
        self.finish_write(outcome)
    }

    fn replace_status<K: ClusterObject>(&self, object: &K) -> impl Future<Output = Result<K, ClusterError>> + Send {
        let key = ObjectRef::to(object);
        let outcome = match encode(object) {
            Ok(value) => self.write(&key, "replace-status", |world| world.store.replace_status(value)),
            Err(error) => (Err(error), false),
        };
        self.finish_write(outcome)
    }

    fn delete<K: ClusterObject>(
        &self,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = Result<(), ClusterError>> + Send {
        let key = ObjectRef::of::<K>(namespace, name);
        let outcome = self.write(&key, "delete", |world| {
            let now = world.timestamp();
            crate::invariants::on_delete(world, &key);
            world.store.delete(&key, now).map(|()| Value::Null)
        });
        async move {
            if outcome.1 {
                std::future::pending::<()>().await;
            }
            outcome.0.map(|_| ())
        }
    }

    fn emit_event(&self, event: &Event) -> impl Future<Output = Result<(), ClusterError>> + Send {
        let event = event.clone();
        let result = {
            let mut world = lock(&self.shared);
            match self.injected(&mut world, Access::Read, &event.regarding) {
                Some(error) => Err(error),
                None => {
                    let text = format!("{:?} {} {}: {}", event.type_, event.reason, event.regarding, event.message);
                    world.record(Category::Event, text);
                    let now = world.now;
                    world.events.push((now, event));
                    Ok(())
                }
            }
        };
        async move { result }
    }
}
