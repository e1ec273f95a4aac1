//! The height gate's invariant (`updateStrategy.inPlace.upgradeHeight`), judged with the simulator's ground truth
//! — each node's real height, each seid exit — not with what the operator read:
//!
//! - the operator never writes a gated rollout's target image onto a node whose seid is below H-1;
//! - no node of a gated rollout panics on the target binary below H ("binary updated before trigger");
//! - a node whose old binary stopped at H runs the target (when the target is another binary) within
//!   [`GATE_ROLL_BOUND`] of that panic, counted from
//!   the end of any fault that could slow it (a partition, a crashed worker, an operator that is down). A stop
//!   counts for the SeiNode its pod ran for: a node deleted and made again under the same name is judged by its
//!   own pods' stops, not by its predecessor's, whether they came before the delete or after it.

use std::collections::BTreeMap;
use std::time::Duration;

use sei_operator_core::api::{RolloutStatus, SeiNode, SeiNodeDeployment};
use sei_operator_core::cluster::ObjectRef;
use sei_operator_core::objects::meta::LABEL_DEPLOYMENT;
use sei_operator_core::objects::names;

use super::{InvariantViolation, ObservedObjects};
use crate::harness::state::WorldState;
use crate::kube::kubelet::{PodRuntime, Seid};
use crate::node::seid::SeidExit;

pub const HEIGHT_GATE_HOLDS: &str = "height-gate-holds";

/// One observe-and-roll cycle: the node controller's observation interval (it reads the panic from the pod),
/// the deployment's write, the node's StatefulSet update, and one pod replacement — the old pod's stop, the new
/// pod's start, its sidecar marked ready and seid started by its wrapper — with the simulator's timings.
pub const GATE_ROLL_BOUND: Duration = Duration::from_secs(120);

/// What the check remembers between steps.
#[derive(Default)]
pub struct GateWatch {
    panics_checked: usize,
    /// Image of each SeiNode as last seen.
    images: BTreeMap<ObjectRef, String>,
    /// Nodes whose binary stopped with the upgrade panic: since when, the upgrade's height, the uid of the
    /// SeiNode it stopped for (a node deleted and made again under the name is another node), and the image that
    /// stopped.
    stopped_at_gate: BTreeMap<ObjectRef, (Duration, u64, Option<String>, String)>,
    /// Per deployment with a gated rollout: the last time one of its rollout's nodes was truly below the block
    /// before the gate.
    below_gate_at: BTreeMap<ObjectRef, Duration>,
}

/// How long after its last node truly reached the gate the operator may take to see it: the node controller
/// writes a new height at least once a minute (`HEIGHT_WRITE_INTERVAL`), and the deployment reconciles on it.
pub const GATE_NEWS_GRACE: Duration = Duration::from_secs(90);

/// From when deployment `key`'s rollout may be judged stalled: for a gated rollout, not before its last node
/// truly reached the block before the gate (and the operator had [`GATE_NEWS_GRACE`] to see it) — waiting for
/// the chain is what the spec asks.
pub fn stall_clock_start(observed: &ObservedObjects, key: &ObjectRef) -> Option<Duration> {
    observed.gate.below_gate_at.get(key).map(|at| *at + GATE_NEWS_GRACE)
}

/// The gate `node` is under, and the image it stages: its deployment's gated rollout when `node` is one of its
/// nodes, else the gate its deployment's spec names (so an operator that ignored the gate is judged too).
fn gate_of<'a>(observed: &'a ObservedObjects, node: &SeiNode) -> Option<(u64, &'a str)> {
    let namespace = node.metadata.namespace.as_deref()?;
    let deployment = node.metadata.labels.as_ref()?.get(LABEL_DEPLOYMENT)?;
    let deployment: &SeiNodeDeployment =
        observed.deployments.get(&ObjectRef::new("SeiNodeDeployment", namespace, deployment))?;
    let name = node.metadata.name.as_deref()?;
    let rollout = deployment
        .status
        .as_ref()
        .and_then(|s| s.rollout.as_ref())
        .filter(|r: &&RolloutStatus| r.upgrade_height.is_some() && r.nodes.iter().any(|n| n.name == name));
    let (height, target) = match rollout {
        Some(rollout) => {
            let target = observed.template_images.get(&rollout.target_hash).map(|(image, _)| image.as_str())?;
            (rollout.upgrade_height?, target)
        }
        None => (deployment.spec.update_strategy.upgrade_height()?, deployment.spec.template.spec.image.as_str()),
    };
    Some((u64::try_from(height).ok()?, target))
}

/// The pod of SeiNode `key`, as the kubelet runs it.
fn pod_of<'a>(world: &'a WorldState, key: &ObjectRef) -> Option<&'a PodRuntime> {
    world.plane.pods.get(&ObjectRef::new("Pod", &key.namespace, names::node_pod(&key.name)))
}

/// The gated rollout `node` is one of the nodes of, and its target image (the status's record only).
fn gated_rollout<'a>(observed: &'a ObservedObjects, node: &SeiNode) -> Option<(&'a RolloutStatus, &'a str)> {
    let namespace = node.metadata.namespace.as_deref()?;
    let deployment = node.metadata.labels.as_ref()?.get(LABEL_DEPLOYMENT)?;
    let deployment = observed.deployments.get(&ObjectRef::new("SeiNodeDeployment", namespace, deployment))?;
    let rollout = deployment.status.as_ref()?.rollout.as_ref().filter(|r| r.upgrade_height.is_some())?;
    let name = node.metadata.name.as_deref()?;
    rollout.nodes.iter().any(|n| n.name == name).then_some(())?;
    let target = observed.template_images.get(&rollout.target_hash).map(|(image, _)| image.as_str())?;
    Some((rollout, target))
}

/// The node's real height: its seid's, when it runs, else what its volume holds.
fn true_height(world: &WorldState, key: &ObjectRef) -> Option<u64> {
    running_height(world, key)
        .or_else(|| world.plane.volumes.get(pod_of(world, key)?.volume.as_ref()?).map(|v| v.height))
}

/// The height of the node's seid, while it runs.
fn running_height(world: &WorldState, key: &ObjectRef) -> Option<u64> {
    let pod = pod_of(world, key)?;
    let Seid::Running { run, .. } = &pod.seid else { return None };
    Some(run.height_at(world.chain_for(pod.chain_id.as_deref())?, world.now))
}

/// Whether the node's pod runs `image` with seid started.
fn runs(world: &WorldState, key: &ObjectRef, image: &str) -> bool {
    pod_of(world, key).is_some_and(|pod| pod.image == image && matches!(pod.seid, Seid::Running { .. }))
}

pub fn height_gate_holds(world: &WorldState, observed: &mut ObservedObjects) -> Result<(), InvariantViolation> {
    let any_gate = observed.deployments.values().any(|d| {
        d.spec.update_strategy.upgrade_height().is_some()
            || d.status.as_ref().and_then(|s| s.rollout.as_ref()).is_some_and(|r| r.upgrade_height.is_some())
    });
    let mut watch = std::mem::take(&mut observed.gate);
    let result =
        if any_gate || !watch.stopped_at_gate.is_empty() { judge(world, observed, &mut watch) } else { Ok(()) };
    if !any_gate {
        // Nothing to judge: the next gate judges only what happens under it (its first step learns the images).
        watch.images.clear();
        watch.panics_checked = world.ledger.panics.len();
    }
    observed.gate = watch;
    result
}

fn judge(world: &WorldState, observed: &ObservedObjects, watch: &mut GateWatch) -> Result<(), InvariantViolation> {
    // Which gated rollouts have a node truly below the gate.
    for (key, deployment) in &observed.deployments {
        let Some(rollout) = deployment.status.as_ref().and_then(|s| s.rollout.as_ref()) else { continue };
        let Some(gate) = rollout.upgrade_height.and_then(|h| u64::try_from(h).ok()) else { continue };
        // Only a running seid waits for its chain.
        let below = rollout.nodes.iter().any(|n| {
            let node = ObjectRef::new("SeiNode", &key.namespace, &n.name);
            running_height(world, &node).is_some_and(|h| h + 1 < gate)
        });
        if below {
            watch.below_gate_at.insert(key.clone(), world.now);
        }
    }
    // Writes of the target image.
    for (key, node) in &observed.nodes {
        // A node first seen (made with the image, or when a gate first appears) is not judged: no write seen.
        let before = watch.images.insert(key.clone(), node.spec.image.clone());
        if before.is_none_or(|before| before == node.spec.image) {
            continue;
        }
        let Some((gate, target)) = gate_of(observed, node) else { continue };
        if node.spec.image != target {
            continue;
        }
        if let Some(height) = true_height(world, key).filter(|h| h + 1 < gate) {
            return Err(InvariantViolation::new(
                HEIGHT_GATE_HOLDS,
                format!("{key} was given {target} at height {height}, below the block before its gate {gate}"),
            ));
        }
    }
    // Exits.
    let new = world.ledger.panics.get(watch.panics_checked..).unwrap_or(&[]);
    watch.panics_checked = world.ledger.panics.len();
    for panic in new {
        let Some(name) = &panic.node else { continue };
        let key = ObjectRef::new("SeiNode", &panic.namespace, name);
        let Some(node) = observed.nodes.get(&key) else { continue };
        let Some((_, target)) = gate_of(observed, node) else { continue };
        match panic.exit {
            SeidExit::UpdatedBeforeTrigger { .. } if panic.image == target => {
                return Err(InvariantViolation::new(
                    HEIGHT_GATE_HOLDS,
                    format!("{key} ran {target} below its upgrade height: {}", panic.reason),
                ));
            }
            // The stop of a predecessor's pod, running out its grace after a user deleted the node and its
            // deployment made it again under the same name: the node it judges is another one.
            SeidExit::UpgradeNeeded { .. } if panic.node_uid != node.metadata.uid => {}
            SeidExit::UpgradeNeeded { upgrade_height } => {
                let stop = (panic.at, upgrade_height, panic.node_uid.clone(), panic.image.clone());
                watch.stopped_at_gate.entry(key).or_insert(stop);
            }
            _ => {}
        }
    }
    // Nodes stopped at the gate on a binary other than the staged one: judged only under a gated rollout whose
    // gate is that upgrade (a gate mistyped elsewhere holds them, as it must), from when that rollout started (a
    // user who stages the image after the chain reached the upgrade left the old binary there until then) and
    // from the end of any fault.
    let quiet_from = world.ledger.faults_act_until;
    let mut late = None;
    watch.stopped_at_gate.retain(|key, (since, upgrade, uid, stopped_image)| {
        let Some(node) = observed.nodes.get(key).filter(|node| node.metadata.uid == *uid) else { return false };
        let Some((rollout, target)) = gated_rollout(observed, node) else { return true };
        if runs(world, key, target) {
            return false;
        }
        // A rollout that stages the very binary that stopped (a user reverted to it after the chain reached the
        // upgrade) has nothing to switch the node to: the user's choice holds it, as a mistyped gate does.
        if stopped_image == target {
            return true;
        }
        if rollout.upgrade_height.and_then(|h| u64::try_from(h).ok()) != Some(*upgrade) {
            return true;
        }
        let staged_at = rollout.started_at.0.duration_since(world.epoch);
        let staged_at = Duration::try_from(staged_at).unwrap_or_default();
        if let Some(quiet) = quiet_from {
            let from = (*since).max(quiet).max(staged_at);
            if world.now > from + GATE_ROLL_BOUND && late.is_none() {
                late = Some(format!(
                    "{key} stopped at its upgrade height {upgrade} at {since:?} and does not run the staged {target} \
                     {:?} after it could have",
                    world.now - from
                ));
            }
        }
        true
    });
    match late {
        Some(message) => Err(InvariantViolation::new(HEIGHT_GATE_HOLDS, message)),
        None => Ok(()),
    }
}
