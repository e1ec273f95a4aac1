//! A pod as the kubelet runs it: its containers' states (seid, the sidecar), where it is scheduled, its restart
//! back-off, and the chain data volume it mounts.

use std::collections::BTreeMap;
use std::time::Duration;

use sei_operator_core::cluster::ObjectRef;
use serde_json::Value;

use crate::node::Chains;
use crate::node::registry::Binary;
use crate::node::seid::{SeidConfig, SeidExit, SeidRun};
use crate::node::sidecar::table::{SidecarProcess, TaskTable};

/// The kubelet's container restart back-off: 10 s, doubling, capped at 5 minutes, and reset once a container
/// has run for 10 minutes (Kubernetes' `CrashLoopBackOff`).
pub const BACKOFF_INITIAL: Duration = Duration::from_secs(10);
pub const BACKOFF_MAX: Duration = Duration::from_secs(300);
pub const BACKOFF_RESET_AFTER: Duration = Duration::from_secs(600);

/// The sidecar's default port, when its container declares none.
pub const DEFAULT_SIDECAR_PORT: u16 = 7777;

/// First port handed to pods on a worker; each pod takes two (sidecar, seid RPC).
const FIRST_POD_PORT: u16 = 20_000;

/// A node's data on a PersistentVolumeClaim: it survives pod restarts and deletions, and goes with the claim.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Volume {
    /// seid's chain data: the height it has stored.
    pub height: u64,
    /// The sidecar's task table, `sidecar.db` in the sidecar's home on this volume (sei-protocol/seictl
    /// `serve.go`): every pod that mounts the claim reads and writes the same one.
    pub sidecar_tasks: TaskTable,
    /// `seid init` ran on it: `config/genesis.json` and a default config exist. seid will not start without
    /// them ([`crate::node::seid::SeidExit::NoGenesis`]).
    pub initialized: bool,
    /// A `config-apply` completed in a sidecar of a pod mounting it: seid's config is the node's
    /// (sei-protocol/seictl `sidecar/tasks/config_apply.go` writes it into the home, i.e. onto this volume).
    pub configured: bool,
    /// The height of the snapshot a `snapshot-restore` restored onto it, if one did.
    pub restored_height: Option<u64>,
    /// What seid's config files on it say, as far as the operator decides it: written whole by `config-apply`,
    /// its peers by `discover-peers`. seid reads it only when it starts.
    pub config: Option<SeidConfig>,
    /// When a config task last wrote `config`.
    pub config_written_at: Option<Duration>,
}

impl Volume {
    /// What a node still lacks before seid may run on this volume: `seid init`, the node's config and, when
    /// `restore` is asked for, a restored snapshot. Empty when it is prepared.
    pub fn unprepared(&self, restore: bool) -> Vec<&'static str> {
        let mut missing = Vec::new();
        if !self.initialized {
            missing.push("seid init");
        }
        if restore && self.restored_height.is_none() {
            missing.push("snapshot-restore");
        }
        if !self.configured {
            missing.push("config-apply");
        }
        missing
    }
}

/// `/lag_status` answers 200 while the node is at most this many blocks behind its peers' highest block:
/// CometBFT's `rpc.lag-threshold`, 300 by default (sei-protocol/sei-chain `sei-tendermint/config/config.go`,
/// `DefaultRPCConfig`; the check in `sei-tendermint/internal/rpc/core/lag_status.go`, `LagStatus`), else 417.
pub const LAG_THRESHOLD: u64 = 300;

/// How the seid container starts seid, read from its command and args (see `scheduler`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SeidCommand {
    /// The script begins with the operator's wait loop on this port (`workload::sidecar_wait_loop`): seid
    /// starts only once `localhost:<port>/v0/healthz` answers 200, polled every 5 s. `None`: seid starts at once.
    pub waits_for: Option<u16>,
    /// `--halt-height N` among seid's words.
    pub halt_height: Option<u64>,
    /// The script maps seid's exit 130 to 0 and passes any other code through (`workload::bootstrap_start_script`).
    /// Otherwise seid's code is the container's (`exec`, or no wrapper).
    pub maps_halt_to_success: bool,
    /// The script copies seid's x/upgrade panic lines to the termination message file
    /// (`workload::UPGRADE_PANIC_CAPTURE`). Otherwise the container's termination message is empty: seid writes
    /// none, and the kubelet's default policy (`File`) reads only that file (kubernetes/kubernetes
    /// `pkg/kubelet/kuberuntime/kuberuntime_container.go`, `getTerminationMessage`).
    pub reports_upgrade_panics: bool,
}

/// How seid's container last ended, as the kubelet reports it (`state.terminated` / `lastState.terminated`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Termination {
    pub exit_code: i32,
    pub message: String,
}

impl SeidCommand {
    /// The container's exit code when seid ends with `exit`.
    pub fn container_exit_code(&self, exit: &SeidExit) -> i32 {
        match exit.exit_code() {
            crate::node::seid::HALT_EXIT_CODE if self.maps_halt_to_success => 0,
            code => code,
        }
    }
}

/// What a probe asks (`httpGet`, `tcpSocket`; an `exec` or `grpc` probe is not modelled and always fails).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeAction {
    Http { port: u16, path: String },
    Tcp { port: u16 },
    Unmodelled,
}

/// A container probe and its timing (Kubernetes' defaults: period 10 s, thresholds 1 and 3, no initial delay).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Probe {
    pub action: ProbeAction,
    pub initial_delay: Duration,
    pub period: Duration,
    pub success_threshold: u32,
    pub failure_threshold: u32,
}

impl Probe {
    /// The first probe at or after `at` of a worker started at `from`, for a container started at `started`:
    /// workers probe at once, then every period, and skip probes within the initial delay
    /// (kubernetes/kubernetes `pkg/kubelet/prober/worker.go`, `doProbe`).
    pub fn next_tick(&self, from: Duration, started: Duration, at: Duration) -> Duration {
        let at = at.max(from).max(started + self.initial_delay);
        let period = self.period.max(Duration::from_millis(1));
        let periods = (at - from).as_nanos().div_ceil(period.as_nanos());
        from + period * u32::try_from(periods).unwrap_or(u32::MAX)
    }
}

/// When a startup probe that never succeeds has failed `failureThreshold` times in a row, for a container
/// started at `started`: its probes run at the initial delay, then every period.
pub fn startup_deadline(probe: &Probe, started: Duration) -> Duration {
    started + probe.initial_delay + probe.period * probe.failure_threshold.saturating_sub(1)
}

/// The earliest time in `[from, now]` from which `holds` is true until now, if it is now — assuming it turned
/// true at most once in that span (bisection, to the millisecond).
fn earliest(from: Duration, now: Duration, holds: impl Fn(Duration) -> bool) -> Option<Duration> {
    if !holds(now) {
        return None;
    }
    if holds(from) {
        return Some(from);
    }
    let (mut lo, mut hi) = (from, now);
    while hi - lo > Duration::from_millis(1) {
        let mid = lo + (hi - lo) / 2;
        if holds(mid) { hi = mid } else { lo = mid }
    }
    Some(hi)
}

/// The probes of the seid container.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Probes {
    pub startup: Option<Probe>,
    pub readiness: Option<Probe>,
}

/// What the kubelet's prober knows of the seid container's current instance (reset at every container start).
///
/// Probes run at fixed ticks (the worker's start, then every period). Rather than waking at every tick, the fake
/// computes when a probe's answer last changed (see [`PodRuntime::success_since`]) and so the tick at which the
/// prober saw it: the verdict is exact without a wake-up per tick, and never earlier than the real prober's.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProbeState {
    /// When this instance of the container started: the wrapper's and the probes' clock.
    pub container_started_at: Duration,
    /// When the startup probe succeeded (the container's `started`), which starts the readiness worker; the
    /// container's start without a startup probe.
    pub started_at: Option<Duration>,
    /// The readiness probe's verdict: false until it first succeeds (`results.Failure` is its initial value).
    pub ready: bool,
    /// When the verdict last changed.
    pub ready_changed_at: Option<Duration>,
}

/// An init container of the pod, in spec order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InitContainer {
    pub name: String,
    pub image: String,
    pub kind: InitKind,
}

/// What an init container does, as the kubelet's fake reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitKind {
    /// Runs `seid init` on the volume: only when it holds no `config/genesis.json` if `guarded` (the test in
    /// `workload::seid_init_script`, upstream's `buildSeidInitContainer`).
    SeidInit { guarded: bool },
    /// The sidecar, native or a plain init container.
    Sidecar,
    /// Anything else: modelled as completing at once.
    Other,
}

/// The pod's `restartPolicy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestartPolicy {
    Always,
    OnFailure,
    Never,
}

/// How the pod declares its sidecar container.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SidecarKind {
    /// No sidecar: seid starts on its own.
    None,
    /// A regular container. It never exits, so a pod whose seid has exited for good stays Running: a Job with
    /// such a pod never completes (the reason Kubernetes added native sidecars).
    Regular,
    /// An init container with `restartPolicy: Always` (a native sidecar, Kubernetes 1.28+): stopped once the
    /// main containers are done, so the pod completes.
    Native,
    /// A plain init container: it must exit before the main containers start, and a server never does — the
    /// pod stays in PodInitializing and seid never starts.
    BlockingInit,
}

/// The seid container.
#[derive(Clone, Debug, PartialEq)]
pub enum Seid {
    /// Not placed on a worker yet (no worker is up).
    Unscheduled,
    Pulling {
        until: Duration,
    },
    /// The image is unknown or refused: never runs, never Ready.
    ImagePullBackOff,
    /// The container runs its start wrapper, which waits for the sidecar's healthz (a `mark-ready`).
    WaitingForSidecar,
    Running {
        run: SeidRun,
        binary: Binary,
        rpc_incarnation: u64,
    },
    /// CrashLoopBackOff: restarts at `until`.
    BackOff {
        until: Duration,
        last_exit: SeidExit,
    },
    /// Exited for good (restartPolicy Never, or OnFailure after a clean exit).
    Terminated {
        exit: SeidExit,
    },
    /// Its worker node is down.
    NodeDown,
}

/// One pod's runtime state.
#[derive(Clone, Debug, PartialEq)]
pub struct PodRuntime {
    pub key: ObjectRef,
    pub uid: String,
    /// The SeiNode it serves (`sei.io/node` label).
    pub node: Option<String>,
    pub chain_id: Option<String>,
    /// `spec.hostname` (the pod's name when unset) and `spec.subdomain`: its DNS name under a headless Service.
    pub hostname: String,
    pub subdomain: Option<String>,
    pub worker: usize,
    pub slot: u16,
    pub image: String,
    /// The port the sidecar listens on — its `SEI_SIDECAR_PORT` (sei-protocol/seictl `serve.go`, flag `port`),
    /// 7777 by default, whatever its `containerPort` says; `None`: the pod has no sidecar.
    pub sidecar_port: Option<u16>,
    pub sidecar_image: Option<String>,
    /// When a `mark-ready` made the current sidecar process ready (healthz 200 from then on).
    pub healthz_ready_at: Option<Duration>,
    /// The sidecar container's `restartCount`: one more at every new sidecar process after the first.
    pub sidecar_restarts: u32,
    /// How the seid container starts seid.
    pub command: SeidCommand,
    pub probes: Probes,
    pub probe_state: ProbeState,
    pub init_containers: Vec<InitContainer>,
    pub sidecar_kind: SidecarKind,
    pub volume: Option<ObjectRef>,
    pub restart_policy: RestartPolicy,
    pub seid: Seid,
    pub restarts: u32,
    /// Crashes since the container last ran 10 minutes: the back-off exponent.
    pub consecutive_crashes: u32,
    /// How seid's container last ended, while the kubelet still reports it.
    pub last_termination: Option<Termination>,
    pub sidecar: Option<SidecarProcess>,
    /// `spec.shareProcessNamespace`: the sidecar sees seid's process in `/proc` and can signal it.
    pub shares_process_namespace: bool,
    /// The status last written to the store.
    pub reported: k8s_openapi::api::core::v1::PodStatus,
}

impl PodRuntime {
    /// The port on its worker where its sidecar listens.
    pub fn sidecar_worker_port(&self) -> u16 {
        FIRST_POD_PORT + 2 * self.slot
    }

    /// The port on its worker where its seid RPC listens.
    pub fn rpc_worker_port(&self) -> u16 {
        FIRST_POD_PORT + 2 * self.slot + 1
    }

    /// Whether the seid container runs: its wrapper waiting, or seid itself (a plain init container that never
    /// exits keeps it from starting at all).
    pub fn seid_container_running(&self) -> bool {
        match self.seid {
            Seid::WaitingForSidecar => self.sidecar_kind != SidecarKind::BlockingInit,
            Seid::Running { .. } => true,
            _ => false,
        }
    }

    /// The seid container's `started`: running, and its startup probe (if any) succeeded.
    pub fn seid_started(&self) -> bool {
        self.seid_container_running() && self.probe_state.started_at.is_some()
    }

    /// The seid container's `ready` (kubelet `pkg/kubelet/prober/prober_manager.go`, `UpdatePodStatus`): not
    /// before it started; then the readiness probe's verdict, or — with no readiness probe — ready as soon as
    /// it started, whatever its process is doing (a wrapper still waiting is Ready).
    pub fn seid_ready(&self) -> bool {
        self.seid_started() && (self.probes.readiness.is_none() || self.probe_state.ready)
    }

    /// The sidecar container's `ready`: it has no readiness probe, so while its process runs.
    pub fn sidecar_ready(&self) -> bool {
        match self.sidecar_kind {
            SidecarKind::None => true,
            SidecarKind::Regular | SidecarKind::Native => self.sidecar.is_some(),
            SidecarKind::BlockingInit => false,
        }
    }

    /// The pod's Ready condition: every container is ready, native sidecars included (kubelet
    /// `pkg/kubelet/status/generate.go`, `GenerateContainersReadyCondition`). A node that stopped reporting is
    /// not Ready once the node monitor says so (`Seid::NodeDown`).
    pub fn is_ready(&self) -> bool {
        self.seid_ready() && self.sidecar_ready()
    }

    /// Whether something listens on `localhost:port` in this pod and answers `GET path` with a 2xx/3xx — what an
    /// HTTP probe or the wrapper's healthz loop sees. The sidecar serves seictl's routes on its port
    /// (`sidecar/server/server.go`); seid's RPC answers on 26657 while seid runs, `/lag_status` with 200 only
    /// within [`LAG_THRESHOLD`] blocks of the tip.
    pub fn answers_http(&self, env: &PodEnv<'_>, port: u16, path: &str) -> bool {
        use sei_operator_core::sidecar::protocol::{HEALTHZ_PATH, LIVEZ_PATH, STARTUPZ_PATH, STATUS_PATH};
        if self.sidecar_port == Some(port)
            && let Some(sidecar) = &self.sidecar
        {
            return match path {
                HEALTHZ_PATH | STARTUPZ_PATH => sidecar.ready,
                LIVEZ_PATH | STATUS_PATH => true,
                _ => false,
            };
        }
        if port == sei_operator_core::sidecar::SEID_RPC_PORT
            && let Seid::Running { run, .. } = &self.seid
        {
            return match path {
                sei_operator_core::objects::workload::LAG_STATUS_PATH => {
                    env.chains.chain_for(self.chain_id.as_deref()).is_some_and(|chain| {
                        chain.tip(env.now).saturating_sub(run.height_at(chain, env.now)) <= LAG_THRESHOLD
                    })
                }
                "/status" | "/health" => true,
                _ => false,
            };
        }
        false
    }

    /// Whether a probe's action succeeds now (see [`PodRuntime::answers_http`]).
    pub fn probe_succeeds(&self, env: &PodEnv<'_>, action: &ProbeAction) -> bool {
        match action {
            ProbeAction::Http { port, path } => self.answers_http(env, *port, path),
            ProbeAction::Tcp { port } => {
                (self.sidecar_port == Some(*port) && self.sidecar.is_some())
                    || (matches!(*port, 26656 | sei_operator_core::sidecar::SEID_RPC_PORT)
                        && matches!(self.seid, Seid::Running { .. }))
            }
            ProbeAction::Unmodelled => false,
        }
    }

    /// The wrapper's next healthz poll at or after `at`: at the container's start, then every 5 s
    /// (`workload::sidecar_wait_loop`).
    pub fn next_wrapper_poll(&self, at: Duration) -> Duration {
        let poll = Duration::from_secs(u64::from(sei_operator_core::objects::workload::WAIT_POLL_SECONDS));
        let from = self.probe_state.container_started_at;
        let periods = at.saturating_sub(from).as_nanos().div_ceil(poll.as_nanos());
        from + poll * u32::try_from(periods).unwrap_or(u32::MAX)
    }

    /// Since when `action` has succeeded without interruption, if it succeeds now. The sidecar's healthz since
    /// the `mark-ready` that made this process ready; its other routes, and seid's RPC, since their process
    /// started; `/lag_status` since seid got within [`LAG_THRESHOLD`] of the tip (found by bisection: seid's lag
    /// only shrinks while it catches up).
    pub fn success_since(&self, env: &PodEnv<'_>, action: &ProbeAction) -> Option<Duration> {
        use sei_operator_core::sidecar::protocol::{HEALTHZ_PATH, LIVEZ_PATH, STARTUPZ_PATH, STATUS_PATH};
        let now = env.now;
        let sidecar = self.sidecar.as_ref().filter(|_| self.sidecar_port.is_some());
        let seid = match &self.seid {
            Seid::Running { run, .. } => Some(run),
            _ => None,
        };
        match action {
            ProbeAction::Http { port, path } if self.sidecar_port == Some(*port) => match path.as_str() {
                HEALTHZ_PATH | STARTUPZ_PATH => self.healthz_since(),
                LIVEZ_PATH | STATUS_PATH => sidecar.map(|s| s.started_at),
                _ => None,
            },
            ProbeAction::Http { port, path } if *port == sei_operator_core::sidecar::SEID_RPC_PORT => {
                let run = seid?;
                match path.as_str() {
                    sei_operator_core::objects::workload::LAG_STATUS_PATH => {
                        let chain = env.chains.chain_for(self.chain_id.as_deref())?;
                        let near = |t: Duration| chain.tip(t).saturating_sub(run.height_at(chain, t)) <= LAG_THRESHOLD;
                        earliest(run.started_at.min(now), now, near)
                    }
                    "/status" | "/health" => Some(run.started_at),
                    _ => None,
                }
            }
            ProbeAction::Tcp { port } if self.sidecar_port == Some(*port) => sidecar.map(|s| s.started_at),
            ProbeAction::Tcp { port } if matches!(*port, 26656 | sei_operator_core::sidecar::SEID_RPC_PORT) => {
                seid.map(|run| run.started_at)
            }
            _ => None,
        }
    }

    /// Since when `action` has failed without interruption, at or after `after`, if it fails now.
    pub fn failure_since(&self, env: &PodEnv<'_>, action: &ProbeAction, after: Duration) -> Option<Duration> {
        if self.probe_succeeds(env, action) {
            return None;
        }
        let now = env.now;
        if let (ProbeAction::Http { port, path }, Seid::Running { run, .. }) = (action, &self.seid)
            && *port == sei_operator_core::sidecar::SEID_RPC_PORT
            && path == sei_operator_core::objects::workload::LAG_STATUS_PATH
            && let Some(chain) = env.chains.chain_for(self.chain_id.as_deref())
        {
            let behind = |t: Duration| chain.tip(t).saturating_sub(run.height_at(chain, t)) > LAG_THRESHOLD;
            return earliest(after.min(now), now, behind);
        }
        // Anything else stopped answering when its process changed.
        let restarted = [self.sidecar.as_ref().map(|s| s.started_at)].into_iter().flatten().max();
        Some(restarted.unwrap_or(after).max(after).min(now))
    }

    /// Since when the sidecar's healthz has answered 200: the `mark-ready` that completed in its current process.
    pub fn healthz_since(&self) -> Option<Duration> {
        let sidecar = self.sidecar.as_ref()?;
        let since = self.healthz_ready_at?;
        (sidecar.ready && since >= sidecar.started_at).then_some(since)
    }

    /// When the wrapper will see healthz answer 200 (its first poll since), if it answers now.
    pub fn wrapper_proceeds_at(&self) -> Option<Duration> {
        let port = self.command.waits_for?;
        if self.sidecar_port != Some(port)
            || !matches!(self.seid, Seid::WaitingForSidecar)
            || !self.seid_container_running()
        {
            return None;
        }
        Some(self.next_wrapper_poll(self.healthz_since()?))
    }

    /// When the startup probe succeeds (its `successThreshold`-th success in a row since the answer turned
    /// 200), if the answer is 200 now.
    pub fn startup_succeeds_at(&self, env: &PodEnv<'_>) -> Option<Duration> {
        let probe = self.probes.startup.as_ref()?;
        let from = self.probe_state.container_started_at;
        let since = self.success_since(env, &probe.action)?;
        Some(probe.next_tick(from, from, since) + probe.period * (probe.success_threshold - 1))
    }

    /// When the readiness verdict flips, if the current answers make it flip: after `successThreshold`
    /// successes or `failureThreshold` failures in a row, at the probe's ticks.
    pub fn readiness_flips_at(&self, env: &PodEnv<'_>) -> Option<Duration> {
        let probe = self.probes.readiness.as_ref()?;
        let state = &self.probe_state;
        let from = state.started_at?;
        let changed = state.ready_changed_at.unwrap_or(from).max(from);
        if state.ready {
            let since = self.failure_since(env, &probe.action, changed)?;
            Some(
                probe.next_tick(from, state.container_started_at, since) + probe.period * (probe.failure_threshold - 1),
            )
        } else {
            let since = self.success_since(env, &probe.action)?.max(changed);
            Some(
                probe.next_tick(from, state.container_started_at, since) + probe.period * (probe.success_threshold - 1),
            )
        }
    }

    /// When the prober next has something to decide for the seid container: the startup probe's success or its
    /// last allowed failure, and readiness flips. While seid is too far behind, the readiness probe is asked
    /// again at its next tick (when it catches up is not computed ahead).
    fn next_probe_due(&self, env: &PodEnv<'_>) -> Option<Duration> {
        if !self.seid_container_running() {
            return None;
        }
        let state = &self.probe_state;
        if state.started_at.is_none() {
            let probe = self.probes.startup.as_ref()?;
            let deadline = startup_deadline(probe, state.container_started_at);
            return [Some(deadline), self.startup_succeeds_at(env)].into_iter().flatten().min();
        }
        let probe = self.probes.readiness.as_ref()?;
        let from = state.started_at?;
        let flip = self.readiness_flips_at(env);
        let recheck = (flip.is_none() && (matches!(self.seid, Seid::Running { .. }) || state.ready)).then(|| {
            let slow = match (&self.seid, env.chains.chain_for(self.chain_id.as_deref())) {
                (Seid::Running { run, .. }, Some(chain)) => {
                    u128::from(run.sync_speed) * chain.block_time.as_nanos() < 1_000_000_000
                }
                _ => false,
            };
            // Ready and keeping up with the tip: nothing can flip until something else happens.
            (!state.ready || slow)
                .then(|| probe.next_tick(from, state.container_started_at, env.now + Duration::from_nanos(1)))
        });
        [flip, recheck.flatten()].into_iter().flatten().min()
    }

    /// The earliest simulated time at which this pod changes on its own.
    pub fn next_due(&self, env: &PodEnv<'_>) -> Option<Duration> {
        let seid = match &self.seid {
            Seid::Pulling { until } | Seid::BackOff { until, .. } => Some(*until),
            Seid::Running { run, .. } => {
                let awaited = self.sidecar.as_ref().and_then(|s| {
                    let chain = env.chains.chain_for(self.chain_id.as_deref())?;
                    self.task_table(env.volumes)?
                        .values()
                        .filter(|t| s.runs(t) && t.completes_at.is_none())
                        .filter_map(|t| run.reach(chain, target_height(t.params.as_ref())?))
                        .min()
                });
                [run.exit.as_ref().map(|(t, _)| *t), awaited].into_iter().flatten().min()
            }
            _ => None,
        };
        let tasks = self.sidecar.as_ref().and_then(|s| s.next_due(self.task_table(env.volumes)?));
        [seid, tasks, self.wrapper_proceeds_at(), self.next_probe_due(env)].into_iter().flatten().min()
    }
}

/// The `targetHeight` of an `await-condition` task's params.
pub fn target_height(params: Option<&Value>) -> Option<u64> {
    params?.get("targetHeight")?.as_u64()
}

/// What a pod's own clock and probes read of the world: the time, the chains (seid's height, the tip) and the
/// volumes (the sidecar's task table).
#[derive(Clone, Copy)]
pub struct PodEnv<'a> {
    pub now: Duration,
    pub chains: &'a Chains,
    pub volumes: &'a BTreeMap<ObjectRef, Volume>,
}

static EMPTY_TABLE: TaskTable = TaskTable::new();

impl PodRuntime {
    /// The task table this pod's sidecar reads: the one on its volume, or its process's when it has none.
    /// `None` when the pod has neither (no sidecar running, and no volume).
    pub fn task_table<'a>(&'a self, volumes: &'a BTreeMap<ObjectRef, Volume>) -> Option<&'a TaskTable> {
        match &self.volume {
            Some(volume) => Some(volumes.get(volume).map_or(&EMPTY_TABLE, |v| &v.sidecar_tasks)),
            None => self.sidecar.as_ref().map(|p| &p.memory),
        }
    }
}
