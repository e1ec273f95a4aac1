//! The scheduler and the kubelet's pod admission: pods that appear in the store are placed on a worker node and
//! start pulling their image; pods that disappear are killed, their chain height saved on their claim.
//!
//! How the fake kubelet reads a pod spec — what the real kubelet would run (the operator's StatefulSets and Jobs
//! must work with stock images, docs/design.md §2):
//! - seid is the container named `seid`, else the first container that is not the sidecar; its image names the
//!   binary in the registry. Its command and args say how seid starts: a shell script (`<shell> -c <script>`)
//!   that begins with the operator's wait loop (`workload::sidecar_wait_loop` for the port it names, compared
//!   as text) polls that port's `/v0/healthz` before it starts seid; what follows is `exec <seid words>`, or
//!   `<seid words>; rc=$?; if [ "$rc" -eq 130 ]; then ...; exit 0; fi; exit "$rc"` (exit 130 mapped to 0, as
//!   `workload::bootstrap_start_script` does), or plain words. Any other command starts seid at once — seid
//!   waits for nothing. `--halt-height N` / `--halt-height=N` among seid's words sets the halt.
//! - its `startupProbe` and `readinessProbe` (httpGet or tcpSocket, ports by number or name) are the prober's.
//! - the sidecar is a container named `sidecar` or `seictl` — regular, or an init container with
//!   `restartPolicy: Always` (native) — listening on its `SEI_SIDECAR_PORT` (7777 when unset: sei-protocol/seictl
//!   `serve.go`), not on what its `containerPort` declares. It does nothing nobody submitted.
//! - an init container whose command runs `seid init` initializes the volume (guarded by a test of
//!   `config/genesis.json`: only an empty one); other plain init containers complete at once.
//! - chain data lives on the first `persistentVolumeClaim` volume (a StatefulSet's `volumeClaimTemplates` add
//!   it); the pod stays Pending until that claim exists.
//! - the chain is that of the SeiNode named by the pod's `sei.io/node` label, else the world's first chain.
//! - its DNS name is `<hostname>.<subdomain>.<namespace>.svc` (see [`crate::node::resolver`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Pod, PodSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use sei_operator_core::cluster::ObjectRef;
use sei_operator_core::objects::meta::LABEL_NODE;
use sei_operator_core::objects::workload;

use serde_json::Value;

use super::pod::{
    DEFAULT_SIDECAR_PORT, InitContainer, InitKind, PodRuntime, Probe, ProbeAction, ProbeState, Probes, RestartPolicy,
    Seid, SeidCommand, SidecarKind,
};
use crate::apiserver::json::Fields;
use crate::harness::state::WorldState;
use crate::harness::trace::Category;

/// Brings pod runtimes in line with the store: new pods are scheduled and started, deleted ones are killed.
pub fn sync_pods(world: &mut WorldState) {
    // Live pods by key, with their uid: a pod deleted and recreated under the same name is a new pod.
    let stored: BTreeMap<ObjectRef, String> = world
        .api
        .store
        .all_of_kind("Pod")
        .filter(|(_, v)| !crate::apiserver::store::is_deleting(v))
        .map(|(k, v)| (k.clone(), v.metadata_field("uid").and_then(Value::as_str).unwrap_or_default().to_owned()))
        .collect();
    let gone: Vec<ObjectRef> = world
        .plane
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
        .api
        .store
        .all_of_kind("Pod")
        .filter(|(key, value)| crate::apiserver::store::is_deleting(value) && !world.plane.pods.contains_key(*key))
        .filter(|(_, value)| {
            let node = value.at("/status/hostIP").and_then(Value::as_str);
            node.is_none_or(|node| world.plane.workers.iter().any(|w| w.name == node && w.up))
        })
        .map(|(key, _)| key.clone())
        .collect();
    for key in terminated {
        let result = world.api.store.remove_terminated_pod(&key).map(|()| Value::Null);
        super::traced(world, "kubelet", "delete", format!("terminated {key}"), result);
    }
    for key in stored.into_keys() {
        if world.plane.pods.contains_key(&key) {
            continue;
        }
        // The world's decoded pod: the StatefulSet controller read back the pod it created through the same cache.
        let Some(value) = world.api.store.get(&key, None) else { continue };
        let uid = value.metadata_field("uid").and_then(Value::as_str).unwrap_or_default().to_owned();
        let pod: Option<Arc<Pod>> = world.api.store.decoded().decode(&key, value).ok();
        start_pod(world, key, pod.as_deref(), uid);
    }
    let unscheduled: Vec<ObjectRef> =
        world.plane.pods.iter().filter(|(_, p)| p.seid == Seid::Unscheduled).map(|(k, _)| k.clone()).collect();
    for key in unscheduled {
        schedule(world, &key);
    }
}

fn kill_pod(world: &mut WorldState, key: &ObjectRef) {
    let Some(pod) = world.plane.pods.remove(key) else { return };
    save_height(world, &pod);
    world.record(Category::Pod, format_args!("{}/{} killed (deleted)", key.namespace, key.name));
    world.touch_worker(pod.worker);
}

/// Saves a running seid's height to its volume (the chain data it committed so far).
pub(super) fn save_height(world: &mut WorldState, pod: &PodRuntime) {
    if let (Seid::Running { run, .. }, Some(volume)) = (&pod.seid, &pod.volume) {
        let Some(chain) = world.chain_for(pod.chain_id.as_deref()) else { return };
        let height = run.height_at(chain, world.now);
        world.plane.volumes.entry(volume.clone()).or_default().height = height;
    }
}

fn start_pod(world: &mut WorldState, key: ObjectRef, pod: Option<&Pod>, uid: String) {
    let no_spec = PodSpec::default();
    let spec = pod.and_then(|p| p.spec.as_ref()).unwrap_or(&no_spec);
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
    // seictl listens where `SEI_SIDECAR_PORT` says (`serve.go`, flag `port`), whatever the port declarations.
    let sidecar_port = sidecar.map(|c| {
        c.env
            .iter()
            .flatten()
            .find(|e| e.name == workload::ENV_SIDECAR_PORT)
            .and_then(|e| e.value.as_deref()?.trim().parse().ok())
            .unwrap_or(DEFAULT_SIDECAR_PORT)
    });
    let init_containers = spec
        .init_containers
        .iter()
        .flatten()
        .map(|c| InitContainer {
            name: c.name.clone(),
            image: c.image.clone().unwrap_or_default(),
            kind: if is_sidecar(&c) { InitKind::Sidecar } else { init_kind(c) },
        })
        .collect();
    let command = seid.map(seid_command).unwrap_or_default();
    let probes = Probes {
        startup: seid.and_then(|c| Some(probe(c.startup_probe.as_ref()?, c))),
        readiness: seid.and_then(|c| Some(probe(c.readiness_probe.as_ref()?, c))),
    };
    let node = pod.and_then(|p| p.metadata.labels.as_ref()).and_then(|labels| labels.get(LABEL_NODE)).cloned();
    let chain_id = node.as_ref().and_then(|node| {
        world
            .api
            .store
            .get(&ObjectRef::new("SeiNode", &key.namespace, node), None)?
            .at("/spec/chainId")?
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
        uid,
        node,
        chain_id,
        hostname: spec.hostname.clone().unwrap_or_else(|| key.name.clone()),
        subdomain: spec.subdomain.clone(),
        worker: 0,
        slot: 0,
        image: seid.and_then(|c| c.image.clone()).unwrap_or_default(),
        sidecar_port,
        sidecar_image: sidecar.and_then(|c| c.image.clone()),
        healthz_ready_at: None,
        sidecar_restarts: 0,
        sidecar_kind,
        command,
        probes,
        probe_state: ProbeState::default(),
        init_containers,
        volume,
        restart_policy,
        seid: Seid::Unscheduled,
        restarts: 0,
        consecutive_crashes: 0,
        last_termination: None,
        sidecar: None,
        shares_process_namespace: spec.share_process_namespace == Some(true),
        reported: Default::default(),
        key: key.clone(),
    };
    world.record(Category::Pod, format_args!("{}/{} created, image {}", key.namespace, key.name, runtime.image));
    world.plane.pods.insert(key.clone(), runtime);
    schedule(world, &key);
}

/// How the seid container starts seid (see the module's notes): its command and args, a shell script read
/// as text.
pub fn seid_command(container: &Container) -> SeidCommand {
    let words: Vec<String> =
        container.command.iter().flatten().chain(container.args.iter().flatten()).cloned().collect();
    let script = match words.as_slice() {
        [shell, flag, script, ..] if is_shell(shell) && flag == "-c" => script.as_str(),
        _ => {
            return SeidCommand {
                waits_for: None,
                halt_height: halt_height(&words),
                maps_halt_to_success: false,
                reports_upgrade_panics: false,
            };
        }
    };
    let waits_for = wait_loop_port(script);
    let rest = match waits_for {
        Some(port) => &script[workload::sidecar_wait_loop(i32::from(port)).len()..],
        None => script,
    };
    let mapping = format!("; rc=$?; if [ \"$rc\" -eq {} ]; then ", workload::HALT_EXIT_CODE);
    let mapped = |tail: &str| {
        let end = "exit 0; fi; exit \"$rc\"";
        tail == end || tail.ends_with(&format!("; {end}"))
    };
    let (line, maps_halt_to_success) = match rest.split_once(&mapping) {
        Some((line, tail)) if mapped(tail) => (line, true),
        _ => (rest.strip_prefix("exec ").unwrap_or(rest), false),
    };
    let (line, reports_upgrade_panics) = match line.strip_suffix(workload::UPGRADE_PANIC_CAPTURE) {
        Some(line) => (line, true),
        None => (line, false),
    };
    SeidCommand {
        waits_for,
        halt_height: halt_height(&shell_words(line)),
        maps_halt_to_success,
        reports_upgrade_panics,
    }
}

fn is_shell(word: &str) -> bool {
    matches!(word.rsplit('/').next(), Some("sh" | "bash"))
}

/// The port of the operator's wait loop, when `script` begins with it, word for word.
fn wait_loop_port(script: &str) -> Option<u16> {
    let after = script.split_once("/dev/tcp/localhost/")?.1;
    let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
    let port: u16 = digits.parse().ok()?;
    script.starts_with(&workload::sidecar_wait_loop(i32::from(port))).then_some(port)
}

/// Splits a shell command line into words: blanks separate, single and double quotes group, a backslash
/// escapes (enough for `workload::shell_quote`'s output). Stops at the first unquoted `;`, `&` or `|`.
pub fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                let text: String = chars.by_ref().take_while(|c| *c != '\'').collect();
                word.get_or_insert_default().push_str(&text);
            }
            '"' => {
                let current = word.get_or_insert_default();
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => current.extend(chars.next()),
                        c => current.push(c),
                    }
                }
            }
            '\\' => word.get_or_insert_default().extend(chars.next()),
            ';' | '&' | '|' => break,
            c if c.is_whitespace() => words.extend(word.take()),
            c => word.get_or_insert_default().push(c),
        }
    }
    words.extend(word);
    words
}

/// What a plain init container does: `seid init` (guarded by a test of the genesis file, or not), or anything.
fn init_kind(container: &Container) -> InitKind {
    let text: Vec<&str> =
        container.command.iter().flatten().chain(container.args.iter().flatten()).map(String::as_str).collect();
    let text = text.join(" ");
    if text.contains("seid init") {
        InitKind::SeidInit { guarded: text.contains("config/genesis.json") }
    } else {
        InitKind::Other
    }
}

/// A container probe as the prober runs it, with Kubernetes' defaults (`pkg/apis/core/v1/defaults.go`,
/// `SetDefaults_Probe`: period 10 s, success threshold 1, failure threshold 3).
fn probe(spec: &k8s_openapi::api::core::v1::Probe, container: &Container) -> Probe {
    let port = |port: &IntOrString| match port {
        IntOrString::Int(number) => u16::try_from(*number).ok(),
        IntOrString::String(name) => container
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some(name.as_str()))
            .and_then(|p| u16::try_from(p.container_port).ok()),
    };
    let action = if let Some(get) = &spec.http_get {
        port(&get.port).map(|port| ProbeAction::Http { port, path: get.path.clone().unwrap_or_else(|| "/".into()) })
    } else if let Some(tcp) = &spec.tcp_socket {
        port(&tcp.port).map(|port| ProbeAction::Tcp { port })
    } else {
        None
    };
    let seconds = |value: Option<i32>, default: u64| {
        Duration::from_secs(value.and_then(|v| u64::try_from(v).ok()).unwrap_or(default))
    };
    let count = |value: Option<i32>, default: u32| value.and_then(|v| u32::try_from(v).ok()).unwrap_or(default).max(1);
    Probe {
        action: action.unwrap_or(ProbeAction::Unmodelled),
        initial_delay: seconds(spec.initial_delay_seconds, 0),
        period: seconds(spec.period_seconds, 10).max(Duration::from_secs(1)),
        success_threshold: count(spec.success_threshold, 1),
        failure_threshold: count(spec.failure_threshold, 3),
    }
}

/// `--halt-height N` or `--halt-height=N` among seid's words.
fn halt_height(words: &[String]) -> Option<u64> {
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    words.iter().enumerate().find_map(|(i, word)| match word.strip_prefix("--halt-height") {
        Some("") => words.get(i + 1)?.parse().ok(),
        Some(rest) => rest.strip_prefix('=')?.parse().ok(),
        None => None,
    })
}

/// Another pod object still using a ReadWriteOnce claim on a worker that is down: the volume stays attached
/// there until that pod object is gone. The attach-detach controller detaches only once the pod is deleted and
/// its containers are known to have stopped, which a dead kubelet never reports (kubernetes
/// `pkg/controller/volume/attachdetach/util/util.go`, `DetermineVolumeAction`; `pkg/volume/util/util.go`,
/// `IsPodTerminated`), so a pod for the same claim elsewhere cannot start: "Multi-Attach error".
fn attached_elsewhere(world: &WorldState, key: &ObjectRef, volume: &ObjectRef) -> Option<String> {
    let uses_claim = |value: &Value| {
        value
            .at("/spec/volumes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .any(|v| v.at("/persistentVolumeClaim/claimName").and_then(Value::as_str) == Some(volume.name.as_str()))
    };
    let on_dead_worker = |value: &Value| {
        let node = value.at("/status/hostIP").and_then(Value::as_str);
        node.is_some_and(|node| world.plane.workers.iter().any(|w| w.name == node && !w.up))
    };
    // Only a dead worker keeps a volume attached: with every worker up there is nothing to look for (and looking
    // at every pod for each one scheduled made a rollout's scheduling quadratic in its pods).
    if world.plane.workers.iter().all(|w| w.up) {
        return None;
    }
    world
        .api
        .store
        .all_of_kind("Pod")
        .filter(|(other, _)| other.namespace == key.namespace && *other != key)
        .find(|(_, value)| on_dead_worker(value) && uses_claim(value))
        .map(|(other, _)| other.name.clone())
}

/// The scheduler: the least-loaded worker that is up (lowest index on ties), and the lowest free port slot on it.
fn schedule(world: &mut WorldState, key: &ObjectRef) {
    let placed = |p: &&PodRuntime| p.seid != Seid::Unscheduled;
    let load = |worker: usize| world.plane.pods.values().filter(placed).filter(|p| p.worker == worker).count();
    let Some(worker) =
        (0..world.plane.workers.len()).filter(|w| world.plane.workers[*w].up).min_by_key(|w| (load(*w), *w))
    else {
        return;
    };
    let used: Vec<u16> =
        world.plane.pods.values().filter(placed).filter(|p| p.worker == worker).map(|p| p.slot).collect();
    let slot = (0..).find(|s| !used.contains(s)).unwrap_or(0);
    let Some(pod) = world.plane.pods.get(key) else { return };
    // The scheduler keeps a pod whose claim is missing or being deleted Pending ("persistentvolumeclaim not
    // found" / "is being deleted").
    if let Some(volume) = &pod.volume
        && world.api.store.get(volume, None).is_none_or(crate::apiserver::store::is_deleting)
    {
        return;
    }
    if let Some(volume) = &pod.volume
        && let Some(holder) = attached_elsewhere(world, key, volume)
    {
        let text = format!(
            "{}/{} waits: Multi-Attach error, {} is still attached for {holder}",
            key.namespace, key.name, volume.name
        );
        world.record(Category::Pod, text);
        return;
    }
    let image = pod.image.clone();
    let cached = world.plane.workers[worker].image_cache.contains(&image);
    let seid = match (cached, world.chains.registry.pull(&image).map(|b| b.pull_time)) {
        (true, _) => Seid::Pulling { until: world.now },
        (false, Some(pull_time)) => Seid::Pulling { until: world.now + pull_time },
        // Kubernetes retries the pull with back-off forever; an image the registry lacks never arrives.
        (false, None) => Seid::ImagePullBackOff,
    };
    let text = match &seid {
        Seid::ImagePullBackOff => format!("ImagePullBackOff: {image} cannot be pulled"),
        _ => format!("pulling {image}"),
    };
    let worker_name = world.plane.workers[worker].name.clone();
    if let Some(pod) = world.plane.pods.get_mut(key) {
        pod.worker = worker;
        pod.slot = slot;
        pod.seid = seid;
    }
    world.record(Category::Pod, format_args!("{}/{} scheduled on {worker_name}, {text}", key.namespace, key.name));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::seid::SeidExit;

    fn container(command: &[&str], args: &[String]) -> Container {
        Container {
            name: "seid".into(),
            command: (!command.is_empty()).then(|| command.iter().map(|w| (*w).to_owned()).collect()),
            args: (!args.is_empty()).then(|| args.to_vec()),
            ..Container::default()
        }
    }

    fn words(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| (*w).to_owned()).collect()
    }

    #[test]
    fn the_operators_wrappers_are_read_from_their_text() {
        let node = workload::node_start_script(7777, &workload::default_seid_start());
        let read = seid_command(&container(&["/bin/bash", "-c"], &[node]));
        let expected = SeidCommand {
            waits_for: Some(7777),
            halt_height: None,
            maps_halt_to_success: false,
            reports_upgrade_panics: true,
        };
        assert_eq!(read, expected);

        let bootstrap = workload::bootstrap_start_script(7777, 1_090);
        let read = seid_command(&container(&["/bin/bash", "-c"], &[bootstrap]));
        assert_eq!(
            read,
            SeidCommand {
                waits_for: Some(7777),
                halt_height: Some(1_090),
                maps_halt_to_success: true,
                reports_upgrade_panics: false
            }
        );
        assert_eq!(read.container_exit_code(&SeidExit::Halted), 0);
        assert_eq!(read.container_exit_code(&SeidExit::UpgradeNeeded { upgrade_height: 5 }), 2);

        // An entrypoint with quoted words, on another port.
        let start = words(&["seid", "start", "--home", "/sei", "--moniker", "it's mine", "--halt-height=55"]);
        let read = seid_command(&container(&["/bin/bash", "-c"], &[workload::node_start_script(8080, &start)]));
        assert_eq!(
            read,
            SeidCommand {
                waits_for: Some(8080),
                halt_height: Some(55),
                maps_halt_to_success: false,
                reports_upgrade_panics: true
            }
        );
        assert_eq!(read.container_exit_code(&SeidExit::Halted), 130, "exec: seid's code is the container's");
    }

    #[test]
    fn any_other_command_starts_seid_at_once() {
        let bare = seid_command(&container(&[], &words(&["start", "--halt-height", "12"])));
        assert_eq!(
            bare,
            SeidCommand {
                waits_for: None,
                halt_height: Some(12),
                maps_halt_to_success: false,
                reports_upgrade_panics: false
            }
        );
        let plain = seid_command(&container(&["/bin/sh", "-c", "exec seid start --home /sei"], &[]));
        assert_eq!(plain, SeidCommand::default());
        // A loop that looks alike but is not the operator's text does not make seid wait.
        let lookalike = "until curl -s localhost:7777/v0/healthz; do sleep 5; done; exec seid start";
        assert_eq!(seid_command(&container(&["/bin/bash", "-c", lookalike], &[])).waits_for, None);
        // The mapping without the wait loop.
        let mapped = "seid start --halt-height 9; rc=$?; if [ \"$rc\" -eq 130 ]; then exit 0; fi; exit \"$rc\"";
        let read = seid_command(&container(&["/bin/bash", "-c", mapped], &[]));
        assert_eq!(
            read,
            SeidCommand {
                waits_for: None,
                halt_height: Some(9),
                maps_halt_to_success: true,
                reports_upgrade_panics: false
            }
        );
    }

    #[test]
    fn shell_words_undo_shell_quote() {
        let original = words(&["seid", "start", "--x", "a b", "it's", ""]);
        let line: Vec<String> = original.iter().map(|w| workload::shell_quote(w)).collect();
        assert_eq!(shell_words(&line.join(" ")), original);
        assert_eq!(shell_words("a \"b c\" d; e"), words(&["a", "b c", "d"]));
    }
}
