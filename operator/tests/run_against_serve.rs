//! The production binary, `sei-operator run`, against the simulated cluster served over the Kubernetes wire
//! protocol (`sei-sim serve`, started in-process): its kube-rs watches, reflectors, leader election, reqwest
//! sidecar client, probes and metrics meet an API server whose watches deliver events and whose pods run.
//!
//! - an InPlace rollout completes through the real watches, and SIGTERM releases the Lease;
//! - two replicas: the leader is killed mid-rollout and the standby finishes it, then stops on SIGTERM releasing
//!   the Lease;
//! - kubectl (skipped, saying so, where it is not installed): apply, get with the CRDs' printer columns, wait for
//!   a condition, describe with the operator's Events.
//!
//! Every wait polls against a generous bound; nothing sleeps as an assertion.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sei_operator::manifest::{Manifest, ManifestValidator};
use sei_sim::serve::{ServeConfig, ServeHandle};
use serde_json::Value;

const BINARY: &str = env!("CARGO_BIN_EXE_sei-operator");
/// Every wait of a test ends within this.
const BOUND: Duration = Duration::from_secs(300);
const DEPLOYMENTS: &str = "/apis/sei.io/v1alpha1/namespaces/sei/seinodedeployments";
const NODES: &str = "/apis/sei.io/v1alpha1/namespaces/sei/seinodes";
const LEASE: &str = "/apis/coordination.k8s.io/v1/namespaces/default/leases/sei-operator";
const FROM_IMAGE: &str = "sei:v6.3.0";
const TO_IMAGE: &str = "sei:v6.3.1";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures").join(name)
}

/// A served cluster and an HTTP client for it.
struct Playground {
    serve: ServeHandle,
    /// The kubeconfig and operator logs; removed on drop after `serve` has stopped, kept when the test failed.
    dir: tempfile::TempDir,
    http: reqwest::Client,
}

impl Playground {
    fn start(name: &str, speed: f64) -> Self {
        let dir = tempfile::Builder::new().prefix(&format!("sei-serve-{name}-")).tempdir().unwrap();
        let config = ServeConfig { speed, ..ServeConfig::new(dir.path().join("kubeconfig")) };
        let serve = sei_sim::serve::start(config).unwrap();
        let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).no_proxy().build().unwrap();
        Playground { serve, dir, http }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.serve.api_url())
    }

    async fn send_json(&self, request: reqwest::RequestBuilder, body: &impl serde::Serialize) -> reqwest::Response {
        let body = serde_json::to_vec(body).unwrap();
        request.header("content-type", "application/json").body(body).send().await.unwrap()
    }

    /// The object at `path`, `None` when it does not exist.
    async fn get(&self, path: &str) -> Option<Value> {
        let response = self.http.get(self.url(path)).send().await.unwrap();
        match response.status().as_u16() {
            404 => None,
            200 => Some(serde_json::from_str(&response.text().await.unwrap()).unwrap()),
            other => panic!("GET {path}: {other} {}", response.text().await.unwrap_or_default()),
        }
    }

    /// Creates the SeiNodeDeployment of a fixture file, loaded as the operator's own loader reads manifests.
    async fn apply_fixture(&self, name: &str) -> String {
        let text = std::fs::read_to_string(fixture(name)).unwrap();
        let manifests = ManifestValidator::new().unwrap().admit_yaml(&text).unwrap();
        let Some(Manifest::SeiNodeDeployment(deployment)) = manifests.into_iter().next() else {
            panic!("{name} holds no SeiNodeDeployment");
        };
        let deployment_name = deployment.metadata.name.clone().unwrap();
        let response = self.send_json(self.http.post(self.url(DEPLOYMENTS)), &deployment).await;
        let status = response.status().as_u16();
        assert_eq!(status, 201, "{}", response.text().await.unwrap_or_default());
        deployment_name
    }

    /// Reads, changes and writes back the object at `path`, again on a 409 Conflict.
    async fn edit(&self, path: &str, change: impl Fn(&mut Value)) {
        let started = Instant::now();
        loop {
            let mut object = self.get(path).await.unwrap();
            change(&mut object);
            let response = self.send_json(self.http.put(self.url(path)), &object).await;
            match response.status().as_u16() {
                200 => return,
                409 if started.elapsed() < BOUND => continue,
                other => panic!("PUT {path}: {other} {}", response.text().await.unwrap_or_default()),
            }
        }
    }

    /// `sei-operator run` as `identity`, on this cluster: its kubeconfig, its pods through the serve's proxy.
    fn operator(&self, identity: &str) -> Operator {
        let (metrics_port, probe_port) = (free_port(), free_port());
        let log = self.dir.path().join(format!("{identity}.log"));
        let child = Command::new(BINARY)
            .args(["run", "--identity", identity, "--lease-name", "sei-operator", "--lease-namespace", "default"])
            .args(["--sidecar-proxy", &self.serve.sidecar_proxy_url()])
            .args(["--metrics-addr", &format!("127.0.0.1:{metrics_port}")])
            .args(["--probe-addr", &format!("127.0.0.1:{probe_port}")])
            .args(["--log-filter", "info"])
            .env("KUBECONFIG", &self.serve.kubeconfig)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(self.dir.path().join(format!("{identity}.stderr"))).unwrap())
            .spawn()
            .unwrap();
        Operator { child, identity: identity.to_owned(), log, metrics_port, probe_port }
    }

    /// The Lease's holder (`None`: nobody, or no Lease yet).
    async fn holder(&self) -> Option<String> {
        let lease = self.get(LEASE).await?;
        lease.pointer("/spec/holderIdentity").and_then(Value::as_str).map(str::to_owned)
    }

    /// What a timed-out wait prints: the objects, and every operator log.
    async fn context(&self, operators: &[&Operator]) -> String {
        let deployments = self.get(DEPLOYMENTS).await;
        let mut text = format!("deployments: {deployments:#?}\n");
        for operator in operators {
            let log = std::fs::read_to_string(&operator.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            text.push_str(&format!(
                "--- {} log tail ---\n{}\n",
                operator.identity,
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            ));
        }
        text
    }
}

impl Drop for Playground {
    fn drop(&mut self) {
        // A failed test leaves its operators' logs to read.
        if std::thread::panicking() {
            self.dir.disable_cleanup(true);
            eprintln!("operator logs kept in {}", self.dir.path().display());
        }
    }
}

/// A running `sei-operator run`; killed if the test ends before it exits.
struct Operator {
    child: Child,
    identity: String,
    log: PathBuf,
    metrics_port: u16,
    probe_port: u16,
}

impl Operator {
    fn signal(&self, signal: &str) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args([signal, &pid]).status().unwrap().success());
    }

    /// Waits for the process to exit; its status.
    async fn exited(&mut self) -> std::process::ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(started.elapsed() < Duration::from_secs(60), "{} did not exit", self.identity);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `check` every 200 ms until it holds; past [`BOUND`] fails with `context`.
async fn eventually<F: Future<Output = bool>>(
    playground: &Playground,
    operators: &[&Operator],
    what: &str,
    mut check: impl FnMut() -> F,
) -> Duration {
    let started = Instant::now();
    while !check().await {
        if started.elapsed() > BOUND {
            panic!("timed out waiting for {what}\n{}", playground.context(operators).await);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    started.elapsed()
}

/// The condition `type_` of an object's status: (status, reason).
fn condition(object: &Value, type_: &str) -> Option<(String, String)> {
    let conditions = object.pointer("/status/conditions")?.as_array()?;
    let found = conditions.iter().find(|c| c.get("type").and_then(Value::as_str) == Some(type_))?;
    let text = |field: &str| found.get(field).and_then(Value::as_str).unwrap_or_default().to_owned();
    Some((text("status"), text("reason")))
}

fn phase(object: &Value) -> Option<&str> {
    object.pointer("/status/phase").and_then(Value::as_str)
}

/// Whether the deployment is Ready with its rollout condition False for `reason`, and all its nodes run `image`.
async fn settled_on(playground: &Playground, name: &str, reason: &str, image: &str) -> bool {
    let Some(deployment) = playground.get(&format!("{DEPLOYMENTS}/{name}")).await else { return false };
    if phase(&deployment) != Some("Ready")
        || condition(&deployment, "RolloutInProgress") != Some(("False".into(), reason.into()))
    {
        return false;
    }
    let Some(nodes) = playground.get(NODES).await else { return false };
    let nodes = nodes["items"].as_array().cloned().unwrap_or_default();
    !nodes.is_empty()
        && nodes.iter().all(|node| {
            node.pointer("/status/currentImage").and_then(Value::as_str) == Some(image)
                && node.pointer("/spec/image").and_then(Value::as_str) == Some(image)
        })
}

async fn set_image(playground: &Playground, name: &str, image: &str) {
    let image = Value::String(image.to_owned());
    playground
        .edit(&format!("{DEPLOYMENTS}/{name}"), move |deployment| {
            deployment["spec"]["template"]["spec"]["image"] = image.clone();
        })
        .await;
}

async fn http_get(client: &reqwest::Client, url: &str) -> Option<(u16, String)> {
    let response = client.get(url).send().await.ok()?;
    let status = response.status().as_u16();
    Some((status, response.text().await.ok()?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inplace_rollout_completes_through_the_real_watches_and_sigterm_releases_the_lease() {
    let started = Instant::now();
    let playground = Playground::start("inplace", 10.0);
    let mut operator = playground.operator("operator-0");
    let probes = format!("http://127.0.0.1:{}", operator.probe_port);
    eventually(&playground, &[&operator], "/readyz", || async {
        http_get(&playground.http, &format!("{probes}/readyz")).await.is_some_and(|(status, _)| status == 200)
    })
    .await;
    assert_eq!(playground.holder().await.as_deref(), Some("operator-0"));

    let name = playground.apply_fixture("inplace-fullnode.yaml").await;
    let path = format!("{DEPLOYMENTS}/{name}");
    let ready = eventually(&playground, &[&operator], "the deployment Ready", || async {
        settled_on(&playground, &name, "NoRollout", FROM_IMAGE).await
    })
    .await;

    set_image(&playground, &name, TO_IMAGE).await;
    let rolled = eventually(&playground, &[&operator], "the InPlace rollout complete", || async {
        settled_on(&playground, &name, "RolloutComplete", TO_IMAGE).await
    })
    .await;
    let deployment = playground.get(&path).await.unwrap();
    assert_eq!(deployment["spec"]["template"]["spec"]["image"], TO_IMAGE);

    let metrics = format!("http://127.0.0.1:{}/metrics", operator.metrics_port);
    let (status, text) = http_get(&playground.http, &metrics).await.unwrap();
    assert_eq!(status, 200);
    assert!(text.contains("sei_operator_reconciles_total{controller=\"seinode\"}"), "{text}");

    operator.signal("-TERM");
    let status = operator.exited().await;
    assert!(status.success(), "exit {status:?}");
    // Released on the way out: no holder, so a standby need not wait for it to expire.
    assert_eq!(playground.holder().await, None);
    assert!(playground.get(LEASE).await.is_some(), "the Lease is kept, released");
    eprintln!(
        "InPlace against sei-sim serve (speed 10): Ready after {ready:?}, rolled after {rolled:?}, whole test {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standby_finishes_the_rollout_of_a_leader_killed_mid_rollout_and_sigterm_releases_the_lease() {
    let playground = Playground::start("failover", 4.0);
    let mut first = playground.operator("operator-a");
    let mut second = playground.operator("operator-b");
    let both = [&first, &second];
    eventually(&playground, &both, "a leader", || async { playground.holder().await.is_some() }).await;
    let name = playground.apply_fixture("inplace-fullnode.yaml").await;
    let path = format!("{DEPLOYMENTS}/{name}");
    eventually(&playground, &both, "the deployment Ready", || async {
        settled_on(&playground, &name, "NoRollout", FROM_IMAGE).await
    })
    .await;

    set_image(&playground, &name, TO_IMAGE).await;
    eventually(&playground, &both, "the rollout started", || async {
        let deployment = playground.get(&path).await.unwrap();
        condition(&deployment, "RolloutInProgress").is_some_and(|(status, _)| status == "True")
    })
    .await;
    let leader = playground.holder().await.unwrap();
    let (killed, standby) =
        if leader == first.identity { (&mut first, &mut second) } else { (&mut second, &mut first) };
    killed.signal("-KILL");
    killed.exited().await;
    // Killed mid-rollout: the rollout had not completed when the leader died.
    let deployment = playground.get(&path).await.unwrap();
    assert_eq!(
        condition(&deployment, "RolloutInProgress").map(|(status, _)| status),
        Some("True".to_owned()),
        "the rollout completed before the leader was killed: the test proves nothing"
    );

    let standby_identity = standby.identity.clone();
    let operators = [&*standby];
    eventually(&playground, &operators, "the standby leading", || async {
        playground.holder().await.as_deref() == Some(standby_identity.as_str())
    })
    .await;
    eventually(&playground, &operators, "the standby finishing the rollout", || async {
        settled_on(&playground, &name, "RolloutComplete", TO_IMAGE).await
    })
    .await;

    standby.signal("-TERM");
    let status = standby.exited().await;
    assert!(status.success(), "exit {status:?}");
    assert_eq!(playground.holder().await, None);
}

/// kubectl, if installed: `None` (the test then passes, saying why) when it is not.
fn kubectl() -> Option<PathBuf> {
    let path = std::env::var_os("KUBECTL").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("kubectl"));
    match Command::new(&path).args(["version", "--client"]).output() {
        Ok(output) if output.status.success() => Some(path),
        _ => None,
    }
}

/// Runs kubectl against the playground; its stdout, or a failure with both outputs.
fn run_kubectl(kubectl: &Path, playground: &Playground, args: &[&str]) -> String {
    let output = Command::new(kubectl).args(args).env("KUBECONFIG", &playground.serve.kubeconfig).output().unwrap();
    let (stdout, stderr) =
        (String::from_utf8_lossy(&output.stdout).into_owned(), String::from_utf8_lossy(&output.stderr).into_owned());
    assert!(output.status.success(), "kubectl {args:?} failed:\nstdout: {stdout}\nstderr: {stderr}");
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_applies_gets_waits_for_and_describes_against_the_served_cluster() {
    let Some(kubectl) = kubectl() else {
        eprintln!("SKIPPED: kubectl is not installed (set KUBECTL to its path); nothing was checked");
        return;
    };
    let playground = Playground::start("kubectl", 10.0);
    let operator = playground.operator("operator-0");
    let applied =
        run_kubectl(&kubectl, &playground, &["apply", "-f", fixture("inplace-fullnode.yaml").to_str().unwrap()]);
    assert!(applied.contains("seinodedeployment.sei.io/rpc created"), "{applied}");
    // Unchanged on a second apply: the client-side apply's patch path.
    let again =
        run_kubectl(&kubectl, &playground, &["apply", "-f", fixture("inplace-fullnode.yaml").to_str().unwrap()]);
    assert!(again.contains("unchanged") || again.contains("configured"), "{again}");

    let kubectl_wait = {
        let kubectl = kubectl.clone();
        let kubeconfig = playground.serve.kubeconfig.clone();
        tokio::task::spawn_blocking(move || {
            Command::new(kubectl)
                .args(["wait", "--for=condition=Ready", "snd/rpc", "-n", "sei", "--timeout=240s"])
                .env("KUBECONFIG", kubeconfig)
                .output()
                .unwrap()
        })
    };
    let waited = kubectl_wait.await.unwrap();
    assert!(
        waited.status.success(),
        "kubectl wait: {}\n{}\n{}",
        String::from_utf8_lossy(&waited.stdout),
        String::from_utf8_lossy(&waited.stderr),
        playground.context(&[&operator]).await
    );
    assert!(String::from_utf8_lossy(&waited.stdout).contains("condition met"));

    let got = run_kubectl(&kubectl, &playground, &["get", "snd,snode", "-n", "sei"]);
    for expected in ["NAME", "READY", "PHASE", "seinodedeployment.sei.io/rpc", "seinode.sei.io/rpc-0", "Ready"] {
        assert!(got.contains(expected), "{expected:?} not in:\n{got}");
    }
    // A rollout by merge patch, for the Events describe lists.
    let patch = format!(r#"{{"spec":{{"template":{{"spec":{{"image":"{TO_IMAGE}"}}}}}}}}"#);
    let patched =
        run_kubectl(&kubectl, &playground, &["patch", "snd", "rpc", "-n", "sei", "--type", "merge", "-p", &patch]);
    assert!(patched.contains("patched"), "{patched}");
    eventually(&playground, &[&operator], "the rollout complete", || async {
        settled_on(&playground, "rpc", "RolloutComplete", TO_IMAGE).await
    })
    .await;
    let described = run_kubectl(&kubectl, &playground, &["describe", "snd", "rpc", "-n", "sei"]);
    for expected in
        ["Name:         rpc", "Kind:         SeiNodeDeployment", "Events:", "RolloutStarted", "RolloutComplete"]
    {
        assert!(described.contains(expected), "{expected:?} not in:\n{described}");
    }
    // The other sample manifests: the served API admits them as the CRDs do.
    for sample in ["standalone-seinode.yaml", "validator-seinode.yaml", "bluegreen.yaml", "hardfork.yaml"] {
        let out = run_kubectl(&kubectl, &playground, &["apply", "-f", fixture(sample).to_str().unwrap()]);
        assert!(out.contains("created"), "{sample}: {out}");
    }
}
