//! The operator's API client facing an API server that loses responses and sheds load, as production's client
//! (kube 5 with its default retry layer, kube-client `src/client/retry.rs`) meets it: a write applied whose
//! response is lost is a timeout, or a 504 the client sends again and whose second attempt meets the first's
//! effect; a 429 or 503 is retried inside the client (backing off, honouring Retry-After) up to 15 times; a 500
//! reaches the caller at once.

use std::time::Duration;

use k8s_openapi::api::core::v1::Service;
use sei_operator_core::cluster::{Cluster, ClusterError};
use sei_sim::apiserver::faults::RefusalStatus;
use sei_sim::harness::fault_state::Fault;
use sei_sim::harness::world::World;

use crate::common::*;

/// Runs `call` with the operator's client on a client host; answers its result and the simulated time it took.
fn timed<T: 'static>(
    world: &mut World,
    call: impl AsyncFnOnce(sei_sim::operator_host::cluster::SimCluster) -> T + 'static,
) -> (T, Duration) {
    let client = world.operator_cluster();
    let start = world.now();
    let result = world.probe("test", move |_| async move { call(client).await }).unwrap();
    (result, world.now() - start)
}

#[test]
fn a_write_whose_response_is_lost_is_applied_and_answered_as_a_timeout() {
    let mut world = world(1);
    world.inject(&Fault::LoseResponses { count: 1, gateway_timeout: false });
    let (created, _) = timed(&mut world, async |c| c.create(&headless_service("a")).await);
    assert!(matches!(created, Err(ClusterError::Transient(_))), "{created:?}");
    assert!(world.get::<Service>(NS, "a").is_ok(), "applied, though the client was told nothing");
}

#[test]
fn a_504_is_sent_again_and_the_second_attempt_meets_the_first_ones_effect() {
    let mut world = world(1);
    world.inject(&Fault::LoseResponses { count: 3, gateway_timeout: true });
    let (created, _) = timed(&mut world, async |c| c.create(&headless_service("a")).await);
    assert!(matches!(created, Err(ClusterError::AlreadyExists(_))), "{created:?}");

    let mut labelled = world.get::<Service>(NS, "a").unwrap();
    labelled.metadata.labels.get_or_insert_default().insert("x".into(), "y".into());
    let (replaced, _) = timed(&mut world, async move |c| c.replace(&labelled).await);
    assert!(matches!(replaced, Err(ClusterError::Conflict(_))), "its own new resourceVersion: {replaced:?}");
    assert_eq!(world.get::<Service>(NS, "a").unwrap().metadata.labels.unwrap()["x"], "y", "applied");

    let (deleted, _) = timed(&mut world, async |c| c.delete::<Service>(NS, "a").await);
    assert!(matches!(deleted, Err(ClusterError::NotFound(_))), "{deleted:?}");
    assert!(world.get::<Service>(NS, "a").is_err(), "deleted");
}

#[test]
fn a_429_is_retried_inside_the_client_after_retry_after_until_the_api_server_answers() {
    let mut world = world(1);
    let status = RefusalStatus::TooManyRequests { retry_after: secs(20) };
    world.inject(&Fault::RefuseCalls { duration: secs(90), status });
    let (created, took) = timed(&mut world, async |c| c.create(&headless_service("a")).await);
    assert!(created.is_ok(), "{created:?}");
    // Refused at 0, 20, 40, 60 and 80 s; the attempt at 100 s is answered.
    assert!(took >= secs(90) && took <= secs(110), "took {took:?}");
}

#[test]
fn a_503_outage_longer_than_the_clients_retries_reaches_the_caller_as_transient() {
    let mut world = world(1);
    world.inject(&Fault::RefuseCalls { duration: secs(3600), status: RefusalStatus::Unavailable });
    let (got, took) = timed(&mut world, async |c| c.get::<Service>(NS, "a").await);
    assert_eq!(got.unwrap_err(), ClusterError::Transient("HTTP 503 from the API server".into()));
    // 15 retries after 5 ms doubling (plus jitter up to twice that), each sleep capped at 5 s (the operator's
    // policy, core `api_retry`): at least 5 ms × (2^10 − 1) and five sleeps of 5 s; at most 40 s of sleeps.
    assert!(took >= Duration::from_millis(30_115) && took <= secs(45), "took {took:?}");
}

#[test]
fn a_500_is_not_retried() {
    let mut world = world(1);
    world.inject(&Fault::RefuseCalls { duration: secs(3600), status: RefusalStatus::Internal });
    let (got, took) = timed(&mut world, async |c| c.get::<Service>(NS, "a").await);
    assert_eq!(got.unwrap_err(), ClusterError::Transient("HTTP 500 from the API server".into()));
    assert!(took <= secs(1), "took {took:?}");
}
