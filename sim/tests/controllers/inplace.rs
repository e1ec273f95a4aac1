//! InPlace rollouts: the new image is written onto every node at once.

crate::scenario_tests! {
    in_place_happy_path_rolls_every_node_and_completes => "inplace-happy-path.yaml",
    an_in_place_sidecar_upgrade_completes_only_once_every_pod_runs_the_new_sidecar =>
        "inplace-sidecar-upgrade-completes-only-once-every-pod-runs-the-new-sidecar.yaml",
    a_sidecar_upgrade_is_at_rest_only_once_every_statefulset_runs_the_new_sidecar =>
        "sidecar-upgrade-is-at-rest-only-once-every-statefulset-runs-the-new-sidecar.yaml",
    in_place_upgrade_gets_through_a_halted_chain_where_the_old_binary_crash_loops => "inplace-halted-chain.yaml",
    in_place_supersession_replaces_the_plan_and_completes_on_the_newest_image => "inplace-supersession.yaml",
    in_place_stall_escalates_after_ten_minutes_then_completes_when_the_node_recovers =>
        "inplace-stall-then-recovery.yaml",
    in_place_bad_image_then_a_fix_recovers_by_supersession_without_rollback => "inplace-bad-image-then-fix.yaml",
    in_place_16_replicas_at_a_halted_chain => "inplace-16-replicas-halted-chain.yaml",
    in_place_100_replicas_roll_out_and_complete => "inplace-100-replicas.yaml",
    two_in_place_rollouts_in_a_row_both_complete_with_seid_marked_ready => "inplace-two-rollouts-in-a-row.yaml",
    in_place_child_deleted_mid_rollout_and_its_failed_replacement_deleted_to_retry_come_back =>
        "inplace-child-deleted-mid-rollout.yaml",
    in_place_child_made_again_on_a_missing_image_takes_the_fix_while_initializing =>
        "inplace-child-made-again-on-a-missing-image-takes-the-fix.yaml",
}
