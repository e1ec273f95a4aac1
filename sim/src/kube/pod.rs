//! A pod as the kubelet runs it: its containers' states (seid, the sidecar), where it is scheduled, its restart
//! back-off, and the chain data volume it mounts.

use std::time::Duration;

use sei_operator::cluster::ObjectRef;
use serde_json::Value;

use crate::registry::Binary;
use crate::seid::{SeidExit, SeidRun};
use crate::sidecar::process::{self, SidecarProcess, TaskTable};
use crate::state::WorldState;

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
    /// The port the sidecar container declares; `None`: the pod has no sidecar, seid starts on its own.
    pub sidecar_port: Option<u16>,
    pub sidecar_kind: SidecarKind,
    /// The sidecar container carries `SEI_BOOTSTRAP=true` (a bootstrap Job's pod): it prepares the volume and
    /// marks seid ready on its own, since nobody submits tasks to a bootstrap Job.
    pub bootstrap: bool,
    pub halt_height: Option<u64>,
    pub volume: Option<ObjectRef>,
    pub restart_policy: RestartPolicy,
    pub seid: Seid,
    pub restarts: u32,
    /// Crashes since the container last ran 10 minutes: the back-off exponent.
    pub consecutive_crashes: u32,
    pub sidecar: Option<SidecarProcess>,
    /// The status last written to the store.
    pub reported: Value,
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

    /// Ready: seid runs (after mark-ready) and has not exited, and its node is up.
    pub fn is_ready(&self) -> bool {
        matches!(self.seid, Seid::Running { .. }) && (self.sidecar_port.is_none() || self.sidecar.is_some())
    }

    /// The earliest simulated time at which this pod changes on its own.
    pub fn next_due(&self, world: &WorldState) -> Option<Duration> {
        let seid = match &self.seid {
            Seid::Pulling { until } | Seid::BackOff { until, .. } => Some(*until),
            Seid::Running { run, .. } => {
                let awaited = self.sidecar.as_ref().and_then(|s| {
                    let chain = world.chain_for(self.chain_id.as_deref())?;
                    process::table(world, self)?
                        .values()
                        .filter(|t| s.runs(t) && t.completes_at.is_none())
                        .filter_map(|t| run.reach(chain, target_height(t.params.as_ref())?))
                        .min()
                });
                [run.exit.as_ref().map(|(t, _)| *t), awaited].into_iter().flatten().min()
            }
            _ => None,
        };
        let tasks = self.sidecar.as_ref().and_then(|s| s.next_due(process::table(world, self)?));
        [seid, tasks].into_iter().flatten().min()
    }
}

/// The `targetHeight` of an `await-condition` task's params.
pub fn target_height(params: Option<&Value>) -> Option<u64> {
    params?.get("targetHeight")?.as_u64()
}
