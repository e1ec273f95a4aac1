//! The fuzzer from `cargo test`: a bounded number of generated runs (the CI budget; `sei-sim fuzz` runs longer),
//! and the path a failure takes — shrunk, written as a scenario file, replayed by `sei-sim run`'s code.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sei_sim::fuzz::case::{Op, UpdateStrategy};
use sei_sim::fuzz::{self, Bounds, FuzzCase, FuzzConfig};
use sei_sim::scenario;
use sei_sim::scenario::format::{Fault, RevokedPermission};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn a_bounded_number_of_generated_runs_pass_every_oracle() {
    let mut config = FuzzConfig::new(6, 2026, &root());
    config.bounds = Bounds::new(3, 8);
    let mut reported = 0;
    let report = fuzz::fuzz(&config, |_| reported += 1);
    if let Some(failure) = report.failures.first() {
        panic!("{}\n{}\n--- minimal case ---\n{}", failure.case, failure.reason, failure.scenario_yaml);
    }
    assert_eq!(report.progress.cases, 6);
    assert_eq!(reported, 6, "progress is reported after every case");
    assert!(report.progress.simulated > Duration::from_secs(6 * 60), "each case runs minutes of simulated time");
    assert!(report.progress.invariant_checks > 0);
}

#[test]
fn a_failure_shrinks_to_a_scenario_file_that_replays_it_exactly() {
    // No deployment comes to rest within a second of its creation: every case fails the liveness oracle, so
    // shrinking must get close to the smallest case there is — one or two operations — and the file must fail
    // the same way.
    let mut config = FuzzConfig::new(3, 7, &root());
    config.bounds = Bounds::new(2, 6);
    config.settle_within = Duration::from_secs(1);
    config.max_shrink_iters = 400;
    // Bounded by attempts alone: a wall-time budget would make the result depend on the machine's load (on a busy
    // 2-core runner 60 s left three operations).
    config.max_shrink_time = Duration::from_secs(3600);
    let report = fuzz::fuzz(&config, |_| {});
    let [failure] = report.failures.as_slice() else {
        panic!("a one-second liveness bound fails, and the run stops at the first failure: {:?}", report.failures)
    };
    assert!(failure.reason.contains("liveness"), "{}", failure.reason);
    // Since the issue #22 operations, this seed's first failing case shrinks to one operation (a worker crash) but
    // stays on two replicas; 50 attempts no longer reached that, 400 do.
    assert!(failure.case.ops.len() <= 2, "shrunk: {}", failure.case);
    assert!(failure.scenario_yaml.starts_with("# Found by `sei-sim fuzz --seed 7`"), "{}", failure.scenario_yaml);

    let replayed = scenario::parse("written.yaml", &failure.scenario_yaml).expect("the written case parses");
    assert_eq!(replayed.seed, failure.case.seed, "the file carries the seed");
    let outcome = scenario::run(&replayed, None, &root());
    let replay_failure = outcome.failure.expect("the written case fails when replayed");
    assert!(replay_failure.contains("liveness"), "{replay_failure}");
    let again = scenario::run(&replayed, None, &root());
    assert_eq!(outcome.trace.text(), again.trace.text(), "the replay is deterministic");
}

#[test]
fn a_rollout_to_the_broken_release_fails_reported_with_and_without_faults() {
    // The generated way to fail a plan: BlueGreen entrants on a release that rejects their configuration fail
    // their init plans. Both runs must end with the rollout failed and reported, the same way.
    let config = FuzzConfig::new(1, 1, &root());
    let case = FuzzCase {
        seed: 11,
        strategy: UpdateStrategy::BlueGreen,
        replicas: 2,
        validators_switch_secs: 300,
        ops: vec![
            Op::Fault(Fault::OperatorCrash { after_write: Some(1), reconciling: None, until_healed: false }),
            Op::SetImage { release: 4 },
            Op::Wait { secs: 60 },
            Op::Fault(Fault::ApiConflicts { count: 3, rate: 0.0, every_other: false }),
        ],
    };
    assert!(case.expects_failed_rollout());
    judged_clean(&case, &config);
}

#[test]
fn a_crash_aimed_at_the_deployment_reconcile_lands_right_after_the_write_that_starts_a_rollout() {
    // The deployment at rest, the crash armed, then an edit: the first write of a deployment reconcile is the
    // one that detects the rollout. The operator must continue from whatever that write stored (a status that
    // advanced the baseline hash before the rollout was written would leave the nodes on the old image).
    let config = FuzzConfig::new(1, 1, &root());
    let case = FuzzCase {
        seed: 13,
        strategy: UpdateStrategy::InPlace,
        replicas: 2,
        validators_switch_secs: 300,
        ops: vec![
            Op::Wait { secs: 120 },
            Op::Fault(Fault::OperatorCrash {
                after_write: Some(1),
                reconciling: Some("SeiNodeDeployment".into()),
                until_healed: false,
            }),
            Op::SetImage { release: 1 },
            Op::Wait { secs: 30 },
        ],
    };
    let render =
        fuzz::case::Render { perturbed: true, settle_within: Duration::from_secs(600), expect_end_state: None };
    let text = case.to_scenario_yaml("aimed", &render).expect("renders");
    assert!(text.contains("reconciling: SeiNodeDeployment"), "{text}");
    let outcome = scenario::run(&scenario::parse("aimed.yaml", &text).expect("parses"), None, &root());
    let trace = outcome.trace.text();
    // The edit, then the detecting reconcile's status write, and the crash right after it (before its event).
    let edit = trace.find("harness replace SeiNodeDeployment sei/fuzz").expect("the edit");
    let crash = trace.find("operator crashes right after this write (SeiNodeDeployment sei/fuzz)").expect("a crash");
    assert!(crash > edit && !trace[edit..crash].contains("write    operator replace-status SeiNode "), "{trace}");
    judged_clean(&case, &config);
}

/// Asserts that every oracle judges `case` clean, with the reason of the first failure otherwise.
fn judged_clean(case: &FuzzCase, config: &FuzzConfig) {
    if let Some(found) = fuzz::judge(case, config).failure {
        panic!("{}", found.reason);
    }
}

/// Replays a rendered case as the scenario runner does and asserts it passes.
fn run_clean(text: &str) -> scenario::Outcome {
    let written = scenario::parse("case.yaml", text).expect("a valid scenario");
    let outcome = scenario::run(&written, None, &root());
    assert!(outcome.failure.is_none(), "{:?}", outcome.failure);
    outcome
}

fn render(case: &FuzzCase, perturbed: bool) -> String {
    let render = fuzz::case::Render { perturbed, settle_within: Duration::from_secs(1800), expect_end_state: None };
    case.to_scenario_yaml("case", &render).expect("renders")
}

#[test]
fn a_hard_fork_run_left_on_the_pre_fork_release_never_sees_its_chain_pass_the_upgrade() {
    // fuzz-findings' last open finding (`sei-sim fuzz --cases 100 --seed 3`): a HardFork deployment scaled and
    // never forked, while the validators switched at 589 s — the fleet crash-looped at the upgrade, the user's
    // choice, and a node added by the scale-up never served. Such a run now keeps its chain below the upgrade.
    let never_forked = FuzzCase {
        seed: 9127774530931869248,
        strategy: UpdateStrategy::HardFork,
        replicas: 7,
        validators_switch_secs: 589,
        ops: vec![Op::Wait { secs: 206 }, Op::Wait { secs: 207 }, Op::Wait { secs: 47 }, Op::Scale { replicas: 8 }],
    };
    assert_eq!(never_forked.validators_switch(), None);
    assert!(!render(&never_forked, true).contains("validatorsSwitchAt"));
    judged_clean(&never_forked, &FuzzConfig::new(1, 3, &root()));
    // Forked at the end (a revert back to the pre-fork release is not): the validators switch as generated.
    let forked = FuzzCase { ops: vec![Op::SetImage { release: 0 }, Op::Wait { secs: 60 }], ..never_forked.clone() };
    assert_eq!(forked.validators_switch(), Some(589));
    let reverted = FuzzCase { ops: vec![Op::Revert { release: 0, after_secs: 10 }], ..never_forked.clone() };
    assert_eq!(reverted.final_image(), Some("sei:v6.3.0"));
    assert_eq!(reverted.validators_switch(), None);
    // A haltHeight typo is harmless only below the upgrade: that run's chain waits there too.
    let typo =
        FuzzCase { ops: vec![Op::HaltHeightTypo { release: 1, excess: 120, after_secs: 30 }], ..never_forked.clone() };
    assert_eq!(typo.validators_switch(), None);
    let text = render(&typo, false);
    let (wrong, fixed) = (text.find("haltHeight: 5120"), text.rfind("haltHeight: 5000"));
    assert!(wrong.is_some_and(|wrong| fixed.is_some_and(|fixed| fixed > wrong)), "{text}");
}

#[test]
fn a_hard_fork_deployment_reapplied_after_a_child_delete_makes_the_child_again_first() {
    // `sei-sim fuzz --cases 1500 --seed 777001 --max-replicas 8 --max-ops 24`, case 466: the only node of a forked
    // HardFork deployment deleted, then the deployment Retain-deleted and applied again at once. The new deployment
    // had no node to adopt and made one fresh on v6.4.0 from the pre-fork snapshot (height 4000): it panicked at
    // block 4001 ("binary updated before trigger") for the rest of the run, and the run never settled. Only the
    // old deployment's status knew the pre-fork binary to bootstrap with; a deployment made anew cannot, so the
    // generated run now lets the old one make the child again first.
    let case = FuzzCase {
        seed: 13685935052737314588,
        strategy: UpdateStrategy::HardFork,
        replicas: 1,
        validators_switch_secs: 696,
        ops: vec![
            Op::SetImage { release: 0 },
            Op::Wait { secs: 266 },
            Op::DeleteFailedChild { index: 0 },
            Op::ReapplyAfterRetainDelete,
        ],
    };
    for perturbed in [true, false] {
        let text = render(&case, perturbed);
        let deleted = text.find("deleteChild:").expect("the child delete");
        let settled = text[deleted..].find("settle: 30m").map(|at| at + deleted);
        let retained = text.find("spec.deletionPolicy: Retain").expect("the Retain edit");
        assert!(settled.is_some_and(|settled| settled < retained), "{text}");
    }
    judged_clean(&case, &FuzzConfig::new(1, 777001, &root()));
    // `--seed 9797001`, case 2447: the child deleted and the deployment re-applied before the fork, then the fork
    // edit — which, with no node to adopt, landed before the new deployment's first reconcile and became its
    // baseline: the child was made fresh on v6.4.0 from the pre-fork snapshot. The child is made again first here
    // too.
    let before_the_fork = FuzzCase {
        seed: 9548772345867724156,
        ops: vec![Op::DeleteFailedChild { index: 0 }, Op::ReapplyAfterRetainDelete, Op::SetImage { release: 0 }],
        ..case.clone()
    };
    let text = render(&before_the_fork, false);
    let deleted = text.find("deleteChild:").expect("the child delete");
    let retained = text.find("spec.deletionPolicy: Retain").expect("the Retain edit");
    assert!(text[deleted..retained].contains("settle: 30m"), "{text}");
    judged_clean(&before_the_fork, &FuzzConfig::new(1, 9797001, &root()));
    // A run that does not cross the upgrade still re-applies right after the delete.
    let patch = FuzzCase { strategy: UpdateStrategy::BlueGreen, ..case.clone() };
    let text = render(&patch, false);
    let deleted = text.find("deleteChild:").expect("the child delete");
    assert!(!text[deleted..].contains("settle: 30m"), "{text}");
}

#[test]
fn the_issue_14_operations_render_as_steps_the_scenario_runner_takes() {
    let case = FuzzCase {
        seed: 21,
        strategy: UpdateStrategy::BlueGreen,
        replicas: 3,
        validators_switch_secs: 300,
        ops: vec![
            Op::Revert { release: 0, after_secs: 10 },
            Op::DeleteChildMidRollout { release: 2, after_secs: 30, index: 1 },
            Op::DeleteFailedChild { index: 0 },
            Op::EditThenStaleReads { release: 1, after_secs: 20, versions: 2 },
            Op::ReapplyAfterRetainDelete,
        ],
    };
    let (perturbed, calm) = (render(&case, true), render(&case, false));
    for text in [&perturbed, &calm] {
        scenario::parse("case.yaml", text).expect("a valid scenario");
        // A→B→A: the revert names the release it left (v6.3.0, the initial one) again.
        let first_edit = text.find("spec.template.spec.image: sei:v6.3.1").expect("the edit away");
        assert!(text[first_edit..].contains("spec.template.spec.image: sei:v6.3.0"), "{text}");
        assert!(text.contains("deleteChild:") && text.contains("failed: true"), "{text}");
        assert!(text.contains("spec.deletionPolicy: Retain") && text.matches("apply:").count() == 2, "{text}");
    }
    assert!(perturbed.contains("versions: 2") && !calm.contains("staleReads"), "{calm}");
    // On by default since the adoption of retained nodes holds under the fuzzer (issue #14).
    assert!(FuzzConfig::new(1, 1, &root()).bounds.retain_reapply);
}

#[test]
fn a_run_whose_failed_rollout_was_delayed_past_an_earlier_edit_ends_right_on_either_release() {
    // Issue #14 item 10, seed 7: a rollout to v6.3.1 delayed past the edit to the strict release ends the
    // faulted run on v6.3.0 and the unfaulted one on v6.3.1 — both right for their timing.
    let case = FuzzCase {
        seed: 7,
        strategy: UpdateStrategy::BlueGreen,
        replicas: 2,
        validators_switch_secs: 300,
        ops: vec![Op::SetImage { release: 1 }, Op::Wait { secs: 30 }, Op::SetImage { release: 4 }],
    };
    assert_eq!(case.releases_a_failed_run_may_end_on(), vec!["sei:v6.3.0", "sei:v6.3.1"]);
    let end = |release: &str, hash: &str| {
        vec![
            format!("SeiNode sei/fuzz-#0: image={release} phase=Some(Running) currentImage={release} owner=fuzz"),
            format!(
                "SeiNodeDeployment sei/fuzz: phase=Some(Degraded) templateHash={hash} failedTargetHash=f \
                 rollout=false conditions=[RolloutInProgress=False]"
            ),
        ]
    };
    let (on_old, on_new) = (end("sei:v6.3.0", "a"), end("sei:v6.3.1", "b"));
    let judged = |lines: &[String]| fuzz::judged_end_state(&case, lines).expect("an allowed release");
    assert_eq!(fuzz::differential(&judged(&on_old), &judged(&on_new)), None);
    let never_named = end("sei:v6.3.2", "c");
    let wrong = fuzz::judged_end_state(&case, &never_named).expect_err("v6.3.2 was never named");
    assert!(wrong.contains("never named"), "{wrong}");
}

#[test]
fn nodes_a_retain_delete_left_after_a_failed_rollout_end_right_on_either_release() {
    // `sei-sim fuzz --cases 1500 --seed 4242001 --max-replicas 16 --max-ops 32`, case 1257: an edit back to v6.3.0
    // after a finished rollout to v6.3.1, then the strict release, then a Retain delete at rest. Without faults the
    // rollout back finished before the strict edit and the retained nodes ran v6.3.0; 17 s of 503s delayed it past
    // that edit, it was superseded, and they ran v6.3.1 — both right for their timing, as for a deployment left on
    // the failed template, but the oracle only knew the deployment's own nodes and compared the retained ones as
    // they were.
    let case = FuzzCase {
        seed: 2010866419499154967,
        strategy: UpdateStrategy::BlueGreen,
        replicas: 2,
        validators_switch_secs: 300,
        ops: vec![
            Op::LongWait { secs: 600 },
            Op::DeleteChildMidRollout { release: 0, after_secs: 72, index: 0 },
            Op::Fault(Fault::ApiRefusals { duration: Duration::from_secs(17), status: 503, retry_after: None }),
            Op::DeleteChildMidRollout { release: 0, after_secs: 71, index: 0 },
            Op::SetImage { release: 4 },
            Op::RetainDelete,
        ],
    };
    assert!(case.retains_a_failed_rollout() && !case.expects_failed_rollout());
    assert_eq!(case.releases_a_failed_run_may_end_on(), vec!["sei:v6.3.0", "sei:v6.3.1"]);
    let retained = |release: &str| {
        (0..2)
            .map(|n| {
                format!("SeiNode sei/fuzz-#{n}: image={release} phase=Some(Running) currentImage={release} owner=")
            })
            .collect::<Vec<_>>()
    };
    let judged = |lines: &[String]| fuzz::judged_end_state(&case, lines).expect("an allowed release");
    assert_eq!(fuzz::differential(&judged(&retained("sei:v6.3.0")), &judged(&retained("sei:v6.3.1"))), None);
    let wrong = fuzz::judged_end_state(&case, &retained("sei:v6.3.2")).expect_err("v6.3.2 was never named");
    assert!(wrong.contains("never named"), "{wrong}");
    judged_clean(&case, &FuzzConfig::new(1, 4242001, &root()));
}

#[test]
fn the_issue_22_operations_render_as_steps_the_scenario_runner_takes() {
    use sei_sim::fuzz::case::AimedAt;
    let case = FuzzCase {
        seed: 22,
        strategy: UpdateStrategy::BlueGreen,
        replicas: 2,
        validators_switch_secs: 300,
        ops: vec![
            Op::AimedEdit { release: 1, at: AimedAt::TaskCompleted(2), nth: 1, revert: false },
            Op::AimedEdit { release: 0, at: AimedAt::ServiceWrite, nth: 2, revert: true },
            Op::LongWait { secs: 700 },
            Op::RetainDelete,
        ],
    };
    let (perturbed, calm) = (render(&case, true), render(&case, false));
    for text in [&perturbed, &calm] {
        scenario::parse("case.yaml", text).expect("a valid scenario");
        // v6.3.0 → v6.3.1, superseded by v6.3.2 right after the status write that completes the caught-up wait.
        assert!(text.contains("taskCompleted: await-nodes-caught-up") && text.contains("write: service"), "{text}");
        assert!(text.contains("wait: 700s"), "{text}");
        // The Retain delete waits for rest, then deletes: its nodes must outlive the deployment.
        let settle = text.find("settle: 30m").expect("at rest first");
        assert!(text[settle..].contains("spec.deletionPolicy: Retain"), "{text}");
    }
    assert_eq!(case.retained_nodes(), Some(2));
    assert!(case.final_image().is_none(), "deleted");
    // The Retain oracle: the unperturbed run must end with the two nodes running without an owner.
    let kept = "SeiNode sei/fuzz-#0: image=sei:v6.3.0 phase=Some(Running) currentImage=sei:v6.3.0 owner=";
    let lost = fuzz::expected_outcome(&case, &[kept.to_owned()]).expect("one node is missing");
    assert!(lost.contains("Retain"), "{lost}");
    assert_eq!(fuzz::expected_outcome(&case, &[kept.to_owned(), kept.replace("#0", "#1")]), None);
}

#[test]
fn the_issue_15_faults_render_and_a_leader_change_mid_rollout_passes_every_oracle() {
    let case = FuzzCase {
        seed: 15,
        strategy: UpdateStrategy::InPlace,
        replicas: 2,
        validators_switch_secs: 300,
        ops: vec![
            Op::Fault(Fault::PodDelete { node: "fuzz-0".into(), bootstrap: false }),
            Op::Fault(Fault::LostResponses { count: 3, rate: 0.0, gateway_timeout: true }),
            Op::Fault(Fault::ApiRefusals {
                duration: Duration::from_secs(20),
                status: 429,
                retry_after: Some(Duration::from_secs(2)),
            }),
            Op::Fault(Fault::RevokePermission(RevokedPermission {
                group: String::new(),
                resource: "persistentvolumeclaims".into(),
                verb: "update".into(),
            })),
            Op::SetImage { release: 1 },
            Op::Wait { secs: 20 },
            Op::Fault(Fault::ReplicaPause { replica: None, duration: Duration::from_secs(60) }),
            Op::Wait { secs: 60 },
        ],
    };
    let (perturbed, calm) = (render(&case, true), render(&case, false));
    for text in [&perturbed, &calm] {
        scenario::parse("case.yaml", text).expect("a valid scenario");
    }
    for fault in ["podDelete:", "lostResponses:", "apiRefusals:", "revokePermission:", "replicaPause:"] {
        assert!(perturbed.contains(fault) && !calm.contains(fault), "{fault}: {perturbed}");
    }
    assert!(perturbed.contains("operatorReplicas: 2") && !calm.contains("operatorReplicas"), "{perturbed}");
    judged_clean(&case, &FuzzConfig::new(1, 1, &root()));
}

#[test]
fn sidecar_tasks_failing_within_their_retries_only_delay_a_run() {
    // Generated `taskFailure` faults: a plan retries a sidecar task 3 times, so a run injects at most 3 failures
    // of one task type (the second config-apply fault is cut to the one failure left, the third is not written)
    // and must end as it does without them. A failure and an edit (`FailTasksThenEdit`) meet the rollout's
    // entrants.
    let case = FuzzCase {
        seed: 31,
        strategy: UpdateStrategy::BlueGreen,
        replicas: 2,
        validators_switch_secs: 300,
        ops: vec![
            Op::Fault(Fault::TaskFailure { task: "config-apply".into(), node: None, times: 2 }),
            Op::Fault(Fault::TaskFailure { task: "config-apply".into(), node: Some("fuzz-1".into()), times: 3 }),
            Op::Fault(Fault::TaskFailure { task: "mark-ready".into(), node: None, times: 3 }),
            Op::SetImage { release: 1 },
            Op::Wait { secs: 300 },
            Op::Fault(Fault::TaskFailure { task: "config-apply".into(), node: None, times: 1 }),
            // config-validate, on whichever entrant runs it first.
            Op::FailTasksThenEdit { task: 3, ordinal: None, times: 3, release: 0, after_secs: 300 },
        ],
    };
    let (perturbed, calm) = (render(&case, true), render(&case, false));
    assert_eq!(perturbed.matches("taskFailure").count(), 4, "{perturbed}");
    assert_eq!(calm.matches("taskFailure").count(), 0, "{calm}");
    assert_eq!(calm.matches("spec.template.spec.image").count(), 2, "the edits stay: {calm}");
    let outcome = run_clean(&perturbed);
    let trace = outcome.trace.text();
    // Every failure the run kept fired, and no more.
    for task in ["config-apply", "mark-ready", "config-validate"] {
        assert_eq!(trace.matches(&format!("failed: scripted failure of {task}")).count(), 3, "{task}: {trace}");
    }
    judged_clean(&case, &FuzzConfig::new(1, 1, &root()));
}

#[test]
fn a_neighbour_deployment_rolls_out_beside_the_run_under_its_faults_and_ends_as_without_them() {
    // A second deployment applied mid-run and edited: its rollout overlaps the run's, a sidecar task of either
    // fails (the fault names no node), a pod of the run's is deleted, reads lag, and both must end as they do
    // without the faults. A second neighbour is
    // not written: one a run.
    let neighbour = Op::Neighbour { replicas: 2, blue_green: true, release: 0, after_secs: 20 };
    let case = FuzzCase {
        seed: 41,
        strategy: UpdateStrategy::InPlace,
        replicas: 2,
        validators_switch_secs: 300,
        ops: vec![
            Op::SetImage { release: 2 },
            neighbour.clone(),
            Op::Fault(Fault::TaskFailure { task: "mark-ready".into(), node: None, times: 2 }),
            Op::Fault(Fault::PodDelete { node: "fuzz-0".into(), bootstrap: false }),
            Op::Wait { secs: 60 },
            Op::Fault(Fault::StaleReads { versions: 2 }),
            neighbour,
            Op::Wait { secs: 120 },
        ],
    };
    let (perturbed, calm) = (render(&case, true), render(&case, false));
    for text in [&perturbed, &calm] {
        assert_eq!(text.matches("name: neighbour").count(), 2, "one apply and one edit: {text}");
        let edit = text.rfind("name: neighbour").unwrap_or(0);
        assert!(text[edit..].contains("spec.template.spec.image: sei:v6.3.1"), "{text}");
    }
    let outcome = run_clean(&perturbed);
    let end = outcome.end_state.join("\n");
    for line in [
        "SeiNode sei/neighbour-#0: image=sei:v6.3.1 phase=Some(Running) currentImage=sei:v6.3.1 owner=neighbour",
        "SeiNode sei/neighbour-#1: image=sei:v6.3.1 phase=Some(Running) currentImage=sei:v6.3.1 owner=neighbour",
        "SeiNode sei/fuzz-#0: image=sei:v6.3.2 phase=Some(Running) currentImage=sei:v6.3.2 owner=fuzz",
    ] {
        assert!(end.contains(line), "{line} in\n{end}");
    }
    judged_clean(&case, &FuzzConfig::new(1, 1, &root()));
}

#[test]
fn a_sidecar_upgrade_rolls_the_fleet_out_under_faults_and_is_not_generated_beside_the_broken_release() {
    // A seictl upgrade is a rollout of its own: under BlueGreen its entrants run the new sidecar, and with a
    // sidecar restarted and reads lagging the run ends as it does without them.
    let case = FuzzCase {
        seed: 43,
        strategy: UpdateStrategy::BlueGreen,
        replicas: 2,
        validators_switch_secs: 300,
        ops: vec![
            Op::SetSidecar { release: 0 },
            Op::Wait { secs: 30 },
            Op::Fault(Fault::SidecarRestart { node: "fuzz-1".into() }),
            Op::Fault(Fault::StaleReads { versions: 1 }),
            Op::Wait { secs: 200 },
        ],
    };
    let perturbed = render(&case, true);
    assert!(perturbed.contains("spec.template.spec.sidecar.image: seictl:v0.9.1"), "the next release: {perturbed}");
    let outcome = run_clean(&perturbed);
    let sets: Vec<&String> = outcome.end_state.iter().filter(|line| line.starts_with("StatefulSet ")).collect();
    assert_eq!(sets.len(), 2, "{:?}", outcome.end_state);
    assert!(sets.iter().all(|line| line.contains("seictl:v0.9.1") && !line.contains("seictl:v0.9.0")), "{sets:?}");
    judged_clean(&case, &FuzzConfig::new(1, 1, &root()));

    // Beside an edit to the broken release (BlueGreen's fifth), no sidecar edit is written.
    let broken = FuzzCase { ops: vec![Op::SetSidecar { release: 1 }, Op::SetImage { release: 4 }], ..case };
    assert!(!render(&broken, true).contains("sidecar.image"), "{}", render(&broken, true));
}

#[test]
fn grown_storage_expands_the_claims_in_place_under_faults_and_entrants_get_the_new_size() {
    // Storage is not a rollout field: the claims of the running nodes are expanded in place once the operator may
    // update claims again (a revoked permission: it waits, it does not fail), and reads lag; a BlueGreen rollout's
    // entrants, made after the edits, are made with the new size. Both end as they do without the faults.
    let case = FuzzCase {
        seed: 47,
        strategy: UpdateStrategy::BlueGreen,
        replicas: 2,
        validators_switch_secs: 300,
        ops: vec![
            Op::Wait { secs: 120 },
            Op::Fault(Fault::RevokePermission(RevokedPermission {
                group: String::new(),
                resource: "persistentvolumeclaims".into(),
                verb: "update".into(),
            })),
            Op::GrowStorage { by: 2 },
            Op::Wait { secs: 60 },
            Op::Heal,
            Op::GrowStorage { by: 1 },
            Op::Fault(Fault::StaleReads { versions: 2 }),
            Op::SetImage { release: 1 },
            Op::Wait { secs: 240 },
        ],
    };
    let perturbed = render(&case, true);
    assert!(perturbed.contains("size: 2500Gi") && perturbed.contains("size: 2750Gi"), "{perturbed}");
    let outcome = run_clean(&perturbed);
    let claims: Vec<&String> =
        outcome.end_state.iter().filter(|line| line.starts_with("PersistentVolumeClaim ")).collect();
    assert_eq!(
        claims,
        [
            "PersistentVolumeClaim sei/data-fuzz-#0-0: requests=2750Gi",
            "PersistentVolumeClaim sei/data-fuzz-#1-0: requests=2750Gi"
        ],
        "{:?}",
        outcome.end_state
    );
    judged_clean(&case, &FuzzConfig::new(1, 1, &root()));
}
