//! Everything else the operator promises: objects stored before a field was required, standalone nodes,
//! deletion policies, and input that slipped past validation.

use sei_operator::api::{
    DeletionPolicy, DeploymentPhase, SeiNode, SeiNodeDeployment, SeiNodePhase, UpdateStrategyType,
};
use sei_operator::cluster::EventType;
use sei_sim::World;

use crate::common::*;

fn rollout_complete(world: &World, name: &str) -> bool {
    condition(world, name, "RolloutInProgress") == Some(("False".into(), "RolloutComplete".into()))
}

fn nodes_of(world: &World, deployment_name: &str) -> Vec<SeiNode> {
    let selector = [(sei_operator::meta::LABEL_DEPLOYMENT.to_owned(), deployment_name.to_owned())].into();
    world.list::<SeiNode>(NS, &selector).expect("listed")
}

fn named(mut deployment: SeiNodeDeployment, name: &str, replicas: i32) -> SeiNodeDeployment {
    deployment.metadata.name = Some(name.into());
    deployment.spec.replicas = replicas;
    deployment
}

/// An object stored before `updateStrategy.type` was required reads as `type: ""`: its rollout runs as
/// InPlace, and the operator says so once with a Warning event.
#[test]
fn an_empty_strategy_type_rolls_out_in_place_with_a_warning() {
    let mut world = world_without_admission(31, chain(Some(mins(30))));
    let mut legacy = fixture_deployment("inplace-fullnode");
    legacy.spec.update_strategy.type_ = UpdateStrategyType::Unspecified;
    world.create(&legacy).expect("stored without validation");
    let stored = world.cluster();
    let raw = sei_sim::world::poll_ready(sei_operator::cluster::Cluster::get::<SeiNodeDeployment>(&stored, NS, "rpc"));
    assert_eq!(raw.and_then(Result::ok).map(|d| d.spec.update_strategy.type_), Some(UpdateStrategyType::Unspecified));
    until_ready(&mut world, "rpc", mins(10));

    world.edit::<SeiNodeDeployment>(NS, "rpc", |d| d.spec.template.spec.image = PATCH.into()).expect("edited");
    run_until(&mut world, "rollout complete", mins(10), |w| rollout_complete(w, "rpc"));

    let plan = deployment(&world, "rpc").status.and_then(|s| s.plan).expect("plan kept");
    let tasks: Vec<&str> = plan.tasks.iter().map(|t| t.type_.as_str()).collect();
    assert_eq!(tasks, ["update-node-specs", "await-spec-update", "mark-nodes-ready"], "the InPlace plan");
    let warnings = events(&world, "rpc", "UpdateStrategyDefaulted");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0].type_, EventType::Warning);
    assert!(events(&world, "rpc", "RolloutStarted")[0].message.ends_with("with InPlace"));
    for name in ["rpc-0", "rpc-1", "rpc-2"] {
        assert_eq!(node(&world, name).and_then(|n| n.status?.current_image).as_deref(), Some(PATCH), "{name}");
    }
    world.run_until_settled(mins(1)).expect("settled");
}

/// A SeiNode with no deployment manages itself: init plan, StatefulSet, Running, and the image it runs.
#[test]
fn a_standalone_seinode_reaches_running_with_its_current_image() {
    let mut world = world(32, chain(Some(mins(30))));
    apply_fixture(&world, "standalone-seinode");
    run_until(&mut world, "explorer Running on its image", mins(10), |w| {
        node(w, "explorer")
            .and_then(|n| n.status)
            .is_some_and(|s| s.phase == Some(SeiNodePhase::Running) && s.current_image.as_deref() == Some(OLD))
    });
    world.run_for(mins(1)).expect("invariants hold");
    let explorer = node(&world, "explorer").expect("exists");
    assert_eq!(explorer.metadata.owner_references, None, "standalone");
    let status = explorer.status.expect("status");
    assert_eq!((status.sidecar_ready, status.catching_up), (Some(true), Some(false)));
    assert!(world.pod(NS, "explorer-0").is_some_and(|p| p.is_ready()));
}

/// `deletionPolicy: Delete`: the deployment goes, and its nodes and Service go before it.
#[test]
fn deleting_with_the_delete_policy_removes_nodes_and_service() {
    let mut world = world(33, chain(Some(mins(30))));
    apply_fixture(&world, "inplace-fullnode");
    until_ready(&mut world, "rpc", mins(10));
    assert!(world.get::<k8s_openapi::api::core::v1::Service>(NS, "rpc").is_ok(), "the Service exists");

    world.delete::<SeiNodeDeployment>(NS, "rpc").expect("deleted");
    run_until(&mut world, "the deployment is gone", mins(5), |w| w.get::<SeiNodeDeployment>(NS, "rpc").is_err());
    run_until(&mut world, "its nodes are gone", mins(5), |w| nodes_of(w, "rpc").is_empty());

    assert!(world.get::<k8s_openapi::api::core::v1::Service>(NS, "rpc").is_err(), "the Service is gone");
    world.run_for(mins(1)).expect("invariants hold");
    assert!(world.list::<SeiNode>(NS, &Default::default()).expect("listed").is_empty(), "nothing recreated");
}

/// `deletionPolicy: Retain`: the deployment goes, its nodes stay — detached and still running.
#[test]
fn deleting_with_the_retain_policy_keeps_the_nodes_running_detached() {
    let mut world = world(34, chain(Some(mins(30))));
    let mut retained = fixture_deployment("inplace-fullnode");
    retained.spec.deletion_policy = DeletionPolicy::Retain;
    world.create(&retained).expect("created");
    until_ready(&mut world, "rpc", mins(10));
    let uid = deployment(&world, "rpc").metadata.uid.expect("stored");

    world.delete::<SeiNodeDeployment>(NS, "rpc").expect("deleted");
    run_until(&mut world, "the deployment is gone", mins(5), |w| w.get::<SeiNodeDeployment>(NS, "rpc").is_err());
    // Long enough for the garbage collector to have taken anything still owned.
    world.run_for(mins(2)).expect("invariants hold");

    let nodes = nodes_of(&world, "rpc");
    assert_eq!(nodes.len(), 3, "every node kept");
    for node in &nodes {
        let name = node.metadata.name.clone().unwrap_or_default();
        let owners = node.metadata.owner_references.clone().unwrap_or_default();
        assert!(owners.iter().all(|o| o.uid != uid), "{name} still owned: {owners:?}");
        assert_eq!(node.metadata.deletion_timestamp, None, "{name}");
        assert_eq!(node.status.as_ref().and_then(|s| s.phase), Some(SeiNodePhase::Running), "{name}");
        assert!(world.pod(NS, &format!("{name}-0")).is_some_and(|p| p.is_ready()), "{name}'s pod serves");
    }
}

/// Two deployments that slipped past validation — HardFork with no haltHeight, and an unknown strategy type —
/// are told apart from a good one: each bad one ends in a clear `RolloutInProgress` message with reason
/// InvalidUpdateStrategy and exactly one Warning event, nothing panics, and the good one rolls out meanwhile.
/// Once their specs are fixed, they roll out too.
#[test]
fn bad_input_is_reported_once_and_never_stops_the_operator() {
    let mut world = world_without_admission(35, chain(Some(mins(30))));
    let template = fixture_deployment("inplace-fullnode");
    let mut no_halt_height = named(template.clone(), "fork", 1);
    no_halt_height.spec.update_strategy.type_ = UpdateStrategyType::HardFork;
    let mut unknown = named(template.clone(), "rolling", 1);
    unknown.spec.update_strategy.type_ = UpdateStrategyType::Unknown("Rolling".into());
    for d in [&template, &no_halt_height, &unknown] {
        world.create(d).expect("stored without validation");
    }
    for name in ["rpc", "fork", "rolling"] {
        until_ready(&mut world, name, mins(10));
    }

    for name in ["rpc", "fork", "rolling"] {
        world.edit::<SeiNodeDeployment>(NS, name, |d| d.spec.template.spec.image = PATCH.into()).expect("edited");
    }
    let invalid = |w: &World, name: &str| {
        condition(w, name, "RolloutInProgress") == Some(("False".into(), "InvalidUpdateStrategy".into()))
    };
    run_until(&mut world, "both reported, the good one rolled out", mins(10), |w| {
        invalid(w, "fork") && invalid(w, "rolling") && rollout_complete(w, "rpc")
    });
    // Many more reconciles (node observations wake each deployment): still one event each.
    world.run_for(mins(3)).expect("invariants hold");

    let message = |name: &str| {
        let status = deployment(&world, name).status.expect("status");
        let c = sei_operator::meta::find_condition(&status.conditions, "RolloutInProgress").expect("condition");
        (c.reason.clone(), c.message.clone())
    };
    let (reason, text) = message("fork");
    assert_eq!(reason, "InvalidUpdateStrategy");
    assert!(text.contains("haltHeight must be set"), "{text}");
    let (reason, text) = message("rolling");
    assert_eq!(reason, "InvalidUpdateStrategy");
    assert!(text.contains("\"Rolling\" is not one of InPlace, BlueGreen, HardFork"), "{text}");
    for name in ["fork", "rolling"] {
        let warnings = world.inspect(|s| {
            s.events.iter().filter(|(_, e)| e.regarding.name == name && e.type_ == EventType::Warning).count()
        });
        assert_eq!(warnings, 1, "{name}: exactly one Warning event");
        assert_eq!(events(&world, name, "InvalidUpdateStrategy").len(), 1, "{name}");
        assert_eq!(deployment(&world, name).status.and_then(|s| s.rollout), None, "{name}: nothing started");
        assert_eq!(phase(&world, name), Some(DeploymentPhase::Ready), "{name}: its nodes still serve");
        assert!(nodes_of(&world, name).iter().all(|n| n.spec.image == OLD), "{name}: no node touched");
    }

    // Fixed by hand, both roll out: the report was no dead end.
    for name in ["fork", "rolling"] {
        world
            .edit::<SeiNodeDeployment>(NS, name, |d| d.spec.update_strategy.type_ = UpdateStrategyType::InPlace)
            .expect("fixed");
    }
    run_until(&mut world, "the fixed deployments roll out", mins(10), |w| {
        rollout_complete(w, "fork") && rollout_complete(w, "rolling")
    });
    world.run_until_settled(mins(1)).expect("settled");
}

crate::scenario_tests! {}
