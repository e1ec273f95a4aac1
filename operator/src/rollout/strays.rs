//! Which owned nodes no longer belong: neither in the active set nor in the current rollout. A superseded
//! BlueGreen / HardFork rollout's entrants, a failed rollout's entrants and the ordinals above `replicas` all end
//! up here, and the deployment controller deletes them — level-triggered, so a crash in between loses nothing.

use std::collections::BTreeSet;

use crate::api::{SeiNode, SeiNodeDeploymentStatus};
use crate::meta::LABEL_REVISION;

/// Names of the owned nodes to delete, sorted. Never a node of the revision the Service selects when nothing
/// else of that revision is kept: deleting it would leave the Service with no node to send traffic to.
pub fn stray_nodes(status: &SeiNodeDeploymentStatus, owned: &[SeiNode], service_revision: Option<&str>) -> Vec<String> {
    let mut keep: BTreeSet<&str> = status.incumbent_nodes.iter().map(String::as_str).collect();
    if let Some(rollout) = &status.rollout {
        keep.extend(rollout.nodes.iter().map(|n| n.name.as_str()));
        keep.extend(rollout.incumbent_nodes.iter().map(String::as_str));
        keep.extend(rollout.entrant_nodes.iter().map(String::as_str));
    }
    let revision_of = |node: &SeiNode| node.metadata.labels.as_ref().and_then(|l| l.get(LABEL_REVISION)).cloned();
    let kept_serving = owned.iter().any(|n| {
        n.metadata.name.as_deref().is_some_and(|name| keep.contains(name))
            && service_revision.is_some()
            && revision_of(n).as_deref() == service_revision
    });
    let mut strays: Vec<String> = owned
        .iter()
        .filter(|n| n.metadata.deletion_timestamp.is_none())
        .filter(|n| n.metadata.name.as_deref().is_some_and(|name| !keep.contains(name)))
        .filter(|n| kept_serving || service_revision.is_none() || revision_of(n).as_deref() != service_revision)
        .filter_map(|n| n.metadata.name.clone())
        .collect();
    strays.sort();
    strays
}
