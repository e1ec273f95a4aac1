//! The scheduler and the kubelet's pod admission: pods that appear in the store are placed on a worker node and
//! start pulling their image; pods that disappear are killed, their chain height saved on their claim.
//!
//! How the fake kubelet reads a pod spec (the operator's StatefulSets and Jobs must follow it):
//! - seid is the container named `seid`, else the first container that is not the sidecar; its image names the
//!   binary in the registry, and `--halt-height N` / `--halt-height=N` in its command or args sets the halt.
//! - a sidecar with the environment variable `SEI_BOOTSTRAP=true` (a bootstrap Job's pod) runs on its own:
//!   it restores the newest snapshot at or below the halt height, then marks seid ready.
//! - the sidecar is a container named `sidecar` or `seictl` — regular, or an init container with
//!   `restartPolicy: Always` (native) — listening on its first `containerPort` (7777 when none). With a sidecar,
//!   seid waits for `mark-ready`; without one it starts at once.
//! - chain data lives on the first `persistentVolumeClaim` volume (a StatefulSet's `volumeClaimTemplates` add
//!   it); the pod stays Pending until that claim exists.
//! - the chain is that of the SeiNode named by the pod's `sei.io/node` label, else the world's first chain.
//! - its DNS name is `<hostname>.<subdomain>.<namespace>.svc` (see [`crate::resolver`]).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Pod};
use sei_operator::cluster::ObjectRef;
use sei_operator::meta::LABEL_NODE;
use sei_operator::workload::ENV_BOOTSTRAP;
use serde_json::Value;

use super::pod::{DEFAULT_SIDECAR_PORT, PodRuntime, RestartPolicy, Seid, SidecarKind};
use crate::state::WorldState;
use crate::trace::Category;

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
    // The kubelet confirms the deletion of Terminating pods it no longer runs — but only a live kubelet: a pod
    // on a node that is down stays Terminating (which is why a StatefulSet will not replace it meanwhile).
    let terminated: Vec<ObjectRef> = world
        .store
        .all_of_kind("Pod")
        .filter(|(key, value)| crate::store::is_deleting(value) && !world.pods.contains_key(*key))
        .filter(|(_, value)| {
            let node = value.pointer("/status/hostIP").and_then(Value::as_str);
            node.is_none_or(|node| world.workers.iter().any(|w| w.name == node && w.up))
        })
        .map(|(key, _)| key.clone())
        .collect();
    for key in terminated {
        let result = world.store.remove_terminated_pod(&key).map(|()| Value::Null);
        super::traced(world, "kubelet", "delete", format!("terminated {key}"), result);
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
pub(super) fn save_height(world: &mut WorldState, pod: &PodRuntime) {
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
    let regular = spec.containers.iter().find(is_sidecar);
    let init = spec.init_containers.iter().flatten().find(is_sidecar);
    let sidecar = regular.or(init);
    let sidecar_kind = match (regular, init) {
        (Some(_), _) => SidecarKind::Regular,
        (None, Some(c)) if c.restart_policy.as_deref() == Some("Always") => SidecarKind::Native,
        (None, Some(_)) => SidecarKind::BlockingInit,
        (None, None) => SidecarKind::None,
    };
    let sidecar_port = sidecar.map(|c| {
        c.ports
            .iter()
            .flatten()
            .next()
            .and_then(|p| u16::try_from(p.container_port).ok())
            .unwrap_or(DEFAULT_SIDECAR_PORT)
    });
    let bootstrap = sidecar
        .is_some_and(|c| c.env.iter().flatten().any(|e| e.name == ENV_BOOTSTRAP && e.value.as_deref() == Some("true")));
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
        sidecar_kind,
        bootstrap,
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
