//! `sei-operator run` end to end against a fake API server on loopback: it serves `/healthz`, `/readyz` and
//! `/metrics`, takes the leader Lease, its SeiNode controller picks a node up from the watch and drives
//! `reconcile_node` (the status write reaches the API server through the status subresource), and SIGTERM makes it
//! release the Lease and exit 0. Against an API server that refuses what the operator needs (CRDs not installed:
//! 404; list forbidden: 403) it is never ready, stops being live after `--watch-failure-limit`, and still stops
//! within its shutdown timeout on SIGTERM, releasing the Lease.

mod support;

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::Reply;

const BINARY: &str = env!("CARGO_BIN_EXE_sei-operator");
const TEST_BOUND: Duration = Duration::from_secs(20);
const NODE_PATH: &str = "/apis/sei.io/v1alpha1/namespaces/sei/seinodes/n1";
const LEASE_PATH: &str = "/apis/coordination.k8s.io/v1/namespaces/sei-operator/leases/sei-operator";

/// The one SeiNode the fake cluster holds, and every request it received.
#[derive(Default)]
struct Store {
    node: Option<Value>,
    requests: Vec<(String, String)>,
    /// `status.phase` of each status write, in order.
    written_phases: Vec<String>,
    /// The leader Lease, once created.
    lease: Option<Value>,
    /// Requests refused: a path containing the first part and a query containing the second get the status.
    refusals: Vec<(&'static str, &'static str, u16)>,
}

fn seinode() -> Value {
    json!({"apiVersion": "sei.io/v1alpha1", "kind": "SeiNode",
           "metadata": {"name": "n1", "namespace": "sei", "resourceVersion": "1", "uid": "uid-n1", "generation": 1},
           "spec": {"chainId": "pacific-1", "image": "sei:v6.3.0", "fullNode": {}}})
}

fn json_response(status: u16, body: &Value) -> Reply {
    Reply::Json(status, body.clone())
}

/// Answers like an API server holding one SeiNode: lists (the node for SeiNode lists, nothing otherwise), watches
/// that stay open with no event, the node by name, its status subresource, and Events.
fn answer(store: &Mutex<Store>, method: &str, path: &str, query: &str, body: Value) -> Reply {
    let mut store = store.lock().unwrap();
    store.requests.push((method.to_owned(), format!("{path}?{query}")));
    if let Some(&(_, _, code)) = store.refusals.iter().find(|(p, q, _)| path.contains(p) && query.contains(q)) {
        let reason = if code == 403 { "Forbidden" } else { "NotFound" };
        let message = format!("{method} {path}: refused by the test");
        return json_response(
            code,
            &json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                             "code": code, "reason": reason, "message": message}),
        );
    }
    if query.contains("watch=true") {
        return Reply::OpenWatch;
    }
    let not_found = || json_response(404, &json!({"kind": "Status", "code": 404, "reason": "NotFound"}));
    match (method, path) {
        ("GET", LEASE_PATH) => store.lease.as_ref().map_or_else(not_found, |lease| json_response(200, lease)),
        // A replace carries the resourceVersion read: a stale one is a Conflict, as the API server answers.
        ("PUT", LEASE_PATH) => match store.lease.as_mut() {
            Some(lease) if lease["metadata"]["resourceVersion"] == body["metadata"]["resourceVersion"] => {
                let version: u64 = lease["metadata"]["resourceVersion"].as_str().unwrap().parse().unwrap();
                *lease = body;
                lease["metadata"]["resourceVersion"] = json!((version + 1).to_string());
                json_response(200, lease)
            }
            Some(_) => json_response(409, &json!({"kind": "Status", "code": 409, "reason": "Conflict"})),
            None => not_found(),
        },
        ("POST", "/apis/coordination.k8s.io/v1/namespaces/sei-operator/leases") => {
            if store.lease.is_some() {
                return json_response(409, &json!({"kind": "Status", "code": 409, "reason": "AlreadyExists"}));
            }
            let mut lease = body;
            lease["metadata"]["namespace"] = json!("sei-operator");
            lease["metadata"]["resourceVersion"] = json!("1");
            store.lease = Some(lease.clone());
            json_response(201, &lease)
        }
        ("GET", "/version") => json_response(
            200,
            &json!({
            "major": "1", "minor": "33", "gitVersion": "v1.33.0", "gitCommit": "fake", "gitTreeState": "clean",
            "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.24", "compiler": "gc", "platform": "linux/amd64"}),
        ),
        ("GET", "/apis/sei.io/v1alpha1/seinodes") => {
            let items: Vec<Value> = store.node.iter().cloned().collect();
            json_response(
                200,
                &json!({"apiVersion": "sei.io/v1alpha1", "kind": "SeiNodeList",
                                       "metadata": {"resourceVersion": "10"}, "items": items}),
            )
        }
        ("GET", NODE_PATH) => match &store.node {
            Some(node) => json_response(200, node),
            None => json_response(404, &json!({"kind": "Status", "code": 404, "reason": "NotFound"})),
        },
        ("PUT", p) if p == format!("{NODE_PATH}/status") => {
            let store = &mut *store;
            let Some(node) = store.node.as_mut() else { return json_response(404, &json!({"code": 404})) };
            let version: u64 = node["metadata"]["resourceVersion"].as_str().unwrap().parse().unwrap();
            if body["metadata"]["resourceVersion"] != node["metadata"]["resourceVersion"] {
                return json_response(409, &json!({"kind": "Status", "code": 409, "reason": "Conflict"}));
            }
            node["status"] = body["status"].clone();
            store.written_phases.push(body["status"]["phase"].as_str().unwrap_or_default().to_owned());
            node["metadata"]["resourceVersion"] = json!((version + 1).to_string());
            json_response(200, node)
        }
        // Creates (Events, the node's Services, volume, StatefulSet) succeed and are not stored: nothing reads them.
        ("POST", _) => json_response(201, &body),
        ("GET", _) => json_response(
            200,
            &json!({"apiVersion": "v1", "kind": "List",
                                                  "metadata": {"resourceVersion": "10"}, "items": []}),
        ),
        _ => json_response(404, &json!({"kind": "Status", "code": 404, "reason": "NotFound"})),
    }
}

async fn fake_api(store: Arc<Mutex<Store>>) -> u16 {
    let addr = support::serve(move |request| {
        answer(&store, &request.method, &request.path, &request.query, request.body.clone())
    })
    .await;
    addr.port()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Kills the child if the test fails before it exits.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn get(client: &reqwest::Client, url: &str) -> Option<(u16, String)> {
    let response = client.get(url).send().await.ok()?;
    let status = response.status().as_u16();
    Some((status, response.text().await.ok()?))
}

/// Like [`eventually`], printing `context()` when it times out.
async fn eventually_or<F: std::future::Future<Output = bool>>(
    what: &str,
    started: Instant,
    context: &dyn Fn() -> String,
    mut check: impl FnMut() -> F,
) {
    while !check().await {
        assert!(started.elapsed() < TEST_BOUND, "timed out waiting for {what}\n{}", context());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls `check` every 100 ms until it holds or the test bound passes.
async fn eventually<F: std::future::Future<Output = bool>>(what: &str, started: Instant, mut check: impl FnMut() -> F) {
    while !check().await {
        assert!(started.elapsed() < TEST_BOUND, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A `sei-operator run` process against the fake API on `api_port`, with its own HOME, kubeconfig and ports.
struct Operator {
    metrics_port: u16,
    probe_port: u16,
    running: Running,
    /// Removed on drop; declared after `running` so the process is killed before its HOME goes.
    home: tempfile::TempDir,
}

impl Operator {
    fn start(name: &str, api_port: u16, extra_env: &[(&str, &str)]) -> Operator {
        let home = tempfile::Builder::new().prefix(&format!("sei-operator-{name}-")).tempdir().unwrap();
        let kubeconfig = home.path().join("kubeconfig");
        std::fs::write(
            &kubeconfig,
            format!(
                "apiVersion: v1\nkind: Config\ncurrent-context: fake\n\
                 clusters:\n- name: fake\n  cluster:\n    server: http://127.0.0.1:{api_port}\n\
                 contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n    namespace: sei\n\
                 users:\n- name: fake\n  user: {{}}\n"
            ),
        )
        .unwrap();
        let (metrics_port, probe_port) = (free_port(), free_port());
        let env: BTreeMap<&str, String> = [
            ("HOME", home.path().display().to_string()),
            ("KUBECONFIG", kubeconfig.display().to_string()),
            ("SEI_OPERATOR_METRICS_ADDR", format!("127.0.0.1:{metrics_port}")),
            ("SEI_OPERATOR_PROBE_ADDR", format!("127.0.0.1:{probe_port}")),
            ("POD_NAME", "operator-0".to_owned()),
            ("POD_NAMESPACE", "sei-operator".to_owned()),
            ("SEI_OPERATOR_LOG_FORMAT", "json".to_owned()),
        ]
        .into();
        let child = Command::new(BINARY)
            .arg("run")
            .env_clear()
            .envs(&env)
            .envs(extra_env.iter().copied())
            .stdout(Stdio::from(std::fs::File::create(home.path().join("operator.log")).unwrap()))
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let running = Running(child);
        Operator { home, metrics_port, probe_port, running }
    }

    /// Sends SIGTERM and waits (within the test bound) for the exit; answers the status, the time it took and stderr.
    async fn terminate(&mut self) -> (std::process::ExitStatus, Duration, String) {
        let signalled = Instant::now();
        let pid = self.running.0.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        let status = loop {
            if let Some(status) = self.running.0.try_wait().unwrap() {
                break status;
            }
            assert!(signalled.elapsed() < TEST_BOUND, "did not stop after SIGTERM");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let mut stderr = String::new();
        if let Some(mut pipe) = self.running.0.stderr.take() {
            std::io::Read::read_to_string(&mut pipe, &mut stderr).unwrap();
        }
        (status, signalled.elapsed(), stderr)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.home.path().join("operator.log")).unwrap_or_default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_reconciles_from_watches_serves_endpoints_and_stops_on_sigterm() {
    let started = Instant::now();
    let store = Arc::new(Mutex::new(Store { node: Some(seinode()), ..Store::default() }));
    let api_port = fake_api(store.clone()).await;

    let operator = Operator::start("e2e", api_port, &[]);
    let (home, metrics_port, probe_port) = (operator.home, operator.metrics_port, operator.probe_port);
    // Declared after `home`, so dropped (the process killed) before the directory is removed.
    let mut running = operator.running;
    let http = reqwest::Client::builder().timeout(Duration::from_secs(2)).no_proxy().build().unwrap();

    let probes = format!("http://127.0.0.1:{probe_port}");
    eventually("/readyz", started, || async {
        get(&http, &format!("{probes}/readyz")).await.is_some_and(|(status, _)| status == 200)
    })
    .await;
    assert_eq!(get(&http, &format!("{probes}/healthz")).await.map(|(s, _)| s), Some(200));

    let holder = || store.lock().unwrap().lease.as_ref().map(|l| l["spec"]["holderIdentity"].clone());
    eventually("the leader Lease", started, || async { holder() == Some(json!("operator-0")) }).await;

    // The node controller saw n1 in its list/watch and ran reconcile_node: Pending → Initializing, written through
    // the status subresource with the resourceVersion it read.
    let log = home.path().join("operator.log");
    let context = || {
        let requests = store.lock().unwrap().requests.clone();
        format!("requests: {requests:#?}\nlog: {}", std::fs::read_to_string(&log).unwrap_or_default())
    };
    eventually_or("the SeiNode status write", started, &context, || async {
        let store = store.lock().unwrap();
        store.written_phases.first().is_some_and(|phase| phase == "Initializing")
    })
    .await;
    let metrics_url = format!("http://127.0.0.1:{metrics_port}/metrics");
    eventually("reconciles in /metrics", started, || async {
        get(&http, &metrics_url).await.is_some_and(|(status, text)| {
            status == 200 && text.contains("sei_operator_reconciles_total{controller=\"seinode\"}")
        })
    })
    .await;
    {
        let store = store.lock().unwrap();
        let watched: Vec<_> = store.requests.iter().filter(|(_, t)| t.contains("watch=true")).map(|(_, t)| t).collect();
        for kind in ["seinodedeployments", "seinodes", "statefulsets", "services", "jobs"] {
            assert!(watched.iter().any(|t| t.contains(&format!("/{kind}?"))), "no watch on {kind}: {watched:?}");
        }
        // Nothing is watched (so nothing reconciled) before the Lease is held.
        let first = |wanted: &dyn Fn(&(String, String)) -> bool| store.requests.iter().position(wanted).unwrap();
        let lease_taken = first(&|(method, target)| method == "POST" && target.contains("/leases?"));
        let first_watch = first(&|(_, target)| target.contains("watch=true"));
        assert!(lease_taken < first_watch, "{:#?}", store.requests);
    }

    let pid = running.0.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = loop {
        if let Some(status) = running.0.try_wait().unwrap() {
            break status;
        }
        assert!(started.elapsed() < TEST_BOUND, "did not stop after SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut stderr = String::new();
    if let Some(mut pipe) = running.0.stderr.take() {
        std::io::Read::read_to_string(&mut pipe, &mut stderr).unwrap();
    }
    assert!(status.success(), "exit {status:?}, stderr: {stderr}");
    assert!(stderr.is_empty(), "{stderr}");
    // Released on the way out, so a standby need not wait for it to expire.
    assert_eq!(holder(), Some(Value::Null));
}

/// Polls `url` until it answers `status`; answers the body.
async fn until_status(
    http: &reqwest::Client,
    url: &str,
    status: u16,
    started: Instant,
    context: &dyn Fn() -> String,
) -> String {
    loop {
        if let Some((got, body)) = get(http, url).await
            && got == status
        {
            return body;
        }
        assert!(started.elapsed() < TEST_BOUND, "timed out waiting for {status} from {url}\n{}", context());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn http_client() -> reqwest::Client {
    reqwest::Client::builder().timeout(Duration::from_secs(2)).no_proxy().build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_its_crds_it_is_never_ready_stops_being_live_and_still_stops_on_sigterm() {
    let started = Instant::now();
    // The sei.io group is not served: every read of a SeiNode or SeiNodeDeployment is 404.
    let store = Arc::new(Mutex::new(Store { refusals: vec![("/apis/sei.io/", "", 404)], ..Store::default() }));
    let api_port = fake_api(store.clone()).await;
    let mut operator = Operator::start("no-crds", api_port, &[("SEI_OPERATOR_WATCH_FAILURE_LIMIT", "2s")]);
    let http = http_client();
    let probes = format!("http://127.0.0.1:{}", operator.probe_port);
    let log = operator.home.path().join("operator.log");
    let context = || std::fs::read_to_string(&log).unwrap_or_default();

    let not_ready = until_status(&http, &format!("{probes}/readyz"), 503, started, &context).await;
    assert_eq!(get(&http, &format!("{probes}/healthz")).await.map(|(s, _)| s), Some(200), "live at first");
    // The reason, for whoever curls the probe; and nothing reconciles: no Lease is taken, nothing is watched.
    let not_live = until_status(&http, &format!("{probes}/healthz"), 503, started, &context).await;
    assert!(not_live.contains("preflight") && not_live.contains("seinodedeployments"), "{not_live}");
    let not_ready = get(&http, &format!("{probes}/readyz")).await.map(|(_, body)| body).unwrap_or(not_ready);
    assert!(not_ready.contains("cannot read the kinds it needs") && not_ready.contains("404"), "{not_ready}");
    {
        let store = store.lock().unwrap();
        assert!(store.lease.is_none(), "took the Lease without its kinds");
        assert!(!store.requests.iter().any(|(_, t)| t.contains("watch=true")), "{:#?}", store.requests);
    }
    assert!(operator.log().contains("CRDs installed?"), "{}", operator.log());

    let (status, took, stderr) = operator.terminate().await;
    assert!(status.success(), "exit {status:?}, stderr: {stderr}");
    assert!(took < Duration::from_secs(5), "took {took:?} to stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_whose_watch_is_forbidden_is_not_ready_then_not_live_and_stops_in_time_releasing_the_lease() {
    let started = Instant::now();
    // Reading one StatefulSet (the preflight) is allowed; the watcher's full list is forbidden, so that watch sits
    // in its back-off, the state in which a graceful shutdown used to wait forever.
    let refusals = vec![("/statefulsets", "limit=500", 403)];
    let store = Arc::new(Mutex::new(Store { node: Some(seinode()), refusals, ..Store::default() }));
    let api_port = fake_api(store.clone()).await;
    let env = [("SEI_OPERATOR_WATCH_FAILURE_LIMIT", "2s"), ("SEI_OPERATOR_SHUTDOWN_TIMEOUT", "1s")];
    let mut operator = Operator::start("forbidden", api_port, &env);
    let http = http_client();
    let probes = format!("http://127.0.0.1:{}", operator.probe_port);
    let log = operator.home.path().join("operator.log");
    let context =
        || format!("requests: {:#?}\nlog: {}", store.lock().unwrap().requests, std::fs::read_to_string(&log).unwrap());

    let holder = || store.lock().unwrap().lease.as_ref().map(|l| l["spec"]["holderIdentity"].clone());
    eventually_or("the leader Lease", started, &context, || async { holder() == Some(json!("operator-0")) }).await;
    let not_live = until_status(&http, &format!("{probes}/healthz"), 503, started, &context).await;
    assert!(not_live.contains("statefulsets") && not_live.contains("403"), "{not_live}");
    // Not ready for the forbidden watch alone once the others have listed (on a loaded machine one of them may
    // still be listing when liveness fails: that is waited out, not judged).
    eventually_or("not ready for statefulsets alone", started, &context, || async {
        let (status, body) = get(&http, &format!("{probes}/readyz")).await.expect("answers");
        assert_eq!(status, 503, "{body}");
        body.contains("initial list not done for: statefulsets")
    })
    .await;
    // The other watches listed: the node controller reconciled its node meanwhile.
    assert!(store.lock().unwrap().written_phases.first().is_some_and(|p| p == "Initializing"), "{}", context());

    let (status, took, stderr) = operator.terminate().await;
    assert!(status.success(), "exit {status:?}, stderr: {stderr}");
    // The shutdown timeout (1 s) and the Lease release, well within a pod's 30 s grace period.
    assert!(took < Duration::from_secs(6), "took {took:?} to stop\n{}", context());
    assert_eq!(holder(), Some(Value::Null), "the Lease was not released");
}
