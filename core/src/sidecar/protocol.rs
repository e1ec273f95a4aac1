//! The sidecar's HTTP protocol (v0) and seid's RPC status, once: what each call sends, and what each answer the
//! server can give means. Pure functions from (host, HTTP status, body bytes) to typed results — the production
//! client (reqwest) and the simulator's client (hyper over turmoil) only move bytes and call these, so the two
//! cannot read the same answer differently.
//!
//! The answers modelled are the real server's (sei-protocol/seictl `sidecar/server/server.go`, routes in
//! `NewServer`; `sidecar/api/openapi.yaml`):
//! - `GET /v0/healthz` (`handleHealthz`): 200 or 503, empty body.
//! - `GET /v0/status` (`handleStatus`): 200 `{"status": "Initializing" | "Ready"}`.
//! - `POST /v0/tasks` (`handlePostTask`): 201 `{"id"}` whether the task started or the id was known
//!   (`Engine.Submit`); 400 `{"error"}` for an undecodable body, a missing type, an unknown type or an id that is
//!   not a UUID. (openapi.yaml also lists a 202 with the same body, which the server never sends; it is read as
//!   201.)
//! - `GET /v0/tasks/{id}` (`handleGetTask`): 200 with the task result, 404 `{"error": "task not found"}`.
//! - seid's CometBFT RPC `GET /status` on 26657: 200 with `result.sync_info`; nothing listens while seid is not
//!   running (a connection failure, which the transport reports as `Unreachable`); a 503 from something in
//!   between means the same.
//!
//! Every other status is [`SidecarError::UnexpectedStatus`], quoting at most [`QUOTED_BODY_CHARS`] of the body.

use serde::de::DeserializeOwned;
use uuid::Uuid;

use super::wire::{
    ChainStatus, ReadinessStatus, RpcStatusResponse, StatusResponse, TaskAccepted, TaskRequest, TaskResult,
};
use super::{PodAddress, SEID_RPC_PORT, SidecarError};

/// The longest piece of an answer's body quoted in an error.
pub const QUOTED_BODY_CHARS: usize = 256;

/// The content type of every request body.
pub const JSON: &str = "application/json";

pub const HEALTHZ_PATH: &str = "/v0/healthz";
pub const STARTUPZ_PATH: &str = "/v0/startupz";
pub const LIVEZ_PATH: &str = "/v0/livez";
pub const STATUS_PATH: &str = "/v0/status";
pub const TASKS_PATH: &str = "/v0/tasks";
/// seid's RPC status, on [`SEID_RPC_PORT`].
pub const RPC_STATUS_PATH: &str = "/status";

/// The HTTP methods the operator uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
        }
    }
}

/// One request to a pod: method, port on the pod, path, and a JSON body for a POST.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    pub port: u16,
    pub path: String,
    pub body: Option<Vec<u8>>,
}

impl Request {
    fn get(port: u16, path: impl Into<String>) -> Self {
        Request { method: Method::Get, port, path: path.into(), body: None }
    }
}

/// `GET /v0/healthz` on the sidecar's port.
pub fn healthz_request(pod: &PodAddress) -> Request {
    Request::get(pod.sidecar_port, HEALTHZ_PATH)
}

/// `GET /v0/status` on the sidecar's port.
pub fn status_request(pod: &PodAddress) -> Request {
    Request::get(pod.sidecar_port, STATUS_PATH)
}

/// `POST /v0/tasks` with the task as JSON (`{"id"?, "type", "params"?}`).
pub fn submit_request(pod: &PodAddress, task: &TaskRequest) -> Result<Request, SidecarError> {
    let body = serde_json::to_vec(task)
        .map_err(|e| SidecarError::Rejected { host: pod.host.clone(), message: format!("encoding the task: {e}") })?;
    Ok(Request { method: Method::Post, port: pod.sidecar_port, path: TASKS_PATH.into(), body: Some(body) })
}

/// `GET /v0/tasks/{id}` on the sidecar's port.
pub fn get_task_request(pod: &PodAddress, id: Uuid) -> Request {
    Request::get(pod.sidecar_port, format!("{TASKS_PATH}/{id}"))
}

/// `GET /v0/tasks` on the sidecar's port: the newest results, whatever their state (seictl `handleListTasks`).
pub fn list_tasks_request(pod: &PodAddress) -> Request {
    Request::get(pod.sidecar_port, TASKS_PATH)
}

/// seid's `GET /status` on its RPC port.
pub fn chain_status_request() -> Request {
    Request::get(SEID_RPC_PORT, RPC_STATUS_PATH)
}

/// The answer to [`healthz_request`]: 200 ready, 503 not (yet) marked ready in this sidecar process.
pub fn healthz(host: &str, status: u16, body: &[u8]) -> Result<bool, SidecarError> {
    match status {
        200 => Ok(true),
        503 => Ok(false),
        _ => Err(unexpected(host, status, body)),
    }
}

/// The answer to [`status_request`].
pub fn status(host: &str, status: u16, body: &[u8]) -> Result<ReadinessStatus, SidecarError> {
    match status {
        200 => decode::<StatusResponse>(host, body).map(|s| s.status),
        _ => Err(unexpected(host, status, body)),
    }
}

/// The answer to [`submit_request`] for `task`: the task's id. The answer is the same whether the sidecar started
/// the task or already had it (seictl `Engine.Submit`), so it says nothing about which; an id other than the one
/// asked for is not the documented API.
pub fn submitted(host: &str, task: &TaskRequest, status: u16, body: &[u8]) -> Result<Uuid, SidecarError> {
    match status {
        201 | 202 => {
            let id = decode::<TaskAccepted>(host, body)?.id;
            match task.id {
                Some(asked) if asked != id => Err(SidecarError::Malformed {
                    host: host.to_owned(),
                    message: format!("submitted task {asked} but the sidecar answered id {id}"),
                }),
                _ => Ok(id),
            }
        }
        400 => Err(rejected(host, body)),
        _ => Err(unexpected(host, status, body)),
    }
}

/// The answer to [`get_task_request`]: the task, or `None` when the sidecar does not know it (404).
pub fn task(host: &str, status: u16, body: &[u8]) -> Result<Option<TaskResult>, SidecarError> {
    match status {
        200 => decode(host, body).map(Some),
        404 => Ok(None),
        400 => Err(rejected(host, body)),
        _ => Err(unexpected(host, status, body)),
    }
}

/// The answer to [`list_tasks_request`]: a JSON array of task results.
pub fn tasks(host: &str, status: u16, body: &[u8]) -> Result<Vec<TaskResult>, SidecarError> {
    match status {
        200 => decode(host, body),
        _ => Err(unexpected(host, status, body)),
    }
}

/// The answer to [`chain_status_request`]. A 503 means seid is not running, like a refused connection.
pub fn chain_status(host: &str, status: u16, body: &[u8]) -> Result<ChainStatus, SidecarError> {
    match status {
        200 => decode::<RpcStatusResponse>(host, body)?.chain_status().ok_or_else(|| SidecarError::Malformed {
            host: host.to_owned(),
            message: "latest_block_height is not a decimal number".into(),
        }),
        503 => Err(seid_not_running(host)),
        _ => Err(unexpected(host, status, body)),
    }
}

/// seid's RPC does not answer: it is not running (waiting for mark-ready, crash-looping, halted).
pub fn seid_not_running(host: &str) -> SidecarError {
    SidecarError::Unreachable { host: host.to_owned(), reason: "seid is not running".into() }
}

fn decode<T: DeserializeOwned>(host: &str, body: &[u8]) -> Result<T, SidecarError> {
    serde_json::from_slice(body).map_err(|e| SidecarError::Malformed { host: host.to_owned(), message: e.to_string() })
}

/// At most [`QUOTED_BODY_CHARS`] of a body, as text.
pub fn quoted_body(body: &[u8]) -> String {
    String::from_utf8_lossy(body).chars().take(QUOTED_BODY_CHARS).collect()
}

/// The `error` of a `{"error": "..."}` body (seictl `ErrorResponse`), or the body itself when it is not one.
fn error_message(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct ErrorResponse {
        error: String,
    }
    match serde_json::from_slice::<ErrorResponse>(body) {
        Ok(e) => e.error.chars().take(QUOTED_BODY_CHARS).collect(),
        Err(_) => quoted_body(body),
    }
}

fn rejected(host: &str, body: &[u8]) -> SidecarError {
    SidecarError::Rejected { host: host.to_owned(), message: error_message(body) }
}

fn unexpected(host: &str, status: u16, body: &[u8]) -> SidecarError {
    SidecarError::UnexpectedStatus { host: host.to_owned(), status, body: quoted_body(body) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sidecar::wire::TaskState;

    const HOST: &str = "n-0.n.sei.svc";
    const ID: &str = "6a2f41a3-c54c-5b6e-a0f5-3f2d8a3b7b11";

    fn id() -> Uuid {
        ID.parse().unwrap()
    }

    fn mark_ready(id: Option<Uuid>) -> TaskRequest {
        TaskRequest { id, type_: "mark-ready".into(), params: None }
    }

    fn pod() -> PodAddress {
        PodAddress::for_node("sei", "n", 7777)
    }

    #[test]
    fn requests_name_the_documented_routes_and_ports() {
        assert_eq!(healthz_request(&pod()), Request::get(7777, "/v0/healthz"));
        assert_eq!(status_request(&pod()), Request::get(7777, "/v0/status"));
        assert_eq!(get_task_request(&pod(), id()), Request::get(7777, format!("/v0/tasks/{ID}")));
        assert_eq!(chain_status_request(), Request::get(26657, "/status"));
        assert_eq!(list_tasks_request(&pod()), Request::get(7777, "/v0/tasks"));
        let submit = submit_request(&pod(), &mark_ready(Some(id()))).unwrap();
        assert_eq!((submit.method, submit.port, submit.path.as_str()), (Method::Post, 7777, "/v0/tasks"));
        let body: serde_json::Value = serde_json::from_slice(&submit.body.unwrap()).unwrap();
        assert_eq!(body, serde_json::json!({"id": ID, "type": "mark-ready"}), "no params key when there are none");
    }

    #[test]
    fn healthz_is_200_or_503_with_an_empty_body() {
        assert_eq!(healthz(HOST, 200, b""), Ok(true));
        assert_eq!(healthz(HOST, 503, b""), Ok(false));
        let error = healthz(HOST, 500, b"boom").unwrap_err();
        assert_eq!(error, SidecarError::UnexpectedStatus { host: HOST.into(), status: 500, body: "boom".into() });
        assert!(error.is_transient());
    }

    #[test]
    fn status_reads_both_states_and_nothing_else() {
        assert_eq!(status(HOST, 200, b"{\"status\":\"Initializing\"}\n"), Ok(ReadinessStatus::Initializing));
        assert_eq!(status(HOST, 200, b"{\"status\":\"Ready\"}\n"), Ok(ReadinessStatus::Ready));
        assert!(matches!(status(HOST, 200, b"{\"status\":\"Sleeping\"}"), Err(SidecarError::Malformed { .. })));
        // 503 is defined for healthz only.
        assert!(matches!(status(HOST, 503, b""), Err(SidecarError::UnexpectedStatus { status: 503, .. })));
    }

    #[test]
    fn a_submission_answers_the_id_and_cannot_tell_new_from_known() {
        let body = format!("{{\"id\":\"{ID}\"}}\n");
        assert_eq!(submitted(HOST, &mark_ready(Some(id())), 201, body.as_bytes()), Ok(id()));
        // Listed in openapi.yaml though server.go never sends it: the same answer.
        assert_eq!(submitted(HOST, &mark_ready(Some(id())), 202, body.as_bytes()), Ok(id()));
        // Without an id the sidecar picks one.
        assert_eq!(submitted(HOST, &mark_ready(None), 201, body.as_bytes()), Ok(id()));
        let other = submitted(HOST, &mark_ready(Some(Uuid::nil())), 201, body.as_bytes());
        assert!(matches!(other, Err(SidecarError::Malformed { .. })), "{other:?}");
        assert!(matches!(submitted(HOST, &mark_ready(None), 201, b"created!"), Err(SidecarError::Malformed { .. })));
    }

    #[test]
    fn every_400_the_server_sends_is_a_permanent_rejection_with_its_message() {
        // server.go handlePostTask, and Engine.Submit's errors.
        for message in [
            "invalid request body",
            "type is required",
            "unknown task type: reboot",
            "task ID must be a valid UUID: \"nope\"",
        ] {
            let body = serde_json::json!({ "error": message }).to_string() + "\n";
            let error = submitted(HOST, &mark_ready(None), 400, body.as_bytes()).unwrap_err();
            assert_eq!(error, SidecarError::Rejected { host: HOST.into(), message: message.into() });
            assert!(!error.is_transient());
        }
        // A 400 that is not the error envelope is quoted as it is.
        let plain = submitted(HOST, &mark_ready(None), 400, b"unknown task type").unwrap_err();
        assert_eq!(plain, SidecarError::Rejected { host: HOST.into(), message: "unknown task type".into() });
        let other = submitted(HOST, &mark_ready(None), 500, b"oops").unwrap_err();
        assert!(matches!(other, SidecarError::UnexpectedStatus { status: 500, .. }));
    }

    #[test]
    fn a_task_is_its_result_or_none_when_unknown() {
        let body = format!(
            "{{\"id\":\"{ID}\",\"type\":\"mark-ready\",\"status\":\"failed\",\"run\":2,\"error\":\"x\",\
             \"submittedAt\":\"2026-01-01T00:00:00Z\",\"completedAt\":\"2026-01-01T00:00:01Z\"}}\n"
        );
        let result = task(HOST, 200, body.as_bytes()).unwrap().unwrap();
        assert_eq!((result.status, result.run, result.error.as_deref()), (TaskState::Failed, 2, Some("x")));
        assert_eq!(task(HOST, 404, b"{\"error\":\"task not found\"}\n"), Ok(None));
        assert!(matches!(task(HOST, 400, b"{\"error\":\"missing task ID\"}"), Err(SidecarError::Rejected { .. })));
        assert!(matches!(task(HOST, 200, b"<html>"), Err(SidecarError::Malformed { .. })));
        assert!(matches!(task(HOST, 502, b""), Err(SidecarError::UnexpectedStatus { status: 502, .. })));
    }

    #[test]
    fn a_task_list_is_a_json_array_possibly_empty() {
        let body = format!(
            "[{{\"id\":\"{ID}\",\"type\":\"mark-ready\",\"status\":\"running\",\"run\":1,\
             \"submittedAt\":\"2026-01-01T00:00:00Z\"}}]\n"
        );
        let listed = tasks(HOST, 200, body.as_bytes()).unwrap();
        assert_eq!(listed.iter().map(|t| (t.id, t.status)).collect::<Vec<_>>(), vec![(id(), TaskState::Running)]);
        assert_eq!(tasks(HOST, 200, b"[]\n"), Ok(vec![]));
        assert!(matches!(tasks(HOST, 200, b"{}"), Err(SidecarError::Malformed { .. })));
        assert!(matches!(tasks(HOST, 500, b""), Err(SidecarError::UnexpectedStatus { status: 500, .. })));
    }

    #[test]
    fn seid_status_decodes_its_decimal_height_and_503_means_not_running() {
        let body = br#"{"result":{"sync_info":{"latest_block_height":"1199999","catching_up":true}}}"#;
        assert_eq!(chain_status(HOST, 200, body), Ok(ChainStatus { latest_height: 1_199_999, catching_up: true }));
        let tall = br#"{"result":{"sync_info":{"latest_block_height":"tall","catching_up":false}}}"#;
        assert!(matches!(chain_status(HOST, 200, tall), Err(SidecarError::Malformed { .. })));
        assert_eq!(chain_status(HOST, 503, b"{\"error\":\"x\"}"), Err(seid_not_running(HOST)));
        assert!(matches!(chain_status(HOST, 404, b""), Err(SidecarError::UnexpectedStatus { status: 404, .. })));
    }

    #[test]
    fn quoted_bodies_are_cut() {
        let long = "x".repeat(1000);
        let error = healthz(HOST, 418, long.as_bytes()).unwrap_err();
        assert!(matches!(error, SidecarError::UnexpectedStatus { body, .. } if body.len() == QUOTED_BODY_CHARS));
    }
}
