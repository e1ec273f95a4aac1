//! The operator's host: a deterministic work queue fed by the store's watch and by requeue timers, driving an
//! injected [`Reconciler`], concurrently across keys and never twice at once for one key. Everything here lives
//! in the host's memory and is lost when the world crashes the host; the store survives.
//!
//! Plugging the operator's controllers in: write them against the `Cluster`, `Sidecar` and `Clock` traits, and
//! wrap them in one `Reconciler` that dispatches on `key.kind`:
//!
//! ```text
//! struct Controllers { /* in-memory state, rebuilt at every operator (re)start */ }
//! impl Reconciler for Controllers {
//!     fn kinds(&self) -> Vec<String> { vec!["SeiNode".into(), "SeiNodeDeployment".into()] }
//!     async fn reconcile(&self, ctx: &OperatorContext, key: &ObjectRef) -> Requeue {
//!         match key.kind.as_str() {
//!             "SeiNode" => node::reconcile(&ctx.cluster, &ctx.sidecar, &ctx.clock, key).await.into(),
//!             _ => deployment::reconcile(&ctx.cluster, &ctx.clock, key).await.into(),
//!         }
//!     }
//! }
//! world.start_operator(|| Controllers { .. });
//! ```
//!
//! Events on a StatefulSet, Service, Job or child SeiNode reach the reconciler through their controller owner
//! reference, as kube-runtime's `owns` does.
//!
//! Beside the loop: [`cluster`] (`SimCluster`, the operator's `Cluster` client on the API server, with its cache
//! lag and injected faults), [`clock`] (`SimClock`), [`replicas`] (several replicas electing a leader through the
//! Lease) and [`reconcilers`] (the operator's real reconcilers plugged into the host).

pub mod clock;
pub mod cluster;
pub mod reconcilers;
pub mod replicas;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::rc::Rc;
use std::time::Duration;

use sei_operator_core::cluster::ObjectRef;
use sei_operator_core::controller::ReconcileError;
use sei_operator_core::controller::triggers::TriggerFilter;
use tokio::task::JoinSet;

use crate::apiserver::store::{ChangeType, TriggerFingerprints, Watch};
use crate::harness::invariants::NO_OPERATOR_LIVELOCK;
use crate::harness::ledger::InvariantViolation;
use crate::harness::state::{SharedWorld, lock};
use crate::harness::trace::Category;
use crate::node::sidecar::client::SimSidecar;
use crate::operator_host::clock::SimClock;
use crate::operator_host::cluster::{ClientKind, SimCluster};

/// What a reconcile asks of the queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Requeue {
    /// Nothing more until the next watch event.
    Done,
    /// Reconcile again after this long (zero: as soon as the queue gets to it).
    After(Duration),
    /// The reconcile failed: retried after production's delay for this error and the key's failures in a row
    /// ([`ReconcileError::retry_after`], the policy kube-runtime's error policy uses in production).
    Error(ReconcileError),
}

/// What a reconcile gets: the operator's API client, a sidecar client tagged `operator:<Kind>` for the kind
/// being reconciled, and the clock.
#[derive(Clone)]
pub struct OperatorContext {
    pub cluster: SimCluster,
    pub sidecar: SimSidecar,
    pub clock: SimClock,
}

/// A controller's reconcile function, plugged into the operator host.
pub trait Reconciler: 'static {
    /// The kinds it reconciles. An event on one of them enqueues that object; an event on an object whose
    /// controller owner is of one of them enqueues the owner (kube-runtime's `owns`).
    fn kinds(&self) -> Vec<String>;

    fn reconcile(&self, ctx: &OperatorContext, key: &ObjectRef) -> impl Future<Output = Requeue>;

    /// Whether watch events are filtered by the operator's trigger rules (`sei_operator_core::controller::triggers`),
    /// as production's controllers filter theirs: an event on an object whose fingerprint did not change since
    /// the last one wakes nothing. Off by default: every change wakes.
    fn filters_triggers(&self) -> bool {
        false
    }
}

/// A watch event to deliver: the object, its controller owner (kind, name), and what to judge it by (`None`: an
/// object delivered on heal, with no event).
type Delivery = (ObjectRef, Option<(String, String)>, Option<(ChangeType, TriggerFingerprints)>);

/// The last fingerprints the host's watch saw, per object: one filter for waking the object's own controller,
/// one for waking its owner's (two kube-runtime controllers, each with its own trigger stream). In the host's
/// memory: a restarted operator starts with none, and every first event wakes, as after production's relist.
#[derive(Default)]
struct Triggers {
    itself: TriggerFilter<ObjectRef>,
    owner: TriggerFilter<ObjectRef>,
}

impl Triggers {
    /// Whether a delivered event wakes the object's own controller and its owner's. `None`: no event to judge
    /// (an object delivered on heal, as a relist would), which wakes both.
    fn judge(&mut self, object: &ObjectRef, change: Option<(ChangeType, TriggerFingerprints)>) -> (bool, bool) {
        match change {
            None => (true, true),
            Some((ChangeType::Deleted, _)) => {
                self.itself.forget(object);
                self.owner.forget(object);
                (true, true)
            }
            Some((_, fingerprints)) => (
                self.itself.admit(object.clone(), fingerprints.itself),
                self.owner.admit(object.clone(), fingerprints.owner),
            ),
        }
    }
}

/// kube-runtime's scheduler, deterministically: each key at most once in the queue, at its earliest due time;
/// ties in due time go in insertion order.
#[derive(Default)]
pub struct WorkQueue {
    due: BTreeMap<ObjectRef, (Duration, u64)>,
    order: BTreeSet<(Duration, u64, ObjectRef)>,
    sequence: u64,
}

impl WorkQueue {
    /// Schedules `key` at `at`, unless it is already due earlier.
    pub fn schedule(&mut self, key: ObjectRef, at: Duration) {
        if let Some((existing, sequence)) = self.due.get(&key).copied() {
            if existing <= at {
                return;
            }
            self.order.remove(&(existing, sequence, key.clone()));
        }
        self.sequence += 1;
        self.due.insert(key.clone(), (at, self.sequence));
        self.order.insert((at, self.sequence, key));
    }

    /// The first key due at or before `now`.
    pub fn pop_due(&mut self, now: Duration) -> Option<ObjectRef> {
        let first = self.order.first().filter(|(at, _, _)| *at <= now)?.clone();
        self.order.remove(&first);
        self.due.remove(&first.2);
        Some(first.2)
    }

    pub fn next_due(&self) -> Option<Duration> {
        self.order.first().map(|(at, _, _)| *at)
    }

    pub fn len(&self) -> usize {
        self.due.len()
    }

    pub fn is_empty(&self) -> bool {
        self.due.is_empty()
    }
}

/// More reconciles than this in one simulated instant is a livelock — a controller that requeues itself at once,
/// forever, each pass undoing the last. Simulated time would stop with it, and a scenario would hang instead of
/// failing; past this budget the host reports `no-operator-livelock` and waits for the next tick.
pub const RECONCILES_PER_INSTANT: u64 = 10_000;

/// How the operator host runs reconciles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OperatorConfig {
    /// Reconciles running at once, each on a different key (kube-runtime's default is unbounded).
    pub concurrency: usize,
}

impl Default for OperatorConfig {
    fn default() -> Self {
        OperatorConfig { concurrency: usize::MAX }
    }
}

/// The operator host's software: kube-runtime's controller loop, deterministically. Reconciles of different
/// keys run concurrently (as tasks on the host); a key is never reconciled twice at once — an event for a key in
/// flight reruns it when the running reconcile ends.
pub async fn run_operator<R: Reconciler>(
    shared: SharedWorld,
    reconciler: R,
    config: OperatorConfig,
    tick: Duration,
) -> turmoil::Result {
    run_operator_gated(shared, reconciler, config, tick, None).await
}

/// One replica of several (`crate::operator_host::replicas`): its lease loop runs beside the controller loop, which starts
/// reconciles only while the replica believes it leads.
pub async fn run_replica<R: Reconciler>(
    shared: SharedWorld,
    reconciler: R,
    config: OperatorConfig,
    tick: Duration,
    index: usize,
) -> turmoil::Result {
    let gate = crate::operator_host::replicas::Gate {
        index,
        leading: Rc::new(std::cell::Cell::new(false)),
        changed: Rc::new(tokio::sync::Notify::new()),
    };
    tokio::task::spawn_local(crate::operator_host::replicas::lease_loop(shared.clone(), gate.clone()));
    run_operator_gated(shared, reconciler, config, tick, Some(gate)).await
}

async fn run_operator_gated<R: Reconciler>(
    shared: SharedWorld,
    reconciler: R,
    config: OperatorConfig,
    tick: Duration,
    gate: Option<crate::operator_host::replicas::Gate>,
) -> turmoil::Result {
    let reconciler = Rc::new(reconciler);
    let kinds = reconciler.kinds();
    let index = gate.as_ref().map_or(0, |g| g.index);
    let host = crate::operator_host::replicas::host_name(index);
    // Trace lines of replicas other than the first name theirs.
    let who = if index == 0 { String::new() } else { format!("[{host}] ") };
    let sidecar = SimSidecar::new(shared.clone(), &host);
    let cluster = SimCluster::new(shared.clone(), ClientKind::Operator).for_replica(index);
    let clock = SimClock::new(shared.clone());
    let mut queue = WorkQueue::default();
    // Failed reconciles in a row, per key; a success forgets the key.
    let mut failures: BTreeMap<ObjectRef, u32> = BTreeMap::new();
    let mut in_flight: BTreeSet<ObjectRef> = BTreeSet::new();
    let mut rerun: BTreeSet<ObjectRef> = BTreeSet::new();
    let mut running: JoinSet<(ObjectRef, u64, Requeue)> = JoinSet::new();
    // Reconcile ids of replica i start at i << 48: the world's per-reconcile records never mix two replicas'.
    let first_id = (index as u64) << 48;
    let mine = move |id: &u64| *id >> 48 == index as u64;
    let mut next_id: u64 = first_id;
    let mut pending: std::collections::VecDeque<crate::apiserver::store::Change> = Default::default();
    let filters_triggers = reconciler.filters_triggers();
    let mut triggers = Triggers::default();
    // Reconciles started at the current simulated instant, for the livelock budget.
    let (mut instant, mut started_this_instant) = (Duration::ZERO, 0u64);
    let (mut watch, wake) = {
        let mut world = lock(&shared);
        // Reconcile ids start again at 0 in a new process: counts of the dead process's unfinished reconciles
        // must not be credited to the new ones that reuse their ids (an armed afterWrite crash would fire early).
        world.operator.writes_in_reconcile.retain(|id, _| !mine(id));
        world.ledger.reconcile_reads.retain(|id, _| !mine(id));
        // The informers' initial list: every object of the reconciled kinds.
        let now = world.now;
        for kind in &kinds {
            let keys: Vec<ObjectRef> = world.api.store.all_of_kind(kind).map(|(k, _)| k.clone()).collect();
            for key in keys {
                queue.schedule(key, now);
            }
        }
        world.record(Category::Operator, format!("{who}started, {} keys queued", queue.len()));
        // The informers start from their cache: if it lags, what it does not hold yet arrives as events.
        let cache_version =
            crate::operator_host::cluster::operator_cache_version(&world).unwrap_or(world.api.store.version());
        (Watch::from_version(&world.api.store, cache_version), world.api.changed.clone())
    };
    loop {
        if let Some(gate) = &gate {
            crate::operator_host::replicas::wait_while_paused(&shared, gate.index).await;
        }
        let now = {
            let mut world = lock(&shared);
            pending.extend(watch.poll(&world.api.store).iter().cloned());
            // Events reach the controller only once its (possibly lagging) cache holds them.
            let visible = crate::operator_host::cluster::operator_cache_version(&world).unwrap_or(u64::MAX);
            let delivered = pending.iter().take_while(|c| c.version <= visible).count();
            let changes: Vec<_> = pending.drain(..delivered).collect();
            let now = world.now;
            let mut deliveries: Vec<Delivery> = Vec::new();
            if std::mem::take(&mut world.operator.deliver_unobserved) {
                // The heal is the watch's relist: it reports the objects it lists, never one deleted in the gap
                // (kube-rs `kube-runtime/src/watcher.rs`, `Event::InitApply`: "Deleted events may be missed when
                // restarting the stream"). Whoever owned a deleted object hears of it only by looking again.
                let unobserved = std::mem::take(&mut world.operator.unobserved);
                for (object, controller) in unobserved {
                    if world.api.store.get(&object, None).is_none() {
                        world.record(Category::Fault, format!("deleted while unobserved, not relisted: {object}"));
                        continue;
                    }
                    world.record(Category::Fault, format!("unobserved object delivered on heal: {object}"));
                    deliveries.push((object, controller, None));
                }
            }
            for change in changes {
                if world.operator.drop_watch_events > 0 {
                    world.operator.drop_watch_events -= 1;
                    world
                        .record(Category::Fault, format!("watch event dropped: {:?} {}", change.change, change.object));
                    world.operator.unobserved.insert(change.object.clone(), change.controller.clone());
                    continue;
                }
                world.operator.unobserved.remove(&change.object);
                world.operator.cache_floor = world.operator.cache_floor.max(change.version);
                deliveries.push((change.object, change.controller, Some((change.change, change.fingerprints))));
            }
            for (object, controller, judged) in deliveries {
                let (wakes_itself, wakes_owner) =
                    if filters_triggers { triggers.judge(&object, judged) } else { (true, true) };
                // Both, as two kube-runtime controllers would: a child SeiNode is reconciled itself (the SeiNode
                // controller) and wakes its owning deployment (the deployment controller `owns` SeiNodes).
                if wakes_itself && kinds.contains(&object.kind) {
                    queue.schedule(object.clone(), now);
                }
                if let Some((kind, name)) = controller.filter(|(kind, _)| wakes_owner && kinds.contains(kind)) {
                    queue.schedule(ObjectRef::new(kind, &object.namespace, name), now);
                }
            }
            now
        };
        if now != instant {
            (instant, started_this_instant) = (now, 0);
        }
        // A standby (or a replica that knows it lost the Lease) starts nothing; what is queued waits.
        let leading = gate.as_ref().is_none_or(|g| g.leading.get());
        while leading && running.len() < config.concurrency && started_this_instant < RECONCILES_PER_INSTANT {
            let Some(key) = queue.pop_due(now) else { break };
            started_this_instant += 1;
            if started_this_instant == RECONCILES_PER_INSTANT {
                let message =
                    format!("{RECONCILES_PER_INSTANT} reconciles at t={now:?} without time passing, the last of {key}");
                let mut world = lock(&shared);
                world.record(Category::Operator, format!("livelock: {message}"));
                world.ledger.write_violations.push(InvariantViolation { invariant: NO_OPERATOR_LIVELOCK, message });
            }
            if in_flight.contains(&key) {
                rerun.insert(key);
                continue;
            }
            next_id += 1;
            let id = next_id;
            lock(&shared).record(Category::Operator, format!("{who}reconcile {key}"));
            let ctx = OperatorContext {
                cluster: cluster.for_reconcile(id, &key.kind),
                sidecar: sidecar.with_caller(&format!("{host}:{}", key.kind)),
                clock: clock.clone(),
            };
            in_flight.insert(key.clone());
            let reconciler = reconciler.clone();
            running.spawn_local(async move {
                let outcome = reconciler.reconcile(&ctx, &key).await;
                (key, id, outcome)
            });
        }
        let mut wait = queue.next_due().map_or(Duration::from_secs(3600), |at| at.saturating_sub(now)).max(tick);
        if !pending.is_empty() {
            // Held-back events are delivered as the cache catches up, which no store write may signal.
            wait = tick;
        }
        // `biased`: tokio's select! otherwise picks among ready branches with an RNG that turmoil cannot seed
        // (it needs `tokio_unstable`), which would make runs differ.
        tokio::select! {
            biased;
            _ = wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
            _ = async { if let Some(gate) = &gate { gate.changed.notified().await } }, if gate.is_some() => {}
            Some(joined) = running.join_next(), if !running.is_empty() => {
                // A panicking reconcile is a bug in the controller: the host fails and the run reports it.
                let (key, id, outcome) = joined.map_err(|e| format!("a reconcile panicked: {e}"))?;
                in_flight.remove(&key);
                let mut world = lock(&shared);
                world.operator.writes_in_reconcile.remove(&id);
                world.observer.on_reconcile_end(&mut world, Some(id));
                let now = world.now;
                let delay = match outcome {
                    Requeue::Done => {
                        failures.remove(&key);
                        None
                    }
                    Requeue::After(delay) => {
                        failures.remove(&key);
                        Some(delay)
                    }
                    Requeue::Error(error) => {
                        let count = failures.entry(key.clone()).or_insert(0);
                        *count = count.saturating_add(1);
                        let delay = error.retry_after(*count);
                        world.record(Category::Operator, format!("{who}reconcile {key} failed: {error}; retry in {delay:?}"));
                        Some(delay)
                    }
                };
                if let Some(delay) = delay {
                    queue.schedule(key.clone(), now + delay);
                }
                if rerun.remove(&key) {
                    queue.schedule(key, now);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> ObjectRef {
        ObjectRef::new("SeiNode", "ns", name)
    }

    #[test]
    fn a_key_is_queued_once_at_its_earliest_time() {
        let mut queue = WorkQueue::default();
        queue.schedule(key("a"), Duration::from_secs(10));
        queue.schedule(key("a"), Duration::from_secs(20));
        queue.schedule(key("b"), Duration::from_secs(5));
        queue.schedule(key("a"), Duration::from_secs(1));
        assert_eq!(queue.len(), 2);
        assert_eq!(queue.pop_due(Duration::from_secs(0)), None);
        assert_eq!(queue.pop_due(Duration::from_secs(30)), Some(key("a")));
        assert_eq!(queue.pop_due(Duration::from_secs(30)), Some(key("b")));
        assert!(queue.is_empty());
    }
}
