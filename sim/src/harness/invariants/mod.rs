//! The invariants of docs/design.md §7, each a named check over the world, run after every simulated step that changed
//! something. Typed views of the operator's objects are kept up to date from the store's change log, so a check
//! costs what changed, not the size of the cluster.
//!
//! Liveness (7) is a property of a run, not of a state: see [`crate::harness::world::World::run_until_settled`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Service;
use sei_operator_core::api::{PlanPhase, SeiNode, SeiNodeDeployment, SeiNodePhase, Strategy};
use sei_operator_core::cluster::ObjectRef;
use sei_operator_core::objects::meta::{
    LABEL_DEPLOYMENT, LABEL_NODE, LABEL_REVISION, find_condition, is_condition_true, is_controlled_by,
};
use sei_operator_core::sidecar::wire::SidecarTaskType;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::apiserver::json::Fields;
use crate::harness::ledger::{DeploymentRead, InvariantViolation, RolloutRead, Writer};
use crate::harness::state::{Observer, WorldState};

mod deletes;
mod height_gate;
mod reads;
mod rollout;
mod seid;
mod sidecar;
mod traffic;

pub use deletes::*;
pub use height_gate::{GATE_ROLL_BOUND, HEIGHT_GATE_HOLDS};
pub use reads::*;
pub use rollout::*;
pub use seid::*;
pub use sidecar::*;
pub use traffic::*;

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
    pub(super) cursor: usize,
    /// The world's decoded objects (shared, not copies): a node's version the store's commit decoded is decoded
    /// once.
    pub nodes: BTreeMap<ObjectRef, Arc<SeiNode>>,
    pub deployments: BTreeMap<ObjectRef, Arc<SeiNodeDeployment>>,
    pub services: BTreeMap<ObjectRef, Arc<Service>>,
    /// (namespace, deployment, revision) of every revision that has had a Running node, at any step.
    pub(super) ran: BTreeSet<(String, String, String)>,
    /// Revisions a user left with no Running node by deleting nodes, until one of theirs runs again.
    pub(super) emptied_by_user: BTreeSet<(String, String, String)>,
    pub(super) user_deletes_checked: usize,
    /// SeiNodes changed since the last check of [`current_image_was_run`].
    pub(super) changed_nodes: BTreeSet<ObjectRef>,
    pub(super) calls_checked: usize,
    pub(super) panics_checked: usize,
    pub(super) write_violations_checked: usize,
    pub(super) submissions_checked: usize,
    /// Task ids each sidecar process (pod, incarnation) started, by task type.
    pub(super) started: BTreeMap<(ObjectRef, u64, String), Vec<uuid::Uuid>>,
    /// The plan id first seen beside each rollout: (deployment uid, plan target, strategy) → plan id.
    pub(super) rollout_plans: BTreeMap<(String, String, String), String>,
    /// Template hash → (image, sidecar image) of every template any stored version of a deployment held.
    pub(super) template_images: BTreeMap<String, (String, Option<String>)>,
    /// Each deployment's `failedTargetHash` as last judged.
    pub(super) failed_targets: BTreeMap<ObjectRef, Option<String>>,
    /// Since when each quiet deployment has had children of more than one revision.
    pub(super) mixed_since: BTreeMap<ObjectRef, std::time::Duration>,
    /// What the height gate's check remembers.
    pub(super) gate: height_gate::GateWatch,
}

impl ObservedObjects {
    /// Re-reads the objects that changed since the last refresh.
    pub fn refresh(&mut self, world: &WorldState) {
        let changes = world.api.store.changes_since(self.cursor);
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
            let Some(template) = world.api.store.get(&change.object, Some(change.version)).and_then(|v| {
                v.at("/spec/template/spec").and_then(|t| sei_operator_core::api::SeiNodeSpec::deserialize(t).ok())
            }) else {
                continue;
            };
            let hash = sei_operator_core::api::template_hash(&template);
            let sidecar = template.sidecar.as_ref().and_then(|s| s.image.clone());
            self.template_images.entry(hash).or_insert((template.image.clone(), sidecar));
        }
    }
}

/// Keeps `key`'s stored object in `map` as the world's decoded object (the store's commit decoded each SeiNode
/// and SeiNodeDeployment version already, for the operator's trigger fingerprints), or drops it when it is gone.
fn update<K: DeserializeOwned + Send + Sync + 'static>(
    map: &mut BTreeMap<ObjectRef, Arc<K>>,
    world: &WorldState,
    key: &ObjectRef,
) {
    match world.api.store.get(key, None).and_then(|v| world.api.store.decoded().decode::<K>(key, v).ok()) {
        Some(object) => map.insert(key.clone(), object),
        None => map.remove(key),
    };
}

/// Runs every check; the first violation found.
pub fn check(world: &WorldState, observed: &mut ObservedObjects) -> Result<(), InvariantViolation> {
    observed.refresh(world);
    if let Some(violation) = world.ledger.write_violations.get(observed.write_violations_checked) {
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

/// The invariants as the world's [`Observer`]: each moment goes to the checks judging it.
pub struct Invariants;

/// The observer every world is built with.
pub static INVARIANTS: Invariants = Invariants;

impl Observer for Invariants {
    fn on_write(
        &self,
        world: &mut WorldState,
        key: &ObjectRef,
        verb: &str,
        stored: &serde_json::Value,
        writer: Writer<'_>,
    ) {
        reads::on_write(world, key, verb, stored, writer);
    }
    fn on_delete(&self, world: &mut WorldState, key: &ObjectRef) {
        deletes::on_delete(world, key);
    }
    fn on_user_delete(&self, world: &mut WorldState, key: &ObjectRef) {
        deletes::on_user_delete(world, key);
    }
    fn on_seid_start(&self, world: &mut WorldState, key: &ObjectRef) {
        seid::on_seid_start(world, key);
    }
    fn on_seid_restart(&self, world: &mut WorldState, key: &ObjectRef) {
        seid::on_seid_restart(world, key);
    }
    fn on_operator_get(
        &self,
        world: &mut WorldState,
        reconcile: Option<(u64, &str)>,
        key: &ObjectRef,
        at: Option<u64>,
    ) {
        reads::on_operator_get(world, reconcile, key, at);
    }
    fn on_operator_list(
        &self,
        world: &mut WorldState,
        reconcile: Option<(u64, &str)>,
        kind: &str,
        namespace: &str,
        selector: &sei_operator_core::cluster::LabelSelector,
        at: Option<u64>,
    ) {
        reads::on_operator_list(world, reconcile, kind, namespace, selector, at);
    }
    fn on_reconcile_end(&self, world: &mut WorldState, id: Option<u64>) {
        reads::on_reconcile_end(world, id);
    }
}
