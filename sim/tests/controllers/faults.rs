//! Faults around otherwise plain rollouts: partitions, API conflict storms, sidecar restart storms.

crate::scenario_tests! {
    an_hour_long_partition_at_24_replicas_does_not_run_the_simulated_operator_out_of_ports =>
        "hour-long-partition-at-24-replicas-leaves-the-operator-ports.yaml",
    a_bootstrap_pod_waiting_on_its_volume_has_no_address_and_no_other_pod_answers_for_it =>
        "hardfork-bootstrap-pod-waiting-on-its-volume-is-not-reachable.yaml",
    a_child_deleted_while_the_watch_misses_it_is_made_again_by_the_deployment_resync =>
        "child-deleted-while-the-watch-misses-it-is-made-again-by-the-resync.yaml",
    a_partition_during_mark_ready_heals_and_the_node_is_marked_ready => "partition-during-mark-ready.yaml",
    an_api_conflict_storm_does_not_break_a_rollout => "api-conflict-storm.yaml",
    a_sidecar_restart_storm_outside_and_during_a_rollout_leaves_nothing_stuck => "sidecar-restart-storm.yaml",
    a_pod_and_a_sidecar_restarted_three_times_are_marked_ready_each_time =>
        "sidecar-and-pod-restarted-three-times.yaml",
    seid_does_not_start_before_its_restore_and_config_are_done => "seid-waits-for-its-restore.yaml",
    pods_evicted_from_an_unreachable_worker_mid_rollout_come_back_on_the_current_template =>
        "inplace-pods-evicted-from-an-unreachable-worker-mid-rollout.yaml",
    a_bootstrap_pod_evicted_from_an_unreachable_worker_is_replaced_once_its_volume_is_free =>
        "hardfork-bootstrap-pod-evicted-from-an-unreachable-worker.yaml",
    a_deleted_bootstrap_pod_counts_as_a_failure_of_its_job_which_replaces_it =>
        "hardfork-bootstrap-pod-deleted-is-replaced-by-its-job.yaml",
    writes_applied_but_answered_by_504s_and_timeouts_fork_no_plan_and_the_rollout_completes =>
        "inplace-rollout-through-lost-responses.yaml",
    an_in_place_edit_back_under_lost_responses_is_at_rest_only_once_the_templates_follow =>
        "inplace-edit-back-under-lost-responses-is-at-rest-only-once-the-templates-follow.yaml",
    a_rollout_through_429_storms_and_5xx_bursts_waits_fails_nothing_and_completes =>
        "bluegreen-rollout-through-throttling-and-5xx-bursts.yaml",
}
