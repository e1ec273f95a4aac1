//! The kubelet's status reports: each pod's phase, Ready condition and container status, written to the store
//! when they change.

use sei_operator::cluster::ObjectRef;
use serde_json::{Value, json};

use super::pod::{PodRuntime, Seid, SidecarKind};
use crate::state::WorldState;
use crate::trace::Category;

/// Writes each pod's status to the store when it changed, and remembers which images Ready pods ran. The pods of
/// a node that went silent keep their last status until the node monitor's grace period is over.
pub fn report_pods(world: &mut WorldState) {
    let keys: Vec<ObjectRef> = world.pods.keys().cloned().collect();
    for key in keys {
        let Some(pod) = world.pods.get(&key) else { continue };
        if world.workers.get(pod.worker).is_some_and(|w| w.status_frozen(world.now)) {
            continue;
        }
        let status = pod_status(pod, &world.workers[pod.worker.min(world.workers.len().saturating_sub(1))].name);
        if status == pod.reported {
            continue;
        }
        if pod.is_ready()
            && let Some(node) = &pod.node
        {
            world.ready_images.insert((key.namespace.clone(), node.clone(), pod.image.clone()));
        }
        let Some(stored) = world.store.get(&key, None) else { continue };
        let update = crate::store::status_update(stored, status.clone());
        if world.store.replace_status(update).is_ok() {
            let text = format!(
                "status Pod {}/{} phase={} ready={}",
                key.namespace,
                key.name,
                status["phase"].as_str().unwrap_or_default(),
                pod.is_ready()
            );
            world.record(Category::Write, format!("kubelet {text}"));
        }
        if let Some(pod) = world.pods.get_mut(&key) {
            pod.reported = status;
        }
    }
}

/// The pod's status as the kubelet reports it.
fn pod_status(pod: &PodRuntime, worker: &str) -> Value {
    let ready = pod.is_ready();
    let (phase, state) = match &pod.seid {
        Seid::Unscheduled => ("Pending", json!({"waiting": {"reason": "Unschedulable"}})),
        Seid::Pulling { .. } => ("Pending", json!({"waiting": {"reason": "ContainerCreating"}})),
        Seid::ImagePullBackOff => ("Pending", json!({"waiting": {"reason": "ImagePullBackOff"}})),
        Seid::WaitingForSidecar if pod.sidecar_kind == SidecarKind::BlockingInit => {
            ("Pending", json!({"waiting": {"reason": "PodInitializing"}}))
        }
        Seid::WaitingForSidecar => ("Running", json!({"running": {}})),
        Seid::Running { .. } => ("Running", json!({"running": {}})),
        Seid::BackOff { last_exit, .. } => {
            ("Running", json!({"waiting": {"reason": "CrashLoopBackOff", "message": last_exit.describe()}}))
        }
        Seid::Terminated { exit } => (
            match (pod.sidecar_kind, exit.exit_code()) {
                // The regular sidecar container still runs: the pod is not finished.
                (SidecarKind::Regular, _) => "Running",
                (_, 0) => "Succeeded",
                _ => "Failed",
            },
            json!({"terminated": {"exitCode": exit.exit_code(), "reason": if exit.exit_code() == 0 { "Completed" } else { "Error" }, "message": exit.describe()}}),
        ),
        // The node stopped reporting: the node lifecycle controller marks its pods not Ready.
        Seid::NodeDown => ("Running", json!({"waiting": {"reason": "NodeNotReady"}})),
    };
    let condition = if ready { "True" } else { "False" };
    json!({
        "phase": phase,
        "hostIP": worker,
        "conditions": [{"type": "Ready", "status": condition}, {"type": "ContainersReady", "status": condition}],
        "containerStatuses": [{
            "name": "seid",
            "image": pod.image,
            "imageID": "",
            "ready": ready,
            "restartCount": pod.restarts,
            "started": matches!(pod.seid, Seid::Running { .. } | Seid::WaitingForSidecar),
            "state": state,
        }],
    })
}
