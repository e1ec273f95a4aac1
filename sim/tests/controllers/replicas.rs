//! Two operator replicas electing a leader through the Lease (`sei_sim::operator_host::replicas`, on the operator's own
//! `sei_operator_core::leader`): a leader change mid-rollout — by a crash, a partition from the API server, a pause
//! longer than the lease — and the standby finishes the rollout on the same plan while the deposed leader's calls
//! in flight land. Each test replays its file.

crate::scenario_tests! {
    a_standby_finishes_the_in_place_rollout_of_a_crashed_leader =>
        "two-replicas-leader-crashes-mid-inplace-rollout.yaml",
    a_standby_finishes_the_blue_green_rollout_of_a_leader_cut_off_from_the_api_server =>
        "two-replicas-leader-partitioned-from-the-api-mid-bluegreen-rollout.yaml",
    a_leader_paused_past_its_lease_resumes_stale_and_its_in_flight_submissions_are_not_started_twice =>
        "two-replicas-leader-paused-past-its-lease-mid-hardfork-rollout.yaml",
    a_leader_whose_renewal_hangs_in_the_clients_retries_stops_at_the_renew_deadline =>
        "two-replicas-leader-whose-renewal-is-refused-stops-at-the-renew-deadline.yaml",
}
