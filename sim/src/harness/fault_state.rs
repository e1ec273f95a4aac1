//! Faults the world can inject, as data (the API server's own are [`crate::apiserver::faults`]): stale reads for
//! the operator's client, dropped watch events, an operator crash right after its i-th write in a reconcile, and scripted sidecar task failures.
//! The operations that apply them live on [`crate::harness::world::World`].

use std::collections::BTreeMap;

use crate::apiserver::faults::RefusalStatus;

/// Faults of the operator process.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OperatorFaults {
    /// Reads are served from the store as it was this many versions ago (a lagging informer cache).
    pub read_lag: u64,
    /// The next this many watch events are dropped; a later event for the same object is delivered, as an
    /// informer that missed intermediate states still converges on the newest one.
    pub drop_watch_events: u32,
    /// Objects whose latest watch event was dropped (with their controller owner), until a later event for them
    /// is delivered. Healing delivers them, as a relist would: a watch never loses an object's newest state for
    /// good — a dropped event with no later one to supersede it is not a fault a real API server can produce.
    pub unobserved: BTreeMap<sei_operator_core::cluster::ObjectRef, Option<(String, String)>>,
    /// Heal asked for the unobserved objects to be delivered.
    pub deliver_unobserved: bool,
    /// The newest store version the operator's watch delivered: a lagging cache never falls behind it.
    pub cache_floor: u64,
    /// Crash the operator right after its i-th write (1-based) within one reconcile.
    pub crash_after_write: Option<u32>,
    /// Only within a reconcile of this kind (`SeiNodeDeployment`, `SeiNode`); any reconcile when `None`.
    pub crash_reconciling: Option<String>,
    /// The crash stays armed after it fires: the restarted operator crashes again at the same point, until a
    /// heal disarms it (`Fault::CrashOperatorAfterWriteUntilHealed`: a crash loop).
    pub crash_until_healed: bool,
    /// Writes made so far by each reconcile in progress (by reconcile id).
    pub writes_in_reconcile: BTreeMap<u64, u32>,
    /// The operator reached its crash point; the world crashes its host at the end of the step.
    pub crash_requested: bool,
}

/// A fault, as data: what [`crate::harness::world::World::inject`] applies. Hosts are named `operator`, `worker-<i>`.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", tag = "fault")]
pub enum Fault {
    /// Every container of a pod restarts: the same pod (uid, name, node) with its restart counts up.
    CrashPod {
        namespace: String,
        pod: String,
    },
    /// The pod object is deleted through the API (a drain, an eviction, `kubectl delete pod`): its controller
    /// makes another pod — a StatefulSet from its current template, a Job counting the lost one as failed.
    DeletePod {
        namespace: String,
        pod: String,
    },
    RestartSidecar {
        namespace: String,
        pod: String,
    },
    CrashWorker {
        worker: usize,
    },
    RestartWorker {
        worker: usize,
    },
    CrashOperator,
    CrashOperatorAfterWrite {
        write: u32,
        reconciling: Option<String>,
    },
    CrashOperatorAfterWriteUntilHealed {
        write: u32,
        reconciling: Option<String>,
    },
    Partition {
        a: String,
        b: String,
    },
    Repair {
        a: String,
        b: String,
    },
    Latency {
        a: String,
        b: String,
        latency: std::time::Duration,
    },
    Conflicts {
        count: u32,
    },
    TransientErrors {
        count: u32,
    },
    ReadLag {
        versions: u64,
    },
    DropWatchEvents {
        count: u32,
    },
    FailTask {
        node: Option<String>,
        task_type: String,
        times: u32,
        error: String,
    },
    /// The next `count` writes of the operator are applied but their responses are lost (see
    /// [`crate::apiserver::faults::ApiFaults::lost_as_gateway_timeout`]).
    LoseResponses {
        count: u32,
        gateway_timeout: bool,
    },
    /// For `duration`, the API server refuses every call of the operator with `status`.
    RefuseCalls {
        duration: std::time::Duration,
        status: RefusalStatus,
    },
    /// Operator replica `replica` crashes (`None`: the one the Lease names) and stays down for `down_for` (`None`:
    /// restarts at the next step, as a container restart). In a world of one operator, replica 0 is the operator.
    CrashReplica {
        replica: Option<usize>,
        down_for: Option<std::time::Duration>,
    },
    /// The replica's API calls fail (Transient) for `duration`: a partition between it and the API server.
    ApiUnreachable {
        replica: Option<usize>,
        duration: std::time::Duration,
    },
    /// The replica's process pauses for `duration` (a stop-the-world stall, a frozen VM): it runs nothing, then
    /// resumes with its memory as it was, believing it leads until its lease loop runs again.
    PauseReplica {
        replica: Option<usize>,
        duration: std::time::Duration,
    },
}

impl Fault {
    /// When, injected at `now`, the fault stops acting on the world: `None` while it acts until something heals,
    /// repairs or restarts what it broke (a partition, a crashed worker, added latency, lagging reads).
    pub fn acts_until(&self, now: std::time::Duration) -> Option<std::time::Duration> {
        match self {
            Fault::Partition { .. } | Fault::Latency { .. } | Fault::CrashWorker { .. } | Fault::ReadLag { .. } => None,
            Fault::RefuseCalls { duration, .. }
            | Fault::ApiUnreachable { duration, .. }
            | Fault::PauseReplica { duration, .. } => Some(now + *duration),
            Fault::CrashReplica { down_for, .. } => Some(now + down_for.unwrap_or_default()),
            _ => Some(now),
        }
    }
}

/// A sidecar task that will fail the next `times` times it completes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptedTaskFailure {
    /// Only on this SeiNode's pods; `None`: any pod.
    pub node: Option<String>,
    pub task_type: String,
    pub times: u32,
    pub error: String,
}

/// Takes one scripted failure matching the task, if any is left.
pub fn take_task_failure(failures: &mut [ScriptedTaskFailure], node: Option<&str>, task_type: &str) -> Option<String> {
    let failure = failures
        .iter_mut()
        .find(|f| f.times > 0 && f.task_type == task_type && f.node.as_deref().is_none_or(|n| Some(n) == node))?;
    failure.times -= 1;
    Some(failure.error.clone())
}
