//! `/metrics` after a simulated rollout: the operator's per-object gauges, read from the objects a real rollout
//! (the operator's reconcilers in the simulated cluster) left, and its rollout counters fed with the Events that
//! rollout emitted — scraped mid-rollout and at the end, with the values those objects say. And every metric the
//! alert rules in `deploy/monitoring/` read is in the scrape, so an alert can never watch a name the operator
//! does not emit.

use std::sync::Arc;

use http_body_util::BodyExt;
use hyper::Method;
use sei_operator::api::{SeiNode, SeiNodeDeployment};
use sei_operator::backend::Metrics;
use sei_operator::backend::serve::{Endpoints, respond};
use sei_operator::cluster::{Event, LabelSelector};
use sei_sim::World;
use sei_sim::scenario::{Observer, load, run_observed};

/// What the operator's caches and event recorder would hold at one moment of the run.
#[derive(Clone, Default)]
struct Snapshot {
    deployments: Vec<Arc<SeiNodeDeployment>>,
    nodes: Vec<Arc<SeiNode>>,
    events: Vec<Event>,
}

fn snapshot(world: &World) -> Snapshot {
    let all = LabelSelector::new();
    let deployments = world.list::<SeiNodeDeployment>("sei", &all).unwrap_or_default();
    let nodes = world.list::<SeiNode>("sei", &all).unwrap_or_default();
    let events = world.inspect(|state| state.ledger.events.iter().map(|(_, event)| event.clone()).collect());
    Snapshot {
        deployments: deployments.into_iter().map(Arc::new).collect(),
        nodes: nodes.into_iter().map(Arc::new).collect(),
        events,
    }
}

/// Keeps the first moment a rollout is in progress, and the last moment of the run.
#[derive(Default)]
struct Moments {
    mid_rollout: Option<Snapshot>,
    last: Option<Snapshot>,
}

impl Observer for Moments {
    fn after_tick(&mut self, world: &World) {
        let now = snapshot(world);
        let rolling = now.deployments.iter().any(|d| d.status.as_ref().is_some_and(|s| s.rollout.is_some()));
        if rolling && self.mid_rollout.is_none() {
            self.mid_rollout = Some(now.clone());
        }
        self.last = Some(now);
    }
}

/// A scrape of a fresh operator process whose caches hold `snapshot` and whose recorder emitted its events.
fn scrape(snapshot: &Snapshot) -> String {
    let metrics = Arc::new(Metrics::new());
    metrics.set_leader(true);
    for event in &snapshot.events {
        metrics.record_event(event);
    }
    let (deployments, nodes) = (snapshot.deployments.clone(), snapshot.nodes.clone());
    metrics.set_object_source(Some(Box::new(move || (deployments.clone(), nodes.clone()))));
    let response = respond(&Endpoints::Metrics(metrics), &Method::GET, "/metrics");
    assert_eq!(response.status(), 200);
    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("a runtime");
    let body = runtime.block_on(response.into_body().collect()).expect("a body").to_bytes();
    String::from_utf8(body.to_vec()).expect("utf-8")
}

fn assert_lines(text: &str, lines: &[String]) {
    for line in lines {
        assert!(text.lines().any(|l| l == line), "missing `{line}` in\n{text}");
    }
}

#[test]
fn a_scrape_after_a_simulated_rollout_reports_each_object_as_its_status_says() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let scenario = load(&root.join("scenarios/inplace-happy-path.yaml")).expect("scenario");
    let mut moments = Moments::default();
    let outcome = run_observed(&scenario, None, &root, &mut moments);
    assert!(outcome.passed(), "{:?}", outcome.failure);
    let (mid, last) = (moments.mid_rollout.expect("a rollout ran"), moments.last.expect("ticks ran"));
    let rpc = |labels: &str| format!("{{namespace=\"sei\",name=\"rpc\"{labels}}}");

    let text = scrape(&mid);
    let started = mid.deployments[0].status.as_ref().and_then(|s| s.rollout.as_ref()).expect("rollout").started_at.0;
    assert_lines(
        &text,
        &[
            format!("sei_operator_deployment_phase{} 1", rpc(",phase=\"Upgrading\"")),
            format!("sei_operator_deployment_phase{} 0", rpc(",phase=\"Ready\"")),
            format!("sei_operator_deployment_rollout_in_progress{} 1", rpc("")),
            format!("sei_operator_deployment_rollout_stalled{} 0", rpc("")),
            format!("sei_operator_deployment_rollout_started_timestamp_seconds{} {}", rpc(""), started.as_second()),
            "sei_operator_rollouts_total{namespace=\"sei\",deployment=\"rpc\",transition=\"started\"} 1".to_owned(),
            "sei_operator_leader 1".to_owned(),
        ],
    );

    let text = scrape(&last);
    let mut expected = vec![
        format!("sei_operator_deployment_phase{} 1", rpc(",phase=\"Ready\"")),
        format!("sei_operator_deployment_phase{} 0", rpc(",phase=\"Upgrading\"")),
        format!("sei_operator_deployment_replicas{} 3", rpc("")),
        format!("sei_operator_deployment_ready_replicas{} 3", rpc("")),
        format!("sei_operator_deployment_rollout_in_progress{} 0", rpc("")),
        "sei_operator_rollouts_total{namespace=\"sei\",deployment=\"rpc\",transition=\"started\"} 1".to_owned(),
        "sei_operator_rollouts_total{namespace=\"sei\",deployment=\"rpc\",transition=\"completed\"} 1".to_owned(),
    ];
    for node in ["rpc-0", "rpc-1", "rpc-2"] {
        let labels = format!("namespace=\"sei\",name=\"{node}\"");
        expected.push(format!("sei_operator_node_phase{{{labels},phase=\"Running\"}} 1"));
        expected.push(format!("sei_operator_node_phase{{{labels},phase=\"Initializing\"}} 0"));
        expected.push(format!("sei_operator_node_sidecar_ready{{{labels}}} 1"));
    }
    assert_lines(&text, &expected);
    assert!(!text.contains("rollout_started_timestamp_seconds{"), "no rollout runs any more:\n{text}");

    // Every metric the alert rules read is emitted (deploy/monitoring/metrics-used.txt, kept exact by
    // operator/tests/alerts.rs).
    let used = std::fs::read_to_string(root.join("deploy/monitoring/metrics-used.txt")).expect("metrics-used.txt");
    for name in used.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let emitted = text.lines().any(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")));
        assert!(emitted, "the alert rules read {name}, which the scrape lacks:\n{text}");
    }
}
