//! The Kubernetes objects behind a SeiNode and a SeiNodeDeployment, built as values: the node's StatefulSet,
//! headless Service and data volume; its bootstrap Job and Service; the deployment's Service. Tasks create them;
//! the simulator's fake controllers read the same fields (container names, commands, probes, labels) that the
//! real kubelet and controllers would.
//!
//! The pods work with stock images (docs/design.md §2): nothing in a seid or seictl image waits for anything, so the pod
//! spec supplies it — an init container that runs `seid init` on an empty volume, the sidecar as a native
//! sidecar, seid's command as a wrapper that waits for the sidecar's healthz (which answers 200 only once the
//! operator's `mark-ready` ran) and then starts seid, and probes that make Kubernetes' Ready mean "seid runs near
//! the tip" rather than "the containers started".

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetSpec};
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EmptyDirVolumeSource, EnvVar, HTTPGetAction, PersistentVolumeClaim,
    PersistentVolumeClaimSpec, PersistentVolumeClaimVolumeSource, PodSpec, PodTemplateSpec, Probe, SecurityContext,
    Service, ServicePort, ServiceSpec, Volume, VolumeMount, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::api::{PodSettings, SeiNode, SeiNodeDeployment, SeiNodeSpec};
use crate::objects::meta::{
    ANNOTATION_POD_SETTINGS, LABEL_DEPLOYMENT, LABEL_NODE, LABEL_REVISION, controller_reference,
};
use crate::objects::names;

/// The seid container, in StatefulSet and Job pods alike.
pub const SEID_CONTAINER: &str = "seid";
/// The init container that runs `seid init` on an empty volume.
pub const SEID_INIT_CONTAINER: &str = "seid-init";
/// The sidecar container (a native sidecar: an init container with `restartPolicy: Always`).
pub const SIDECAR_CONTAINER: &str = "sidecar";
/// The sidecar image when the spec names none.
pub const DEFAULT_SIDECAR_IMAGE: &str = "seictl:latest";
/// Label on a bootstrap Job's pod, so its Service selects it and not the node's own pod.
pub const LABEL_BOOTSTRAP: &str = "sei.io/bootstrap";
/// The environment variable seictl reads its listening port from (sei-protocol/seictl `serve.go`, flag `port`);
/// the container port alone does not move the server.
pub const ENV_SIDECAR_PORT: &str = "SEI_SIDECAR_PORT";
/// seid's argument that makes it stop after committing the given block (exit 130: Cosmos SDK's
/// `BaseApp.halt` sends SIGINT to its own process).
pub const HALT_HEIGHT_ARG: &str = "--halt-height";
/// The exit code of `seid start --halt-height N` once it has committed block N: 128 + SIGINT.
pub const HALT_EXIT_CODE: i32 = 130;
/// The volume claim template of a node's StatefulSet, and the volume name in its pods.
pub const DATA_VOLUME: &str = "data";
/// Where chain data is mounted: seid's `--home`, and seictl's home (`SEI_HOME`), where it keeps `sidecar.db`.
pub const DATA_PATH: &str = "/sei";
/// Size requested for a node's data volume when neither its spec nor the operator's defaults give one (the
/// built-in defaults always do).
pub const DATA_VOLUME_SIZE: &str = "500Gi";
/// The sidecar's scratch volume at `/tmp`: its root filesystem is read-only.
pub const SIDECAR_TMP_VOLUME: &str = "sidecar-tmp";
/// The shell every wrapper runs under (`/dev/tcp` is a bash feature).
pub const SHELL: &str = "/bin/bash";
/// seid's readiness endpoint on its RPC port: 200 only while the node is close to the tip (upstream's
/// readiness probe, sei-protocol/sei-k8s-controller `internal/noderesource/noderesource.go`,
/// `readinessProbeForNode`).
pub const LAG_STATUS_PATH: &str = "/lag_status";
/// The sidecar's readiness endpoint: 200 once `mark-ready` completed in this sidecar process.
pub const HEALTHZ_PATH: &str = "/v0/healthz";
/// The sidecar's liveness endpoint: 200 while its task store answers.
pub const LIVEZ_PATH: &str = "/v0/livez";
/// How often the wait loop asks the sidecar again.
pub const WAIT_POLL_SECONDS: u32 = 5;

const P2P_PORT: i32 = 26656;
const RPC_PORT: i32 = crate::sidecar::SEID_RPC_PORT as i32;

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

fn node_name(node: &SeiNode) -> String {
    node.metadata.name.clone().unwrap_or_default()
}

/// The labels a node's objects and pod carry: `sei.io/node`, plus the node's deployment and revision labels.
pub fn node_labels(node: &SeiNode) -> BTreeMap<String, String> {
    let mut result = labels(&[(LABEL_NODE, &node_name(node))]);
    if let Some(own) = &node.metadata.labels {
        for key in [LABEL_DEPLOYMENT, LABEL_REVISION] {
            if let Some(value) = own.get(key) {
                result.insert(key.to_owned(), value.clone());
            }
        }
    }
    result
}

fn owned_meta(node: &SeiNode, name: String, labels: BTreeMap<String, String>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: node.metadata.namespace.clone(),
        labels: Some(labels),
        owner_references: controller_reference(node).map(|r| vec![r]),
        ..Default::default()
    }
}

fn port(name: &str, number: i32) -> ContainerPort {
    ContainerPort { name: Some(name.to_owned()), container_port: number, ..Default::default() }
}

fn data_mount() -> VolumeMount {
    VolumeMount { name: DATA_VOLUME.to_owned(), mount_path: DATA_PATH.to_owned(), ..Default::default() }
}

fn env(name: &str, value: impl Into<String>) -> EnvVar {
    EnvVar { name: name.to_owned(), value: Some(value.into()), ..Default::default() }
}

/// Quotes one word for a POSIX shell: single quotes, with embedded single quotes closed, escaped and reopened.
pub fn shell_quote(word: &str) -> String {
    let safe = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/' | b'=' | b':' | b','));
    if safe { word.to_owned() } else { format!("'{}'", word.replace('\'', r"'\''")) }
}

fn shell_words(words: &[String]) -> String {
    words.iter().map(|w| shell_quote(w)).collect::<Vec<_>>().join(" ")
}

/// The loop every seid wrapper starts with: ask the sidecar on `localhost:<port>` for `/v0/healthz` until it
/// answers 200, every 5 s. seid itself waits for nothing (docs/design.md §2), and a stock image has no such loop: without it
/// seid would start on a volume whose snapshot is not restored and whose config is not written. Plain bash
/// (`/dev/tcp`), because stock images carry no curl; the same technique as upstream's `sidecarWaitCommand`
/// (sei-protocol/sei-k8s-controller `internal/noderesource/noderesource.go`).
pub fn sidecar_wait_loop(sidecar_port: i32) -> String {
    format!(
        "echo 'waiting for the sidecar to be ready'; \
         until (exec 3<>/dev/tcp/localhost/{sidecar_port} \
         && printf 'GET {HEALTHZ_PATH} HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 \
         && head -n 1 <&3 | grep -q ' 200 ') 2>/dev/null; do sleep {WAIT_POLL_SECONDS}; done; \
         echo 'sidecar ready, starting seid'; "
    )
}

/// The words seid starts with when the spec names no entrypoint.
pub fn default_seid_start() -> Vec<String> {
    ["seid", "start", "--home", DATA_PATH].map(str::to_owned).to_vec()
}

/// The words a node's seid runs: `spec.entrypoint` when set (its command, then its args), else
/// `seid start --home /sei`.
pub fn seid_start_words(node: &SeiNode) -> Vec<String> {
    match &node.spec.entrypoint {
        Some(entrypoint) if !entrypoint.command.is_empty() || !entrypoint.args.is_empty() => {
            let command =
                if entrypoint.command.is_empty() { vec!["seid".to_owned()] } else { entrypoint.command.clone() };
            command.into_iter().chain(entrypoint.args.iter().cloned()).collect()
        }
        _ => default_seid_start(),
    }
}

/// What follows seid's words in a node's script: its output (stderr joined to stdout) goes on to the container's
/// log through `tee`, and every line naming an x/upgrade panic is also written to the container's termination
/// message file, which the kubelet reports as the exit's `message` (kubernetes/kubernetes
/// `pkg/kubelet/kuberuntime/kuberuntime_container.go`, `getTerminationMessage`; `/dev/termination-log` is the
/// default `terminationMessagePath`). That is how the operator learns a node stopped at an upgrade height, a
/// height seid's RPC never serves: the same lines cosmovisor scans seid's output for (cosmos-sdk
/// `cosmovisor/scanner.go`). `grep` reads to the end (no `-m`) so `tee` never writes to a closed pipe.
pub const UPGRADE_PANIC_CAPTURE: &str = concat!(
    " > >(tee >(grep --line-buffered -E",
    r#" 'UPGRADE \\?"[^"\\]*\\?" NEEDED at height: [0-9]+|BINARY UPDATED BEFORE TRIGGER'"#,
    " > /dev/termination-log)) 2>&1"
);

/// The script of a node's seid container: the wait loop, then `exec` of what seid runs (so seid is PID 1's
/// replacement and gets the kubelet's SIGTERM itself), its x/upgrade panics captured ([`UPGRADE_PANIC_CAPTURE`]).
pub fn node_start_script(sidecar_port: i32, start: &[String]) -> String {
    format!("{}exec {}{UPGRADE_PANIC_CAPTURE}", sidecar_wait_loop(sidecar_port), shell_words(start))
}

/// The script of a bootstrap pod's seid: the wait loop, then `seid start --home /sei --halt-height N`, with exit
/// 130 — how seid ends once it has committed block N — mapped to 0 so the Job succeeds; any other code passes
/// through (upstream: `bootstrapWaitCommand`, sei-protocol/sei-k8s-controller
/// `internal/task/bootstrap_resources.go`).
pub fn bootstrap_start_script(sidecar_port: i32, halt_height: i64) -> String {
    let mut start = default_seid_start();
    start.extend([HALT_HEIGHT_ARG.to_owned(), halt_height.to_string()]);
    format!(
        "{}{}; rc=$?; if [ \"$rc\" -eq {HALT_EXIT_CODE} ]; then echo 'seid halted at height {halt_height}'; exit 0; fi; \
         exit \"$rc\"",
        sidecar_wait_loop(sidecar_port),
        shell_words(&start)
    )
}

/// The script of the `seid-init` init container: `seid init` on an empty volume only — a volume that holds a
/// config keeps it (upstream: `buildSeidInitContainer`).
pub fn seid_init_script(node: &SeiNode) -> String {
    let chain = shell_quote(&node.spec.chain_id);
    let moniker = shell_quote(&node_name(node));
    format!(
        "if [ -f {DATA_PATH}/config/genesis.json ]; then echo 'data directory already initialized'; \
         else seid init {moniker} --chain-id {chain} --home {DATA_PATH}; fi"
    )
}

fn http_probe(path: &str, port: i32, period: i32, failures: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_owned()),
            port: IntOrString::Int(port),
            scheme: Some("HTTP".into()),
            ..Default::default()
        }),
        period_seconds: Some(period),
        timeout_seconds: Some(5),
        success_threshold: Some(1),
        failure_threshold: Some(failures),
        ..Default::default()
    }
}

fn seid_init_container(image: &str, node: &SeiNode) -> Container {
    Container {
        name: SEID_INIT_CONTAINER.to_owned(),
        image: Some(image.to_owned()),
        command: Some(vec!["/bin/sh".into(), "-c".into(), seid_init_script(node)]),
        volume_mounts: Some(vec![data_mount()]),
        ..Default::default()
    }
}

/// A node's seid container: the wait loop then seid; started (startup probe) once the sidecar's healthz answers
/// 200, Ready while `/lag_status` says it is near the tip.
fn node_seid_container(node: &SeiNode) -> Container {
    let sidecar_port = node.spec.sidecar_port();
    Container {
        name: SEID_CONTAINER.to_owned(),
        image: Some(node.spec.image.clone()),
        command: Some(vec![SHELL.into(), "-c".into()]),
        args: Some(vec![node_start_script(sidecar_port, &seid_start_words(node))]),
        ports: Some(vec![port("p2p", P2P_PORT), port("rpc", RPC_PORT)]),
        volume_mounts: Some(vec![data_mount()]),
        // The sidecar's healthz gates the start; once started, the probe is not asked again. Upstream allows
        // 86400 failures (five days at 5 s): a restore can take that long.
        startup_probe: Some(http_probe(HEALTHZ_PATH, sidecar_port, 5, 86_400)),
        readiness_probe: Some(http_probe(LAG_STATUS_PATH, RPC_PORT, 10, 3)),
        ..Default::default()
    }
}

/// The sidecar, as a native sidecar (init container, `restartPolicy: Always`): it runs before and beside seid,
/// and in a Job's pod it stops once seid has exited, so the pod can complete.
fn sidecar_container(node: &SeiNode) -> Container {
    let sidecar = node.spec.sidecar.clone().unwrap_or_default();
    let sidecar_port = node.spec.sidecar_port();
    Container {
        name: SIDECAR_CONTAINER.to_owned(),
        image: Some(sidecar.image.unwrap_or_else(|| DEFAULT_SIDECAR_IMAGE.to_owned())),
        command: Some(vec!["seictl".into(), "serve".into()]),
        restart_policy: Some("Always".into()),
        ports: Some(vec![port("sidecar", sidecar_port)]),
        resources: sidecar.resources,
        env: Some(vec![
            env("SEI_CHAIN_ID", node.spec.chain_id.clone()),
            env(ENV_SIDECAR_PORT, sidecar_port.to_string()),
            env("SEI_HOME", DATA_PATH),
        ]),
        volume_mounts: Some(vec![data_mount()]),
        liveness_probe: Some(http_probe(LIVEZ_PATH, sidecar_port, 10, 3)),
        ..Default::default()
    }
}

fn volume_claim_spec(settings: &PodSettings) -> PersistentVolumeClaimSpec {
    let storage = settings.storage.clone().unwrap_or_default();
    let size = storage.size.unwrap_or_else(|| DATA_VOLUME_SIZE.to_owned());
    PersistentVolumeClaimSpec {
        access_modes: Some(vec!["ReadWriteOnce".into()]),
        storage_class_name: storage.storage_class_name,
        resources: Some(VolumeResourceRequirements {
            requests: Some(BTreeMap::from([("storage".to_owned(), Quantity(size))])),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The settings that are the pod's own (scheduling, identity, pull secrets, security) and the containers'
/// (seid's resources; every container's security context, the sidecar's with a read-only root filesystem and
/// a scratch `/tmp`, as upstream runs it: sei-protocol/sei-k8s-controller `internal/noderesource/noderesource.go`).
fn apply_pod_settings(pod: &mut PodSpec, settings: &PodSettings) {
    let scheduling = settings.scheduling.clone().unwrap_or_default();
    pod.node_selector = Some(scheduling.node_selector).filter(|s| !s.is_empty());
    pod.tolerations = Some(scheduling.tolerations).filter(|t| !t.is_empty());
    pod.affinity = scheduling.affinity;
    pod.topology_spread_constraints = Some(scheduling.topology_spread_constraints).filter(|t| !t.is_empty());
    pod.priority_class_name = scheduling.priority_class_name;
    pod.service_account_name.clone_from(&settings.service_account_name);
    pod.image_pull_secrets = Some(settings.image_pull_secrets.clone()).filter(|s| !s.is_empty());
    pod.security_context.clone_from(&settings.pod_security_context);
    let container_context = settings.container_security_context.clone();
    let sidecar_context =
        SecurityContext { read_only_root_filesystem: Some(true), ..container_context.clone().unwrap_or_default() };
    for container in pod.init_containers.iter_mut().flatten().chain(pod.containers.iter_mut()) {
        if container.name == SIDECAR_CONTAINER {
            container.security_context = Some(sidecar_context.clone());
            container.volume_mounts.get_or_insert_with(Vec::new).push(VolumeMount {
                name: SIDECAR_TMP_VOLUME.into(),
                mount_path: "/tmp".into(),
                ..Default::default()
            });
        } else {
            container.security_context.clone_from(&container_context);
        }
        if container.name == SEID_CONTAINER {
            container.resources.clone_from(&settings.resources);
        }
    }
    pod.volumes.get_or_insert_with(Vec::new).push(Volume {
        name: SIDECAR_TMP_VOLUME.into(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Default::default()
    });
}

/// The digest of the pod settings `spec` itself gives, storage aside (a claim's size grows in place; its class
/// is fixed once made), and of the sidecar's resources; `None` when it gives none. Stable across processes: maps
/// in the settings are ordered.
pub fn pod_settings_digest(spec: &SeiNodeSpec) -> Option<String> {
    let settings = PodSettings { storage: None, ..spec.pod_settings() };
    let sidecar_resources = spec.sidecar.as_ref().and_then(|s| s.resources.clone());
    if settings == PodSettings::default() && sidecar_resources.is_none() {
        return None;
    }
    let canonical = match sidecar_resources {
        // Without sidecar resources, the settings alone.
        None => serde_json::to_vec(&settings).unwrap_or_default(),
        Some(resources) => serde_json::to_vec(&(&settings, resources)).unwrap_or_default(),
    };
    Some(crate::digest::short_sha256(&canonical))
}

fn service_ports(node: &SeiNode) -> Vec<ServicePort> {
    [("p2p", P2P_PORT), ("rpc", RPC_PORT), ("sidecar", node.spec.sidecar_port())]
        .into_iter()
        .map(|(name, number)| ServicePort { name: Some(name.into()), port: number, ..Default::default() })
        .collect()
}

/// The node's StatefulSet: one replica running seid with the node's image, beside its sidecar.
///
/// `podManagementPolicy: Parallel`: under the default OrderedReady, Kubernetes' StatefulSet controller does not
/// replace a pod that is not Running and Ready when the template changes — and a node crash-looping at an
/// upgrade height is exactly the pod an InPlace upgrade must replace. With one replica, Parallel costs nothing.
pub fn stateful_set(node: &SeiNode, settings: &PodSettings) -> StatefulSet {
    let name = node_name(node);
    let mut pod_labels = node.spec.pod_labels.clone();
    pod_labels.extend(node_labels(node));
    let mut pod = PodSpec {
        init_containers: Some(vec![seid_init_container(&node.spec.image, node), sidecar_container(node)]),
        containers: vec![node_seid_container(node)],
        // The sidecar's `restart-seid` finds seid in /proc (sei-protocol/seictl `sidecar/tasks/restart_seid.go`,
        // `seidStartFinder`); upstream sets the same (sei-protocol/sei-k8s-controller
        // `internal/noderesource/noderesource.go`).
        share_process_namespace: Some(true),
        ..Default::default()
    };
    apply_pod_settings(&mut pod, settings);
    let annotations =
        pod_settings_digest(&node.spec).map(|d| BTreeMap::from([(ANNOTATION_POD_SETTINGS.to_owned(), d)]));
    StatefulSet {
        metadata: owned_meta(node, names::node_workload(&name), node_labels(node)),
        spec: Some(StatefulSetSpec {
            replicas: Some(1),
            service_name: Some(names::node_workload(&name)),
            pod_management_policy: Some("Parallel".into()),
            selector: LabelSelector { match_labels: Some(labels(&[(LABEL_NODE, &name)])), ..Default::default() },
            // The volume goes with the StatefulSet (and so with the SeiNode that owns it), not before.
            persistent_volume_claim_retention_policy: Some(StatefulSetPersistentVolumeClaimRetentionPolicy {
                when_deleted: Some("Delete".into()),
                when_scaled: Some("Retain".into()),
            }),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta { labels: Some(pod_labels), annotations, ..Default::default() }),
                spec: Some(pod),
            },
            volume_claim_templates: Some(vec![PersistentVolumeClaim {
                metadata: ObjectMeta { name: Some(DATA_VOLUME.into()), ..Default::default() },
                spec: Some(volume_claim_spec(settings)),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The node's headless Service, giving its pod the DNS name `<node>-0.<node>.<namespace>.svc`.
/// `publishNotReadyAddresses`: the sidecar must be reachable before the pod is Ready — readiness waits on the
/// `mark-ready` the operator submits through this very name.
pub fn headless_service(node: &SeiNode) -> Service {
    let name = node_name(node);
    Service {
        metadata: owned_meta(node, names::node_workload(&name), node_labels(node)),
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".into()),
            publish_not_ready_addresses: Some(true),
            selector: Some(labels(&[(LABEL_NODE, &name)])),
            ports: Some(service_ports(node)),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The node's data volume, created ahead of its StatefulSet when a bootstrap Job must fill it first; the
/// StatefulSet adopts it by name (`data-<node>-0`).
pub fn data_volume(node: &SeiNode, settings: &PodSettings) -> PersistentVolumeClaim {
    let name = node_name(node);
    PersistentVolumeClaim {
        metadata: owned_meta(node, names::node_volume(&name), node_labels(node)),
        spec: Some(volume_claim_spec(settings)),
        ..Default::default()
    }
}

fn bootstrap_labels(node: &SeiNode) -> BTreeMap<String, String> {
    labels(&[(LABEL_NODE, &node_name(node)), (LABEL_BOOTSTRAP, "true")])
}

/// The bootstrap Job: the bootstrap image, beside the sidecar, on the node's volume. The operator submits the
/// sidecar's tasks (restore to the target, config, `mark-ready`) to this pod exactly as to a node's; seid's
/// wrapper then runs it to `--halt-height` and maps its exit 130 to success.
///
/// `hostname` and `subdomain` give the pod the DNS name the operator reaches its sidecar by
/// (`<node>-bootstrap.<node>-bootstrap.<namespace>.svc`, through the bootstrap Service); a Job's pods have none
/// otherwise.
pub fn bootstrap_job(node: &SeiNode, settings: &PodSettings, image: &str, halt_height: i64) -> Job {
    let name = node_name(node);
    let seid = Container {
        name: SEID_CONTAINER.to_owned(),
        image: Some(image.to_owned()),
        command: Some(vec![SHELL.into(), "-c".into()]),
        args: Some(vec![bootstrap_start_script(node.spec.sidecar_port(), halt_height)]),
        ports: Some(vec![port("p2p", P2P_PORT), port("rpc", RPC_PORT)]),
        volume_mounts: Some(vec![data_mount()]),
        ..Default::default()
    };
    let mut pod = PodSpec {
        hostname: Some(names::bootstrap(&name)),
        subdomain: Some(names::bootstrap(&name)),
        restart_policy: Some("Never".into()),
        init_containers: Some(vec![seid_init_container(image, node), sidecar_container(node)]),
        containers: vec![seid],
        volumes: Some(vec![Volume {
            name: DATA_VOLUME.into(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: names::node_volume(&name),
                ..Default::default()
            }),
            ..Default::default()
        }]),
        ..Default::default()
    };
    apply_pod_settings(&mut pod, settings);
    Job {
        metadata: owned_meta(node, names::bootstrap(&name), bootstrap_labels(node)),
        spec: Some(JobSpec {
            backoff_limit: Some(3),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta { labels: Some(bootstrap_labels(node)), ..Default::default() }),
                spec: Some(pod),
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The bootstrap Job's headless Service.
pub fn bootstrap_service(node: &SeiNode) -> Service {
    let name = node_name(node);
    Service {
        metadata: owned_meta(node, names::bootstrap(&name), bootstrap_labels(node)),
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".into()),
            publish_not_ready_addresses: Some(true),
            selector: Some(bootstrap_labels(node)),
            ports: Some(service_ports(node)),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The deployment's Service, selecting the pods of one revision of its nodes.
pub fn deployment_service(deployment: &SeiNodeDeployment, revision: &str) -> Service {
    let name = deployment.metadata.name.clone().unwrap_or_default();
    Service {
        metadata: ObjectMeta {
            name: Some(names::deployment_service(&name)),
            namespace: deployment.metadata.namespace.clone(),
            labels: Some(labels(&[(LABEL_DEPLOYMENT, &name)])),
            owner_references: controller_reference(deployment).map(|r| vec![r]),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            selector: Some(labels(&[(LABEL_DEPLOYMENT, &name), (LABEL_REVISION, revision)])),
            ports: Some(
                [("p2p", P2P_PORT), ("rpc", RPC_PORT)]
                    .into_iter()
                    .map(|(n, p)| ServicePort { name: Some(n.into()), port: p, ..Default::default() })
                    .collect(),
            ),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The revision a deployment Service selects.
pub fn selected_revision(service: &Service) -> Option<&str> {
    service.spec.as_ref()?.selector.as_ref()?.get(LABEL_REVISION).map(String::as_str)
}

/// The image of a pod template's seid container.
pub fn seid_image(template: &PodTemplateSpec) -> Option<&str> {
    template.spec.as_ref()?.containers.iter().find(|c| c.name == SEID_CONTAINER)?.image.as_deref()
}

/// The image of a pod template's sidecar (a native sidecar: among the init containers).
pub fn sidecar_image(template: &PodTemplateSpec) -> Option<&str> {
    template.spec.as_ref()?.init_containers.as_ref()?.iter().find(|c| c.name == SIDECAR_CONTAINER)?.image.as_deref()
}
