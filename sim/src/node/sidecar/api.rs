//! The sidecar's HTTP API (v0) and seid's RPC `/status`, computed from the world under its lock. Answer bodies
//! are the operator's wire types, so the fake and the production client cannot drift apart; statuses and error
//! bodies are the real server's (sei-protocol/seictl `sidecar/server/server.go`, routes in `NewServer`).

use std::time::Duration;

use rand::Rng;
use sei_operator_core::cluster::ObjectRef;
use sei_operator_core::sidecar::protocol::{HEALTHZ_PATH, LIVEZ_PATH, RPC_STATUS_PATH, STARTUPZ_PATH, STATUS_PATH};
use sei_operator_core::sidecar::wire::{
    ChainStatus, ReadinessStatus, RpcStatusResponse, SidecarTaskType, StatusResponse, TaskAccepted, TaskResult,
    TaskState,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::harness::ledger::SidecarSubmission;
use crate::harness::state::WorldState;
use crate::harness::trace::Category;
use crate::kube::kubelet::Seid;
use crate::node::sidecar::process;
use crate::node::sidecar::table::SidecarTask;

/// An HTTP answer: status code and body.
pub type Answer = (u16, String);

/// How many results `GET /v0/tasks` lists (seictl `Engine.RecentResults`, `store.List(100)`).
const LISTED_TASKS: usize = 100;

/// seictl `writeJSON`: the body as JSON, newline-terminated (`json.Encoder.Encode`).
fn json<T: Serialize>(status: u16, body: &T) -> Answer {
    match serde_json::to_string(body) {
        Ok(text) => (status, text + "\n"),
        Err(e) => error(500, &e.to_string()),
    }
}

/// seictl `writeError`: `{"error": message}`.
fn error(status: u16, message: &str) -> Answer {
    json(status, &serde_json::json!({ "error": message }))
}

/// A status with an empty body (seictl `handleHealthz`, `handleLivez`, a 204).
fn empty(status: u16) -> Answer {
    (status, String::new())
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
    let Some(process) =
        world.plane.pods.get(key).and_then(|p| p.sidecar.as_ref()).filter(|s| s.incarnation == incarnation)
    else {
        // The server of a process that is gone: its connections are being torn down.
        return error(503, "sidecar restarting");
    };
    let ready = process.ready;
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method, path, segments.as_slice()) {
        // seictl `handleHealthz` (also `/v0/startupz`): `Engine.Healthz`, the in-memory ready flag.
        ("GET", HEALTHZ_PATH | STARTUPZ_PATH, _) => empty(if ready { 200 } else { 503 }),
        // seictl `handleLivez`: 200 while the task store answers (a simulated store always does).
        ("GET", LIVEZ_PATH, _) => empty(200),
        // seictl `handleStatus` / `Engine.Status`.
        ("GET", STATUS_PATH, _) => {
            let status = if ready { ReadinessStatus::Ready } else { ReadinessStatus::Initializing };
            json(200, &StatusResponse { status })
        }
        // seictl `handleListTasks` / `Engine.RecentResults`: the newest 100, newest first.
        ("GET", _, ["v0", "tasks"]) => {
            let mut tasks: Vec<&SidecarTask> =
                process::tasks(world, key).into_iter().flat_map(|t| t.values()).collect();
            tasks.sort_by(|a, b| b.submitted_at.cmp(&a.submitted_at).then(a.id.cmp(&b.id)));
            let results: Vec<TaskResult> =
                tasks.into_iter().take(LISTED_TASKS).map(|t| task_result(world, t)).collect();
            json(200, &results)
        }
        ("POST", _, ["v0", "tasks"]) => submit(world, key, caller, body),
        // seictl `handleGetTask` / `Engine.GetResult`: the store looks the id up as given; an id that is no UUID
        // is simply not found.
        ("GET", _, ["v0", "tasks", id]) if !id.is_empty() => {
            match id.parse::<Uuid>().ok().and_then(|id| process::tasks(world, key)?.get(&id)) {
                Some(task) => json(200, &task_result(world, task)),
                None => error(404, "task not found"),
            }
        }
        // seictl `handleDeleteTask` / `Engine.RemoveResult`: a running task's execution is cancelled with its row.
        ("DELETE", _, ["v0", "tasks", id]) if !id.is_empty() => {
            let removed = id.parse::<Uuid>().ok().and_then(|id| process::tasks_mut(world, key)?.remove(&id));
            match removed {
                Some(task) => {
                    world.record(
                        Category::Sidecar,
                        format!("{}/{} task {} {} deleted", key.namespace, key.name, task.type_, task.id),
                    );
                    empty(204)
                }
                None => error(404, "task not found"),
            }
        }
        // Go's `http.ServeMux`: a known path with another method is 405, anything else 404, as plain text.
        _ if known_path(path, &segments) => (405, "Method Not Allowed\n".into()),
        _ => (404, "404 page not found\n".into()),
    }
}

fn known_path(path: &str, segments: &[&str]) -> bool {
    matches!(path, HEALTHZ_PATH | STARTUPZ_PATH | LIVEZ_PATH | STATUS_PATH)
        || matches!(segments, ["v0", "tasks"])
        || matches!(segments, ["v0", "tasks", id] if !id.is_empty())
}

/// The `POST /v0/tasks` body as seictl's server decodes it (`server.TaskRequest`): every field may be missing or
/// null, unknown fields are ignored, and the id is a string checked later.
#[derive(Deserialize)]
struct SubmittedBody {
    #[serde(default)]
    id: Option<String>,
    #[serde(default, rename = "type")]
    type_: Option<String>,
    #[serde(default)]
    params: Option<Map<String, Value>>,
}

/// seictl `handlePostTask`, then `Engine.Submit`, in their order of checks: a body that does not decode, a missing
/// type, an unknown type, an id that is not a UUID — each a 400 with seictl's message — else 201 `{"id"}`, whether
/// the task started, ran again after failing, or was already running or completed.
fn submit(world: &mut WorldState, key: &ObjectRef, caller: &str, body: &[u8]) -> Answer {
    // Go's `json.Decoder.Decode` reads the first JSON value and ignores what follows it.
    let decoded = serde_json::Deserializer::from_slice(body).into_iter::<SubmittedBody>().next();
    let Some(Ok(request)) = decoded else { return error(400, "invalid request body") };
    let type_ = request.type_.unwrap_or_default();
    if type_.is_empty() {
        return error(400, "type is required");
    }
    // The handlers the simulated sidecar has: the task types the operator submits.
    if SidecarTaskType::parse(&type_).is_none() {
        return error(400, &format!("unknown task type: {type_}"));
    }
    // seictl compares ids as strings; here they are UUIDs (the operator always sends the canonical form).
    let id = match request.id.as_deref().unwrap_or("") {
        "" => Uuid::from_u128(world.rng.random::<u128>()),
        given => match given.parse::<Uuid>() {
            Ok(id) => id,
            Err(_) => return error(400, &format!("task ID must be a valid UUID: {given:?}")),
        },
    };
    let params = request.params.map(Value::Object);
    let now = world.now;
    let Some(incarnation) = world.plane.pods.get(key).and_then(|p| p.sidecar.as_ref()).map(|s| s.incarnation) else {
        return error(503, "sidecar restarting");
    };
    let Some(submitted) = process::submit(world, key, id, &type_, params) else {
        return error(503, "sidecar restarting");
    };
    world.ledger.sidecar_submissions.push(SidecarSubmission {
        at: now,
        pod: key.clone(),
        incarnation,
        id,
        task_type: type_.clone(),
        status: 201,
        started: submitted.started,
        run: submitted.run,
        caller: caller.to_owned(),
    });
    if submitted.started {
        world.plane.controllers.kubelet_dirty = true;
        let run = submitted.run;
        world.record(
            Category::Sidecar,
            format_args!("{}/{} started task {type_} {id} (run {run})", key.namespace, key.name),
        );
    }
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
        run: task.run,
        params: task.params.clone(),
        result: None,
        error,
        submitted_at: rfc3339(world, task.submitted_at),
        completed_at: task.completed_at.map(|at| rfc3339(world, at)),
    }
}

/// Serves seid's RPC for the pod `key` (server `incarnation`): `GET /status`.
pub fn rpc(world: &WorldState, key: &ObjectRef, incarnation: u64, path: &str) -> Answer {
    let Some(pod) = world.plane.pods.get(key) else { return error(503, "seid not running") };
    let Seid::Running { run, rpc_incarnation, .. } = &pod.seid else { return error(503, "seid not running") };
    if *rpc_incarnation != incarnation {
        return error(503, "seid restarting");
    }
    let Some(chain) = world.chain_for(pod.chain_id.as_deref()) else { return error(500, "unknown chain") };
    if path == sei_operator_core::objects::workload::LAG_STATUS_PATH {
        return lag_status(run.height_at(chain, world.now), chain.tip(world.now));
    }
    if path != RPC_STATUS_PATH {
        return error(404, "no such route");
    }
    let status =
        ChainStatus { latest_height: run.height_at(chain, world.now), catching_up: run.catching_up(chain, world.now) };
    json(200, &RpcStatusResponse::new(status))
}

/// seid's `GET /lag_status` (sei-protocol/sei-chain `sei-tendermint/internal/rpc/core/lag_status.go`,
/// `LagStatus`): the node's height, its peers' highest (here the network's tip) and the lag, as the bare result
/// with int64s as strings (tmjson); 200 within the lag threshold, else 417 with the same body
/// (`sei-tendermint/rpc/jsonrpc/server/http_server.go`, `writeHTTPResponse`). The kubelet's readiness probe reads
/// the same rule (`kube::pod::PodRuntime::answers_http`).
fn lag_status(height: u64, tip: u64) -> Answer {
    let lag = tip.saturating_sub(height);
    let body = serde_json::json!({
        "current_height": height.to_string(),
        "max_peer_height": tip.to_string(),
        "lag": lag.to_string(),
    });
    json(if lag > crate::kube::pod::LAG_THRESHOLD { 417 } else { 200 }, &body)
}
