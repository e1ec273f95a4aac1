//! The fuzzer from `cargo test`: a bounded number of generated runs (the CI budget; `sei-sim fuzz` runs longer),
//! and the path a failure takes — shrunk, written as a scenario file, replayed by `sei-sim run`'s code.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sei_sim::fuzz::case::{FaultOp, Op, UpdateStrategy};
use sei_sim::fuzz::{self, Bounds, FuzzCase, FuzzConfig};
use sei_sim::scenario;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn a_bounded_number_of_generated_runs_pass_every_oracle() {
    let mut config = FuzzConfig::new(6, 2026, &root());
    config.bounds = Bounds { max_replicas: 3, max_ops: 8 };
    let mut reported = 0;
    let report = fuzz::fuzz(&config, |_| reported += 1);
    if let Some(failure) = &report.failure {
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
    // shrinking must get close to the smallest case there is — one replica, one or two operations — and the file
    // must fail the same way.
    let mut config = FuzzConfig::new(3, 7, &root());
    config.bounds = Bounds { max_replicas: 2, max_ops: 6 };
    config.settle_within = Duration::from_secs(1);
    config.max_shrink_iters = 50;
    let report = fuzz::fuzz(&config, |_| {});
    let failure = report.failure.expect("a one-second liveness bound fails");
    assert!(failure.reason.contains("liveness"), "{}", failure.reason);
    assert!(failure.case.ops.len() <= 2 && failure.case.replicas == 1, "shrunk: {}", failure.case);
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
            Op::Fault(FaultOp::OperatorCrash { after_write: Some(1) }),
            Op::SetImage { release: 4 },
            Op::Wait { secs: 60 },
            Op::Fault(FaultOp::ApiConflicts { count: 3 }),
        ],
    };
    assert!(case.expects_failed_rollout());
    let verdict = fuzz::judge(&case, &config);
    if let Some(found) = verdict.failure {
        panic!("{}", found.reason);
    }
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
            Op::Fault(FaultOp::DeploymentReconcileCrash),
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
    let verdict = fuzz::judge(&case, &config);
    if let Some(found) = verdict.failure {
        panic!("{}", found.reason);
    }
}
