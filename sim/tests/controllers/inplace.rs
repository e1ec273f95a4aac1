//! InPlace rollouts.

use sei_operator::api::{DeploymentPhase, SeiNodeDeployment};

use crate::common::*;

fn current_images(world: &sei_sim::World, names: &[&str]) -> Vec<Option<String>> {
    names.iter().map(|n| node(world, n).and_then(|n| n.status?.current_image)).collect()
}

#[test]
fn in_place_happy_path_rolls_every_node_and_completes() {
    let mut world = world(1, chain(Some(mins(30))));
    apply_fixture(&world, "inplace-fullnode");
    until_ready(&mut world, "rpc", mins(10));
    assert_eq!(condition(&world, "rpc", "RolloutInProgress"), Some(("False".into(), "NoRollout".into())));

    world.edit::<SeiNodeDeployment>(NS, "rpc", |d| d.spec.template.spec.image = PATCH.into()).expect("edited");
    run_until(&mut world, "rollout complete", mins(10), |w| {
        condition(w, "rpc", "RolloutInProgress") == Some(("False".into(), "RolloutComplete".into()))
    });
    let nodes = ["rpc-0", "rpc-1", "rpc-2"];
    assert_eq!(current_images(&world, &nodes), vec![Some(PATCH.to_owned()); 3]);
    assert_eq!(phase(&world, "rpc"), Some(DeploymentPhase::Ready));
    let reasons = event_reasons(&world, "rpc");
    assert_eq!(reasons, ["RolloutStarted", "RolloutComplete"]);
    world.run_until_settled(mins(1)).expect("settled");
}
