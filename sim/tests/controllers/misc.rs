//! Everything else the operator promises: objects stored before a field was required, standalone nodes,
//! deletion policies, and input that slipped past validation.

crate::scenario_tests! {
    an_empty_strategy_type_rolls_out_in_place_with_a_warning => "empty-strategy-type-rolls-in-place.yaml",
    a_standalone_seinode_reaches_running_with_its_current_image => "standalone-seinode.yaml",
    storage_grown_under_a_paused_operator_is_at_rest_only_once_every_claim_asks_for_it =>
        "storage-grown-under-a-paused-operator-is-at-rest-only-once-every-claim-asks-for-it.yaml",
    a_larger_storage_size_expands_the_claims_in_place_and_a_smaller_one_is_refused_in_a_condition =>
        "storage-size-increase-expands-the-claims-in-place-and-a-decrease-is-refused.yaml",
    an_overrides_and_peers_change_restarts_seid_in_place_on_one_node_at_a_time_without_a_rollout =>
        "overrides-change-reaches-running-nodes-one-at-a-time-without-a-rollout.yaml",
    resources_replace_pods_one_node_at_a_time_and_a_refused_config_goes_no_further_than_the_first_node =>
        "pod-settings-and-a-refused-config-stop-at-one-node.yaml",
    a_config_plan_skips_the_restart_of_a_seid_whose_container_started_after_the_write =>
        "config-change-skips-restart-of-a-seid-that-restarted-after-the-write.yaml",
    an_override_edited_mid_inplace_rollout_restarts_seid_only_where_the_operator_could_not_see_it_read_the_config =>
        "override-edited-mid-inplace-rollout-then-retain-delete.yaml",
    a_failed_seinode_is_retried_with_back_off_on_its_volume_and_reaches_running =>
        "seinode-failed-init-is-retried-on-its-volume.yaml",
    a_seinode_recreated_while_its_predecessor_is_collected_waits_for_it_and_runs_on_fresh_children =>
        "seinode-recreated-while-its-predecessor-is-collected.yaml",
    deleting_with_the_delete_policy_removes_nodes_and_service => "delete-policy-delete.yaml",
    deleting_with_the_retain_policy_keeps_the_nodes_running_detached => "delete-policy-retain.yaml",
    a_deployment_reapplied_mid_hard_fork_serves_from_the_set_its_stored_status_names =>
        "retain-then-reapply-mid-hardfork-serves-from-the-set-the-stored-status-names.yaml",
    a_service_selector_edited_at_rest_is_moved_back_to_the_active_set =>
        "service-selector-edited-at-rest-is-moved-back.yaml",
    a_deployment_reapplied_after_a_fork_names_its_entrants_past_the_set_it_adopted =>
        "retain-then-reapply-after-a-fork-names-its-entrants-past-the-adopted-set.yaml",
    a_deployment_reapplied_mid_hard_fork_keeps_serving_from_the_running_set_it_adopted =>
        "retain-then-reapply-mid-hardfork-keeps-serving-from-the-running-set.yaml",
    a_deployment_reapplied_at_fewer_replicas_keeps_the_starting_nodes_its_service_selects_until_one_serves =>
        "retain-then-reapply-at-fewer-replicas-keeps-the-starting-nodes-until-one-serves.yaml",
    a_deployment_reapplied_makes_its_own_service_when_the_deletion_of_its_predecessors_is_missed =>
        "retain-then-reapply-makes-its-own-service-when-the-collected-ones-deletion-is-missed.yaml",
    a_deployment_reapplied_after_a_retain_delete_adopts_its_nodes => "retain-then-reapply-adopts-the-nodes.yaml",
    a_deployment_reapplied_with_a_new_image_after_a_retain_delete_adopts_and_rolls_out =>
        "retain-then-reapply-with-a-new-image-rolls-out.yaml",
    a_colliding_deployment_name_is_refused_and_a_name_held_by_another_is_reported =>
        "node-name-collisions-refused-or-reported.yaml",
    bad_input_is_reported_once_and_never_stops_the_operator => "bad-input-reported-once.yaml",
    an_event_lost_to_a_crash_is_emitted_after_the_restart_once_and_a_refusal_is_one_event =>
        "events-survive-crashes-and-do-not-spam.yaml",
    a_node_at_rest_on_400ms_blocks_writes_status_at_most_once_a_minute_and_wakes_nobody =>
        "status-writes-at-rest-400ms-blocks.yaml",
    a_quiet_hour_at_100_replicas_costs_at_most_one_status_write_a_minute_per_node =>
        "quiet-hour-status-writes-100-replicas.yaml",
}
