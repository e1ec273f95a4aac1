//! The seid container's end, which both the kubelet (a probe, a crash, a halt) and the sidecar's `restart-seid`
//! task (a SIGTERM through the shared process namespace) bring about: seid stops, its height is saved, and the
//! pod's restart policy decides what comes next.

use sei_operator_core::cluster::ObjectRef;
use serde_json::Value;

use super::pod::{
    BACKOFF_INITIAL, BACKOFF_MAX, BACKOFF_RESET_AFTER, PodRuntime, RestartPolicy, Seid, SidecarKind, Termination,
};
use super::scheduler::save_height;
use crate::apiserver::json::Fields;
use crate::harness::ledger::PanicRecord;
use crate::harness::state::WorldState;
use crate::harness::trace::Category;
use crate::node::seid::SeidExit;

/// The stop of a `restart-seid` run that just began in pod `key`'s sidecar (sei-protocol/seictl
/// `sidecar/tasks/stop_seid.go`, `seidStopper.stop`): seid found in `/proc` gets SIGTERM and exits (the kubelet
/// restarts its container, and the new seid reads the config on the volume); seid running but not visible (the
/// pod does not share its process namespace) fails the task; seid not running is a no-op. The task then waits
/// for seid's RPC (settled in `settle_tasks`).
pub fn begin_restart_seid(world: &mut WorldState, key: &ObjectRef, id: uuid::Uuid) {
    let Some(pod) = world.plane.pods.get(key) else { return };
    if !matches!(pod.seid, Seid::Running { .. }) {
        return;
    }
    let label = format!("{}/{}", key.namespace, key.name);
    if pod.shares_process_namespace {
        world.observer.on_seid_restart(world, key);
        world.record(Category::Sidecar, format_args!("{label} sidecar restart-seid {id}: SIGTERM to seid"));
        stop_seid(world, key, SeidExit::Terminated);
    } else {
        let now = world.now;
        if let Some(task) = world.plane.tasks_mut(key).and_then(|t| t.get_mut(&id)) {
            task.fails_with = Some(
                "seid RPC is serving but its process was not found in /proc: process \"seid\" not found in /proc — \
                 refusing to report a restart that did not happen"
                    .to_owned(),
            );
            task.completes_at = Some(now);
        }
    }
}

/// Stops a running seid with `exit`: its height is saved, a panic is recorded, and the restart policy decides.
pub(super) fn stop_seid(world: &mut WorldState, key: &ObjectRef, exit: SeidExit) {
    let now = world.now;
    let Some(pod) = world.plane.pods.get(key).cloned() else { return };
    let Seid::Running { run, .. } = &pod.seid else { return };
    save_height(world, &pod);
    let height = world.chain_for(pod.chain_id.as_deref()).map_or(0, |c| run.height_at(c, now));
    let code = pod.command.container_exit_code(&exit);
    world.record(
        Category::Chain,
        format!(
            "{}/{} seid {} at height {height}: {}; container exit code {code}",
            key.namespace,
            key.name,
            pod.image,
            exit.describe()
        ),
    );
    if exit.is_crash() {
        let node_uid = node_uid_of_pod(world, key);
        world.ledger.panics.push(PanicRecord {
            at: now,
            namespace: key.namespace.clone(),
            node: pod.node.clone(),
            pod: key.name.clone(),
            image: pod.image.clone(),
            reason: exit.describe(),
            upgrade_panic: exit.is_upgrade_panic(),
            exit: exit.clone(),
            node_uid,
        });
    }
    let ran_long = now.saturating_sub(pod.probe_state.container_started_at) >= BACKOFF_RESET_AFTER;
    end_container(world, key, exit, code, ran_long);
}

/// The uid of the SeiNode pod `key` runs for, through the stored objects: the pod's controller (its
/// StatefulSet, or a bootstrap Job — a set's pods name it so, kubernetes
/// `pkg/controller/statefulset/stateful_set_utils.go`, `newStatefulSetPod`), that object as stored now under the
/// name and uid the pod names, and its own controller. `None` when a link is gone — a SeiNode deleted and made again under the same name has a new
/// workload, and its predecessor's pod, still running out its grace, belongs to no live node.
fn node_uid_of_pod(world: &WorldState, key: &ObjectRef) -> Option<String> {
    let controller = |value: &Value| -> Option<(String, String, String)> {
        let references = value.metadata_field("ownerReferences")?.as_array()?;
        let reference = references.iter().find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))?;
        let text = |field: &str| reference.get(field).and_then(Value::as_str).map(str::to_owned);
        Some((text("kind")?, text("name")?, text("uid")?))
    };
    let (kind, name, uid) = controller(world.api.store.get(key, None)?)?;
    let workload = world.api.store.get(&ObjectRef::new(&kind, &key.namespace, &name), None)?;
    if workload.metadata_field("uid").and_then(Value::as_str) != Some(uid.as_str()) {
        return None;
    }
    controller(workload).map(|(_, _, node_uid)| node_uid)
}

/// The kubelet kills the seid container (its wrapper, or seid if it runs): seid's height is saved, and the
/// restart policy decides as for any exit.
pub(super) fn kill_container(world: &mut WorldState, key: &ObjectRef, exit: SeidExit) {
    let Some(pod) = world.plane.pods.get(key).cloned() else { return };
    save_height(world, &pod);
    let code = exit.exit_code();
    world.record(
        Category::Pod,
        format_args!("{}/{} seid container killed: {}", key.namespace, key.name, exit.describe()),
    );
    end_container(world, key, exit, code, false);
}

/// The seid container has exited with `code`: restarted with back-off, or terminated for good, per the pod's
/// restart policy (OnFailure restarts on a non-zero code: the container's, not seid's).
pub(super) fn end_container(world: &mut WorldState, key: &ObjectRef, exit: SeidExit, code: i32, ran_long: bool) {
    let now = world.now;
    let Some(pod) = world.plane.pods.get(key) else { return };
    let restart = match pod.restart_policy {
        RestartPolicy::Always => true,
        RestartPolicy::OnFailure => code != 0,
        RestartPolicy::Never => false,
    };
    let message = termination_message(world, pod, &exit);
    let Some(pod) = world.plane.pods.get_mut(key) else { return };
    pod.last_termination = Some(Termination { exit_code: code, message });
    if restart {
        // The kubelet restarts exited containers of a restartPolicy Always pod whatever the exit code, with
        // the same back-off.
        pod.consecutive_crashes = if ran_long { 1 } else { pod.consecutive_crashes + 1 };
        pod.restarts += 1;
        let backoff = BACKOFF_INITIAL
            .checked_mul(1 << pod.consecutive_crashes.saturating_sub(1).min(16))
            .unwrap_or(BACKOFF_MAX)
            .min(BACKOFF_MAX);
        pod.seid = Seid::BackOff { until: now + backoff, last_exit: exit };
    } else {
        pod.seid = Seid::Terminated { exit };
        if pod.sidecar_kind == SidecarKind::Native {
            // The kubelet stops native sidecars once the main containers have exited.
            pod.sidecar = None;
        }
    }
    let worker = pod.worker;
    world.touch_worker(worker);
}

/// The termination message of seid's container after `exit`: what the node's script copied from seid's output
/// (`workload::UPGRADE_PANIC_CAPTURE`), in the words of Cosmos SDK `x/upgrade/abci.go` — else nothing.
pub(super) fn termination_message(world: &WorldState, pod: &PodRuntime, exit: &SeidExit) -> String {
    if !pod.command.reports_upgrade_panics {
        return String::new();
    }
    let chain = pod.chain_id.as_ref().and_then(|id| world.chains.by_id.get(id));
    let upgrade_above = |height: u64| {
        chain.and_then(|c| c.upgrades.iter().find(|u| u.height >= height)).map_or("upgrade", |u| u.name.as_str())
    };
    match exit {
        SeidExit::UpgradeNeeded { upgrade_height } => {
            format!("panic: UPGRADE \"{}\" NEEDED at height: {upgrade_height}: \n", upgrade_above(*upgrade_height))
        }
        SeidExit::UpdatedBeforeTrigger { block } => format!(
            "panic: BINARY UPDATED BEFORE TRIGGER! UPGRADE \"{}\" - in binary but not executed on chain\n",
            upgrade_above(*block + 1)
        ),
        _ => String::new(),
    }
}
