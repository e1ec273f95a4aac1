//! The kube-rs Cluster backend against a fake API server on loopback TCP: the requests it sends (paths, label
//! selectors, resourceVersions, the status subresource, delete propagation, events.k8s.io Events) and the mapping
//! of the API server's answers onto the trait's error kinds.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::Service;
use kube::runtime::events::Reporter;
use sei_operator::api::SeiNode;
use sei_operator::backend::{KubeCluster, Metrics};
use sei_operator::cluster::{Cluster, ClusterError, Event, LabelSelector, ObjectRef};
use serde_json::{Value, json};
use tokio::net::TcpListener;

const TEST_BOUND: Duration = Duration::from_secs(10);

/// One request the fake API server received.
#[derive(Clone, Debug)]
struct Received {
    method: String,
    /// Path and query.
    target: String,
    body: Value,
}

type Answer = fn(&str, &str, &Value) -> (u16, Value);

struct FakeApi {
    cluster: KubeCluster,
    metrics: Arc<Metrics>,
    received: Arc<Mutex<Vec<Received>>>,
}

impl FakeApi {
    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

/// Starts an API server answering `answer(method, path?query, body)` and a KubeCluster pointed at it.
async fn fake_api(answer: Answer) -> FakeApi {
    let received = Arc::new(Mutex::new(Vec::new()));
    let log = received.clone();
    let addr = support::serve(move |request| {
        let (status, reply) = answer(&request.method, &request.target, &request.body);
        let (method, target, body) = (request.method.clone(), request.target.clone(), request.body.clone());
        log.lock().unwrap().push(Received { method, target, body });
        support::Reply::Json(status, reply)
    })
    .await;
    let mut config = kube::Config::new(format!("http://{addr}").parse().unwrap());
    // kube retries 429 / 503 / 504 itself (up to 15 times, honouring Retry-After) before the backend sees the
    // error; the mapping of what remains is what these tests check, so the fake answers once.
    config.default_retry = false;
    let client = kube::Client::try_from(config).unwrap();
    let metrics = Arc::new(Metrics::new());
    let reporter = Reporter { controller: "sei-operator".into(), instance: Some("test".into()) };
    FakeApi { cluster: KubeCluster::new(client, reporter, metrics.clone()), metrics, received }
}

async fn bounded<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(TEST_BOUND, future).await.expect("answered within the test bound")
}

use support::status;

fn service(name: &str, resource_version: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": name, "namespace": "sei", "resourceVersion": resource_version, "uid": format!("uid-{name}")},
           "spec": {"clusterIP": "None"}})
}

fn seinode(name: &str) -> Value {
    json!({"apiVersion": "sei.io/v1alpha1", "kind": "SeiNode",
           "metadata": {"name": name, "namespace": "sei", "resourceVersion": "3", "uid": format!("uid-{name}")},
           "spec": {"chainId": "pacific-1", "image": "sei:v6.3.0", "fullNode": {}},
           "status": {"phase": "Running"}})
}

#[tokio::test]
async fn get_reads_the_typed_path_and_a_404_is_not_found() {
    let api = fake_api(|_, target, _| match target {
        "/api/v1/namespaces/sei/services/a" => (200, service("a", "5")),
        "/apis/sei.io/v1alpha1/namespaces/sei/seinodes/a-node" => (200, seinode("a-node")),
        _ => (404, status(404, "NotFound")),
    })
    .await;
    let found: Service = bounded(api.cluster.get("sei", "a")).await.unwrap();
    assert_eq!(found.metadata.resource_version.as_deref(), Some("5"));
    let missing = bounded(api.cluster.get::<Service>("sei", "b")).await;
    assert_eq!(missing.unwrap_err(), ClusterError::NotFound(ObjectRef::new("Service", "sei", "b")));
    let node: SeiNode = bounded(api.cluster.get("sei", "a-node")).await.unwrap();
    assert_eq!(node.spec.chain_id, "pacific-1");
    let targets: Vec<_> = api.received().into_iter().map(|r| (r.method, r.target)).collect();
    assert_eq!(targets[2], ("GET".to_owned(), "/apis/sei.io/v1alpha1/namespaces/sei/seinodes/a-node".to_owned()));
}

#[tokio::test]
async fn list_sends_the_equality_selector_and_returns_objects_sorted_by_name() {
    let api = fake_api(|_, _, _| {
        (
            200,
            json!({"apiVersion": "v1", "kind": "ServiceList", "metadata": {"resourceVersion": "9"},
                     "items": [service("c", "1"), service("a", "2"), service("b", "3")]}),
        )
    })
    .await;
    let selector: LabelSelector =
        [("sei.io/node".to_owned(), "n1".to_owned()), ("sei.io/bootstrap".to_owned(), "true".to_owned())].into();
    let listed: Vec<Arc<Service>> = bounded(api.cluster.list("sei", &selector)).await.unwrap();
    let names: Vec<_> = listed.iter().map(|s| s.metadata.name.clone().unwrap()).collect();
    assert_eq!(names, ["a", "b", "c"]);
    let request = &api.received()[0];
    assert_eq!(request.method, "GET");
    assert!(request.target.starts_with("/api/v1/namespaces/sei/services?"), "{}", request.target);
    assert!(
        request.target.contains("labelSelector=sei.io%2Fbootstrap%3Dtrue%2Csei.io%2Fnode%3Dn1"),
        "{}",
        request.target
    );
}

#[tokio::test]
async fn create_posts_the_object_and_a_409_is_already_exists() {
    let api = fake_api(|_, _, body| match body["metadata"]["name"].as_str() {
        Some("new") => (201, body.clone()),
        _ => (409, status(409, "AlreadyExists")),
    })
    .await;
    let new: Service = serde_json::from_value(service("new", "")).unwrap();
    bounded(api.cluster.create(&new)).await.unwrap();
    let taken: Service = serde_json::from_value(service("taken", "")).unwrap();
    let result = bounded(api.cluster.create(&taken)).await;
    assert_eq!(result.unwrap_err(), ClusterError::AlreadyExists(ObjectRef::new("Service", "sei", "taken")));
    let request = &api.received()[0];
    assert_eq!((request.method.as_str(), request.target.as_str()), ("POST", "/api/v1/namespaces/sei/services?"));
}

#[tokio::test]
async fn replace_carries_the_resource_version_and_a_409_is_a_conflict() {
    let api = fake_api(|_, _, body| match body["metadata"]["resourceVersion"].as_str() {
        Some("8") => (200, body.clone()),
        _ => (409, status(409, "Conflict")),
    })
    .await;
    let current: Service = serde_json::from_value(service("a", "8")).unwrap();
    bounded(api.cluster.replace(&current)).await.unwrap();
    let stale: Service = serde_json::from_value(service("a", "7")).unwrap();
    let result = bounded(api.cluster.replace(&stale)).await;
    assert_eq!(result.unwrap_err(), ClusterError::Conflict(ObjectRef::new("Service", "sei", "a")));
    let requests = api.received();
    assert_eq!(requests[1].method, "PUT");
    assert!(requests[1].target.starts_with("/api/v1/namespaces/sei/services/a"), "{}", requests[1].target);
    assert_eq!(requests[1].body["metadata"]["resourceVersion"], "7");

    // Without a resourceVersion the write would be unconditional: refused before anything is sent.
    let mut blind = current.clone();
    blind.metadata.resource_version = None;
    assert!(matches!(bounded(api.cluster.replace(&blind)).await, Err(ClusterError::Invalid { .. })));
    assert_eq!(api.received().len(), 2);
}

#[tokio::test]
async fn status_writes_go_to_the_status_subresource() {
    let api = fake_api(|method, target, body| match (method, target) {
        ("PUT", "/apis/sei.io/v1alpha1/namespaces/sei/seinodes/n1/status?") => (200, body.clone()),
        _ => (404, status(404, "NotFound")),
    })
    .await;
    let node: SeiNode = serde_json::from_value(seinode("n1")).unwrap();
    let written = bounded(api.cluster.replace_status(&node)).await.unwrap();
    assert_eq!(written.metadata.name.as_deref(), Some("n1"));
    let request = &api.received()[0];
    assert_eq!(request.body["metadata"]["resourceVersion"], "3");
    assert_eq!(request.body["status"]["phase"], "Running");
}

#[tokio::test]
async fn delete_propagates_in_the_background_and_a_404_is_not_found() {
    let api = fake_api(|_, target, _| match target {
        "/api/v1/namespaces/sei/services/a?" => (200, service("a", "4")),
        _ => (404, status(404, "NotFound")),
    })
    .await;
    bounded(api.cluster.delete::<Service>("sei", "a")).await.unwrap();
    let missing = bounded(api.cluster.delete::<Service>("sei", "gone")).await;
    assert_eq!(missing.unwrap_err(), ClusterError::NotFound(ObjectRef::new("Service", "sei", "gone")));
    let request = &api.received()[0];
    assert_eq!(request.method, "DELETE");
    assert_eq!(request.body["propagationPolicy"], "Background");
}

#[tokio::test]
async fn server_errors_are_transient_and_rejections_invalid() {
    let api = fake_api(|method, _, _| match method {
        "GET" => (503, status(503, "ServiceUnavailable")),
        "POST" => (422, status(422, "Invalid")),
        _ => (429, status(429, "TooManyRequests")),
    })
    .await;
    assert!(bounded(api.cluster.get::<Service>("sei", "a")).await.unwrap_err().is_transient());
    let object: Service = serde_json::from_value(service("a", "1")).unwrap();
    assert!(matches!(bounded(api.cluster.create(&object)).await, Err(ClusterError::Invalid { .. })));
    assert!(bounded(api.cluster.replace(&object)).await.unwrap_err().is_transient());
}

#[tokio::test]
async fn an_unreachable_api_server_is_transient() {
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    let client = kube::Client::try_from(kube::Config::new(format!("http://{closed}").parse().unwrap())).unwrap();
    let reporter = Reporter { controller: "sei-operator".into(), instance: None };
    let cluster = KubeCluster::new(client, reporter, Arc::new(Metrics::new()));
    assert!(bounded(cluster.get::<Service>("sei", "a")).await.unwrap_err().is_transient());
}

#[tokio::test]
async fn events_are_published_through_the_recorder_and_rollouts_counted() {
    let api = fake_api(|method, target, body| match (method, target) {
        ("GET", "/apis/sei.io/v1alpha1/namespaces/sei/seinodes/n1") => (200, seinode("n1")),
        ("POST", "/apis/events.k8s.io/v1/namespaces/sei/events?") => (201, body.clone()),
        _ => (404, status(404, "NotFound")),
    })
    .await;
    let event = Event::normal(ObjectRef::new("SeiNode", "sei", "n1"), "RolloutStarted", "InPlace to sei:v6.4.0");
    bounded(api.cluster.emit_event(&event)).await.unwrap();
    assert_eq!(api.metrics.rollout_count("sei", "n1", "started"), 1);

    let requests = api.received();
    let posted = &requests.last().unwrap().body;
    assert_eq!(posted["reason"], "RolloutStarted");
    assert_eq!(posted["note"], "InPlace to sei:v6.4.0");
    assert_eq!(posted["type"], "Normal");
    assert_eq!(posted["reportingController"], "sei-operator");
    // The uid makes the Event show in `kubectl describe seinode n1`.
    assert_eq!(
        posted["regarding"],
        json!({"apiVersion": "sei.io/v1alpha1", "kind": "SeiNode", "namespace": "sei", "name": "n1", "uid": "uid-n1"})
    );

    // An Event about an object that is gone is still published (without a uid), and other reasons count nothing.
    let gone = Event::warning(ObjectRef::new("SeiNode", "sei", "gone"), "InvalidUpdateStrategy", "x");
    let result = bounded(api.cluster.emit_event(&gone)).await;
    assert!(result.is_err() || api.received().last().unwrap().body["regarding"].get("uid").is_none());
    assert_eq!(api.metrics.rollout_count("sei", "n1", "started"), 1);
}

#[tokio::test]
async fn a_keyed_event_is_created_under_its_own_name_and_a_repeat_is_already_exists() {
    // The fake answers with a plain function: the one Event it holds is remembered here.
    static CREATED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    let api = fake_api(|method, target, body| match (method, target) {
        ("GET", "/apis/sei.io/v1alpha1/namespaces/sei/seinodes/n1") => (200, seinode("n1")),
        ("POST", "/apis/events.k8s.io/v1/namespaces/sei/events?") => {
            if CREATED.swap(true, std::sync::atomic::Ordering::SeqCst) {
                (409, status(409, "AlreadyExists"))
            } else {
                (201, body.clone())
            }
        }
        _ => (404, status(404, "NotFound")),
    })
    .await;
    let event = Event::normal(ObjectRef::new("SeiNode", "sei", "n1"), "RolloutStarted", "InPlace to sei:v6.4.0")
        .keyed("RolloutStarted/2/abc");
    bounded(api.cluster.emit_event(&event)).await.unwrap();
    let posted = api.received().last().unwrap().body.clone();
    let name = posted["metadata"]["name"].as_str().unwrap().to_owned();
    assert!(name.starts_with("n1.") && name.len() == "n1.".len() + 16, "{name}");
    assert_eq!(posted["reason"], "RolloutStarted");
    assert_eq!(posted["reportingController"], "sei-operator");
    assert_eq!(posted["regarding"]["uid"], "uid-n1");

    // The same transition again (an operator restarted before it could drop it from the status): refused by
    // name, and not counted twice.
    let again = bounded(api.cluster.emit_event(&event)).await;
    assert!(matches!(again, Err(ClusterError::AlreadyExists(_))), "{again:?}");
    assert_eq!(api.received().last().unwrap().body["metadata"]["name"], name.as_str());
    assert_eq!(api.metrics.rollout_count("sei", "n1", "started"), 1);
}
