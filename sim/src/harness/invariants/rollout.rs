//! Rollouts: the status tells the truth about the rollout (conditions, stalls, failures), one plan per rollout,
//! no plan step after supersession, completion only on Ready nodes, and the fleet on the active image at rest.

use super::*;
use crate::apiserver::json::Fields;

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
        world.chains.registry.pull(image).is_some_and(|binary| !binary.crash_on_start && binary.fails_task.is_none())
    };
    let mut violation = None;
    for (key, deployment) in &observed.deployments {
        let failed = deployment.status.as_ref().and_then(|s| s.failed_target_hash.clone());
        let before = observed.failed_targets.insert(key.clone(), failed.clone()).flatten();
        let Some(target) = failed.filter(|f| before.as_ref() != Some(f)) else { continue };
        if violation.is_some() || !world.ledger.failure_faults.is_empty() {
            continue;
        }
        let Some((image, sidecar)) = observed.template_images.get(&target) else { continue };
        if !runs(image) || sidecar.as_deref().is_some_and(|s| world.chains.registry.pull(s).is_none()) {
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

pub(super) fn complete_plan_beside_rollout(world: &mut WorldState, key: &ObjectRef, stored: &serde_json::Value) {
    let text = |pointer: &str| stored.at(pointer).and_then(serde_json::Value::as_str);
    if let (Some("Complete"), Some(target)) = (text("/status/plan/phase"), text("/status/rollout/targetHash")) {
        let version = text("/metadata/resourceVersion").unwrap_or("-");
        let message = format!(
            "{key} was stored (rv={version}) with plan {} Complete beside the rollout to {target}",
            text("/status/plan/id").unwrap_or_default()
        );
        world
            .ledger
            .write_violations
            .push(InvariantViolation::new(NO_COMPLETE_PLAN_BESIDE_UNFINISHED_ROLLOUT, message));
    }
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
    let reads = world.ledger.reconcile_reads.get(&writer.deployment_reconcile()?)?;
    let read = reads.deployment.as_ref().filter(|d| d.superseded && d.key.namespace == key.namespace)?;
    let rollout = read.rollout.as_ref()?;
    let text = |pointer: &str| stored.at(pointer).and_then(serde_json::Value::as_str);
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
/// that read every node it moved Running on the target image with its sidecar ready — seid serving it, its pod on
/// the spec's sidecar image (a rollout field) and the sidecar marked ready, as the node's status says. Judged at
/// the status write that clears the rollout and makes its target the template hash, against what that reconcile
/// read (a node that a lagging read showed ready counts: the operator could not know better). A rollout whose
/// nodes are gone, or were scaled away, is not owed their readiness. BlueGreen and HardFork completions follow a teardown, not a readiness wait.
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
    let reads = world.ledger.reconcile_reads.get(&writer.deployment_reconcile()?)?;
    let read = reads.deployment.as_ref().filter(|d| d.key == *key)?;
    let rollout = read.rollout.as_ref().filter(|r| r.strategy == Strategy::InPlace)?;
    let completes = stored.at("/status/rollout").is_none_or(serde_json::Value::is_null)
        && stored.at("/status/templateHash").and_then(serde_json::Value::as_str) == Some(rollout.target_hash.as_str());
    if !completes {
        return None;
    }
    let active: BTreeSet<&str> = stored
        .at("/status/incumbentNodes")
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
            let Some(stored) = world.api.store.get(&node, None) else { return false };
            let Some(image) = stored.at("/spec/image").and_then(serde_json::Value::as_str) else { return false };
            let sidecar = super::reads::spec_sidecar_image(stored);
            !reads.ready_nodes.contains(&((*name).clone(), image.to_owned(), sidecar.to_owned()))
        })
        .collect();
    (!unready.is_empty()).then(|| {
        InvariantViolation::new(
            ROLLOUT_COMPLETES_ON_READY_NODES,
            format!(
                "{key}: the InPlace rollout to {} completed in a reconcile that never read {unready:?} Running \
                 on the target image and sidecar image with its sidecar ready",
                rollout.target_hash
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
