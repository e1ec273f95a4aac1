//! The SeiNode reconciler (SPEC §6): build and run the init plan; once Running, keep the StatefulSet and
//! headless Service converged to the spec, keep the sidecar ready (re-submitting `mark-ready` to a sidecar that
//! came back Initializing, after a rollout or any other restart), and record what it observes of the pod.

use std::time::Duration;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Service;

use super::{Action, ReconcileError};
use crate::api::{PlanPhase, SeiNode, SeiNodePhase, SeiNodeStatus};
use crate::clock::Clock;
use crate::cluster::{Cluster, ClusterError, OptionalExt, create_if_missing};
use crate::meta::{ConditionUpdate, set_condition};
use crate::plan::executor::{Next, execute};
use crate::plan::ids::task_id;
use crate::plan::init_plan;
use crate::rollout::observed_current_image;
use crate::sidecar::wire::{ReadinessStatus, SidecarTaskType, TaskRequest, TaskState};
use crate::sidecar::{PodAddress, Sidecar, SidecarError};
use crate::tasks::NodeTasks;
use crate::workload::{self, SEID_CONTAINER, SIDECAR_CONTAINER};

/// How often a Running node's pod is observed.
pub const OBSERVE_INTERVAL: Duration = Duration::from_secs(10);

/// Condition on a SeiNode: its init plan's outcome.
const INITIALIZED: &str = "Initialized";

/// What the node reconciler works with.
pub struct NodeContext<C, S, K> {
    pub cluster: C,
    pub sidecar: S,
    pub clock: K,
}

/// Reconciles SeiNode `namespace/name`.
pub async fn reconcile_node<C: Cluster, S: Sidecar, K: Clock>(
    ctx: &NodeContext<C, S, K>,
    namespace: &str,
    name: &str,
) -> Result<Action, ReconcileError> {
    let Some(node) = ctx.cluster.get::<SeiNode>(namespace, name).await.optional()? else {
        return Ok(Action::AwaitChange);
    };
    let now = ctx.clock.now();
    let mut status = node.status.clone().unwrap_or_default();
    let generation = node.metadata.generation;
    let mut action = Action::AwaitChange;

    if node.metadata.deletion_timestamp.is_some() {
        // Its StatefulSet, Services, Job and volume are owned by it and go with it.
        status.phase = Some(SeiNodePhase::Terminating);
    } else {
        match status.phase.unwrap_or_default() {
            SeiNodePhase::Pending => match init_plan(&node) {
                Ok(plan) => {
                    // Persisted before its first task runs.
                    status.plan = Some(plan);
                    status.phase = Some(SeiNodePhase::Initializing);
                    action = Action::Requeue(Duration::ZERO);
                }
                Err(error) => {
                    status.phase = Some(SeiNodePhase::Failed);
                    let update = ConditionUpdate {
                        type_: INITIALIZED,
                        status: false,
                        reason: "InvalidSpec",
                        message: error.to_string(),
                        observed_generation: generation,
                    };
                    set_condition(&mut status.conditions, update, now);
                }
            },
            SeiNodePhase::Initializing => action = initialize(ctx, &node, &mut status).await?,
            SeiNodePhase::Running => {
                converge_workload(&ctx.cluster, &node).await?;
                observe(ctx, &node, &mut status).await?;
                action = Action::Requeue(OBSERVE_INTERVAL);
            }
            SeiNodePhase::Failed | SeiNodePhase::Terminating => {}
        }
    }
    status.observed_generation = generation;

    if Some(&status) != node.status.as_ref() {
        let mut written = node.clone();
        written.status = Some(status);
        ctx.cluster.replace_status(&written).await?;
    }
    Ok(action)
}

/// One executor step of the init plan; Complete → Running, Failed → Failed.
async fn initialize<C: Cluster, S: Sidecar, K: Clock>(
    ctx: &NodeContext<C, S, K>,
    node: &SeiNode,
    status: &mut SeiNodeStatus,
) -> Result<Action, ReconcileError> {
    let now = ctx.clock.now();
    let mut plan = match status.plan.take() {
        Some(plan) => plan,
        None => match init_plan(node) {
            Ok(plan) => plan,
            Err(error) => {
                status.phase = Some(SeiNodePhase::Failed);
                status.conditions.clear();
                let update = ConditionUpdate {
                    type_: INITIALIZED,
                    status: false,
                    reason: "InvalidSpec",
                    message: error.to_string(),
                    observed_generation: node.metadata.generation,
                };
                set_condition(&mut status.conditions, update, now);
                return Ok(Action::AwaitChange);
            }
        },
    };
    let runner = NodeTasks { cluster: &ctx.cluster, sidecar: &ctx.sidecar, node };
    let next = execute(&mut plan, &runner, now).await;
    let action = match next {
        Next::Finished(PlanPhase::Complete) => {
            status.phase = Some(SeiNodePhase::Running);
            let update = ConditionUpdate {
                type_: INITIALIZED,
                status: true,
                reason: "PlanComplete",
                message: format!("init plan {} complete", plan.id),
                observed_generation: node.metadata.generation,
            };
            set_condition(&mut status.conditions, update, now);
            Action::Requeue(Duration::ZERO)
        }
        Next::Finished(_) => {
            status.phase = Some(SeiNodePhase::Failed);
            let detail = plan.failed_task_detail.as_ref();
            let message = detail.map_or_else(
                || "init plan failed".to_owned(),
                |f| format!("task {} failed after {}/{} retries: {}", f.type_, f.retry_count, f.max_retries, f.error),
            );
            let update = ConditionUpdate {
                type_: INITIALIZED,
                status: false,
                reason: "PlanFailed",
                message,
                observed_generation: node.metadata.generation,
            };
            set_condition(&mut status.conditions, update, now);
            Action::AwaitChange
        }
        Next::RequeueAfter(after) => Action::Requeue(after),
        Next::Continue => Action::Requeue(Duration::ZERO),
    };
    status.plan = Some(plan);
    Ok(action)
}

/// Brings the StatefulSet's pod template to the spec (image, sidecar image, entrypoint, labels) and makes sure
/// it and the headless Service exist. Only the fields the operator owns are compared: the API server fills in
/// defaults everywhere else.
async fn converge_workload<C: Cluster>(cluster: &C, node: &SeiNode) -> Result<(), ClusterError> {
    let namespace = node.metadata.namespace.as_deref().unwrap_or_default();
    let desired = workload::stateful_set(node);
    let name = desired.metadata.name.clone().unwrap_or_default();
    match cluster.get::<StatefulSet>(namespace, &name).await.optional()? {
        None => create_if_missing(cluster, &desired).await?,
        Some(mut existing) => {
            if let (Some(spec), Some(wanted)) = (existing.spec.as_mut(), desired.spec)
                && drifted(&spec.template, &wanted.template)
            {
                spec.template = wanted.template;
                cluster.replace(&existing).await?;
            }
        }
    }
    let service = workload::headless_service(node);
    if cluster.get::<Service>(namespace, &name).await.optional()?.is_none() {
        create_if_missing(cluster, &service).await?;
    }
    Ok(())
}

fn drifted(
    existing: &k8s_openapi::api::core::v1::PodTemplateSpec,
    desired: &k8s_openapi::api::core::v1::PodTemplateSpec,
) -> bool {
    let container = |t: &k8s_openapi::api::core::v1::PodTemplateSpec, name: &str| {
        t.spec
            .as_ref()
            .and_then(|s| s.containers.iter().find(|c| c.name == name))
            .map(|c| (c.image.clone(), c.command.clone(), c.args.clone()))
    };
    let labels = |t: &k8s_openapi::api::core::v1::PodTemplateSpec| t.metadata.as_ref().and_then(|m| m.labels.clone());
    container(existing, SEID_CONTAINER) != container(desired, SEID_CONTAINER)
        || container(existing, SIDECAR_CONTAINER) != container(desired, SIDECAR_CONTAINER)
        || labels(existing) != labels(desired)
}

/// Records what the pod shows — the image it runs (once truly rolled), sidecar readiness, height — and
/// re-submits `mark-ready` to a sidecar that reports Initializing: a restarted sidecar keeps no memory, and seid
/// waits on it, so without this a pod restart outside any rollout would hang the node for good.
async fn observe<C: Cluster, S: Sidecar, K: Clock>(
    ctx: &NodeContext<C, S, K>,
    node: &SeiNode,
    status: &mut SeiNodeStatus,
) -> Result<(), ClusterError> {
    let namespace = node.metadata.namespace.as_deref().unwrap_or_default();
    let name = node.metadata.name.as_deref().unwrap_or_default();
    let sts = ctx.cluster.get::<StatefulSet>(namespace, name).await.optional()?;
    if let Some(image) = observed_current_image(sts.as_ref()) {
        status.current_image = Some(image);
    }
    let port = u16::try_from(node.spec.sidecar_port()).unwrap_or(7777);
    let pod = PodAddress::for_node(namespace, name, port);
    match ctx.sidecar.status(&pod).await {
        Ok(ReadinessStatus::Ready) => status.sidecar_ready = Some(true),
        Ok(ReadinessStatus::Initializing) => {
            status.sidecar_ready = Some(false);
            let uid = node.metadata.uid.as_deref().unwrap_or(name);
            // Unreachable now means: try again at the next observation.
            let _ = resubmit_mark_ready(&ctx.sidecar, &pod, uid).await;
        }
        Err(_) => status.sidecar_ready = Some(false),
    }
    match ctx.sidecar.chain_status(&pod).await {
        Ok(chain) => {
            status.latest_height = i64::try_from(chain.latest_height).ok();
            status.catching_up = Some(chain.catching_up);
        }
        // seid does not run (waiting on mark-ready, crash-looping): its height is unknown, not zero.
        Err(_) => status.catching_up = None,
    }
    Ok(())
}

/// How many failed `mark-ready` attempts one sidecar process may have before the node stops asking (each
/// observation then still reports the sidecar not ready, and the deployment's stall signal names the node).
const MARK_READY_ATTEMPTS: usize = 16;

/// Makes sure a `mark-ready` is running or done in the sidecar: attempt ids are derived in sequence, and the first
/// one the sidecar does not know is submitted. A sidecar answers a known id with its old result, so re-sending
/// the id of a failed attempt would never run it again; a restarted sidecar knows none and gets the first.
async fn resubmit_mark_ready<S: Sidecar>(sidecar: &S, pod: &PodAddress, node_uid: &str) -> Result<(), SidecarError> {
    for attempt in 0..MARK_READY_ATTEMPTS {
        let id = task_id(node_uid, SidecarTaskType::MarkReady.as_str(), attempt);
        match sidecar.get_task(pod, id).await? {
            Some(result) if result.status == TaskState::Failed => continue,
            Some(_) => return Ok(()),
            None => {
                let request =
                    TaskRequest { id: Some(id), type_: SidecarTaskType::MarkReady.as_str().to_owned(), params: None };
                sidecar.submit_task(pod, &request).await?;
                return Ok(());
            }
        }
    }
    Ok(())
}
