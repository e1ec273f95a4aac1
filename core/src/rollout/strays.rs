//! Which owned nodes no longer belong: neither in the active set nor in the current rollout. A superseded
//! BlueGreen / HardFork rollout's entrants, a failed rollout's entrants and the ordinals above `replicas` all end
//! up here, and the deployment controller deletes them — level-triggered, so a crash in between loses nothing.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::api::{SeiNode, SeiNodeDeploymentStatus, SeiNodePhase, Strategy};
use crate::objects::meta::LABEL_REVISION;

/// Names of the owned nodes to delete, sorted. Never a node the Service selects during a BlueGreen / HardFork
/// rollout. Never a Running node of the revision the Service selects while
/// no kept node of that revision serves: deleting it would leave the Service with no endpoint — a scale-down
/// that keeps only nodes still starting waits for one of them to serve before the serving ones go. Running, not
/// only serving: a node whose pod is not Ready yet (adopted seconds after it started, say) is the endpoint the
/// Service is about to have, and the one it would otherwise wait for the whole start of a new node to get.
pub fn stray_nodes(
    status: &SeiNodeDeploymentStatus,
    owned: &[Arc<SeiNode>],
    service_revision: Option<&str>,
) -> Vec<String> {
    let mut keep: BTreeSet<&str> = status.incumbent_nodes.iter().map(String::as_str).collect();
    if let Some(rollout) = &status.rollout {
        keep.extend(rollout.nodes.iter().map(|n| n.name.as_str()));
        keep.extend(rollout.incumbent_nodes.iter().map(String::as_str));
        keep.extend(rollout.entrant_nodes.iter().map(String::as_str));
    }
    let kept = |node: &SeiNode| node.metadata.name.as_deref().is_some_and(|name| keep.contains(name));
    let selected = |node: &SeiNode| {
        service_revision.is_some()
            && node.metadata.labels.as_ref().and_then(|l| l.get(LABEL_REVISION)).map(String::as_str) == service_revision
    };
    let kept_serving = owned.iter().any(|n| kept(n) && selected(n) && serving(n));
    // A BlueGreen / HardFork rollout deletes the nodes the Service selects only after it has moved the Service
    // (docs/design.md §5, invariant 1b): a scale-down during one waits for the switch (or the rollout's end) to remove
    // the surplus nodes of the selected revision.
    let switch_pending = status.rollout.as_ref().is_some_and(|r| r.strategy != Strategy::InPlace);
    let mut strays: Vec<String> = owned
        .iter()
        .filter(|n| n.metadata.deletion_timestamp.is_none() && !kept(n))
        .filter(|n| kept_serving || !selected(n) || !running(n))
        .filter(|n| !(switch_pending && selected(n)))
        .filter_map(|n| n.metadata.name.clone())
        .collect();
    strays.sort();
    strays
}

fn running(node: &SeiNode) -> bool {
    node.status.as_ref().and_then(|s| s.phase) == Some(SeiNodePhase::Running)
}

/// Running, and a ready pod has run its image: an endpoint of a Service that selects it.
fn serving(node: &SeiNode) -> bool {
    let status = node.status.as_ref();
    running(node) && status.and_then(|s| s.current_image.as_deref()) == Some(node.spec.image.as_str())
}
