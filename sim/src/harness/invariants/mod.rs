//! The invariants of docs/design.md §7, each a named check over the world, run after every simulated step that changed
//! something. Typed views of the operator's objects are kept up to date from the store's change log, so a check
//! costs what changed, not the size of the cluster.
//!
//! Liveness (7) is a property of a run, not of a state: see [`crate::harness::world::World::run_until_settled`].

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::Service;
use sei_operator_core::api::{PlanPhase, SeiNode, SeiNodeDeployment, SeiNodePhase, Strategy};
use sei_operator_core::cluster::ObjectRef;
use sei_operator_core::objects::meta::{
    LABEL_DEPLOYMENT, LABEL_NODE, LABEL_REVISION, find_condition, is_condition_true, is_controlled_by,
};
use sei_operator_core::sidecar::wire::SidecarTaskType;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::harness::state::WorldState;

mod height_gate;
pub use height_gate::{GATE_ROLL_BOUND, HEIGHT_GATE_HOLDS};

/// A broken invariant: which one, and what was seen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvariantViolation {
    pub invariant: &'static str,
    pub message: String,
}

impl InvariantViolation {
    pub fn new(invariant: &'static str, message: impl Into<String>) -> Self {
        InvariantViolation { invariant, message: message.into() }
    }
}

pub const NO_TRAFFIC_BLACK_HOLE: &str = "no-traffic-black-hole";
pub const INCUMBENTS_DELETED_AFTER_SWITCH: &str = "incumbents-deleted-only-after-switch";
pub const NO_UPGRADE_PANIC_ON_HARDFORK_ENTRANT: &str = "no-upgrade-panic-on-hardfork-entrant";
pub const ROLLOUT_CONDITION_MATCHES_ROLLOUT: &str = "rollout-condition-matches-rollout";
pub const CURRENT_IMAGE_WAS_RUN: &str = "current-image-was-run-by-a-ready-pod";
pub const SINGLE_WRITER: &str = "single-writer-to-sidecars";
pub const NO_LEAKED_ENTRANTS: &str = "no-leaked-entrants-once-quiet";
pub const NO_ACTIVE_PVC_DELETED: &str = "no-pvc-of-an-active-node-deleted";
pub const LIVENESS: &str = "liveness";
pub const STALLED_ROLLOUT_REPORTED: &str = "stalled-rollout-reported";
pub const NO_WORK_STARTED_TWICE: &str = "no-sidecar-work-started-twice";
/// seid is restarted for a config change only when its config is not the one on its volume.
pub const NO_NEEDLESS_SEID_RESTART: &str = "no-needless-seid-restart";
pub const NO_COMPLETE_PLAN_BESIDE_UNFINISHED_ROLLOUT: &str = "no-complete-plan-beside-an-unfinished-rollout";
pub const ONE_PLAN_PER_ROLLOUT: &str = "one-plan-per-rollout";
pub const NO_OPERATOR_LIVELOCK: &str = "no-operator-livelock";
pub const SEID_RUNS_ON_PREPARED_VOLUME: &str = "seid-runs-only-on-a-prepared-volume";
/// Every call the operator makes is granted by the RBAC manifests in `deploy/` (checked at the call).
pub const OPERATOR_CALLS_AUTHORIZED: &str = "operator-calls-authorized";
pub const NO_NEEDLESSLY_FAILED_ROLLOUT: &str = "no-needlessly-failed-rollout";
/// At rest, every live child of a deployment runs its active set's image — none a failed target's.
pub const FLEET_ON_ACTIVE_IMAGE_AT_REST: &str = "fleet-on-the-active-image-at-rest";
/// An InPlace rollout completes only with every node's sidecar ready and seid serving the target, as read.
pub const ROLLOUT_COMPLETES_ON_READY_NODES: &str = "rollout-completes-only-on-ready-nodes";
/// A BlueGreen switch moves traffic only to entrants the kubelet has seen Ready (caught up) on their image.
pub const SWITCH_ONLY_TO_CAUGHT_UP_ENTRANTS: &str = "switch-only-to-caught-up-entrants";
/// No plan task writes in a reconcile that read the template moved off the plan's target.
pub const NO_PLAN_STEP_AFTER_SUPERSESSION: &str = "no-plan-step-after-supersession";

/// How long a quiet deployment may keep children of two revisions: its strays are deleted after the status write
/// that ends a rollout, so a delete that fails (a Conflict, a partition) leaves them until a retry succeeds, and
/// the retry policy waits up to five minutes (`core/src/controller/mod.rs`, `retry_after`).
pub const LEAKED_ENTRANT_GRACE: std::time::Duration = std::time::Duration::from_secs(330);

/// How long after a rollout's stall threshold the operator has to say so (one reconcile period or so).
pub const STALL_REPORT_GRACE: std::time::Duration = std::time::Duration::from_secs(60);

/// The only caller allowed to reach sidecars: the SeiNode controller (callers are tagged `operator:<Kind>`).
pub const SIDECAR_WRITER: &str = "operator:SeiNode";

/// Typed views of the operator's objects and what the checks remember between steps.
#[derive(Default)]
pub struct ObservedObjects {
    cursor: usize,
    pub nodes: BTreeMap<ObjectRef, SeiNode>,
    pub deployments: BTreeMap<ObjectRef, SeiNodeDeployment>,
    pub services: BTreeMap<ObjectRef, Service>,
    /// (namespace, deployment, revision) of every revision that has had a Running node, at any step.
    ran: BTreeSet<(String, String, String)>,
    /// Revisions a user left with no Running node by deleting nodes, until one of theirs runs again.
    emptied_by_user: BTreeSet<(String, String, String)>,
    user_deletes_checked: usize,
    /// SeiNodes changed since the last check of [`current_image_was_run`].
    changed_nodes: BTreeSet<ObjectRef>,
    calls_checked: usize,
    panics_checked: usize,
    write_violations_checked: usize,
    submissions_checked: usize,
    /// Task ids each sidecar process (pod, incarnation) started, by task type.
    started: BTreeMap<(ObjectRef, u64, String), Vec<uuid::Uuid>>,
    /// The plan id first seen beside each rollout: (deployment uid, plan target, strategy) → plan id.
    rollout_plans: BTreeMap<(String, String, String), String>,
    /// Template hash → (image, sidecar image) of every template any stored version of a deployment held.
    template_images: BTreeMap<String, (String, Option<String>)>,
    /// Each deployment's `failedTargetHash` as last judged.
    failed_targets: BTreeMap<ObjectRef, Option<String>>,
    /// Since when each quiet deployment has had children of more than one revision.
    mixed_since: BTreeMap<ObjectRef, std::time::Duration>,
    /// What the height gate's check remembers.
    gate: height_gate::GateWatch,
}

impl ObservedObjects {
    /// Re-reads the objects that changed since the last refresh.
    pub fn refresh(&mut self, world: &WorldState) {
        let changes = world.store.changes_since(self.cursor);
        self.cursor += changes.len();
        let keys: BTreeSet<&ObjectRef> = changes.iter().map(|c| &c.object).collect();
        for key in keys {
            match key.kind.as_str() {
                "SeiNode" => {
                    update(&mut self.nodes, world, key);
                    self.changed_nodes.insert(key.clone());
                }
                "SeiNodeDeployment" => update(&mut self.deployments, world, key),
                "Service" => update(&mut self.services, world, key),
                _ => {}
            }
        }
        // Every version a deployment's template took, not only the latest: a rollout's target may be a template
        // that a later edit of the same step replaced.
        for change in changes.iter().filter(|c| c.object.kind == "SeiNodeDeployment") {
            let Some(template) = world.store.get(&change.object, Some(change.version)).and_then(|v| {
                v.pointer("/spec/template/spec").and_then(|t| sei_operator_core::api::SeiNodeSpec::deserialize(t).ok())
            }) else {
                continue;
            };
            let hash = sei_operator_core::api::template_hash(&template);
            let sidecar = template.sidecar.as_ref().and_then(|s| s.image.clone());
            self.template_images.entry(hash).or_insert((template.image.clone(), sidecar));
        }
    }
}

fn update<K: DeserializeOwned>(map: &mut BTreeMap<ObjectRef, K>, world: &WorldState, key: &ObjectRef) {
    // Decoded from the stored JSON by reference: no copy of it.
    match world.store.get(key, None).and_then(|v| K::deserialize(v).ok()) {
        Some(object) => map.insert(key.clone(), object),
        None => map.remove(key),
    };
}

/// Runs every check; the first violation found.
pub fn check(world: &WorldState, observed: &mut ObservedObjects) -> Result<(), InvariantViolation> {
    observed.refresh(world);
    if let Some(violation) = world.write_violations.get(observed.write_violations_checked) {
        observed.write_violations_checked += 1;
        return Err(violation.clone());
    }
    no_traffic_black_hole(world, observed)?;
    no_upgrade_panic_on_hardfork_entrant(world, observed)?;
    rollout_condition_matches_rollout(observed)?;
    current_image_was_run(world, &mut *observed)?;
    single_writer(world, observed)?;
    no_leaked_entrants_once_quiet(world, observed)?;
    stalled_rollouts_are_reported(world, observed)?;
    no_sidecar_work_started_twice(world, observed)?;
    one_plan_per_rollout(observed)?;
    no_needlessly_failed_rollout(world, observed)?;
    height_gate::height_gate_holds(world, observed)?;
    Ok(())
}

/// Invariant 1: the deployment's Service never selects, for longer than a step, a revision that has had a Running
/// node and has none left — whatever the strategy (the spec's may have changed since the rollout that moved the
/// Service began, so it is not looked at). Judged on the state after each step (what happens between two writes
/// of one step is not), with the revisions that ever ran remembered from every step, not only from those in which
/// the Service selected them: a switch and the deletion of the nodes it switched to can fall in one step. A revision that never ran is not judged (the Service of a
/// deployment whose nodes are still starting). Nor is a revision a user emptied by deleting its nodes: that hole
/// is the user's, until a node of it runs again.
pub fn no_traffic_black_hole(world: &WorldState, observed: &mut ObservedObjects) -> Result<(), InvariantViolation> {
    for deleted in world.user_deleted_nodes.get(observed.user_deletes_checked..).unwrap_or(&[]) {
        observed.emptied_by_user.insert(deleted.clone());
    }
    observed.user_deletes_checked = world.user_deleted_nodes.len();
    let mut running: BTreeSet<(String, String, String)> = BTreeSet::new();
    for (key, node) in &observed.nodes {
        let Some(labels) = node.metadata.labels.as_ref() else { continue };
        let (Some(deployment), Some(revision)) = (labels.get(LABEL_DEPLOYMENT), labels.get(LABEL_REVISION)) else {
            continue;
        };
        if node.metadata.deletion_timestamp.is_none()
            && node.status.as_ref().and_then(|s| s.phase) == Some(SeiNodePhase::Running)
        {
            running.insert((key.namespace.clone(), deployment.clone(), revision.clone()));
        }
    }
    for revision in &running {
        observed.emptied_by_user.remove(revision);
    }
    observed.ran.extend(running.iter().cloned());

    for (key, service) in &observed.services {
        let Some(selector) = service.spec.as_ref().and_then(|s| s.selector.as_ref()) else { continue };
        let (Some(deployment), Some(revision)) = (selector.get(LABEL_DEPLOYMENT), selector.get(LABEL_REVISION)) else {
            continue;
        };
        let Some(owner) = observed.deployments.get(&ObjectRef::new("SeiNodeDeployment", &key.namespace, deployment))
        else {
            continue;
        };
        // A deployment being deleted takes its nodes and its Service with it: no traffic is owed any more.
        if owner.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let served = (key.namespace.clone(), deployment.clone(), revision.clone());
        if running.contains(&served) || !observed.ran.contains(&served) || observed.emptied_by_user.contains(&served) {
            continue;
        }
        return Err(InvariantViolation::new(
            NO_TRAFFIC_BLACK_HOLE,
            format!("{key} selects revision {revision}, which has no Running node left"),
        ));
    }
    Ok(())
}

/// Invariant 2: zero upgrade panics on the entrants of a HardFork rollout.
pub fn no_upgrade_panic_on_hardfork_entrant(
    world: &WorldState,
    observed: &mut ObservedObjects,
) -> Result<(), InvariantViolation> {
    let new = world.panics.get(observed.panics_checked..).unwrap_or(&[]);
    observed.panics_checked = world.panics.len();
    for panic in new.iter().filter(|p| p.upgrade_panic) {
        let Some(node) = &panic.node else { continue };
        let entrant_of = observed.deployments.iter().find(|(key, d)| {
            key.namespace == panic.namespace
                && d.status
                    .as_ref()
                    .and_then(|s| s.rollout.as_ref())
                    .is_some_and(|r| r.strategy == Strategy::HardFork && r.entrant_nodes.iter().any(|n| n == node))
        });
        if let Some((key, _)) = entrant_of {
            return Err(InvariantViolation::new(
                NO_UPGRADE_PANIC_ON_HARDFORK_ENTRANT,
                format!("entrant {node} of {key} ({}) {}", panic.image, panic.reason),
            ));
        }
    }
    Ok(())
}

/// Invariant 3: `RolloutInProgress` is True exactly while `rollout` is set; phase Upgrading exactly then, unless deleting.
pub fn rollout_condition_matches_rollout(observed: &ObservedObjects) -> Result<(), InvariantViolation> {
    for (key, deployment) in &observed.deployments {
        let Some(status) = &deployment.status else { continue };
        let rolling = status.rollout.is_some();
        let condition = is_condition_true(&status.conditions, "RolloutInProgress");
        if rolling != condition {
            return Err(InvariantViolation::new(
                ROLLOUT_CONDITION_MATCHES_ROLLOUT,
                format!("{key}: rollout set = {rolling}, RolloutInProgress True = {condition}"),
            ));
        }
        let upgrading = status.phase == Some(sei_operator_core::api::DeploymentPhase::Upgrading);
        if deployment.metadata.deletion_timestamp.is_none() && upgrading != rolling {
            return Err(InvariantViolation::new(
                ROLLOUT_CONDITION_MATCHES_ROLLOUT,
                format!("{key}: phase {:?} while rollout set = {rolling}", status.phase),
            ));
        }
    }
    Ok(())
}

/// Invariant 4: `status.currentImage` never names an image no Ready pod of that node has run. The kubelet records
/// an image in `ready_images` only while its pod is Ready by the kubelet's rules (its probes) and seid itself runs
/// it (`kube::pod_status::report_pods`).
pub fn current_image_was_run(world: &WorldState, observed: &mut ObservedObjects) -> Result<(), InvariantViolation> {
    // Ready images are only ever added, so only a node whose status changed can newly break this.
    for key in std::mem::take(&mut observed.changed_nodes) {
        let Some(node) = observed.nodes.get(&key) else { continue };
        let Some(image) = node.status.as_ref().and_then(|s| s.current_image.as_ref()) else { continue };
        if !world.ready_images.contains(&(key.namespace.clone(), key.name.clone(), image.clone())) {
            return Err(InvariantViolation::new(
                CURRENT_IMAGE_WAS_RUN,
                format!("{key} reports currentImage {image}, which no Ready pod of it has run"),
            ));
        }
    }
    Ok(())
}

/// Invariant 5: only the SeiNode controller calls sidecars — of every operator replica (`crate::operator_host::replicas`: the
/// caller tag is `<replica host>:<kind reconciled>`).
pub fn single_writer(world: &WorldState, observed: &mut ObservedObjects) -> Result<(), InvariantViolation> {
    let new = world.sidecar_calls.get(observed.calls_checked..).unwrap_or(&[]);
    observed.calls_checked = world.sidecar_calls.len();
    let wrong = |caller: &str| {
        crate::operator_host::replicas::replica_of_caller(caller).is_some()
            && caller.split_once(':').is_some_and(|(_, role)| Some(role) != SIDECAR_WRITER.split(':').nth(1))
    };
    match new.iter().find(|c| wrong(&c.caller)) {
        Some(call) => Err(InvariantViolation::new(
            SINGLE_WRITER,
            format!("{} called {} {} {}", call.caller, call.method, call.host, call.path),
        )),
        None => Ok(()),
    }
}

/// Invariant 6a: once a deployment is quiet (no rollout, no active plan), its live children are of one revision —
/// within [`LEAKED_ENTRANT_GRACE`], which covers a failed delete of a stray and its retries.
pub fn no_leaked_entrants_once_quiet(
    world: &WorldState,
    observed: &mut ObservedObjects,
) -> Result<(), InvariantViolation> {
    let mut mixed = BTreeMap::new();
    for (key, deployment) in &observed.deployments {
        let (Some(status), Some(uid)) = (&deployment.status, &deployment.metadata.uid) else { continue };
        let active_plan = status.plan.as_ref().is_some_and(|p| p.phase == PlanPhase::Active);
        if status.rollout.is_some() || active_plan || deployment.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let revisions: BTreeSet<String> = observed
            .nodes
            .values()
            .filter(|n| is_controlled_by(&n.metadata, uid) && n.metadata.deletion_timestamp.is_none())
            .filter_map(|n| n.metadata.labels.as_ref()?.get(LABEL_REVISION).cloned())
            .collect();
        if revisions.len() > 1 {
            let since = observed.mixed_since.get(key).copied().unwrap_or(world.now);
            if world.now.saturating_sub(since) > LEAKED_ENTRANT_GRACE {
                return Err(InvariantViolation::new(
                    NO_LEAKED_ENTRANTS,
                    format!(
                        "{key} has been quiet for over {LEAKED_ENTRANT_GRACE:?} but has children of revisions \
                         {revisions:?}"
                    ),
                ));
            }
            mixed.insert(key.clone(), since);
        }
    }
    observed.mixed_since = mixed;
    Ok(())
}

/// Invariant 7, its state part: a rollout older than the stall threshold says so — `RolloutInProgress` with
/// reason `Stalled` — within [`STALL_REPORT_GRACE`].
pub fn stalled_rollouts_are_reported(world: &WorldState, observed: &ObservedObjects) -> Result<(), InvariantViolation> {
    let now = world.timestamp();
    for (key, deployment) in &observed.deployments {
        let Some(status) = &deployment.status else { continue };
        let Some(rollout) = &status.rollout else { continue };
        let Ok(age) = now.duration_since(rollout.started_at.0).try_into() else { continue };
        let age: std::time::Duration = age;
        let since_gate = height_gate::stall_clock_start(observed, key).map(|start| world.now.saturating_sub(start));
        let age = since_gate.map_or(age, |since_gate| age.min(since_gate));
        if age <= world.stall_threshold + STALL_REPORT_GRACE {
            continue;
        }
        let reason = find_condition(&status.conditions, "RolloutInProgress").map(|c| c.reason.as_str());
        if reason != Some("Stalled") {
            return Err(InvariantViolation::new(
                STALLED_ROLLOUT_REPORTED,
                format!("{key}: rollout running for {age:?} but RolloutInProgress reason is {reason:?}"),
            ));
        }
    }
    Ok(())
}

/// docs/design.md §4 (ids are deterministic, so a rebuilt plan's submissions are idempotent) and §6 (mark-ready goes
/// only to a sidecar that needs it): the operator never makes a sidecar process start the same work twice. A task id
/// whose first run it starts twice, or a task type it starts under a second id while the first has not failed,
/// means the operator lost track of work it had submitted — after a crash, a stale read or a Conflict — and
/// started it again. A re-run of a failed task (its id again, run 2 and up: sei-protocol/seictl
/// `sidecar/engine/engine.go`, `Engine.Submit`) or a retry of failed work under a new id is not a duplicate, and
/// neither is a submission to a later sidecar process.
pub fn no_sidecar_work_started_twice(
    world: &WorldState,
    observed: &mut ObservedObjects,
) -> Result<(), InvariantViolation> {
    let new = world.sidecar_submissions.get(observed.submissions_checked..).unwrap_or(&[]);
    observed.submissions_checked = world.sidecar_submissions.len();
    // Only the operator is judged: a test probing a sidecar may submit what it likes.
    for submission in new.iter().filter(|s| s.started && s.caller.starts_with("operator")) {
        let process = world
            .pods
            .get(&submission.pod)
            .and_then(|p| p.sidecar.as_ref())
            .filter(|p| p.incarnation == submission.incarnation);
        let tasks = process.and_then(|_| crate::node::sidecar::process::tasks(world, &submission.pod));
        let key = (submission.pod.clone(), submission.incarnation, submission.task_type.clone());
        let earlier = observed.started.entry(key).or_default();
        // Work still running is never asked again; completed work is, for the config tasks, when the config
        // changed (a config plan writes it again and restarts seid: `no-needless-seid-restart` judges that), but a
        // process is marked ready once.
        let once = submission.task_type == SidecarTaskType::MarkReady.as_str();
        let unfinished = |id: &uuid::Uuid| {
            tasks.and_then(|t| t.get(id)).is_some_and(|t| match t.outcome {
                None => true,
                Some(Ok(())) => once,
                Some(Err(_)) => false,
            })
        };
        let again = earlier.iter().find(|id| if **id == submission.id { submission.run <= 1 } else { unfinished(id) });
        if let Some(first) = again {
            return Err(InvariantViolation::new(
                NO_WORK_STARTED_TWICE,
                format!(
                    "{} (sidecar #{}) started {} as {} after it had started it as {first}",
                    submission.pod, submission.incarnation, submission.task_type, submission.id
                ),
            ));
        }
        if !earlier.contains(&submission.id) {
            earlier.push(submission.id);
        }
    }
    Ok(())
}

/// docs/design.md §4 (the plan id derives from the owner, the target and the strategy): while a rollout is set, the plan
/// beside it keeps one id — a plan rebuilt after a crash, a Conflict or a stale read is the same plan, so its
/// tasks and their sidecar submissions carry on instead of starting over.
pub fn one_plan_per_rollout(observed: &mut ObservedObjects) -> Result<(), InvariantViolation> {
    for (key, deployment) in &observed.deployments {
        let (Some(status), Some(uid)) = (&deployment.status, &deployment.metadata.uid) else { continue };
        let (Some(rollout), Some(plan)) = (&status.rollout, &status.plan) else { continue };
        // The target a plan is for includes a HardFork's halt height: a corrected height is a new rollout.
        let rollout_key = (uid.clone(), rollout.plan_target(), rollout.strategy.to_string());
        let first = observed.rollout_plans.entry(rollout_key).or_insert_with(|| plan.id.clone());
        if *first != plan.id {
            return Err(InvariantViolation::new(
                ONE_PLAN_PER_ROLLOUT,
                format!(
                    "{key}: the {} rollout to {} has plan {}, after plan {first}",
                    rollout.strategy, rollout.target_hash, plan.id
                ),
            ));
        }
    }
    Ok(())
}

/// No needlessly failed rollout (issue #14): a rollout fails only when something could fail it. Judged when a
/// deployment's `failedTargetHash` takes a new value (the rollout to that target failed). The failure is needless
/// when both hold:
/// - its target is a release this world runs: the template with that hash names an image (and a sidecar image)
///   the registry holds, pullable, that neither crashes on start nor always fails a sidecar task;
/// - no fault that fails work by design was injected before it (at any time: a scripted failure can wait for
///   its task): a scripted sidecar task failure, a re-pushed image, a worker crash (its Job pods count as failed,
///   and a bootstrap Job can run out of retries).
///
/// Everything else the simulator injects — crashes of the operator, pods and sidecars, stale reads, dropped
/// events, Conflicts, transient errors, partitions, latency, a user deleting a child — must only delay a
/// rollout. A target whose template was never seen (no stored version of it) is not judged.
pub fn no_needlessly_failed_rollout(
    world: &WorldState,
    observed: &mut ObservedObjects,
) -> Result<(), InvariantViolation> {
    let runs = |image: &str| {
        world.registry.pull(image).is_some_and(|binary| !binary.crash_on_start && binary.fails_task.is_none())
    };
    let mut violation = None;
    for (key, deployment) in &observed.deployments {
        let failed = deployment.status.as_ref().and_then(|s| s.failed_target_hash.clone());
        let before = observed.failed_targets.insert(key.clone(), failed.clone()).flatten();
        let Some(target) = failed.filter(|f| before.as_ref() != Some(f)) else { continue };
        if violation.is_some() || !world.failure_faults.is_empty() {
            continue;
        }
        let Some((image, sidecar)) = observed.template_images.get(&target) else { continue };
        if !runs(image) || sidecar.as_deref().is_some_and(|s| world.registry.pull(s).is_none()) {
            continue;
        }
        let reason = deployment
            .status
            .as_ref()
            .and_then(|s| find_condition(&s.conditions, "RolloutInProgress"))
            .map(|c| format!("{}: {}", c.reason, c.message))
            .unwrap_or_default();
        violation = Some(InvariantViolation::new(
            NO_NEEDLESSLY_FAILED_ROLLOUT,
            format!(
                "{key}: the rollout to {image} (target {target}) failed with no fault that could fail it: {reason}"
            ),
        ));
    }
    observed.failed_targets.retain(|key, _| observed.deployments.contains_key(key));
    violation.map_or(Ok(()), Err)
}

/// docs/design.md §4 (writes are atomic steps), checked at the moment of every write of a SeiNodeDeployment: a plan is
/// never stored Complete beside a rollout that is still set. Completing the last task and finishing the rollout
/// are one write, so no crash or Conflict between them can leave a finished plan that nothing will finish. A
/// check of the state after each step would miss two writes within one step, and another client could still
/// read the version between them.
///
/// The checks of the moment of a write that need what the writing reconcile read follow it: see
/// [`plan_writes_after_supersession`], [`completion_on_ready_nodes`], [`switch_to_caught_up_entrants`]; and a
/// user edit aimed at this write lands right after it ([`crate::harness::aimed::after_write`]).
pub fn on_write(world: &mut WorldState, key: &ObjectRef, verb: &str, stored: &serde_json::Value, writer: Writer<'_>) {
    if let Some(violation) = plan_writes_after_supersession(world, key, verb, stored, writer)
        .or_else(|| completion_on_ready_nodes(world, key, verb, stored, writer))
        .or_else(|| switch_to_caught_up_entrants(world, key, stored))
    {
        world.write_violations.push(violation);
    }
    if key.kind == "SeiNodeDeployment" {
        complete_plan_beside_rollout(world, key, stored);
    }
    if writer.reconcile.is_some() {
        crate::harness::aimed::after_write(world, key, verb, stored);
    }
}

fn complete_plan_beside_rollout(world: &mut WorldState, key: &ObjectRef, stored: &serde_json::Value) {
    let text = |pointer: &str| stored.pointer(pointer).and_then(serde_json::Value::as_str);
    if let (Some("Complete"), Some(target)) = (text("/status/plan/phase"), text("/status/rollout/targetHash")) {
        let version = text("/metadata/resourceVersion").unwrap_or("-");
        let message = format!(
            "{key} was stored (rv={version}) with plan {} Complete beside the rollout to {target}",
            text("/status/plan/id").unwrap_or_default()
        );
        world.write_violations.push(InvariantViolation::new(NO_COMPLETE_PLAN_BESIDE_UNFINISHED_ROLLOUT, message));
    }
}

/// docs/design.md §2 (seid waits for nothing: it runs on whatever its volume holds) and §6 (the init plan prepares the
/// volume before mark-ready): seid never starts on a volume its node's init plan — or its bootstrap — has not
/// prepared: `seid init` run, the node's config applied (`config-apply` completed), and a snapshot restored when
/// the SeiNode's spec asks for an S3 snapshot (with a bootstrap image or without: the bootstrap pod's seid needs
/// it as much). Called by the kubelet at the moment seid's process starts in a pod of a SeiNode; pods of no
/// SeiNode are not judged. A fake kubelet that made seid wait on its own would hide exactly this.
pub fn on_seid_start(world: &mut WorldState, key: &ObjectRef) {
    let Some(pod) = world.pods.get(key) else { return };
    let Some(node) = &pod.node else { return };
    let Some(stored) = world.store.get(&ObjectRef::new("SeiNode", &key.namespace, node), None) else { return };
    let Ok(node) = SeiNode::deserialize(stored) else { return };
    let restore = node.spec.snapshot().is_some_and(|s| s.s3.is_some());
    let volume = pod.volume.as_ref().and_then(|v| world.volumes.get(v)).cloned().unwrap_or_default();
    let missing = volume.unprepared(restore);
    if missing.is_empty() {
        return;
    }
    let claim = pod.volume.as_ref().map_or_else(|| "no volume".to_owned(), |v| format!("claim {}", v.name));
    let message = format!(
        "seid ({}) started in {key} on {claim} (height {}), which lacks {} for SeiNode {}",
        pod.image,
        volume.height,
        missing.join(", "),
        node.metadata.name.as_deref().unwrap_or_default()
    );
    world.write_violations.push(InvariantViolation::new(SEID_RUNS_ON_PREPARED_VOLUME, message));
}

/// docs/design.md §6 and issue #16 (a config change restarts seid only when the config needs it): a `restart-seid` that
/// stops a seid already running the config on its volume, in a container started after that config was
/// written, restarted a node for nothing. Called by the sidecar
/// model when a `restart-seid` run is about to SIGTERM seid in a SeiNode's pod.
pub fn on_seid_restart(world: &mut WorldState, key: &ObjectRef) {
    // Pods of no stored SeiNode (a test's own) are not judged.
    let Some(pod) = world.pods.get(key) else { return };
    let Some(node) = &pod.node else { return };
    if world.store.get(&ObjectRef::new("SeiNode", &key.namespace, node), None).is_none() {
        return;
    }
    let crate::kube::pod::Seid::Running { run, .. } = &pod.seid else { return };
    let volume = pod.volume.as_ref().and_then(|v| world.volumes.get(v));
    let on_volume = volume.and_then(|v| v.config.clone());
    // What the operator can know is when seid's container started (the pod's status), not when the wrapper in it
    // started seid: a container started before the last write, whose seid started after it, is restarted for a
    // reason the operator could not see through.
    let written_at = volume.and_then(|v| v.config_written_at).unwrap_or_default();
    if run.config.as_deref() != on_volume.as_ref() || pod.probe_state.container_started_at <= written_at {
        return;
    }
    let message =
        format!("restart-seid stopped seid in {key}, which already ran the config on its volume: {on_volume:?}");
    world.write_violations.push(InvariantViolation::new(NO_NEEDLESS_SEID_RESTART, message));
}

/// A label of a stored object (`None` when it has none of that name).
fn stored_label(value: &serde_json::Value, name: &str) -> Option<String> {
    value.pointer(&format!("/metadata/labels/{}", name.replace('/', "~1"))).and_then(|v| v.as_str()).map(str::to_owned)
}

/// A user (the harness) deletes an object: a SeiNode's deployment and revision are remembered for invariant 1.
pub fn on_user_delete(world: &mut WorldState, key: &ObjectRef) {
    if key.kind != "SeiNode" {
        return;
    }
    let Some(value) = world.store.get(key, None) else { return };
    let label = |name: &str| stored_label(value, name);
    if let (Some(deployment), Some(revision)) = (label(LABEL_DEPLOYMENT), label(LABEL_REVISION)) {
        world.user_deleted_nodes.push((key.namespace.clone(), deployment, revision));
    }
}

/// Checks that need the moment of a delete: 1b (an incumbent deleted while the Service still selects its
/// revision during a rollout) and 6b (the PVC of a node that is not being deleted).
pub fn on_delete(world: &mut WorldState, key: &ObjectRef) {
    let Some(value) = world.store.get(key, None) else { return };
    let label = |name: &str| stored_label(value, name);
    let violation = match key.kind.as_str() {
        "SeiNode" => {
            let (Some(deployment), Some(revision)) = (label(LABEL_DEPLOYMENT), label(LABEL_REVISION)) else { return };
            let owner = world.store.get(&ObjectRef::new("SeiNodeDeployment", &key.namespace, &deployment), None);
            // A deployment the user deletes takes every node with it, mid-rollout or not: no switch is owed.
            let rolling = owner
                .filter(|o| !crate::apiserver::store::is_deleting(o))
                .and_then(|o| o.pointer("/status/rollout"))
                // An InPlace rollout has no switch: its nodes are the incumbents and the entrants at once, and a
                // scale-down during it removes a node no traffic switch waits for.
                .is_some_and(|r| {
                    !r.is_null() && r.get("strategy").and_then(serde_json::Value::as_str) != Some("InPlace")
                });
            let selected =
                world.store.list("Service", &key.namespace, &Default::default(), None).into_iter().any(|s| {
                    s.pointer("/spec/selector").and_then(|sel| sel.get(LABEL_REVISION)).and_then(|r| r.as_str())
                        == Some(revision.as_str())
                        && s.pointer("/spec/selector")
                            .and_then(|sel| sel.get(LABEL_DEPLOYMENT))
                            .and_then(|d| d.as_str())
                            == Some(deployment.as_str())
                });
            (rolling && selected).then(|| {
                InvariantViolation::new(
                    INCUMBENTS_DELETED_AFTER_SWITCH,
                    format!("{key} deleted during a rollout while the Service still selects revision {revision}"),
                )
            })
        }
        "PersistentVolumeClaim" => {
            let node = label(LABEL_NODE)
                .or_else(|| world.pods.values().find(|p| p.volume.as_ref() == Some(key)).and_then(|p| p.node.clone()));
            let active = node.as_ref().is_some_and(|node| {
                world
                    .store
                    .get(&ObjectRef::new("SeiNode", &key.namespace, node), None)
                    .is_some_and(|n| !crate::apiserver::store::is_deleting(n))
            });
            active.then(|| {
                InvariantViolation::new(
                    NO_ACTIVE_PVC_DELETED,
                    format!("{key} deleted while its node {} is active", node.unwrap_or_default()),
                )
            })
        }
        _ => None,
    };
    if let Some(violation) = violation {
        world.write_violations.push(violation);
    }
}

/// Who made a write: the operator's client within a reconcile (its id and the kind of object reconciled), or
/// the harness / a client outside any reconcile (`reconcile: None`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Writer<'a> {
    pub reconcile: Option<(u64, &'a str)>,
}

impl Writer<'_> {
    /// The id of the SeiNodeDeployment reconcile that writes, if that is who writes.
    fn deployment_reconcile(&self) -> Option<u64> {
        self.reconcile.filter(|(_, kind)| *kind == "SeiNodeDeployment").map(|(id, _)| id)
    }
}

/// What one reconcile of a SeiNodeDeployment read, as far as the write-time checks need it: a write is judged
/// by what its reconcile could see — not by the store at the moment of the write, which may hold a user's edit
/// made since the read, or be ahead of a lagging cache.
#[derive(Clone, Debug, Default)]
pub struct ReconcileReads {
    /// The deployment as the reconcile first read it.
    pub deployment: Option<DeploymentRead>,
    /// Nodes read Running with their sidecar ready and `currentImage` their spec's image: (name, image).
    pub ready_nodes: BTreeSet<(String, String)>,
    /// Each node's spec image as first read.
    pub node_images: BTreeMap<String, String>,
}

/// A deployment's rollout as a reconcile read it.
#[derive(Clone, Debug)]
pub struct DeploymentRead {
    pub key: ObjectRef,
    pub rollout: Option<RolloutRead>,
    /// Its template had moved off the rollout's target (`rollout::is_superseded`): the plan must take no step.
    pub superseded: bool,
}

#[derive(Clone, Debug)]
pub struct RolloutRead {
    pub strategy: Strategy,
    pub target_hash: String,
    pub entrant_revision: Option<String>,
    /// The nodes an InPlace rollout moves.
    pub nodes: Vec<String>,
}

/// The operator's client read one object (`get`) at `at` (`None`: the store as it is) in `reconcile`.
pub fn on_operator_get(world: &mut WorldState, reconcile: Option<(u64, &str)>, key: &ObjectRef, at: Option<u64>) {
    let Some(id) = (Writer { reconcile }).deployment_reconcile() else { return };
    match key.kind.as_str() {
        "SeiNodeDeployment" => {
            if world.reconcile_reads.get(&id).is_some_and(|r| r.deployment.is_some()) {
                return;
            }
            let Some(read) = world.store.get(key, at).and_then(|v| deployment_read(key, v)) else { return };
            world.reconcile_reads.entry(id).or_default().deployment = Some(read);
        }
        "SeiNode" => {
            let Some(value) = world.store.get(key, at) else { return };
            let node = node_read(value);
            note_nodes(world, id, node.into_iter().collect());
        }
        _ => {}
    }
}

/// The operator's client listed objects of `kind` at `at` in `reconcile`.
pub fn on_operator_list(
    world: &mut WorldState,
    reconcile: Option<(u64, &str)>,
    kind: &str,
    namespace: &str,
    selector: &sei_operator_core::cluster::LabelSelector,
    at: Option<u64>,
) {
    let Some(id) = (Writer { reconcile }).deployment_reconcile() else { return };
    if kind != "SeiNode" {
        return;
    }
    let nodes: Vec<NodeRead> =
        world.store.list(kind, namespace, selector, at).into_iter().filter_map(node_read).collect();
    note_nodes(world, id, nodes);
}

/// A reconcile ended (or the operator restarted: ids start again): forget what it read.
pub fn on_reconcile_end(world: &mut WorldState, id: Option<u64>) {
    match id {
        Some(id) => world.reconcile_reads.remove(&id),
        None => {
            world.reconcile_reads.clear();
            None
        }
    };
}

struct NodeRead {
    name: String,
    image: String,
    ready: bool,
}

fn node_read(value: &serde_json::Value) -> Option<NodeRead> {
    let text = |pointer: &str| value.pointer(pointer).and_then(serde_json::Value::as_str);
    let (name, image) = (text("/metadata/name")?, text("/spec/image")?);
    let ready = text("/status/phase") == Some("Running")
        && value.pointer("/status/sidecarReady").and_then(serde_json::Value::as_bool) == Some(true)
        && text("/status/currentImage") == Some(image);
    Some(NodeRead { name: name.to_owned(), image: image.to_owned(), ready })
}

fn note_nodes(world: &mut WorldState, id: u64, nodes: Vec<NodeRead>) {
    let reads = world.reconcile_reads.entry(id).or_default();
    for node in nodes {
        if node.ready {
            reads.ready_nodes.insert((node.name.clone(), node.image.clone()));
        }
        reads.node_images.entry(node.name).or_insert(node.image);
    }
}

fn deployment_read(key: &ObjectRef, value: &serde_json::Value) -> Option<DeploymentRead> {
    let deployment = SeiNodeDeployment::deserialize(value).ok()?;
    let rollout = deployment.status.as_ref().and_then(|s| s.rollout.as_ref());
    let superseded = rollout.is_some_and(|r| sei_operator_core::rollout::is_superseded(r, &deployment));
    let rollout = rollout.map(|r| RolloutRead {
        strategy: r.strategy,
        target_hash: r.target_hash.clone(),
        entrant_revision: r.entrant_revision.clone(),
        nodes: r.nodes.iter().map(|n| n.name.clone()).collect(),
    });
    Some(DeploymentRead { key: key.clone(), rollout, superseded })
}

/// docs/design.md §5.4 (supersession replaces the plan): no plan task writes in a reconcile that read the template moved
/// off the rollout's target — the plan of a superseded rollout takes no further step, not even in the reconcile
/// that supersedes it. A switch-traffic in that reconcile sends traffic to entrants the supersession then
/// deletes (a BlueGreen edit landing as the entrants catch up); a create-entrant-nodes or update-node-specs
/// makes nodes or restarts pods for a target nobody wants any more. A plan task's write is recognised by what
/// nothing else in a deployment reconcile writes: a Service replaced (switch-traffic; the Service is otherwise
/// only created), a SeiNode created with the superseded rollout's entrant revision, a SeiNode whose image moves
/// (rollout fields change only through a plan). Deletions are left out: a scale-down deletes too.
pub fn plan_writes_after_supersession(
    world: &WorldState,
    key: &ObjectRef,
    verb: &str,
    stored: &serde_json::Value,
    writer: Writer<'_>,
) -> Option<InvariantViolation> {
    let reads = world.reconcile_reads.get(&writer.deployment_reconcile()?)?;
    let read = reads.deployment.as_ref().filter(|d| d.superseded && d.key.namespace == key.namespace)?;
    let rollout = read.rollout.as_ref()?;
    let text = |pointer: &str| stored.pointer(pointer).and_then(serde_json::Value::as_str);
    let step = match (key.kind.as_str(), verb) {
        ("Service", "replace") => {
            Some(format!("replaced {key} (selector revision {})", stored_selector_revision(stored).unwrap_or_default()))
        }
        ("SeiNode", "create")
            if rollout.entrant_revision.is_some()
                && stored_label(stored, LABEL_REVISION) == rollout.entrant_revision =>
        {
            Some(format!("created {key}, an entrant of the superseded rollout"))
        }
        ("SeiNode", "replace") => {
            let before = reads.node_images.get(&key.name)?;
            let image = text("/spec/image")?;
            (before != image).then(|| format!("moved {key} from image {before} to {image}"))
        }
        _ => None,
    }?;
    Some(InvariantViolation::new(
        NO_PLAN_STEP_AFTER_SUPERSESSION,
        format!(
            "a reconcile of {} read its template moved off the {} rollout to {} (superseded), and still took a \
             plan step: {step}",
            read.key, rollout.strategy, rollout.target_hash
        ),
    ))
}

/// docs/design.md §4 (InPlace: `mark-nodes-ready` is the last task): an InPlace rollout completes only in a reconcile
/// that read every node it moved Running on the target image with its sidecar ready — seid serving it and the
/// sidecar marked ready, as the node's status says. Judged at the status write that clears the rollout and makes
/// its target the template hash, against what that reconcile read (a node that a lagging read showed ready
/// counts: the operator could not know better). A rollout whose nodes are gone, or were scaled away, is not
/// owed their readiness. BlueGreen and HardFork completions follow a teardown, not a readiness wait.
pub fn completion_on_ready_nodes(
    world: &WorldState,
    key: &ObjectRef,
    verb: &str,
    stored: &serde_json::Value,
    writer: Writer<'_>,
) -> Option<InvariantViolation> {
    if key.kind != "SeiNodeDeployment" || verb != "replace-status" {
        return None;
    }
    let reads = world.reconcile_reads.get(&writer.deployment_reconcile()?)?;
    let read = reads.deployment.as_ref().filter(|d| d.key == *key)?;
    let rollout = read.rollout.as_ref().filter(|r| r.strategy == Strategy::InPlace)?;
    let completes = stored.pointer("/status/rollout").is_none_or(serde_json::Value::is_null)
        && stored.pointer("/status/templateHash").and_then(serde_json::Value::as_str)
            == Some(rollout.target_hash.as_str());
    if !completes {
        return None;
    }
    let active: BTreeSet<&str> = stored
        .pointer("/status/incumbentNodes")
        .and_then(serde_json::Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(serde_json::Value::as_str)
        .collect();
    let unready: Vec<&String> = rollout
        .nodes
        .iter()
        .filter(|name| active.contains(name.as_str()))
        .filter(|name| {
            let node = ObjectRef::new("SeiNode", &key.namespace, name.as_str());
            let Some(image) = world.store.get(&node, None).and_then(|n| n.pointer("/spec/image")?.as_str()) else {
                return false;
            };
            !reads.ready_nodes.contains(&((*name).clone(), image.to_owned()))
        })
        .collect();
    (!unready.is_empty()).then(|| {
        InvariantViolation::new(
            ROLLOUT_COMPLETES_ON_READY_NODES,
            format!(
                "{key}: the InPlace rollout to {} completed in a reconcile that never read {unready:?} Running \
                 on the target image with its sidecar ready",
                rollout.target_hash
            ),
        )
    })
}

fn stored_selector_revision(service: &serde_json::Value) -> Option<&str> {
    service.pointer("/spec/selector").and_then(|s| s.get(LABEL_REVISION)).and_then(serde_json::Value::as_str)
}

/// Invariant 1, at the switch (docs/design.md §4, `await-nodes-caught-up` before `switch-traffic`): a BlueGreen rollout's
/// Service is pointed at its entrants only when every live entrant has been Ready by the kubelet's rules on
/// its image — seid running it, its readiness probe on `/lag_status` passed, so caught up with the chain. A
/// node merely Running (its init plan done) may still be syncing: its pod is no endpoint, and the switch would
/// send traffic nowhere. Judged at any write of the Service that selects the entrant revision while the rollout
/// is set (a harness write too: the check is about where traffic goes).
pub fn switch_to_caught_up_entrants(
    world: &WorldState,
    key: &ObjectRef,
    stored: &serde_json::Value,
) -> Option<InvariantViolation> {
    if key.kind != "Service" {
        return None;
    }
    let revision = stored_selector_revision(stored)?;
    let deployment_name =
        stored.pointer("/spec/selector").and_then(|s| s.get(LABEL_DEPLOYMENT)).and_then(serde_json::Value::as_str)?;
    let deployment = world.store.get(&ObjectRef::new("SeiNodeDeployment", &key.namespace, deployment_name), None)?;
    let rollout = deployment.pointer("/status/rollout").filter(|r| !r.is_null())?;
    let text = |field: &str| rollout.get(field).and_then(serde_json::Value::as_str);
    if text("strategy") != Some("BlueGreen") || text("entrantRevision") != Some(revision) {
        return None;
    }
    let not_caught_up: Vec<String> = world
        .store
        .all_of_kind("SeiNode")
        .filter(|(node, value)| {
            node.namespace == key.namespace
                && !crate::apiserver::store::is_deleting(value)
                && stored_label(value, LABEL_DEPLOYMENT).as_deref() == Some(deployment_name)
                && stored_label(value, LABEL_REVISION).as_deref() == Some(revision)
        })
        .filter(|(node, value)| {
            let image = value.pointer("/spec/image").and_then(serde_json::Value::as_str).unwrap_or_default();
            !world.ready_images.contains(&(node.namespace.clone(), node.name.clone(), image.to_owned()))
        })
        .map(|(node, _)| node.name.clone())
        .collect();
    (!not_caught_up.is_empty()).then(|| {
        InvariantViolation::new(
            SWITCH_ONLY_TO_CAUGHT_UP_ENTRANTS,
            format!(
                "{key} switched to revision {revision}, whose entrants {not_caught_up:?} no pod has served Ready \
                 (caught up) on their image"
            ),
        )
    })
}

/// Liveness's end state (docs/design.md §5.1, §5.6): once the world is at rest, every live child of a deployment runs the
/// image of its active set's template (`status.templateHash`): its spec and `currentImage` (a Failed child its
/// spec). No child is left on a failed target's image — a failed rollout leaves its entrants deleted and the
/// incumbents untouched, and a child made by a scale-up takes the active set's rollout fields, not those of a
/// failed or pending target. A deployment whose active template was never seen, or that is being deleted, is
/// not judged; nor are nodes no deployment controls (a `Retain` delete leaves them as they are).
pub fn fleet_on_active_image_at_rest(observed: &ObservedObjects) -> Result<(), InvariantViolation> {
    for (key, deployment) in &observed.deployments {
        let (Some(status), Some(uid)) = (&deployment.status, &deployment.metadata.uid) else { continue };
        if deployment.metadata.deletion_timestamp.is_some() || status.rollout.is_some() {
            continue;
        }
        let Some((active, _)) = status.template_hash.as_ref().and_then(|h| observed.template_images.get(h)) else {
            continue;
        };
        let failed = status
            .failed_target_hash
            .as_ref()
            .and_then(|h| observed.template_images.get(h))
            .map(|(image, _)| image.as_str())
            .filter(|image| *image != active);
        for (node_key, node) in observed.nodes.iter().filter(|(k, _)| k.namespace == key.namespace) {
            if !is_controlled_by(&node.metadata, uid) || node.metadata.deletion_timestamp.is_some() {
                continue;
            }
            let node_status = node.status.clone().unwrap_or_default();
            let running =
                node_status.current_image.as_deref().filter(|_| node_status.phase == Some(SeiNodePhase::Running));
            let wrong = [Some(node.spec.image.as_str()), running].into_iter().flatten().find(|image| image != active);
            let Some(wrong) = wrong else { continue };
            let why = if Some(wrong) == failed {
                format!("the image of the failed target {}", status.failed_target_hash.as_deref().unwrap_or_default())
            } else {
                "not the active set's".to_owned()
            };
            return Err(InvariantViolation::new(
                FLEET_ON_ACTIVE_IMAGE_AT_REST,
                format!(
                    "{key} is at rest on {active} (templateHash {}), but its child {node_key} is on {wrong}: {why}",
                    status.template_hash.as_deref().unwrap_or_default()
                ),
            ));
        }
    }
    Ok(())
}
