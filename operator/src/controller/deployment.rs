//! The SeiNodeDeployment reconciler (SPEC §5): one executor step of the active plan, the rollout rules, the
//! active set's children, stray nodes, and one status write.

use std::time::Duration;

use k8s_openapi::api::core::v1::Service;

use super::{Action, FINALIZER, ReconcileError};
use crate::api::{
    DeletionPolicy, DeploymentPhase, PendingEvent, PlanPhase, SeiNode, SeiNodeDeployment, SeiNodeDeploymentStatus,
};
use crate::children::{active_spec, child_node, missing_plan_children, scale_up_spec, with_template_fields};
use crate::clock::{Clock, SignedDuration};
use crate::cluster::{
    Cluster, ClusterError, Event, EventType, ObjectRef, OptionalExt, create_if_missing, delete_if_present,
};
use crate::meta::{LABEL_DEPLOYMENT, is_controlled_by};
use crate::names;
use crate::plan::executor::{Next, POLL_INTERVAL, execute};
use crate::rollout::{Observed, RolloutConfig, evaluate, is_superseded, stray_nodes};
use crate::tasks::DeploymentTasks;
use crate::workload::{deployment_service, selected_revision};

/// What the deployment reconciler works with. No sidecar: the deployment controller never calls one.
pub struct DeploymentContext<C, K> {
    pub cluster: C,
    pub clock: K,
    pub config: RolloutConfig,
}

/// Reconciles SeiNodeDeployment `namespace/name`.
pub async fn reconcile_deployment<C: Cluster, K: Clock>(
    ctx: &DeploymentContext<C, K>,
    namespace: &str,
    name: &str,
) -> Result<Action, ReconcileError> {
    let Some(deployment) = ctx.cluster.get::<SeiNodeDeployment>(namespace, name).await.optional()? else {
        return Ok(Action::AwaitChange);
    };
    // Events a stored transition still owes: its write may have been a crashed operator's last act. Emitted
    // first, so they come before any this reconcile adds; keyed, so one recorded already is not recorded again.
    let mut still_owed = Vec::new();
    for pending in deployment.status.iter().flat_map(|s| s.pending_events.iter()) {
        if !deliver(&ctx.cluster, &owed_event(&deployment, pending)).await {
            still_owed.push(pending.clone());
        }
    }
    let nodes = owned_nodes(&ctx.cluster, &deployment).await?;
    if deployment.metadata.deletion_timestamp.is_some() {
        return finalize(ctx, deployment, &nodes).await;
    }
    if !deployment.metadata.finalizers.iter().flatten().any(|f| f == FINALIZER) {
        let mut with_finalizer = deployment.clone();
        with_finalizer.metadata.finalizers.get_or_insert_with(Vec::new).push(FINALIZER.to_owned());
        ctx.cluster.replace(&with_finalizer).await?;
        return Ok(Action::Requeue(Duration::ZERO));
    }

    let service_name = names::deployment_service(name);
    let service = ctx.cluster.get::<Service>(namespace, &service_name).await.optional()?;
    let service_revision = service.as_ref().and_then(selected_revision).map(str::to_owned);
    let now = ctx.clock.now();

    // One executor step on the plan as stored — never on a plan this reconcile builds (it is persisted first),
    // and not on a plan about to be superseded.
    let mut stepped = deployment.clone();
    let status = stepped.status.get_or_insert_with(SeiNodeDeploymentStatus::default);
    let superseded = status.rollout.as_ref().is_some_and(|r| is_superseded(r, &deployment));
    let mut next = Action::AwaitChange;
    if let Some(plan) = status.plan.as_mut().filter(|p| p.phase == PlanPhase::Active && !superseded) {
        let runner = DeploymentTasks { cluster: &ctx.cluster, deployment: &deployment };
        next = match execute(plan, &runner, now).await {
            Next::RequeueAfter(after) => Action::Requeue(after),
            Next::Continue | Next::Finished(_) => Action::Requeue(Duration::ZERO),
        };
    }

    let observed = Observed { nodes: &nodes, service_revision: service_revision.as_deref(), now };
    let decision = evaluate(&stepped, &observed, &ctx.config);
    let mut status = decision.status;
    // The events of this decision are owed until a later reconcile has seen them delivered: stored with it.
    status.pending_events = still_owed.into_iter().chain(decision.events.iter().filter_map(pending_event)).collect();

    let plan_active = status.plan.as_ref().is_some_and(|p| p.phase == PlanPhase::Active);
    if !plan_active {
        ensure_children(&ctx.cluster, &deployment, &status, &nodes).await?;
        // The Service appears once a node of the active set runs: it never sends traffic to a revision with
        // no running node.
        if service.is_none()
            && status.ready_replicas > 0
            && let Some(active) = &status.active_set
        {
            create_if_missing(&ctx.cluster, &deployment_service(&deployment, &active.revision)).await?;
        }
    }
    let plan_created =
        status.plan.as_ref().map(|p| &p.id) != deployment.status.as_ref().and_then(|s| s.plan.as_ref()).map(|p| &p.id);
    if Some(&status) != deployment.status.as_ref() {
        let mut written = deployment.clone();
        written.status = Some(status.clone());
        ctx.cluster.replace_status(&written).await?;
    }
    for event in &decision.events {
        // An event is a report, not state: failing to record one must not undo the reconcile. One that is owed
        // (keyed) stays in the stored status and is delivered again by the next reconcile if this fails.
        deliver(&ctx.cluster, event).await;
    }

    // Strays are deleted only once the status that makes them strays is stored: a decision that ends a rollout
    // and deletes its entrants must not be lost to a failed write after the deletions (the plan would then wait
    // forever for entrants that are gone). Level-triggered: a deletion that fails is retried from the stored
    // status.
    for stray in stray_nodes(&status, &nodes, service_revision.as_deref()) {
        delete_if_present::<C, SeiNode>(&ctx.cluster, namespace, &stray).await?;
    }
    // While a plan is Active the children are the plan's business, but one that is missing (a user deleted it,
    // even mid-rollout, perhaps a Failed node to retry it) is made again with the spec the plan gives it: the
    // plan waits for it and would never finish. After the status write, like the strays: a decision that ends
    // the plan must not race a node made for it.
    if plan_active {
        for child in missing_plan_children(&deployment, &status, &nodes) {
            create_if_missing(&ctx.cluster, &child).await?;
        }
    }

    if plan_created && plan_active {
        return Ok(Action::Requeue(Duration::ZERO));
    }
    if !status.pending_events.is_empty() {
        // The next reconcile delivers them (again: a repeat is refused as recorded) and drops them.
        next = next.min(Action::Requeue(Duration::from_secs(1)));
    }
    if let Some(rollout) = &status.rollout {
        // Wake up when the rollout would stall, so the Stalled signal is not late.
        let stall_at = rollout.started_at.0.checked_add(ctx.config.stall_threshold).unwrap_or(now);
        let until_stall =
            Duration::try_from(stall_at.duration_since(now).max(SignedDuration::ZERO)).unwrap_or(POLL_INTERVAL);
        next =
            next.min(Action::Requeue(until_stall.max(Duration::from_secs(1)))).min(Action::Requeue(POLL_INTERVAL * 6));
    }
    Ok(next)
}

/// Emits `event`; whether it is recorded now (an AlreadyExists means it was, by an earlier emission).
async fn deliver<C: Cluster>(cluster: &C, event: &Event) -> bool {
    matches!(cluster.emit_event(event).await, Ok(()) | Err(ClusterError::AlreadyExists(_)))
}

/// The stored form of an owed event; an event without a key is a best-effort report, not owed.
fn pending_event(event: &Event) -> Option<PendingEvent> {
    let type_ = match event.type_ {
        EventType::Normal => "Normal",
        EventType::Warning => "Warning",
    };
    Some(PendingEvent {
        type_: type_.to_owned(),
        reason: event.reason.clone(),
        message: event.message.clone(),
        key: event.key.clone()?,
    })
}

/// The event an owed entry of `deployment`'s status stands for.
fn owed_event(deployment: &SeiNodeDeployment, pending: &PendingEvent) -> Event {
    let regarding = ObjectRef::to(deployment);
    let event = match pending.type_.as_str() {
        "Warning" => Event::warning(regarding, &pending.reason, pending.message.clone()),
        _ => Event::normal(regarding, &pending.reason, pending.message.clone()),
    };
    event.keyed(pending.key.clone())
}

/// Every SeiNode this deployment controls, sorted by name.
async fn owned_nodes<C: Cluster>(cluster: &C, deployment: &SeiNodeDeployment) -> Result<Vec<SeiNode>, ClusterError> {
    let namespace = deployment.metadata.namespace.as_deref().unwrap_or_default();
    let name = deployment.metadata.name.clone().unwrap_or_default();
    let uid = deployment.metadata.uid.clone().unwrap_or_default();
    let selector = [(LABEL_DEPLOYMENT.to_owned(), name)].into();
    let nodes: Vec<SeiNode> = cluster.list(namespace, &selector).await?;
    Ok(nodes.into_iter().filter(|n| is_controlled_by(&n.metadata, &uid)).collect())
}

/// Creates missing active-set nodes and brings the template's non-rollout fields to the existing ones. A node
/// created here (baseline, scale-up) gets the active set's rollout fields — those of a node already running
/// the recorded template hash — never those of a pending or failed target.
async fn ensure_children<C: Cluster>(
    cluster: &C,
    deployment: &SeiNodeDeployment,
    status: &SeiNodeDeploymentStatus,
    nodes: &[SeiNode],
) -> Result<(), ClusterError> {
    let Some(active) = &status.active_set else { return Ok(()) };
    let template = &deployment.spec.template;
    let active_spec = active_spec(deployment, status, nodes);
    let metadata = template.metadata.clone().unwrap_or_default();
    for (ordinal, name) in (0u32..).zip(&status.incumbent_nodes) {
        match nodes.iter().find(|n| n.metadata.name.as_deref() == Some(name.as_str())) {
            None => {
                let spec = scale_up_spec(&template.spec, &active_spec);
                let child = child_node(
                    deployment,
                    name,
                    ordinal,
                    &active.revision,
                    (&metadata.labels, &metadata.annotations),
                    spec,
                );
                create_if_missing(cluster, &child).await?;
            }
            Some(existing) if existing.metadata.deletion_timestamp.is_none() => {
                let updated = with_template_fields(template, existing);
                if updated != *existing {
                    cluster.replace(&updated).await?;
                }
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// Deletion: `Delete` removes the nodes and the Service first; `Retain` detaches the nodes (drops their owner
/// reference) so they keep running. Then the finalizer goes, and with it the deployment.
async fn finalize<C: Cluster, K: Clock>(
    ctx: &DeploymentContext<C, K>,
    deployment: SeiNodeDeployment,
    nodes: &[SeiNode],
) -> Result<Action, ReconcileError> {
    let namespace = deployment.metadata.namespace.clone().unwrap_or_default();
    let name = deployment.metadata.name.clone().unwrap_or_default();
    let mut deployment = deployment;
    if deployment.status.as_ref().and_then(|s| s.phase) != Some(DeploymentPhase::Terminating) {
        deployment.status.get_or_insert_with(Default::default).phase = Some(DeploymentPhase::Terminating);
        deployment = ctx.cluster.replace_status(&deployment).await?;
    }
    if !deployment.metadata.finalizers.iter().flatten().any(|f| f == FINALIZER) {
        return Ok(Action::AwaitChange);
    }
    let uid = deployment.metadata.uid.clone().unwrap_or_default();
    match deployment.spec.deletion_policy {
        DeletionPolicy::Delete => {
            for node in nodes {
                delete_if_present::<C, SeiNode>(
                    &ctx.cluster,
                    &namespace,
                    node.metadata.name.as_deref().unwrap_or_default(),
                )
                .await?;
            }
            delete_if_present::<C, Service>(&ctx.cluster, &namespace, &names::deployment_service(&name)).await?;
            if !nodes.is_empty() {
                return Ok(Action::Requeue(POLL_INTERVAL));
            }
        }
        DeletionPolicy::Retain => {
            for node in nodes {
                let mut detached = node.clone();
                if let Some(refs) = detached.metadata.owner_references.as_mut() {
                    refs.retain(|r| r.uid != uid);
                }
                ctx.cluster.replace(&detached).await?;
            }
        }
    }
    if let Some(finalizers) = deployment.metadata.finalizers.as_mut() {
        finalizers.retain(|f| f != FINALIZER);
    }
    ctx.cluster.replace(&deployment).await?;
    Ok(Action::AwaitChange)
}
