//! Faults as operations on the [`World`]: pods, sidecars, workers and the operator crash; the network between
//! hosts partitions or slows down; the operator's API calls conflict, fail or read stale state; its watch drops
//! events; sidecar tasks fail on script. Each is recorded in the trace.

use std::time::Duration;

use sei_operator_core::cluster::ObjectRef;

use super::{OPERATOR_HOST, World};
use crate::harness::fault_state::{Fault, ScriptedTaskFailure};
use crate::node::registry::Binary;

/// The latency of a healed link (the default links vary between 1 and 20 ms).
const HEALED_LATENCY: Duration = Duration::from_millis(10);
use crate::harness::state::lock;
use crate::harness::trace::Category;
use crate::kube::kubelet;

impl World {
    /// Remembers a fault that can fail a rollout by design, for the needless-failure invariant.
    fn note_failure_fault(&self, what: String) {
        let mut world = lock(&self.shared);
        let now = world.now;
        world.ledger.failure_faults.push((now, what));
    }

    fn has_worker(&self, index: usize) -> bool {
        let exists = lock(&self.shared).plane.workers.len() > index;
        if !exists {
            self.record(Category::Fault, format_args!("ignored: there is no worker-{index}"));
        }
        exists
    }

    /// Whether `a` and `b` are two distinct hosts of this world (turmoil has links only between those).
    fn is_link(&self, a: &str, b: &str) -> bool {
        let known = |name: &str| {
            (name == OPERATOR_HOST && self.operator)
                || name
                    .strip_prefix("operator-")
                    .and_then(|i| i.parse::<usize>().ok())
                    .is_some_and(|i| i > 0 && i < self.replica_count() && name == format!("operator-{i}"))
                || name
                    .strip_prefix("worker-")
                    .and_then(|i| i.parse::<usize>().ok())
                    .is_some_and(|i| lock(&self.shared).plane.workers.len() > i && name == format!("worker-{i}"))
                || name
                    .strip_prefix("probe-")
                    .and_then(|i| i.parse::<usize>().ok())
                    .is_some_and(|i| (1..=self.probes).contains(&i) && name == format!("probe-{i}"))
        };
        let link = a != b && known(a) && known(b);
        if !link {
            self.record(Category::Fault, format_args!("ignored: no link between {a} and {b}"));
        }
        link
    }

    /// Applies a fault given as data (scenarios and fuzzers build these).
    pub fn inject(&mut self, fault: &Fault) {
        {
            let mut world = lock(&self.shared);
            let until = fault.acts_until(world.now);
            world.ledger.faults_act_until =
                world.ledger.faults_act_until.zip(until).map(|(before, until)| before.max(until));
        }
        match fault {
            Fault::CrashPod { namespace, pod } => self.crash_pod(namespace, pod),
            Fault::DeletePod { namespace, pod } => self.delete_pod(namespace, pod),
            Fault::RestartSidecar { namespace, pod } => self.restart_sidecar(namespace, pod),
            Fault::CrashWorker { worker } => self.crash_worker(*worker),
            Fault::RestartWorker { worker } => self.restart_worker(*worker),
            Fault::CrashOperator => self.crash_operator(),
            Fault::CrashOperatorAfterWrite { write, reconciling } => {
                self.crash_operator_after_write_of(*write, reconciling.as_deref())
            }
            Fault::CrashOperatorAfterWriteUntilHealed { write, reconciling } => {
                self.crash_operator_after_write_until_healed(*write, reconciling.as_deref())
            }
            Fault::Partition { a, b } => self.partition(a, b),
            Fault::Repair { a, b } => self.repair(a, b),
            Fault::Latency { a, b, latency } => self.set_latency(a, b, *latency),
            Fault::Conflicts { count } => self.inject_conflicts(*count),
            Fault::TransientErrors { count } => self.inject_transient_errors(*count),
            Fault::ReadLag { versions } => self.set_read_lag(*versions),
            Fault::DropWatchEvents { count } => self.drop_watch_events(*count),
            Fault::FailTask { node, task_type, times, error } => {
                self.fail_task(node.as_deref(), task_type, *times, error)
            }
            Fault::LoseResponses { count, gateway_timeout } => self.lose_responses(*count, *gateway_timeout),
            Fault::RefuseCalls { duration, status } => self.refuse_calls(*duration, *status),
            Fault::CrashReplica { replica, down_for } => self.crash_replica(*replica, *down_for),
            Fault::ApiUnreachable { replica, duration } => self.cut_replica_from_api(*replica, *duration),
            Fault::PauseReplica { replica, duration } => self.pause_replica(*replica, *duration),
        }
    }

    /// Stops every lasting fault: workers back up, the operator's links repaired and at normal latency, no pending
    /// API faults, fresh reads, no dropped watch events, no scripted task failures. What already happened stays.
    pub fn heal_all(&mut self) {
        self.record(Category::Fault, "heal all");
        let workers: Vec<(usize, bool)> = lock(&self.shared).plane.workers.iter().map(|w| w.up).enumerate().collect();
        for (index, up) in workers {
            let name = format!("worker-{index}");
            if !up {
                self.restart_worker(index);
            }
            if self.operator {
                self.sim.repair(OPERATOR_HOST, name.as_str());
                self.sim.set_link_latency(OPERATOR_HOST, name.as_str(), HEALED_LATENCY);
            }
        }
        let mut world = lock(&self.shared);
        let now = world.now;
        world.ledger.faults_act_until = Some(now);
        world.api.faults = Default::default();
        world.operator.read_lag = 0;
        world.operator.drop_watch_events = 0;
        world.operator.deliver_unobserved = true;
        // Wake the operator's watch loop: it delivers the unobserved objects even if nothing else changes.
        world.api.changed.notify_one();
        world.operator.crash_after_write = None;
        world.operator.crash_reconciling = None;
        world.operator.crash_until_healed = false;
        world.task_failures.clear();
        world.api.authorization.revoked.clear();
        for replica in &mut world.replicas.list {
            replica.api_unreachable_until = None;
        }
    }
    /// Crashes every container of a pod (they restart: the sidecar forgets everything).
    pub fn crash_pod(&self, namespace: &str, pod: &str) {
        self.record(Category::Fault, format_args!("crash pod {namespace}/{pod}"));
        kubelet::restart_pod(&mut lock(&self.shared), &ObjectRef::new("Pod", namespace, pod));
    }

    /// Deletes a pod through the API server, as a drain, an eviction or `kubectl delete pod` does: unlike
    /// [`World::crash_pod`] the pod object goes. It turns Terminating; its kubelet stops it and confirms the
    /// deletion (on a node that is down it stays Terminating); then its controller makes another pod.
    pub fn delete_pod(&self, namespace: &str, pod: &str) {
        let key = ObjectRef::new("Pod", namespace, pod);
        let mut world = lock(&self.shared);
        let now = world.timestamp();
        let text = match world.api.store.delete(&key, now) {
            Ok(()) => format!("delete pod {namespace}/{pod}"),
            Err(error) => format!("ignored: delete pod {namespace}/{pod}: {error}"),
        };
        world.record(Category::Fault, text);
    }

    /// Restarts only a pod's sidecar container.
    pub fn restart_sidecar(&self, namespace: &str, pod: &str) {
        self.record(Category::Fault, format_args!("restart sidecar of {namespace}/{pod}"));
        kubelet::restart_sidecar(&mut lock(&self.shared), &ObjectRef::new("Pod", namespace, pod));
    }

    /// Crashes worker node `index`: every pod on it loses its processes until [`World::restart_worker`].
    pub fn crash_worker(&mut self, index: usize) {
        if !self.has_worker(index) {
            return;
        }
        let name = format!("worker-{index}");
        self.record(Category::Fault, format_args!("crash {name}"));
        self.note_failure_fault(format!("crash {name}"));
        kubelet::worker_down(&mut lock(&self.shared), index);
        self.sim.crash(name);
    }

    /// Boots worker node `index` again; the kubelet restarts its pods' containers.
    pub fn restart_worker(&mut self, index: usize) {
        if !self.has_worker(index) {
            return;
        }
        let name = format!("worker-{index}");
        self.record(Category::Fault, format_args!("restart {name}"));
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
        self.crash_operator_after_write_of(i, None);
    }

    /// Crashes the operator right after its `i`-th write (1-based) in one reconcile of an object of kind
    /// `reconciling` (any reconcile: `None`). Armed until such a write, or a heal.
    pub fn crash_operator_after_write_of(&self, i: u32, reconciling: Option<&str>) {
        let of = reconciling.map_or_else(|| "a reconcile".to_owned(), |kind| format!("a {kind} reconcile"));
        self.record(Category::Fault, format_args!("operator will crash after write {i} of {of}"));
        let mut world = lock(&self.shared);
        world.operator.crash_after_write = Some(i);
        world.operator.crash_reconciling = reconciling.map(str::to_owned);
        world.operator.crash_until_healed = false;
    }

    /// Crashes the operator right after its `i`-th write (1-based) of every reconcile (of an object of kind
    /// `reconciling`; any: `None`), restart after restart, until [`World::disarm_operator_crash`] or a heal: a
    /// crash loop in one fault.
    pub fn crash_operator_after_write_until_healed(&self, i: u32, reconciling: Option<&str>) {
        let of = reconciling.map_or_else(|| "every reconcile".to_owned(), |kind| format!("every {kind} reconcile"));
        self.record(Category::Fault, format_args!("operator will crash after write {i} of {of} until healed"));
        let mut world = lock(&self.shared);
        world.operator.crash_after_write = Some(i);
        world.operator.crash_reconciling = reconciling.map(str::to_owned);
        world.operator.crash_until_healed = true;
    }

    /// Disarms an operator crash still waiting for its write, a persistent one included.
    pub fn disarm_operator_crash(&self) {
        self.record(Category::Fault, "heal operator crashes");
        let mut world = lock(&self.shared);
        world.operator.crash_after_write = None;
        world.operator.crash_reconciling = None;
        world.operator.crash_until_healed = false;
    }

    /// Partitions two hosts (`operator`, `worker-<i>`, `probe-<n>`).
    pub fn partition(&self, a: &str, b: &str) {
        if !self.is_link(a, b) {
            return;
        }
        self.record(Category::Fault, format_args!("partition {a} | {b}"));
        self.sim.partition(a, b);
    }

    /// Heals a partition.
    pub fn repair(&self, a: &str, b: &str) {
        if !self.is_link(a, b) {
            return;
        }
        self.record(Category::Fault, format_args!("repair {a} | {b}"));
        self.sim.repair(a, b);
    }

    /// Sets the latency of the link between two hosts.
    pub fn set_latency(&self, a: &str, b: &str, latency: Duration) {
        if !self.is_link(a, b) {
            return;
        }
        self.record(Category::Fault, format_args!("latency {a} <-> {b} = {latency:?}"));
        self.sim.set_link_latency(a, b, latency);
    }

    /// The operator's next `n` writes fail with Conflict.
    pub fn inject_conflicts(&self, n: u32) {
        self.record(Category::Fault, format_args!("next {n} operator writes conflict"));
        lock(&self.shared).api.faults.conflicts += n;
    }

    /// Pushes `binary` to the registry under `image` again (a re-pushed tag): pods already running keep the
    /// binary they started with; every later start, pull or not, runs this one.
    pub fn push_image(&self, image: &str, binary: Binary) {
        self.record(Category::Fault, format_args!("push {image} (seid {})", binary.version));
        self.note_failure_fault(format!("push {image}"));
        let mut world = lock(&self.shared);
        world.chains.registry = world.chains.registry.clone().with(image, binary);
    }

    /// From now on (until `false`), the operator's first write after each step in which one of its writes
    /// succeeded fails with Conflict: about every other write.
    pub fn conflict_after_each_success(&self, on: bool) {
        let text = if on { "from now on" } else { "no longer" };
        self.record(
            Category::Fault,
            format_args!("{text}, the operator's first write after a successful one conflicts"),
        );
        let mut world = lock(&self.shared);
        world.api.faults.conflict_after_success = on;
        world.api.faults.writes_succeeded_seen = world.api.faults.writes_succeeded;
    }

    /// Arms the next Conflict of [`World::conflict_after_each_success`], once the last one was spent and a write
    /// has succeeded since the previous step. At most one per step: the refused write's reconcile retries in a
    /// later step, so the refusals drift across the writes of a reconcile instead of always hitting one.
    pub(super) fn rearm_conflict_after_success(&self) {
        let mut world = lock(&self.shared);
        let faults = &mut world.api.faults;
        if faults.conflict_after_success
            && faults.conflicts == 0
            && faults.writes_succeeded > faults.writes_succeeded_seen
        {
            faults.conflicts = 1;
        }
        faults.writes_succeeded_seen = faults.writes_succeeded;
    }

    /// The operator's next `n` API calls fail transiently.
    pub fn inject_transient_errors(&self, n: u32) {
        self.record(Category::Fault, format_args!("next {n} operator API calls fail transiently"));
        lock(&self.shared).api.faults.transient += n;
    }

    /// The operator's next `n` applied writes lose their response: as a 504 its client re-sends
    /// (`gateway_timeout`), or as a client-side timeout.
    pub fn lose_responses(&self, n: u32, gateway_timeout: bool) {
        let how = if gateway_timeout { "a 504, re-sent by the client" } else { "a client timeout" };
        self.record(Category::Fault, format_args!("next {n} operator writes are applied but answered by {how}"));
        let mut world = lock(&self.shared);
        world.api.faults.lost_responses += n;
        world.api.faults.lost_as_gateway_timeout = gateway_timeout;
    }

    /// For `duration` from now, the API server refuses every call of the operator with `status`.
    pub fn refuse_calls(&self, duration: std::time::Duration, status: crate::apiserver::faults::RefusalStatus) {
        self.record(
            Category::Fault,
            format_args!("API server refuses the operator's calls for {duration:?}: {status:?}"),
        );
        let mut world = lock(&self.shared);
        let until = world.now + duration;
        world.api.faults.refusal = Some(crate::apiserver::faults::Refusal { until, status });
    }

    /// Random API faults at these rates, drawn from the world's RNG.
    pub fn set_api_fault_rates(&self, conflict_rate: f64, transient_rate: f64) {
        self.record(
            Category::Fault,
            format!("operator API faults: conflicts {conflict_rate}, transient {transient_rate}"),
        );
        let mut world = lock(&self.shared);
        world.api.faults.conflict_rate = conflict_rate;
        world.api.faults.transient_rate = transient_rate;
    }

    /// The operator reads the store as it was `versions` versions ago (0: fresh reads).
    pub fn set_read_lag(&self, versions: u64) {
        self.record(Category::Fault, format_args!("operator reads lag {versions} versions"));
        lock(&self.shared).operator.read_lag = versions;
    }

    /// The operator's watch drops its next `n` events.
    pub fn drop_watch_events(&self, n: u32) {
        self.record(Category::Fault, format_args!("drop the operator's next {n} watch events"));
        lock(&self.shared).operator.drop_watch_events += n;
    }

    /// Sidecar tasks of `task_type` (on `node`'s pods, or any) fail the next `times` times.
    pub fn fail_task(&self, node: Option<&str>, task_type: &str, times: u32, error: &str) {
        self.record(Category::Fault, format_args!("task {task_type} fails {times}x on {}", node.unwrap_or("any node")));
        self.note_failure_fault(format!("task {task_type} fails"));
        lock(&self.shared).task_failures.push(ScriptedTaskFailure {
            node: node.map(str::to_owned),
            task_type: task_type.into(),
            times,
            error: error.into(),
        });
    }

    /// The replica a fault names: `Some(i)`, or the one the Lease names (`None`); `None` when there is none.
    fn replica(&self, replica: Option<usize>, what: &str) -> Option<usize> {
        let count = self.replica_count().max(usize::from(self.operator));
        let index = match replica {
            Some(index) => Some(index),
            None => lock(&self.shared)
                .replicas
                .holder
                .as_deref()
                .and_then(crate::operator_host::replicas::replica_of_caller)
                .or((count == 1).then_some(0)),
        };
        let index = index.filter(|i| *i < count);
        if index.is_none() {
            self.record(Category::Fault, format_args!("ignored: {what}: no such replica (or no leader)"));
        }
        index
    }

    /// Crashes operator replica `replica` (`None`: the leader): its memory is lost; it restarts after `down_for`
    /// (`None`: at the next step).
    pub fn crash_replica(&mut self, replica: Option<usize>, down_for: Option<Duration>) {
        let Some(index) = self.replica(replica, "crash replica") else { return };
        if self.replica_count() == 0 {
            return self.crash_operator();
        }
        let host = crate::operator_host::replicas::host_name(index);
        let mut world = lock(&self.shared);
        let until = world.now + down_for.unwrap_or_default();
        world.record(Category::Fault, format_args!("crash {host} (down for {:?})", down_for.unwrap_or_default()));
        if let Some(state) = world.replicas.get_mut(index) {
            *state = crate::operator_host::replicas::ReplicaState {
                down: true,
                down_until: Some(until),
                api_unreachable_until: state.api_unreachable_until,
                ..Default::default()
            };
        }
        drop(world);
        self.sim.crash(host);
    }

    /// Operator replica `replica`'s API calls fail transiently for `duration`.
    pub fn cut_replica_from_api(&mut self, replica: Option<usize>, duration: Duration) {
        let Some(index) = self.replica(replica, "cut a replica from the API server") else { return };
        if self.replica_count() == 0 {
            // One operator runs with no election and no per-replica state (`crate::operator_host::replicas`).
            return self.record(
                Category::Fault,
                "ignored: cut a replica from the API server: needs world.operatorReplicas of 2 or more",
            );
        }
        let host = crate::operator_host::replicas::host_name(index);
        self.record(Category::Fault, format_args!("{host} cannot reach the API server for {duration:?}"));
        let mut world = lock(&self.shared);
        let until = world.now + duration;
        if let Some(state) = world.replicas.get_mut(index) {
            state.api_unreachable_until = Some(until);
        }
    }

    /// Operator replica `replica`'s process runs nothing for `duration`, then resumes as it was.
    pub fn pause_replica(&mut self, replica: Option<usize>, duration: Duration) {
        let Some(index) = self.replica(replica, "pause a replica") else { return };
        if self.replica_count() == 0 {
            // One operator runs with no election and no per-replica state (`crate::operator_host::replicas`).
            return self.record(Category::Fault, "ignored: pause a replica: needs world.operatorReplicas of 2 or more");
        }
        let host = crate::operator_host::replicas::host_name(index);
        self.record(Category::Fault, format_args!("pause {host} for {duration:?}"));
        let mut world = lock(&self.shared);
        let until = world.now + duration;
        if let Some(state) = world.replicas.get_mut(index) {
            state.paused_until = Some(until);
        }
    }
}
