//! Everything the simulated world knows, behind one mutex shared by the world's own step, the worker hosts'
//! servers and the operator host's clients. turmoil runs every host on one thread, so the lock is never
//! contended; it exists because the operator's traits require `Send + Sync`. No lock is held across an await.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rand::rngs::StdRng;
use sei_operator_core::clock::{SignedDuration, Timestamp};
use sei_operator_core::cluster::{Event, ObjectRef};
use tokio::sync::Notify;

use crate::apiserver::store::Store;
use crate::harness::fault_state::{ApiFaults, OperatorFaults, ScriptedTaskFailure};
use crate::harness::invariants::InvariantViolation;
use crate::harness::trace::{Category, Trace};
use crate::kube::ControllerState;
use crate::kube::kubelet::{PodRuntime, Volume};
use crate::node::chain::Chain;
use crate::node::registry::ImageRegistry;

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

/// One worker node.
#[derive(Debug)]
pub struct WorkerState {
    pub name: String,
    pub up: bool,
    /// Images already pulled on this node (`imagePullPolicy: IfNotPresent`).
    pub image_cache: BTreeSet<String>,
    /// Bumped whenever the servers its pods should run change; wakes the worker's host.
    pub servers_version: u64,
    pub wake: Arc<Notify>,
    /// When it went down, while it is down.
    pub down_since: Option<Duration>,
    /// The node monitor has marked it NotReady (its grace period is over).
    pub marked_not_ready: bool,
}

impl WorkerState {
    /// Whether the control plane still believes the node is fine: down, but within the node monitor's grace
    /// period, so its pods' statuses are frozen as last reported.
    pub fn status_frozen(&self, now: Duration) -> bool {
        self.down_since.is_some_and(|since| now < since + NODE_MONITOR_GRACE)
    }
}

/// How long the node lifecycle controller waits for a silent kubelet before marking its node NotReady and its
/// pods not Ready (`--node-monitor-grace-period`, 40 s by default).
pub const NODE_MONITOR_GRACE: Duration = Duration::from_secs(40);

/// A sidecar or seid RPC request, as the client sent it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SidecarCall {
    pub at: Duration,
    pub caller: String,
    pub host: String,
    pub method: String,
    pub path: String,
}

/// A task submission a sidecar accepted (`POST /v0/tasks`, always answered 201). Whether it started work is not
/// in the answer (sei-protocol/seictl `sidecar/engine/engine.go`, `Engine.Submit`, answers a new id, a re-run
/// and a no-op alike), so it is recorded here: lets tests and invariants prove submissions are idempotent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SidecarSubmission {
    pub at: Duration,
    pub pod: ObjectRef,
    /// The sidecar process that answered (each restart is a new incarnation; the task table outlives it).
    pub incarnation: u64,
    pub id: uuid::Uuid,
    pub task_type: String,
    /// The HTTP status answered.
    pub status: u16,
    /// It started a run: the id was new, or its task had failed and runs again.
    pub started: bool,
    /// The task's run number after the submission (1 for a new id; one more for each re-run after a failure).
    pub run: u32,
    /// Who submitted it (the client's caller tag: `operator:SeiNode` for the operator's node controller).
    pub caller: String,
}

/// A seid exit that was not a clean halt, and which node it hit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PanicRecord {
    pub at: Duration,
    pub namespace: String,
    pub node: Option<String>,
    pub pod: String,
    pub image: String,
    pub reason: String,
    pub upgrade_panic: bool,
    pub exit: crate::node::seid::SeidExit,
}

/// The world.
pub struct WorldState {
    /// Simulated time since the start.
    pub now: Duration,
    pub epoch: Timestamp,
    pub seed: u64,
    pub rng: StdRng,
    pub store: Store,
    pub trace: Trace,
    pub chains: BTreeMap<String, Chain>,
    /// The chain of pods whose node names none.
    pub default_chain: String,
    pub registry: ImageRegistry,
    pub timings: Timings,
    pub pods: BTreeMap<ObjectRef, PodRuntime>,
    pub volumes: BTreeMap<ObjectRef, Volume>,
    pub workers: Vec<WorkerState>,
    pub controllers: ControllerState,
    pub api_faults: ApiFaults,
    /// RBAC from `deploy/`, permissions revoked by a scenario, and what the operator was granted.
    pub authorization: crate::apiserver::authorization::AuthorizationState,
    pub operator: OperatorFaults,
    /// The operator's replicas, in a world with more than one (`crate::operator_host::replicas`).
    pub replicas: crate::operator_host::replicas::Replicas,
    pub task_failures: Vec<ScriptedTaskFailure>,
    pub sidecar_calls: Vec<SidecarCall>,
    /// Every task submission a sidecar accepted, and whether it started work.
    pub sidecar_submissions: Vec<SidecarSubmission>,
    pub panics: Vec<PanicRecord>,
    /// When every fault injected so far stops acting on the world (`Fault::acts_until`); `None` while one acts
    /// until a heal. Checks that bound how fast the operator reacts hold only outside faults.
    pub faults_act_until: Option<Duration>,
    /// (namespace, node, image) for every image a Ready pod of that node has run.
    pub ready_images: BTreeSet<(String, String, String)>,
    pub events: Vec<(Duration, Event)>,
    /// Violations found at the moment they happen — a write, a delete, seid's start — that a check of the state
    /// after the step would miss.
    pub write_violations: Vec<InvariantViolation>,
    /// (namespace, deployment, revision) of every SeiNode a user (the harness) deleted, in order: a Service left
    /// with no node to send traffic to by a user's delete is the user's doing, not the operator's.
    pub user_deleted_nodes: Vec<(String, String, String)>,
    /// Faults injected that can fail a rollout by design (a scripted sidecar task failure, a re-pushed image, a
    /// worker crash), with when: a rollout that fails with none of them before is judged needless.
    pub failure_faults: Vec<(Duration, String)>,
    /// What each SeiNodeDeployment reconcile in flight read (by reconcile id): write-time invariants judge a
    /// write by what its reconcile could see.
    pub reconcile_reads: BTreeMap<u64, crate::harness::invariants::ReconcileReads>,
    /// User edits armed to land right after a moment of the operator's (`edit: {after: ...}`).
    pub aimed_edits: Vec<crate::harness::aimed::AimedEdit>,
    /// Chain milestones not yet reached, soonest last (popped as time passes).
    pub milestones: Vec<(Duration, String)>,
    /// The operator's rollout stall threshold (docs/design.md §5.7: 10 minutes, configurable), for the stall invariant.
    pub stall_threshold: Duration,
    /// When the store last changed (as seen at the start of a step): a lagging cache catches up once the
    /// store has been quiet for a while (see `SimCluster`).
    pub store_changed_at: Duration,
    /// Signalled on every store write: wakes the operator's watch.
    pub store_changed: Arc<Notify>,
    /// Every request the operator's client sent the API server (`sei-sim bench --api-load`).
    pub api_requests: ApiRequests,
}

/// The requests the operator's clients (every replica, their lease electors included) sent the API server, by
/// verb and kind: what a cached design is measured by. A read answered from the operator's cache is no request.
/// Counted when the call reaches the API server's handling (a call refused at every retry by a throttling API
/// server counts once, as the one call the reconcile made).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ApiRequests {
    /// (verb, kind) → requests. Verbs: get, list, create, update, update-status, delete, event.
    pub by_call: BTreeMap<(&'static str, String), u64>,
}

impl ApiRequests {
    pub fn count(&mut self, verb: &'static str, kind: &str) {
        *self.by_call.entry((verb, kind.to_owned())).or_default() += 1;
    }

    /// Reads (get, list) and writes (everything else, events included).
    pub fn reads_and_writes(&self) -> (u64, u64) {
        self.by_call.iter().fold((0, 0), |(reads, writes), ((verb, _), n)| {
            if matches!(*verb, "get" | "list") { (reads + n, writes) } else { (reads, writes + n) }
        })
    }

    /// What was sent since `earlier` (a snapshot of the same counter).
    pub fn since(&self, earlier: &ApiRequests) -> ApiRequests {
        let by_call = self
            .by_call
            .iter()
            .map(|(call, n)| (call.clone(), n - earlier.by_call.get(call).copied().unwrap_or(0)))
            .filter(|(_, n)| *n > 0)
            .collect();
        ApiRequests { by_call }
    }
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
        while self.milestones.last().is_some_and(|(at, _)| *at <= self.now) {
            if let Some((at, text)) = self.milestones.pop() {
                self.trace.record(at, Category::Chain, text);
            }
        }
    }

    pub fn record(&mut self, category: Category, text: impl std::fmt::Display) {
        self.trace.record(self.now, category, text);
    }

    /// The chain a pod of `node` runs on.
    pub fn chain_for(&self, chain_id: Option<&str>) -> Option<&Chain> {
        chain_id.and_then(|id| self.chains.get(id)).or_else(|| self.chains.get(&self.default_chain))
    }

    /// Wakes the worker hosting `worker` so it starts or stops servers.
    pub fn touch_worker(&mut self, worker: usize) {
        self.controllers.kubelet_dirty = true;
        if let Some(state) = self.workers.get_mut(worker) {
            state.servers_version += 1;
            state.wake.notify_one();
        }
    }
}
