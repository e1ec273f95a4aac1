//! The control plane's part of the world, as data: the worker nodes, the pods on them (their runtime:
//! containers, seid, the sidecar), the volumes, and the controllers' bookkeeping.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use sei_operator_core::cluster::ObjectRef;
use tokio::sync::Notify;

use crate::kube::pod::{PodRuntime, Volume};
use crate::node::sidecar::table::TaskTable;

/// Bookkeeping of the fake control plane.
#[derive(Clone, Debug, Default)]
pub struct ControllerState {
    /// The store version the controllers last synced.
    pub seen_version: u64,
    /// When the store first changed since the last sync.
    pub dirty_since: Option<Duration>,
    /// Something outside the store changed that the control plane must see (a node came back).
    pub force_sync: bool,
    /// The lag of the sync in waiting (the configured lag plus its jitter).
    pub lag: Duration,
    /// A pod changed: statuses must be reported and the next due time recomputed.
    pub kubelet_dirty: bool,
    /// The earliest time a pod changes on its own.
    pub next_pod_due: Option<Duration>,
    pub next_incarnation: u64,
    /// The StatefulSets a sync may skip.
    pub unchanged_statefulsets: UnchangedStatefulSets,
    /// Each StatefulSet's update revision, as last computed (see [`Revisions`]).
    pub revisions: Revisions,
}

/// The update revision of each StatefulSet, by the set's uid and generation. The store moves a set's generation
/// with every change outside its metadata and status (`crate::apiserver::store::Store::replace`), so a set at the
/// same uid and generation has the same pod template, and hashing it again (serializing the whole template) would
/// give the same name. Keyed by the set's name: a set made again under it replaces the entry.
#[derive(Clone, Debug, Default)]
pub struct Revisions {
    pub by_set: BTreeMap<ObjectRef, (String, i64, String)>,
}

/// The control plane's part of the world: the worker nodes, the pods on them (their runtime: containers, seid,
/// the sidecar), the volumes, and the controllers' bookkeeping.
#[derive(Debug, Default)]
pub struct ControlPlane {
    pub workers: Vec<WorkerState>,
    pub pods: BTreeMap<ObjectRef, PodRuntime>,
    pub volumes: BTreeMap<ObjectRef, Volume>,
    pub controllers: ControllerState,
}

impl ControlPlane {
    /// Wakes the worker hosting `worker` so it starts or stops servers.
    pub fn touch_worker(&mut self, worker: usize) {
        self.controllers.kubelet_dirty = true;
        if let Some(state) = self.workers.get_mut(worker) {
            state.servers_version += 1;
            state.wake.notify_one();
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

impl ControlPlane {
    /// The task table the sidecar of pod `key` reads (see [`PodRuntime::task_table`]).
    pub fn tasks(&self, key: &ObjectRef) -> Option<&TaskTable> {
        self.pods.get(key)?.task_table(&self.volumes)
    }

    /// The task table of pod `key`, to write.
    pub fn tasks_mut(&mut self, key: &ObjectRef) -> Option<&mut TaskTable> {
        let pod = self.pods.get_mut(key)?;
        match &pod.volume {
            Some(volume) => Some(&mut self.volumes.entry(volume.clone()).or_default().sidecar_tasks),
            None => pod.sidecar.as_mut().map(|p| &mut p.memory),
        }
    }
}

/// The StatefulSets whose last sync wrote nothing (no write, nothing traced) and whose inputs have not changed
/// since. A sync reads only the store — the set, the pods named after it (`<set>-<ordinal>`, owned or not) and
/// claims of its namespace — and the clock only to stamp what it writes, so the next sync of such a set would
/// write nothing either: it is skipped, without decoding the set or its pods (`crate::kube::statefulset`).
#[derive(Clone, Debug, Default)]
pub struct UnchangedStatefulSets {
    /// The position in the store's change log up to which changes were looked at.
    pub scanned_to: usize,
    pub sets: BTreeSet<ObjectRef>,
}
