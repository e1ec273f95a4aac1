//! The operator host's controller loop, one concern per method: the informers' initial list ([`Host::start`]),
//! watch delivery through a possibly lagging cache with dropped events and the heal's relist
//! ([`Host::deliver_watch_events`]), starting due reconciles within the concurrency limit and the livelock budget
//! ([`Host::start_due_reconciles`]), the wait until the next thing to do ([`Host::next_wait`]), and a finished
//! reconcile's requeue or back-off ([`Host::finish`]).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use sei_operator_core::cluster::ObjectRef;
use tokio::sync::Notify;
use tokio::task::JoinSet;

use super::queue::{Delivery, Triggers, WorkQueue};
use super::{OperatorConfig, OperatorContext, RECONCILES_PER_INSTANT, Reconciler, Requeue};
use crate::apiserver::store::{Change, Watch};
use crate::harness::invariants::NO_OPERATOR_LIVELOCK;
use crate::harness::ledger::InvariantViolation;
use crate::harness::state::{SharedWorld, WorldState, lock};
use crate::harness::trace::Category;
use crate::node::sidecar::client::SimSidecar;
use crate::operator_host::clock::SimClock;
use crate::operator_host::cluster::{ClientKind, SimCluster};
use crate::operator_host::replicas::Gate;

/// Runs the controller loop; with a `gate`, reconciles start only while the replica believes it leads.
pub(super) async fn run_operator_gated<R: Reconciler>(
    shared: SharedWorld,
    reconciler: R,
    config: OperatorConfig,
    tick: Duration,
    gate: Option<Gate>,
) -> turmoil::Result {
    let mut host = Host::start(shared, reconciler, config, tick, gate);
    loop {
        if let Some(gate) = &host.gate {
            crate::operator_host::replicas::wait_while_paused(&host.shared, gate.index).await;
        }
        let now = host.deliver_watch_events();
        host.start_due_reconciles(now);
        let wait = host.next_wait(now);
        // `biased`: tokio's select! otherwise picks among ready branches with an RNG that turmoil cannot seed
        // (it needs `tokio_unstable`), which would make runs differ.
        tokio::select! {
            biased;
            _ = host.wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
            _ = async { if let Some(gate) = &host.gate { gate.changed.notified().await } }, if host.gate.is_some() => {}
            Some(joined) = host.running.join_next(), if !host.running.is_empty() => {
                // A panicking reconcile is a bug in the controller: the host fails and the run reports it.
                let (key, id, outcome) = joined.map_err(|e| format!("a reconcile panicked: {e}"))?;
                host.finish(key, id, outcome);
            }
        }
    }
}

/// What the host holds in memory: lost with it when the world crashes it.
struct Host<R: Reconciler> {
    shared: SharedWorld,
    reconciler: Rc<R>,
    kinds: Vec<String>,
    config: OperatorConfig,
    tick: Duration,
    gate: Option<Gate>,
    /// The host's name, and the prefix of its trace lines (empty for the first replica).
    host: String,
    who: String,
    sidecar: SimSidecar,
    cluster: SimCluster,
    clock: SimClock,
    queue: WorkQueue,
    /// Failed reconciles in a row, per key; a success forgets the key.
    failures: BTreeMap<ObjectRef, u32>,
    in_flight: BTreeSet<ObjectRef>,
    rerun: BTreeSet<ObjectRef>,
    running: JoinSet<(ObjectRef, u64, Requeue)>,
    next_id: u64,
    watch: Watch,
    /// Watch events the (lagging) cache does not hold yet.
    pending: VecDeque<Change>,
    filters_triggers: bool,
    triggers: Triggers,
    /// The simulated instant reconciles were last started at, and how many, for the livelock budget.
    instant: Duration,
    started_this_instant: u64,
    /// Signalled on every store write.
    wake: Arc<Notify>,
}

impl<R: Reconciler> Host<R> {
    /// A freshly started host: its informers' initial list queues every object of the reconciled kinds.
    fn start(shared: SharedWorld, reconciler: R, config: OperatorConfig, tick: Duration, gate: Option<Gate>) -> Self {
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
        // Reconcile ids of replica i start at i << 48: the world's per-reconcile records never mix two replicas'.
        let first_id = (index as u64) << 48;
        let mine = move |id: &u64| *id >> 48 == index as u64;
        let filters_triggers = reconciler.filters_triggers();
        let (watch, wake) = {
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
            world.record(Category::Operator, format_args!("{who}started, {} keys queued", queue.len()));
            // The informers start from their cache: if it lags, what it does not hold yet arrives as events.
            let cache_version =
                crate::operator_host::cluster::operator_cache_version(&world).unwrap_or(world.api.store.version());
            (Watch::from_version(&world.api.store, cache_version), world.api.changed.clone())
        };
        Host {
            shared,
            reconciler,
            kinds,
            config,
            tick,
            gate,
            host,
            who,
            sidecar,
            cluster,
            clock,
            queue,
            failures: BTreeMap::new(),
            in_flight: BTreeSet::new(),
            rerun: BTreeSet::new(),
            running: JoinSet::new(),
            next_id: first_id,
            watch,
            pending: VecDeque::new(),
            filters_triggers,
            triggers: Triggers::default(),
            instant: Duration::ZERO,
            started_this_instant: 0,
            wake,
        }
    }

    /// Delivers the watch events the cache holds by now (dropping those a fault drops, relisting on a heal) and
    /// queues the keys they wake. Returns the simulated time.
    fn deliver_watch_events(&mut self) -> Duration {
        let shared = self.shared.clone();
        let mut world = lock(&shared);
        self.pending.extend(self.watch.poll(&world.api.store).iter().cloned());
        // Events reach the controller only once its (possibly lagging) cache holds them.
        let visible = crate::operator_host::cluster::operator_cache_version(&world).unwrap_or(u64::MAX);
        let delivered = self.pending.iter().take_while(|c| c.version <= visible).count();
        let changes: Vec<_> = self.pending.drain(..delivered).collect();
        let now = world.now;
        let mut deliveries = relisted_on_heal(&mut world);
        for change in changes {
            if world.operator.drop_watch_events > 0 {
                world.operator.drop_watch_events -= 1;
                world.record(
                    Category::Fault,
                    format_args!("watch event dropped: {:?} {}", change.change, change.object),
                );
                world.operator.unobserved.insert(change.object.clone(), change.controller.clone());
                continue;
            }
            world.operator.unobserved.remove(&change.object);
            world.operator.cache_floor = world.operator.cache_floor.max(change.version);
            deliveries.push((change.object, change.controller, Some((change.change, change.fingerprints))));
        }
        for (object, controller, judged) in deliveries {
            let (wakes_itself, wakes_owner) =
                if self.filters_triggers { self.triggers.judge(&object, judged) } else { (true, true) };
            // Both, as two kube-runtime controllers would: a child SeiNode is reconciled itself (the SeiNode
            // controller) and wakes its owning deployment (the deployment controller `owns` SeiNodes).
            if wakes_itself && self.kinds.contains(&object.kind) {
                self.queue.schedule(object.clone(), now);
            }
            if let Some((kind, name)) = controller.filter(|(kind, _)| wakes_owner && self.kinds.contains(kind)) {
                self.queue.schedule(ObjectRef::new(kind, &object.namespace, name), now);
            }
        }
        now
    }

    /// Starts every due reconcile the concurrency limit and the livelock budget allow; a key in flight is rerun
    /// when its reconcile ends. A standby (or a replica that knows it lost the Lease) starts nothing.
    fn start_due_reconciles(&mut self, now: Duration) {
        if now != self.instant {
            (self.instant, self.started_this_instant) = (now, 0);
        }
        let leading = self.gate.as_ref().is_none_or(|g| g.leading.get());
        while leading
            && self.running.len() < self.config.concurrency
            && self.started_this_instant < RECONCILES_PER_INSTANT
        {
            let Some(key) = self.queue.pop_due(now) else { break };
            self.started_this_instant += 1;
            if self.started_this_instant == RECONCILES_PER_INSTANT {
                let message =
                    format!("{RECONCILES_PER_INSTANT} reconciles at t={now:?} without time passing, the last of {key}");
                let mut world = lock(&self.shared);
                world.record(Category::Operator, format_args!("livelock: {message}"));
                world.ledger.write_violations.push(InvariantViolation { invariant: NO_OPERATOR_LIVELOCK, message });
            }
            if self.in_flight.contains(&key) {
                self.rerun.insert(key);
                continue;
            }
            self.next_id += 1;
            let id = self.next_id;
            lock(&self.shared).record(Category::Operator, format_args!("{}reconcile {key}", self.who));
            let ctx = OperatorContext {
                cluster: self.cluster.for_reconcile(id, &key.kind),
                sidecar: self.sidecar.with_caller(&format!("{}:{}", self.host, key.kind)),
                clock: self.clock.clone(),
            };
            self.in_flight.insert(key.clone());
            let reconciler = self.reconciler.clone();
            // Boxed before it is spawned: a reconcile's future is kilobytes, and spawning copies an unboxed
            // future several times over (boxing halved those copies, 3.4% of a fuzz run's instructions).
            self.running.spawn_local(Box::pin(async move {
                let outcome = reconciler.reconcile(&ctx, &key).await;
                (key, id, outcome)
            }));
        }
    }

    /// How long to sleep when nothing wakes the host first: until the next queued key is due (at least a tick),
    /// or one tick while events wait for the cache to catch up, which no store write may signal.
    fn next_wait(&self, now: Duration) -> Duration {
        if !self.pending.is_empty() {
            return self.tick;
        }
        self.queue.next_due().map_or(Duration::from_secs(3600), |at| at.saturating_sub(now)).max(self.tick)
    }

    /// A reconcile ended: requeued as it asked, or after production's back-off for its failures in a row; rerun
    /// at once if an event for its key came while it ran.
    fn finish(&mut self, key: ObjectRef, id: u64, outcome: Requeue) {
        self.in_flight.remove(&key);
        let mut world = lock(&self.shared);
        world.operator.writes_in_reconcile.remove(&id);
        world.observer.on_reconcile_end(&mut world, Some(id));
        let now = world.now;
        let delay = match outcome {
            Requeue::Done => {
                self.failures.remove(&key);
                None
            }
            Requeue::After(delay) => {
                self.failures.remove(&key);
                Some(delay)
            }
            Requeue::Error(error) => {
                let count = self.failures.entry(key.clone()).or_insert(0);
                *count = count.saturating_add(1);
                let delay = error.retry_after(*count);
                world.record(
                    Category::Operator,
                    format!("{}reconcile {key} failed: {error}; retry in {delay:?}", self.who),
                );
                Some(delay)
            }
        };
        if let Some(delay) = delay {
            self.queue.schedule(key.clone(), now + delay);
        }
        if self.rerun.remove(&key) {
            self.queue.schedule(key, now);
        }
    }
}

/// The heal of dropped watch events is the watch's relist: it reports the objects it lists, never one deleted in
/// the gap (kube-rs `kube-runtime/src/watcher.rs`, `Event::InitApply`: "Deleted events may be missed when
/// restarting the stream"). Whoever owned a deleted object hears of it only by looking again.
fn relisted_on_heal(world: &mut WorldState) -> Vec<Delivery> {
    let mut deliveries = Vec::new();
    if std::mem::take(&mut world.operator.deliver_unobserved) {
        let unobserved = std::mem::take(&mut world.operator.unobserved);
        for (object, controller) in unobserved {
            if world.api.store.get(&object, None).is_none() {
                world.record(Category::Fault, format_args!("deleted while unobserved, not relisted: {object}"));
                continue;
            }
            world.record(Category::Fault, format_args!("unobserved object delivered on heal: {object}"));
            deliveries.push((object, controller, None));
        }
    }
    deliveries
}
