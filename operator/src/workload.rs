//! The Kubernetes objects behind a SeiNode and a SeiNodeDeployment, built as values: the node's StatefulSet,
//! headless Service and data volume; its bootstrap Job and Service; the deployment's Service. Tasks create them;
//! the simulator's fake controllers read the same fields (container names, arguments, labels) that the real
//! kubelet and controllers would.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetSpec};
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EnvVar, PersistentVolumeClaim, PersistentVolumeClaimSpec,
    PersistentVolumeClaimVolumeSource, PodSpec, PodTemplateSpec, Service, ServicePort, ServiceSpec, Volume,
    VolumeMount, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

use crate::api::{SeiNode, SeiNodeDeployment};
use crate::meta::{LABEL_DEPLOYMENT, LABEL_NODE, LABEL_REVISION, controller_reference};
use crate::names;

/// The seid container, in StatefulSet and Job pods alike.
pub const SEID_CONTAINER: &str = "seid";
/// The sidecar container.
pub const SIDECAR_CONTAINER: &str = "sidecar";
/// The sidecar image when the spec names none.
pub const DEFAULT_SIDECAR_IMAGE: &str = "seictl:latest";
/// Label on a bootstrap Job's pod, so its Service selects it and not the node's own pod.
pub const LABEL_BOOTSTRAP: &str = "sei.io/bootstrap";
/// Environment variable telling a bootstrap pod's sidecar to prepare the volume on its own (restore the newest
/// snapshot at or below the halt height, then mark seid ready): nobody submits tasks to a bootstrap Job.
pub const ENV_BOOTSTRAP: &str = "SEI_BOOTSTRAP";
/// seid's argument that makes it stop cleanly after committing the given block.
pub const HALT_HEIGHT_ARG: &str = "--halt-height";
/// The volume claim template of a node's StatefulSet, and the volume name in its pods.
pub const DATA_VOLUME: &str = "data";
/// Where chain data is mounted.
pub const DATA_PATH: &str = "/sei";
/// Size requested for a node's data volume.
pub const DATA_VOLUME_SIZE: &str = "500Gi";

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

fn seid_container(image: &str, node: &SeiNode, extra_args: &[String]) -> Container {
    let entrypoint = node.spec.entrypoint.clone().unwrap_or_default();
    let mut args = entrypoint.args;
    args.extend(extra_args.iter().cloned());
    Container {
        name: SEID_CONTAINER.to_owned(),
        image: Some(image.to_owned()),
        command: (!entrypoint.command.is_empty()).then_some(entrypoint.command),
        args: (!args.is_empty()).then_some(args),
        ports: Some(vec![port("p2p", P2P_PORT), port("rpc", RPC_PORT)]),
        volume_mounts: Some(vec![data_mount()]),
        ..Default::default()
    }
}

fn sidecar_container(node: &SeiNode, env: Vec<EnvVar>) -> Container {
    let sidecar = node.spec.sidecar.clone().unwrap_or_default();
    let mut env = env;
    env.push(EnvVar { name: "SEI_CHAIN_ID".into(), value: Some(node.spec.chain_id.clone()), ..Default::default() });
    Container {
        name: SIDECAR_CONTAINER.to_owned(),
        image: Some(sidecar.image.unwrap_or_else(|| DEFAULT_SIDECAR_IMAGE.to_owned())),
        ports: Some(vec![port("sidecar", node.spec.sidecar_port())]),
        resources: sidecar.resources,
        env: Some(env),
        volume_mounts: Some(vec![data_mount()]),
        ..Default::default()
    }
}

fn volume_claim_spec() -> PersistentVolumeClaimSpec {
    PersistentVolumeClaimSpec {
        access_modes: Some(vec!["ReadWriteOnce".into()]),
        resources: Some(VolumeResourceRequirements {
            requests: Some(BTreeMap::from([("storage".to_owned(), Quantity(DATA_VOLUME_SIZE.to_owned()))])),
            ..Default::default()
        }),
        ..Default::default()
    }
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
pub fn stateful_set(node: &SeiNode) -> StatefulSet {
    let name = node_name(node);
    let mut pod_labels = node.spec.pod_labels.clone();
    pod_labels.extend(node_labels(node));
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
                metadata: Some(ObjectMeta { labels: Some(pod_labels), ..Default::default() }),
                spec: Some(PodSpec {
                    containers: vec![seid_container(&node.spec.image, node, &[]), sidecar_container(node, vec![])],
                    ..Default::default()
                }),
            },
            volume_claim_templates: Some(vec![PersistentVolumeClaim {
                metadata: ObjectMeta { name: Some(DATA_VOLUME.into()), ..Default::default() },
                spec: Some(volume_claim_spec()),
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
pub fn data_volume(node: &SeiNode) -> PersistentVolumeClaim {
    let name = node_name(node);
    PersistentVolumeClaim {
        metadata: owned_meta(node, names::node_volume(&name), node_labels(node)),
        spec: Some(volume_claim_spec()),
        ..Default::default()
    }
}

fn bootstrap_labels(node: &SeiNode) -> BTreeMap<String, String> {
    labels(&[(LABEL_NODE, &node_name(node)), (LABEL_BOOTSTRAP, "true")])
}

/// The bootstrap Job: the bootstrap image syncs the node's volume to `halt_height` and exits 0.
///
/// The sidecar is a native sidecar (an init container with `restartPolicy: Always`, Kubernetes 1.29+): a Job's
/// pod completes when its regular containers exit, and a sidecar among them would keep it Running forever.
pub fn bootstrap_job(node: &SeiNode, image: &str, halt_height: i64) -> Job {
    let name = node_name(node);
    let halt = [HALT_HEIGHT_ARG.to_owned(), halt_height.to_string()];
    let bootstrap_env = vec![EnvVar { name: ENV_BOOTSTRAP.into(), value: Some("true".into()), ..Default::default() }];
    Job {
        metadata: owned_meta(node, names::bootstrap(&name), bootstrap_labels(node)),
        spec: Some(JobSpec {
            backoff_limit: Some(3),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta { labels: Some(bootstrap_labels(node)), ..Default::default() }),
                spec: Some(PodSpec {
                    restart_policy: Some("Never".into()),
                    init_containers: Some(vec![Container {
                        restart_policy: Some("Always".into()),
                        ..sidecar_container(node, bootstrap_env)
                    }]),
                    containers: vec![seid_container(image, node, &halt)],
                    volumes: Some(vec![Volume {
                        name: DATA_VOLUME.into(),
                        persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                            claim_name: names::node_volume(&name),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }]),
                    ..Default::default()
                }),
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
