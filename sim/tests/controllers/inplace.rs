//! InPlace rollouts: the new image is written onto every node at once.

use sei_operator::api::DeploymentPhase;

use crate::common::*;

const NODES: [&str; 3] = ["rpc-0", "rpc-1", "rpc-2"];

#[test]
fn in_place_happy_path_rolls_every_node_and_completes() {
    let mut world = world(1, chain(Some(mins(30))));
    apply_fixture(&world, "inplace-fullnode");
    until_ready(&mut world, "rpc", mins(10));
    assert!(rollout_is(&world, "rpc", "False", "NoRollout"));

    set_image(&world, "rpc", PATCH);
    run_until(&mut world, "rollout complete", mins(10), |w| rollout_is(w, "rpc", "False", "RolloutComplete"));
    assert_eq!(current_images(&world, &NODES), vec![Some(PATCH.to_owned()); 3]);
    assert_eq!(phase(&world, "rpc"), Some(DeploymentPhase::Ready));
    assert_eq!(event_reasons(&world, "rpc"), ["RolloutStarted", "RolloutComplete"]);
    world.run_until_settled(mins(1)).expect("settled");
}

#[test]
fn in_place_upgrade_gets_through_a_halted_chain_where_the_old_binary_crash_loops() {
    // The tip reaches 4999 at ~100 s; the external validators switch at 180 s, and every node's old binary then
    // panics at the upgrade height and crash-loops — not Ready, so only a StatefulSet that may replace an
    // unready pod lets the upgrade through.
    let mut world = world(2, chain_from(4_900, Some(secs(180))));
    apply_fixture(&world, "inplace-fullnode");
    until_ready(&mut world, "rpc", mins(5));
    run_until(&mut world, "every old binary panicked", mins(10), |w| {
        w.inspect(|s| NODES.iter().all(|n| s.panics.iter().any(|p| p.upgrade_panic && p.pod.starts_with(n))))
    });

    set_image(&world, "rpc", NEW);
    run_until(&mut world, "rollout complete", mins(15), |w| rollout_is(w, "rpc", "False", "RolloutComplete"));
    assert_eq!(current_images(&world, &NODES), vec![Some(NEW.to_owned()); 3]);
    world.run_for(mins(1)).expect("runs");
    for name in NODES {
        let height = node(&world, name).and_then(|n| n.status?.latest_height).unwrap_or_default();
        assert!(height > UPGRADE_HEIGHT as i64, "{name} processes the upgrade height: at {height}");
    }
    // The old binary's panics are reported (InPlace timing is the engineer's), the new one never panics.
    let new_binary_panics = world.inspect(|s| s.panics.iter().filter(|p| p.image == NEW).count());
    assert_eq!(new_binary_panics, 0);
}

#[test]
fn in_place_supersession_replaces_the_plan_and_completes_on_the_newest_image() {
    let mut world = world(3, chain(Some(mins(60))));
    apply_fixture(&world, "inplace-fullnode");
    until_ready(&mut world, "rpc", mins(10));

    set_image(&world, "rpc", PATCH);
    run_until(&mut world, "rollout started", mins(1), |w| rollout_is(w, "rpc", "True", "TemplateChanged"));
    world.run_for(secs(3)).expect("runs");
    set_image(&world, "rpc", PATCH2);
    run_until(&mut world, "rollout complete", mins(10), |w| rollout_is(w, "rpc", "False", "RolloutComplete"));

    assert_eq!(current_images(&world, &NODES), vec![Some(PATCH2.to_owned()); 3]);
    assert_eq!(event_reasons(&world, "rpc"), ["RolloutStarted", "RolloutSuperseded", "RolloutComplete"]);
    let status = deployment(&world, "rpc").status.expect("status");
    let plan = status.plan.expect("the last plan is kept");
    assert_eq!(plan.tasks[0].params["fields"]["image"], serde_json::json!(PATCH2), "the plan targets the newest spec");
}

#[test]
fn in_place_stall_escalates_after_ten_minutes_then_completes_when_the_node_recovers() {
    let mut world = world(4, chain(Some(mins(120))));
    apply_fixture(&world, "inplace-fullnode");
    until_ready(&mut world, "rpc", mins(10));
    let down = world.inspect(|s| {
        s.pods.iter().find(|(k, _)| k.name == "rpc-1-0").map(|(_, p)| p.worker).expect("rpc-1's pod is scheduled")
    });

    // rpc-1's worker goes down as the rollout starts: its pod can be neither replaced nor reached.
    world.crash_worker(down);
    set_image(&world, "rpc", PATCH);
    run_until(&mut world, "stalled", mins(11), |w| rollout_is(w, "rpc", "True", "Stalled"));
    let message = condition_message(&world, "rpc", "RolloutInProgress");
    assert!(message.contains("rpc-1"), "the stall names the node not ready: {message}");
    assert_eq!(phase(&world, "rpc"), Some(DeploymentPhase::Upgrading), "a stall is a signal, not a failure");

    world.run_for(mins(3)).expect("runs");
    world.restart_worker(down);
    run_until(&mut world, "rollout complete", mins(15), |w| rollout_is(w, "rpc", "False", "RolloutComplete"));
    assert_eq!(current_images(&world, &NODES), vec![Some(PATCH.to_owned()); 3]);
    let stalled_events = event_reasons(&world, "rpc").iter().filter(|r| *r == "RolloutStalled").count();
    assert_eq!(stalled_events, 1, "one Warning per stalled rollout");
}

#[test]
fn in_place_bad_image_then_a_fix_recovers_by_supersession_without_rollback() {
    let mut world = world(5, chain(Some(mins(120))));
    apply_fixture(&world, "inplace-fullnode");
    until_ready(&mut world, "rpc", mins(10));

    set_image(&world, "rpc", UNPULLABLE);
    run_until(&mut world, "stalled on the bad image", mins(12), |w| rollout_is(w, "rpc", "True", "Stalled"));
    // No automatic rollback: the nodes keep the image the user asked for.
    for name in NODES {
        assert_eq!(node(&world, name).map(|n| n.spec.image), Some(UNPULLABLE.to_owned()));
    }

    set_image(&world, "rpc", PATCH);
    run_until(&mut world, "rollout complete", mins(10), |w| rollout_is(w, "rpc", "False", "RolloutComplete"));
    assert_eq!(current_images(&world, &NODES), vec![Some(PATCH.to_owned()); 3]);
    let reasons = event_reasons(&world, "rpc");
    assert_eq!(reasons, ["RolloutStarted", "RolloutStalled", "RolloutSuperseded", "RolloutComplete"]);
    world.run_until_settled(mins(1)).expect("settled");
}

crate::scenario_tests! {
    in_place_happy_path_file => "inplace-happy-path.yaml",
    in_place_halted_chain_file => "inplace-halted-chain.yaml",
    in_place_bad_image_then_fix_file => "inplace-bad-image-then-fix.yaml",
    in_place_16_replicas_at_a_halted_chain => "inplace-16-replicas-halted-chain.yaml",
}
