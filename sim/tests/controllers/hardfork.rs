//! HardFork rollouts at the chain's upgrade height H: entrants bootstrap with the incumbent image to H-1 in a Job,
//! then start the new image exactly at H; the incumbents serve until the switch. Each test replays its file.

crate::scenario_tests! {
    hard_fork_bootstraps_entrants_to_the_block_before_the_upgrade_and_runs_the_new_image_from_it =>
        "hardfork-happy-path.yaml",
    a_hard_fork_switch_whose_record_an_edit_refused_keeps_the_entrants_the_service_selects =>
        "hardfork-switch-whose-record-is-lost-to-an-edit-keeps-the-entrants-it-selects.yaml",
    hard_fork_strays_of_another_revision_go_while_the_operator_may_not_update_services =>
        "hardfork-strays-of-another-revision-go-while-services-may-not-be-updated.yaml",
    hard_fork_started_before_the_chain_reaches_the_block_before_the_upgrade_waits_for_it =>
        "hardfork-started-before-h-1.yaml",
    hard_fork_whose_bootstrap_fails_leaves_the_incumbents_serving_and_is_not_retried => "hardfork-bootstrap-fails.yaml",
    hard_fork_superseded_during_bootstrap_bootstraps_the_newest_target_from_the_incumbent_image =>
        "hardfork-superseded-during-bootstrap.yaml",
    hard_fork_after_a_failed_bootstrap_a_new_target_rolls_out => "hardfork-new-target-after-failed-bootstrap.yaml",
    hard_fork_under_conflicts_and_stale_reads_completes_as_without_faults =>
        "hardfork-under-conflicts-and-stale-reads.yaml",
    an_entrant_that_exists_before_the_lagging_read_shows_it_is_waited_for =>
        "hardfork-entrant-exists-before-the-read-shows-it.yaml",
    hard_fork_bootstrap_is_done_only_when_the_teardown_marked_the_volume =>
        "hardfork-bootstrap-teardown-under-stale-reads.yaml",
    hard_fork_after_hard_fork_to_the_same_height_bootstraps_with_the_pre_fork_binary =>
        "hardfork-after-hardfork-bootstraps-with-the-pre-fork-binary.yaml",
    hard_fork_scale_up_during_the_fork_bootstraps_the_new_node_like_its_siblings => "hardfork-scale-up-during-fork.yaml",
    hard_fork_halt_height_corrected_mid_rollout_supersedes_it_and_bootstraps_to_the_new_height =>
        "hardfork-halt-height-corrected-mid-rollout.yaml",
    hard_fork_whose_volume_mark_gets_403_waits_and_completes_once_the_permission_is_back =>
        "hardfork-waits-out-a-missing-permission.yaml",
    hard_fork_entrant_deleted_while_bootstrapping_is_made_again_on_its_own_bootstrap =>
        "hardfork-entrant-deleted-while-bootstrapping-is-made-again.yaml",
    hard_fork_child_deleted_at_rest_bootstraps_again_on_its_own_objects =>
        "hardfork-child-deleted-at-rest-bootstraps-again.yaml",
    hard_fork_set_that_lost_every_child_makes_them_again_with_the_fork_bootstrap =>
        "hardfork-every-child-deleted-after-the-fork-bootstraps-again.yaml",
    a_second_fork_after_children_were_deleted_bootstraps_its_entrants_with_the_pre_fork_binary =>
        "hardfork-second-fork-after-child-deletes-bootstraps-with-the-pre-fork-binary.yaml",
    hard_fork_scale_up_after_the_switch_under_stale_reads_creates_nodes_only_once_a_stored_status_lists_them =>
        "hardfork-scale-up-after-the-switch-under-stale-reads-keeps-its-new-nodes.yaml",
    hard_fork_bootstrap_teardown_whose_record_was_lost_is_settled_by_the_marked_volume =>
        "hardfork-bootstrap-teardown-whose-record-was-lost-still-finishes.yaml",
    hard_fork_edited_back_right_after_the_switch_rolls_forward_from_the_new_incumbents =>
        "hardfork-edited-back-right-after-the-switch-rolls-forward-from-the-new-incumbents.yaml",
    hard_fork_teardown_slowed_past_the_stall_threshold_is_reported_stalled =>
        "hardfork-teardown-slowed-past-the-stall-threshold-is-reported-stalled.yaml",
    hard_fork_superseded_rollout_never_makes_its_deleted_entrant_again =>
        "hardfork-superseded-rollout-does-not-remake-its-deleted-entrant.yaml",
}
