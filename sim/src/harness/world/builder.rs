//! Building a [`World`]: seed, pinned epoch, worker count, tick, chains, image registry and timings.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, UNIX_EPOCH};

use rand::SeedableRng;
use rand::rngs::StdRng;
use sei_operator_core::clock::Timestamp;
use sei_operator_core::manifest::ManifestValidator;
use tokio::sync::Notify;

use super::{EPOCH_SECONDS, SimError, World};
use crate::apiserver::ApiServer;
use crate::apiserver::store::Store;
use crate::harness::invariants::{INVARIANTS, ObservedObjects};
use crate::harness::ledger::Ledger;
use crate::harness::state::{SharedWorld, Timings, WorldState};
use crate::harness::trace::Trace;
use crate::kube::plane::{ControlPlane, ControllerState, WorkerState};
use crate::node::Chains;
use crate::node::chain::Chain;
use crate::node::registry::ImageRegistry;
use crate::node::worker::run_worker;

/// The CRD validator, compiled once per process (its schemas and CEL rules are fixed at build time) and shared
/// by every world: it holds no state a run could change, so sharing it cannot couple runs.
pub fn shared_validator() -> Result<Arc<ManifestValidator>, String> {
    static VALIDATOR: OnceLock<Result<Arc<ManifestValidator>, String>> = OnceLock::new();
    VALIDATOR.get_or_init(|| ManifestValidator::new().map(Arc::new).map_err(|e| e.to_string())).clone()
}

/// Builds a [`World`].
pub struct WorldBuilder {
    seed: u64,
    epoch: Timestamp,
    workers: usize,
    tick: Duration,
    chains: Vec<Chain>,
    registry: ImageRegistry,
    timings: Timings,
    admission: bool,
    authorization: bool,
    max_read_lag: u64,
    stall_threshold: Duration,
}

impl WorldBuilder {
    /// The pinned epoch, 3 workers, 100 ms ticks, an empty registry and no chain.
    pub(super) fn new(seed: u64) -> Self {
        WorldBuilder {
            seed,
            epoch: Timestamp::from_second(EPOCH_SECONDS).unwrap_or(Timestamp::UNIX_EPOCH),
            workers: 3,
            tick: Duration::from_millis(100),
            chains: Vec::new(),
            registry: ImageRegistry::default(),
            timings: Timings::default(),
            admission: true,
            authorization: true,
            max_read_lag: 64,
            stall_threshold: Duration::from_secs(600),
        }
    }

    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = workers.max(1);
        self
    }

    /// turmoil's tick: the resolution of simulated time (default 100 ms).
    pub fn tick(mut self, tick: Duration) -> Self {
        self.tick = tick;
        self
    }

    /// Adds a chain; the first one added is the default for pods whose node names none.
    pub fn chain(mut self, chain: Chain) -> Self {
        self.chains.push(chain);
        self
    }

    pub fn registry(mut self, registry: ImageRegistry) -> Self {
        self.registry = registry;
        self
    }

    pub fn timings(mut self, timings: Timings) -> Self {
        self.timings = timings;
        self
    }

    pub fn epoch(mut self, epoch: Timestamp) -> Self {
        self.epoch = epoch;
        self
    }

    /// Whether SeiNode / SeiNodeDeployment writes are validated against the CRDs (default: yes).
    pub fn admission(mut self, admission: bool) -> Self {
        self.admission = admission;
        self
    }

    /// Whether the operator's calls are authorized against the RBAC objects in `deploy/` (default: yes).
    pub fn authorization(mut self, authorization: bool) -> Self {
        self.authorization = authorization;
        self
    }

    /// The most versions the operator's reads may lag (history kept for stale reads); default 64.
    pub fn max_read_lag(mut self, lag: u64) -> Self {
        self.max_read_lag = lag;
        self
    }

    /// The operator's rollout stall threshold the stall invariant holds it to (default 10 minutes).
    pub fn stall_threshold(mut self, threshold: Duration) -> Self {
        self.stall_threshold = threshold;
        self
    }

    pub fn build(self) -> Result<World, SimError> {
        let validator = if self.admission { Some(shared_validator().map_err(SimError::Setup)?) } else { None };
        let authorization = if self.authorization {
            crate::apiserver::authorization::AuthorizationState::for_operator().map_err(SimError::Setup)?
        } else {
            Default::default()
        };
        let mut store = Store::new(validator);
        store.allow_lag(self.max_read_lag);
        let default_chain = self.chains.first().map(|c| c.id.clone()).unwrap_or_default();
        let mut milestones: Vec<(Duration, String)> = self.chains.iter().flat_map(Chain::milestones).collect();
        milestones.sort();
        milestones.reverse();
        let workers = (0..self.workers)
            .map(|i| WorkerState {
                name: format!("worker-{i}"),
                up: true,
                image_cache: Default::default(),
                servers_version: 0,
                wake: Arc::new(Notify::new()),
                down_since: None,
                marked_not_ready: false,
            })
            .collect();
        let state = WorldState {
            now: Duration::ZERO,
            epoch: self.epoch,
            seed: self.seed,
            rng: StdRng::seed_from_u64(self.seed),
            trace: Trace::default(),
            timings: self.timings,
            api: ApiServer {
                store,
                faults: Default::default(),
                authorization,
                requests: Default::default(),
                changed_at: Duration::ZERO,
                changed: Arc::new(Notify::new()),
            },
            plane: ControlPlane {
                workers,
                pods: BTreeMap::new(),
                volumes: BTreeMap::new(),
                controllers: ControllerState::default(),
            },
            chains: Chains {
                by_id: self.chains.into_iter().map(|c| (c.id.clone(), c)).collect(),
                default_id: default_chain,
                registry: self.registry,
                milestones,
            },
            ledger: Ledger { faults_act_until: Some(Duration::ZERO), ..Ledger::default() },
            operator: Default::default(),
            replicas: Default::default(),
            task_failures: Vec::new(),
            aimed_edits: Vec::new(),
            stall_threshold: self.stall_threshold,
            observer: &INVARIANTS,
        };
        let shared: SharedWorld = Arc::new(Mutex::new(state));
        let epoch_offset = Duration::from_secs(u64::try_from(self.epoch.as_second()).unwrap_or(0));
        let mut sim = turmoil::Builder::new()
            .simulation_duration(Duration::MAX)
            .tick_duration(self.tick)
            // A pinned SystemTime, never the wall clock (turmoil's default epoch is `SystemTime::now()`).
            .epoch(UNIX_EPOCH + epoch_offset)
            .rng_seed(self.seed)
            .min_message_latency(Duration::from_millis(1))
            .max_message_latency(Duration::from_millis(20))
            // Every port above the privileged ones, not turmoil's default 49152..=65535: turmoil 0.7's
            // `TcpStream::connect` keeps its socket, and so its ephemeral port, for good when the connect fails
            // (a partitioned or crashed worker) — a leak no real kernel has — and an hour-long partition at 24
            // replicas used up the 16 384 default ports (fuzz-findings/README.md). Four times the room, not a fix.
            // Only the operator and probe hosts connect, and they listen on nothing, so no pod port is taken.
            .ephemeral_ports(1024..=65535)
            .build();
        for index in 0..self.workers {
            let shared = shared.clone();
            sim.host(format!("worker-{index}"), move || run_worker(shared.clone(), index));
        }
        Ok(World {
            sim,
            shared,
            observed: ObservedObjects::default(),
            seed: self.seed,
            tick: self.tick,
            steps: 0,
            probes: 0,
            operator: false,
            operator_down: false,
            last_checked: (u64::MAX, usize::MAX),
            last_checked_at: Duration::ZERO,
            notified_version: 0,
            invariant_checks: 0,
            rest_memo: Default::default(),
        })
    }
}
