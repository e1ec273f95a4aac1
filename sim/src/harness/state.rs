//! Everything the simulated world knows, behind one mutex shared by the world's own step, the worker hosts'
//! servers and the operator host's clients. turmoil runs every host on one thread, so the lock is never
//! contended; it exists because the operator's traits require `Send + Sync`. No lock is held across an await.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rand::rngs::StdRng;
use sei_operator_core::clock::{SignedDuration, Timestamp};
use sei_operator_core::cluster::{LabelSelector, ObjectRef};

use crate::apiserver::ApiServer;
use crate::harness::fault_state::{OperatorFaults, ScriptedTaskFailure};
use crate::harness::ledger::{Ledger, Writer};
use crate::harness::trace::{Category, Trace};
use crate::kube::plane::ControlPlane;
use crate::kube::pod::PodEnv;
use crate::node::Chains;
use crate::node::chain::Chain;

/// The world's state, shared.
pub type SharedWorld = Arc<Mutex<WorldState>>;

/// Locks the world. A poisoned lock (a panic elsewhere) still yields the state: the run is failing anyway and
/// its trace is what the engineer needs.
pub fn lock(shared: &SharedWorld) -> MutexGuard<'_, WorldState> {
    shared.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Durations and speeds of the fake cluster and chain.
#[derive(Clone, Debug)]
pub struct Timings {
    /// kube-controller-manager's delay between a write and the controllers acting on it (informer delivery and
    /// work-queue wait): what makes `status.observedGeneration` trail `metadata.generation`.
    pub controller_lag: Duration,
    /// Up to this much more lag, drawn from the world's RNG for each sync, so seeds explore interleavings.
    pub controller_lag_jitter: Duration,
    /// Block-sync speed of a node behind the tip, in blocks per second.
    pub sync_speed: u64,
    /// How long each sidecar task type takes; others take `default_task_duration`.
    pub task_durations: BTreeMap<String, Duration>,
    pub default_task_duration: Duration,
    /// How long a sidecar request may take before the client gives up.
    pub sidecar_timeout: Duration,
    /// The API server's round trip for the operator's calls (zero: the call still yields to other tasks).
    pub api_latency: Duration,
    /// Per-node block-sync speeds (blocks per second), overriding `sync_speed`.
    pub sync_speed_by_node: BTreeMap<String, u64>,
}

impl Default for Timings {
    fn default() -> Self {
        let task_durations = [("snapshot-restore", 30), ("discover-peers", 2), ("config-apply", 1), ("mark-ready", 1)]
            .into_iter()
            .map(|(name, secs)| (name.to_owned(), Duration::from_secs(secs)))
            .collect();
        Timings {
            controller_lag: Duration::from_secs(1),
            controller_lag_jitter: Duration::from_millis(500),
            sync_speed: 200,
            task_durations,
            default_task_duration: Duration::from_secs(1),
            sidecar_timeout: Duration::from_secs(5),
            api_latency: Duration::ZERO,
            sync_speed_by_node: BTreeMap::new(),
        }
    }
}

/// Told of what happens at the moment it happens, by the layer where it happens — the operator's client (a write,
/// a read, a delete, a reconcile's end), the garbage collector (a delete), the kubelet (seid's start and restart)
/// — without naming who listens. The invariants listen (`crate::harness::invariants::INVARIANTS`): a violation that
/// a check of the state after the step would miss is caught here.
pub trait Observer: Send + Sync {
    fn on_write(
        &self,
        world: &mut WorldState,
        key: &ObjectRef,
        verb: &str,
        stored: &serde_json::Value,
        writer: Writer<'_>,
    );
    /// The operator deleted `key` (or the garbage collector did, for the operator's owner).
    fn on_delete(&self, world: &mut WorldState, key: &ObjectRef);
    /// A user (the harness) deleted `key`.
    fn on_user_delete(&self, world: &mut WorldState, key: &ObjectRef);
    fn on_seid_start(&self, world: &mut WorldState, key: &ObjectRef);
    fn on_seid_restart(&self, world: &mut WorldState, key: &ObjectRef);
    /// The operator's client read one object at `at` (`None`: the store as it is) within `reconcile`.
    fn on_operator_get(&self, world: &mut WorldState, reconcile: Option<(u64, &str)>, key: &ObjectRef, at: Option<u64>);
    fn on_operator_list(
        &self,
        world: &mut WorldState,
        reconcile: Option<(u64, &str)>,
        kind: &str,
        namespace: &str,
        selector: &LabelSelector,
        at: Option<u64>,
    );
    fn on_reconcile_end(&self, world: &mut WorldState, id: Option<u64>);
}

/// The world: its clock and RNG, its trace, and the parts each layer owns. A step that takes a part, not the
/// whole, says by its signature what it may touch.
pub struct WorldState {
    /// Simulated time since the start.
    pub now: Duration,
    pub epoch: Timestamp,
    pub seed: u64,
    pub rng: StdRng,
    pub trace: Trace,
    pub timings: Timings,
    /// The API server: the store, its faults, RBAC, the requests it served.
    pub api: ApiServer,
    /// The control plane: worker nodes, pods, volumes, and the controllers' bookkeeping.
    pub plane: ControlPlane,
    /// The chains, the image registry and the milestones still to come.
    pub chains: Chains,
    /// What happened that the invariants and the reports judge.
    pub ledger: Ledger,
    /// The operator process's faults (crashes, cache lag, dropped watch events).
    pub operator: OperatorFaults,
    /// The operator's replicas, in a world with more than one (`crate::operator_host::replicas`).
    pub replicas: crate::operator_host::replicas::Replicas,
    pub task_failures: Vec<ScriptedTaskFailure>,
    /// User edits armed to land right after a moment of the operator's (`edit: {after: ...}`).
    pub aimed_edits: Vec<crate::harness::aimed::AimedEdit>,
    /// The operator's rollout stall threshold (docs/design.md §5.7: 10 minutes, configurable), for the stall invariant.
    pub stall_threshold: Duration,
    /// Told of what happens at the moment it happens (a write, a delete, seid's start): the invariants.
    pub observer: &'static dyn crate::harness::state::Observer,
}

impl WorldState {
    /// The simulated wall-clock time.
    pub fn timestamp(&self) -> Timestamp {
        self.timestamp_at(self.now)
    }

    /// The simulated wall-clock time at `at` since the start.
    pub fn timestamp_at(&self, at: Duration) -> Timestamp {
        let offset = SignedDuration::try_from(at).unwrap_or(SignedDuration::MAX);
        self.epoch.checked_add(offset).unwrap_or(self.epoch)
    }

    /// Traces the chain milestones reached by now.
    pub fn pass_milestones(&mut self) {
        while self.chains.milestones.last().is_some_and(|(at, _)| *at <= self.now) {
            if let Some((at, text)) = self.chains.milestones.pop() {
                self.trace.record(at, Category::Chain, text);
            }
        }
    }

    pub fn record(&mut self, category: Category, text: impl std::fmt::Display) {
        self.trace.record(self.now, category, text);
    }

    /// What a pod's clock and probes read of the world.
    pub fn pod_env(&self) -> PodEnv<'_> {
        PodEnv { now: self.now, chains: &self.chains, volumes: &self.plane.volumes }
    }

    /// The chain a pod of `node` runs on.
    pub fn chain_for(&self, chain_id: Option<&str>) -> Option<&Chain> {
        self.chains.chain_for(chain_id)
    }

    /// Wakes the worker hosting `worker` so it starts or stops servers.
    pub fn touch_worker(&mut self, worker: usize) {
        self.plane.touch_worker(worker);
    }
}
