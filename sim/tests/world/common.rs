//! Shared set-up: a chain with one upgrade, a registry, and manifests for StatefulSets, Services and Jobs.

use std::time::Duration;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Service};
use sei_sim::World;
use sei_sim::node::chain::Chain;
use sei_sim::node::registry::{Binary, ImageRegistry};
use serde_json::json;

pub const NS: &str = "sei";
/// The chain's upgrade `v2` at this height; validators switch at [`SWITCH_AT`].
pub const UPGRADE_HEIGHT: u64 = 1_100;
pub const SWITCH_AT: Duration = Duration::from_secs(150);

pub fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Chain `pacific-1`: 1 s blocks from height 1000, upgrade v2 at 1100 (tip stalls at 1099 until t=150 s).
pub fn chain() -> Chain {
    Chain::new("pacific-1", 1_000).with_block_time(secs(1)).with_upgrade("v2", UPGRADE_HEIGHT, Some(SWITCH_AT))
}

pub fn registry() -> ImageRegistry {
    ImageRegistry::default()
        .with("sei:v1", Binary::new("v1"))
        .with("sei:v1.1", Binary::new("v1.1"))
        .with("sei:v2", Binary::new("v2").knowing("v2"))
        .with("sei:broken", Binary::new("broken").crashing_on_start())
        .with("seictl:v1", Binary::new("seictl"))
}

/// A world whose operator client is not held to `deploy/`'s RBAC: these tests drive the world with stand-in
/// reconcilers that touch kinds the operator never does (ConfigMaps), or play a misbehaving operator for an
/// invariant to catch (deleting a PVC). Scenarios, which run the real operator, are authorized.
pub fn world(seed: u64) -> World {
    World::builder(seed).workers(2).chain(chain()).registry(registry()).authorization(false).build().unwrap()
}

/// The `seid-init` init container: `seid init` on a volume that holds no genesis (the operator's script).
pub fn seid_init(image: &str) -> serde_json::Value {
    let script = "if [ -f /sei/config/genesis.json ]; then echo 'data directory already initialized'; \
                  else seid init n --chain-id pacific-1 --home /sei; fi";
    json!({"name": "seid-init", "image": image, "command": ["/bin/sh", "-c", script],
        "volumeMounts": [{"name": "data", "mountPath": "/sei"}]})
}

/// The sidecar as a native sidecar (an init container with `restartPolicy: Always`) on port 7777.
pub fn native_sidecar() -> serde_json::Value {
    json!({"name": "sidecar", "image": "seictl:v1", "restartPolicy": "Always",
        "env": [{"name": "SEI_SIDECAR_PORT", "value": "7777"}], "ports": [{"containerPort": 7777}]})
}

/// The operator's wrapper as seid's container command: wait for the sidecar's healthz on 7777, then `exec`
/// `seid start --home /sei`.
pub fn wrapped_seid(image: &str) -> serde_json::Value {
    let script = sei_operator_core::objects::workload::node_start_script(
        7777,
        &sei_operator_core::objects::workload::default_seid_start(),
    );
    json!({"name": "seid", "image": image, "command": ["/bin/bash", "-c"], "args": [script]})
}

/// A one-replica StatefulSet `name` running `image` with a data claim and `seid init` on it. With `sidecar`, a
/// native sidecar on 7777, seid's wrapper waiting for its healthz, and a startup probe on that healthz (no
/// readiness probe: Ready once healthz said 200); without, seid starts at once (`seid start --home /sei`).
pub fn statefulset(name: &str, image: &str, sidecar: bool, policy: &str) -> StatefulSet {
    let (containers, init) = if sidecar {
        let mut seid = wrapped_seid(image);
        seid["startupProbe"] =
            json!({"httpGet": {"path": "/v0/healthz", "port": 7777}, "periodSeconds": 5, "failureThreshold": 86400});
        (json!([seid]), json!([seid_init(image), native_sidecar()]))
    } else {
        let seid = json!({"name": "seid", "image": image, "args": ["start", "--home", "/sei"]});
        (json!([seid]), json!([seid_init(image)]))
    };
    serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "replicas": 1,
            "serviceName": name,
            "podManagementPolicy": policy,
            "selector": {"matchLabels": {"sei.io/node": name}},
            "template": {
                "metadata": {"labels": {"sei.io/node": name}},
                "spec": {"initContainers": init, "containers": containers},
            },
            "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"]}}],
        },
    }))
    .unwrap()
}

/// The node's headless Service, publishing not-ready pods (the sidecar is needed before seid is Ready).
pub fn headless_service(name: &str) -> Service {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"clusterIP": "None", "publishNotReadyAddresses": true, "selector": {"sei.io/node": name}},
    }))
    .unwrap()
}

pub fn claim(name: &str) -> PersistentVolumeClaim {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"accessModes": ["ReadWriteOnce"]},
    }))
    .unwrap()
}

/// The script that runs `seid start --home /sei --halt-height <halt>` and maps its exit 130 to 0 (the
/// operator's bootstrap script without its wait for the sidecar).
pub fn halting_script(halt: u64) -> String {
    format!("seid start --home /sei --halt-height {halt}; rc=$?; if [ \"$rc\" -eq 130 ]; then exit 0; fi; exit \"$rc\"")
}

/// A bootstrap Job running `image` to `--halt-height halt` on claim `claim`, after `seid init`, with exit 130
/// mapped to success, and no sidecar.
pub fn bootstrap_job(name: &str, image: &str, halt: u64, claim: &str) -> Job {
    serde_json::from_value(json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "backoffLimit": 0,
            "template": {"spec": {
                "restartPolicy": "Never",
                "initContainers": [seid_init(image)],
                "containers": [{"name": "seid", "image": image, "command": ["/bin/bash", "-c", halting_script(halt)]}],
                "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}],
            }},
        },
    }))
    .unwrap()
}

/// Creates claim `name` holding a volume a node's init plan has prepared (`seid init` run, the node's config
/// applied), for tests that judge something else than preparation on a SeiNode's pod.
pub fn prepared_claim(world: &World, name: &str) {
    world.create(&claim(name)).unwrap();
    world.modify(|s| {
        let volume = s
            .plane
            .volumes
            .entry(sei_operator_core::cluster::ObjectRef::new("PersistentVolumeClaim", NS, name))
            .or_default();
        volume.initialized = true;
        volume.configured = true;
    });
}

/// The StatefulSet's status, or a default one.
pub fn sts_status(world: &World, name: &str) -> k8s_openapi::api::apps::v1::StatefulSetStatus {
    world.get::<StatefulSet>(NS, name).unwrap().status.unwrap_or_default()
}

/// Whether the pod is Ready per its stored status.
pub fn pod_ready(world: &World, name: &str) -> bool {
    world.get::<k8s_openapi::api::core::v1::Pod>(NS, name).is_ok_and(|pod| {
        pod.status
            .and_then(|s| s.conditions)
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
    })
}

/// The stored pod's seid image.
pub fn pod_image(world: &World, name: &str) -> Option<String> {
    let pod = world.get::<k8s_openapi::api::core::v1::Pod>(NS, name).ok()?;
    pod.spec?.containers.into_iter().find(|c| c.name == "seid")?.image
}
