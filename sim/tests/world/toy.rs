//! A toy SeiNode controller, end to end through the world: it creates the node's headless Service and
//! StatefulSet, keeps the sidecar marked ready, rolls the image and reports `currentImage` only once the
//! StatefulSet has truly rolled — every invariant checked at every step. It shows how the next issue's
//! controllers plug in, and exercises the operator's paths (admission of status writes, owner-reference watches).

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Pod, Service};
use sei_operator_core::api::SeiNode;
use sei_operator_core::cluster::{Cluster, ObjectRef, OptionalExt};
use sei_operator_core::controller::ReconcileError;
use sei_operator_core::objects::meta::controller_reference;
use sei_operator_core::sidecar::wire::TaskRequest;
use sei_operator_core::sidecar::{PodAddress, Sidecar};
use sei_sim::operator_host::{OperatorContext, Reconciler, Requeue};
use uuid::Uuid;

use crate::common::*;

struct ToyNodes;

async fn reconcile(ctx: &OperatorContext, key: &ObjectRef) -> Result<Requeue, ReconcileError> {
    let cluster = &ctx.cluster;
    let Some(node) = cluster.get::<SeiNode>(&key.namespace, &key.name).await.optional()? else {
        return Ok(Requeue::Done);
    };
    let owner = controller_reference(&node);
    if cluster.get::<Service>(NS, &key.name).await.optional()?.is_none() {
        let mut service = headless_service(&key.name);
        service.metadata.owner_references = owner.clone().map(|o| vec![o]);
        cluster.create(&service).await?;
    }
    let set = match cluster.get::<StatefulSet>(NS, &key.name).await.optional()? {
        None => {
            let mut set = statefulset(&key.name, &node.spec.image, true, "Parallel");
            set.metadata.owner_references = owner.map(|o| vec![o]);
            cluster.create(&set).await?
        }
        Some(mut set) => {
            let container = &mut set.spec.as_mut().unwrap().template.spec.as_mut().unwrap().containers[0];
            if container.image.as_deref() != Some(node.spec.image.as_str()) {
                container.image = Some(node.spec.image.clone());
                cluster.replace(&set).await?
            } else {
                std::sync::Arc::new(set)
            }
        }
    };
    let pod = PodAddress::for_node(NS, &key.name, 7777);
    let pod_uid = cluster.get::<Pod>(NS, &format!("{}-0", key.name)).await.optional()?.and_then(|p| p.metadata.uid);
    if let Some(uid) = pod_uid
        && ctx.sidecar.healthz(&pod).await == Ok(false)
    {
        // seid must not run on a volume whose config nobody wrote (seid-runs-only-on-a-prepared-volume): the
        // config first, once per node — a completed id is a no-op on every later pod.
        let config = Uuid::new_v5(&Uuid::NAMESPACE_OID, format!("{key}/config-apply").as_bytes());
        let configured = matches!(
            ctx.sidecar.get_task(&pod, config).await,
            Ok(Some(task)) if task.status == sei_operator_core::sidecar::wire::TaskState::Completed
        );
        if !configured {
            let request = TaskRequest { id: Some(config), type_: "config-apply".into(), params: None };
            let _ = ctx.sidecar.submit_task(&pod, &request).await;
        } else {
            // The sidecar's task table is on the volume and outlives the pod; its ready flag does not. So each
            // pod gets its own mark-ready id (the toy never restarts a sidecar on its own).
            let id = Uuid::new_v5(&Uuid::NAMESPACE_OID, format!("{key}/{uid}/mark-ready").as_bytes());
            let request = TaskRequest { id: Some(id), type_: "mark-ready".into(), params: None };
            let _ = ctx.sidecar.submit_task(&pod, &request).await;
        }
    }
    let status = set.status.clone().unwrap_or_default();
    let rolled = status.observed_generation == set.metadata.generation
        && status.current_revision.as_deref().is_some_and(|r| !r.is_empty())
        && status.current_revision == status.update_revision
        && status.ready_replicas.unwrap_or(0) >= 1;
    let image = set.spec.as_ref().and_then(|s| s.template.spec.as_ref()).and_then(|s| s.containers[0].image.clone());
    if rolled && node.status.as_ref().and_then(|s| s.current_image.clone()) != image {
        let mut updated = node.clone();
        updated.status.get_or_insert_default().current_image = image;
        cluster.replace_status(&updated).await?;
    }
    Ok(Requeue::After(secs(5)))
}

impl Reconciler for ToyNodes {
    fn kinds(&self) -> Vec<String> {
        vec!["SeiNode".into()]
    }

    async fn reconcile(&self, ctx: &OperatorContext, key: &ObjectRef) -> Requeue {
        reconcile(ctx, key).await.unwrap_or_else(Requeue::Error)
    }
}

fn current_image(world: &sei_sim::World) -> Option<String> {
    world.get::<SeiNode>(NS, "n").ok()?.status?.current_image
}

#[test]
fn a_toy_node_controller_rolls_a_node_across_an_upgrade_with_every_invariant_held() {
    let mut world = world(50);
    world.create(&crate::operator::sei_node("n")).unwrap();
    world.start_operator(|| ToyNodes);
    world.run_until("running v1", secs(120), |w| current_image(w).as_deref() == Some("sei:v1")).unwrap();

    // The old binary halts at the upgrade once the validators switch; the new image takes over from 1099.
    world
        .run_until("upgrade panic", secs(400), |w| w.inspect(|s| s.ledger.panics.iter().any(|p| p.upgrade_panic)))
        .unwrap();
    world.edit::<SeiNode>(NS, "n", |n| n.spec.image = "sei:v2".into()).unwrap();
    world.run_until("running v2", secs(300), |w| current_image(w).as_deref() == Some("sei:v2")).unwrap();
    world.run_for(secs(60)).unwrap();
    let status = world
        .probe("test", |s| async move { s.chain_status(&PodAddress::for_node(NS, "n", 7777)).await })
        .unwrap()
        .unwrap();
    assert!(status.latest_height > UPGRADE_HEIGHT, "{status:?}");
    assert_eq!(world.inspect(|s| s.ledger.panics.len()), 1, "only the expected panic of the old binary");
}
