//! The SeiNode reconciler (docs/design.md §6): build and run the init plan; once Running, keep the StatefulSet and
//! headless Service converged to the spec, keep the sidecar ready (re-submitting `mark-ready` to a sidecar that
//! came back Initializing, after a rollout or any other restart), and record what it observes of the pod.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Service};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::authorization::{self, Watched};
use super::{Action, ReconcileError};
use crate::api::{PlanPhase, PodSettings, SeiNode, SeiNodePhase, SeiNodeStatus, TaskStatus, Time};
use crate::clock::{Clock, SignedDuration, Timestamp};
use crate::cluster::{ChildHolder, Cluster, ClusterError, Event, ObjectRef, OptionalExt, create_if_missing};
use crate::node_defaults::{NodeDefaults, quantity_value};
use crate::objects::desired::DesiredStatefulSets;
use crate::objects::meta::{ANNOTATION_POD_SETTINGS, ConditionUpdate, find_condition, set_condition};
use crate::objects::names;
use crate::objects::workload;
use crate::plan::executor::{Next, execute};
use crate::plan::ids::attempt_submission_id;
use crate::plan::init_plan;
use crate::plan::init_plan::{
    WrittenConfig, config_digest, config_plan, init_retry_backoff, next_attempt, wanted_config, written_config,
};
use crate::rollout::{observed_current_image, observed_current_sidecar_image};
use crate::sidecar::wire::ReadinessStatus;
use crate::sidecar::wire::SidecarTaskType;
use crate::sidecar::{PodAddress, Sidecar};
use crate::tasks::NodeTasks;
use crate::tasks::mark_ready::{MarkReady, mark_initializing_ready};

/// How often a Running node's pod is observed.
pub const OBSERVE_INTERVAL: Duration = Duration::from_secs(10);

/// How old the stored `latestHeight` may get before a new height alone is worth a status write. Each write is an
/// API call and a watch event for every watcher of SeiNodes; on 400 ms blocks every observation would otherwise
/// write. A write that happens anyway (anything else changed) carries the fresh height.
pub const HEIGHT_WRITE_INTERVAL: Duration = Duration::from_secs(60);

/// Condition on a SeiNode: its init plan's outcome.
pub const INITIALIZED: &str = "Initialized";
/// Condition on an initializing SeiNode, present only while the name of a child it needs is held by another
/// object (a deleted predecessor's, or a stranger's).
const CHILDREN_OWNED: &str = "ChildrenOwned";
/// Event: an init attempt failed; another follows after a back-off.
const EVENT_INIT_FAILED: &str = "InitFailed";
/// Event: a failed init plan is tried again.
const EVENT_INIT_RETRY: &str = "InitRetry";
/// Condition on a Running SeiNode: whether its sidecar is marked ready, and if not, what the node waits on.
pub const SIDECAR_READY: &str = "SidecarReady";

/// What the node reconciler works with.
pub struct NodeContext<C, S, K> {
    pub cluster: C,
    pub sidecar: S,
    pub clock: K,
    /// What a node's pods get for the settings its spec leaves unset.
    pub defaults: Arc<NodeDefaults>,
    /// Each node's desired StatefulSet, shared by the process's reconciles (built again only when its inputs
    /// change).
    pub desired: Arc<DesiredStatefulSets>,
}

/// Reconciles SeiNode `namespace/name`.
pub async fn reconcile_node<C: Cluster, S: Sidecar, K: Clock>(
    ctx: &NodeContext<C, S, K>,
    namespace: &str,
    name: &str,
) -> Result<Action, ReconcileError> {
    let Some(node) = ctx.cluster.get_shared::<SeiNode>(namespace, name).await.optional()? else {
        return Ok(Action::AwaitChange);
    };
    // Every call of the reconcile goes through `watched`, so a 403 anywhere in it is reported on the node.
    let watched = Watched::new(&ctx.cluster);
    let outcome = reconcile_read_node(
        &NodeContext {
            cluster: &watched,
            sidecar: &ctx.sidecar,
            clock: &ctx.clock,
            defaults: Arc::clone(&ctx.defaults),
            desired: Arc::clone(&ctx.desired),
        },
        &node,
    )
    .await;
    authorization::report(&ctx.cluster, &*node, watched.forbidden(), outcome, ctx.clock.now()).await
}

/// Reconciles the SeiNode as read.
async fn reconcile_read_node<C: Cluster, S: Sidecar, K: Clock>(
    ctx: &NodeContext<C, S, K>,
    node: &SeiNode,
) -> Result<Action, ReconcileError> {
    let now = ctx.clock.now();
    let mut status = node.status.clone().unwrap_or_default();
    let generation = node.metadata.generation;
    let settings = ctx.defaults.for_node(&node.spec);
    let mut action = Action::AwaitChange;

    if node.metadata.deletion_timestamp.is_some() {
        // Its StatefulSet, Services, Job and volume are owned by it and go with it.
        status.phase = Some(SeiNodePhase::Terminating);
    } else {
        match status.phase.unwrap_or_default() {
            SeiNodePhase::Pending => match init_plan(node) {
                Ok(plan) => {
                    // Persisted before its first task runs.
                    status.plan = Some(plan);
                    status.phase = Some(SeiNodePhase::Initializing);
                    action = Action::Requeue(Duration::ZERO);
                }
                Err(error) => {
                    status.phase = Some(SeiNodePhase::Failed);
                    set_invalid_spec(&mut status, &error, generation, now);
                }
            },
            SeiNodePhase::Initializing => {
                // A spec changed while the plan runs (a rollout's `update-node-specs`, a user's edit) reaches a
                // StatefulSet the plan made already: its pod may be waiting on the image the edit replaced (a
                // missing one, never pulled), and the plan waits on that pod.
                converge_existing_workload(&ctx.cluster, node, &ctx.desired.stateful_set(node, &settings)).await?;
                action = initialize(ctx, node, &settings, &mut status).await?
            }
            SeiNodePhase::Running => {
                // One desired set for the converge and the UpToDate report (built when its inputs last changed).
                let desired = ctx.desired.stateful_set(node, &settings);
                converge_workload(&ctx.cluster, node, &desired).await?;
                resize_volume(&ctx.cluster, node, &settings, &mut status, now).await?;
                let stateful_set = observe(ctx, node, &mut status).await?;
                let soon = reconfigure(ctx, node, &settings, &mut status).await;
                report_up_to_date(node, &desired, stateful_set.as_deref(), &mut status, now);
                action = Action::Requeue(soon.map_or(OBSERVE_INTERVAL, |after| after.min(OBSERVE_INTERVAL)));
            }
            SeiNodePhase::Failed => action = retry_when_due(ctx, node, &mut status).await,
            SeiNodePhase::Terminating => {}
        }
    }
    status.observed_generation = generation;
    crate::readiness::summarize_node(&mut status, generation, now);
    hold_back_height(node.status.as_ref(), &mut status, now);

    if Some(&status) != node.status.as_ref() {
        // The node as read with the new status (the old one is not copied only to be replaced).
        let written = SeiNode { metadata: node.metadata.clone(), spec: node.spec.clone(), status: Some(status) };
        ctx.cluster.replace_status(&written).await?;
    }
    Ok(action)
}

/// Keeps a newly observed height out of `status` while it is the only change and the stored height is younger
/// than [`HEIGHT_WRITE_INTERVAL`], so no status write happens for it; otherwise stamps the height written with
/// `now`. Nothing the rules wait on is held back: phase, current image, sidecar readiness and catching-up are
/// written as soon as they change (and carry the fresh height with them).
fn hold_back_height(stored: Option<&SeiNodeStatus>, status: &mut SeiNodeStatus, now: Timestamp) {
    let Some(stored) = stored else {
        status.latest_height_time = status.latest_height.map(|_| Time(now));
        return;
    };
    if status.latest_height == stored.latest_height {
        return;
    }
    let young = stored.latest_height_time.as_ref().is_some_and(|written| {
        now.duration_since(written.0) < SignedDuration::try_from(HEIGHT_WRITE_INTERVAL).unwrap_or(SignedDuration::MAX)
    });
    // The status with the stored height held back, compared in place (not copied): kept if that is the stored
    // status, else the new height goes back in, stamped now.
    let new_height = std::mem::replace(&mut status.latest_height, stored.latest_height);
    status.latest_height_time.clone_from(&stored.latest_height_time);
    if !(young && stored.latest_height.is_some() && *status == *stored) {
        status.latest_height = new_height;
        status.latest_height_time = Some(Time(now));
    }
}

/// One executor step of the init plan; Complete → Running, Failed → Failed.
async fn initialize<C: Cluster, S: Sidecar, K: Clock>(
    ctx: &NodeContext<C, S, K>,
    node: &SeiNode,
    settings: &PodSettings,
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
    let attempt = status.init_attempt.unwrap_or(1);
    let runner = NodeTasks::new(&ctx.cluster, &ctx.sidecar, node, settings, &ctx.desired, now, attempt);
    let next = execute(&mut plan, &runner, now).await;
    let blocked = runner.blocked.into_inner().ok().flatten();
    report_blocked_child(&ctx.cluster, node, status, blocked, now).await;
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
            // Failed is not forever: the volume stays, and the plan is tried again after a back-off.
            status.phase = Some(SeiNodePhase::Failed);
            let wait = init_retry_backoff(attempt);
            let retry_at = now.checked_add(wait).unwrap_or(now);
            status.next_init_attempt_at = Some(Time(retry_at));
            let detail = plan.failed_task_detail.as_ref();
            let failure = detail.map_or_else(
                || "init plan failed".to_owned(),
                |f| format!("task {} failed after {}/{} retries: {}", f.type_, f.retry_count, f.max_retries, f.error),
            );
            // Written once per failed attempt: the message carries no number that moves between reconciles.
            let message = format!("attempt {attempt}: {failure}; next attempt at {retry_at}, on the same volume");
            let event = Event::warning(ObjectRef::to(node), EVENT_INIT_FAILED, message.clone())
                .keyed(format!("{EVENT_INIT_FAILED}/{}/{attempt}", plan.id));
            let update = ConditionUpdate {
                type_: INITIALIZED,
                status: false,
                reason: "PlanFailed",
                message,
                observed_generation: node.metadata.generation,
            };
            set_condition(&mut status.conditions, update, now);
            // Before the status write: a crash between the two repeats the event, which its key refuses, rather
            // than losing it.
            let _ = ctx.cluster.emit_event(&event).await;
            Action::Requeue(wait)
        }
        Next::RequeueAfter(after) => Action::Requeue(after),
        Next::Continue => Action::Requeue(Duration::ZERO),
    };
    status.plan = Some(plan);
    Ok(action)
}

/// A Failed node's next init attempt, once its back-off has run out — or at once when its spec changed since
/// it failed. The attempt resumes the failed plan ([`next_attempt`]): what is done stays done, on the volume.
async fn retry_when_due<C: Cluster, S: Sidecar, K: Clock>(
    ctx: &NodeContext<C, S, K>,
    node: &SeiNode,
    status: &mut SeiNodeStatus,
) -> Action {
    let now = ctx.clock.now();
    let generation = node.metadata.generation;
    let failed = find_condition(&status.conditions, INITIALIZED).filter(|c| c.status == "False");
    let spec_changed = failed.is_some_and(|c| c.observed_generation != generation);
    let invalid_spec = failed.is_some_and(|c| c.reason == "InvalidSpec");
    if invalid_spec && !spec_changed {
        // Nothing a retry could change: wait for a spec change.
        return Action::AwaitChange;
    }
    // A node that failed before retries existed has no next attempt recorded: it is due now.
    if let Some(retry_at) = status.next_init_attempt_at.as_ref().map(|t| t.0)
        && !spec_changed
    {
        let remaining = retry_at.duration_since(now);
        if remaining > SignedDuration::ZERO {
            return Action::Requeue(Duration::try_from(remaining).unwrap_or(OBSERVE_INTERVAL));
        }
    }
    let fresh = match init_plan(node) {
        Ok(fresh) => fresh,
        Err(error) => {
            status.next_init_attempt_at = None;
            set_invalid_spec(status, &error, generation, now);
            return Action::AwaitChange;
        }
    };
    let failed_attempt = status.init_attempt.unwrap_or(1);
    let failure = status
        .plan
        .as_ref()
        .and_then(|p| p.failed_task_detail.as_ref())
        .map_or_else(|| "its init plan failed".to_owned(), |f| format!("task {} failed: {}", f.type_, f.error));
    let plan = match status.plan.take() {
        Some(previous) => next_attempt(fresh, &previous),
        None => fresh,
    };
    let attempt = failed_attempt.saturating_add(1);
    let resume = plan.tasks.iter().find(|t| t.status != TaskStatus::Complete).map_or("", |t| t.type_.as_str());
    let why = if spec_changed { "the spec changed" } else { "the back-off ran out" };
    let message = format!(
        "attempt {attempt} ({why}), resuming at task {resume} on the same volume; attempt {failed_attempt}: {failure}"
    );
    let event = Event::normal(ObjectRef::to(node), EVENT_INIT_RETRY, message.clone())
        .keyed(format!("{EVENT_INIT_RETRY}/{}/{attempt}", plan.id));
    // Persisted before its first task runs, as a new plan is.
    status.plan = Some(plan);
    status.phase = Some(SeiNodePhase::Initializing);
    status.init_attempt = Some(attempt);
    status.next_init_attempt_at = None;
    let update = ConditionUpdate {
        type_: INITIALIZED,
        status: false,
        reason: "Retrying",
        message,
        observed_generation: generation,
    };
    set_condition(&mut status.conditions, update, now);
    let _ = ctx.cluster.emit_event(&event).await;
    Action::Requeue(Duration::ZERO)
}

/// Says, in a condition and an event, which object holds the name of a child the node needs — a predecessor's
/// being collected, waited for; or a stranger's, not used — and clears the condition once nothing does.
async fn report_blocked_child<C: Cluster>(
    cluster: &C,
    node: &SeiNode,
    status: &mut SeiNodeStatus,
    blocked: Option<ChildHolder>,
    now: Timestamp,
) {
    let (reason, message) = match blocked {
        None => {
            status.conditions.retain(|c| c.type_ != CHILDREN_OWNED);
            return;
        }
        Some(ChildHolder::Owner) => return,
        Some(ChildHolder::Predecessor { object, controller_uid }) => {
            let owner = controller_uid.map_or_else(|| "being deleted".to_owned(), |uid| format!("controlled by {uid}"));
            let message =
                format!("{object} is not this SeiNode's ({owner}); waiting for it to go before using the name");
            ("AwaitingPredecessor", message)
        }
        Some(ChildHolder::Stranger { object }) => {
            let message = format!(
                "{object} exists with no controller, and is not one this SeiNode adopts (it lacks the node's \
                     labels, or is of a kind the operator may not take over); it is not used: delete it to free the \
                     name"
            );
            ("NameCollision", message)
        }
    };
    // Once per node (its uid: a re-created node of the same name reports again) and per holder.
    let uid = node.metadata.uid.as_deref().unwrap_or_default();
    let event = Event::warning(ObjectRef::to(node), reason, message.clone()).keyed(format!("{reason}/{uid}/{message}"));
    let update = ConditionUpdate {
        type_: CHILDREN_OWNED,
        status: false,
        reason,
        message,
        observed_generation: node.metadata.generation,
    };
    set_condition(&mut status.conditions, update, now);
    let _ = cluster.emit_event(&event).await;
}

/// Brings the StatefulSet's pod template to the spec (image, sidecar image, entrypoint, labels) and makes sure
/// it and the headless Service exist. Only the fields the operator owns are compared: the API server fills in
/// defaults everywhere else.
async fn converge_workload<C: Cluster>(cluster: &C, node: &SeiNode, desired: &StatefulSet) -> Result<(), ClusterError> {
    let namespace = node.metadata.namespace.as_deref().unwrap_or_default();
    if !converge_existing_workload(cluster, node, desired).await? {
        create_if_missing(cluster, desired).await?;
    }
    let service = workload::headless_service(node);
    let name = service.metadata.name.clone().unwrap_or_default();
    if cluster.get_shared::<Service>(namespace, &name).await.optional()?.is_none() {
        create_if_missing(cluster, &service).await?;
    }
    Ok(())
}

/// Brings an existing StatefulSet's pod template to the spec; whether there is one. Makes nothing (while
/// initializing, the plan decides when the workload is made).
async fn converge_existing_workload<C: Cluster>(
    cluster: &C,
    node: &SeiNode,
    desired: &StatefulSet,
) -> Result<bool, ClusterError> {
    let namespace = node.metadata.namespace.as_deref().unwrap_or_default();
    let name = desired.metadata.name.as_deref().unwrap_or_default();
    let Some(existing) = cluster.get_shared::<StatefulSet>(namespace, name).await.optional()? else {
        return Ok(false);
    };
    if let (Some(spec), Some(wanted)) = (existing.spec.as_ref(), desired.spec.as_ref())
        && drifted(&spec.template, &wanted.template)
    {
        let mut replaced = Arc::unwrap_or_clone(existing);
        if let Some(spec) = replaced.spec.as_mut() {
            spec.template = wanted.template.clone();
        }
        cluster.replace(&replaced).await?;
    }
    Ok(true)
}

fn drifted(
    existing: &k8s_openapi::api::core::v1::PodTemplateSpec,
    desired: &k8s_openapi::api::core::v1::PodTemplateSpec,
) -> bool {
    use k8s_openapi::api::core::v1::{Container, PodTemplateSpec};
    fn containers(t: &PodTemplateSpec) -> impl Iterator<Item = &Container> {
        let spec = t.spec.as_ref();
        spec.and_then(|s| s.init_containers.as_ref())
            .into_iter()
            .flatten()
            .chain(spec.map(|s| &s.containers).into_iter().flatten())
    }
    // What the operator sets on each of its containers; the API server defaults other fields, which must not
    // read as drift. Compared in place: a node reconcile asks this of every Running node.
    fn set_by_operator(c: &Container) -> impl PartialEq + '_ {
        (
            (&c.name, &c.image, &c.command, &c.args, &c.env, &c.restart_policy),
            probe_target(c.startup_probe.as_ref()),
            probe_target(c.readiness_probe.as_ref()),
            probe_target(c.liveness_probe.as_ref()),
        )
    }
    fn labels(t: &PodTemplateSpec) -> Option<&std::collections::BTreeMap<String, String>> {
        t.metadata.as_ref().and_then(|m| m.labels.as_ref())
    }
    // The spec's pod settings, by their digest: comparing the fields themselves would read the API server's
    // defaulting (an empty pod securityContext) and its canonical quantities (`1000m` stored as `1`) as drift.
    fn settings(t: &PodTemplateSpec) -> Option<&String> {
        t.metadata.as_ref().and_then(|m| m.annotations.as_ref()).and_then(|a| a.get(ANNOTATION_POD_SETTINGS))
    }
    !containers(existing).map(set_by_operator).eq(containers(desired).map(set_by_operator))
        || labels(existing) != labels(desired)
        || settings(existing) != settings(desired)
}

/// The path and port a probe asks, the part of it the operator decides.
fn probe_target(probe: Option<&k8s_openapi::api::core::v1::Probe>) -> Option<(Option<String>, String)> {
    let get = probe?.http_get.as_ref()?;
    let port = match &get.port {
        k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(n) => n.to_string(),
        k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(s) => s.clone(),
    };
    Some((get.path.clone(), port))
}

/// Records what the pod shows — the image it runs (once truly rolled), sidecar readiness, height — and keeps the
/// sidecar marked ready: a sidecar restarted for any reason (its own crash, a pod restart, a rollout) comes back
/// Initializing, and seid's wrapper waits on it, so without this a restart outside any rollout would hang the
/// node for good. Each sidecar incarnation gets its own `mark-ready` id
/// ([`crate::tasks::mark_ready::SidecarIncarnation`]).
async fn observe<C: Cluster, S: Sidecar, K: Clock>(
    ctx: &NodeContext<C, S, K>,
    node: &SeiNode,
    status: &mut SeiNodeStatus,
) -> Result<Option<Arc<StatefulSet>>, ClusterError> {
    let namespace = node.metadata.namespace.as_deref().unwrap_or_default();
    let name = node.metadata.name.as_deref().unwrap_or_default();
    let now = ctx.clock.now();
    let sts = ctx.cluster.get_shared::<StatefulSet>(namespace, name).await.optional()?;
    if let Some(image) = observed_current_image(sts.as_deref()) {
        status.current_image = Some(image);
    }
    if let Some(image) = observed_current_sidecar_image(sts.as_deref()) {
        status.current_sidecar_image = Some(image);
    }
    let port = u16::try_from(node.spec.sidecar_port()).unwrap_or(7777);
    let address = PodAddress::for_node(namespace, name, port);
    let mark_ready = match ctx.sidecar.status(&address).await {
        Ok(ReadinessStatus::Ready) => Ok(MarkReady::Ready),
        Ok(ReadinessStatus::Initializing) => {
            let pod = ctx.cluster.get_shared::<Pod>(namespace, &names::node_pod(name)).await.optional()?;
            mark_initializing_ready(&ctx.sidecar, &address, pod.as_deref(), now).await
        }
        Err(error) => Err(error),
    };
    let (ready, reason, message) = match &mark_ready {
        Ok(state) => {
            let (reason, message) = state.describe();
            (state.is_ready(), reason, message)
        }
        // Unreachable now means: try again at the next observation. The message names no live detail, so a
        // flapping connection does not rewrite status every poll.
        Err(_) => (false, "SidecarUnreachable", "the sidecar does not answer".to_owned()),
    };
    status.sidecar_ready = Some(ready);
    let update = ConditionUpdate {
        type_: SIDECAR_READY,
        status: ready,
        reason,
        message,
        observed_generation: node.metadata.generation,
    };
    set_condition(&mut status.conditions, update, now);
    match ctx.sidecar.chain_status(&address).await {
        Ok(chain) => {
            status.latest_height = i64::try_from(chain.latest_height).ok();
            status.catching_up = Some(chain.catching_up);
            status.upgrade_panic = None;
        }
        // seid does not run (waiting on mark-ready, crash-looping): its height is unknown, not zero. Whether it
        // stopped at an upgrade height — which its RPC never serves — its container's exit says.
        Err(_) => {
            status.catching_up = None;
            let pod = ctx.cluster.get_shared::<Pod>(namespace, &names::node_pod(name)).await.optional()?;
            status.upgrade_panic = pod.as_deref().and_then(crate::rollout::gate::upgrade_panic_in);
        }
    }
    Ok(sts)
}

/// Condition on a Running SeiNode: whether its pod runs the node's current template and is Ready, with the
/// spec's config. A deployment changes the settings that restart a node (pod settings, config) on one node at a
/// time, waiting for this condition between nodes.
pub const UP_TO_DATE: &str = "UpToDate";
/// Events: a config plan finished, or failed.
const EVENT_CONFIG_APPLIED: &str = "ConfigApplied";
const EVENT_CONFIG_APPLY_FAILED: &str = "ConfigApplyFailed";

/// Whether the config on the node's volume — the last one a plan wrote whole (its digest), else the init
/// plan's — is known and other than `wanted`. The init plan's is compared as values, the way a failed config
/// plan's is: a node reconcile asks this every time, and digesting it cost a serialization and a SHA-256 each time.
fn written_config_differs(status: &SeiNodeStatus, wanted: &[(String, serde_json::Value)]) -> bool {
    match (&status.written_config, &status.plan) {
        (Some(written), _) => *written != config_digest(wanted),
        (None, Some(plan)) => !init_plan::plans_config(plan, wanted),
        (None, None) => false,
    }
}

/// Whether the spec asks seid for a config other than the one on its volume — unless a config plan for
/// exactly that config failed: it is not tried again until the spec changes.
fn config_pending(node: &SeiNode, status: &SeiNodeStatus) -> bool {
    let Some(wanted) = wanted_config(&node.spec) else { return false };
    let failed_already = status
        .config_plan
        .as_ref()
        .is_some_and(|p| p.phase == PlanPhase::Failed && init_plan::plans_config(p, &wanted));
    written_config_differs(status, &wanted) && !failed_already
}

/// Records what a finished config plan left on the volume.
fn record_written_config(plan: &crate::api::Plan, status: &mut SeiNodeStatus) {
    match written_config(plan) {
        WrittenConfig::Whole(digest) => status.written_config = Some(digest),
        // Matches no spec's config: the next plan writes it whole again.
        WrittenConfig::Partial => status.written_config = Some(format!("partial:{}", plan.id)),
        WrittenConfig::Unchanged => {}
    }
}

/// Brings a Running node's seid config to its spec after an `overrides` or `peers` change, in place: a config
/// plan ([`config_plan`]) is made once the sidecar is ready, then run one executor step per reconcile. A failed
/// one is not retried until the spec changes again (its failure is most likely the config itself, which
/// seictl refused). Returns how soon to come back while a plan runs.
async fn reconfigure<C: Cluster, S: Sidecar, K: Clock>(
    ctx: &NodeContext<C, S, K>,
    node: &SeiNode,
    settings: &PodSettings,
    status: &mut SeiNodeStatus,
) -> Option<Duration> {
    let now = ctx.clock.now();
    let Some(mut plan) = status.config_plan.take_if(|p| p.phase == PlanPhase::Active) else {
        if config_pending(node, status)
            && status.sidecar_ready == Some(true)
            && let Ok(plan) = config_plan(node)
        {
            // Persisted before its first task runs.
            status.config_plan = Some(plan);
            return Some(Duration::ZERO);
        }
        return None;
    };
    let runner = NodeTasks {
        config_written_by: last_config_submission(&plan),
        ..NodeTasks::new(&ctx.cluster, &ctx.sidecar, node, settings, &ctx.desired, now, 1)
    };
    let next = execute(&mut plan, &runner, now).await;
    if matches!(next, Next::Finished(_)) {
        record_written_config(&plan, status);
    }
    let soon = match next {
        Next::Finished(PlanPhase::Complete) => {
            let message = format!("seid restarted with the config of generation {}", generation_of(node));
            let event = Event::normal(ObjectRef::to(node), EVENT_CONFIG_APPLIED, message).keyed(plan.id.clone());
            let _ = ctx.cluster.emit_event(&event).await;
            None
        }
        Next::Finished(_) => {
            let message = format!("config of generation {} not applied: {}", generation_of(node), failure_of(&plan));
            let event = Event::warning(ObjectRef::to(node), EVENT_CONFIG_APPLY_FAILED, message).keyed(plan.id.clone());
            let _ = ctx.cluster.emit_event(&event).await;
            None
        }
        Next::RequeueAfter(after) => Some(after),
        Next::Continue => Some(Duration::ZERO),
    };
    status.config_plan = Some(plan);
    soon
}

/// The submission id of `plan`'s last config task, which wrote the config last (the plan runs them in order).
fn last_config_submission(plan: &crate::api::Plan) -> Option<uuid::Uuid> {
    let config_types = [SidecarTaskType::ConfigApply, SidecarTaskType::DiscoverPeers].map(|t| t.as_str());
    let last = plan.tasks.iter().rev().find(|t| config_types.contains(&t.type_.as_str()))?;
    Some(attempt_submission_id(&last.id, 1, last.retry_count))
}

fn generation_of(node: &SeiNode) -> i64 {
    node.metadata.generation.unwrap_or_default()
}

/// What a failed plan says of its failure.
fn failure_of(plan: &crate::api::Plan) -> String {
    plan.failed_task_detail.as_ref().map_or_else(
        || "its plan failed".to_owned(),
        |f| format!("task {} failed after {}/{} retries: {}", f.type_, f.retry_count, f.max_retries, f.error),
    )
}

/// Sets the node's [`UP_TO_DATE`] condition from the StatefulSet it read this reconcile and its config plan.
/// A read older than the template this reconcile wrote shows the old template, and reads as not up to date.
fn report_up_to_date(
    node: &SeiNode,
    desired: &StatefulSet,
    stateful_set: Option<&StatefulSet>,
    status: &mut SeiNodeStatus,
    now: Timestamp,
) {
    let name = node.metadata.name.as_deref().unwrap_or_default();
    let template_current = stateful_set
        .and_then(|s| s.spec.as_ref())
        .zip(desired.spec.as_ref())
        .is_some_and(|(have, want)| !drifted(&have.template, &want.template));
    let rolled = stateful_set.is_some_and(|s| {
        let generation = s.metadata.generation;
        s.status.as_ref().is_some_and(|st| {
            let current = st.current_revision.as_deref().filter(|r| !r.is_empty());
            st.observed_generation == generation && current.is_some() && current == st.update_revision.as_deref()
        })
    });
    let pod_ready = stateful_set.and_then(|s| s.status.as_ref()).is_some_and(|st| st.ready_replicas.unwrap_or(0) >= 1);
    let config_plan = status.config_plan.as_ref();
    let (up_to_date, reason, message) = if !template_current || !rolled {
        (false, "PodRolling", format!("StatefulSet {name} is replacing the pod with the node's current template"))
    } else if let Some(plan) = config_plan.filter(|p| p.phase == PlanPhase::Active) {
        let message = format!("writing the config of the spec, then restarting seid in place (plan {})", plan.id);
        (false, "ApplyingConfig", message)
    } else if let Some(plan) = config_plan.filter(|p| {
        p.phase == PlanPhase::Failed && wanted_config(&node.spec).is_some_and(|w| init_plan::plans_config(p, &w))
    }) {
        let message = format!("the spec's config was not applied: {}; change the spec to try again", failure_of(plan));
        (false, "ConfigApplyFailed", message)
    } else if config_pending(node, status) {
        (false, "ConfigPending", "the spec's config waits for the sidecar to be ready to write it".to_owned())
    } else if !pod_ready {
        (false, "PodNotReady", "the pod runs the node's current template but is not Ready".to_owned())
    } else if status.sidecar_ready != Some(true) {
        (false, "SidecarNotReady", "the pod is Ready but its sidecar is not marked ready".to_owned())
    } else {
        (true, "UpToDate", "the pod runs the node's current template and config, and is Ready".to_owned())
    };
    let update = ConditionUpdate {
        type_: UP_TO_DATE,
        status: up_to_date,
        reason,
        message,
        observed_generation: node.metadata.generation,
    };
    set_condition(&mut status.conditions, update, now);
}

/// `Initialized` False with reason `InvalidSpec`: no init plan can be built from the spec; a spec change retries.
/// Condition on a Running SeiNode, present only while its spec asks for a data volume smaller than its claim.
pub const VOLUME_SIZE: &str = "VolumeSize";

/// Grows the node's data claim to the size its settings ask for, in place — no rollout, no restart: the volume
/// plugin expands it, as Kubernetes does for a claim whose StorageClass allows expansion. A smaller size is never
/// applied (a claim cannot shrink: kubernetes `pkg/apis/core/validation/validation.go`,
/// `ValidatePersistentVolumeClaimUpdate`, "field can not be less than previous value"); the node says so in its
/// `VolumeSize` condition until the spec asks for at least the claim's size again.
async fn resize_volume<C: Cluster>(
    cluster: &C,
    node: &SeiNode,
    settings: &PodSettings,
    status: &mut SeiNodeStatus,
    now: Timestamp,
) -> Result<(), ClusterError> {
    let Some(wanted) = settings.storage.as_ref().and_then(|s| s.size.clone()) else { return Ok(()) };
    let namespace = node.metadata.namespace.as_deref().unwrap_or_default();
    let claim_name = names::node_volume(node.metadata.name.as_deref().unwrap_or_default());
    let Some(mut claim) = cluster.get::<PersistentVolumeClaim>(namespace, &claim_name).await.optional()? else {
        return Ok(());
    };
    let requests = claim.spec.as_mut().and_then(|s| s.resources.as_mut()).and_then(|r| r.requests.as_mut());
    let Some(requests) = requests else { return Ok(()) };
    let current = requests.get("storage").map(|q| q.0.clone()).unwrap_or_default();
    match (quantity_value(&wanted), quantity_value(&current)) {
        (Some(want), Some(have)) if want > have => {
            requests.insert("storage".to_owned(), Quantity(wanted));
            cluster.replace(&claim).await?;
            status.conditions.retain(|c| c.type_ != VOLUME_SIZE);
        }
        (Some(want), Some(have)) if want < have => {
            let update = ConditionUpdate {
                type_: VOLUME_SIZE,
                status: false,
                reason: "SizeDecreaseRefused",
                message: format!(
                    "spec.storage.size {wanted} is smaller than PersistentVolumeClaim {claim_name}'s {current}: a \
                     claim cannot shrink; the volume stays at {current} (set a size of at least {current})"
                ),
                observed_generation: node.metadata.generation,
            };
            set_condition(&mut status.conditions, update, now);
        }
        _ => status.conditions.retain(|c| c.type_ != VOLUME_SIZE),
    }
    Ok(())
}

fn set_invalid_spec(
    status: &mut SeiNodeStatus,
    error: &impl std::fmt::Display,
    generation: Option<i64>,
    now: Timestamp,
) {
    let update = ConditionUpdate {
        type_: INITIALIZED,
        status: false,
        reason: "InvalidSpec",
        message: error.to_string(),
        observed_generation: generation,
    };
    set_condition(&mut status.conditions, update, now);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(seconds).expect("in range")
    }

    fn running(height: i64, written_at: i64) -> SeiNodeStatus {
        SeiNodeStatus {
            phase: Some(SeiNodePhase::Running),
            catching_up: Some(false),
            latest_height: Some(height),
            latest_height_time: Some(Time(at(written_at))),
            ..Default::default()
        }
    }

    #[test]
    fn a_new_height_alone_waits_for_the_interval() {
        let stored = running(1000, 0);
        let mut status = stored.clone();
        status.latest_height = Some(1025);
        hold_back_height(Some(&stored), &mut status, at(10));
        assert_eq!(status, stored, "younger than a minute: nothing to write");

        let mut status = stored.clone();
        status.latest_height = Some(1150);
        hold_back_height(Some(&stored), &mut status, at(60));
        assert_eq!(status.latest_height, Some(1150));
        assert_eq!(status.latest_height_time, Some(Time(at(60))));
    }

    #[test]
    fn a_write_that_happens_anyway_carries_the_fresh_height() {
        let stored = running(1000, 0);
        let mut status = stored.clone();
        status.latest_height = Some(1025);
        status.catching_up = Some(true);
        hold_back_height(Some(&stored), &mut status, at(10));
        assert_eq!(status.latest_height, Some(1025));
        assert_eq!(status.latest_height_time, Some(Time(at(10))));
    }

    #[test]
    fn the_first_height_is_written_at_once() {
        let stored = SeiNodeStatus { phase: Some(SeiNodePhase::Running), ..Default::default() };
        let mut status = stored.clone();
        status.latest_height = Some(1000);
        hold_back_height(Some(&stored), &mut status, at(10));
        assert_eq!(status.latest_height_time, Some(Time(at(10))));
        let mut unchanged = status.clone();
        hold_back_height(Some(&status), &mut unchanged, at(20));
        assert_eq!(unchanged, status, "the same height keeps its time");
    }
}
