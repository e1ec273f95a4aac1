//! The kubelet: each pod's containers through their lives, as the pod spec says — image pulled, init containers
//! in order (`seid init` on a volume without a genesis), the sidecar started, the seid container running its
//! command (the operator's wrapper polling the sidecar's healthz before it starts seid, or seid at once), seid
//! running until its binary exits, the container's exit code as its command makes it, CrashLoopBackOff with
//! Kubernetes' back-off, and the startup and readiness probes the spec declares — plus the sidecar tasks'
//! completions and effects, and the faults that restart pods and nodes. A pod restart replaces only its own
//! state; a worker crash takes down every pod on the worker.

use sei_operator_core::cluster::ObjectRef;
use serde_json::Value;

use super::pod::startup_deadline;
pub use super::pod::{
    BACKOFF_INITIAL, BACKOFF_MAX, BACKOFF_RESET_AFTER, DEFAULT_SIDECAR_PORT, InitContainer, InitKind, LAG_THRESHOLD,
    PodRuntime, Probe, ProbeAction, ProbeState, Probes, RestartPolicy, Seid, SeidCommand, SidecarKind, Termination,
    Volume, target_height,
};
pub use super::pod_status::report_pods;
use super::scheduler::save_height;
pub use super::scheduler::sync_pods;
pub use super::seid_container::begin_restart_seid;
use super::seid_container::{kill_container, stop_seid};
use crate::harness::state::WorldState;
use crate::harness::trace::Category;
use crate::node::seid::{SeidConfig, SeidExit, SeidRun};
use crate::node::sidecar::process;

/// Moves every pod whose next transition is due at or before now, then reports changed statuses to the store.
pub fn advance_pods(world: &mut WorldState) {
    let due: Vec<ObjectRef> = world
        .plane
        .pods
        .iter()
        .filter(|(_, pod)| pod.next_due(&world.pod_env()).is_some_and(|t| t <= world.now))
        .map(|(key, _)| key.clone())
        .collect();
    for key in due {
        // A pod may take several transitions at one instant (pulled, then started, then crashed at once).
        for _ in 0..8 {
            let due_now =
                world.plane.pods.get(&key).and_then(|p| p.next_due(&world.pod_env())).is_some_and(|t| t <= world.now);
            if !due_now {
                break;
            }
            settle_tasks(world, &key);
            advance_seid(world, &key);
            advance_probes(world, &key);
        }
    }
}

/// Settles the sidecar tasks of `key` that are due: scripted failures, and the effects of completed tasks. Only
/// the runs of the pod's current sidecar process finish (see `sidecar::process`).
fn settle_tasks(world: &mut WorldState, key: &ObjectRef) {
    let now = world.now;
    let Some(pod) = world.plane.pods.get(key) else { return };
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
            _ if t.type_ == RESTART_SEID && t.fails_with.is_none() && height.is_some() => true,
            Some(at) => at <= now,
            None => target_height(t.params.as_ref()).zip(height).is_some_and(|(target, h)| h >= target),
        })
        .map(|t| (t.id, t.type_.clone(), t.params.clone(), t.fails_with.clone()))
        .collect();
    for (id, type_, params, fails_with) in due {
        let node = world.plane.pods.get(key).and_then(|p| p.node.clone());
        let image = world.plane.pods.get(key).map(|p| p.image.clone()).unwrap_or_default();
        let rejected =
            world.chains.registry.binary(&image).and_then(|b| b.fails_task.as_deref()) == Some(type_.as_str());
        let failure = if fails_with.is_some() {
            fails_with
        } else if type_ == RESTART_SEID && height.is_none() {
            Some(format!("seid RPC did not come up within {:?} after restart", process::RESTART_SEID_UP_TIMEOUT))
        } else if rejected {
            Some(format!("{type_} rejected by {image}"))
        } else {
            crate::harness::fault_state::take_task_failure(&mut world.task_failures, node.as_deref(), &type_)
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
    let now = world.now;
    let Some(pod) = world.plane.pods.get(key) else { return };
    match type_ {
        "mark-ready" => {
            // healthz answers 200 from now on; a wrapper waiting for it proceeds at its next poll.
            let now = world.now;
            if let Some(pod) = world.plane.pods.get_mut(key)
                && let Some(sidecar) = pod.sidecar.as_mut()
                && !sidecar.ready
            {
                sidecar.ready = true;
                pod.healthz_ready_at = Some(now);
            }
        }
        "config-apply" => {
            // seictl writes the node's config into its home, the volume (`sidecar/tasks/config_apply.go`), whole:
            // what an earlier `discover-peers` wrote is replaced by the defaults' peers.
            if let Some(volume) = pod.volume.clone() {
                let written = world.plane.volumes.entry(volume).or_default();
                written.configured = true;
                let overrides = params.and_then(|p| p.get("overrides")).cloned().unwrap_or(Value::Null);
                written.config = Some(SeidConfig { overrides, peers: Value::Null });
                written.config_written_at = Some(now);
            }
        }
        "discover-peers" => {
            if let Some(volume) = pod.volume.clone() {
                let written = world.plane.volumes.entry(volume).or_default();
                written.config.get_or_insert_with(SeidConfig::default).peers = params.cloned().unwrap_or(Value::Null);
                written.config_written_at = Some(now);
            }
        }
        "snapshot-restore" => {
            let Some(chain) = world.chain_for(pod.chain_id.as_deref()) else { return };
            let Some(volume) = pod.volume.clone() else { return };
            // targetHeight 0 (or none) asks for the newest snapshot, with no height target (the SeiNode API's
            // meaning of `s3.targetHeight: 0`).
            let target = target_height(params).filter(|t| *t > 0).unwrap_or(u64::MAX).min(chain.tip(world.now));
            let snapshot = chain.snapshot_at_or_below(target);
            let restored = world.plane.volumes.entry(volume).or_default();
            restored.height = snapshot;
            restored.restored_height = Some(snapshot);
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
    let Some(pod) = world.plane.pods.get(key) else { return };
    match &pod.seid {
        Seid::Pulling { until } if *until <= now => {
            let (worker, image) = (pod.worker, pod.image.clone());
            if let Some(state) = world.plane.workers.get_mut(worker) {
                state.image_cache.insert(image);
            }
            start_containers(world, key);
        }
        Seid::BackOff { until, .. } if *until <= now => start_seid(world, key),
        // The wrapper polls the sidecar's healthz every 5 s and starts seid at the first poll answered 200.
        Seid::WaitingForSidecar if pod.wrapper_proceeds_at().is_some_and(|at| at <= now) => {
            world.record(
                Category::Pod,
                format!("{}/{} wrapper: sidecar healthz 200, starting seid", key.namespace, key.name),
            );
            run_seid(world, key);
        }
        Seid::Running { run, .. } => {
            if let Some((_, exit)) = run.exit.clone().filter(|(at, _)| *at <= now) {
                stop_seid(world, key, exit);
            }
        }
        _ => {}
    }
}

/// The prober's decisions for the seid container that are due (kubernetes/kubernetes `pkg/kubelet/prober/worker.go`,
/// `doProbe`): the startup probe's success — `started`, and the readiness worker starts — or its last allowed
/// failure, which kills the container (`pkg/kubelet/kuberuntime/kuberuntime_manager.go`, `computePodActions`);
/// readiness verdicts flipping after `successThreshold` successes or `failureThreshold` failures in a row.
fn advance_probes(world: &mut WorldState, key: &ObjectRef) {
    let now = world.now;
    let Some(pod) = world.plane.pods.get(key) else { return };
    if !pod.seid_container_running() {
        return;
    }
    let label = format!("{}/{}", key.namespace, key.name);
    if pod.probe_state.started_at.is_none() {
        let Some(probe) = pod.probes.startup.clone() else { return };
        match pod.startup_succeeds_at(&world.pod_env()) {
            Some(at) if at <= now => {
                if let Some(pod) = world.plane.pods.get_mut(key) {
                    pod.probe_state.started_at = Some(at);
                }
                world.plane.controllers.kubelet_dirty = true;
                world.record(Category::Pod, format_args!("{label} seid container started (startup probe passed)"));
            }
            _ if startup_deadline(&probe, pod.probe_state.container_started_at) <= now => {
                let text = format!("{label} startup probe failed {} times in a row", probe.failure_threshold);
                world.record(Category::Pod, text);
                kill_container(world, key, SeidExit::KilledByStartupProbe);
                return;
            }
            _ => return,
        }
    }
    let Some(pod) = world.plane.pods.get(key) else { return };
    let Some(at) = pod.readiness_flips_at(&world.pod_env()).filter(|at| *at <= now) else { return };
    let Some(pod) = world.plane.pods.get_mut(key) else { return };
    pod.probe_state.ready = !pod.probe_state.ready;
    pod.probe_state.ready_changed_at = Some(at);
    let verdict = if pod.probe_state.ready { "ready" } else { "not ready" };
    world.plane.controllers.kubelet_dirty = true;
    world.record(Category::Pod, format_args!("{label} readiness probe: seid container {verdict}"));
}

/// Starts the pod's containers after a pull, a pod restart or its node coming back: a new sidecar process (not
/// ready; the task table on the volume kept, its running tasks re-run) and seid's start wrapper.
fn start_containers(world: &mut WorldState, key: &ObjectRef) {
    run_init_containers(world, key);
    let incarnation = next_incarnation(world);
    let Some(pod) = world.plane.pods.get_mut(key) else { return };
    pod.sidecar = None;
    if pod.sidecar_port.is_some() {
        process::start(world, key, incarnation);
    }
    let Some(pod) = world.plane.pods.get(key) else { return };
    let worker = pod.worker;
    world.touch_worker(worker);
    start_seid(world, key);
}

/// The pod's init containers, in spec order, each before the next starts (the native sidecar's own start
/// follows them, in `start_containers`): `seid-init` runs `seid init` on a volume that holds no genesis — and,
/// guarded as the operator's script is (`workload::seid_init_script`), nothing on one that does. They take no
/// simulated time. Without a volume, `seid init` writes into its own container's filesystem, which seid never
/// sees. Not modelled: an unguarded `seid init` on an initialized volume (it fails, "genesis.json file already
/// exists": sei-protocol/sei-chain `sei-cosmos/x/genutil/client/cli/init.go`), and init containers failing.
fn run_init_containers(world: &mut WorldState, key: &ObjectRef) {
    let Some(pod) = world.plane.pods.get(key) else { return };
    let inits: Vec<(String, InitKind)> = pod.init_containers.iter().map(|c| (c.name.clone(), c.kind)).collect();
    let volume = pod.volume.clone();
    for (name, kind) in inits {
        let InitKind::SeidInit { guarded } = kind else { continue };
        let Some(volume) = &volume else { continue };
        let state = world.plane.volumes.entry(volume.clone()).or_default();
        let text = if !state.initialized {
            state.initialized = true;
            format!("{}/{} init container {name}: seid init on {}", key.namespace, key.name, volume.name)
        } else if guarded {
            format!("{}/{} init container {name}: {} already initialized", key.namespace, key.name, volume.name)
        } else {
            format!(
                "{}/{} init container {name}: unguarded seid init on an initialized volume (not modelled)",
                key.namespace, key.name
            )
        };
        world.record(Category::Pod, text);
    }
}

/// Starts the seid container (after its init containers, or a crash's back-off): the prober starts afresh, and
/// the command decides — the operator's wrapper first polls the sidecar's healthz (at once, then every 5 s),
/// any other command starts seid at once, whatever the sidecar says (seid waits for nothing: docs/design.md §2).
pub fn start_seid(world: &mut WorldState, key: &ObjectRef) {
    let now = world.now;
    let Some(pod) = world.plane.pods.get_mut(key) else { return };
    pod.probe_state = ProbeState {
        container_started_at: now,
        // No startup probe: the container counts as started at once.
        started_at: pod.probes.startup.is_none().then_some(now),
        ..ProbeState::default()
    };
    if pod.sidecar_kind == SidecarKind::BlockingInit {
        // A plain init container that never exits: the main containers never start.
        pod.seid = Seid::WaitingForSidecar;
        return;
    }
    if pod.command.waits_for.is_some() {
        // The wrapper's first poll is at once: a sidecar already answering 200 lets seid start now.
        pod.seid = Seid::WaitingForSidecar;
        let worker = pod.worker;
        world.touch_worker(worker);
        if world.plane.pods.get(key).and_then(PodRuntime::wrapper_proceeds_at).is_some_and(|at| at <= now) {
            run_seid(world, key);
        }
        return;
    }
    run_seid(world, key);
}

/// seid's process starts (`seid start`, with the halt height of its command) on what its volume holds: from the
/// volume's height, or a panic at once on a volume with no genesis. The moment is checked against the node's
/// preparation (`Observer::on_seid_start`).
fn run_seid(world: &mut WorldState, key: &ObjectRef) {
    let now = world.now;
    world.observer.on_seid_start(world, key);
    let Some(pod) = world.plane.pods.get(key) else { return };
    let node_speed = pod.node.as_ref().and_then(|node| world.timings.sync_speed_by_node.get(node));
    let sync_speed = node_speed.copied().unwrap_or(world.timings.sync_speed);
    let volume = pod.volume.as_ref().and_then(|v| world.plane.volumes.get(v));
    let height = volume.map_or(0, |v| v.height);
    // Without a volume seid's home is the container's own empty filesystem.
    let initialized = volume.is_some_and(|v| v.initialized);
    let (Some(chain), Some(binary)) =
        (world.chain_for(pod.chain_id.as_deref()), world.chains.registry.binary(&pod.image))
    else {
        return;
    };
    let mut run = SeidRun::start(chain, binary, now, height, sync_speed, pod.command.halt_height);
    run.config = volume.and_then(|v| v.config.clone()).map(Box::new);
    if !initialized {
        run.last_block = Some(height);
        run.exit = Some((now, SeidExit::NoGenesis));
    }
    let binary = binary.clone();
    let text = format!("{}/{} seid {} started at height {height}", key.namespace, key.name, binary.version);
    let incarnation = next_incarnation(world);
    if let Some(pod) = world.plane.pods.get_mut(key) {
        pod.seid = Seid::Running { run, binary, rpc_incarnation: incarnation };
        let worker = pod.worker;
        world.touch_worker(worker);
    }
    world.record(Category::Pod, text);
    // A run that ends the moment it starts (crash on start, already past the halt height) ends now.
    advance_seid(world, key);
    // A `restart-seid` waiting for seid's RPC sees it serve now.
    let restarting = world.plane.pods.get(key).zip(process::tasks(world, key)).is_some_and(|(pod, table)| {
        pod.sidecar.as_ref().is_some_and(|s| table.values().any(|t| s.runs(t) && t.type_ == RESTART_SEID))
    });
    if restarting {
        settle_tasks(world, key);
    }
}

const RESTART_SEID: &str = "restart-seid";

fn next_incarnation(world: &mut WorldState) -> u64 {
    world.plane.controllers.next_incarnation += 1;
    world.plane.controllers.next_incarnation
}

/// Restarts every container of a pod (a pod crash): the sidecar comes back not ready (its task table on the
/// volume kept), seid waits for mark-ready.
pub fn restart_pod(world: &mut WorldState, key: &ObjectRef) {
    let Some(pod) = world.plane.pods.get(key).cloned() else { return };
    if !matches!(pod.seid, Seid::Running { .. } | Seid::WaitingForSidecar | Seid::BackOff { .. }) {
        return;
    }
    save_height(world, &pod);
    if let Some(pod) = world.plane.pods.get_mut(key) {
        pod.restarts += 1;
        // Every container restarts, the sidecar too: its restartCount moves with seid's.
        if pod.sidecar_port.is_some() {
            pod.sidecar_restarts += 1;
        }
    }
    world.record(Category::Pod, format_args!("{}/{} containers restarted", key.namespace, key.name));
    start_containers(world, key);
}

/// Restarts only the sidecar container: seid keeps running (its wrapper waited only at start), the sidecar
/// comes back Initializing, with its task table (on the volume) and its running tasks re-run.
pub fn restart_sidecar(world: &mut WorldState, key: &ObjectRef) {
    let incarnation = next_incarnation(world);
    let Some(pod) = world.plane.pods.get(key) else { return };
    if pod.sidecar.is_none() {
        return;
    }
    let worker = pod.worker;
    process::start(world, key, incarnation);
    if let Some(pod) = world.plane.pods.get_mut(key) {
        pod.sidecar_restarts += 1;
    }
    world.touch_worker(worker);
    world.record(Category::Pod, format_args!("{}/{} sidecar restarted", key.namespace, key.name));
}

/// A worker node goes down: every pod on it loses its processes (heights on volumes survive).
pub fn worker_down(world: &mut WorldState, worker: usize) {
    let keys: Vec<ObjectRef> =
        world.plane.pods.iter().filter(|(_, p)| p.worker == worker).map(|(k, _)| k.clone()).collect();
    for key in keys {
        if let Some(pod) = world.plane.pods.get(&key).cloned() {
            save_height(world, &pod);
        }
        // Only live containers go down with the node; a finished pod stays finished.
        if let Some(pod) = world.plane.pods.get_mut(&key)
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
    if let Some(state) = world.plane.workers.get_mut(worker) {
        state.up = false;
        state.down_since = Some(now);
        state.marked_not_ready = false;
    }
    world.touch_worker(worker);
}

/// A worker node comes back (a reboot): the kubelet restarts the containers of its pods, counting a restart.
pub fn worker_up(world: &mut WorldState, worker: usize) {
    if let Some(state) = world.plane.workers.get_mut(worker) {
        state.up = true;
        state.down_since = None;
        state.marked_not_ready = false;
    }
    // Its kubelet reports again: Terminating pods on it can now be confirmed gone.
    world.plane.controllers.force_sync = true;
    let keys: Vec<ObjectRef> = world
        .plane
        .pods
        .iter()
        .filter(|(_, p)| p.worker == worker && p.seid == Seid::NodeDown)
        .map(|(k, _)| k.clone())
        .collect();
    for key in keys {
        if let Some(pod) = world.plane.pods.get_mut(&key) {
            pod.restarts += 1;
            if pod.sidecar_port.is_some() {
                pod.sidecar_restarts += 1;
            }
        }
        start_containers(world, &key);
    }
    world.touch_worker(worker);
}
