//! The kubelet's status reports: each pod's phase, conditions (`Initialized`, `Ready`, `ContainersReady`) and
//! container statuses — `containerStatuses` for seid (and a regular sidecar), `initContainerStatuses` for the init
//! containers and a native sidecar, each with `started`, `ready` and `restartCount` — written to the store when
//! they change.

use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting, ContainerStatus,
    PodCondition, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use sei_operator_core::cluster::ObjectRef;
use sei_operator_core::objects::workload::{SEID_CONTAINER, SIDECAR_CONTAINER};

use super::pod::{InitKind, PodRuntime, Seid, SidecarKind};
use crate::harness::state::WorldState;
use crate::harness::trace::Category;

/// Writes each pod's status to the store when it changed, and remembers which images Ready pods ran. The pods of
/// a node that went silent keep their last status until the node monitor's grace period is over. The status is
/// built typed and compared with the last one reported: most reports find it unchanged, and only a changed one is
/// encoded for the store.
pub fn report_pods(world: &mut WorldState) {
    let keys: Vec<ObjectRef> = world.plane.pods.keys().cloned().collect();
    for key in keys {
        let Some(pod) = world.plane.pods.get(&key) else { continue };
        if world.plane.workers.get(pod.worker).is_some_and(|w| w.status_frozen(world.now)) {
            continue;
        }
        let started = Time(world.timestamp_at(pod.probe_state.container_started_at));
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
            if let Some(sidecar) = &pod.sidecar_image {
                world.ledger.ready_sidecar_images.insert((key.namespace.clone(), node.clone(), sidecar.clone()));
            }
        }
        let ready = pod.is_ready();
        let Some(stored) = world.api.store.get(&key, None) else { continue };
        let Ok(encoded) = serde_json::to_value(&status) else { continue };
        let update = crate::apiserver::store::status_update(stored, encoded);
        if world.api.store.replace_status(update).is_ok() {
            let text = format!(
                "status Pod {}/{} phase={} ready={ready}",
                key.namespace,
                key.name,
                status.phase.as_deref().unwrap_or_default(),
            );
            world.record(Category::Write, format_args!("kubelet {text}"));
        }
        if let Some(pod) = world.plane.pods.get_mut(&key) {
            pod.reported = status;
        }
    }
}

fn condition(type_: &str, value: bool) -> PodCondition {
    PodCondition { type_: type_.into(), status: if value { "True" } else { "False" }.into(), ..PodCondition::default() }
}

fn running(started_at: Option<Time>) -> ContainerState {
    ContainerState { running: Some(ContainerStateRunning { started_at }), ..ContainerState::default() }
}

fn waiting(reason: &str, message: Option<String>) -> ContainerState {
    ContainerState {
        waiting: Some(ContainerStateWaiting { reason: Some(reason.into()), message }),
        ..ContainerState::default()
    }
}

/// A terminated state. `message` is the termination message file's text (kubernetes/kubernetes
/// `pkg/kubelet/kuberuntime/kuberuntime_container.go`, `getTerminationMessage`: the file at
/// `terminationMessagePath`, its last 4096 bytes), empty when the container wrote none — then absent, as the API
/// omits empty fields.
fn terminated(code: i32, message: &str) -> ContainerState {
    ContainerState {
        terminated: Some(ContainerStateTerminated {
            exit_code: code,
            reason: Some(if code == 0 { "Completed" } else { "Error" }.into()),
            message: (!message.is_empty()).then(|| message.to_owned()),
            ..ContainerStateTerminated::default()
        }),
        ..ContainerState::default()
    }
}

/// A container's status as the kubelet reports it (no image ID: the simulated runtime has none).
fn container(
    name: &str,
    image: &str,
    ready: bool,
    started: bool,
    restarts: u32,
    state: ContainerState,
) -> ContainerStatus {
    ContainerStatus {
        name: name.into(),
        image: image.into(),
        image_id: String::new(),
        ready,
        started: Some(started),
        restart_count: i32::try_from(restarts).unwrap_or(i32::MAX),
        state: Some(state),
        ..ContainerStatus::default()
    }
}

/// The pod's status as the kubelet reports it.
fn pod_status(pod: &PodRuntime, worker: &str, seid_started_at: Time) -> PodStatus {
    let ready = pod.is_ready();
    let initializing = pod.sidecar_kind == SidecarKind::BlockingInit;
    let (phase, state) = match &pod.seid {
        Seid::Unscheduled => ("Pending", waiting("Unschedulable", None)),
        Seid::Pulling { .. } => ("Pending", waiting("ContainerCreating", None)),
        Seid::ImagePullBackOff => ("Pending", waiting("ImagePullBackOff", None)),
        Seid::WaitingForSidecar if initializing => ("Pending", waiting("PodInitializing", None)),
        // The wrapper runs: the container is running, whatever seid's process is doing.
        // `startedAt` is the container's start (metav1.Time: whole seconds), not seid's process.
        Seid::WaitingForSidecar | Seid::Running { .. } => ("Running", running(Some(seid_started_at))),
        // kubernetes/kubernetes `pkg/kubelet/kuberuntime/kuberuntime_manager.go` (`doBackOff`): the message names
        // the back-off and the container, not why it ended (that is `lastState`).
        Seid::BackOff { .. } => {
            let message = format!(
                "back-off restarting failed container={SEID_CONTAINER} pod={}_{}({})",
                pod.key.name, pod.key.namespace, pod.uid
            );
            ("Running", waiting("CrashLoopBackOff", Some(message)))
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
        Seid::NodeDown => ("Running", waiting("NodeNotReady", None)),
    };
    let placed = !matches!(pod.seid, Seid::Unscheduled);
    let created = placed && !matches!(pod.seid, Seid::Pulling { .. } | Seid::ImagePullBackOff);
    let sidecar_status = |name: &str| {
        let state = if pod.sidecar.is_some() { running(None) } else { waiting("PodInitializing", None) };
        let image = pod.sidecar_image.as_deref().unwrap_or_default();
        let ready = pod.sidecar_ready() && pod.sidecar.is_some();
        container(name, image, ready, pod.sidecar.is_some(), pod.sidecar_restarts, state)
    };
    let mut seid = container(SEID_CONTAINER, &pod.image, pod.seid_ready(), pod.seid_started(), pod.restarts, state);
    // The exit before the current run: the kubelet keeps the last one.
    if let (Some(last), false) = (&pod.last_termination, matches!(pod.seid, Seid::Terminated { .. })) {
        seid.last_state = Some(terminated(last.exit_code, &last.message));
    }
    let mut containers = vec![seid];
    if pod.sidecar_kind == SidecarKind::Regular {
        containers.push(sidecar_status(SIDECAR_CONTAINER));
    }
    let init: Vec<ContainerStatus> = pod
        .init_containers
        .iter()
        .map(|c| match c.kind {
            InitKind::Sidecar if pod.sidecar_kind == SidecarKind::Native || initializing => sidecar_status(&c.name),
            _ => {
                let state = if created { terminated(0, "") } else { waiting("PodInitializing", None) };
                container(&c.name, &c.image, created, false, 0, state)
            }
        })
        .collect();
    PodStatus {
        phase: Some(phase.into()),
        host_ip: Some(worker.into()),
        conditions: Some(vec![
            condition("Initialized", created && !initializing),
            condition("Ready", ready),
            condition("ContainersReady", ready),
            condition("PodScheduled", placed),
        ]),
        container_statuses: Some(containers),
        init_container_statuses: (!init.is_empty()).then_some(init),
        ..PodStatus::default()
    }
}
