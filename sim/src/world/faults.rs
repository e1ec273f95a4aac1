//! Faults as operations on the [`World`]: pods, sidecars, workers and the operator crash; the network between
//! hosts partitions or slows down; the operator's API calls conflict, fail or read stale state; its watch drops
//! events; sidecar tasks fail on script. Each is recorded in the trace.

use std::time::Duration;

use sei_operator::cluster::ObjectRef;

use super::{OPERATOR_HOST, World};
use crate::faults::ScriptedTaskFailure;
use crate::kube::kubelet;
use crate::state::lock;
use crate::trace::Category;

impl World {
    /// Crashes every container of a pod (they restart: the sidecar forgets everything).
    pub fn crash_pod(&self, namespace: &str, pod: &str) {
        self.record(Category::Fault, format!("crash pod {namespace}/{pod}"));
        kubelet::restart_pod(&mut lock(&self.shared), &ObjectRef::new("Pod", namespace, pod));
    }

    /// Restarts only a pod's sidecar container.
    pub fn restart_sidecar(&self, namespace: &str, pod: &str) {
        self.record(Category::Fault, format!("restart sidecar of {namespace}/{pod}"));
        kubelet::restart_sidecar(&mut lock(&self.shared), &ObjectRef::new("Pod", namespace, pod));
    }

    /// Crashes worker node `index`: every pod on it loses its processes until [`World::restart_worker`].
    pub fn crash_worker(&mut self, index: usize) {
        let name = format!("worker-{index}");
        self.record(Category::Fault, format!("crash {name}"));
        kubelet::worker_down(&mut lock(&self.shared), index);
        self.sim.crash(name);
    }

    /// Boots worker node `index` again; the kubelet restarts its pods' containers.
    pub fn restart_worker(&mut self, index: usize) {
        let name = format!("worker-{index}");
        self.record(Category::Fault, format!("restart {name}"));
        kubelet::worker_up(&mut lock(&self.shared), index);
        self.sim.bounce(name);
    }

    /// Crashes the operator: all its memory is lost; it restarts on the next step. The store survives.
    pub fn crash_operator(&mut self) {
        if !self.operator {
            return;
        }
        self.record(Category::Fault, "crash operator");
        self.sim.crash(OPERATOR_HOST);
        self.operator_down = true;
    }

    /// Crashes the operator right after its `i`-th write (1-based) in one reconcile.
    pub fn crash_operator_after_write(&self, i: u32) {
        self.record(Category::Fault, format!("operator will crash after write {i} of a reconcile"));
        lock(&self.shared).operator.crash_after_write = Some(i);
    }

    /// Partitions two hosts (`operator`, `worker-<i>`, `probe-<n>`).
    pub fn partition(&self, a: &str, b: &str) {
        self.record(Category::Fault, format!("partition {a} | {b}"));
        self.sim.partition(a, b);
    }

    /// Heals a partition.
    pub fn repair(&self, a: &str, b: &str) {
        self.record(Category::Fault, format!("repair {a} | {b}"));
        self.sim.repair(a, b);
    }

    /// Sets the latency of the link between two hosts.
    pub fn set_latency(&self, a: &str, b: &str, latency: Duration) {
        self.record(Category::Fault, format!("latency {a} <-> {b} = {latency:?}"));
        self.sim.set_link_latency(a, b, latency);
    }

    /// The operator's next `n` writes fail with Conflict.
    pub fn inject_conflicts(&self, n: u32) {
        self.record(Category::Fault, format!("next {n} operator writes conflict"));
        lock(&self.shared).api_faults.conflicts += n;
    }

    /// The operator's next `n` API calls fail transiently.
    pub fn inject_transient_errors(&self, n: u32) {
        self.record(Category::Fault, format!("next {n} operator API calls fail transiently"));
        lock(&self.shared).api_faults.transient += n;
    }

    /// Random API faults at these rates, drawn from the world's RNG.
    pub fn set_api_fault_rates(&self, conflict_rate: f64, transient_rate: f64) {
        self.record(
            Category::Fault,
            format!("operator API faults: conflicts {conflict_rate}, transient {transient_rate}"),
        );
        let mut world = lock(&self.shared);
        world.api_faults.conflict_rate = conflict_rate;
        world.api_faults.transient_rate = transient_rate;
    }

    /// The operator reads the store as it was `versions` versions ago (0: fresh reads).
    pub fn set_read_lag(&self, versions: u64) {
        self.record(Category::Fault, format!("operator reads lag {versions} versions"));
        lock(&self.shared).operator.read_lag = versions;
    }

    /// The operator's watch drops its next `n` events.
    pub fn drop_watch_events(&self, n: u32) {
        self.record(Category::Fault, format!("drop the operator's next {n} watch events"));
        lock(&self.shared).operator.drop_watch_events += n;
    }

    /// Sidecar tasks of `task_type` (on `node`'s pods, or any) fail the next `times` times.
    pub fn fail_task(&self, node: Option<&str>, task_type: &str, times: u32, error: &str) {
        self.record(Category::Fault, format!("task {task_type} fails {times}x on {}", node.unwrap_or("any node")));
        lock(&self.shared).task_failures.push(ScriptedTaskFailure {
            node: node.map(str::to_owned),
            task_type: task_type.into(),
            times,
            error: error.into(),
        });
    }
}
