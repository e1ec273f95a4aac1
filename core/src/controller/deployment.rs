//! The SeiNodeDeployment reconciler (docs/design.md §5): one executor step of the active plan, the rollout rules, the
//! active set's children, stray nodes, and one status write.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

use super::authorization::{self, Watched};
use super::node::UP_TO_DATE;
use super::{Action, FINALIZER, ReconcileError};
use crate::api::{
    DeletionPolicy, DeploymentPhase, PendingEvent, PlanPhase, SeiNode, SeiNodeDeployment, SeiNodeDeploymentStatus,
    SeiNodePhase,
};
use crate::clock::{Clock, SignedDuration, Timestamp};
use crate::cluster::{
    Cluster, ClusterError, Event, EventType, ObjectRef, OptionalExt, create_if_missing, delete_if_present,
};
use crate::objects::children::{
    active_spec, child_node, missing_plan_children, scale_up_spec, with_quiet_template_fields, with_template_fields,
};
use crate::objects::meta::{
    ConditionUpdate, LABEL_DEPLOYMENT, LABEL_REVISION, controller_of, controller_reference, find_condition,
    is_controlled_by, set_condition,
};
use crate::objects::names;
use crate::objects::workload::{deployment_service, selected_revision};
use crate::plan::executor::{Next, POLL_INTERVAL, execute};
use crate::rollout::vocabulary::{
    EVENT_NODE_NAME_COLLISION, EVENT_NODES_ADOPTED, NODES_READY, REASON_NODE_NAME_COLLISION,
};
use crate::rollout::{Observed, RolloutConfig, evaluate, is_superseded, stray_nodes};
use crate::tasks::DeploymentTasks;

/// How often a deployment at rest is looked at again though nothing woke it. A watch that breaks and relists
/// reports what the relist holds, never what was deleted in its gap (kube-rs `kube-runtime/src/watcher.rs`,
/// `Event::InitApply`/`InitDone`: "Deleted events may be missed when restarting the stream"), so a child deleted
/// then would otherwise go unnoticed for good. controller-runtime resyncs every 10 h by default
/// (`SyncPeriod`); sei-protocol/sei-k8s-controller requeues its controllers every 30 s. Five minutes bounds the
/// outage of a missed delete at one list of the children every five minutes.
pub const RESYNC_INTERVAL: Duration = Duration::from_secs(300);

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
    let Some(deployment) = ctx.cluster.get_shared::<SeiNodeDeployment>(namespace, name).await.optional()? else {
        return Ok(Action::AwaitChange);
    };
    // Every call of the reconcile goes through `watched`, so a 403 anywhere in it is reported on the deployment.
    let watched = Watched::new(&ctx.cluster);
    let inner = DeploymentContext { cluster: &watched, clock: &ctx.clock, config: ctx.config };
    let outcome = reconcile_read_deployment(&inner, SeiNodeDeployment::clone(&deployment)).await;
    authorization::report(&ctx.cluster, &*deployment, watched.forbidden(), outcome, ctx.clock.now()).await
}

/// Reconciles the SeiNodeDeployment as read.
async fn reconcile_read_deployment<C: Cluster, K: Clock>(
    ctx: &DeploymentContext<C, K>,
    deployment: SeiNodeDeployment,
) -> Result<Action, ReconcileError> {
    let meta = &deployment.metadata;
    let (namespace, name) = (meta.namespace.clone().unwrap_or_default(), meta.name.clone().unwrap_or_default());
    let (namespace, name) = (namespace.as_str(), name.as_str());
    // Events a stored transition still owes: its write may have been a crashed operator's last act. Emitted
    // first, so they come before any this reconcile adds; keyed, so one recorded already is not recorded again.
    let mut still_owed = Vec::new();
    for pending in deployment.status.iter().flat_map(|s| s.pending_events.iter()) {
        if !deliver(&ctx.cluster, &owed_event(&deployment, pending)).await {
            still_owed.push(pending.clone());
        }
    }
    if deployment.metadata.deletion_timestamp.is_some() {
        let nodes = claim_nodes(&ctx.cluster, &deployment).await?.owned;
        return finalize(ctx, deployment, &nodes).await;
    }
    if !deployment.metadata.finalizers.iter().flatten().any(|f| f == FINALIZER) {
        let mut with_finalizer = deployment.clone();
        with_finalizer.metadata.finalizers.get_or_insert_with(Vec::new).push(FINALIZER.to_owned());
        ctx.cluster.replace(&with_finalizer).await?;
        return Ok(Action::Requeue(Duration::ZERO));
    }
    let claimed = claim_nodes(&ctx.cluster, &deployment).await?;
    if !claimed.adopted.is_empty() {
        let message = format!(
            "adopted SeiNodes {} (labelled {LABEL_DEPLOYMENT}={name}, with no controller)",
            claimed.adopted.join(", ")
        );
        deliver(&ctx.cluster, &Event::normal(ObjectRef::to(&deployment), EVENT_NODES_ADOPTED, message)).await;
    }
    let nodes = claimed.owned;

    let service_name = names::deployment_service(name);
    let service = ctx.cluster.get_shared::<Service>(namespace, &service_name).await.optional()?;
    let service_revision = service.as_deref().and_then(selected_revision).map(str::to_owned);
    let now = ctx.clock.now();

    // One executor step on the plan as stored — never on a plan this reconcile builds (it is persisted first),
    // and not on a plan about to be superseded.
    let mut stepped = deployment.clone();
    let status = stepped.status.get_or_insert_with(SeiNodeDeploymentStatus::default);
    let superseded = status.rollout.as_ref().is_some_and(|r| is_superseded(r, &deployment));
    let mut next = Action::Requeue(RESYNC_INTERVAL);
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
    let mut collisions = claimed.foreign;
    collisions.extend(service.as_ref().and_then(|s| service_collision(&deployment, s)));
    if !plan_active {
        collisions.extend(ensure_children(&ctx.cluster, &deployment, &status, &nodes).await?);
    }
    // Collisions are reported with the status they were found for: a condition that holds while they last, and
    // one Warning event each, owed like any other.
    let collision_events = report_collisions(&deployment, &mut status, &collisions, now);
    status.pending_events.extend(collision_events.iter().filter_map(pending_event));
    let plan_created =
        status.plan.as_ref().map(|p| &p.id) != deployment.status.as_ref().and_then(|s| s.plan.as_ref()).map(|p| &p.id);
    if Some(&status) != deployment.status.as_ref() {
        let mut written = deployment.clone();
        written.status = Some(status.clone());
        ctx.cluster.replace_status(&written).await?;
    }
    for event in decision.events.iter().chain(&collision_events) {
        // An event is a report, not state: failing to record one must not undo the reconcile. One that is owed
        // (keyed) stays in the stored status and is delivered again by the next reconcile if this fails.
        deliver(&ctx.cluster, event).await;
    }

    // The Service follows the active set once the status naming it is stored: a decision lost to a failed write
    // (a Conflict with an edit that changes which adopted set is active) must not leave the Service on a set
    // the stored status does not name — nothing would move it again.
    if !plan_active && status.rollout.is_none() {
        ensure_service(&ctx.cluster, &deployment, &status, service.as_deref()).await?;
    }
    let uid = deployment.metadata.uid.as_deref().unwrap_or_default();
    if service.as_ref().is_some_and(|s| !is_controlled_by(&s.metadata, uid)) {
        // A Service not its own — a predecessor's (a deployment of this name deleted and made again), which the
        // garbage collector is about to take, or a colliding holder's: look again soon to make ours once it is
        // gone, whether or not its deletion's watch event arrives.
        next = next.min(Action::Requeue(POLL_INTERVAL * 6));
    }
    // Strays are deleted only once the status that makes them strays is stored: a decision that ends a rollout
    // and deletes its entrants must not be lost to a failed write after the deletions (the plan would then wait
    // forever for entrants that are gone). Level-triggered: a deletion that fails is retried from the stored
    // status.
    let strays = stray_nodes(&status, &nodes, service_revision.as_deref());
    // The strays are judged by the revision the Service was read to select, and a read that lags may miss a switch
    // this operator made itself (its record, the status write, refused by a Conflict when a user's edit landed in
    // between): deleting the nodes it selects would leave the Service without endpoints. So before deleting a node
    // of another revision, the Service is written back exactly as read: on a current read a no-op (the API server
    // stores nothing), on a stale one a Conflict (kubernetes `staging/src/k8s.io/apiserver/pkg/registry/generic/
    // registry/store.go`, `Update`, checks the resourceVersion first), and the deletion waits for a read that has
    // caught up.
    let of_another_revision = |name: &String| {
        nodes.iter().find(|n| n.metadata.name.as_ref() == Some(name)).is_some_and(|n| {
            n.metadata.labels.as_ref().and_then(|l| l.get(LABEL_REVISION)).map(String::as_str)
                != service_revision.as_deref()
        })
    };
    if let Some(service) = service.as_deref()
        && strays.iter().any(of_another_revision)
    {
        match ctx.cluster.replace(service).await {
            Ok(_) => {}
            // Without the permission to write Services the read cannot be confirmed, and it is acted on as read:
            // `switch-traffic` needs that permission too, so no switch was made since it was revoked.
            Err(ClusterError::Forbidden { .. }) => {}
            Err(error) => return Err(error.into()),
        }
    }
    for stray in strays {
        delete_if_present::<C, SeiNode>(&ctx.cluster, namespace, &stray).await?;
    }
    // While a plan is Active the children are the plan's business, but one that is missing (a user deleted it,
    // even mid-rollout, perhaps a Failed node to retry it) is made again with the spec the plan gives it: the
    // plan waits for it and would never finish. After the status write, like the strays: a decision that ends
    // the plan must not race a node made for it.
    if plan_active {
        for child in missing_plan_children(&deployment, &status, &nodes) {
            // A name held by another is left alone: the task waiting for the node names the holder in its
            // error (an entrant's fails the plan).
            create_child(&ctx.cluster, &deployment, &child).await?;
        }
    }

    if plan_created && plan_active {
        return Ok(Action::Requeue(Duration::ZERO));
    }
    if !collisions.is_empty() {
        // The holder of a name is no child of this deployment: its deletion wakes no watch of ours (child events
        // are filtered to what concerns a child, and a stranger is none). Look again for as long as it lasts.
        next = next.min(Action::Requeue(POLL_INTERVAL * 6));
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

/// At rest, the deployment's Service selects the active set: made once a node of the set runs (it never sends
/// traffic to a revision with no running node), and moved to the set if it selects another revision (one a lost
/// decision or a user's edit left it on) once a node of the set runs — when the Service is the deployment's own.
/// The nodes it selected are strays then, deleted by a later reconcile that reads the moved Service.
async fn ensure_service<C: Cluster>(
    cluster: &C,
    deployment: &SeiNodeDeployment,
    status: &SeiNodeDeploymentStatus,
    service: Option<&Service>,
) -> Result<(), ClusterError> {
    let Some(active) = status.active_set.as_ref().filter(|_| status.ready_replicas > 0) else { return Ok(()) };
    let desired = deployment_service(deployment, &active.revision);
    let ours = |service: &Service| {
        deployment.metadata.uid.as_deref().is_some_and(|uid| is_controlled_by(&service.metadata, uid))
    };
    match service {
        None => create_if_missing(cluster, &desired).await,
        // Only its own: another's (a predecessor's, being collected) is left alone.
        Some(service) if ours(service) && selected_revision(service) != Some(active.revision.as_str()) => {
            let mut moved = service.clone();
            moved.spec.get_or_insert_with(Default::default).selector = desired.spec.and_then(|s| s.selector);
            cluster.replace(&moved).await.map(|_| ())
        }
        Some(_) => Ok(()),
    }
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

/// The SeiNodes labelled with a deployment's name, claimed as Kubernetes' controllers claim their children
/// (kubernetes/kubernetes `pkg/controller/controller_ref_manager.go`, `claimObject`).
struct Claimed {
    /// Every node the deployment controls (the adopted ones included), sorted by name.
    /// Shared as the backend listed them: the reconcile only reads them.
    owned: Vec<Arc<SeiNode>>,
    /// Names of the nodes adopted by this claim.
    adopted: Vec<String>,
    /// Labelled as the deployment's nodes but controlled by another object: never touched, reported.
    foreign: Vec<Collision>,
}

/// Claims the SeiNodes labelled `sei.io/nodedeployment=<name>`. One controlled by this deployment is its own. An
/// orphan — no controller reference, as a `Retain` delete or an orphaning delete leaves them — whose name is one
/// this deployment gives its nodes (`<name>-<i>`, `<name>-g<N>-<i>`) and that carries a revision label is adopted:
/// a controller reference to this deployment's uid is added, never while the deployment or the node is being
/// deleted, and only after a fresh read confirms the deployment is still this one and not being deleted
/// (Kubernetes' `RecheckDeletionTimestamp`). One controlled by another object is left alone and reported: the
/// deployment waits for it to go (a garbage-collected node of a deleted owner) and never counts it as its own.
async fn claim_nodes<C: Cluster>(cluster: &C, deployment: &SeiNodeDeployment) -> Result<Claimed, ClusterError> {
    let namespace = deployment.metadata.namespace.as_deref().unwrap_or_default();
    let name = deployment.metadata.name.clone().unwrap_or_default();
    let uid = deployment.metadata.uid.clone().unwrap_or_default();
    let selector = [(LABEL_DEPLOYMENT.to_owned(), name.clone())].into();
    let nodes: Vec<Arc<SeiNode>> = cluster.list(namespace, &selector).await?;
    let mut claimed = Claimed { owned: Vec::new(), adopted: Vec::new(), foreign: Vec::new() };
    let mut can_adopt = None;
    for node in nodes {
        let node_name = node.metadata.name.clone().unwrap_or_default();
        match controller_of(&node.metadata) {
            Some(owner) if owner.uid == uid => claimed.owned.push(node),
            Some(owner) => claimed.foreign.push(Collision::held_by(&node_name, owner)),
            None if !adoptable(deployment, &node) => {}
            None => {
                if can_adopt.is_none() {
                    can_adopt = Some(still_this_deployment(cluster, deployment).await?);
                }
                if can_adopt != Some(true) {
                    continue;
                }
                let mut adopted = SeiNode::clone(&node);
                adopted.metadata.owner_references.get_or_insert_with(Vec::new).extend(controller_reference(deployment));
                match cluster.replace(&adopted).await {
                    Ok(stored) => {
                        claimed.adopted.push(node_name);
                        claimed.owned.push(stored);
                    }
                    // Gone meanwhile: nothing to adopt.
                    Err(ClusterError::NotFound(_)) => {}
                    // Changed meanwhile (claimed by another?): the whole reconcile re-reads and tries again.
                    Err(other) => return Err(other),
                }
            }
        }
    }
    Ok(claimed)
}

/// Whether an orphan labelled with `deployment`'s name may be adopted: not being deleted, with a revision label,
/// and named as one of the deployment's node sets names its nodes — a node it could have made.
fn adoptable(deployment: &SeiNodeDeployment, node: &SeiNode) -> bool {
    let deployment_name = deployment.metadata.name.as_deref().unwrap_or_default();
    deployment.metadata.deletion_timestamp.is_none()
        && node.metadata.deletion_timestamp.is_none()
        && node.metadata.labels.as_ref().is_some_and(|l| l.contains_key(LABEL_REVISION))
        && node.metadata.name.as_deref().and_then(|n| names::set_generation_of(deployment_name, n)).is_some()
}

/// The "can adopt" recheck: a read of the deployment as stored now, not as the reconcile began — the same
/// object (uid) and not being deleted. An adoption by a deployment already on its way out would leave the node
/// to its garbage collection.
async fn still_this_deployment<C: Cluster>(cluster: &C, deployment: &SeiNodeDeployment) -> Result<bool, ClusterError> {
    let namespace = deployment.metadata.namespace.as_deref().unwrap_or_default();
    let name = deployment.metadata.name.as_deref().unwrap_or_default();
    // Fresh: the whole point is to see a deletion the reconcile's (cached) read may not show yet.
    let current = cluster.get_fresh::<SeiNodeDeployment>(namespace, name).await.optional()?;
    Ok(current.is_some_and(|d| d.metadata.uid == deployment.metadata.uid && d.metadata.deletion_timestamp.is_none()))
}

/// A name this deployment wants (a node's, or its Service's), held by an object it does not control.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Collision {
    /// `SeiNode` or `Service`.
    kind: &'static str,
    name: String,
    /// The holder's controller (`SeiNodeDeployment rpc-g2`) or "no controller".
    holder: String,
    holder_uid: String,
}

impl Collision {
    fn held_by(node: &str, owner: &OwnerReference) -> Self {
        Collision {
            kind: "SeiNode",
            name: node.to_owned(),
            holder: format!("{} {}", owner.kind, owner.name),
            holder_uid: owner.uid.clone(),
        }
    }

    fn of(node: &SeiNode) -> Self {
        let name = node.metadata.name.clone().unwrap_or_default();
        match controller_of(&node.metadata) {
            Some(owner) => Collision::held_by(&name, owner),
            None => Collision {
                kind: "SeiNode",
                name,
                holder: "no controller".to_owned(),
                holder_uid: node.metadata.uid.clone().unwrap_or_default(),
            },
        }
    }
}

/// The deployment's Service name held by an object it does not control: another SeiNode's headless Service (a
/// deployment `rpc-0` beside the node `rpc-0` of a deployment `rpc`), a user's Service. A predecessor's — a
/// deployment of this name deleted and made again, whose Service the garbage collector is about to take — is
/// waited out, not reported.
fn service_collision(deployment: &SeiNodeDeployment, service: &Service) -> Option<Collision> {
    let uid = deployment.metadata.uid.as_deref().unwrap_or_default();
    if is_controlled_by(&service.metadata, uid) {
        return None;
    }
    let name = service.metadata.name.clone().unwrap_or_default();
    match controller_of(&service.metadata) {
        Some(owner) if owner.kind == "SeiNodeDeployment" && Some(&owner.name) == deployment.metadata.name.as_ref() => {
            None
        }
        Some(owner) => Some(Collision { kind: "Service", ..Collision::held_by(&name, owner) }),
        None => Some(Collision {
            kind: "Service",
            name,
            holder: "no controller".to_owned(),
            holder_uid: service.metadata.uid.clone().unwrap_or_default(),
        }),
    }
}

/// What creating a child found.
enum ChildCreated {
    /// Created now, or it exists and this deployment controls it.
    Ours,
    /// The name is taken by an object this deployment does not control.
    Collision(Collision),
}

/// Creates `child` unless it exists. AlreadyExists is not success: the existing object is read, and one this
/// deployment does not control is a collision (reported, never counted as created). One the read does not
/// show (a lagging cache) is treated as ours for now: the next reconcile sees it.
async fn create_child<C: Cluster>(
    cluster: &C,
    deployment: &SeiNodeDeployment,
    child: &SeiNode,
) -> Result<ChildCreated, ClusterError> {
    match cluster.create(child).await {
        Ok(_) => Ok(ChildCreated::Ours),
        Err(ClusterError::AlreadyExists(_)) => {
            let namespace = child.metadata.namespace.as_deref().unwrap_or_default();
            let name = child.metadata.name.as_deref().unwrap_or_default();
            let uid = deployment.metadata.uid.as_deref().unwrap_or_default();
            match cluster.get_shared::<SeiNode>(namespace, name).await.optional()? {
                Some(existing) if !is_controlled_by(&existing.metadata, uid) => {
                    Ok(ChildCreated::Collision(Collision::of(&existing)))
                }
                _ => Ok(ChildCreated::Ours),
            }
        }
        Err(other) => Err(other),
    }
}

/// Sets `NodesReady` to False with reason `NodeNameCollision` while names this deployment wants are held by
/// objects it does not control, and returns one Warning event per collision (keyed by node and holder, so a
/// collision that lasts is one event). The message is stable while the collisions are: it names them, not
/// live numbers.
fn report_collisions(
    deployment: &SeiNodeDeployment,
    status: &mut SeiNodeDeploymentStatus,
    collisions: &[Collision],
    now: Timestamp,
) -> Vec<Event> {
    let mut collisions = collisions.to_vec();
    collisions.sort();
    collisions.dedup();
    if collisions.is_empty() {
        return Vec::new();
    }
    let describe = |c: &Collision| format!("{} {} is held by {}", c.kind, c.name, c.holder);
    let described: Vec<String> = collisions.iter().map(describe).collect();
    // Reported already (the stored condition names it): no second event for the same collision.
    let stored = deployment.status.as_ref().and_then(|s| find_condition(&s.conditions, NODES_READY));
    let reported = |c: &Collision| {
        stored.is_some_and(|condition| {
            condition.reason == REASON_NODE_NAME_COLLISION
                && [";", ":"].iter().any(|end| condition.message.contains(&format!("{}{end}", describe(c))))
        })
    };
    let message = format!(
        "{}: not this deployment's, never counted or changed as its own; waiting for {} to go (delete or rename the \
         holder)",
        described.join("; "),
        if collisions.len() == 1 { "it" } else { "them" }
    );
    let update = ConditionUpdate {
        type_: NODES_READY,
        status: false,
        reason: REASON_NODE_NAME_COLLISION,
        message,
        observed_generation: deployment.metadata.generation,
    };
    set_condition(&mut status.conditions, update, now);
    let this = ObjectRef::to(deployment);
    collisions
        .iter()
        .filter(|c| !reported(c))
        .map(|c| {
            let message = format!(
                "{} {} is held by {}, not by this deployment: a name collision; it is not counted as created and \
                 is never changed",
                c.kind, c.name, c.holder
            );
            Event::warning(this.clone(), EVENT_NODE_NAME_COLLISION, message)
                .keyed(format!("{EVENT_NODE_NAME_COLLISION}/{}/{}", c.name, c.holder_uid))
        })
        .collect()
}

/// Creates missing active-set nodes and brings the template's non-rollout fields to the existing ones. A node
/// created here (baseline, scale-up) gets the active set's rollout fields — those of a node already running
/// the recorded template hash — never those of a pending or failed target.
///
/// Only a node the stored status already lists is created: a node this reconcile's decision adds (a scale-up,
/// a rollout that completes in this step) waits for that decision to be stored, as strays wait to be deleted.
/// Created before, a failed status write would leave a node no stored status accounts for, and the next
/// reconcile — from a plan still Active in the store — would delete it as a stray.
async fn ensure_children<C: Cluster>(
    cluster: &C,
    deployment: &SeiNodeDeployment,
    status: &SeiNodeDeploymentStatus,
    nodes: &[Arc<SeiNode>],
) -> Result<Vec<Collision>, ClusterError> {
    let mut collisions = Vec::new();
    let Some(active) = &status.active_set else { return Ok(collisions) };
    let stored = deployment.status.as_ref();
    let stored_lists = |name: &str| {
        stored.is_some_and(|s| s.active_set.as_ref() == Some(active) && s.incumbent_nodes.iter().any(|n| n == name))
    };
    let template = &deployment.spec.template;
    let active_spec = active_spec(deployment, status, nodes);
    let metadata = template.metadata.clone().unwrap_or_default();
    let node_named = |name: &str| nodes.iter().find(|n| n.metadata.name.as_deref() == Some(name));
    // A change that restarts nodes reaches one node of the set at a time: a node that is up to date gets it only
    // while every other node is too, and no other got it in this pass. A node that is not (crash-looping, say,
    // for want of the very memory the change gives) serves nothing, and gets it at once.
    let mut restarting_one = false;
    for (ordinal, name) in (0u32..).zip(&status.incumbent_nodes) {
        match nodes.iter().find(|n| n.metadata.name.as_deref() == Some(name.as_str())) {
            None if !stored_lists(name) => {}
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
                if let ChildCreated::Collision(collision) = create_child(cluster, deployment, &child).await? {
                    collisions.push(collision);
                }
            }
            Some(existing) if existing.metadata.deletion_timestamp.is_none() => {
                let all = with_template_fields(template, existing);
                let quiet = with_quiet_template_fields(template, existing);
                let updated = if all == quiet || !up_to_date(existing) {
                    all
                } else if !restarting_one
                    && status
                        .incumbent_nodes
                        .iter()
                        .filter(|other| *other != name)
                        .all(|other| node_named(other).is_some_and(|node| up_to_date(node)))
                {
                    restarting_one = true;
                    all
                } else {
                    quiet
                };
                // Metadata and spec: the status is the server's (and left out of `updated`).
                if updated.metadata != existing.metadata || updated.spec != existing.spec {
                    cluster.replace(&updated).await?;
                }
            }
            Some(_) => {}
        }
    }
    Ok(collisions)
}

/// Whether a node runs its current spec, Ready: Running, with its [`UP_TO_DATE`] condition True for the
/// generation it has now.
fn up_to_date(node: &SeiNode) -> bool {
    let generation = node.metadata.generation;
    node.status.as_ref().is_some_and(|status| {
        status.phase == Some(SeiNodePhase::Running)
            && status.observed_generation == generation
            && find_condition(&status.conditions, UP_TO_DATE)
                .is_some_and(|c| c.status == "True" && c.observed_generation == generation)
    })
}

/// Deletion: `Delete` removes the nodes and the Service first; `Retain` detaches the nodes (drops their owner
/// reference) so they keep running. Then the finalizer goes, and with it the deployment.
async fn finalize<C: Cluster, K: Clock>(
    ctx: &DeploymentContext<C, K>,
    deployment: SeiNodeDeployment,
    nodes: &[Arc<SeiNode>],
) -> Result<Action, ReconcileError> {
    let namespace = deployment.metadata.namespace.clone().unwrap_or_default();
    let name = deployment.metadata.name.clone().unwrap_or_default();
    let mut deployment = deployment;
    if deployment.status.as_ref().and_then(|s| s.phase) != Some(DeploymentPhase::Terminating) {
        deployment.status.get_or_insert_with(Default::default).phase = Some(DeploymentPhase::Terminating);
        deployment = Arc::unwrap_or_clone(ctx.cluster.replace_status(&deployment).await?);
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
                let mut detached = SeiNode::clone(node);
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
