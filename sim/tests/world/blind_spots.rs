//! The invariants that name what only hand-written scenarios used to see (issue #22), each violated on purpose:
//! a stand-in for a misbehaving operator (its client, tagged with a reconcile) or a user, and the invariant
//! fires; the same moves done right stay quiet.

use k8s_openapi::api::core::v1::Service;
use sei_operator_core::api::template_hash;
use sei_operator_core::api::{
    DeploymentPhase, RolloutNodeStatus, RolloutStatus, SeiNode, SeiNodeDeployment, SeiNodePhase, SeiNodeStatus,
    Strategy, Time,
};
use sei_operator_core::cluster::{Cluster, LabelSelector};
use sei_operator_core::manifest::{Manifest, ManifestValidator};
use sei_operator_core::objects::meta::{
    ConditionUpdate, LABEL_DEPLOYMENT, LABEL_REVISION, controller_reference, set_condition,
};
use sei_sim::harness::invariants::{
    FLEET_ON_ACTIVE_IMAGE_AT_REST, HEIGHT_GATE_HOLDS, NO_PLAN_STEP_AFTER_SUPERSESSION,
    ROLLOUT_COMPLETES_ON_READY_NODES, SWITCH_ONLY_TO_CAUGHT_UP_ENTRANTS,
};
use sei_sim::harness::world::poll_ready;
use sei_sim::{SimError, World};
use serde_json::json;

use crate::common::*;

fn fixture(name: &str) -> SeiNodeDeployment {
    let text = std::fs::read_to_string(format!("{}/../fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    match ManifestValidator::new().unwrap().admit_yaml(&text).unwrap().remove(0) {
        Manifest::SeiNodeDeployment(deployment) => *deployment,
        other => panic!("not a deployment: {other:?}"),
    }
}

/// The outcome of the next few seconds: the violated invariant's name, or `None`.
fn violation_within(world: &mut World, seconds: u64) -> Option<&'static str> {
    match world.run_for(secs(seconds)) {
        Ok(()) => None,
        Err(SimError::Invariant { violation, .. }) => Some(violation.invariant),
        Err(other) => panic!("the run failed otherwise: {other}"),
    }
}

/// A deployment from `fixture` with a rollout of `strategy` to `target` in progress (entrant revision `r2`,
/// InPlace nodes `nodes`), as the operator stores one; its name.
fn rolling(world: &World, fixture_name: &str, strategy: Strategy, target: &str, nodes: &[&str]) -> String {
    let deployment = world.create(&fixture(fixture_name)).unwrap();
    let name = deployment.metadata.name.clone().unwrap();
    let now = world.inspect(|w| w.timestamp());
    let mut rollout = RolloutStatus::new(strategy, target, Time(now), 2);
    rollout.entrant_revision = Some("r2".into());
    rollout.incumbent_revision = Some("r1".into());
    store_rollout(world, &name, rollout, nodes, Some("the-incumbents"));
    name
}

/// Stores `rollout`, over `nodes`, as deployment `name`'s rollout in progress, as the operator does: phase
/// Upgrading, `RolloutInProgress` True, and the template hash of the incumbents when given.
fn store_rollout(world: &World, name: &str, mut rollout: RolloutStatus, nodes: &[&str], incumbents: Option<&str>) {
    let now = world.inspect(|w| w.timestamp());
    rollout.nodes =
        nodes.iter().map(|n| RolloutNodeStatus { name: (*n).into(), ready: false, phase: None, gate: None }).collect();
    world
        .edit_status::<SeiNodeDeployment>(NS, name, |d| {
            let status = d.status.get_or_insert_default();
            status.phase = Some(DeploymentPhase::Upgrading);
            if let Some(hash) = incumbents {
                status.template_hash = Some(hash.into());
            }
            status.rollout = Some(rollout);
            let update = ConditionUpdate {
                type_: "RolloutInProgress",
                status: true,
                reason: "TemplateChanged",
                message: String::new(),
                observed_generation: Some(1),
            };
            set_condition(&mut status.conditions, update, now);
        })
        .unwrap();
}

fn child(world: &World, owner: &SeiNodeDeployment, name: &str, revision: &str, image: &str) -> SeiNode {
    let mut node: SeiNode = serde_json::from_value(json!({
        "apiVersion": "sei.io/v1alpha1", "kind": "SeiNode",
        "metadata": {"name": name, "namespace": NS,
            "labels": {LABEL_DEPLOYMENT: owner.metadata.name.clone().unwrap(), LABEL_REVISION: revision}},
        "spec": {"chainId": "pacific-1", "image": image, "fullNode": {}},
    }))
    .unwrap();
    node.metadata.owner_references = controller_reference(owner).map(|r| vec![r]);
    world.create(&node).unwrap()
}

fn service(world: &World, deployment: &str, revision: &str) -> Service {
    let service: Service = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": deployment, "namespace": NS},
        "spec": {"selector": {LABEL_DEPLOYMENT: deployment, LABEL_REVISION: revision}},
    }))
    .unwrap();
    world.create(&service).unwrap()
}

fn select(service: &mut Service, revision: &str) {
    service.spec.as_mut().unwrap().selector.as_mut().unwrap().insert(LABEL_REVISION.into(), revision.into());
}

#[test]
fn a_blue_green_switch_to_an_entrant_no_ready_pod_has_served_is_caught() {
    let mut world = world(60);
    let name = rolling(&world, "bluegreen.yaml", Strategy::BlueGreen, "t2", &[]);
    let owner = world.get::<SeiNodeDeployment>(NS, &name).unwrap();
    // Running by its status (its init plan done), but no pod of it was ever Ready: still catching up.
    child(&world, &owner, "entrant", "r2", "sei:v1.1");
    world
        .edit_status::<SeiNode>(NS, "entrant", |n| {
            n.status = Some(SeiNodeStatus { phase: Some(SeiNodePhase::Running), ..Default::default() })
        })
        .unwrap();
    let mut traffic = service(&world, &name, "r1");
    world.run_for(secs(2)).unwrap();
    select(&mut traffic, "r2");
    poll_ready(world.operator_cluster().replace(&traffic)).unwrap().unwrap();
    assert_eq!(violation_within(&mut world, 2), Some(SWITCH_ONLY_TO_CAUGHT_UP_ENTRANTS));

    // The same switch once a Ready pod of the entrant has served its image: quiet.
    let mut world = crate::common::world(61);
    let name = rolling(&world, "bluegreen.yaml", Strategy::BlueGreen, "t2", &[]);
    let owner = world.get::<SeiNodeDeployment>(NS, &name).unwrap();
    child(&world, &owner, "entrant", "r2", "sei:v1.1");
    world.modify(|w| w.ledger.ready_images.insert((NS.into(), "entrant".into(), "sei:v1.1".into())));
    let mut traffic = service(&world, &name, "r1");
    world.run_for(secs(2)).unwrap();
    select(&mut traffic, "r2");
    poll_ready(world.operator_cluster().replace(&traffic)).unwrap().unwrap();
    assert_eq!(violation_within(&mut world, 2), None);
}

#[test]
fn a_plan_step_in_a_reconcile_that_read_its_rollout_superseded_is_caught() {
    // The template (the fixture's) no longer hashes to the rollout's target: the rollout is superseded. A
    // reconcile that read that and still switches traffic takes a step of a plan nobody wants.
    let mut world = world(62);
    let name = rolling(&world, "bluegreen.yaml", Strategy::BlueGreen, "an-older-target", &[]);
    let mut traffic = service(&world, &name, "r1");
    world.run_for(secs(2)).unwrap();
    let reconcile = world.operator_cluster().for_reconcile(1, "SeiNodeDeployment");
    poll_ready(reconcile.get::<SeiNodeDeployment>(NS, &name)).unwrap().unwrap();
    select(&mut traffic, "r3");
    poll_ready(reconcile.replace(&traffic)).unwrap().unwrap();
    assert_eq!(violation_within(&mut world, 2), Some(NO_PLAN_STEP_AFTER_SUPERSESSION));

    // The rollout on the template's own target is no superseded one: its switch is the plan's business.
    let mut world = crate::common::world(63);
    let spec = fixture("bluegreen.yaml").spec.template.spec;
    let name = rolling(&world, "bluegreen.yaml", Strategy::BlueGreen, &template_hash(&spec), &[]);
    let mut traffic = service(&world, &name, "r1");
    world.run_for(secs(2)).unwrap();
    let reconcile = world.operator_cluster().for_reconcile(1, "SeiNodeDeployment");
    poll_ready(reconcile.get::<SeiNodeDeployment>(NS, &name)).unwrap().unwrap();
    select(&mut traffic, "r3");
    poll_ready(reconcile.replace(&traffic)).unwrap().unwrap();
    assert_eq!(violation_within(&mut world, 2), None);
}

/// An InPlace rollout of node `n0` whose stored status says Running on the target image, its sidecar ready
/// or not and its pod on `sidecar_image`; a reconcile reads the deployment and the nodes, then writes the status
/// that completes the rollout.
fn complete_in_place(seed: u64, sidecar_ready: bool, sidecar_image: &str) -> World {
    let mut world = world(seed);
    let spec = fixture("inplace-fullnode.yaml").spec.template.spec;
    let target = template_hash(&spec);
    let name = rolling(&world, "inplace-fullnode.yaml", Strategy::InPlace, &target, &["n0"]);
    let owner = world.get::<SeiNodeDeployment>(NS, &name).unwrap();
    child(&world, &owner, "n0", "r1", &spec.image);
    // A Ready pod of it has run the image (invariant 4 holds): whether the sidecar is ready is the question.
    world.modify(|w| {
        w.ledger.ready_images.insert((NS.into(), "n0".into(), spec.image.clone()));
        w.ledger.ready_sidecar_images.insert((NS.into(), "n0".into(), sidecar_image.into()))
    });
    world
        .edit_status::<SeiNode>(NS, "n0", |n| {
            n.status = Some(SeiNodeStatus {
                phase: Some(SeiNodePhase::Running),
                current_image: Some(spec.image.clone()),
                current_sidecar_image: Some(sidecar_image.into()),
                sidecar_ready: Some(sidecar_ready),
                ..Default::default()
            })
        })
        .unwrap();
    world.run_for(secs(2)).unwrap();
    let reconcile = world.operator_cluster().for_reconcile(7, "SeiNodeDeployment");
    let mut read = poll_ready(reconcile.get::<SeiNodeDeployment>(NS, &name)).unwrap().unwrap();
    poll_ready(reconcile.list::<SeiNode>(NS, &LabelSelector::default())).unwrap().unwrap();
    let status = read.status.as_mut().unwrap();
    status.rollout = None;
    status.template_hash = Some(target);
    status.phase = Some(DeploymentPhase::Ready);
    status.incumbent_nodes = vec!["n0".into()];
    status.conditions.clear();
    poll_ready(reconcile.replace_status(&read)).unwrap().unwrap();
    world
}

#[test]
fn an_in_place_rollout_completed_on_a_node_whose_sidecar_was_read_unready_is_caught() {
    // The node's spec names no sidecar image: its pod is built with the operator's default.
    let sidecar = sei_operator_core::objects::workload::DEFAULT_SIDECAR_IMAGE;
    let mut world = complete_in_place(64, false, sidecar);
    assert_eq!(violation_within(&mut world, 2), Some(ROLLOUT_COMPLETES_ON_READY_NODES));
    // Ready, but its pod still runs another sidecar than the spec's (a sidecar upgrade not rolled yet).
    let mut world = complete_in_place(66, true, "seictl:v0.8.0");
    assert_eq!(violation_within(&mut world, 2), Some(ROLLOUT_COMPLETES_ON_READY_NODES));
    let mut world = complete_in_place(65, true, sidecar);
    assert_eq!(violation_within(&mut world, 2), None);
}

/// A scenario: one InPlace node Ready on v6.3.0; then `then` (timeline steps); then it must settle.
fn one_node_scenario(then: &str) -> String {
    format!(
        r#"
name: fleet-at-rest
seed: 3
namespace: sei
world: {{workers: 2}}
chain: {{id: pacific-1, initialHeight: 1000, blockTime: 1s}}
registry:
  "sei:v6.3.0": {{version: v6.3.0}}
  "sei:v6.3.1": {{version: v6.3.1}}
  "seictl:v0.9.0": {{}}
timeline:
  - apply: {{file: fixtures/inplace-fullnode.yaml, set: {{spec.replicas: 1}}}}
  - expect: {{within: 10m, deployment: rpc, is: {{status.phase: Ready}}}}
{then}
  - settle: 20m
"#
    )
}

fn run_scenario(text: &str) -> sei_sim::scenario::Outcome {
    let scenario = sei_sim::scenario::parse("inline", text).expect("a valid scenario");
    sei_sim::scenario::run(&scenario, None, &std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".."))
}

#[test]
fn a_child_left_off_the_active_image_at_rest_is_caught() {
    // A user writes another image straight onto a child: rollout fields of a child change only through a
    // rollout, so the deployment comes to rest on v6.3.0 with a child running v6.3.1.
    let tampered = run_scenario(&one_node_scenario(
        r#"  - edit: {kind: SeiNode, name: rpc-0, set: {spec.image: "sei:v6.3.1"}}
  - wait: 3m"#,
    ));
    let failure = tampered.failure.expect("the settle check fails");
    assert!(failure.contains(FLEET_ON_ACTIVE_IMAGE_AT_REST), "{failure}");
    assert!(failure.contains("rpc-0 is on sei:v6.3.1"), "{failure}");

    // A rollout instead: at rest on the new image.
    let rolled = run_scenario(&one_node_scenario(
        r#"  - edit: {kind: SeiNodeDeployment, name: rpc, set: {spec.template.spec.image: "sei:v6.3.1"}}"#,
    ));
    assert!(rolled.passed(), "{:?}", rolled.failure);
}

#[test]
fn an_aimed_edit_lands_right_after_its_moment() {
    // The second edit is aimed at the status write that records update-node-specs Complete: it must be the very
    // next write after that one, inside the tick, before the operator's next call.
    let outcome = run_scenario(&one_node_scenario(
        r#"  - edit: {kind: SeiNodeDeployment, name: rpc, set: {spec.template.spec.image: "sei:v6.3.1"}}
  - edit:
      kind: SeiNodeDeployment
      name: rpc
      set: {spec.template.spec.image: "sei:v6.3.0"}
      after: {write: statusWrite, taskCompleted: update-node-specs}"#,
    ));
    assert!(outcome.passed(), "{:?}", outcome.failure);
    let lines = outcome.trace.lines();
    let aimed = lines.iter().position(|l| l.contains("(aimed edit, right after")).expect("the aimed edit landed");
    assert!(lines[aimed - 1].contains("operator replace-status SeiNodeDeployment sei/rpc"), "{}", lines[aimed - 1]);
    assert!(lines[aimed].contains("right after the operator's replace-status SeiNodeDeployment sei/rpc"));
    // The moment came before its deadline: the edit was not made at it.
    assert!(!lines.iter().any(|l| l.contains("at the deadline")));
}

/// A gated InPlace rollout to `staged` (upgrade at [`UPGRADE_HEIGHT`]) whose one node `n` runs `sei:v1` in a
/// StatefulSet of its own, and no operator to roll it: the node stops at the upgrade once the validators switch.
fn gated_node_left_on_the_old_binary(seed: u64, staged: &str) -> (World, SeiNodeDeployment) {
    let world = world(seed);
    let mut deployment = fixture("inplace-fullnode.yaml");
    deployment.spec.template.spec.image = staged.into();
    deployment.spec.update_strategy.in_place =
        serde_json::from_value(json!({"upgradeHeight": UPGRADE_HEIGHT})).unwrap();
    let target = template_hash(&deployment.spec.template.spec);
    let deployment = world.create(&deployment).unwrap();
    let name = deployment.metadata.name.clone().unwrap();
    let now = world.inspect(|w| w.timestamp());
    let mut rollout = RolloutStatus::new(Strategy::InPlace, &target, Time(now), 2);
    rollout.upgrade_height = Some(i64::try_from(UPGRADE_HEIGHT).unwrap());
    store_rollout(&world, &name, rollout, &["n"], None);
    let node = child(&world, &deployment, "n", "r1", "sei:v1");
    prepared_claim(&world, "data-n-0");
    let mut set = statefulset("n", "sei:v1", false, "Parallel");
    set.metadata.owner_references = controller_reference(&node).map(|r| vec![r]);
    world.create(&set).unwrap();
    (world, deployment)
}

#[test]
fn a_node_stopped_at_the_gate_and_never_rolled_is_caught_but_not_once_it_is_deleted_and_made_again() {
    // Nothing moves the stopped node onto the staged image: caught one roll bound after its stop.
    let (mut world, _) = gated_node_left_on_the_old_binary(63, "sei:v2");
    assert_eq!(violation_within(&mut world, 400), Some(HEIGHT_GATE_HOLDS));

    // The same node deleted right after its stop and made again under its name: the stop was the deleted
    // node's, and the new one (which has no pod yet) is not judged by it.
    let (mut world, deployment) = gated_node_left_on_the_old_binary(63, "sei:v2");
    world
        .run_until("upgrade panic", secs(400), |w| w.inspect(|s| s.ledger.panics.iter().any(|p| p.upgrade_panic)))
        .unwrap();
    world.delete::<SeiNode>(NS, "n").unwrap();
    world.run_until("node gone", secs(30), |w| w.get::<SeiNode>(NS, "n").is_err()).unwrap();
    child(&world, &deployment, "n", "r1", "sei:v1");
    assert_eq!(violation_within(&mut world, 300), None);
}

#[test]
fn a_node_stopped_at_the_gate_under_a_rollout_that_stages_the_binary_that_stopped_is_not_judged_late() {
    // A user reverted the gated rollout to the binary the node runs: nothing can switch it to another, and the
    // crash loop at the upgrade is what was asked for (found by fuzz seed 9898001 case 1481, shrunk again).
    let (mut world, _) = gated_node_left_on_the_old_binary(63, "sei:v1");
    world
        .run_until("upgrade panic", secs(400), |w| w.inspect(|s| s.ledger.panics.iter().any(|p| p.upgrade_panic)))
        .unwrap();
    assert_eq!(violation_within(&mut world, 400), None);
}
