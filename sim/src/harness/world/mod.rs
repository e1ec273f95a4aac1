//! The `World`: a seeded, simulated cluster — API store, control plane, worker nodes with their pods' servers,
//! the chain, and optionally the operator's host — stepped tick by tick on turmoil's clock. Tests and scenarios
//! drive it from here: build, apply objects, run, inject faults, read the trace; every step checks the
//! invariants.

mod builder;
mod faults;

use std::borrow::Cow;
use std::cell::RefCell;
use std::future::Future;
use std::pin::pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use sei_operator_core::api::SeiNodeDeployment;
use sei_operator_core::cluster::{Cluster, ClusterError, ClusterObject, LabelSelector, ObjectRef};
use sei_operator_core::node_defaults::quantity_value;
use sei_operator_core::objects::meta::find_condition;
use sei_operator_core::rollout::vocabulary::{REASON_INVALID_UPDATE_STRATEGY, ROLLOUT_IN_PROGRESS};

pub use builder::{WorldBuilder, shared_validator};

use crate::apiserver::json::Fields;
use crate::harness::invariants::{self, LIVENESS, ObservedObjects};
use crate::harness::ledger::InvariantViolation;
use crate::harness::state::{SharedWorld, WorldState, lock};
use crate::harness::trace::{Category, Trace};
use crate::kube::kubelet::PodRuntime;
use crate::kube::{self as kube_model};
use crate::node::sidecar::client::SimSidecar;
use crate::operator_host::clock::SimClock;
use crate::operator_host::cluster::{ClientKind, SimCluster};
use crate::operator_host::{OperatorConfig, Reconciler, run_operator};

/// The pinned epoch of every run: 2026-01-01T00:00:00Z.
pub const EPOCH_SECONDS: i64 = 1_767_225_600;
/// Invariants are checked at least this often in simulated time, even when nothing changed.
pub const TIME_CHECK_INTERVAL: Duration = Duration::from_secs(10);
/// The operator's host name.
pub use crate::operator_host::replicas::OPERATOR_HOST;

/// How a run failed.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error(
        "invariant {} violated at step {step} (t={at:?}, seed {seed}): {}\n--- trace tail ---\n{trace_tail}",
        violation.invariant, violation.message
    )]
    Invariant { violation: InvariantViolation, step: u64, at: Duration, seed: u64, trace_tail: String },
    #[error("a simulated host failed: {0}")]
    Host(String),
    #[error("not done within {within:?} (seed {seed}): {what}")]
    Timeout { within: Duration, seed: u64, what: String },
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error("world setup: {0}")]
    Setup(String),
}

/// The simulated world.
pub struct World {
    sim: turmoil::Sim<'static>,
    shared: SharedWorld,
    observed: ObservedObjects,
    seed: u64,
    tick: Duration,
    steps: u64,
    probes: usize,
    operator: bool,
    operator_down: bool,
    last_checked: (u64, usize),
    last_checked_at: Duration,
    notified_version: u64,
    invariant_checks: u64,
    /// [`World::unsettled_deployments`] and [`World::at_rest`] as of a store version: both read the store only,
    /// and a run asks them after every tick while waiting to settle (decoding every deployment each time).
    rest_memo: RefCell<RestMemo>,
}

/// The answers of the settle and rest predicates, each with the store version it was computed at.
#[derive(Default)]
struct RestMemo {
    unsettled: Option<(u64, Vec<String>)>,
    at_rest: Option<(u64, bool)>,
}

/// Polls a future that completes without waiting on anything but a yield (the store's calls; the operator's
/// client yields once per call): `None` if it would wait for time or I/O.
pub fn poll_ready<F: Future>(future: F) -> Option<F::Output> {
    let mut future = pin!(future);
    let mut context = Context::from_waker(Waker::noop());
    for _ in 0..16 {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return Some(output);
        }
    }
    None
}

impl World {
    /// A builder with the pinned epoch, 3 workers, 100 ms ticks, an empty registry and no chain.
    pub fn builder(seed: u64) -> WorldBuilder {
        WorldBuilder::new(seed)
    }

    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Simulated time since the start.
    pub fn now(&self) -> Duration {
        self.sim.elapsed()
    }

    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// How many times the invariants were checked (every step in which anything changed, and every
    /// [`TIME_CHECK_INTERVAL`] regardless).
    pub fn invariant_checks(&self) -> u64 {
        self.invariant_checks
    }

    /// Reads the world's state.
    pub fn inspect<T>(&self, f: impl FnOnce(&WorldState) -> T) -> T {
        f(&lock(&self.shared))
    }

    /// Changes the world's state directly (scenario set-up, faults not covered by an operation).
    pub fn modify<T>(&self, f: impl FnOnce(&mut WorldState) -> T) -> T {
        f(&mut lock(&self.shared))
    }

    /// A copy of the trace so far.
    pub fn trace(&self) -> Trace {
        lock(&self.shared).trace.clone()
    }

    /// The world's shared state, for a server that answers requests from another thread while this world steps
    /// (`crate::serve`).
    pub fn shared(&self) -> SharedWorld {
        self.shared.clone()
    }

    /// The harness's API client (no faults, no lag).
    pub fn cluster(&self) -> SimCluster {
        SimCluster::new(self.shared.clone(), ClientKind::Harness)
    }

    /// The simulated clock (the pinned epoch plus simulated time).
    pub fn clock(&self) -> SimClock {
        SimClock::new(self.shared.clone())
    }

    /// An API client with the operator's faults, for tests of stale reads and injected errors.
    pub fn operator_cluster(&self) -> SimCluster {
        SimCluster::new(self.shared.clone(), ClientKind::Operator)
    }

    fn call<T>(&self, future: impl Future<Output = Result<T, ClusterError>>) -> Result<T, SimError> {
        poll_ready(future)
            .unwrap_or_else(|| Err(ClusterError::Transient("the store call would block".into())))
            .map_err(Into::into)
    }

    pub fn get<K: ClusterObject>(&self, namespace: &str, name: &str) -> Result<K, SimError> {
        self.call(self.cluster().get::<K>(namespace, name))
    }

    pub fn list<K: ClusterObject>(&self, namespace: &str, selector: &LabelSelector) -> Result<Vec<K>, SimError> {
        let listed = self.call(self.cluster().list::<K>(namespace, selector))?;
        Ok(listed.into_iter().map(Arc::unwrap_or_clone).collect())
    }

    pub fn create<K: ClusterObject>(&self, object: &K) -> Result<K, SimError> {
        self.call(self.cluster().create(object)).map(Arc::unwrap_or_clone)
    }

    /// Creates the object, or replaces the stored one's metadata and spec with it (`kubectl apply`).
    pub fn apply<K: ClusterObject>(&self, object: &K) -> Result<K, SimError> {
        let meta = object.meta();
        let (namespace, name) = (meta.namespace.clone().unwrap_or_default(), meta.name.clone().unwrap_or_default());
        match self.get::<K>(&namespace, &name) {
            Ok(stored) => {
                let mut updated = object.clone();
                updated.meta_mut().resource_version = stored.meta().resource_version.clone();
                self.call(self.cluster().replace(&updated)).map(Arc::unwrap_or_clone)
            }
            Err(SimError::Cluster(ClusterError::NotFound(_))) => self.create(object),
            Err(other) => Err(other),
        }
    }

    /// Reads, changes and replaces an object (metadata and spec).
    pub fn edit<K: ClusterObject>(&self, namespace: &str, name: &str, f: impl FnOnce(&mut K)) -> Result<K, SimError> {
        let mut object = self.get::<K>(namespace, name)?;
        f(&mut object);
        self.call(self.cluster().replace(&object)).map(Arc::unwrap_or_clone)
    }

    /// Reads, changes and replaces an object's status.
    pub fn edit_status<K: ClusterObject>(
        &self,
        namespace: &str,
        name: &str,
        f: impl FnOnce(&mut K),
    ) -> Result<K, SimError> {
        let mut object = self.get::<K>(namespace, name)?;
        f(&mut object);
        self.call(self.cluster().replace_status(&object)).map(Arc::unwrap_or_clone)
    }

    pub fn delete<K: ClusterObject>(&self, namespace: &str, name: &str) -> Result<(), SimError> {
        self.call(self.cluster().delete::<K>(namespace, name))
    }

    /// The runtime state of a pod.
    pub fn pod(&self, namespace: &str, name: &str) -> Option<PodRuntime> {
        lock(&self.shared).plane.pods.get(&ObjectRef::new("Pod", namespace, name)).cloned()
    }

    /// Starts the operator's host; `factory` builds a fresh reconciler at every (re)start.
    pub fn start_operator<R: Reconciler, F: Fn() -> R + 'static>(&mut self, factory: F) {
        self.start_operator_with(OperatorConfig::default(), factory);
    }

    /// Starts the operator's host with a given configuration.
    pub fn start_operator_with<R: Reconciler, F: Fn() -> R + 'static>(&mut self, config: OperatorConfig, factory: F) {
        if self.operator {
            self.record(Category::Operator, "ignored: the operator is already started");
            return;
        }
        let (shared, tick) = (self.shared.clone(), self.tick);
        self.sim.host(OPERATOR_HOST, move || run_operator(shared.clone(), factory(), config, tick));
        self.operator = true;
    }

    /// Starts the operator as `n` replicas electing a leader through the Lease (`crate::operator_host::replicas`): hosts
    /// `operator`, `operator-1`, ...; `factory` builds a fresh reconciler at every (re)start of each. One replica is
    /// [`World::start_operator`]: no election, as before.
    pub fn start_operator_replicas<R: Reconciler, F: Fn() -> R + 'static>(&mut self, n: usize, factory: F) {
        if n <= 1 {
            return self.start_operator(factory);
        }
        if self.operator {
            self.record(Category::Operator, "ignored: the operator is already started");
            return;
        }
        let factory = Rc::new(factory);
        lock(&self.shared).replicas.list = vec![Default::default(); n];
        for index in 0..n {
            let (shared, tick, factory) = (self.shared.clone(), self.tick, factory.clone());
            let config = OperatorConfig::default();
            self.sim.host(crate::operator_host::replicas::host_name(index), move || {
                crate::operator_host::run_replica(shared.clone(), factory(), config, tick, index)
            });
        }
        self.operator = true;
    }

    /// The number of operator replicas electing a leader (0: one operator, no election).
    pub fn replica_count(&self) -> usize {
        lock(&self.shared).replicas.list.len()
    }

    /// Restarts replicas that crashed or exited, and takes down those that reached their end this step.
    fn cycle_replicas(&mut self, after_step: bool) {
        let count = self.replica_count();
        for index in 0..count {
            let host = crate::operator_host::replicas::host_name(index);
            let mut world = lock(&self.shared);
            let now = world.now;
            let Some(replica) = world.replicas.get_mut(index) else { continue };
            let due = replica.down_until.is_none_or(|until| now >= until);
            if !after_step && replica.down && due {
                // A new process: only the network's cut outlives it.
                *replica = crate::operator_host::replicas::ReplicaState {
                    api_unreachable_until: replica.api_unreachable_until,
                    ..Default::default()
                };
                world.record(Category::Operator, format_args!("{host} restarted"));
                drop(world);
                self.sim.bounce(host);
            } else if after_step && (replica.deposed || replica.crash_requested) && !replica.down {
                replica.down = true;
                drop(world);
                self.sim.crash(host);
            }
        }
    }

    /// One tick: the control plane and kubelets at the current time, then every host, then the invariants.
    pub fn step(&mut self) -> Result<(), SimError> {
        {
            let mut world = lock(&self.shared);
            world.now = self.sim.elapsed();
            world.pass_milestones();
            kube_model::step(&mut world);
            if world.api.store.version() != self.notified_version {
                self.notified_version = world.api.store.version();
                world.api.changed_at = world.now;
                world.api.changed.notify_one();
            }
        }
        if self.operator_down {
            self.operator_down = false;
            self.sim.bounce(OPERATOR_HOST);
            lock(&self.shared).record(Category::Operator, "restarted");
        }
        self.cycle_replicas(false);
        self.sim.step().map_err(|e| SimError::Host(e.to_string()))?;
        self.cycle_replicas(true);
        self.steps += 1;
        // Between steps (harness actions, faults) the world's time is the end of the tick just run.
        lock(&self.shared).now = self.sim.elapsed();
        let crash = std::mem::take(&mut lock(&self.shared).operator.crash_requested);
        if crash {
            self.crash_operator();
        }
        self.rearm_conflict_after_success();
        self.check_invariants()
    }

    /// Checks the invariants if anything happened since the last check, and at least every
    /// [`TIME_CHECK_INTERVAL`] for the ones that time alone can break.
    pub fn check_invariants(&mut self) -> Result<(), SimError> {
        let world = lock(&self.shared);
        let fingerprint = (world.api.store.version(), world.trace.lines().len());
        let time_check = world.now.saturating_sub(self.last_checked_at) >= TIME_CHECK_INTERVAL;
        if fingerprint == self.last_checked && !time_check {
            return Ok(());
        }
        self.last_checked = fingerprint;
        self.last_checked_at = world.now;
        self.invariant_checks += 1;
        invariants::check(&world, &mut self.observed).map_err(|violation| SimError::Invariant {
            violation,
            step: self.steps,
            at: world.now,
            seed: self.seed,
            trace_tail: world.trace.tail(40),
        })
    }

    /// Runs for `duration` of simulated time.
    pub fn run_for(&mut self, duration: Duration) -> Result<(), SimError> {
        let end = self.now() + duration;
        while self.now() < end {
            self.step()?;
        }
        Ok(())
    }

    /// Runs until `done` holds, failing after `within` of simulated time.
    pub fn run_until(
        &mut self,
        what: &str,
        within: Duration,
        mut done: impl FnMut(&World) -> bool,
    ) -> Result<(), SimError> {
        let end = self.now() + within;
        while !done(self) {
            if self.now() >= end {
                return Err(SimError::Timeout { within, seed: self.seed, what: what.into() });
            }
            self.step()?;
        }
        Ok(())
    }

    /// Whether every SeiNodeDeployment has settled: no rollout in progress, and its status observed the latest
    /// generation or names the target that failed.
    pub fn deployments_settled(&self) -> bool {
        self.unsettled_deployments().is_empty()
    }

    /// Whether the world is at rest: every deployment settled ([`World::deployments_settled`]) and out of the
    /// transitional phases (Pending, Initializing, Upgrading, Terminating), every SeiNode Running its image (as
    /// `currentImage` says) or Failed, every node a deployment's status lists still there, the Service of a deployment with a running node
    /// selecting its active set, and no object still being deleted.
    /// A run is compared with another only at rest: "settled" alone holds while nodes are still initializing.
    pub fn at_rest(&self) -> bool {
        let version = self.inspect(|state| state.api.store.version());
        if let Some((at, answer)) = self.rest_memo.borrow().at_rest
            && at == version
        {
            return answer;
        }
        let answer = self.compute_at_rest();
        self.rest_memo.borrow_mut().at_rest = Some((version, answer));
        answer
    }

    fn compute_at_rest(&self) -> bool {
        use sei_operator_core::api::{DeploymentPhase, SeiNode, SeiNodePhase};
        self.deployments_settled()
            && self.inspect(|state| {
                // A status naming a node that is gone has not been looked at since: its deployment has yet to
                // notice (a deletion its watch missed is seen only by its next resync).
                let decoded = state.api.store.decoded();
                let deployments_at_rest = state.api.store.all_of_kind("SeiNodeDeployment").all(|(key, value)| {
                    decoded.decode::<SeiNodeDeployment>(key, value).is_ok_and(|d| {
                        let status = d.status.as_ref().map(Cow::Borrowed).unwrap_or_default();
                        let phase = status.phase.unwrap_or_default();
                        let listed_exist = status.nodes.iter().all(|node| {
                            state.api.store.get(&ObjectRef::new("SeiNode", &key.namespace, &node.name), None).is_some()
                        });
                        // A deployment with a running node of its active set serves it through its Service:
                        // one it has yet to make (its predecessor's collected under a watch that missed it)
                        // is not at rest either.
                        let served = status.ready_replicas == 0
                            || status.active_set.as_ref().is_none_or(|active| {
                                let name = d.metadata.name.as_deref().unwrap_or_default();
                                let service = ObjectRef::new(
                                    "Service",
                                    &key.namespace,
                                    sei_operator_core::objects::names::deployment_service(name),
                                );
                                state.api.store.get(&service, None).is_some_and(|s| {
                                    s.at(&format!(
                                        "/spec/selector/{}",
                                        sei_operator_core::objects::meta::LABEL_REVISION.replace('/', "~1")
                                    ))
                                    .and_then(serde_json::Value::as_str)
                                        == Some(active.revision.as_str())
                                })
                            });
                        listed_exist
                            && served
                            && matches!(
                                phase,
                                DeploymentPhase::Ready | DeploymentPhase::Degraded | DeploymentPhase::Failed
                            )
                    })
                });
                // Running nodes have observed their image and their StatefulSet's template names it (an edit
                // back before the pods rolled leaves the pods and `currentImage` on the spec's image while the
                // template still names the abandoned one, until the node's next converge); failed ones are at
                // rest as they are.
                let nodes_at_rest = state.api.store.all_of_kind("SeiNode").all(|(key, value)| {
                    decoded.decode::<SeiNode>(key, value).is_ok_and(|n| {
                        let status = n.status.as_ref().map(Cow::Borrowed).unwrap_or_default();
                        let set = ObjectRef::new(
                            "StatefulSet",
                            &key.namespace,
                            sei_operator_core::objects::names::node_workload(&key.name),
                        );
                        // The sidecar's image too (a rollout field), and the set's own rollout done: its pods run
                        // that template (a sidecar-only change leaves `currentImage` as it was).
                        let sidecar_image = n.spec.effective_sidecar_image();
                        let template_on_spec = state.api.store.get(&set, None).is_none_or(|value| {
                            decoded.decode::<k8s_openapi::api::apps::v1::StatefulSet>(&set, value).is_ok_and(|set| {
                                let rolled = set.status.as_ref().is_some_and(|status| {
                                    status.observed_generation >= set.metadata.generation
                                        && status.update_revision.is_some()
                                        && status.current_revision == status.update_revision
                                });
                                rolled
                                    && set.spec.as_ref().is_some_and(|spec| {
                                        sei_operator_core::objects::workload::seid_image(&spec.template)
                                            == Some(n.spec.image.as_str())
                                            && sei_operator_core::objects::workload::sidecar_image(&spec.template)
                                                == Some(sidecar_image)
                                    })
                            })
                        });
                        // Its claim asks for at least the size its settings ask for: a larger size in the spec
                        // is a resize the node's controller has yet to send (a smaller one is refused, and said).
                        let claim_sized = || {
                            let settings = crate::operator_host::reconcilers::NODE_DEFAULTS.for_node(&n.spec);
                            let Some(wanted) = settings.storage.and_then(|s| s.size) else { return true };
                            let claim = ObjectRef::new(
                                "PersistentVolumeClaim",
                                &key.namespace,
                                sei_operator_core::objects::names::node_volume(&key.name),
                            );
                            state.api.store.get(&claim, None).is_none_or(|claim| {
                                let requested = claim
                                    .at("/spec/resources/requests/storage")
                                    .and_then(serde_json::Value::as_str)
                                    .and_then(quantity_value);
                                requested >= quantity_value(&wanted)
                            })
                        };
                        match status.phase.unwrap_or_default() {
                            SeiNodePhase::Running => {
                                template_on_spec
                                    && status.current_image.as_deref() == Some(n.spec.image.as_str())
                                    && claim_sized()
                            }
                            SeiNodePhase::Failed => true,
                            _ => false,
                        }
                    })
                });
                // Deletions (and the garbage collection they start) have finished.
                let nothing_deleting =
                    ["SeiNodeDeployment", "SeiNode", "StatefulSet", "Service", "Job", "Pod"].iter().all(|kind| {
                        state
                            .api
                            .store
                            .all_of_kind(kind)
                            .all(|(_, value)| value.metadata_field("deletionTimestamp").is_none())
                    });
                deployments_at_rest && nodes_at_rest && nothing_deleting && !state.api.store.has_garbage()
            })
    }

    /// The checks of a world at rest ([`World::at_rest`]): every deployment's fleet on its active image
    /// ([`invariants::fleet_on_active_image_at_rest`]).
    pub fn check_at_rest(&mut self) -> Result<(), SimError> {
        let world = lock(&self.shared);
        self.observed.refresh(&world);
        invariants::fleet_on_active_image_at_rest(&self.observed).map_err(|violation| SimError::Invariant {
            violation,
            step: self.steps,
            at: world.now,
            seed: self.seed,
            trace_tail: world.trace.tail(40),
        })
    }

    /// Liveness (invariant 7): runs until every SeiNodeDeployment settled — no rollout in progress, and its status
    /// observed the latest generation (converged on it, failed its template or refused it) — failing with
    /// `liveness` after `within`.
    pub fn run_until_settled(&mut self, within: Duration) -> Result<(), SimError> {
        // Complete on the latest spec, or explicitly failed on it (the failed target is remembered).
        let settled = |world: &World| world.unsettled_deployments().is_empty();
        match self.run_until("every deployment settles", within, settled) {
            Err(SimError::Timeout { .. }) => {
                let (at, trace_tail) = self.inspect(|w| (w.now, w.trace.tail(40)));
                Err(SimError::Invariant {
                    violation: InvariantViolation {
                        invariant: LIVENESS,
                        message: format!("a deployment did not settle within {within:?}"),
                    },
                    step: self.steps,
                    at,
                    seed: self.seed,
                    trace_tail,
                })
            }
            other => other,
        }
    }

    /// The SeiNodeDeployments that have not settled (see [`World::run_until_settled`]), each with why: a
    /// rollout in progress, or a status that has not observed the latest generation.
    pub fn unsettled_deployments(&self) -> Vec<String> {
        let version = self.inspect(|state| state.api.store.version());
        if let Some((at, answer)) = &self.rest_memo.borrow().unsettled
            && *at == version
        {
            return answer.clone();
        }
        let answer = self.compute_unsettled_deployments();
        self.rest_memo.borrow_mut().unsettled = Some((version, answer.clone()));
        answer
    }

    fn compute_unsettled_deployments(&self) -> Vec<String> {
        self.inspect(|state| {
            state
                .api
                .store
                .all_of_kind("SeiNodeDeployment")
                .filter_map(|(key, value)| {
                    let Ok(d) = state.api.store.decoded().decode::<SeiNodeDeployment>(key, value) else {
                        return Some(format!("{key} does not read as a SeiNodeDeployment"));
                    };
                    let status = d.status.as_ref().map(Cow::Borrowed).unwrap_or_default();
                    if let Some(rollout) = &status.rollout {
                        return Some(format!(
                            "{key} has not settled: a rollout to {} is in progress",
                            rollout.target_hash
                        ));
                    }
                    let observed = status.observed_generation == d.metadata.generation;
                    // A spec the operator refused (an invalid update strategy, a fork behind the chain) at this
                    // generation is explicitly failed, not stuck: it waits for the user.
                    let refused = find_condition(&status.conditions, ROLLOUT_IN_PROGRESS).is_some_and(|c| {
                        c.status == "False"
                            && c.reason == REASON_INVALID_UPDATE_STRATEGY
                            && c.observed_generation == d.metadata.generation
                    });
                    // A failed target is settled too, but only once the status observed the generation that
                    // still names it (the operator writes `observedGeneration` when it records or keeps a failed
                    // target, `rollout::rules::evaluate`): a later edit that leaves the template alone — a scale,
                    // a deletion policy — is acted on like any other.
                    (!observed && !refused).then(|| {
                        format!(
                            "{key} has not settled: its status observed generation {:?} of {:?}",
                            status.observed_generation, d.metadata.generation
                        )
                    })
                })
                .collect()
        })
    }

    /// Runs `f` with a sidecar client (tagged `caller`) on a fresh client host, stepping the world until it
    /// returns (at most 10 simulated minutes).
    pub fn probe<T, F, Fut>(&mut self, caller: &str, f: F) -> Result<T, SimError>
    where
        T: 'static,
        F: FnOnce(SimSidecar) -> Fut + 'static,
        Fut: Future<Output = T> + 'static,
    {
        self.probes += 1;
        let host = format!("probe-{}", self.probes);
        let slot: Rc<RefCell<Option<T>>> = Rc::new(RefCell::new(None));
        let client = SimSidecar::new(self.shared.clone(), caller);
        let output = slot.clone();
        self.sim.client(host, async move {
            let value = f(client).await;
            *output.borrow_mut() = Some(value);
            Ok(())
        });
        let within = Duration::from_secs(600);
        self.run_until("probe answers", within, |_| slot.borrow().is_some())?;
        slot.take().ok_or_else(|| SimError::Timeout { within, seed: self.seed, what: "probe".into() })
    }

    fn record(&self, category: Category, text: impl std::fmt::Display) {
        lock(&self.shared).record(category, text);
    }
}
