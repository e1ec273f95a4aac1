//! Plan task durations for `/metrics`, measured from what the kube backend reads and writes — so the controllers
//! need no metrics code.
//!
//! A task is timed when the backend has seen it Pending (in an object it read or wrote) and then writes it
//! Complete or Failed: the duration is from the task's `submittedAt` to that write. Tasks that finished before this
//! process saw them Pending (say, before a restart) are not timed, rather than timed from a stale start.

use std::any::Any;
use std::collections::HashSet;
use std::sync::Mutex;

use crate::api::{Plan, SeiNode, SeiNodeDeployment, TaskStatus};
use crate::clock::Timestamp;

use super::metrics::Metrics;

/// Bounds the memory of task ids seen Pending: ids of plans that were superseded and never finished would
/// otherwise accumulate for the life of the process. Forgetting them only skips some measurements.
const MAX_TRACKED_TASKS: usize = 50_000;

/// Task ids seen Pending since this process started.
#[derive(Default)]
pub struct PlanTaskTimer {
    pending: Mutex<HashSet<String>>,
}

/// The kind and plan of an object that carries one.
fn plan_of<K: Any>(object: &K) -> Option<(&'static str, &Plan)> {
    let object: &dyn Any = object;
    if let Some(node) = object.downcast_ref::<SeiNode>() {
        return Some(("SeiNode", node.status.as_ref()?.plan.as_ref()?));
    }
    if let Some(deployment) = object.downcast_ref::<SeiNodeDeployment>() {
        return Some(("SeiNodeDeployment", deployment.status.as_ref()?.plan.as_ref()?));
    }
    None
}

impl PlanTaskTimer {
    /// Remembers the Pending tasks of an object read from the API server.
    pub fn observe_read<K: Any>(&self, object: &K) {
        let Some((_, plan)) = plan_of(object) else { return };
        let Ok(mut pending) = self.pending.lock() else { return };
        if pending.len() > MAX_TRACKED_TASKS {
            pending.clear();
        }
        for task in plan.tasks.iter().filter(|t| t.status == TaskStatus::Pending) {
            pending.insert(task.id.clone());
        }
    }

    /// Times the tasks this stored write finished, and remembers the ones still Pending.
    pub fn observe_write<K: Any>(&self, object: &K, now: Timestamp, metrics: &Metrics) {
        let Some((kind, plan)) = plan_of(object) else { return };
        {
            let Ok(mut pending) = self.pending.lock() else { return };
            for task in &plan.tasks {
                let outcome = match task.status {
                    TaskStatus::Pending => continue,
                    TaskStatus::Complete => "Complete",
                    TaskStatus::Failed => "Failed",
                };
                if !pending.remove(&task.id) {
                    continue;
                }
                let seconds = task.submitted_at.as_ref().map(|at| now.duration_since(at.0).as_secs_f64().max(0.0));
                if let Some(seconds) = seconds {
                    metrics.record_plan_task(kind, &task.type_, outcome, seconds);
                }
                // One line per task outcome, inside the reconcile's span (object, plan).
                let seconds = seconds.map_or_else(|| "-".to_owned(), |s| format!("{s:.1}"));
                match task.status {
                    TaskStatus::Failed => {
                        tracing::warn!(plan = %plan.id, task = %task.type_, outcome, seconds, error = task.error.as_deref().unwrap_or(""), "plan task finished")
                    }
                    _ => tracing::info!(plan = %plan.id, task = %task.type_, outcome, seconds, "plan task finished"),
                }
            }
        }
        self.observe_read(object);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node_with_task(status: &str) -> SeiNode {
        serde_json::from_value(json!({
            "apiVersion": "sei.io/v1alpha1", "kind": "SeiNode",
            "metadata": {"name": "n1", "namespace": "sei"},
            "spec": {"chainId": "pacific-1", "image": "sei:v6.3.0", "fullNode": {}},
            "status": {"plan": {"id": "p1", "phase": "Active", "tasks": [
                {"type": "mark-ready", "id": "t1", "status": status, "submittedAt": "2026-01-01T00:00:00Z"}
            ]}}
        }))
        .expect("a SeiNode with a plan")
    }

    /// The tests that reach the "plan task finished" callsites. tracing caches each callsite's interest when it is
    /// first hit; a test without a subscriber hitting it while the capturing test installs its own can cache
    /// "never" for both, so those tests take turns.
    static CALLSITE_TURNS: Mutex<()> = Mutex::new(());

    fn take_turn() -> std::sync::MutexGuard<'static, ()> {
        CALLSITE_TURNS.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    const COUNT: &str = "sei_operator_plan_task_duration_seconds_count{owner_kind=\"SeiNode\",task_type=\"mark-ready\",outcome=\"Complete\"} 1";
    const SUM: &str = "sei_operator_plan_task_duration_seconds_sum{owner_kind=\"SeiNode\",task_type=\"mark-ready\",outcome=\"Complete\"} 90.0";

    #[test]
    fn a_task_seen_pending_is_timed_once_when_written_complete() {
        let _turn = take_turn();
        let (timer, metrics) = (PlanTaskTimer::default(), Metrics::new());
        let now: Timestamp = "2026-01-01T00:01:30Z".parse().expect("timestamp");
        timer.observe_read(&node_with_task("Pending"));
        timer.observe_write(&node_with_task("Complete"), now, &metrics);
        timer.observe_write(&node_with_task("Complete"), now, &metrics);
        let text = metrics.encode().expect("encodes");
        assert!(text.contains(COUNT) && text.contains(SUM), "{text}");
    }

    #[test]
    fn a_task_never_seen_pending_is_not_timed() {
        // As after a restart: the stored plan finished long ago; timing it from submittedAt would be a lie.
        let _turn = take_turn();
        let (timer, metrics) = (PlanTaskTimer::default(), Metrics::new());
        let now: Timestamp = "2026-03-01T00:00:00Z".parse().expect("timestamp");
        timer.observe_write(&node_with_task("Complete"), now, &metrics);
        assert!(!metrics.encode().expect("encodes").contains("plan_task_duration_seconds_count{"));
    }

    /// A log sink for one test: what the JSON formatter writes, kept in memory.
    #[derive(Clone, Default)]
    struct Captured(std::sync::Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("not poisoned").extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    #[test]
    fn a_finished_task_is_one_log_line_in_its_reconcile_span() {
        let _turn = take_turn();
        let captured = Captured::default();
        let subscriber = tracing_subscriber::fmt().json().with_writer(captured.clone()).finish();
        let (timer, metrics) = (PlanTaskTimer::default(), Metrics::new());
        let now: Timestamp = "2026-01-01T00:01:30Z".parse().expect("timestamp");
        tracing::subscriber::with_default(subscriber, || {
            // Interest another test cached while no subscriber was set (say, in kube_cluster's tests) is dropped.
            tracing::callsite::rebuild_interest_cache();
            let span = tracing::info_span!("reconcile", controller = "seinode", object = "sei/n1", plan = "p1");
            let _entered = span.enter();
            timer.observe_read(&node_with_task("Pending"));
            timer.observe_write(&node_with_task("Complete"), now, &metrics);
        });
        let text = String::from_utf8(captured.0.lock().expect("not poisoned").clone()).expect("utf-8");
        let lines: Vec<serde_json::Value> =
            text.lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect();
        assert_eq!(lines.len(), 1, "{text}");
        let line = &lines[0];
        assert_eq!(line["fields"]["message"], "plan task finished", "{text}");
        assert_eq!(line["fields"]["task"], "mark-ready");
        assert_eq!(line["fields"]["outcome"], "Complete");
        assert_eq!(line["fields"]["seconds"], "90.0");
        assert_eq!(line["span"]["object"], "sei/n1");
        assert_eq!(line["span"]["plan"], "p1");
    }
}
