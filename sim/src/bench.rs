//! The benchmark fleet: `pods` SeiNodes, each with its headless Service and a one-replica StatefulSet (seid
//! plus sidecar), and an operator host whose reconciler keeps every sidecar marked ready and polls seid's RPC
//! every 10 s — the steady-state load of a real fleet. `sei-sim bench` times an hour of it.

use std::time::Duration;

use sei_operator::cluster::ObjectRef;
use sei_operator::sidecar::wire::TaskRequest;
use sei_operator::sidecar::{PodAddress, Sidecar};
use serde_json::json;
use uuid::Uuid;

use crate::chain::Chain;
use crate::operator::{OperatorContext, Reconciler, Requeue};
use crate::registry::{Binary, ImageRegistry};
use crate::world::{SimError, World};

const NAMESPACE: &str = "bench";

/// Keeps each node's sidecar marked ready and reads its chain status, every 10 s.
pub struct KeepReady;

impl Reconciler for KeepReady {
    fn kinds(&self) -> Vec<String> {
        vec!["SeiNode".into()]
    }

    async fn reconcile(&self, ctx: &OperatorContext, key: &ObjectRef) -> Requeue {
        let pod = PodAddress::for_node(&key.namespace, &key.name, 7777);
        match ctx.sidecar.healthz(&pod).await {
            Ok(true) => {
                // Errors are part of a fleet's life (restarts); the next poll retries.
                let _ = ctx.sidecar.chain_status(&pod).await;
            }
            Ok(false) => {
                let id = Uuid::new_v5(&Uuid::NAMESPACE_OID, format!("{key}/mark-ready").as_bytes());
                let request = TaskRequest { id: Some(id), type_: "mark-ready".into(), params: None };
                let _ = ctx.sidecar.submit_task(&pod, &request).await;
            }
            Err(_) => {}
        }
        Requeue::After(Duration::from_secs(10))
    }
}

/// Workers for a fleet of `pods`: about 25 pods per worker, two to four workers. turmoil's tick cost grows with
/// the cube of the host count; measured on 100 pods, 4 workers ran an hour in 1.1 s where 8 took 1.6–2.7 s.
pub fn workers_for(pods: usize) -> usize {
    pods.div_ceil(25).clamp(2, 4)
}

/// Builds the fleet, with the operator started.
pub fn fleet(pods: usize, seed: u64) -> Result<World, SimError> {
    let mut world = World::builder(seed)
        .workers(workers_for(pods))
        .chain(Chain::new("pacific-1", 1_000_000))
        .registry(ImageRegistry::default().with("sei:v1", Binary::new("v1")))
        .build()?;
    for index in 0..pods {
        let name = format!("node-{index}");
        let node = json!({
            "apiVersion": "sei.io/v1alpha1", "kind": "SeiNode",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {"chainId": "pacific-1", "image": "sei:v1", "fullNode": {}},
        });
        let service = json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {"clusterIP": "None", "publishNotReadyAddresses": true, "selector": {"sei.io/node": name}},
        });
        let set = json!({
            "apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {
                "replicas": 1,
                "serviceName": name,
                "selector": {"matchLabels": {"sei.io/node": name}},
                "template": {
                    "metadata": {"labels": {"sei.io/node": name}},
                    "spec": {"containers": [
                        {"name": "seid", "image": "sei:v1"},
                        {"name": "sidecar", "image": "seictl:v1", "ports": [{"containerPort": 7777}]},
                    ]},
                },
                "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"]}}],
            },
        });
        let decode = |e: serde_json::Error| SimError::Setup(e.to_string());
        world.create(&serde_json::from_value::<sei_operator::api::SeiNode>(node).map_err(decode)?)?;
        world.create(&serde_json::from_value::<k8s_openapi::api::core::v1::Service>(service).map_err(decode)?)?;
        world.create(&serde_json::from_value::<k8s_openapi::api::apps::v1::StatefulSet>(set).map_err(decode)?)?;
    }
    world.start_operator(|| KeepReady);
    Ok(world)
}

/// How many pods of the fleet are Ready.
pub fn ready_pods(world: &World) -> usize {
    world.inspect(|state| state.pods.values().filter(|p| p.is_ready()).count())
}
