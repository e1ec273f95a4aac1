//! Each invariant fails on the state it forbids, with its name, the seed and the trace; and stays quiet on a
//! legitimate state.

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Service};
use sei_operator_core::api::{
    DeploymentPhase, Plan, RolloutStatus, SeiNode, SeiNodeDeployment, SeiNodePhase, SeiNodeStatus, Strategy, Time,
};
use sei_operator_core::cluster::Cluster;
use sei_operator_core::manifest::{Manifest, ManifestValidator};
use sei_operator_core::objects::meta::{
    ConditionUpdate, LABEL_DEPLOYMENT, LABEL_NODE, LABEL_REVISION, controller_reference, set_condition,
};
use sei_operator_core::sidecar::wire::TaskRequest;
use sei_operator_core::sidecar::{PodAddress, Sidecar};
use sei_sim::harness::invariants::{
    CURRENT_IMAGE_WAS_RUN, LEAKED_ENTRANT_GRACE, NO_ACTIVE_PVC_DELETED, NO_COMPLETE_PLAN_BESIDE_UNFINISHED_ROLLOUT,
    NO_LEAKED_ENTRANTS, NO_NEEDLESSLY_FAILED_ROLLOUT, NO_TRAFFIC_BLACK_HOLE, NO_UPGRADE_PANIC_ON_HARDFORK_ENTRANT,
    NO_WORK_STARTED_TWICE, ONE_PLAN_PER_ROLLOUT, ROLLOUT_CONDITION_MATCHES_ROLLOUT, SIDECAR_WRITER,
};
use sei_sim::{SimError, World};
use serde_json::json;
use uuid::Uuid;

use crate::common::*;

fn fixture(name: &str) -> SeiNodeDeployment {
    let text = std::fs::read_to_string(format!("{}/../fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    match ManifestValidator::new().unwrap().admit_yaml(&text).unwrap().remove(0) {
        Manifest::SeiNodeDeployment(deployment) => *deployment,
        other => panic!("not a deployment: {other:?}"),
    }
}

fn node(name: &str, labels: serde_json::Value) -> SeiNode {
    serde_json::from_value(json!({
        "apiVersion": "sei.io/v1alpha1", "kind": "SeiNode",
        "metadata": {"name": name, "namespace": NS, "labels": labels},
        "spec": {"chainId": "pacific-1", "image": "sei:v1", "fullNode": {}},
    }))
    .unwrap()
}

fn set_node_phase(world: &World, name: &str, phase: SeiNodePhase) {
    world
        .edit_status::<SeiNode>(NS, name, |n| {
            n.status = Some(SeiNodeStatus { phase: Some(phase), ..n.status.clone().unwrap_or_default() });
        })
        .unwrap();
}

/// Steps until the run fails; the name of the violated invariant.
fn violated(world: &mut World) -> &'static str {
    violated_within(world, secs(5))
}

/// Steps for up to `within` until the run fails; the name of the violated invariant.
fn violated_within(world: &mut World, within: std::time::Duration) -> &'static str {
    match world.run_for(within) {
        Err(SimError::Invariant { violation, seed, trace_tail, .. }) => {
            assert_eq!(seed, world.seed());
            assert!(!trace_tail.is_empty());
            violation.invariant
        }
        other => panic!("expected a violation, got {other:?}"),
    }
}

#[test]
fn rollout_condition_must_match_rollout() {
    let mut world = world(40);
    let deployment = world.create(&fixture("bluegreen.yaml")).unwrap();
    let name = deployment.metadata.name.clone().unwrap();
    world
        .edit_status::<SeiNodeDeployment>(NS, &name, |d| {
            d.status.get_or_insert_default().phase = Some(DeploymentPhase::Upgrading);
        })
        .unwrap();
    assert_eq!(violated(&mut world), ROLLOUT_CONDITION_MATCHES_ROLLOUT);
}

#[test]
fn current_image_must_have_been_run_by_a_ready_pod() {
    let mut world = world(41);
    world.create(&node("n", json!({}))).unwrap();
    prepared_claim(&world, "data-n-0");
    world.create(&statefulset("n", "sei:v1", false, "OrderedReady")).unwrap();
    world.run_until("pod ready", secs(60), |w| pod_ready(w, "n-0")).unwrap();
    world
        .edit_status::<SeiNode>(NS, "n", |n| n.status.get_or_insert_default().current_image = Some("sei:v1".into()))
        .unwrap();
    world.run_for(secs(5)).unwrap();
    world
        .edit_status::<SeiNode>(NS, "n", |n| n.status.get_or_insert_default().current_image = Some("sei:v1.1".into()))
        .unwrap();
    assert_eq!(violated(&mut world), CURRENT_IMAGE_WAS_RUN);
}

#[test]
fn the_operator_must_not_delete_the_pvc_of_an_active_node() {
    let mut world = world(42);
    world.create(&node("n", json!({}))).unwrap();
    for name in ["data-n-0", "data-n-spare"] {
        let mut pvc: PersistentVolumeClaim = claim(name);
        pvc.metadata.labels = Some([(LABEL_NODE.to_owned(), "n".to_owned())].into());
        world.create(&pvc).unwrap();
    }
    world.run_for(secs(3)).unwrap();
    // A person deleting it is a scenario's business; the operator doing it is a bug.
    world.delete::<PersistentVolumeClaim>(NS, "data-n-spare").unwrap();
    world.run_for(secs(3)).unwrap();
    let deleted =
        sei_sim::harness::world::poll_ready(world.operator_cluster().delete::<PersistentVolumeClaim>(NS, "data-n-0"));
    assert_eq!(deleted, Some(Ok(())));
    assert_eq!(violated(&mut world), NO_ACTIVE_PVC_DELETED);
}

fn blue_green_with_service(world: &mut World) -> String {
    let deployment = world.create(&fixture("bluegreen.yaml")).unwrap();
    let name = deployment.metadata.name.clone().unwrap();
    let labels = json!({LABEL_DEPLOYMENT: name, LABEL_REVISION: "r1"});
    world.create(&node(&format!("{name}-0"), labels)).unwrap();
    let service: Service = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"selector": {LABEL_DEPLOYMENT: name, LABEL_REVISION: "r1"}},
    }))
    .unwrap();
    world.create(&service).unwrap();
    name
}

#[test]
fn a_service_must_not_select_a_revision_without_running_nodes() {
    let mut world = world(43);
    let name = blue_green_with_service(&mut world);
    world.run_for(secs(2)).unwrap();
    set_node_phase(&world, &format!("{name}-0"), SeiNodePhase::Running);
    world.run_for(secs(2)).unwrap();
    set_node_phase(&world, &format!("{name}-0"), SeiNodePhase::Failed);
    assert_eq!(violated(&mut world), NO_TRAFFIC_BLACK_HOLE);
}

/// A deployment whose spec says InPlace, a Service on revision `r1` and one Running node of each of `r1`, `r2`.
fn in_place_with_two_revisions(world: &mut World) -> (String, Service) {
    let deployment = world.create(&fixture("inplace-fullnode.yaml")).unwrap();
    let name = deployment.metadata.name.clone().unwrap();
    for (node_name, revision) in [(format!("{name}-0"), "r1"), (format!("{name}-g2-0"), "r2")] {
        world.create(&node(&node_name, json!({LABEL_DEPLOYMENT: name, LABEL_REVISION: revision}))).unwrap();
        set_node_phase(world, &node_name, SeiNodePhase::Running);
    }
    let service: Service = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"selector": {LABEL_DEPLOYMENT: name, LABEL_REVISION: "r1"}},
    }))
    .unwrap();
    let service = world.create(&service).unwrap();
    world.run_for(secs(2)).unwrap();
    (name, service)
}

#[test]
fn a_switch_and_the_deletion_of_its_target_in_one_step_is_a_black_hole_whatever_the_spec_strategy() {
    // The spec says InPlace (a user may have switched it mid-rollout), and the Service is moved to `r2` and
    // `r2`'s only node deleted between two checks: the Service never selected `r2` while it ran.
    let mut world = world(44);
    let (name, mut service) = in_place_with_two_revisions(&mut world);
    let operator = world.operator_cluster();
    service.spec.as_mut().unwrap().selector.as_mut().unwrap().insert(LABEL_REVISION.into(), "r2".into());
    sei_sim::harness::world::poll_ready(operator.replace(&service)).unwrap().unwrap();
    sei_sim::harness::world::poll_ready(operator.delete::<SeiNode>(NS, &format!("{name}-g2-0"))).unwrap().unwrap();
    assert_eq!(violated(&mut world), NO_TRAFFIC_BLACK_HOLE);
}

#[test]
fn a_service_left_with_no_running_node_by_a_user_delete_is_the_users_doing() {
    let mut world = world(45);
    let (name, _) = in_place_with_two_revisions(&mut world);
    world.delete::<SeiNode>(NS, &format!("{name}-0")).unwrap();
    world.run_for(secs(10)).unwrap();
    // Once a node of the revision runs again, emptying it is judged again.
    world.create(&node(&format!("{name}-1"), json!({LABEL_DEPLOYMENT: name, LABEL_REVISION: "r1"}))).unwrap();
    set_node_phase(&world, &format!("{name}-1"), SeiNodePhase::Running);
    world.run_for(secs(2)).unwrap();
    sei_sim::harness::world::poll_ready(world.operator_cluster().delete::<SeiNode>(NS, &format!("{name}-1")))
        .unwrap()
        .unwrap();
    assert_eq!(violated(&mut world), NO_TRAFFIC_BLACK_HOLE);
}

#[test]
fn a_quiet_deployment_must_not_keep_children_of_two_revisions() {
    let mut world = world(44);
    let deployment = world.create(&fixture("bluegreen.yaml")).unwrap();
    let name = deployment.metadata.name.clone().unwrap();
    for (child, revision) in [("0", "r1"), ("g2-0", "r2")] {
        let mut child = node(&format!("{name}-{child}"), json!({LABEL_DEPLOYMENT: name, LABEL_REVISION: revision}));
        child.metadata.owner_references = controller_reference(&deployment).map(|r| vec![r]);
        world.create(&child).unwrap();
    }
    world.run_for(secs(2)).unwrap();
    world
        .edit_status::<SeiNodeDeployment>(NS, &name, |d| {
            d.status.get_or_insert_default().phase = Some(DeploymentPhase::Ready)
        })
        .unwrap();
    // A stray whose delete failed is retried: the grace covers the retries, and only then is it a leak.
    world.run_for(LEAKED_ENTRANT_GRACE - secs(10)).unwrap();
    // Invariants are checked at least every 10 s of simulated time.
    assert_eq!(violated_within(&mut world, secs(25)), NO_LEAKED_ENTRANTS);
}

#[test]
fn a_hard_fork_entrant_must_never_hit_an_upgrade_panic() {
    let mut world = world(45);
    let deployment = world.create(&fixture("hardfork.yaml")).unwrap();
    let name = deployment.metadata.name.clone().unwrap();
    let entrant = format!("{name}-g2-0");
    world.create(&node(&entrant, json!({LABEL_DEPLOYMENT: name, LABEL_REVISION: "r2"}))).unwrap();
    let now = world.inspect(|w| w.timestamp());
    world
        .edit_status::<SeiNodeDeployment>(NS, &name, |d| {
            let status = d.status.get_or_insert_default();
            status.phase = Some(DeploymentPhase::Upgrading);
            status.rollout = Some(RolloutStatus {
                strategy: Strategy::HardFork,
                target_hash: "r2".into(),
                started_at: Time(now),
                generation: 2,
                nodes: Vec::new(),
                incumbent_nodes: vec![format!("{name}-0")],
                entrant_nodes: vec![entrant.clone()],
                incumbent_revision: Some("r1".into()),
                entrant_revision: Some("r2".into()),
                incumbent_image: Some("sei:v1".into()),
                halt_height: Some(1100),
                upgrade_height: None,
                gate_reached_at: None,
            });
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
    world.run_for(secs(2)).unwrap();
    // The entrant's pod runs the new binary from an empty volume: it would have to process blocks below 1100.
    prepared_claim(&world, &format!("data-{entrant}-0"));
    world.create(&statefulset(&entrant, "sei:v2", false, "OrderedReady")).unwrap();
    match world.run_for(secs(60)) {
        Err(SimError::Invariant { violation, .. }) => {
            assert_eq!(violation.invariant, NO_UPGRADE_PANIC_ON_HARDFORK_ENTRANT);
            assert!(violation.message.contains("binary updated before trigger"), "{}", violation.message);
        }
        other => panic!("expected a violation, got {other:?}"),
    }
}

#[test]
fn a_deployment_nobody_reconciles_never_settles() {
    let mut world = world(46);
    let deployment = world.create(&fixture("bluegreen.yaml")).unwrap();
    match world.run_until_settled(secs(30)) {
        Err(SimError::Invariant { violation, .. }) => {
            assert_eq!(violation.invariant, sei_sim::harness::invariants::LIVENESS)
        }
        other => panic!("expected a liveness violation, got {other:?}"),
    }
    let name = deployment.metadata.name.unwrap();
    world
        .edit_status::<SeiNodeDeployment>(NS, &name, |d| {
            d.status.get_or_insert_default().observed_generation = d.metadata.generation;
        })
        .unwrap();
    world.run_until_settled(secs(5)).unwrap();
}

fn start_rollout(world: &World, name: &str, reason: &'static str) {
    let now = world.inspect(|w| w.timestamp());
    world
        .edit_status::<SeiNodeDeployment>(NS, name, |d| {
            let status = d.status.get_or_insert_default();
            status.phase = Some(DeploymentPhase::Upgrading);
            status.rollout = Some(RolloutStatus::new(Strategy::BlueGreen, "r2", Time(now), 2));
            let update = ConditionUpdate {
                type_: "RolloutInProgress",
                status: true,
                reason,
                message: String::new(),
                observed_generation: Some(1),
            };
            set_condition(&mut status.conditions, update, now);
        })
        .unwrap();
}

#[test]
fn a_rollout_past_the_stall_threshold_must_say_stalled() {
    let mut world = world(47);
    let name = world.create(&fixture("bluegreen.yaml")).unwrap().metadata.name.unwrap();
    start_rollout(&world, &name, "TemplateChanged");
    world.run_for(secs(600)).unwrap();
    match world.run_for(secs(120)) {
        Err(SimError::Invariant { violation, .. }) => {
            assert_eq!(violation.invariant, sei_sim::harness::invariants::STALLED_ROLLOUT_REPORTED);
        }
        other => panic!("expected a stall violation, got {other:?}"),
    }
    let mut reported = crate::common::world(48);
    let name = reported.create(&fixture("bluegreen.yaml")).unwrap().metadata.name.unwrap();
    start_rollout(&reported, &name, "Stalled");
    reported.run_for(secs(800)).unwrap();
}

/// A one-replica StatefulSet `n` with a sidecar, its sidecar up and waiting for work.
fn sidecar_world(seed: u64) -> World {
    let mut world = world(seed);
    world.create(&headless_service("n")).unwrap();
    world.create(&statefulset("n", "sei:v1", true, "OrderedReady")).unwrap();
    world.run_until("sidecar up", secs(60), |w| w.pod(NS, "n-0").is_some_and(|p| p.sidecar.is_some())).unwrap();
    world
}

/// Submits a config-apply task under `id` as the operator's node controller.
fn submit_config_apply(world: &mut World, id: u128) -> Result<(), SimError> {
    let request = TaskRequest { id: Some(Uuid::from_u128(id)), type_: "config-apply".into(), params: None };
    let address = PodAddress::for_node(NS, "n", 7777);
    let answer = world.probe(SIDECAR_WRITER, move |s| async move { s.submit_task(&address, &request).await })?;
    assert_eq!(answer, Ok(Uuid::from_u128(id)));
    Ok(())
}

#[test]
fn the_operator_must_not_start_the_same_sidecar_work_twice() {
    let mut world = sidecar_world(49);
    submit_config_apply(&mut world, 10).unwrap();
    let invariant = match submit_config_apply(&mut world, 11) {
        Err(SimError::Invariant { violation, .. }) => violation.invariant,
        _ => violated(&mut world),
    };
    assert_eq!(invariant, NO_WORK_STARTED_TWICE);

    // A retry of work that failed is a new id by design, and a later sidecar process is judged on its own (the
    // table on the volume keeps 11 completed: submitting it again is a no-op).
    let mut retried = sidecar_world(50);
    retried.fail_task(Some("n"), "config-apply", 1, "disk full");
    submit_config_apply(&mut retried, 10).unwrap();
    retried.run_for(secs(3)).unwrap();
    submit_config_apply(&mut retried, 11).unwrap();
    retried.crash_pod(NS, "n-0");
    retried.run_until("sidecar back", secs(60), |w| w.pod(NS, "n-0").is_some_and(|p| p.sidecar.is_some())).unwrap();
    submit_config_apply(&mut retried, 11).unwrap();
    retried.run_for(secs(5)).unwrap();

    // So is the same id submitted again after it failed: the sidecar runs it again as run 2.
    let mut rerun = sidecar_world(53);
    rerun.fail_task(Some("n"), "config-apply", 1, "disk full");
    submit_config_apply(&mut rerun, 10).unwrap();
    rerun.run_for(secs(3)).unwrap();
    submit_config_apply(&mut rerun, 10).unwrap();
    rerun.run_for(secs(3)).unwrap();
    let runs: Vec<(bool, u32)> =
        rerun.inspect(|s| s.ledger.sidecar_submissions.iter().map(|s| (s.started, s.run)).collect());
    assert_eq!(runs, [(true, 1), (true, 2)]);
}

#[test]
fn a_complete_plan_must_not_sit_beside_an_unfinished_rollout() {
    let mut world = world(51);
    let name = world.create(&fixture("bluegreen.yaml")).unwrap().metadata.name.unwrap();
    start_rollout(&world, &name, "TemplateChanged");
    world.run_for(secs(5)).unwrap();
    let complete: Plan = serde_json::from_value(json!({"id": "p", "phase": "Complete", "tasks": []})).unwrap();
    world
        .edit_status::<SeiNodeDeployment>(NS, &name, |d| d.status.get_or_insert_default().plan = Some(complete))
        .unwrap();
    assert_eq!(violated(&mut world), NO_COMPLETE_PLAN_BESIDE_UNFINISHED_ROLLOUT);
}

#[test]
fn a_rollout_must_keep_one_plan() {
    let mut world = world(52);
    let name = world.create(&fixture("bluegreen.yaml")).unwrap().metadata.name.unwrap();
    start_rollout(&world, &name, "TemplateChanged");
    let plan =
        |id: &str| -> Plan { serde_json::from_value(json!({"id": id, "phase": "Active", "tasks": []})).unwrap() };
    world
        .edit_status::<SeiNodeDeployment>(NS, &name, |d| d.status.get_or_insert_default().plan = Some(plan("p1")))
        .unwrap();
    world.run_for(secs(5)).unwrap();
    world
        .edit_status::<SeiNodeDeployment>(NS, &name, |d| d.status.get_or_insert_default().plan = Some(plan("p2")))
        .unwrap();
    assert_eq!(violated(&mut world), ONE_PLAN_PER_ROLLOUT);
}

/// A BlueGreen deployment on `image` whose status says its rollout to that very template failed.
fn failed_rollout_to(world: &mut World, image: &str) {
    let mut deployment = fixture("bluegreen.yaml");
    deployment.spec.template.spec.image = image.into();
    if let Some(sidecar) = deployment.spec.template.spec.sidecar.as_mut() {
        sidecar.image = Some("seictl:v1".into());
    }
    let deployment = world.create(&deployment).unwrap();
    let name = deployment.metadata.name.clone().unwrap();
    world.run_for(secs(1)).unwrap();
    let target = sei_operator_core::api::template_hash(&deployment.spec.template.spec);
    world
        .edit_status::<SeiNodeDeployment>(NS, &name, |d| {
            d.status.get_or_insert_default().failed_target_hash = Some(target.clone());
        })
        .unwrap();
}

#[test]
fn a_rollout_to_a_good_release_must_not_fail_without_a_fault_that_could_fail_it() {
    let mut world = world(51);
    failed_rollout_to(&mut world, "sei:v1");
    assert_eq!(violated(&mut world), NO_NEEDLESSLY_FAILED_ROLLOUT);
}

#[test]
fn a_rollout_may_fail_on_a_broken_release_or_after_a_fault_that_fails_work() {
    let mut world = world(52);
    failed_rollout_to(&mut world, "sei:broken");
    world.run_for(secs(5)).expect("a release that crashes on start may fail its rollout");

    let mut world = sei_sim::World::builder(53).workers(2).chain(chain()).registry(registry()).build().unwrap();
    world.fail_task(None, "config-validate", 1, "scripted");
    failed_rollout_to(&mut world, "sei:v1");
    world.run_for(secs(5)).expect("a scripted task failure may fail a rollout");
}
