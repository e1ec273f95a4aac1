//! Deletes: no leaked entrants once quiet, no volume of an active node deleted, and the user's deletes told
//! apart from the operator's.

use super::*;
use crate::apiserver::json::Fields;

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

/// A label of a stored object (`None` when it has none of that name).
pub(super) fn stored_label(value: &serde_json::Value, name: &str) -> Option<String> {
    value.at(&format!("/metadata/labels/{}", name.replace('/', "~1"))).and_then(|v| v.as_str()).map(str::to_owned)
}

/// A user (the harness) deletes an object: a SeiNode's deployment and revision are remembered for invariant 1.
pub fn on_user_delete(world: &mut WorldState, key: &ObjectRef) {
    if key.kind != "SeiNode" {
        return;
    }
    let Some(value) = world.api.store.get(key, None) else { return };
    let label = |name: &str| stored_label(value, name);
    if let (Some(deployment), Some(revision)) = (label(LABEL_DEPLOYMENT), label(LABEL_REVISION)) {
        world.ledger.user_deleted_nodes.push((key.namespace.clone(), deployment, revision));
    }
}

/// Checks that need the moment of a delete: 1b (an incumbent deleted while the Service still selects its
/// revision during a rollout) and 6b (the PVC of a node that is not being deleted).
pub fn on_delete(world: &mut WorldState, key: &ObjectRef) {
    let Some(value) = world.api.store.get(key, None) else { return };
    let label = |name: &str| stored_label(value, name);
    let violation = match key.kind.as_str() {
        "SeiNode" => {
            let (Some(deployment), Some(revision)) = (label(LABEL_DEPLOYMENT), label(LABEL_REVISION)) else { return };
            let owner = world.api.store.get(&ObjectRef::new("SeiNodeDeployment", &key.namespace, &deployment), None);
            // A deployment the user deletes takes every node with it, mid-rollout or not: no switch is owed.
            let rolling = owner
                .filter(|o| !crate::apiserver::store::is_deleting(o))
                .and_then(|o| o.at("/status/rollout"))
                // An InPlace rollout has no switch: its nodes are the incumbents and the entrants at once, and a
                // scale-down during it removes a node no traffic switch waits for.
                .is_some_and(|r| {
                    !r.is_null() && r.get("strategy").and_then(serde_json::Value::as_str) != Some("InPlace")
                });
            let selected =
                world.api.store.list("Service", &key.namespace, &Default::default(), None).into_iter().any(|s| {
                    s.at("/spec/selector").and_then(|sel| sel.get(LABEL_REVISION)).and_then(|r| r.as_str())
                        == Some(revision.as_str())
                        && s.at("/spec/selector").and_then(|sel| sel.get(LABEL_DEPLOYMENT)).and_then(|d| d.as_str())
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
            let node = label(LABEL_NODE).or_else(|| {
                world.plane.pods.values().find(|p| p.volume.as_ref() == Some(key)).and_then(|p| p.node.clone())
            });
            let active = node.as_ref().is_some_and(|node| {
                world
                    .api
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
        world.ledger.write_violations.push(violation);
    }
}
