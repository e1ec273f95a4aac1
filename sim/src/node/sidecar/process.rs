//! The sidecar (seictl `serve`) of one pod: its task table, which lives on the pod's volume, and its process,
//! which keeps only what the real one keeps in memory.
//!
//! What is modelled, and where the real sidecar does it (sei-protocol/seictl):
//! - The task table is a SQLite file in the sidecar's home, `sidecar.db` (`serve.go`), and the home is the node's
//!   volume: the table survives sidecar restarts, pod restarts and a pod re-created on the same claim, and goes
//!   only with the claim. A pod without a volume keeps it in the process and loses it at every restart.
//! - The ready flag is memory only (`sidecar/engine/engine.go`, `Engine.ready`, set by a `mark-ready` that
//!   completes in `Engine.execute`): a new process is Initializing until a `mark-ready` completes in it.
//! - Submit (`Engine.Submit`): an unknown id starts run 1; a `running` or `completed` id is a no-op; a `failed`
//!   id runs again as run + 1.
//! - A task's execution belongs to the process running it (`Engine.runTask`, a goroutine): if the process dies,
//!   the run dies with it and its row stays `running`. The next process re-runs such rows at start
//!   (`Engine.RehydrateStaleTasks`, run number unchanged). Here every run records the process executing it
//!   ([`SidecarTask::executor`]); only that process settles it, and [`start`] hands the table's running rows to
//!   the new process with a fresh completion time.
//!
//! - `restart-seid` (`sidecar/tasks/restart_seid.go`, `stop_seid.go`): SIGTERM to the `seid start` process it
//!   finds in `/proc` — only in a pod that shares its process namespace; where it finds none while seid runs, it
//!   fails rather than report a restart that did not happen, and with seid already down the stop is a no-op —
//!   then waits up to 5 minutes for seid's RPC to serve again. A re-run after a sidecar restart stops seid again.
//!
//! Not modelled: `mark-not-ready` and its precedence over a stranded `mark-ready` at rehydration, task types the
//! operator does not submit, and `catchingUp` conditions.

use std::time::Duration;

use sei_operator_core::cluster::ObjectRef;
use sei_operator_core::sidecar::wire::SidecarTaskType;
use serde_json::Value;
use uuid::Uuid;

use crate::harness::state::WorldState;
use crate::harness::trace::Category;
use crate::kube::pod::PodRuntime;
use crate::node::sidecar::table::{SidecarProcess, SidecarTask, TaskTable};

/// The task table the sidecar of pod `key` reads: the one on its volume, or its process's when it has none.
/// `None` when the pod has neither (no sidecar running, and no volume).
pub fn tasks<'a>(world: &'a WorldState, key: &ObjectRef) -> Option<&'a TaskTable> {
    world.plane.tasks(key)
}

/// The task table `pod`'s sidecar reads (see [`tasks`]).
pub fn table<'a>(world: &'a WorldState, pod: &'a PodRuntime) -> Option<&'a TaskTable> {
    pod.task_table(&world.plane.volumes)
}

/// The task table of pod `key`, to write (see [`tasks`]).
pub fn tasks_mut<'a>(world: &'a mut WorldState, key: &ObjectRef) -> Option<&'a mut TaskTable> {
    world.plane.tasks_mut(key)
}

/// How long a run of `type_` takes.
pub fn duration(world: &WorldState, type_: &str) -> Duration {
    world.timings.task_durations.get(type_).copied().unwrap_or(world.timings.default_task_duration)
}

/// Starts a sidecar process (incarnation `incarnation`) in pod `key`, replacing any other: seictl `serve` opens
/// the task table and re-runs what a previous process left `running` (`Engine.RehydrateStaleTasks`), with its run
/// number unchanged, before it serves. Called at every start: pod start, sidecar restart, node reboot.
pub fn start(world: &mut WorldState, key: &ObjectRef, incarnation: u64) {
    let now = world.now;
    let Some(pod) = world.plane.pods.get_mut(key) else { return };
    pod.sidecar = Some(SidecarProcess::new(now, incarnation));
    let Some(table) = tasks(world, key) else { return };
    let stale: Vec<(Uuid, String, u32, Option<Value>)> = table
        .values()
        .filter(|t| t.outcome.is_none())
        .map(|t| (t.id, t.type_.clone(), t.run, t.params.clone()))
        .collect();
    for (id, type_, run, params) in stale {
        let (completes_at, fails_with) = schedule(world, &type_, params.as_ref());
        if let Some(task) = tasks_mut(world, key).and_then(|t| t.get_mut(&id)) {
            task.executor = incarnation;
            task.completes_at = completes_at;
            task.fails_with = fails_with;
        }
        let (namespace, name) = (&key.namespace, &key.name);
        let text =
            format!("{namespace}/{name} sidecar re-runs {type_} {id} (run {run}), left running by an earlier process");
        world.record(Category::Sidecar, text);
        if type_ == SidecarTaskType::RestartSeid.as_str() {
            crate::kube::seid_container::begin_restart_seid(world, key, id);
        }
    }
}

/// When a run of `type_` submitted now finishes, and whether it fails at once.
fn schedule(world: &WorldState, type_: &str, params: Option<&Value>) -> (Option<Duration>, Option<String>) {
    if let Some(error) = run_failure(type_, params) {
        return (Some(world.now), Some(error));
    }
    if type_ == SidecarTaskType::AwaitCondition.as_str() {
        return (None, None);
    }
    if type_ == SidecarTaskType::RestartSeid.as_str() {
        // Finished when seid's RPC serves again ([`crate::kube::seid_container::begin_restart_seid`]); this is when it
        // gives up waiting.
        return (Some(world.now + RESTART_SEID_UP_TIMEOUT), None);
    }
    (Some(world.now + duration(world, type_)), None)
}

/// How long `restart-seid` waits for seid's RPC to serve again before it fails (sei-protocol/seictl
/// `sidecar/tasks/restart_seid.go`, `restartSeidUpTimeout`).
pub const RESTART_SEID_UP_TIMEOUT: Duration = Duration::from_secs(300);

/// A run that fails as soon as its handler reads its parameters. seictl `sidecar/tasks/await_condition.go`
/// (`ConditionWaiter.Handler`): the parameters are checked when the task runs, not when it is submitted.
fn run_failure(type_: &str, params: Option<&Value>) -> Option<String> {
    if type_ != SidecarTaskType::AwaitCondition.as_str() {
        return None;
    }
    let field = |name: &str| params.and_then(|p| p.get(name));
    match field("condition").and_then(Value::as_str).unwrap_or("") {
        "" => Some("condition is required".into()),
        "height" => match field("targetHeight") {
            None | Some(Value::Null) => Some("targetHeight must be > 0, got 0".into()),
            Some(Value::Number(n)) => match n.as_i64() {
                Some(h) if h > 0 => None,
                Some(h) => Some(format!("targetHeight must be > 0, got {h}")),
                None => Some(format!("parsing params: targetHeight {n} is not an int64")),
            },
            Some(other) => Some(format!("parsing params: targetHeight {other} is not a number")),
        },
        "catchingUp" => Some("the simulator does not model condition \"catchingUp\"".into()),
        other => Some(format!("unknown condition {other:?}")),
    }
}

/// What a submission did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Submitted {
    /// A run started: the id was new, or its task had failed.
    pub started: bool,
    /// The task's run number after the submission.
    pub run: u32,
}

/// Submits task `id` of a known type to the sidecar process of pod `key` (seictl `Engine.Submit`): an unknown id
/// starts run 1; a `running` or `completed` one is left as it is; a `failed` one runs again as run + 1, with a
/// new submission time. `None` when the pod has no sidecar process.
pub fn submit(
    world: &mut WorldState,
    key: &ObjectRef,
    id: Uuid,
    type_: &str,
    params: Option<Value>,
) -> Option<Submitted> {
    let now = world.now;
    let incarnation = world.plane.pods.get(key)?.sidecar.as_ref()?.incarnation;
    let run = match tasks(world, key)?.get(&id) {
        None => 1,
        Some(task) => match task.outcome {
            None | Some(Ok(())) => return Some(Submitted { started: false, run: task.run }),
            Some(Err(_)) => task.run + 1,
        },
    };
    let (completes_at, fails_with) = schedule(world, type_, params.as_ref());
    let task = SidecarTask {
        id,
        type_: type_.to_owned(),
        params,
        run,
        submitted_at: now,
        executor: incarnation,
        completes_at,
        fails_with,
        outcome: None,
        completed_at: None,
    };
    tasks_mut(world, key)?.insert(id, task);
    if type_ == SidecarTaskType::RestartSeid.as_str() {
        crate::kube::seid_container::begin_restart_seid(world, key, id);
    }
    Some(Submitted { started: true, run })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn await_condition_parameters_are_read_when_the_task_runs() {
        let await_ = |params: Value| run_failure("await-condition", Some(&params));
        assert_eq!(await_(json!({"condition": "height", "targetHeight": 5})), None);
        assert_eq!(await_(json!({"targetHeight": 5})).as_deref(), Some("condition is required"));
        assert_eq!(
            await_(json!({"condition": "height", "targetHeight": -3})).as_deref(),
            Some("targetHeight must be > 0, got -3")
        );
        assert_eq!(await_(json!({"condition": "height"})).as_deref(), Some("targetHeight must be > 0, got 0"));
        assert_eq!(await_(json!({"condition": "tip"})).as_deref(), Some("unknown condition \"tip\""));
        assert_eq!(run_failure("mark-ready", None), None);
    }
}
