//! The fake Kubernetes control plane and nodes: the scheduler ([`scheduler`]), the kubelet ([`kubelet`],
//! [`pod`], [`pod_status`]), and the StatefulSet, Job and
//! PersistentVolumeClaim controllers plus the garbage collector, as kube-controller-manager runs them — a
//! controller-manager lag after each change, then a sync of everything.

pub mod job;
pub mod kubelet;
pub mod plane;
pub mod pod;
pub mod pod_status;
pub mod pvc;
pub mod scheduler;
pub mod seid_container;
pub mod statefulset;

use std::borrow::Borrow;
use std::time::Duration;

use rand::Rng;

use sei_operator_core::cluster::ClusterError;
use serde_json::Value;

use crate::apiserver::json::Fields;
use crate::harness::state::WorldState;
use crate::harness::trace::Category;

/// One step of the control plane and the kubelets at the world's current time.
pub fn step(world: &mut WorldState) {
    // The node monitor's grace period for a dead worker ends: its pods' statuses must be reported now.
    let mut grace_over = false;
    for worker in world.plane.workers.iter_mut().filter(|w| !w.marked_not_ready) {
        if worker.down_since.is_some_and(|since| since + crate::kube::plane::NODE_MONITOR_GRACE <= world.now) {
            worker.marked_not_ready = true;
            grace_over = true;
        }
    }
    if grace_over {
        world.plane.controllers.kubelet_dirty = true;
    }
    evict_from_unreachable_workers(world);
    let due = grace_over || world.plane.controllers.next_pod_due.is_some_and(|t| t <= world.now);
    if world.plane.controllers.kubelet_dirty || due {
        kubelet::advance_pods(world);
    }
    let changed =
        world.api.store.version() != world.plane.controllers.seen_version || world.plane.controllers.force_sync;
    if changed && world.plane.controllers.dirty_since.is_none() {
        world.plane.controllers.force_sync = false;
        world.plane.controllers.dirty_since = Some(world.now);
        let jitter = world.timings.controller_lag_jitter.as_millis();
        let extra = if jitter == 0 { 0 } else { world.rng.random_range(0..=jitter) };
        world.plane.controllers.lag =
            world.timings.controller_lag + Duration::from_millis(u64::try_from(extra).unwrap_or(0));
    }
    if world.plane.controllers.dirty_since.is_some_and(|since| since + world.plane.controllers.lag <= world.now) {
        world.plane.controllers.dirty_since = None;
        world.plane.controllers.seen_version = world.api.store.version();
        sync_all(world);
        // Writes of this sync are seen by the next one, after another lag, as informers would deliver them.
    }
    if world.plane.controllers.kubelet_dirty {
        kubelet::report_pods(world);
    }
    if world.plane.controllers.kubelet_dirty || due {
        world.plane.controllers.kubelet_dirty = false;
        world.plane.controllers.next_pod_due =
            world.plane.pods.values().filter_map(|p| p.next_due(&world.pod_env())).min();
    }
}

/// How long a pod tolerates its node's `node.kubernetes.io/unreachable:NoExecute` taint: the
/// `tolerationSeconds: 300` the `DefaultTolerationSeconds` admission plugin adds to every pod
/// (kubernetes `plugin/pkg/admission/defaulttolerationseconds/admission.go`; the operator sets no toleration).
pub const UNREACHABLE_TOLERATION: Duration = Duration::from_secs(300);

/// The taint-eviction controller (kubernetes `pkg/controller/tainteviction/taint_eviction.go`): once a worker
/// has been unreachable past the node monitor's grace period (when the node lifecycle controller taints it
/// `unreachable:NoExecute`) plus [`UNREACHABLE_TOLERATION`], every pod scheduled on it is deleted. The
/// kubelet is down, so nobody confirms the deletion: the pods stay Terminating until the worker is back
/// (`sync_pods`), and a StatefulSet does not replace a pod of the same name meanwhile.
fn evict_from_unreachable_workers(world: &mut WorldState) {
    let now = world.now;
    let due: Vec<usize> = (0..world.plane.workers.len())
        .filter(|w| {
            let worker = &world.plane.workers[*w];
            !worker.up
                && worker.marked_not_ready
                && worker
                    .down_since
                    .is_some_and(|since| since + crate::kube::plane::NODE_MONITOR_GRACE + UNREACHABLE_TOLERATION <= now)
        })
        .collect();
    if due.is_empty() {
        return;
    }
    let evicted: Vec<sei_operator_core::cluster::ObjectRef> = world
        .plane
        .pods
        .iter()
        .filter(|(_, pod)| due.contains(&pod.worker) && pod.seid != pod::Seid::Unscheduled)
        .filter(|(key, _)| {
            world.api.store.get(key, None).is_some_and(|value| !crate::apiserver::store::is_deleting(value))
        })
        .map(|(key, _)| key.clone())
        .collect();
    for key in evicted {
        let at = world.timestamp();
        let result = world.api.store.delete(&key, at).map(|()| Value::Null);
        traced(world, "taint-eviction-controller", "delete", format!("{key} (node unreachable)"), result);
    }
}

fn sync_all(world: &mut WorldState) {
    kubelet::sync_pods(world);
    statefulset::sync(world);
    job::sync(world);
    pvc::sync(world);
    let now = world.timestamp();
    for key in world.api.store.collect_garbage(now) {
        world.record(Category::Write, format_args!("garbage-collector delete {key}"));
        // Invariant 6 judges a claim the collector takes while a live pod still mounts it as one the operator
        // deletes: the owner references that make it garbage (the StatefulSet's, under `whenDeleted: Delete`)
        // are the operator's choice. (A predecessor's claim nobody mounts any more, collected while a SeiNode
        // of the same name is already made again, is not that node's volume.) The claim is still stored,
        // marked for deletion under its pvc-protection finalizer.
        let mounted = world.plane.pods.iter().any(|(pod, runtime)| {
            runtime.volume.as_ref() == Some(&key)
                && world.api.store.get(pod, None).is_some_and(|value| !crate::apiserver::store::is_deleting(value))
        });
        if key.kind == "PersistentVolumeClaim" && mounted {
            world.observer.on_delete(world, &key);
        }
    }
    world.plane.controllers.kubelet_dirty = true;
}

/// Writes through the store on behalf of a control-plane component, tracing the outcome.
pub fn traced<V: Borrow<Value>>(
    world: &mut WorldState,
    actor: &str,
    verb: &str,
    what: String,
    result: Result<V, ClusterError>,
) {
    match result {
        Ok(value) => {
            let version =
                value.borrow().metadata_field("resourceVersion").and_then(Value::as_str).unwrap_or("-").to_owned();
            world.record(Category::Write, format_args!("{actor} {verb} {what} rv={version}"));
        }
        Err(error) => world.record(Category::Write, format_args!("{actor} {verb} {what} failed: {error}")),
    }
}
