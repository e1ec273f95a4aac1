//! The reqwest Sidecar backend against canned answers served on real loopback TCP: the documented answers decode
//! to the trait's values, and every other answer (404, 503, 400, 500, redirects, malformed JSON, oversized
//! bodies, refused connections, a server that never answers) becomes a typed error — never a panic.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use sei_operator::backend::http_sidecar::BaseUrlResolver;
use sei_operator::backend::{HttpSidecar, HttpSidecarConfig};
use sei_operator::sidecar::wire::{ChainStatus, ReadinessStatus, TaskRequest, TaskState};
use sei_operator::sidecar::{PodAddress, Sidecar, SidecarError};
use tokio::net::TcpListener;
use uuid::Uuid;

/// Every test finishes within this, whatever the client does.
const TEST_BOUND: Duration = Duration::from_secs(10);

const TASK_ID: &str = "6a2f41a3-c54c-5b6e-a0f5-3f2d8a3b7b11";

/// A canned answer: status, extra header, body.
type Canned = (u16, Option<(&'static str, &'static str)>, String);

/// Serves `answer(method, path)` for every request on 127.0.0.1, on a port the OS picks.
async fn serve(answer: fn(&str, &str) -> Canned) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                    let (status, header, body) = answer(request.method().as_str(), request.uri().path());
                    let mut response = Response::builder().status(status);
                    if let Some((name, value)) = header {
                        response = response.header(name, value);
                    }
                    let response = response.body(Full::new(Bytes::from(body))).unwrap();
                    async move { Ok::<_, Infallible>(response) }
                });
                let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            });
        }
    });
    addr
}

/// Accepts connections and never answers.
async fn serve_silence() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    addr
}

fn pod() -> PodAddress {
    PodAddress::for_node("chain", "node-a", 7777)
}

/// A client whose every request for `<node>-0.<node>.<ns>.svc` (sidecar and seid RPC alike) goes to `addr`.
fn client_for(addr: SocketAddr) -> HttpSidecar {
    let config = HttpSidecarConfig {
        connect_timeout: Duration::from_millis(500),
        request_timeout: Duration::from_millis(500),
        max_body_bytes: 4096,
    };
    let resolve: BaseUrlResolver = Arc::new(move |pod: &PodAddress, _port| {
        assert_eq!(pod.host, "node-a-0.node-a.chain.svc");
        format!("http://{addr}")
    });
    HttpSidecar::with_resolver(config, resolve).unwrap()
}

async fn bounded<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(TEST_BOUND, future).await.expect("the client answered within the test bound")
}

fn healthy_sidecar(method: &str, path: &str) -> Canned {
    let task = format!(
        r#"{{"id":"{TASK_ID}","type":"mark-ready","status":"completed","submittedAt":"2026-01-01T00:00:00Z","completedAt":"2026-01-01T00:00:01Z"}}"#
    );
    match (method, path) {
        ("GET", "/v0/healthz") => (200, None, String::new()),
        ("GET", "/v0/status") => (200, None, "{\"status\":\"Ready\"}\n".into()),
        ("POST", "/v0/tasks") => (201, None, format!("{{\"id\":\"{TASK_ID}\"}}\n")),
        ("GET", p) if p == format!("/v0/tasks/{TASK_ID}") => (200, None, task),
        ("GET", "/status") => {
            (200, None, r#"{"result":{"sync_info":{"latest_block_height":"1199999","catching_up":false}}}"#.into())
        }
        _ => (404, None, "not found".into()),
    }
}

fn mark_ready() -> TaskRequest {
    TaskRequest { id: Some(TASK_ID.parse().unwrap()), type_: "mark-ready".into(), params: None }
}

#[tokio::test]
async fn documented_answers_decode_to_the_trait_values() {
    let client = client_for(serve(healthy_sidecar).await);
    bounded(async {
        assert_eq!(client.healthz(&pod()).await, Ok(true));
        assert_eq!(client.status(&pod()).await, Ok(ReadinessStatus::Ready));
        assert_eq!(client.submit_task(&pod(), &mark_ready()).await, Ok(TASK_ID.parse().unwrap()));
        let task = client.get_task(&pod(), TASK_ID.parse().unwrap()).await.unwrap().unwrap();
        assert_eq!(task.status, TaskState::Completed);
        assert_eq!(client.chain_status(&pod()).await, Ok(ChainStatus { latest_height: 1_199_999, catching_up: false }));
    })
    .await;
}

#[tokio::test]
async fn an_unknown_task_is_none_and_a_known_id_is_answered_like_a_new_one() {
    // seictl answers every accepted submission 201 `{"id"}`: new, re-run after a failure, or a no-op.
    let client = client_for(
        serve(|method, _| match method {
            "POST" => (201, None, format!("{{\"id\":\"{TASK_ID}\"}}\n")),
            _ => (404, None, "{\"error\":\"task not found\"}\n".into()),
        })
        .await,
    );
    bounded(async {
        assert_eq!(client.get_task(&pod(), Uuid::nil()).await, Ok(None));
        let id: Uuid = TASK_ID.parse().unwrap();
        assert_eq!(client.submit_task(&pod(), &mark_ready()).await, Ok(id));
        assert_eq!(client.submit_task(&pod(), &mark_ready()).await, Ok(id));
    })
    .await;
}

#[tokio::test]
async fn an_answer_naming_another_task_is_malformed() {
    let client = client_for(serve(|_, _| (201, None, format!("{{\"id\":\"{}\"}}", Uuid::nil()))).await);
    let answer = bounded(client.submit_task(&pod(), &mark_ready())).await;
    assert!(matches!(answer, Err(SidecarError::Malformed { .. })), "{answer:?}");
}

#[tokio::test]
async fn seid_rpc_answering_503_is_seid_not_running() {
    let client = client_for(serve(|_, _| (503, None, String::new())).await);
    let answer = bounded(client.chain_status(&pod())).await;
    assert!(
        matches!(&answer, Err(SidecarError::Unreachable { reason, .. }) if reason == "seid is not running"),
        "{answer:?}"
    );
}

#[tokio::test]
async fn a_sidecar_not_marked_ready_is_unhealthy_not_an_error() {
    let client = client_for(serve(|_, _| (503, None, String::new())).await);
    bounded(async {
        assert_eq!(client.healthz(&pod()).await, Ok(false));
        // 503 is defined for healthz only.
        assert!(matches!(client.status(&pod()).await, Err(SidecarError::UnexpectedStatus { status: 503, .. })));
    })
    .await;
}

#[tokio::test]
async fn malformed_json_is_a_malformed_error() {
    let client = client_for(
        serve(|method, path| match (method, path) {
            ("POST", _) => (201, None, "created!".into()),
            (_, "/status") => {
                (200, None, r#"{"result":{"sync_info":{"latest_block_height":"tall","catching_up":false}}}"#.into())
            }
            (_, "/v0/status") => (200, None, r#"{"status":"Sleeping"}"#.into()),
            _ => (200, None, "<html>definitely not json".into()),
        })
        .await,
    );
    bounded(async {
        assert!(matches!(client.status(&pod()).await, Err(SidecarError::Malformed { .. })));
        assert!(matches!(client.get_task(&pod(), Uuid::nil()).await, Err(SidecarError::Malformed { .. })));
        assert!(matches!(client.chain_status(&pod()).await, Err(SidecarError::Malformed { .. })));
        // A 201 whose body is not `{"id"}` is not the documented API either.
        assert!(matches!(client.submit_task(&pod(), &mark_ready()).await, Err(SidecarError::Malformed { .. })));
    })
    .await;
}

#[tokio::test]
async fn rejections_redirects_and_server_errors_are_typed() {
    let client = client_for(
        serve(|method, path| match (method, path) {
            ("POST", _) => (400, None, "{\"error\":\"unknown task type: reboot\"}\n".into()),
            (_, "/v0/status") => (302, Some(("location", "http://127.0.0.1:1/v0/status")), String::new()),
            _ => (500, None, "boom".into()),
        })
        .await,
    );
    bounded(async {
        let rejected = client.submit_task(&pod(), &mark_ready()).await;
        let expected = "unknown task type: reboot";
        assert!(
            matches!(&rejected, Err(SidecarError::Rejected { message, .. }) if message == expected),
            "{rejected:?}"
        );
        assert!(!rejected.unwrap_err().is_transient());
        // Not followed: the answer is the redirect itself.
        assert!(matches!(client.status(&pod()).await, Err(SidecarError::UnexpectedStatus { status: 302, .. })));
        let failed = client.healthz(&pod()).await;
        assert!(matches!(&failed, Err(SidecarError::UnexpectedStatus { status: 500, body, .. }) if body == "boom"));
    })
    .await;
}

#[tokio::test]
async fn an_oversized_answer_is_cut_off() {
    let client =
        client_for(serve(|_, _| (200, None, format!(r#"{{"status":"Ready","pad":"{}"}}"#, "x".repeat(10_000)))).await);
    let result = bounded(client.status(&pod())).await;
    assert!(
        matches!(&result, Err(SidecarError::Malformed { message, .. }) if message.contains("larger than")),
        "{result:?}"
    );
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_as_unreachable() {
    let client = client_for(serve_silence().await);
    let result = bounded(client.healthz(&pod())).await;
    assert!(
        matches!(&result, Err(SidecarError::Unreachable { reason, .. }) if reason.contains("timed out")),
        "{result:?}"
    );
    assert!(result.unwrap_err().is_transient());
}

#[tokio::test]
async fn a_refused_connection_is_unreachable() {
    let closed = {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap()
    };
    let client = client_for(closed);
    let result = bounded(client.status(&pod())).await;
    assert!(matches!(result, Err(SidecarError::Unreachable { .. })), "{result:?}");
}
