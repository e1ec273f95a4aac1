//! The production API client (`backend::run::api_client`) against a fake API server on loopback TCP: it sends a
//! refused call again under the operator's retry policy (core `api_retry`) and hands other errors straight back.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use sei_operator::backend::run::api_client;
use serde_json::json;

/// Far above what the few short retries below sleep (5 ms to 40 ms each).
const TEST_BOUND: Duration = Duration::from_secs(10);

/// A fake answering `GET /version` with `refused` (status) for its first `refusals` requests, then the version.
async fn client_against(refused: u16, refusals: usize) -> (kube::Client, Arc<AtomicUsize>) {
    let seen = Arc::new(AtomicUsize::new(0));
    let count = seen.clone();
    let addr = support::serve(move |request| {
        let n = count.fetch_add(1, Ordering::SeqCst);
        if request.path != "/version" {
            return support::Reply::Json(404, support::status(404, "NotFound"));
        }
        if n < refusals {
            return support::Reply::Json(refused, support::status(refused, "ServiceUnavailable"));
        }
        support::Reply::Json(
            200,
            json!({"major": "1", "minor": "33", "gitVersion": "v1.33.0", "gitCommit": "fake", "gitTreeState": "clean",
                   "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.24", "compiler": "gc",
                   "platform": "linux/amd64"}),
        )
    })
    .await;
    let config = kube::Config::new(format!("http://{addr}").parse().expect("a URL"));
    (api_client(config).expect("a client"), seen)
}

#[tokio::test]
async fn a_call_refused_with_503_is_sent_again_until_it_goes_through() {
    let (client, seen) = client_against(503, 4).await;
    let version = tokio::time::timeout(TEST_BOUND, client.apiserver_version()).await.expect("in time");
    assert_eq!(version.expect("the fifth attempt answers").git_version, "v1.33.0");
    assert_eq!(seen.load(Ordering::SeqCst), 5);
}

#[tokio::test]
async fn a_500_reaches_the_caller_at_once() {
    let (client, seen) = client_against(500, 1).await;
    let answer = tokio::time::timeout(TEST_BOUND, client.apiserver_version()).await.expect("in time");
    assert!(answer.is_err(), "{answer:?}");
    assert_eq!(seen.load(Ordering::SeqCst), 1);
}
