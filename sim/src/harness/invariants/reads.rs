//! What the operator's client wrote and read: write-time checks judge a write by what its reconcile could see.

use super::*;
use crate::apiserver::decoded::DecodedObjects;
use crate::apiserver::json::Fields;

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
        world.ledger.write_violations.push(violation);
    }
    if key.kind == "SeiNodeDeployment" {
        complete_plan_beside_rollout(world, key, stored);
    }
    if writer.reconcile.is_some() {
        crate::harness::aimed::after_write(world, key, verb, stored);
    }
}

/// The operator's client read one object (`get`) at `at` (`None`: the store as it is) in `reconcile`.
pub fn on_operator_get(world: &mut WorldState, reconcile: Option<(u64, &str)>, key: &ObjectRef, at: Option<u64>) {
    let Some(id) = (Writer { reconcile }).deployment_reconcile() else { return };
    match key.kind.as_str() {
        "SeiNodeDeployment" => {
            if world.ledger.reconcile_reads.get(&id).is_some_and(|r| r.deployment.is_some()) {
                return;
            }
            let Some(read) =
                world.api.store.get(key, at).and_then(|v| deployment_read(world.api.store.decoded(), key, v))
            else {
                return;
            };
            world.ledger.reconcile_reads.entry(id).or_default().deployment = Some(read);
        }
        "SeiNode" => {
            let Some(value) = world.api.store.get(key, at) else { return };
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
        world.api.store.list(kind, namespace, selector, at).into_iter().filter_map(node_read).collect();
    note_nodes(world, id, nodes);
}

/// A reconcile ended (or the operator restarted: ids start again): forget what it read.
pub fn on_reconcile_end(world: &mut WorldState, id: Option<u64>) {
    match id {
        Some(id) => world.ledger.reconcile_reads.remove(&id),
        None => {
            world.ledger.reconcile_reads.clear();
            None
        }
    };
}

pub(super) struct NodeRead {
    name: String,
    image: String,
    sidecar_image: String,
    ready: bool,
}

pub(super) fn node_read(value: &serde_json::Value) -> Option<NodeRead> {
    use serde_json::Value;
    let (spec, status) = (value.get("spec"), value.get("status"));
    let name = value.metadata_field("name").and_then(Value::as_str)?;
    let image = spec.and_then(|spec| spec.get("image")).and_then(Value::as_str)?;
    let status_field = |name: &str| status.and_then(|status| status.get(name));
    // The sidecar's image is a rollout field: its pod runs the spec's sidecar too.
    let sidecar = spec_sidecar_image(value);
    let ready = status_field("phase").and_then(Value::as_str) == Some("Running")
        && status_field("sidecarReady").and_then(Value::as_bool) == Some(true)
        && status_field("currentImage").and_then(Value::as_str) == Some(image)
        && status_field("currentSidecarImage").and_then(Value::as_str) == Some(sidecar);
    Some(NodeRead { name: name.to_owned(), image: image.to_owned(), sidecar_image: sidecar.to_owned(), ready })
}

/// The sidecar image a stored SeiNode's pod is built with: its spec's, or the operator's default.
pub(super) fn spec_sidecar_image(node: &serde_json::Value) -> &str {
    node.get("spec")
        .and_then(|spec| spec.get("sidecar"))
        .and_then(|sidecar| sidecar.get("image"))
        .and_then(serde_json::Value::as_str)
        .unwrap_or(sei_operator_core::objects::workload::DEFAULT_SIDECAR_IMAGE)
}

pub(super) fn note_nodes(world: &mut WorldState, id: u64, nodes: Vec<NodeRead>) {
    let reads = world.ledger.reconcile_reads.entry(id).or_default();
    for node in nodes {
        if node.ready {
            reads.ready_nodes.insert((node.name.clone(), node.image.clone(), node.sidecar_image.clone()));
        }
        reads.node_images.entry(node.name).or_insert(node.image);
    }
}

/// What a reconcile read of a deployment, decoded through the world's cache: the read itself decodes the same
/// version right after.
pub(super) fn deployment_read(
    decoded: &DecodedObjects,
    key: &ObjectRef,
    value: &serde_json::Value,
) -> Option<DeploymentRead> {
    let deployment = decoded.decode::<SeiNodeDeployment>(key, value).ok()?;
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
