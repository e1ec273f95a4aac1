//! BlueGreen rollouts of `fixtures/bluegreen.yaml` (`archive-rpc`, 4 replicas, state sync): entrants next to the
//! incumbents, traffic switched once every entrant has caught up, incumbents torn down only after the switch.

crate::scenario_tests! {
    blue_green_switches_after_entrants_catch_up_then_tears_incumbents_down => "bluegreen-switch-after-catch-up.yaml",
    blue_green_superseded_before_the_switch_deletes_its_entrants_and_completes_on_the_newest_image =>
        "bluegreen-superseded-before-switch.yaml",
    blue_green_scaling_after_a_rollout_grows_and_shrinks_the_active_set_and_never_recreates_incumbents =>
        "bluegreen-scaling-after-rollout.yaml",
    blue_green_rollout_failing_with_a_scale_down_deletes_incumbents_only_once_the_failure_is_stored =>
        "bluegreen-failed-rollout-with-scale-down.yaml",
    blue_green_edit_back_after_a_failed_rollout_forgets_the_failed_target =>
        "bluegreen-revert-after-failed-rollout.yaml",
    blue_green_switch_under_stale_reads_waits_for_the_switch_to_show_and_never_black_holes_traffic =>
        "bluegreen-switch-under-stale-reads.yaml",
    blue_green_switch_that_reads_no_service_after_creating_it_reads_again_instead_of_failing_the_rollout =>
        "bluegreen-switch-that-reads-no-service-after-creating-it-reads-again.yaml",
    blue_green_and_hard_fork_edited_back_before_the_switch_cancel_the_rollout_and_keep_the_incumbents =>
        "revert-before-switch-cancels-the-rollout.yaml",
    blue_green_set_that_lost_every_child_after_a_failed_rollout_makes_them_again_on_the_active_image =>
        "bluegreen-every-child-deleted-after-a-failed-rollout-keeps-the-active-image.yaml",
    blue_green_scale_down_to_a_starting_node_keeps_the_serving_nodes_until_it_serves =>
        "bluegreen-scale-down-to-a-starting-node-keeps-the-serving-nodes-until-it-serves.yaml",
    blue_green_revert_under_conflicts_deletes_its_entrants_once_a_failed_delete_is_retried =>
        "bluegreen-revert-under-conflicts-deletes-its-entrants-on-retry.yaml",
    blue_green_scale_down_mid_rollout_keeps_the_nodes_the_service_selects_until_the_switch =>
        "bluegreen-scale-down-mid-rollout-keeps-the-selected-nodes-until-the-switch.yaml",
    blue_green_switch_refused_with_403_reports_the_missing_permission_and_completes_once_granted =>
        "bluegreen-switch-waits-out-a-forbidden-service-update.yaml",
    a_revert_after_an_inplace_supersession_rolls_back_what_the_inplace_plan_wrote =>
        "bluegreen-revert-after-an-inplace-supersession-rolls-back-what-the-inplace-plan-wrote.yaml",
    a_settle_after_scaling_a_deployment_whose_rollout_failed_waits_for_the_operator_to_scale =>
        "settle-waits-for-a-scale-of-a-deployment-whose-rollout-failed.yaml",
}
