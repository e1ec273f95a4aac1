//! The kubelet and scheduler of the fake cluster: pods found in the store are scheduled onto worker nodes, pull
//! their image, start the sidecar and seid containers, crash-loop with Kubernetes' back-off, and report their
//! status back to the store. Each pod's state lives here, keyed by the pod; a pod restart replaces only its own
//! state, a worker crash takes down every pod on the worker.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Pod};
use sei_operator::cluster::ObjectRef;
use sei_operator::meta::LABEL_NODE;
use serde_json::{Value, json};

use crate::registry::Binary;
use crate::seid::{SeidExit, SeidRun};
use crate::sidecar::process::SidecarProcess;
use crate::state::{PanicRecord, WorldState};
use crate::trace::Category;

/// The kubelet's container restart back-off: 10 s, doubling, capped at 5 minutes, and reset once a container
/// has run for 10 minutes (Kubernetes' `CrashLoopBackOff`).
pub const BACKOFF_INITIAL: Duration = Duration::from_secs(10);
pub const BACKOFF_MAX: Duration = Duration::from_secs(300);
pub const BACKOFF_RESET_AFTER: Duration = Duration::from_secs(600);

/// The sidecar's default port, when its container declares none.
pub const DEFAULT_SIDECAR_PORT: u16 = 7777;

/// First port handed to pods on a worker; each pod takes two (sidecar, seid RPC).
const FIRST_POD_PORT: u16 = 20_000;

/// A node's chain data on a PersistentVolumeClaim: it survives pod restarts and deletions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Volume {
    pub height: u64,
}

/// The pod's `restartPolicy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestartPolicy {
    Always,
    OnFailure,
    Never,
}

/// The seid container.
#[derive(Clone, Debug, PartialEq)]
pub enum Seid {
    /// Not placed on a worker yet (no worker is up).
    Unscheduled,
    Pulling {
        until: Duration,
    },
    /// The image is unknown or refused: never runs, never Ready.
    ImagePullBackOff,
    /// The container runs its start wrapper, which waits for the sidecar's healthz (a `mark-ready`).
    WaitingForSidecar,
    Running {
        run: SeidRun,
        binary: Binary,
        rpc_incarnation: u64,
    },
    /// CrashLoopBackOff: restarts at `until`.
    BackOff {
        until: Duration,
        last_exit: SeidExit,
    },
    /// Exited for good (restartPolicy Never, or OnFailure after a clean exit).
    Terminated {
        exit: SeidExit,
    },
    /// Its worker node is down.
    NodeDown,
}

/// One pod's runtime state.
#[derive(Clone, Debug, PartialEq)]
pub struct PodRuntime {
    pub key: ObjectRef,
    pub uid: String,
    /// The SeiNode it serves (`sei.io/node` label).
    pub node: Option<String>,
    pub chain_id: Option<String>,
    /// `spec.hostname` (the pod's name when unset) and `spec.subdomain`: its DNS name under a headless Service.
    pub hostname: String,
    pub subdomain: Option<String>,
    pub worker: usize,
    pub slot: u16,
    pub image: String,
    /// The port the sidecar container declares; `None`: the pod has no sidecar, seid starts on its own.
    pub sidecar_port: Option<u16>,
    pub halt_height: Option<u64>,
    pub volume: Option<ObjectRef>,
    pub restart_policy: RestartPolicy,
    pub seid: Seid,
    pub restarts: u32,
    /// Crashes since the container last ran 10 minutes: the back-off exponent.
    pub consecutive_crashes: u32,
    pub sidecar: Option<SidecarProcess>,
    /// The status last written to the store.
    pub reported: Value,
}

impl PodRuntime {
    /// The port on its worker where its sidecar listens.
    pub fn sidecar_worker_port(&self) -> u16 {
        FIRST_POD_PORT + 2 * self.slot
    }

    /// The port on its worker where its seid RPC listens.
    pub fn rpc_worker_port(&self) -> u16 {
        FIRST_POD_PORT + 2 * self.slot + 1
    }

    /// Ready: seid runs (after mark-ready) and has not exited, and its node is up.
    pub fn is_ready(&self) -> bool {
        matches!(self.seid, Seid::Running { .. }) && (self.sidecar_port.is_none() || self.sidecar.is_some())
    }

    /// The earliest simulated time at which this pod changes on its own.
    pub fn next_due(&self, world: &WorldState) -> Option<Duration> {
        let seid = match &self.seid {
            Seid::Pulling { until } | Seid::BackOff { until, .. } => Some(*until),
            Seid::Running { run, .. } => {
                let awaited = self.sidecar.as_ref().and_then(|s| {
                    let chain = world.chain_for(self.chain_id.as_deref())?;
                    s.tasks
                        .values()
                        .filter(|t| t.outcome.is_none() && t.completes_at.is_none())
                        .filter_map(|t| run.reach(chain, target_height(t.params.as_ref())?))
                        .min()
                });
                [run.exit.as_ref().map(|(t, _)| *t), awaited].into_iter().flatten().min()
            }
            _ => None,
        };
        [seid, self.sidecar.as_ref().and_then(SidecarProcess::next_due)].into_iter().flatten().min()
    }
}

/// The `targetHeight` of an `await-condition` task's params.
pub fn target_height(params: Option<&Value>) -> Option<u64> {
    params?.get("targetHeight")?.as_u64()
}

/// Brings pod runtimes in line with the store: new pods are scheduled and started, deleted ones are killed.
pub fn sync_pods(world: &mut WorldState) {
    // Live pods by key, with their uid: a pod deleted and recreated under the same name is a new pod.
    let stored: BTreeMap<ObjectRef, String> = world
        .store
        .all_of_kind("Pod")
        .filter(|(_, v)| !crate::store::is_deleting(v))
        .map(|(k, v)| (k.clone(), v.pointer("/metadata/uid").and_then(Value::as_str).unwrap_or_default().to_owned()))
        .collect();
    let gone: Vec<ObjectRef> = world
        .pods
        .iter()
        .filter(|(key, runtime)| stored.get(*key) != Some(&runtime.uid))
        .map(|(key, _)| key.clone())
        .collect();
    for key in gone {
        kill_pod(world, &key);
    }
    for key in stored.into_keys() {
        if !world.pods.contains_key(&key)
            && let Some(value) = world.store.get(&key, None).cloned()
        {
            start_pod(world, key, &value);
        }
    }
    let unscheduled: Vec<ObjectRef> =
        world.pods.iter().filter(|(_, p)| p.seid == Seid::Unscheduled).map(|(k, _)| k.clone()).collect();
    for key in unscheduled {
        schedule(world, &key);
    }
}

fn kill_pod(world: &mut WorldState, key: &ObjectRef) {
    let Some(pod) = world.pods.remove(key) else { return };
    save_height(world, &pod);
    world.record(Category::Pod, format!("{}/{} killed (deleted)", key.namespace, key.name));
    world.touch_worker(pod.worker);
}

/// Saves a running seid's height to its volume (the chain data it committed so far).
fn save_height(world: &mut WorldState, pod: &PodRuntime) {
    if let (Seid::Running { run, .. }, Some(volume)) = (&pod.seid, &pod.volume) {
        let Some(chain) = world.chain_for(pod.chain_id.as_deref()) else { return };
        let height = run.height_at(chain, world.now);
        world.volumes.entry(volume.clone()).or_default().height = height;
    }
}

fn start_pod(world: &mut WorldState, key: ObjectRef, value: &Value) {
    let pod: Option<Pod> = serde_json::from_value(value.clone()).ok();
    let spec = pod.as_ref().and_then(|p| p.spec.clone()).unwrap_or_default();
    let is_sidecar = |c: &&Container| c.name == "sidecar" || c.name == "seictl";
    let seid =
        spec.containers.iter().find(|c| c.name == "seid").or_else(|| spec.containers.iter().find(|c| !is_sidecar(c)));
    let sidecar = spec.containers.iter().chain(spec.init_containers.iter().flatten()).find(is_sidecar);
    let sidecar_port = sidecar.map(|c| {
        c.ports
            .iter()
            .flatten()
            .next()
            .and_then(|p| u16::try_from(p.container_port).ok())
            .unwrap_or(DEFAULT_SIDECAR_PORT)
    });
    let node = pod.as_ref().and_then(|p| p.metadata.labels.as_ref()).and_then(|labels| labels.get(LABEL_NODE)).cloned();
    let chain_id = node.as_ref().and_then(|node| {
        world
            .store
            .get(&ObjectRef::new("SeiNode", &key.namespace, node), None)?
            .pointer("/spec/chainId")?
            .as_str()
            .map(str::to_owned)
    });
    let volume = spec
        .volumes
        .iter()
        .flatten()
        .find_map(|v| v.persistent_volume_claim.as_ref())
        .map(|claim| ObjectRef::new("PersistentVolumeClaim", &key.namespace, &claim.claim_name));
    let restart_policy = match spec.restart_policy.as_deref() {
        Some("Never") => RestartPolicy::Never,
        Some("OnFailure") => RestartPolicy::OnFailure,
        _ => RestartPolicy::Always,
    };
    let runtime = PodRuntime {
        uid: value.pointer("/metadata/uid").and_then(Value::as_str).unwrap_or_default().to_owned(),
        node,
        chain_id,
        hostname: spec.hostname.clone().unwrap_or_else(|| key.name.clone()),
        subdomain: spec.subdomain.clone(),
        worker: 0,
        slot: 0,
        image: seid.and_then(|c| c.image.clone()).unwrap_or_default(),
        sidecar_port,
        halt_height: seid.and_then(halt_height),
        volume,
        restart_policy,
        seid: Seid::Unscheduled,
        restarts: 0,
        consecutive_crashes: 0,
        sidecar: None,
        reported: Value::Null,
        key: key.clone(),
    };
    world.record(Category::Pod, format!("{}/{} created, image {}", key.namespace, key.name, runtime.image));
    world.pods.insert(key.clone(), runtime);
    schedule(world, &key);
}

/// `--halt-height N` or `--halt-height=N` among the container's command and args.
fn halt_height(container: &Container) -> Option<u64> {
    let words: Vec<&str> =
        container.command.iter().flatten().chain(container.args.iter().flatten()).map(String::as_str).collect();
    words.iter().enumerate().find_map(|(i, word)| match word.strip_prefix("--halt-height") {
        Some("") => words.get(i + 1)?.parse().ok(),
        Some(rest) => rest.strip_prefix('=')?.parse().ok(),
        None => None,
    })
}

/// The scheduler: the least-loaded worker that is up (lowest index on ties), and the lowest free port slot on it.
fn schedule(world: &mut WorldState, key: &ObjectRef) {
    let placed = |p: &&PodRuntime| p.seid != Seid::Unscheduled;
    let load = |worker: usize| world.pods.values().filter(placed).filter(|p| p.worker == worker).count();
    let Some(worker) = (0..world.workers.len()).filter(|w| world.workers[*w].up).min_by_key(|w| (load(*w), *w)) else {
        return;
    };
    let used: Vec<u16> = world.pods.values().filter(placed).filter(|p| p.worker == worker).map(|p| p.slot).collect();
    let slot = (0..).find(|s| !used.contains(s)).unwrap_or(0);
    let Some(pod) = world.pods.get(key) else { return };
    // The scheduler keeps a pod whose claim is missing or being deleted Pending ("persistentvolumeclaim not
    // found" / "is being deleted").
    if let Some(volume) = &pod.volume
        && world.store.get(volume, None).is_none_or(crate::store::is_deleting)
    {
        return;
    }
    let image = pod.image.clone();
    let cached = world.workers[worker].image_cache.contains(&image);
    let seid = match (cached, world.registry.pull(&image).map(|b| b.pull_time)) {
        (true, _) => Seid::Pulling { until: world.now },
        (false, Some(pull_time)) => Seid::Pulling { until: world.now + pull_time },
        // Kubernetes retries the pull with back-off forever; an image the registry lacks never arrives.
        (false, None) => Seid::ImagePullBackOff,
    };
    let text = match &seid {
        Seid::ImagePullBackOff => format!("ImagePullBackOff: {image} cannot be pulled"),
        _ => format!("pulling {image}"),
    };
    let worker_name = world.workers[worker].name.clone();
    if let Some(pod) = world.pods.get_mut(key) {
        pod.worker = worker;
        pod.slot = slot;
        pod.seid = seid;
    }
    world.record(Category::Pod, format!("{}/{} scheduled on {worker_name}, {text}", key.namespace, key.name));
}

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

/// Settles the sidecar tasks of `key` that are due: scripted failures, and the effects of completed tasks.
fn settle_tasks(world: &mut WorldState, key: &ObjectRef) {
    let now = world.now;
    let Some(pod) = world.pods.get(key) else { return };
    let Some(sidecar) = &pod.sidecar else { return };
    let chain = world.chain_for(pod.chain_id.as_deref());
    let height = match (&pod.seid, chain) {
        (Seid::Running { run, .. }, Some(chain)) => Some(run.height_at(chain, now)),
        _ => None,
    };
    let due: Vec<(uuid::Uuid, String, Option<Value>)> = sidecar
        .tasks
        .values()
        .filter(|t| t.outcome.is_none())
        .filter(|t| match t.completes_at {
            Some(at) => at <= now,
            None => target_height(t.params.as_ref()).zip(height).is_some_and(|(target, h)| h >= target),
        })
        .map(|t| (t.id, t.type_.clone(), t.params.clone()))
        .collect();
    for (id, type_, params) in due {
        let node = world.pods.get(key).and_then(|p| p.node.clone());
        let failure = crate::faults::take_task_failure(&mut world.task_failures, node.as_deref(), &type_);
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
        if let Some(task) = world.pods.get_mut(key).and_then(|p| p.sidecar.as_mut()).and_then(|s| s.tasks.get_mut(&id))
        {
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
            let target = target_height(params).unwrap_or(u64::MAX).min(chain.tip(world.now));
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

/// Starts the pod's containers after a pull, a pod restart or its node coming back: a fresh sidecar (nothing
/// remembered) and seid's start wrapper.
fn start_containers(world: &mut WorldState, key: &ObjectRef) {
    let incarnation = next_incarnation(world);
    let now = world.now;
    let Some(pod) = world.pods.get_mut(key) else { return };
    pod.sidecar = pod.sidecar_port.map(|_| SidecarProcess::new(now, incarnation));
    let worker = pod.worker;
    world.touch_worker(worker);
    start_seid(world, key);
}

/// Starts seid: at once without a sidecar or with a ready one, else its wrapper waits for mark-ready.
pub fn start_seid(world: &mut WorldState, key: &ObjectRef) {
    let now = world.now;
    let Some(pod) = world.pods.get(key) else { return };
    let node_speed = pod.node.as_ref().and_then(|node| world.timings.sync_speed_by_node.get(node));
    let sync_speed = node_speed.copied().unwrap_or(world.timings.sync_speed);
    if pod.sidecar_port.is_some() && !pod.sidecar.as_ref().is_some_and(|s| s.ready) {
        if let Some(pod) = world.pods.get_mut(key) {
            pod.seid = Seid::WaitingForSidecar;
        }
        return;
    }
    let height = pod.volume.as_ref().and_then(|v| world.volumes.get(v)).map_or(0, |v| v.height);
    let (Some(chain), Some(binary)) = (world.chain_for(pod.chain_id.as_deref()), world.registry.pull(&pod.image))
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
    }
    let worker = pod.worker;
    world.touch_worker(worker);
}

fn next_incarnation(world: &mut WorldState) -> u64 {
    world.controllers.next_incarnation += 1;
    world.controllers.next_incarnation
}

/// Restarts every container of a pod (a pod crash): the sidecar forgets everything, seid waits for mark-ready.
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
/// comes back Initializing with no tasks.
pub fn restart_sidecar(world: &mut WorldState, key: &ObjectRef) {
    let incarnation = next_incarnation(world);
    let now = world.now;
    let Some(pod) = world.pods.get_mut(key) else { return };
    if pod.sidecar.is_none() {
        return;
    }
    pod.sidecar = Some(SidecarProcess::new(now, incarnation));
    let worker = pod.worker;
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
        if let Some(pod) = world.pods.get_mut(&key)
            && pod.seid != Seid::Unscheduled
            && pod.seid != Seid::ImagePullBackOff
        {
            pod.seid = Seid::NodeDown;
            pod.sidecar = None;
        }
    }
    if let Some(state) = world.workers.get_mut(worker) {
        state.up = false;
    }
    world.touch_worker(worker);
}

/// A worker node comes back (a reboot): the kubelet restarts the containers of its pods, counting a restart.
pub fn worker_up(world: &mut WorldState, worker: usize) {
    if let Some(state) = world.workers.get_mut(worker) {
        state.up = true;
    }
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

/// Writes each pod's status to the store when it changed, and remembers which images Ready pods ran.
pub fn report_pods(world: &mut WorldState) {
    let keys: Vec<ObjectRef> = world.pods.keys().cloned().collect();
    for key in keys {
        let Some(pod) = world.pods.get(&key) else { continue };
        let status = pod_status(pod, &world.workers[pod.worker.min(world.workers.len().saturating_sub(1))].name);
        if status == pod.reported {
            continue;
        }
        if pod.is_ready()
            && let Some(node) = &pod.node
        {
            world.ready_images.insert((key.namespace.clone(), node.clone(), pod.image.clone()));
        }
        let Some(mut stored) = world.store.get(&key, None).cloned() else { continue };
        if let Some(object) = stored.as_object_mut() {
            object.insert("status".into(), status.clone());
        }
        if world.store.replace_status(stored).is_ok() {
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
        Seid::WaitingForSidecar => ("Running", json!({"running": {}})),
        Seid::Running { .. } => ("Running", json!({"running": {}})),
        Seid::BackOff { last_exit, .. } => {
            ("Running", json!({"waiting": {"reason": "CrashLoopBackOff", "message": last_exit.describe()}}))
        }
        Seid::Terminated { exit } => (
            if exit.exit_code() == 0 { "Succeeded" } else { "Failed" },
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
