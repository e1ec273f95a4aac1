//! The sidecar's task table and the memory of one sidecar process, as data: what the pod's volume and the
//! process hold (see [`super::process`] for how seictl's engine runs them).

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;
use uuid::Uuid;

/// A row of the task table (seictl `engine.TaskResult`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SidecarTask {
    pub id: Uuid,
    pub type_: String,
    pub params: Option<Value>,
    /// 1 when first submitted; one more each time it is submitted again after failing.
    pub run: u32,
    /// When its current run was submitted.
    pub submitted_at: Duration,
    /// The sidecar process (incarnation) whose execution of the current run is in flight or finished it.
    pub executor: u64,
    /// When the current run finishes; `None` for runs that finish on a condition (`await-condition`).
    pub completes_at: Option<Duration>,
    /// The handler fails with this as soon as it runs (it cannot read its parameters).
    pub fails_with: Option<String>,
    /// Its result once the world settled it: `Ok` completed, `Err` failed with a message.
    pub outcome: Option<Result<(), String>>,
    pub completed_at: Option<Duration>,
}

/// The task table, by id.
pub type TaskTable = BTreeMap<Uuid, SidecarTask>;

/// The state of one sidecar process: what the real one holds in memory only.
#[derive(Clone, Debug, PartialEq)]
pub struct SidecarProcess {
    pub started_at: Duration,
    /// A `mark-ready` task completed in this process: healthz answers 200 and seid's start wrapper proceeds.
    pub ready: bool,
    /// Which process this is; also which server incarnation serves it (a restart starts new servers).
    pub incarnation: u64,
    /// The task table of a pod with no volume, lost with the process.
    pub memory: TaskTable,
}

impl SidecarProcess {
    pub fn new(started_at: Duration, incarnation: u64) -> Self {
        SidecarProcess { started_at, ready: false, incarnation, memory: TaskTable::new() }
    }

    /// Whether this process is executing `task`'s current run.
    pub fn runs(&self, task: &SidecarTask) -> bool {
        task.outcome.is_none() && task.executor == self.incarnation
    }

    /// The earliest time a task run by this process is due to finish.
    pub fn next_due(&self, table: &TaskTable) -> Option<Duration> {
        table.values().filter(|t| self.runs(t)).filter_map(|t| t.completes_at).min()
    }
}
