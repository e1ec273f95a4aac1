//! The kubelet's status reports: each pod's phase, conditions (`Initialized`, `Ready`, `ContainersReady`) and
//! container statuses — `containerStatuses` for seid (and a regular sidecar), `initContainerStatuses` for the init
//! containers and a native sidecar, each with `started`, `ready` and `restartCount` — written to the store when
//! they change.

use sei_operator_core::cluster::ObjectRef;
use sei_operator_core::objects::workload::{SEID_CONTAINER, SIDECAR_CONTAINER};
use serde_json::{Value, json};

use super::pod::{InitKind, PodRuntime, Seid, SidecarKind};
use crate::harness::state::WorldState;
use crate::harness::trace::Category;

/// Writes each pod's status to the store when it changed, and remembers which images Ready pods ran. The pods of
/// a node that went silent keep their last status until the node monitor's grace period is over.
pub fn report_pods(world: &mut WorldState) {
    let keys: Vec<ObjectRef> = world.plane.pods.keys().cloned().collect();
    for key in keys {
        let Some(pod) = world.plane.pods.get(&key) else { continue };
        if world.plane.workers.get(pod.worker).is_some_and(|w| w.status_frozen(world.now)) {
            continue;
        }
        let started = crate::apiserver::store::time_value(world.timestamp_at(pod.probe_state.container_started_at));
        let worker = &world.plane.workers[pod.worker.min(world.plane.workers.len().saturating_sub(1))].name;
        let status = pod_status(pod, worker, started);
        if status == pod.reported {
            continue;
        }
        // Invariant 4's record: an image counts as run by a Ready pod only while the kubelet says Ready and seid
        // itself runs it (not a wrapper still waiting in a pod with no readiness probe).
        if pod.is_ready()
            && matches!(pod.seid, Seid::Running { .. })
            && let Some(node) = &pod.node
        {
            world.ledger.ready_images.insert((key.namespace.clone(), node.clone(), pod.image.clone()));
        }
        let Some(stored) = world.api.store.get(&key, None) else { continue };
        let update = crate::apiserver::store::status_update(stored, status.clone());
        if world.api.store.replace_status(update).is_ok() {
            let text = format!(
                "status Pod {}/{} phase={} ready={}",
                key.namespace,
                key.name,
                status["phase"].as_str().unwrap_or_default(),
                pod.is_ready()
            );
            world.record(Category::Write, format!("kubelet {text}"));
        }
        if let Some(pod) = world.plane.pods.get_mut(&key) {
            pod.reported = status;
        }
    }
}

fn condition(type_: &str, value: bool) -> Value {
    json!({"type": type_, "status": if value { "True" } else { "False" }})
}

fn running() -> Value {
    json!({"running": {}})
}

fn waiting(reason: &str) -> Value {
    json!({"waiting": {"reason": reason}})
}

/// A terminated state. `message` is the termination message file's text (kubernetes/kubernetes
/// `pkg/kubelet/kuberuntime/kuberuntime_container.go`, `getTerminationMessage`: the file at
/// `terminationMessagePath`, its last 4096 bytes), empty when the container wrote none — then absent, as the API
/// omits empty fields.
fn terminated(code: i32, message: &str) -> Value {
    let mut state = json!({"exitCode": code, "reason": if code == 0 { "Completed" } else { "Error" }});
    if !message.is_empty() {
        state["message"] = json!(message);
    }
    json!({"terminated": state})
}

/// The pod's status as the kubelet reports it.
fn pod_status(pod: &PodRuntime, worker: &str, seid_started_at: Value) -> Value {
    let ready = pod.is_ready();
    let initializing = pod.sidecar_kind == SidecarKind::BlockingInit;
    let (phase, state) = match &pod.seid {
        Seid::Unscheduled => ("Pending", waiting("Unschedulable")),
        Seid::Pulling { .. } => ("Pending", waiting("ContainerCreating")),
        Seid::ImagePullBackOff => ("Pending", waiting("ImagePullBackOff")),
        Seid::WaitingForSidecar if initializing => ("Pending", waiting("PodInitializing")),
        // The wrapper runs: the container is running, whatever seid's process is doing.
        // `startedAt` is the container's start (metav1.Time: whole seconds), not seid's process.
        Seid::WaitingForSidecar | Seid::Running { .. } => {
            ("Running", json!({"running": {"startedAt": seid_started_at}}))
        }
        // kubernetes/kubernetes `pkg/kubelet/kuberuntime/kuberuntime_manager.go` (`doBackOff`): the message names
        // the back-off and the container, not why it ended (that is `lastState`).
        Seid::BackOff { .. } => {
            let message = format!(
                "back-off restarting failed container={SEID_CONTAINER} pod={}_{}({})",
                pod.key.name, pod.key.namespace, pod.uid
            );
            ("Running", json!({"waiting": {"reason": "CrashLoopBackOff", "message": message}}))
        }
        Seid::Terminated { exit } => {
            let code = pod.command.container_exit_code(exit);
            let message = pod.last_termination.as_ref().map_or("", |t| t.message.as_str());
            let phase = match (pod.sidecar_kind, code) {
                // The regular sidecar container still runs: the pod is not finished.
                (SidecarKind::Regular, _) => "Running",
                (_, 0) => "Succeeded",
                _ => "Failed",
            };
            (phase, terminated(code, message))
        }
        // The node stopped reporting: the node lifecycle controller marks its pods not Ready.
        Seid::NodeDown => ("Running", waiting("NodeNotReady")),
    };
    let placed = !matches!(pod.seid, Seid::Unscheduled);
    let created = placed && !matches!(pod.seid, Seid::Pulling { .. } | Seid::ImagePullBackOff);
    let sidecar_state = || if pod.sidecar.is_some() { running() } else { waiting("PodInitializing") };
    let sidecar_status = |name: &str| {
        json!({
            "name": name,
            "image": pod.sidecar_image.clone().unwrap_or_default(),
            "imageID": "",
            "ready": pod.sidecar_ready() && pod.sidecar.is_some(),
            "started": pod.sidecar.is_some(),
            "restartCount": pod.sidecar_restarts,
            "state": sidecar_state(),
        })
    };
    let mut seid = json!({
        "name": SEID_CONTAINER,
        "image": pod.image,
        "imageID": "",
        "ready": pod.seid_ready(),
        "restartCount": pod.restarts,
        "started": pod.seid_started(),
        "state": state,
    });
    // The exit before the current run: the kubelet keeps the last one.
    if let (Some(last), false) = (&pod.last_termination, matches!(pod.seid, Seid::Terminated { .. })) {
        seid["lastState"] = terminated(last.exit_code, &last.message);
    }
    let mut containers = vec![seid];
    if pod.sidecar_kind == SidecarKind::Regular {
        containers.push(sidecar_status(SIDECAR_CONTAINER));
    }
    let init: Vec<Value> = pod
        .init_containers
        .iter()
        .map(|c| match c.kind {
            InitKind::Sidecar if pod.sidecar_kind == SidecarKind::Native || initializing => sidecar_status(&c.name),
            _ => json!({
                "name": c.name,
                "image": c.image,
                "imageID": "",
                "ready": created,
                "restartCount": 0,
                "started": false,
                "state": if created { terminated(0, "") } else { waiting("PodInitializing") },
            }),
        })
        .collect();
    let mut status = json!({
        "phase": phase,
        "hostIP": worker,
        "conditions": [
            condition("Initialized", created && !initializing),
            condition("Ready", ready),
            condition("ContainersReady", ready),
            condition("PodScheduled", placed),
        ],
        "containerStatuses": containers,
    });
    if !init.is_empty() {
        status["initContainerStatuses"] = Value::Array(init);
    }
    status
}
