//! The sidecar's HTTP API (v0) and seid's RPC `/status`, computed from the world under its lock. Request and
//! answer bodies are the operator's wire types, so the fake and the production client cannot drift apart.

use std::time::Duration;

use rand::Rng;
use sei_operator::cluster::ObjectRef;
use sei_operator::sidecar::wire::{
    AwaitConditionParams, ChainStatus, ReadinessStatus, RpcStatusResponse, SidecarTaskType, StatusResponse,
    TaskAccepted, TaskRequest, TaskResult, TaskState,
};
use serde::Serialize;
use uuid::Uuid;

use crate::kube::kubelet::Seid;
use crate::sidecar::process::SidecarTask;
use crate::state::{SidecarSubmission, WorldState};
use crate::trace::Category;

/// An HTTP answer: status code and JSON body.
pub type Answer = (u16, String);

fn json<T: Serialize>(status: u16, body: &T) -> Answer {
    match serde_json::to_string(body) {
        Ok(text) => (status, text),
        Err(e) => (500, format!("{{\"error\":\"{e}\"}}")),
    }
}

fn error(status: u16, message: &str) -> Answer {
    (status, serde_json::json!({ "error": message }).to_string())
}

fn rfc3339(world: &WorldState, at: Duration) -> String {
    world.timestamp_at(at).to_string()
}

/// Serves one sidecar request from `caller` for the pod `key`, whose server is `incarnation`.
pub fn sidecar(
    world: &mut WorldState,
    key: &ObjectRef,
    incarnation: u64,
    caller: &str,
    method: &str,
    path: &str,
    body: &[u8],
) -> Answer {
    let Some(process) = world.pods.get(key).and_then(|p| p.sidecar.as_ref()).filter(|s| s.incarnation == incarnation)
    else {
        return error(503, "sidecar restarting");
    };
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method, segments.as_slice()) {
        ("GET", ["v0", "healthz"]) => {
            if process.ready {
                (200, "{}".into())
            } else {
                error(503, "not ready: mark-ready has not completed")
            }
        }
        ("GET", ["v0", "status"]) => {
            let status = if process.ready { ReadinessStatus::Ready } else { ReadinessStatus::Initializing };
            json(200, &StatusResponse { status })
        }
        ("GET", ["v0", "tasks"]) => {
            let results: Vec<TaskResult> = process.tasks.values().map(|t| task_result(world, t)).collect();
            json(200, &results)
        }
        ("GET", ["v0", "tasks", id]) => match id.parse::<Uuid>().ok().and_then(|id| process.tasks.get(&id)) {
            Some(task) => json(200, &task_result(world, task)),
            None => error(404, "unknown task"),
        },
        ("DELETE", ["v0", "tasks", id]) => {
            let removed =
                id.parse::<Uuid>().ok().and_then(|id| world.pods.get_mut(key)?.sidecar.as_mut()?.tasks.remove(&id));
            match removed {
                Some(_) => (204, String::new()),
                None => error(404, "unknown task"),
            }
        }
        ("POST", ["v0", "tasks"]) => submit(world, key, caller, body),
        _ => error(404, "no such route"),
    }
}

fn submit(world: &mut WorldState, key: &ObjectRef, caller: &str, body: &[u8]) -> Answer {
    let request: TaskRequest = match serde_json::from_slice(body) {
        Ok(request) => request,
        Err(e) => return error(400, &format!("invalid body: {e}")),
    };
    let Some(task_type) = SidecarTaskType::parse(&request.type_) else {
        return error(400, &format!("unknown task type {:?}", request.type_));
    };
    let completes_at = if task_type == SidecarTaskType::AwaitCondition {
        let params: Option<AwaitConditionParams> = request
            .params
            .clone()
            .and_then(|p| serde_json::from_value(p).ok())
            .filter(|p: &AwaitConditionParams| p.condition == "height");
        if params.is_none() {
            return error(400, "await-condition needs params {condition: height, targetHeight}");
        }
        None
    } else {
        let duration = world.timings.task_durations.get(task_type.as_str()).copied();
        Some(world.now + duration.unwrap_or(world.timings.default_task_duration))
    };
    let id = match request.id {
        Some(id) => id,
        None => Uuid::from_u128(world.rng.random::<u128>()),
    };
    let now = world.now;
    let Some(process) = world.pods.get_mut(key).and_then(|p| p.sidecar.as_mut()) else {
        return error(503, "sidecar restarting");
    };
    let submission = SidecarSubmission {
        at: now,
        pod: key.clone(),
        incarnation: process.incarnation,
        id,
        task_type: request.type_.clone(),
        status: 202,
        caller: caller.to_owned(),
    };
    if process.tasks.contains_key(&id) {
        world.sidecar_submissions.push(submission);
        return json(202, &TaskAccepted { id });
    }
    process.tasks.insert(
        id,
        SidecarTask {
            id,
            type_: request.type_.clone(),
            params: request.params,
            submitted_at: now,
            completes_at,
            outcome: None,
            completed_at: None,
        },
    );
    world.controllers.kubelet_dirty = true;
    world.sidecar_submissions.push(SidecarSubmission { status: 201, ..submission });
    world.record(Category::Sidecar, format!("{}/{} accepted task {} {id}", key.namespace, key.name, request.type_));
    json(201, &TaskAccepted { id })
}

fn task_result(world: &WorldState, task: &SidecarTask) -> TaskResult {
    let (status, error) = match &task.outcome {
        None => (TaskState::Running, None),
        Some(Ok(())) => (TaskState::Completed, None),
        Some(Err(e)) => (TaskState::Failed, Some(e.clone())),
    };
    TaskResult {
        id: task.id,
        type_: task.type_.clone(),
        status,
        // The simulated sidecar forgets a task at restart and never re-runs one: every task is on its first run.
        run: 1,
        params: task.params.clone(),
        result: None,
        error,
        submitted_at: rfc3339(world, task.submitted_at),
        completed_at: task.completed_at.map(|at| rfc3339(world, at)),
    }
}

/// Serves seid's RPC for the pod `key` (server `incarnation`): `GET /status`.
pub fn rpc(world: &WorldState, key: &ObjectRef, incarnation: u64, path: &str) -> Answer {
    let Some(pod) = world.pods.get(key) else { return error(503, "seid not running") };
    let Seid::Running { run, rpc_incarnation, .. } = &pod.seid else { return error(503, "seid not running") };
    if *rpc_incarnation != incarnation {
        return error(503, "seid restarting");
    }
    if path != "/status" {
        return error(404, "no such route");
    }
    let Some(chain) = world.chain_for(pod.chain_id.as_deref()) else { return error(500, "unknown chain") };
    let status =
        ChainStatus { latest_height: run.height_at(chain, world.now), catching_up: run.catching_up(chain, world.now) };
    json(200, &RpcStatusResponse::new(status))
}
