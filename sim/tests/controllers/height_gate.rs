//! Height-gated InPlace rollouts (`updateStrategy.inPlace.upgradeHeight`): the image is staged, and each node gets
//! it only once it has committed the block before the upgrade height, or stopped at it on the old binary.

crate::scenario_tests! {
    a_height_gate_judges_a_child_made_again_by_its_new_pod_not_by_the_stop_of_its_predecessors_pod =>
        "inplace-height-gate-child-deleted-as-its-old-pod-stops-is-judged-by-its-new-pod.yaml",
    a_height_gate_judges_a_child_made_again_while_its_predecessors_pod_still_runs_by_its_new_pod =>
        "inplace-height-gate-child-made-again-while-its-old-pod-runs-is-judged-by-its-new-pod.yaml",
    a_height_gate_judges_a_child_deleted_just_after_its_old_pod_stopped_by_its_new_pod =>
        "inplace-height-gate-child-deleted-after-its-old-pod-stopped-is-judged-by-its-new-pod.yaml",
    a_height_gate_switches_each_node_at_the_upgrade_and_one_catching_up_far_below_only_once_it_gets_there =>
        "inplace-height-gate-holds-nodes-catching-up-far-below-until-they-reach-it.yaml",
    a_height_gate_survives_an_operator_leader_crash_at_the_block_before_the_upgrade =>
        "inplace-height-gate-survives-an-operator-crash-at-the-block-before-the-upgrade.yaml",
    a_pod_crashing_at_the_block_before_the_upgrade_restarts_on_the_old_binary_and_is_switched_at_it =>
        "inplace-height-gate-with-a-pod-crash-at-the-block-before-the-upgrade.yaml",
    an_edit_two_blocks_before_the_upgrade_replaces_the_staged_image_and_removing_the_gate_applies_at_once =>
        "inplace-height-gate-staged-image-superseded-two-blocks-before-the-upgrade.yaml",
    sixteen_nodes_on_400ms_blocks_are_each_switched_right_after_the_upgrade_height =>
        "inplace-height-gate-16-nodes-on-400ms-blocks.yaml",
    a_gate_behind_the_chain_is_refused_and_removing_it_rolls_out_at_once =>
        "inplace-height-gate-behind-the-chain-is-refused.yaml",
    a_gate_typed_behind_the_chain_before_the_heights_were_known_never_switches_a_node_early =>
        "inplace-height-gate-typed-behind-the-chain-never-switches-a-node-early.yaml",
    a_node_deleted_mid_gated_rollout_is_made_again_on_the_old_binary_and_switched_at_the_upgrade =>
        "inplace-height-gate-child-deleted-mid-rollout-is-made-again-on-the-old-binary.yaml",
    a_gate_superseded_after_the_upgrade_moves_every_node_on_from_the_image_it_staged_before =>
        "inplace-height-gate-superseded-after-the-upgrade-moves-every-node-on.yaml",
    a_node_deleted_after_the_gate_switched_the_fleet_bootstraps_to_the_block_before_the_upgrade =>
        "inplace-height-gate-node-deleted-after-the-switch-bootstraps-to-the-block-before-the-upgrade.yaml",
    an_image_staged_after_the_chain_stopped_at_the_upgrade_with_a_mistyped_gate_waits_for_the_fix_then_switches =>
        "inplace-height-gate-staged-after-the-chain-stopped-at-the-upgrade-with-a-typo.yaml",
    a_node_added_after_the_gate_switched_the_fleet_bootstraps_to_the_block_before_the_upgrade =>
        "inplace-height-gate-scale-up-after-the-switch-bootstraps-to-the-block-before-the-upgrade.yaml",
    a_gate_corrected_from_a_mistyped_height_remakes_a_child_with_the_binary_from_before_the_upgrade =>
        "inplace-height-gate-corrected-from-a-mistyped-height-remakes-a-child-with-the-pre-upgrade-binary.yaml",
    a_node_stopped_at_the_upgrade_after_an_api_outage_is_switched_promptly_not_when_a_long_client_retry_wakes =>
        "inplace-height-gate-switches-a-stopped-node-promptly-after-an-api-outage.yaml",
    a_revert_to_the_binary_without_the_upgrade_after_the_switch_keeps_the_nodes_on_the_binary_with_it =>
        "inplace-height-gate-revert-after-the-switch-keeps-the-nodes-on-the-binary-with-the-upgrade.yaml",
    a_revert_at_the_block_before_an_upgrade_the_chain_never_reaches_moves_the_switched_nodes_back =>
        "inplace-height-gate-revert-at-the-block-before-an-upgrade-the-chain-never-reaches-goes-back.yaml",
}
