//! One sidecar process: the tasks submitted to it and whether `mark-ready` has completed. It keeps no memory
//! across restarts (a restart is a new `SidecarProcess`), as the real seictl keeps its task table in memory.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;
use uuid::Uuid;

/// A task the sidecar accepted.
#[derive(Clone, Debug, PartialEq)]
pub struct SidecarTask {
    pub id: Uuid,
    pub type_: String,
    pub params: Option<Value>,
    pub submitted_at: Duration,
    /// When it finishes; `None` for tasks that finish on a condition (`await-condition`).
    pub completes_at: Option<Duration>,
    /// Its result once the world settled it: `Ok` completed, `Err` failed with a message.
    pub outcome: Option<Result<(), String>>,
    pub completed_at: Option<Duration>,
}

/// The state of one sidecar process.
#[derive(Clone, Debug, PartialEq)]
pub struct SidecarProcess {
    pub started_at: Duration,
    /// A `mark-ready` task completed in this process: healthz answers 200 and seid's start wrapper proceeds.
    pub ready: bool,
    pub tasks: BTreeMap<Uuid, SidecarTask>,
    /// Which server incarnation serves it: a restart starts new servers.
    pub incarnation: u64,
}

impl SidecarProcess {
    pub fn new(started_at: Duration, incarnation: u64) -> Self {
        SidecarProcess { started_at, ready: false, tasks: BTreeMap::new(), incarnation }
    }

    /// The earliest time a task of this process is due to finish.
    pub fn next_due(&self) -> Option<Duration> {
        self.tasks.values().filter(|t| t.outcome.is_none()).filter_map(|t| t.completes_at).min()
    }
}
