//! The operator's Prometheus metrics: build info and leadership; reconciles, errors, durations and queue depth
//! per controller; rollout transitions per deployment; plan task durations; and, on every scrape, one gauge set per
//! SeiNodeDeployment and SeiNode read from the controllers' caches ([`ObjectSource`]), so "which deployments are
//! Degraded right now?" is a query. One [`Metrics`] is shared by the controllers, the kube backend and `/metrics`.
//!
//! The metric names are a contract: `deploy/monitoring/` alerts on them, and a test checks each name the alert
//! rules use against what a scrape after a simulated rollout really holds.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

use crate::api::{DeploymentPhase, SeiNode, SeiNodeDeployment, SeiNodePhase};
use crate::cluster::Event;
use crate::controller::SIDECAR_READY;
use crate::objects::meta::{find_condition, is_condition_true};
use crate::rollout::vocabulary::{
    EVENT_ROLLOUT_COMPLETE, EVENT_ROLLOUT_FAILED, EVENT_ROLLOUT_STALLED, EVENT_ROLLOUT_STARTED, REASON_STALLED,
    ROLLOUT_IN_PROGRESS,
};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ControllerLabels {
    controller: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    controller: String,
    error: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RolloutLabels {
    namespace: String,
    deployment: String,
    transition: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ObjectLabels {
    namespace: String,
    name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabels {
    namespace: String,
    name: String,
    phase: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TaskLabels {
    owner_kind: String,
    task_type: String,
    outcome: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// Reconciles take milliseconds to tens of seconds: 5 ms doubling to ~41 s.
fn reconcile_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.005, 2.0, 14))
}

/// Plan tasks take seconds (a spec write) to hours (a snapshot restore, a bootstrap sync): 1 s doubling to ~9 h.
fn task_histogram() -> Histogram {
    Histogram::new(exponential_buckets(1.0, 2.0, 16))
}

/// The objects the per-object gauges describe, read at each scrape: the controllers' reflector caches while
/// this replica leads, nothing while it stands by (only the leader reports objects, so a query never counts
/// one object twice).
pub type ObjectSource = Box<dyn Fn() -> (Vec<Arc<SeiNodeDeployment>>, Vec<Arc<SeiNode>>) + Send + Sync>;

/// All metric families, registered once.
pub struct Metrics {
    registry: Registry,
    leader: Gauge,
    reconciles: Family<ControllerLabels, Counter>,
    reconcile_errors: Family<ErrorLabels, Counter>,
    reconcile_duration: HistogramFamily<ControllerLabels>,
    queue_depth: Family<ControllerLabels, Gauge>,
    rollouts: Family<RolloutLabels, Counter>,
    plan_task_duration: HistogramFamily<TaskLabels>,
    objects: Arc<ObjectGauges>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("sei_operator");
        let build = Info::new(vec![("version".to_owned(), env!("CARGO_PKG_VERSION").to_owned())]);
        registry.register("build", "The operator's version", build);
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 while this replica holds the leader Lease and runs the controllers, else 0",
            leader.clone(),
        );
        let queue_depth = Family::<ControllerLabels, Gauge>::default();
        registry.register(
            "reconcile_queue_depth",
            "Objects a watch event has woken that the controller has not started reconciling since",
            queue_depth.clone(),
        );
        let objects = Arc::new(ObjectGauges::default());
        registry.register_collector(Box::new(objects.clone()));
        let reconciles = Family::<ControllerLabels, Counter>::default();
        let reconcile_errors = Family::<ErrorLabels, Counter>::default();
        let reconcile_duration: HistogramFamily<ControllerLabels> = Family::new_with_constructor(reconcile_histogram);
        let rollouts = Family::<RolloutLabels, Counter>::default();
        let plan_task_duration: HistogramFamily<TaskLabels> = Family::new_with_constructor(task_histogram);
        registry.register("reconciles", "Reconciles run, per controller", reconciles.clone());
        registry.register(
            "reconcile_errors",
            "Reconciles that ended in an error, per controller and error kind",
            reconcile_errors.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Wall time of one reconcile, per controller",
            reconcile_duration.clone(),
        );
        registry.register(
            "rollouts",
            "Rollout transitions (started, completed, failed, stalled) per deployment, counted from the Events emitted",
            rollouts.clone(),
        );
        registry.register(
            "plan_task_duration_seconds",
            "Time from a plan task's first execution to its completion or failure",
            plan_task_duration.clone(),
        );
        Metrics {
            registry,
            leader,
            reconciles,
            reconcile_errors,
            reconcile_duration,
            queue_depth,
            rollouts,
            plan_task_duration,
            objects,
        }
    }

    /// Whether this replica leads (runs the controllers).
    pub fn set_leader(&self, leading: bool) {
        self.leader.set(i64::from(leading));
    }

    /// The reconcile queue of `controller` holds `depth` objects.
    pub fn set_queue_depth(&self, controller: &str, depth: usize) {
        let depth = i64::try_from(depth).unwrap_or(i64::MAX);
        self.queue_depth.get_or_create(&ControllerLabels { controller: controller.to_owned() }).set(depth);
    }

    /// Where the per-object gauges come from from now on; `None` stops reporting objects (standing by).
    pub fn set_object_source(&self, source: Option<ObjectSource>) {
        *self.objects.source.lock().unwrap_or_else(|p| p.into_inner()) = source;
    }

    /// One reconcile of `controller` that took `elapsed`; `error` is the error's metric label when it failed.
    pub fn record_reconcile(&self, controller: &str, elapsed: Duration, error: Option<&str>) {
        let labels = ControllerLabels { controller: controller.to_owned() };
        self.reconciles.get_or_create(&labels).inc();
        self.reconcile_duration.get_or_create(&labels).observe(elapsed.as_secs_f64());
        if let Some(error) = error {
            let labels = ErrorLabels { controller: controller.to_owned(), error: error.to_owned() };
            self.reconcile_errors.get_or_create(&labels).inc();
        }
    }

    /// Counts a rollout transition of the deployment `event` is about when its reason is one of the rollout Event
    /// reasons; other events are ignored.
    pub fn record_event(&self, event: &Event) {
        let transition = match event.reason.as_str() {
            EVENT_ROLLOUT_STARTED => "started",
            EVENT_ROLLOUT_COMPLETE => "completed",
            EVENT_ROLLOUT_FAILED => "failed",
            EVENT_ROLLOUT_STALLED => "stalled",
            _ => return,
        };
        let labels = RolloutLabels {
            namespace: event.regarding.namespace.clone(),
            deployment: event.regarding.name.clone(),
            transition: transition.to_owned(),
        };
        self.rollouts.get_or_create(&labels).inc();
    }

    /// A plan task of `owner_kind`'s plan that ended (`outcome` Complete or Failed) `seconds` after it started.
    pub fn record_plan_task(&self, owner_kind: &str, task_type: &str, outcome: &str, seconds: f64) {
        let labels = TaskLabels {
            owner_kind: owner_kind.to_owned(),
            task_type: task_type.to_owned(),
            outcome: outcome.to_owned(),
        };
        self.plan_task_duration.get_or_create(&labels).observe(seconds);
    }

    /// The Prometheus / OpenMetrics text exposition of every family.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        encode(&mut text, &self.registry)?;
        Ok(text)
    }

    /// How many rollout transitions of kind `transition` were counted for `namespace/deployment` (for tests and
    /// diagnostics).
    pub fn rollout_count(&self, namespace: &str, deployment: &str, transition: &str) -> u64 {
        let labels = RolloutLabels {
            namespace: namespace.to_owned(),
            deployment: deployment.to_owned(),
            transition: transition.to_owned(),
        };
        self.rollouts.get_or_create(&labels).get()
    }
}

/// The per-object gauges, computed from [`ObjectSource`] at each scrape: an object deleted is gone from the next
/// scrape with nothing to forget.
#[derive(Default)]
struct ObjectGauges {
    source: Mutex<Option<ObjectSource>>,
}

impl fmt::Debug for ObjectGauges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ObjectGauges")
    }
}

/// One gauge family, filled for one scrape.
struct Sampled<L> {
    name: &'static str,
    help: &'static str,
    family: Family<L, Gauge>,
}

impl<L: Clone + std::hash::Hash + Eq + EncodeLabelSet + fmt::Debug + Send + Sync + 'static> Sampled<L> {
    fn new(name: &'static str, help: &'static str) -> Self {
        Sampled { name, help, family: Family::default() }
    }

    fn set(&self, labels: L, value: i64) {
        self.family.get_or_create(&labels).set(value);
    }

    fn encode(&self, encoder: &mut DescriptorEncoder<'_>) -> fmt::Result {
        let metric = encoder.encode_descriptor(self.name, self.help, None, self.family.metric_type())?;
        self.family.encode(metric)
    }
}

fn object_labels(namespace: Option<&String>, name: Option<&String>) -> ObjectLabels {
    ObjectLabels { namespace: namespace.cloned().unwrap_or_default(), name: name.cloned().unwrap_or_default() }
}

fn phase_labels(object: &ObjectLabels, phase: &str) -> PhaseLabels {
    PhaseLabels { namespace: object.namespace.clone(), name: object.name.clone(), phase: phase.to_owned() }
}

impl Collector for ObjectGauges {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let guard = self.source.lock().unwrap_or_else(|p| p.into_inner());
        let Some(source) = guard.as_ref() else { return Ok(()) };
        let (deployments, nodes) = source();
        drop(guard);

        let phase = Sampled::<PhaseLabels>::new(
            "deployment_phase",
            "1 for the SeiNodeDeployment's current status.phase, 0 for every other phase",
        );
        let replicas = Sampled::<ObjectLabels>::new("deployment_replicas", "Nodes of the active set that exist");
        let ready = Sampled::<ObjectLabels>::new("deployment_ready_replicas", "Nodes of the active set Running");
        let rolling =
            Sampled::<ObjectLabels>::new("deployment_rollout_in_progress", "1 while a rollout is in progress");
        let stalled = Sampled::<ObjectLabels>::new(
            "deployment_rollout_stalled",
            "1 while the rollout in progress is reported Stalled (RolloutInProgress reason Stalled)",
        );
        let started = Sampled::<ObjectLabels>::new(
            "deployment_rollout_started_timestamp_seconds",
            "When the rollout in progress started (Unix seconds); absent when none runs",
        );
        for deployment in &deployments {
            let labels = object_labels(deployment.metadata.namespace.as_ref(), deployment.metadata.name.as_ref());
            let status = deployment.status.clone().unwrap_or_default();
            let current = status.phase.unwrap_or_default();
            for each in DeploymentPhase::ALL {
                phase.set(phase_labels(&labels, each.as_str()), i64::from(each == current));
            }
            replicas.set(labels.clone(), i64::from(status.replicas));
            ready.set(labels.clone(), i64::from(status.ready_replicas));
            rolling.set(labels.clone(), i64::from(status.rollout.is_some()));
            let is_stalled = status.rollout.is_some()
                && find_condition(&status.conditions, ROLLOUT_IN_PROGRESS)
                    .is_some_and(|c| c.status == "True" && c.reason == REASON_STALLED);
            stalled.set(labels.clone(), i64::from(is_stalled));
            if let Some(rollout) = &status.rollout {
                started.set(labels, rollout.started_at.0.as_second());
            }
        }
        let node_phase = Sampled::<PhaseLabels>::new(
            "node_phase",
            "1 for the SeiNode's current status.phase, 0 for every other phase",
        );
        let sidecar = Sampled::<ObjectLabels>::new(
            "node_sidecar_ready",
            "1 while the node's sidecar answers (condition SidecarReady True), else 0",
        );
        for node in &nodes {
            let labels = object_labels(node.metadata.namespace.as_ref(), node.metadata.name.as_ref());
            let status = node.status.clone().unwrap_or_default();
            let current = status.phase.unwrap_or_default();
            for each in SeiNodePhase::ALL {
                node_phase.set(phase_labels(&labels, each.as_str()), i64::from(each == current));
            }
            sidecar.set(labels, i64::from(is_condition_true(&status.conditions, SIDECAR_READY)));
        }
        phase.encode(&mut encoder)?;
        replicas.encode(&mut encoder)?;
        ready.encode(&mut encoder)?;
        rolling.encode(&mut encoder)?;
        stalled.encode(&mut encoder)?;
        started.encode(&mut encoder)?;
        node_phase.encode(&mut encoder)?;
        sidecar.encode(&mut encoder)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::ObjectRef;

    fn rollout_event(name: &str, reason: &str) -> Event {
        Event::normal(ObjectRef::new("SeiNodeDeployment", "sei", name), reason, "")
    }

    #[test]
    fn rollout_events_are_counted_per_deployment_and_transition() {
        let metrics = Metrics::new();
        metrics.record_event(&rollout_event("rpc", EVENT_ROLLOUT_STARTED));
        metrics.record_event(&rollout_event("rpc", EVENT_ROLLOUT_STARTED));
        metrics.record_event(&rollout_event("archive", EVENT_ROLLOUT_STARTED));
        metrics.record_event(&rollout_event("rpc", EVENT_ROLLOUT_STALLED));
        metrics.record_event(&rollout_event("rpc", "SomethingElse"));
        assert_eq!(metrics.rollout_count("sei", "rpc", "started"), 2);
        assert_eq!(metrics.rollout_count("sei", "archive", "started"), 1);
        assert_eq!(metrics.rollout_count("sei", "rpc", "stalled"), 1);
        assert_eq!(metrics.rollout_count("sei", "rpc", "failed"), 0);
    }

    #[test]
    fn the_exposition_names_every_family_before_any_reconcile() {
        let metrics = Metrics::new();
        let text = metrics.encode().expect("encodes");
        let build_info = format!("sei_operator_build_info{{version=\"{}\"}} 1", env!("CARGO_PKG_VERSION"));
        for line in [build_info.as_str(), "sei_operator_leader 0"] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
        metrics.set_leader(true);
        metrics.set_queue_depth("seinode", 3);
        metrics.record_reconcile("seinode", Duration::from_millis(20), Some("conflict"));
        metrics.record_event(&rollout_event("rpc", EVENT_ROLLOUT_COMPLETE));
        metrics.record_plan_task("SeiNode", "mark-ready", "Complete", 3.0);
        let text = metrics.encode().expect("encodes");
        for line in [
            "sei_operator_leader 1",
            "sei_operator_reconcile_queue_depth{controller=\"seinode\"} 3",
            "sei_operator_reconciles_total{controller=\"seinode\"} 1",
            "sei_operator_reconcile_errors_total{controller=\"seinode\",error=\"conflict\"} 1",
            "sei_operator_reconcile_duration_seconds_count{controller=\"seinode\"} 1",
            "sei_operator_rollouts_total{namespace=\"sei\",deployment=\"rpc\",transition=\"completed\"} 1",
            "sei_operator_plan_task_duration_seconds_count{owner_kind=\"SeiNode\",task_type=\"mark-ready\",outcome=\"Complete\"} 1",
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
    }

    #[test]
    fn objects_are_reported_from_the_source_while_one_is_set() {
        let metrics = Metrics::new();
        let mut deployment: SeiNodeDeployment = serde_json::from_value(serde_json::json!({
            "apiVersion": "sei.io/v1alpha1", "kind": "SeiNodeDeployment",
            "metadata": {"name": "rpc", "namespace": "sei"},
            "spec": {"replicas": 2, "template": {"spec": {"chainId": "pacific-1", "image": "sei:v1", "fullNode": {}}}},
        }))
        .expect("a deployment");
        deployment.status = Some(crate::api::SeiNodeDeploymentStatus {
            phase: Some(DeploymentPhase::Degraded),
            replicas: 2,
            ready_replicas: 1,
            ..Default::default()
        });
        let mut node: SeiNode = serde_json::from_value(serde_json::json!({
            "apiVersion": "sei.io/v1alpha1", "kind": "SeiNode",
            "metadata": {"name": "rpc-0", "namespace": "sei"},
            "spec": {"chainId": "pacific-1", "image": "sei:v1", "fullNode": {}},
        }))
        .expect("a node");
        node.status = Some(crate::api::SeiNodeStatus { phase: Some(SeiNodePhase::Failed), ..Default::default() });
        let (deployment, node) = (Arc::new(deployment), Arc::new(node));
        assert!(!metrics.encode().expect("encodes").contains("sei_operator_deployment_phase{"));
        metrics.set_object_source(Some(Box::new(move || (vec![deployment.clone()], vec![node.clone()]))));
        let text = metrics.encode().expect("encodes");
        for line in [
            "sei_operator_deployment_phase{namespace=\"sei\",name=\"rpc\",phase=\"Degraded\"} 1",
            "sei_operator_deployment_phase{namespace=\"sei\",name=\"rpc\",phase=\"Ready\"} 0",
            "sei_operator_deployment_replicas{namespace=\"sei\",name=\"rpc\"} 2",
            "sei_operator_deployment_ready_replicas{namespace=\"sei\",name=\"rpc\"} 1",
            "sei_operator_deployment_rollout_in_progress{namespace=\"sei\",name=\"rpc\"} 0",
            "sei_operator_deployment_rollout_stalled{namespace=\"sei\",name=\"rpc\"} 0",
            "sei_operator_node_phase{namespace=\"sei\",name=\"rpc-0\",phase=\"Failed\"} 1",
            "sei_operator_node_phase{namespace=\"sei\",name=\"rpc-0\",phase=\"Running\"} 0",
            "sei_operator_node_sidecar_ready{namespace=\"sei\",name=\"rpc-0\"} 0",
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
        assert!(!text.contains("rollout_started_timestamp_seconds{"), "no rollout runs:\n{text}");
        metrics.set_object_source(None);
        assert!(!metrics.encode().expect("encodes").contains("sei_operator_node_phase{"));
    }
}
