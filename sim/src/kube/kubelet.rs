//! The kubelet: each pod's containers through their lives — image pulled, sidecar started fresh, seid's start
//! wrapper waiting for mark-ready, seid running until its binary exits, CrashLoopBackOff with Kubernetes' back-off
//! — plus the sidecar tasks' completions and effects, and the faults that restart pods and nodes. A pod restart
//! replaces only its own state; a worker crash takes down every pod on the worker.

use rand::Rng;
use sei_operator::cluster::ObjectRef;
use serde_json::Value;

pub use super::pod::{
    BACKOFF_INITIAL, BACKOFF_MAX, BACKOFF_RESET_AFTER, DEFAULT_SIDECAR_PORT, PodRuntime, RestartPolicy, Seid,
    SidecarKind, Volume, target_height,
};
pub use super::pod_status::report_pods;
use super::scheduler::save_height;
pub use super::scheduler::sync_pods;
use crate::seid::{SeidExit, SeidRun};
use crate::sidecar::process::{self, SidecarTask};
use crate::state::{PanicRecord, WorldState};
use crate::trace::Category;

/// Moves every pod whose next transition is due at or before now, then reports changed statuses to the store.
pub fn advance_pods(world: &mut WorldState) {
    let due: Vec<ObjectRef> = world
        .pods
        .iter()
        .filter(|(_, pod)| pod.next_due(world).is_some_and(|t| t <= world.now))
        .map(|(key, _)| key.clone())
        .collect();
    for key in due {
        // A pod may take several transitions at one instant (pulled, then started, then crashed at once).
        for _ in 0..8 {
            let due_now = world.pods.get(&key).and_then(|p| p.next_due(world)).is_some_and(|t| t <= world.now);
            if !due_now {
                break;
            }
            settle_tasks(world, &key);
            advance_seid(world, &key);
        }
    }
}

/// Settles the sidecar tasks of `key` that are due: scripted failures, and the effects of completed tasks. Only
/// the runs of the pod's current sidecar process finish (see `sidecar::process`).
fn settle_tasks(world: &mut WorldState, key: &ObjectRef) {
    let now = world.now;
    let Some(pod) = world.pods.get(key) else { return };
    let Some(sidecar) = &pod.sidecar else { return };
    let Some(table) = process::table(world, pod) else { return };
    let chain = world.chain_for(pod.chain_id.as_deref());
    let height = match (&pod.seid, chain) {
        (Seid::Running { run, .. }, Some(chain)) => Some(run.height_at(chain, now)),
        _ => None,
    };
    let due: Vec<(uuid::Uuid, String, Option<Value>, Option<String>)> = table
        .values()
        .filter(|t| sidecar.runs(t))
        .filter(|t| match t.completes_at {
            Some(at) => at <= now,
            None => target_height(t.params.as_ref()).zip(height).is_some_and(|(target, h)| h >= target),
        })
        .map(|t| (t.id, t.type_.clone(), t.params.clone(), t.fails_with.clone()))
        .collect();
    for (id, type_, params, fails_with) in due {
        let node = world.pods.get(key).and_then(|p| p.node.clone());
        let image = world.pods.get(key).map(|p| p.image.clone()).unwrap_or_default();
        let rejected = world.registry.binary(&image).and_then(|b| b.fails_task.as_deref()) == Some(type_.as_str());
        let failure = if fails_with.is_some() {
            fails_with
        } else if rejected {
            Some(format!("{type_} rejected by {image}"))
        } else {
            crate::faults::take_task_failure(&mut world.task_failures, node.as_deref(), &type_)
        };
        let outcome = match failure {
            Some(error) => Err(error),
            None => {
                apply_task_effect(world, key, &type_, params.as_ref());
                Ok(())
            }
        };
        let text = match &outcome {
            Ok(()) => format!("{}/{} task {type_} {id} completed", key.namespace, key.name),
            Err(e) => format!("{}/{} task {type_} {id} failed: {e}", key.namespace, key.name),
        };
        if let Some(task) = process::tasks_mut(world, key).and_then(|t| t.get_mut(&id)) {
            task.outcome = Some(outcome);
            task.completed_at = Some(now);
        }
        world.record(Category::Sidecar, text);
    }
}

fn apply_task_effect(world: &mut WorldState, key: &ObjectRef, type_: &str, params: Option<&Value>) {
    let Some(pod) = world.pods.get(key) else { return };
    match type_ {
        "mark-ready" => {
            if let Some(sidecar) = world.pods.get_mut(key).and_then(|p| p.sidecar.as_mut()) {
                sidecar.ready = true;
            }
            // seid's start wrapper polls healthz and proceeds once it answers 200.
            if matches!(world.pods.get(key).map(|p| &p.seid), Some(Seid::WaitingForSidecar)) {
                start_seid(world, key);
            }
        }
        "snapshot-restore" => {
            let Some(chain) = world.chain_for(pod.chain_id.as_deref()) else { return };
            let Some(volume) = pod.volume.clone() else { return };
            // targetHeight 0 (or none) asks for the newest snapshot, with no height target (the SeiNode API's
            // meaning of `s3.targetHeight: 0`).
            let target = target_height(params).filter(|t| *t > 0).unwrap_or(u64::MAX).min(chain.tip(world.now));
            let snapshot = chain.snapshot_at_or_below(target);
            world.volumes.entry(volume).or_default().height = snapshot;
            world.record(
                Category::Chain,
                format!("{}/{} restored snapshot at height {snapshot}", key.namespace, key.name),
            );
        }
        "await-condition" if params.and_then(|p| p.get("action")).and_then(Value::as_str) == Some("SIGTERM_SEID") => {
            stop_seid(world, key, SeidExit::Terminated);
        }
        _ => {}
    }
}

/// Moves the seid container one transition forward, if one is due.
fn advance_seid(world: &mut WorldState, key: &ObjectRef) {
    let now = world.now;
    let Some(pod) = world.pods.get(key) else { return };
    match &pod.seid {
        Seid::Pulling { until } if *until <= now => {
            let (worker, image) = (pod.worker, pod.image.clone());
            if let Some(state) = world.workers.get_mut(worker) {
                state.image_cache.insert(image);
            }
            start_containers(world, key);
        }
        Seid::BackOff { until, .. } if *until <= now => start_seid(world, key),
        Seid::Running { run, .. } => {
            if let Some((_, exit)) = run.exit.clone().filter(|(at, _)| *at <= now) {
                stop_seid(world, key, exit);
            }
        }
        _ => {}
    }
}

/// Starts the pod's containers after a pull, a pod restart or its node coming back: a new sidecar process (not
/// ready; the task table on the volume kept, its running tasks re-run) and seid's start wrapper.
fn start_containers(world: &mut WorldState, key: &ObjectRef) {
    let incarnation = next_incarnation(world);
    let Some(pod) = world.pods.get_mut(key) else { return };
    pod.sidecar = None;
    if pod.sidecar_port.is_some() {
        process::start(world, key, incarnation);
    }
    let Some(pod) = world.pods.get(key) else { return };
    let worker = pod.worker;
    if pod.bootstrap {
        bootstrap_on_its_own(world, key);
    }
    world.touch_worker(worker);
    start_seid(world, key);
}

/// A bootstrap Job's sidecar (`SEI_BOOTSTRAP=true`, the operator's contract with seictl): nobody submits tasks
/// to a Job's pod, so at every start it queues its own `snapshot-restore` of the newest snapshot at or below the
/// halt height, then `mark-ready` — seid's start wrapper then runs it up to `--halt-height`.
fn bootstrap_on_its_own(world: &mut WorldState, key: &ObjectRef) {
    let now = world.now;
    let duration = |world: &WorldState, task: &str| {
        world.timings.task_durations.get(task).copied().unwrap_or(world.timings.default_task_duration)
    };
    let restored_at = now + duration(world, "snapshot-restore");
    let ready_at = restored_at + duration(world, "mark-ready");
    let ids = [uuid::Uuid::from_u128(world.rng.random()), uuid::Uuid::from_u128(world.rng.random())];
    let Some(pod) = world.pods.get(key) else { return };
    let params = pod.halt_height.map(|h| serde_json::json!({ "targetHeight": h }));
    let Some(executor) = pod.sidecar.as_ref().map(|s| s.incarnation) else { return };
    let Some(table) = process::tasks_mut(world, key) else { return };
    for (id, (type_, params, completes_at)) in
        ids.into_iter().zip([("snapshot-restore", params, restored_at), ("mark-ready", None, ready_at)])
    {
        let task = SidecarTask {
            id,
            type_: type_.to_owned(),
            params,
            run: 1,
            submitted_at: now,
            executor,
            completes_at: Some(completes_at),
            fails_with: None,
            outcome: None,
            completed_at: None,
        };
        table.insert(id, task);
    }
    world.record(Category::Sidecar, format!("{}/{} bootstrapping on its own", key.namespace, key.name));
}

/// Starts seid: at once without a sidecar or with a ready one, else its wrapper waits for mark-ready.
pub fn start_seid(world: &mut WorldState, key: &ObjectRef) {
    let now = world.now;
    let Some(pod) = world.pods.get(key) else { return };
    let node_speed = pod.node.as_ref().and_then(|node| world.timings.sync_speed_by_node.get(node));
    let sync_speed = node_speed.copied().unwrap_or(world.timings.sync_speed);
    let blocked = pod.sidecar_kind == SidecarKind::BlockingInit;
    if blocked || (pod.sidecar_port.is_some() && !pod.sidecar.as_ref().is_some_and(|s| s.ready)) {
        if let Some(pod) = world.pods.get_mut(key) {
            pod.seid = Seid::WaitingForSidecar;
        }
        return;
    }
    let height = pod.volume.as_ref().and_then(|v| world.volumes.get(v)).map_or(0, |v| v.height);
    let (Some(chain), Some(binary)) = (world.chain_for(pod.chain_id.as_deref()), world.registry.binary(&pod.image))
    else {
        return;
    };
    let run = SeidRun::start(chain, binary, now, height, sync_speed, pod.halt_height);
    let binary = binary.clone();
    let text = format!("{}/{} seid {} started at height {height}", key.namespace, key.name, binary.version);
    let incarnation = next_incarnation(world);
    if let Some(pod) = world.pods.get_mut(key) {
        pod.seid = Seid::Running { run, binary, rpc_incarnation: incarnation };
        let worker = pod.worker;
        world.touch_worker(worker);
    }
    world.record(Category::Pod, text);
    // A run that ends the moment it starts (crash on start, already past the halt height) ends now.
    advance_seid(world, key);
}

/// Stops a running seid with `exit`: its height is saved, a panic is recorded, and the restart policy decides.
fn stop_seid(world: &mut WorldState, key: &ObjectRef, exit: SeidExit) {
    let now = world.now;
    let Some(pod) = world.pods.get(key).cloned() else { return };
    let Seid::Running { run, .. } = &pod.seid else { return };
    save_height(world, &pod);
    let height = world.chain_for(pod.chain_id.as_deref()).map_or(0, |c| run.height_at(c, now));
    world.record(
        Category::Chain,
        format!("{}/{} seid {} at height {height}: {}", key.namespace, key.name, pod.image, exit.describe()),
    );
    if exit.exit_code() != 0 {
        world.panics.push(PanicRecord {
            at: now,
            namespace: key.namespace.clone(),
            node: pod.node.clone(),
            pod: key.name.clone(),
            image: pod.image.clone(),
            reason: exit.describe(),
            upgrade_panic: exit.is_upgrade_panic(),
        });
    }
    let ran_long = now.saturating_sub(run.started_at) >= BACKOFF_RESET_AFTER;
    let restart = match pod.restart_policy {
        RestartPolicy::Always => true,
        RestartPolicy::OnFailure => exit.exit_code() != 0,
        RestartPolicy::Never => false,
    };
    let Some(pod) = world.pods.get_mut(key) else { return };
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

fn next_incarnation(world: &mut WorldState) -> u64 {
    world.controllers.next_incarnation += 1;
    world.controllers.next_incarnation
}

/// Restarts every container of a pod (a pod crash): the sidecar comes back not ready (its task table on the
/// volume kept), seid waits for mark-ready.
pub fn restart_pod(world: &mut WorldState, key: &ObjectRef) {
    let Some(pod) = world.pods.get(key).cloned() else { return };
    if !matches!(pod.seid, Seid::Running { .. } | Seid::WaitingForSidecar | Seid::BackOff { .. }) {
        return;
    }
    save_height(world, &pod);
    if let Some(pod) = world.pods.get_mut(key) {
        pod.restarts += 1;
    }
    world.record(Category::Pod, format!("{}/{} containers restarted", key.namespace, key.name));
    start_containers(world, key);
}

/// Restarts only the sidecar container: seid keeps running (its wrapper waited only at start), the sidecar
/// comes back Initializing, with its task table (on the volume) and its running tasks re-run.
pub fn restart_sidecar(world: &mut WorldState, key: &ObjectRef) {
    let incarnation = next_incarnation(world);
    let Some(pod) = world.pods.get(key) else { return };
    if pod.sidecar.is_none() {
        return;
    }
    let worker = pod.worker;
    process::start(world, key, incarnation);
    world.touch_worker(worker);
    world.record(Category::Pod, format!("{}/{} sidecar restarted", key.namespace, key.name));
}

/// A worker node goes down: every pod on it loses its processes (heights on volumes survive).
pub fn worker_down(world: &mut WorldState, worker: usize) {
    let keys: Vec<ObjectRef> = world.pods.iter().filter(|(_, p)| p.worker == worker).map(|(k, _)| k.clone()).collect();
    for key in keys {
        if let Some(pod) = world.pods.get(&key).cloned() {
            save_height(world, &pod);
        }
        // Only live containers go down with the node; a finished pod stays finished.
        if let Some(pod) = world.pods.get_mut(&key)
            && matches!(
                pod.seid,
                Seid::Pulling { .. } | Seid::WaitingForSidecar | Seid::Running { .. } | Seid::BackOff { .. }
            )
        {
            pod.seid = Seid::NodeDown;
            pod.sidecar = None;
        }
    }
    let now = world.now;
    if let Some(state) = world.workers.get_mut(worker) {
        state.up = false;
        state.down_since = Some(now);
        state.marked_not_ready = false;
    }
    world.touch_worker(worker);
}

/// A worker node comes back (a reboot): the kubelet restarts the containers of its pods, counting a restart.
pub fn worker_up(world: &mut WorldState, worker: usize) {
    if let Some(state) = world.workers.get_mut(worker) {
        state.up = true;
        state.down_since = None;
        state.marked_not_ready = false;
    }
    // Its kubelet reports again: Terminating pods on it can now be confirmed gone.
    world.controllers.force_sync = true;
    let keys: Vec<ObjectRef> = world
        .pods
        .iter()
        .filter(|(_, p)| p.worker == worker && p.seid == Seid::NodeDown)
        .map(|(k, _)| k.clone())
        .collect();
    for key in keys {
        if let Some(pod) = world.pods.get_mut(&key) {
            pod.restarts += 1;
        }
        start_containers(world, &key);
    }
    world.touch_worker(worker);
}
