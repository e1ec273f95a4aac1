//! The operator's Prometheus metrics: reconciles, errors and durations per controller; rollout transitions; plan
//! task durations. One [`Metrics`] is shared by the controllers, the kube backend and the `/metrics` endpoint.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::rollout::vocabulary::{
    EVENT_ROLLOUT_COMPLETE, EVENT_ROLLOUT_FAILED, EVENT_ROLLOUT_STALLED, EVENT_ROLLOUT_STARTED,
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
    transition: String,
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

/// All metric families, registered once.
pub struct Metrics {
    registry: Registry,
    reconciles: Family<ControllerLabels, Counter>,
    reconcile_errors: Family<ErrorLabels, Counter>,
    reconcile_duration: HistogramFamily<ControllerLabels>,
    rollouts: Family<RolloutLabels, Counter>,
    plan_task_duration: HistogramFamily<TaskLabels>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("sei_operator");
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
            "Rollout transitions (started, completed, failed, stalled), counted from the Events emitted",
            rollouts.clone(),
        );
        registry.register(
            "plan_task_duration_seconds",
            "Time from a plan task's first execution to its completion or failure",
            plan_task_duration.clone(),
        );
        Metrics { registry, reconciles, reconcile_errors, reconcile_duration, rollouts, plan_task_duration }
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

    /// Counts a rollout transition when `reason` is one of the rollout Event reasons; other reasons are ignored.
    pub fn record_event_reason(&self, reason: &str) {
        let transition = match reason {
            EVENT_ROLLOUT_STARTED => "started",
            EVENT_ROLLOUT_COMPLETE => "completed",
            EVENT_ROLLOUT_FAILED => "failed",
            EVENT_ROLLOUT_STALLED => "stalled",
            _ => return,
        };
        self.rollouts.get_or_create(&RolloutLabels { transition: transition.to_owned() }).inc();
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

    /// How many rollout transitions of kind `transition` were counted (for tests and diagnostics).
    pub fn rollout_count(&self, transition: &str) -> u64 {
        self.rollouts.get_or_create(&RolloutLabels { transition: transition.to_owned() }).get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rollout_events_are_counted_per_transition() {
        let metrics = Metrics::new();
        metrics.record_event_reason(EVENT_ROLLOUT_STARTED);
        metrics.record_event_reason(EVENT_ROLLOUT_STARTED);
        metrics.record_event_reason(EVENT_ROLLOUT_STALLED);
        metrics.record_event_reason("SomethingElse");
        assert_eq!(metrics.rollout_count("started"), 2);
        assert_eq!(metrics.rollout_count("stalled"), 1);
        assert_eq!(metrics.rollout_count("failed"), 0);
    }

    #[test]
    fn the_exposition_names_every_family() {
        let metrics = Metrics::new();
        metrics.record_reconcile("seinode", Duration::from_millis(20), Some("conflict"));
        metrics.record_event_reason(EVENT_ROLLOUT_COMPLETE);
        metrics.record_plan_task("SeiNode", "mark-ready", "Complete", 3.0);
        let text = metrics.encode().expect("encodes");
        for name in [
            "sei_operator_reconciles_total{controller=\"seinode\"} 1",
            "sei_operator_reconcile_errors_total{controller=\"seinode\",error=\"conflict\"} 1",
            "sei_operator_reconcile_duration_seconds_count{controller=\"seinode\"} 1",
            "sei_operator_rollouts_total{transition=\"completed\"} 1",
            "sei_operator_plan_task_duration_seconds_count{owner_kind=\"SeiNode\",task_type=\"mark-ready\",outcome=\"Complete\"} 1",
        ] {
            assert!(text.contains(name), "missing {name} in\n{text}");
        }
    }
}
