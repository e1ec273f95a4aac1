//! Crash recovery and fault tolerance: the operator loses its memory, its writes conflict, its reads lag, pods
//! and sidecars restart — and every plan resumes from status, with the same ids, to the same outcome. Each test
//! replays its file.

crate::scenario_tests! {
    operator_crashes_during_node_init_resume_the_same_init_plans => "operator-crashes-during-node-init.yaml",
    operator_crashes_mid_rollout_resume_the_same_plan => "operator-crashes-mid-rollout.yaml",
    operator_crash_right_after_each_write_of_a_reconcile_resumes_the_plan => "operator-crash-after-each-write.yaml",
    conflicts_on_every_other_write_do_not_break_a_rollout => "conflicts-on-every-other-write.yaml",
    stale_reads_during_supersession_end_on_the_newest_image_with_nothing_leaked =>
        "stale-reads-during-bluegreen-supersession.yaml",
    a_pod_restart_outside_any_rollout_is_marked_ready_again => "pod-restart-outside-rollout.yaml",
    a_sidecar_restart_outside_any_rollout_is_marked_ready_again => "sidecar-restart-outside-rollout.yaml",
    mixed_faults_during_a_superseded_in_place_rollout_settle_on_the_newest_image =>
        "mixed-faults-superseded-inplace.yaml",
    a_mark_ready_submitted_from_a_lagging_pod_read_is_waited_for_not_started_twice =>
        "mark-ready-after-a-pod-read-that-lags-a-sidecar-restart.yaml",
    a_mark_ready_that_completes_while_the_operator_looks_is_not_started_again_under_another_id =>
        "mark-ready-that-completes-while-the-operator-looks-is-not-submitted-again.yaml",
    an_operator_crash_looping_until_healed_still_completes_the_rollout => "operator-crash-loop-until-healed.yaml",
}
