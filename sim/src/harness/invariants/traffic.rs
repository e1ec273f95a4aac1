//! Traffic: the Service never sends traffic to a revision with nothing left to serve it (invariant 1), and a
//! switch moves traffic only to entrants that have caught up.

use super::*;
use crate::apiserver::json::Fields;

/// Invariant 1: the deployment's Service never selects, for longer than a step, a revision that has had a Running
/// node and has none left — whatever the strategy (the spec's may have changed since the rollout that moved the
/// Service began, so it is not looked at). Judged on the state after each step (what happens between two writes
/// of one step is not), with the revisions that ever ran remembered from every step, not only from those in which
/// the Service selected them: a switch and the deletion of the nodes it switched to can fall in one step. A revision that never ran is not judged (the Service of a
/// deployment whose nodes are still starting). Nor is a revision a user emptied by deleting its nodes: that hole
/// is the user's, until a node of it runs again.
pub fn no_traffic_black_hole(world: &WorldState, observed: &mut ObservedObjects) -> Result<(), InvariantViolation> {
    for deleted in world.ledger.user_deleted_nodes.get(observed.user_deletes_checked..).unwrap_or(&[]) {
        observed.emptied_by_user.insert(deleted.clone());
    }
    observed.user_deletes_checked = world.ledger.user_deleted_nodes.len();
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

pub(super) fn stored_selector_revision(service: &serde_json::Value) -> Option<&str> {
    service.at("/spec/selector").and_then(|s| s.get(LABEL_REVISION)).and_then(serde_json::Value::as_str)
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
        stored.at("/spec/selector").and_then(|s| s.get(LABEL_DEPLOYMENT)).and_then(serde_json::Value::as_str)?;
    let deployment =
        world.api.store.get(&ObjectRef::new("SeiNodeDeployment", &key.namespace, deployment_name), None)?;
    let rollout = deployment.at("/status/rollout").filter(|r| !r.is_null())?;
    let text = |field: &str| rollout.get(field).and_then(serde_json::Value::as_str);
    if text("strategy") != Some("BlueGreen") || text("entrantRevision") != Some(revision) {
        return None;
    }
    let not_caught_up: Vec<String> = world
        .api
        .store
        .all_of_kind("SeiNode")
        .filter(|(node, value)| {
            node.namespace == key.namespace
                && !crate::apiserver::store::is_deleting(value)
                && stored_label(value, LABEL_DEPLOYMENT).as_deref() == Some(deployment_name)
                && stored_label(value, LABEL_REVISION).as_deref() == Some(revision)
        })
        .filter(|(node, value)| {
            let image = value.at("/spec/image").and_then(serde_json::Value::as_str).unwrap_or_default();
            !world.ledger.ready_images.contains(&(node.namespace.clone(), node.name.clone(), image.to_owned()))
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
