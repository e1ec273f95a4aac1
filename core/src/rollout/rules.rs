//! The rollout state machine of a SeiNodeDeployment (docs/design.md §5.2–5.7) as one pure function: given the deployment
//! as read (its status already carrying this reconcile's executor step) and what was observed of its nodes, the
//! next status and the events to emit. The caller writes that status once, with the resourceVersion it read.
//!
//! - **Baseline**: the first sight records `templateHash` and starts nothing.
//! - **Detect**: the hash moved and no rollout runs → `rollout`, `RolloutInProgress=True` (TemplateChanged) and
//!   the strategy's plan, all in the one write, so the baseline can never advance while a rollout is unplanned.
//! - **Supersede**: the hash moved again mid-rollout → a new rollout and plan for the newest spec.
//! - **Complete** / **Fail**: the plan finished → clear `rollout`; a failed target is remembered and not retried.
//! - **Stall**: an active rollout older than the threshold, whatever holds it → reason Stalled, one Warning.

use std::sync::Arc;
use std::time::Duration;

use super::phase::{count_nodes, deployment_phase, nodes_ready_message};
use super::vocabulary::*;
use crate::api::template_hash;
use crate::api::{
    ActiveSet, ForkBootstrap, NodeGate, NodeSummary, Plan, PlanPhase, RolloutNodeStatus, RolloutStatus, SeiNode,
    SeiNodeDeployment, SeiNodeDeploymentStatus, SeiNodePhase, Strategy, TaskStatus, Time,
};
use crate::clock::{SignedDuration, Timestamp};
use crate::cluster::{Event, ObjectRef};
use crate::objects::meta::{ConditionUpdate, LABEL_REVISION, find_condition, set_condition};
use crate::objects::names;
use crate::plan::ids::plan_id;
use crate::plan::params::{CreateEntrantNodes, RolloutFields, UpdateNodeSpecs, UpdateNodeSpecsAtHeight};
use crate::plan::{PlanError, RolloutPlanInput, TaskType, rollout_plan};

/// Default age after which an unfinished rollout is reported Stalled.
pub const DEFAULT_STALL_THRESHOLD: Duration = Duration::from_secs(10 * 60);

/// What the deployment controller observed this reconcile.
pub struct Observed<'a> {
    /// Every SeiNode the deployment owns, of any set.
    pub nodes: &'a [Arc<SeiNode>],
    /// The revision the deployment's Service selects, when the Service exists.
    pub service_revision: Option<&'a str>,
    pub now: Timestamp,
}

/// Tunables of the rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RolloutConfig {
    pub stall_threshold: Duration,
}

impl Default for RolloutConfig {
    fn default() -> Self {
        RolloutConfig { stall_threshold: DEFAULT_STALL_THRESHOLD }
    }
}

/// The next status and the events that go with it.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    pub status: SeiNodeDeploymentStatus,
    pub events: Vec<Event>,
}

struct Ctx<'a> {
    deployment: &'a SeiNodeDeployment,
    observed: &'a Observed<'a>,
    config: &'a RolloutConfig,
    hash: String,
    this: ObjectRef,
    generation: i64,
}

impl Ctx<'_> {
    fn node(&self, name: &str) -> Option<&SeiNode> {
        self.observed.nodes.iter().find(|n| n.metadata.name.as_deref() == Some(name)).map(|node| &**node)
    }

    fn name(&self) -> &str {
        self.deployment.metadata.name.as_deref().unwrap_or_default()
    }

    /// An event reporting transition `reason` of the rollout (or refusal) to `target` at `generation`: keyed by
    /// them, so emitting it again — from `status.pendingEvents`, after a crash — records it once.
    fn event(&self, warning: bool, reason: &str, (generation, target): (i64, &str), message: String) -> Event {
        let event = if warning {
            Event::warning(self.this.clone(), reason, message)
        } else {
            Event::normal(self.this.clone(), reason, message)
        };
        event.keyed(format!("{reason}/{generation}/{target}"))
    }

    fn condition(&self, status: &mut SeiNodeDeploymentStatus, type_: &str, on: bool, reason: &str, message: String) {
        let update = ConditionUpdate { type_, status: on, reason, message, observed_generation: Some(self.generation) };
        set_condition(&mut status.conditions, update, self.observed.now);
    }
}

/// Applies the rollout rules once.
pub fn evaluate(deployment: &SeiNodeDeployment, observed: &Observed<'_>, config: &RolloutConfig) -> Decision {
    let ctx = Ctx {
        deployment,
        observed,
        config,
        hash: template_hash(&deployment.spec.template.spec),
        this: ObjectRef::to(deployment),
        generation: deployment.metadata.generation.unwrap_or(0),
    };
    let mut d = Decision { status: deployment.status.clone().unwrap_or_default(), events: Vec::new() };

    if d.status.template_hash.is_none() {
        record_baseline(&ctx, &mut d);
    } else if let Some(rollout) = d.status.rollout.clone() {
        match rollout_plan_phase(&ctx, &d.status, &rollout) {
            Some(PlanPhase::Complete) => complete_rollout(&ctx, &mut d, &rollout),
            Some(PlanPhase::Failed) => fail_rollout(&ctx, &mut d, &rollout),
            _ if is_superseded(&rollout, deployment) => supersede_rollout(&ctx, &mut d, &rollout),
            Some(PlanPhase::Active) => track_rollout(&ctx, &mut d, rollout),
            // `rollout` without its plan: a status written by something else. Rebuild the plan (same id).
            None => restore_plan(&ctx, &mut d, &rollout),
        }
    } else if d.status.template_hash.as_deref() != Some(ctx.hash.as_str())
        && d.status.failed_target_hash.as_deref() != Some(ctx.hash.as_str())
    {
        detect_rollout(&ctx, &mut d);
    }

    // `observedGeneration`: the latest generation the status fully describes — converged to it, or (below)
    // failed or refused at it. kstatus reads a lagging one as "in progress" (`crate::readiness`).
    let failed_here = d.status.failed_target_hash.as_deref() == Some(ctx.hash.as_str());
    if d.status.rollout.is_none() && failed_here {
        d.status.observed_generation = Some(ctx.generation);
    }
    if d.status.rollout.is_none() && d.status.template_hash.as_deref() == Some(ctx.hash.as_str()) {
        d.status.observed_generation = Some(ctx.generation);
        // The template is back on the active one: a target that failed before is no longer wanted. Remembered,
        // it would report a failure the spec no longer asks for, and refuse the same target edited in again.
        d.status.failed_target_hash = None;
    }
    if !plan_active(&d.status) {
        d.status.incumbent_nodes = desired_active_nodes(&ctx, &d.status);
    }
    let refusing = find_condition(&d.status.conditions, ROLLOUT_IN_PROGRESS)
        .is_some_and(|c| c.reason == REASON_INVALID_UPDATE_STRATEGY);
    if !refusing {
        d.status.refused_target = None;
    }
    let refused_here = find_condition(&d.status.conditions, ROLLOUT_IN_PROGRESS)
        .is_some_and(|c| c.reason == REASON_INVALID_UPDATE_STRATEGY && c.observed_generation == Some(ctx.generation));
    if d.status.rollout.is_none() && refused_here {
        d.status.observed_generation = Some(ctx.generation);
    }
    summarize(&ctx, &mut d.status);
    d
}

/// Whether the spec has moved off `rollout`'s target: another template hash, or — for a HardFork, whose plan bakes
/// the height into every entrant's bootstrap — another haltHeight (entrants bootstrapped to the old one would
/// run the pre-fork binary into the upgrade). A rollout stored without its height (by an older operator) is
/// judged by its hash alone.
pub fn is_superseded(rollout: &RolloutStatus, deployment: &SeiNodeDeployment) -> bool {
    let spec = &deployment.spec;
    rollout.target_hash != template_hash(&spec.template.spec)
        || (rollout.strategy == Strategy::HardFork
            && rollout.halt_height.is_some()
            && rollout.halt_height != spec.update_strategy.halt_height())
        // A gate added, moved or removed: the staged image waits for another height, or for none.
        || (rollout.strategy == Strategy::InPlace && rollout.upgrade_height != spec.update_strategy.upgrade_height())
}

/// The phase of the plan that belongs to `rollout` (the one whose id derives from its target and strategy), if
/// the status holds it.
fn rollout_plan_phase(ctx: &Ctx<'_>, status: &SeiNodeDeploymentStatus, rollout: &RolloutStatus) -> Option<PlanPhase> {
    let uid = ctx.deployment.metadata.uid.as_deref()?;
    let expected = plan_id(uid, &rollout.plan_target(), &rollout.strategy.to_string()).to_string();
    status.plan.as_ref().filter(|p| p.id == expected).map(|p| p.phase)
}

fn plan_active(status: &SeiNodeDeploymentStatus) -> bool {
    status.plan.as_ref().is_some_and(|p| p.phase == PlanPhase::Active)
}

/// The first sight. With no nodes, the template is the baseline and the first set is made from it. With nodes
/// already its own — adopted orphans, e.g. the nodes a `Retain` delete of an earlier deployment of this name left
/// running — the baseline is what they run: they become the active set, and a template that differs from them
/// rolls out onto them with the deployment's strategy, as any template change does. (Taking the template as the
/// baseline would leave them on their old image under a status that says the new one is rolled out, and their
/// revision would not be the one the Service selects.)
fn record_baseline(ctx: &Ctx<'_>, d: &mut Decision) {
    let (template_hash, active_set, message) = match adopted_baseline(ctx) {
        Some((template_hash, active_set, count)) => {
            let message = format!(
                "no rollout has run yet; the {count} existing node(s) of revision {} are the active set{}",
                active_set.revision,
                if template_hash == ctx.hash { String::new() } else { format!(", running template {template_hash}") }
            );
            (template_hash, active_set, message)
        }
        None => {
            let set = ActiveSet::running(ctx.hash.clone(), 0, &ctx.deployment.spec.template.spec);
            (ctx.hash.clone(), set, "no rollout has run yet".to_owned())
        }
    };
    d.status.template_hash = Some(template_hash);
    d.status.active_set = Some(active_set);
    ctx.condition(&mut d.status, ROLLOUT_IN_PROGRESS, false, REASON_NO_ROLLOUT, message);
}

/// The baseline the nodes a deployment already controls at its first sight give: the template hash they run,
/// their set (revision label and the generation their names carry) and how many they are. Of several sets (a
/// `Retain` delete mid-rollout leaves two), one with a node Running wins — the other set's nodes are strays, and
/// deleting the only running ones for a set still bootstrapping would leave the Service (which may still select
/// them) with nothing to send traffic to for the whole bootstrap — then the one already on the template (no
/// rollout needed), then the one with more nodes Running, then the older one (it was serving). A set whose nodes run different templates
/// (deleted mid-InPlace rollout) takes the first template that differs from the deployment's, so the rollout
/// that follows brings every node to it.
fn adopted_baseline(ctx: &Ctx<'_>) -> Option<(String, ActiveSet, usize)> {
    use std::collections::BTreeMap;
    let mut sets: BTreeMap<(i64, String), Vec<&SeiNode>> = BTreeMap::new();
    for node in ctx.observed.nodes.iter().filter(|n| n.metadata.deletion_timestamp.is_none()) {
        let revision = node.metadata.labels.as_ref().and_then(|l| l.get(LABEL_REVISION));
        let generation = node.metadata.name.as_deref().and_then(|n| names::set_generation_of(ctx.name(), n));
        if let (Some(revision), Some(generation)) = (revision, generation) {
            sets.entry((generation, revision.clone())).or_default().push(node);
        }
    }
    let on_template = |nodes: &[&SeiNode]| nodes.iter().all(|n| template_hash(&n.spec) == ctx.hash);
    let running = |nodes: &[&SeiNode]| {
        nodes.iter().filter(|n| n.status.as_ref().and_then(|s| s.phase) == Some(SeiNodePhase::Running)).count()
    };
    let ((generation, revision), nodes) = sets.into_iter().max_by_key(|((generation, _), nodes)| {
        (running(nodes) > 0, on_template(nodes), running(nodes), std::cmp::Reverse(*generation))
    })?;
    let differs = nodes.iter().find(|n| template_hash(&n.spec) != ctx.hash);
    let model = differs.or(nodes.first())?;
    let runs = template_hash(&model.spec);
    Some((runs, ActiveSet::running(revision, generation, &model.spec), nodes.len()))
}

fn detect_rollout(ctx: &Ctx<'_>, d: &mut Decision) {
    let strategy = match ctx.deployment.spec.update_strategy.resolve() {
        Ok(strategy) => strategy,
        Err(error) => return report_invalid(ctx, d, error.to_string()),
    };
    let rollout = new_rollout(ctx, &d.status, strategy);
    let plan = match plan_for(ctx, &rollout) {
        Ok(plan) => plan,
        Err(error) => return report_invalid(ctx, d, error.to_string()),
    };
    let target = (rollout.generation, rollout.plan_target());
    let target = (target.0, target.1.as_str());
    // Only with the rollout it explains: a spec refused each reconcile must not warn each reconcile.
    if ctx.deployment.spec.update_strategy.is_unspecified() {
        let message = "spec.updateStrategy.type is empty (stored before it was required); rolling out as InPlace";
        d.events.push(ctx.event(true, EVENT_UPDATE_STRATEGY_DEFAULTED, target, message.into()));
    }
    let message = format!("rolling out template {} with {strategy}", ctx.hash);
    ctx.condition(&mut d.status, ROLLOUT_IN_PROGRESS, true, REASON_TEMPLATE_CHANGED, message.clone());
    d.events.push(ctx.event(false, EVENT_ROLLOUT_STARTED, target, message));
    d.status.rollout = Some(rollout);
    d.status.plan = Some(plan);
}

fn supersede_rollout(ctx: &Ctx<'_>, d: &mut Decision, old: &RolloutStatus) {
    let moved = traffic_moved(ctx, &d.status, old);
    // A revert is a cancel: the template is back on the one the incumbents run, and traffic never left them.
    // Nothing is left to roll out, whatever the strategy now says: no third node set is built.
    // Only when they do run it: an InPlace rollout this one superseded may have written its target onto them.
    if !moved
        && old.strategy != Strategy::InPlace
        && d.status.template_hash.as_deref() == Some(ctx.hash.as_str())
        && incumbents_run_the_template(ctx, &d.status)
    {
        return cancel_rollout(ctx, d, old);
    }
    let strategy = match ctx.deployment.spec.update_strategy.resolve() {
        Ok(strategy) => strategy,
        // The old rollout keeps going; the spec it cannot move to is reported.
        Err(error) => return report_invalid(ctx, d, error.to_string()),
    };
    // Traffic already moved to the superseded entrants: they serve now, so they are the new incumbents.
    if moved {
        adopt_entrants(&mut d.status, old);
    }
    let rollout = new_rollout(ctx, &d.status, strategy);
    let plan = match plan_for(ctx, &rollout) {
        Ok(plan) => plan,
        Err(error) => return report_invalid(ctx, d, error.to_string()),
    };
    let message = match (old.halt_height, rollout.halt_height) {
        (Some(from), Some(to)) if old.target_hash == ctx.hash && from != to => {
            format!("rollout to {} at haltHeight {from} superseded by haltHeight {to} ({strategy})", ctx.hash)
        }
        _ if old.target_hash == ctx.hash && old.upgrade_height != rollout.upgrade_height => {
            let gate = |height: Option<i64>| {
                height.map_or_else(|| "no height gate".to_owned(), |h| format!("upgradeHeight {h}"))
            };
            format!(
                "rollout to {} at {} superseded by {} ({strategy})",
                ctx.hash,
                gate(old.upgrade_height),
                gate(rollout.upgrade_height)
            )
        }
        _ => format!("rollout to {} superseded by template {} ({strategy})", old.target_hash, ctx.hash),
    };
    ctx.condition(&mut d.status, ROLLOUT_IN_PROGRESS, true, REASON_TEMPLATE_CHANGED, message.clone());
    let target = rollout.plan_target();
    d.events.push(ctx.event(false, EVENT_ROLLOUT_SUPERSEDED, (rollout.generation, &target), message));
    d.status.rollout = Some(rollout);
    d.status.plan = Some(plan);
}

/// Whether every incumbent node (as read) runs the current template: its spec's rollout fields hash to it.
fn incumbents_run_the_template(ctx: &Ctx<'_>, status: &SeiNodeDeploymentStatus) -> bool {
    status.incumbent_nodes.iter().filter_map(|name| ctx.node(name)).all(|node| template_hash(&node.spec) == ctx.hash)
}

/// Ends a BlueGreen / HardFork rollout whose template was edited back to the incumbents' before the switch: no
/// rollout, no plan; its entrants are no longer in any set, so they are deleted as strays (after this status
/// is stored), and the incumbents, untouched, go on serving.
fn cancel_rollout(ctx: &Ctx<'_>, d: &mut Decision, old: &RolloutStatus) {
    let message = format!(
        "rollout to {} superseded by template {}, which the incumbents already run: rollout canceled, its entrants \
         deleted",
        old.target_hash, ctx.hash
    );
    d.status.rollout = None;
    d.status.plan = None;
    ctx.condition(&mut d.status, ROLLOUT_IN_PROGRESS, false, REASON_ROLLOUT_CANCELED, message.clone());
    d.events.push(ctx.event(false, EVENT_ROLLOUT_SUPERSEDED, (ctx.generation, &ctx.hash), message));
}

/// Whether traffic has moved to the entrants of `rollout` (BlueGreen / HardFork): its plan recorded
/// `switch-traffic` Complete — the operator's own record, which a lagging read of the Service cannot contradict
/// — or the Service is seen selecting the entrants (a switch whose record a crash lost).
fn traffic_moved(ctx: &Ctx<'_>, status: &SeiNodeDeploymentStatus, rollout: &RolloutStatus) -> bool {
    let Some(entrant_revision) = rollout.entrant_revision.as_deref().filter(|_| rollout.strategy != Strategy::InPlace)
    else {
        return false;
    };
    let recorded = rollout_plan_phase(ctx, status, rollout).is_some()
        && status.plan.as_ref().is_some_and(|plan| {
            plan.tasks.iter().any(|t| t.type_ == TaskType::SwitchTraffic.as_str() && t.status == TaskStatus::Complete)
        });
    recorded || ctx.observed.service_revision == Some(entrant_revision)
}

/// The entrants of `rollout` become the active set: they are what the Service selects.
/// Their spec, as the plan's `create-entrant-nodes` made them, is what the set runs, and the rollout's target is
/// the template they run: a later edit back to it is a revert to the new incumbents, not to the old ones (which
/// the teardown may already have deleted).
fn adopt_entrants(status: &mut SeiNodeDeploymentStatus, rollout: &RolloutStatus) {
    if let Some(revision) = rollout.entrant_revision.clone() {
        status.template_hash = Some(rollout.target_hash.clone());
        let made = plan_params::<CreateEntrantNodes>(status.plan.as_ref(), TaskType::CreateEntrantNodes)
            .filter(|params| params.revision == revision);
        status.active_set = Some(match made {
            Some(params) => ActiveSet::running(revision, rollout.generation, &params.spec),
            None => ActiveSet { revision, generation: rollout.generation, fields: None, fork_bootstrap: None },
        });
        status.incumbent_nodes = rollout.entrant_nodes.clone();
    }
}

/// The parameters of `plan`'s task of `task_type`, if it has one that reads back.
fn plan_params<T: serde::de::DeserializeOwned>(plan: Option<&Plan>, task_type: TaskType) -> Option<T> {
    let task = plan?.tasks.iter().find(|t| t.type_ == task_type.as_str())?;
    serde_json::from_value(task.params.clone()).ok()
}

fn complete_rollout(ctx: &Ctx<'_>, d: &mut Decision, rollout: &RolloutStatus) {
    if rollout.strategy != Strategy::InPlace {
        adopt_entrants(&mut d.status, rollout);
    } else if let Some(set) = d.status.active_set.as_mut() {
        // The same nodes, now on the fields `update-node-specs` wrote.
        let gated = plan_params::<UpdateNodeSpecsAtHeight>(d.status.plan.as_ref(), TaskType::UpdateNodeSpecsAtHeight);
        set.fields = match &gated {
            Some(params) => Some(params.fields.clone()),
            None => plan_params::<UpdateNodeSpecs>(d.status.plan.as_ref(), TaskType::UpdateNodeSpecs).map(|p| p.fields),
        };
        // Across an upgrade: a node made again for the set restores a snapshot from below the upgrade, which the
        // new binary refuses. It bootstraps as a HardFork entrant does: the binary before, to the block before.
        if let Some(params) = gated.as_ref()
            && let Some(previous) = params.previous.as_ref()
        {
            let target_height = params.upgrade_height - 1;
            set.fork_bootstrap = Some(ForkBootstrap { image: previous.image.clone(), target_height });
        }
    }
    d.status.template_hash = Some(rollout.target_hash.clone());
    d.status.failed_target_hash = None;
    // The spec generation the rollout converged to (its own may run ahead of it: see `new_rollout`).
    d.status.observed_generation = Some(rollout.generation.min(ctx.generation));
    d.status.rollout = None;
    let message = format!("rolled out template {} with {}", rollout.target_hash, rollout.strategy);
    ctx.condition(&mut d.status, ROLLOUT_IN_PROGRESS, false, REASON_ROLLOUT_COMPLETE, message.clone());
    d.events.push(ctx.event(false, EVENT_ROLLOUT_COMPLETE, (rollout.generation, &rollout.plan_target()), message));
}

fn fail_rollout(ctx: &Ctx<'_>, d: &mut Decision, rollout: &RolloutStatus) {
    let cause = d
        .status
        .plan
        .as_ref()
        .and_then(|p| p.failed_task_detail.as_ref())
        .map(|f| format!("task {} failed after {}/{} retries: {}", f.type_, f.retry_count, f.max_retries, f.error))
        .unwrap_or_else(|| "its plan failed".into());
    let mut message = format!("rollout to template {} ({}) failed: {cause}", rollout.target_hash, rollout.strategy);
    // A plan that fails after its traffic switch leaves the entrants serving: they stay, as the active set, and
    // the incumbents are the nodes that go — never the nodes traffic is on.
    if traffic_moved(ctx, &d.status, rollout) {
        adopt_entrants(&mut d.status, rollout);
        message += "; traffic had already moved to its entrants, which stay as the active set";
    }
    d.status.failed_target_hash = Some(rollout.target_hash.clone());
    d.status.rollout = None;
    ctx.condition(&mut d.status, ROLLOUT_IN_PROGRESS, false, REASON_ROLLOUT_FAILED, message.clone());
    d.events.push(ctx.event(true, EVENT_ROLLOUT_FAILED, (rollout.generation, &rollout.plan_target()), message));
}

/// The type of the first task of an Active plan that is not Complete: what the plan waits on.
fn current_task(plan: Option<&Plan>) -> Option<&str> {
    let plan = plan.filter(|p| p.phase == PlanPhase::Active)?;
    plan.tasks.iter().find(|t| t.status != TaskStatus::Complete).map(|t| t.type_.as_str())
}

fn track_rollout(ctx: &Ctx<'_>, d: &mut Decision, mut rollout: RolloutStatus) {
    refresh_rollout_nodes(ctx, &mut rollout);
    // Nodes a height gate holds back are waiting for their chain, as the spec asks: however long that takes (the
    // upgrade may be days away), the rollout is not stalled. Its stall threshold counts from when none is left.
    // Only a node whose seid answers below the gate waits for its chain; one that does not run (crash-looping,
    // never started, bootstrapping) holds the rollout as any node that is not ready does.
    let below_gate: Vec<&str> = rollout
        .nodes
        .iter()
        .filter(|n| n.gate == Some(NodeGate::Waiting))
        .filter(|n| {
            let status = ctx.node(&n.name).and_then(|node| node.status.as_ref());
            status.is_some_and(|s| s.catching_up.is_some() && s.latest_height.is_some())
        })
        .map(|n| n.name.as_str())
        .collect();
    let gate_reached_at = match (rollout.upgrade_height, below_gate.is_empty()) {
        (Some(_), true) => Some(rollout.gate_reached_at.clone().unwrap_or(Time(ctx.observed.now))),
        _ => None,
    };
    let below_gate: Vec<String> = below_gate.into_iter().map(str::to_owned).collect();
    rollout.gate_reached_at = gate_reached_at;
    let clock_start = rollout.gate_reached_at.as_ref().map_or(rollout.started_at.0, |t| t.0);
    let age = ctx.observed.now.duration_since(clock_start);
    let threshold = SignedDuration::try_from(ctx.config.stall_threshold).unwrap_or(SignedDuration::MAX);
    let waiting: Vec<&str> = rollout.nodes.iter().filter(|n| !n.ready).map(|n| n.name.as_str()).collect();
    // Past the threshold a rollout is reported whatever holds it: nodes not ready, or a step after them (a
    // teardown under an API conflict storm, a fork waiting for its chain) — a user must hear of it either way.
    let stalled = age > threshold && below_gate.is_empty();
    let already_stalled = find_condition(&d.status.conditions, ROLLOUT_IN_PROGRESS)
        .is_some_and(|c| c.status == "True" && c.reason == REASON_STALLED);
    if stalled {
        let minutes = ctx.config.stall_threshold.as_secs() / 60;
        let message = format!(
            "rollout to template {} has not completed after {minutes}m; nodes not ready: {}",
            rollout.target_hash,
            match (waiting.is_empty(), rollout.nodes.is_empty()) {
                (false, _) => waiting.join(", "),
                (true, true) => "none yet created".to_owned(),
                (true, false) => match current_task(d.status.plan.as_ref()) {
                    Some(task) => format!("none (every node is ready; the plan waits on {task})"),
                    None => "none (every node is ready)".to_owned(),
                },
            }
        );
        if !already_stalled {
            let target = (rollout.generation, rollout.plan_target());
            d.events.push(ctx.event(true, EVENT_ROLLOUT_STALLED, (target.0, &target.1), message.clone()));
        }
        ctx.condition(&mut d.status, ROLLOUT_IN_PROGRESS, true, REASON_STALLED, message);
    } else if !already_stalled {
        let mismatch: Vec<String> = rollout
            .upgrade_height
            .map(|height| {
                let target = RolloutFields::of(&ctx.deployment.spec.template.spec);
                let previous = previous_fields(ctx, Some(height));
                let off = |entry: &RolloutNodeStatus| {
                    super::gate::mismatch(ctx.node(&entry.name)?, height, &target, previous.as_ref())
                };
                rollout.nodes.iter().filter(|n| n.gate == Some(NodeGate::Mismatch)).filter_map(off).collect()
            })
            .unwrap_or_default();
        let (reason, message) = match rollout.upgrade_height.filter(|_| !below_gate.is_empty() || !mismatch.is_empty())
        {
            Some(height) if !mismatch.is_empty() => (
                REASON_UPGRADE_HEIGHT_MISMATCH,
                format!(
                    "upgradeHeight {height} does not match the chain: {}; correct the height, or remove it to roll \
                     the image out at once",
                    mismatch.join("; ")
                ),
            ),
            Some(height) => (
                REASON_AWAITING_UPGRADE_HEIGHT,
                format!(
                    "template {} is staged until each node has committed block {} (upgradeHeight {height}); below \
                     it: {}",
                    rollout.target_hash,
                    height - 1,
                    below_gate.join(", ")
                ),
            ),
            None => (
                REASON_TEMPLATE_CHANGED,
                format!("rolling out template {} with {}", rollout.target_hash, rollout.strategy),
            ),
        };
        let current = find_condition(&d.status.conditions, ROLLOUT_IN_PROGRESS);
        if current.is_none_or(|c| c.status != "True" || c.reason != REASON_INVALID_UPDATE_STRATEGY) {
            ctx.condition(&mut d.status, ROLLOUT_IN_PROGRESS, true, reason, message);
        }
    }
    d.status.rollout = Some(rollout);
}

fn restore_plan(ctx: &Ctx<'_>, d: &mut Decision, rollout: &RolloutStatus) {
    match plan_for(ctx, rollout) {
        Ok(plan) => d.status.plan = Some(plan),
        Err(error) => report_invalid(ctx, d, error.to_string()),
    }
}

/// A spec the operator cannot roll out to: a clear condition message and one Warning event while the cause is
/// unchanged. The cause is the reason and the target the spec names (template hash, strategy, haltHeight) — not
/// the message, which may carry live numbers (the height an incumbent reached): compared by message, a refusal
/// would warn and rewrite the status at every block.
fn report_invalid(ctx: &Ctx<'_>, d: &mut Decision, message: String) {
    let strategy = &ctx.deployment.spec.update_strategy;
    let halt_height =
        strategy.halt_height().or(strategy.upgrade_height()).map_or_else(|| "-".to_owned(), |h| h.to_string());
    let target = format!("{}/{}/{halt_height}", ctx.hash, strategy.type_.as_str());
    let current = find_condition(&d.status.conditions, ROLLOUT_IN_PROGRESS);
    let repeated = d.status.refused_target.as_deref() == Some(target.as_str())
        && current.is_some_and(|c| c.reason == REASON_INVALID_UPDATE_STRATEGY);
    let message = match current.filter(|_| repeated) {
        // The message as first reported, so the status does not change with the live numbers in it.
        Some(condition) => condition.message.clone(),
        None => {
            d.events.push(ctx.event(true, EVENT_INVALID_UPDATE_STRATEGY, (ctx.generation, &target), message.clone()));
            message
        }
    };
    d.status.refused_target = Some(target);
    let rolling = d.status.rollout.is_some();
    ctx.condition(&mut d.status, ROLLOUT_IN_PROGRESS, rolling, REASON_INVALID_UPDATE_STRATEGY, message);
}

/// The rollout to the current template hash, from the active set in `status`.
fn new_rollout(ctx: &Ctx<'_>, status: &SeiNodeDeploymentStatus, strategy: Strategy) -> RolloutStatus {
    let incumbents = status.incumbent_nodes.clone();
    let incumbent_revision = status.active_set.as_ref().map(|s| s.revision.clone());
    // Entrant sets are named after the generation; generation 0 names the first set. Never after a set that
    // exists: a deployment re-created after a `Retain` delete starts again at generation 1 beside the sets it
    // adopted, and an entrant named like an adopted node would find its name taken.
    let past_existing_sets = ctx
        .observed
        .nodes
        .iter()
        .filter_map(|n| names::set_generation_of(ctx.name(), n.metadata.name.as_deref()?))
        .chain(status.active_set.as_ref().map(|s| s.generation))
        .max()
        .map_or(0, |g| g + 1);
    let generation = ctx.generation.max(1).max(past_existing_sets);
    let mut rollout = RolloutStatus::new(strategy, ctx.hash.clone(), Time(ctx.observed.now), generation);
    match strategy {
        Strategy::InPlace => {
            rollout.nodes = incumbents
                .iter()
                .map(|name| RolloutNodeStatus { name: name.clone(), ready: false, phase: None, gate: None })
                .collect();
            rollout.upgrade_height = ctx.deployment.spec.update_strategy.upgrade_height();
        }
        Strategy::BlueGreen | Strategy::HardFork => {
            let replicas = u32::try_from(ctx.deployment.spec.replicas.max(1)).unwrap_or(1);
            rollout.entrant_nodes =
                (0..replicas).map(|ordinal| names::entrant_node(ctx.name(), generation, ordinal)).collect();
            // The entrant revision must differ from the serving one, or the traffic switch would be a no-op
            // and the teardown would delete the nodes that serve — and from that of any node on its way out
            // (the superseded rollout's entrants of the same template at another haltHeight; incumbents of a
            // template edited back to after a switch), which the Service would select too.
            let leaving = ctx.observed.nodes.iter().any(|n| {
                n.metadata.name.as_ref().is_some_and(|name| !incumbents.contains(name))
                    && n.metadata.labels.as_ref().and_then(|l| l.get(LABEL_REVISION)) == Some(&ctx.hash)
            });
            let in_use = incumbent_revision.as_deref() == Some(ctx.hash.as_str())
                || status.rollout.as_ref().and_then(|r| r.entrant_revision.as_deref()) == Some(ctx.hash.as_str())
                || leaving;
            let entrant_revision = if in_use { format!("{}-g{generation}", ctx.hash) } else { ctx.hash.clone() };
            let halt_height = ctx.deployment.spec.update_strategy.halt_height();
            if strategy == Strategy::HardFork {
                rollout.halt_height = halt_height;
            }
            rollout.incumbent_image = incumbents.iter().find_map(|name| {
                let node = ctx.node(name)?;
                // Incumbents that are themselves entrants of this fork run the post-fork binary already (even
                // before the chain reaches the upgrade); the binary that replays the blocks before it is the one
                // they bootstrapped with.
                if strategy == Strategy::HardFork
                    && let Some(image) = halt_height.and_then(|h| bootstrap_image_for_fork(node, h))
                {
                    return Some(image.to_owned());
                }
                node.status.as_ref().and_then(|s| s.current_image.clone()).or_else(|| Some(node.spec.image.clone()))
            });
            rollout.incumbent_nodes = incumbents;
            rollout.incumbent_revision = incumbent_revision;
            rollout.entrant_revision = Some(entrant_revision);
        }
    }
    refresh_rollout_nodes(ctx, &mut rollout);
    rollout
}

fn plan_for(ctx: &Ctx<'_>, rollout: &RolloutStatus) -> Result<Plan, PlanError> {
    if rollout.strategy == Strategy::HardFork {
        refuse_fork_behind_the_chain(ctx, rollout)?;
    }
    if let Some(upgrade_height) = rollout.upgrade_height {
        refuse_gate_behind_the_chain(ctx, rollout, upgrade_height)?;
    }
    let uid = ctx.deployment.metadata.uid.as_deref().ok_or_else(|| PlanError::NotStored(ctx.this.to_string()))?;
    rollout_plan(&RolloutPlanInput {
        owner_uid: uid,
        deployment: ctx.name(),
        rollout,
        template: &ctx.deployment.spec.template,
        // The height the rollout targets; a rollout stored without one (by an older operator) takes the spec's.
        halt_height: rollout.halt_height.or_else(|| ctx.deployment.spec.update_strategy.halt_height()),
        previous_fields: previous_fields(ctx, rollout.upgrade_height),
    })
}

/// The rollout fields of the binary without the upgrade at the rollout's gate, when recorded: the one that
/// committed the block before the gate. The active set's nodes run its recorded fields from the block after its
/// recorded bootstrap (a gated rollout or a HardFork records the bootstrap to the block before its upgrade); the
/// blocks up to the bootstrap height ran on the bootstrap's image. So for a gate at or below the block after the
/// bootstrap — this upgrade again, or the same upgrade after a gate mistyped above it had been rolled out and then
/// corrected — the binary without it is the bootstrap's: the set's own may not replay the blocks before it.
fn previous_fields(ctx: &Ctx<'_>, gate: Option<i64>) -> Option<RolloutFields> {
    let set = ctx.deployment.status.as_ref()?.active_set.as_ref()?;
    let mut fields = set.fields.clone()?;
    if let (Some(gate), Some(fork)) = (gate, set.fork_bootstrap.as_ref())
        && gate - 1 <= fork.target_height
    {
        fields.image.clone_from(&fork.image);
    }
    Some(fields)
}

/// The rollout fields the active set's nodes run that they did not get from a gate at `gate`: the set's own,
/// unless it recorded its bootstrap to exactly this gate's block before (a gated rollout at this height, or a
/// HardFork at it, switched them), in which case the bootstrap's. Gate rule 4 asks this of a node above the gate:
/// on such a binary it processed the gate's block, so the chain has no upgrade there — whatever the set's earlier
/// bootstrap says of lower blocks.
fn fields_not_from_this_gate(ctx: &Ctx<'_>, gate: i64) -> Option<RolloutFields> {
    let set = ctx.deployment.status.as_ref()?.active_set.as_ref()?;
    let mut fields = set.fields.clone()?;
    if let Some(fork) = set.fork_bootstrap.as_ref()
        && fork.target_height == gate - 1
    {
        fields.image.clone_from(&fork.image);
    }
    Some(fields)
}

/// A height gate the fleet has passed cannot be kept (gate rule 4): a node above H on the binary the fleet ran
/// before processed H, so the chain has no upgrade there that binary lacks, and holding the image back for H would
/// hold it back for good. Refused, with what to do instead. (A node above H on an earlier staged image was switched
/// at this gate: a superseding edit after the upgrade moves it on at once.)
fn refuse_gate_behind_the_chain(ctx: &Ctx<'_>, rollout: &RolloutStatus, upgrade_height: i64) -> Result<(), PlanError> {
    let target = RolloutFields::of(&ctx.deployment.spec.template.spec);
    let previous = fields_not_from_this_gate(ctx, upgrade_height);
    let past = rollout.nodes.iter().find_map(|entry| {
        let node = ctx.node(&entry.name)?;
        let height = node.status.as_ref()?.latest_height?;
        let old_binary = super::gate::on_previous_binary(node, &target, previous.as_ref());
        (height >= upgrade_height && old_binary).then_some((entry.name.as_str(), height))
    });
    if let Some((node, height)) = past {
        return Err(PlanError::InvalidSpec(format!(
            "spec.updateStrategy.inPlace.upgradeHeight {upgrade_height} is behind the chain (node {node} is at \
             height {height}): a height gate must name an upgrade the chain has not reached; set it to the next \
             upgrade's height, or remove it to roll the image out at once"
        )));
    }
    refuse_the_binary_without_a_passed_upgrade(ctx, rollout, &target, upgrade_height)
}

/// A gated rollout back to the binary without the upgrade at its gate, once a node shows the chain has reached
/// the upgrade (it committed the block on the staged binary, or its old binary stopped there): that binary cannot
/// process the block, so every node on it would stop at the upgrade for good (Cosmos SDK `x/upgrade/abci.go`).
/// Refused, so a rollout it supersedes keeps going; before the chain reaches the gate such an edit is an ordinary
/// revert (gate rule 5).
fn refuse_the_binary_without_a_passed_upgrade(
    ctx: &Ctx<'_>,
    rollout: &RolloutStatus,
    target: &RolloutFields,
    upgrade_height: i64,
) -> Result<(), PlanError> {
    let Some(previous) = previous_fields(ctx, Some(upgrade_height)) else { return Ok(()) };
    if previous.image != target.image {
        return Ok(());
    }
    let reached = rollout
        .nodes
        .iter()
        .find(|entry| ctx.node(&entry.name).is_some_and(|node| super::gate::saw_the_upgrade(node, upgrade_height)));
    match reached {
        None => Ok(()),
        Some(entry) => Err(PlanError::InvalidSpec(format!(
            "spec.template.spec.image {} is the binary without the upgrade at upgradeHeight {upgrade_height}, and \
             the chain has reached it (node {} committed or stopped at it): that binary cannot process the \
             upgrade's block, so every node on it would stop there for good; keep an image that carries the upgrade",
            target.image, entry.name
        ))),
    }
}

/// A HardFork straddles the upgrade at `haltHeight`: entrants sync with the incumbents' (pre-fork) binary to the
/// block before it. Once an incumbent that was not itself bootstrapped for this fork has processed `haltHeight`,
/// the fork is behind the chain and that incumbent runs a post-fork binary, which cannot replay the blocks before
/// the upgrade: the bootstrap would panic. Such a spec is refused, with what to do instead, rather than started.
fn refuse_fork_behind_the_chain(ctx: &Ctx<'_>, rollout: &RolloutStatus) -> Result<(), PlanError> {
    let Some(halt_height) = ctx.deployment.spec.update_strategy.halt_height() else { return Ok(()) };
    let past = rollout.incumbent_nodes.iter().find_map(|name| {
        let node = ctx.node(name)?;
        let height = node.status.as_ref()?.latest_height?;
        (height >= halt_height && bootstrap_image_for_fork(node, halt_height).is_none()).then_some((name, height))
    });
    match past {
        None => Ok(()),
        Some((node, height)) => Err(PlanError::InvalidSpec(format!(
            "spec.updateStrategy.hardFork.haltHeight {halt_height} is behind the chain (incumbent {node} is at \
             height {height}): a HardFork must target an upgrade the chain has not reached; set haltHeight to the \
             next upgrade's height, or use InPlace to replace a binary that already runs past this one"
        ))),
    }
}

/// The image `node` bootstrapped with to the block before `halt_height`, when it was made an entrant of the fork
/// at that height: a binary known to replay the blocks before the upgrade.
fn bootstrap_image_for_fork(node: &SeiNode, halt_height: i64) -> Option<&str> {
    let snapshot = node.spec.snapshot()?;
    let bootstrapped_to = snapshot.s3.as_ref()?.target_height;
    (bootstrapped_to == halt_height - 1).then_some(snapshot.bootstrap_image.as_deref()?)
}

/// Per-node convergence of a rollout: InPlace nodes are ready once Running the target image with the sidecar
/// Ready; BlueGreen entrants once Running and caught up; HardFork entrants once Running.
fn refresh_rollout_nodes(ctx: &Ctx<'_>, rollout: &mut RolloutStatus) {
    let target_image = &ctx.deployment.spec.template.spec.image;
    let names: Vec<String> = match rollout.strategy {
        Strategy::InPlace => rollout.nodes.iter().map(|n| n.name.clone()).collect(),
        _ => rollout.entrant_nodes.clone(),
    };
    rollout.nodes = names
        .into_iter()
        .map(|name| {
            let node = ctx.node(&name);
            let status = node.and_then(|n| n.status.as_ref());
            let phase = status.and_then(|s| s.phase);
            let running = phase == Some(SeiNodePhase::Running);
            let gate = rollout.upgrade_height.zip(node).map(|(height, node)| {
                let target = RolloutFields::of(&ctx.deployment.spec.template.spec);
                super::gate::node_gate(node, height, &target, previous_fields(ctx, Some(height)).as_ref())
            });
            let ready = running
                && match rollout.strategy {
                    Strategy::InPlace => status.is_some_and(|s| {
                        s.current_image.as_deref() == Some(target_image) && s.sidecar_ready == Some(true)
                    }),
                    Strategy::BlueGreen => status.is_some_and(|s| s.catching_up == Some(false)),
                    Strategy::HardFork => true,
                };
            RolloutNodeStatus { name, ready, phase, gate }
        })
        .collect();
}

/// The active set's node names for the current replica count (when no plan holds the set fixed).
fn desired_active_nodes(ctx: &Ctx<'_>, status: &SeiNodeDeploymentStatus) -> Vec<String> {
    let generation = status.active_set.as_ref().map_or(0, |s| s.generation);
    let replicas = u32::try_from(ctx.deployment.spec.replicas.max(1)).unwrap_or(1);
    (0..replicas).map(|ordinal| names::set_node(ctx.name(), generation, ordinal)).collect()
}

fn summarize(ctx: &Ctx<'_>, status: &mut SeiNodeDeploymentStatus) {
    let active: Vec<&SeiNode> = status.incumbent_nodes.iter().filter_map(|name| ctx.node(name)).collect();
    status.nodes = active
        .iter()
        .map(|n| NodeSummary {
            name: n.metadata.name.clone().unwrap_or_default(),
            phase: n.status.as_ref().and_then(|s| s.phase),
        })
        .collect();
    let counts = count_nodes(&active, ctx.deployment.spec.replicas);
    status.replicas = i32::try_from(active.len()).unwrap_or(i32::MAX);
    status.ready_replicas = counts.ready;

    let (plan_on, plan_reason, plan_message) = match status.plan.as_ref().filter(|p| p.phase == PlanPhase::Active) {
        Some(plan) => {
            let index = plan.tasks.iter().position(|t| t.status != crate::api::TaskStatus::Complete).unwrap_or(0);
            let task = plan.tasks.get(index).map_or("", |t| t.type_.as_str());
            (true, REASON_PLAN_ACTIVE, format!("plan {}: task {}/{} {task}", plan.id, index + 1, plan.tasks.len()))
        }
        None => (false, REASON_NO_ACTIVE_PLAN, "no plan is active".to_owned()),
    };
    ctx.condition(status, PLAN_IN_PROGRESS, plan_on, plan_reason, plan_message);
    let all_ready = counts.ready >= ctx.deployment.spec.replicas;
    let reason = if all_ready { REASON_ALL_NODES_READY } else { REASON_NODES_NOT_READY };
    ctx.condition(status, NODES_READY, all_ready, reason, nodes_ready_message(&counts));

    let deleting = ctx.deployment.metadata.deletion_timestamp.is_some();
    status.phase = Some(deployment_phase(deleting, status, &ctx.hash, &counts));
    crate::readiness::summarize_deployment(status, Some(ctx.generation), ctx.observed.now);
}
