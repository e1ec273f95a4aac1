//! Fuzzing rollout interleavings: proptest generates whole runs ([`case`]) — a deployment, user operations and
//! faults between waits —, each is replayed as a scenario file with the operator's real reconcilers, and three
//! oracles judge it:
//!
//! 1. safety: every invariant of docs/design.md §7 after every simulated step (the world checks them);
//! 2. liveness: after the last operation the faults are healed and, with the spec held fixed, every deployment
//!    settles within a bound — rollout complete on the latest spec, or explicitly failed;
//! 3. differential: the same operations without the faults end with the same objects and the same settled
//!    status ([`crate::scenario::end_state`]) — and that unperturbed run ends as the case's last edit says
//!    ([`expected_outcome`]): its rollout failed and reported so when it names the broken release, no rollout
//!    failed otherwise (every other target is one the chain can run).
//!
//! A failure is shrunk by proptest to a minimal case and written out as a scenario file (its seed inside) that
//! `sei-sim run` replays exactly: the fuzzer runs the very text it writes.
//!
//! A campaign is its settings ([`FuzzConfig`]): the cases are drawn in one stream from the seed, case 0, 1, 2, ...
//! A process judges the cases of its [`Shard`] (all of them by default); with `keep_going` it judges every one of
//! them whatever fails, so N shards together judge exactly the cases, and find exactly the failures, that one
//! process would ([`summary`] merges what they report). Within a process, `jobs` threads judge the shard's cases
//! side by side ([`fuzz`]), and the report is the one a single thread makes.

pub mod case;
pub mod summary;

use std::cell::{Cell, RefCell};
use std::fmt;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use proptest::prelude::RngExt;
use proptest::strategy::Strategy;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};

pub use case::{Bounds, FuzzCase, Render};

use crate::scenario;

/// What to fuzz and how hard.
#[derive(Clone, Debug)]
pub struct FuzzConfig {
    pub cases: u32,
    /// Seeds the generator: the same seed generates the same cases.
    pub seed: u64,
    pub bounds: Bounds,
    /// The liveness bound after the last operation.
    pub settle_within: Duration,
    /// Shrinking stops after this many attempts (each replays a case twice)...
    pub max_shrink_iters: u32,
    /// ... or after this much wall time, whichever comes first. Wall time is read by proptest's shrinking loop,
    /// outside the simulated world: it decides only how many candidate cases are tried, never what a simulated
    /// run does — each replay is still a pure function of its case.
    pub max_shrink_time: Duration,
    /// The repository root: manifests and fixtures are read relative to it.
    pub root: PathBuf,
    /// Which of the campaign's cases this process judges.
    pub shard: Shard,
    /// Judge every case of the shard, each failure shrunk and reported, instead of stopping at the first failure.
    pub keep_going: bool,
    /// Threads judging the shard's cases at once. The report does not depend on it: each case is judged alone,
    /// and the figures and failures are put together in case order.
    pub jobs: NonZeroU32,
}

impl FuzzConfig {
    pub fn new(cases: u32, seed: u64, root: &Path) -> Self {
        FuzzConfig {
            cases,
            seed,
            bounds: Bounds::new(16, 12),
            settle_within: Duration::from_secs(30 * 60),
            max_shrink_iters: 200,
            max_shrink_time: Duration::from_secs(60),
            root: root.to_owned(),
            shard: Shard::WHOLE,
            keep_going: false,
            jobs: NonZeroU32::MIN,
        }
    }
}

/// One of `count` disjoint parts of a campaign: shard `index` judges the cases whose index (0-based, in the
/// order the seed generates them) is `index` modulo `count`. Every shard draws the whole stream, so case k is the
/// same case in every shard and in the unsharded run; drawing a case costs microseconds, judging it two runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// The whole campaign: shard 0 of 1.
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    pub fn new(index: u32, count: u32) -> Result<Self, ShardError> {
        if count == 0 {
            return Err(ShardError::NoShards);
        }
        if index >= count {
            return Err(ShardError::OutOfRange { index, count });
        }
        Ok(Shard { index, count })
    }

    /// Whether this shard judges the case with this index.
    pub fn judges(&self, case_index: u32) -> bool {
        case_index % self.count == self.index
    }

    /// How many of a campaign's `cases` this shard judges.
    pub fn share_of(&self, cases: u32) -> u32 {
        (0..cases).filter(|&k| self.judges(k)).count() as u32
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// A `--shard` that names no shard.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ShardError {
    #[error("a shard is written I/N (shard I of N, 0 <= I < N), not {0:?}")]
    Syntax(String),
    #[error("a campaign has at least one shard (N > 0)")]
    NoShards,
    #[error("shard {index} of {count} does not exist: shards are numbered 0 to {}", count - 1)]
    OutOfRange { index: u32, count: u32 },
}

impl FromStr for Shard {
    type Err = ShardError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let syntax = || ShardError::Syntax(text.to_owned());
        let (index, count) = text.split_once('/').ok_or_else(syntax)?;
        let index = index.trim().parse().map_err(|_| syntax())?;
        let count = count.trim().parse().map_err(|_| syntax())?;
        Shard::new(index, count)
    }
}

/// Progress the fuzzer reports after each replayed case.
#[derive(Clone, Copy, Debug, Default)]
pub struct Progress {
    /// Cases generated and judged (shrinking attempts not included).
    pub cases: u32,
    /// Shrinking attempts after the first failure.
    pub shrink_steps: u32,
    /// Simulated time of every run so far (both runs of a case that perturbs, the one run of a case that does not).
    pub simulated: Duration,
    /// Invariant checks made so far.
    pub invariant_checks: u64,
    /// Simulated time of the generated cases' own runs, shrinking attempts not included: unlike `simulated`, a
    /// pure function of the cases judged (how many attempts shrinking makes can depend on wall time).
    pub cases_simulated: Duration,
    /// Invariant checks of the generated cases' own runs, shrinking attempts not included.
    pub cases_invariant_checks: u64,
}

/// A failing case, shrunk, with the scenario text that reproduces it.
#[derive(Clone, Debug)]
pub struct Failure {
    /// Which case of the campaign failed (0-based, in generation order).
    pub case_index: u32,
    /// The minimal case.
    pub case: FuzzCase,
    /// Which oracle failed, and how.
    pub reason: String,
    /// The scenario file of the minimal case.
    pub scenario_yaml: String,
    /// The scenario that fails: the perturbed run, or the unperturbed one when only that fails.
    pub perturbed: bool,
}

/// How a fuzzing session ended.
#[derive(Debug)]
pub struct Report {
    pub progress: Progress,
    /// In case order; at most one unless `keep_going`.
    pub failures: Vec<Failure>,
    /// Threads the cases were judged on: `config.jobs`, or fewer when the shard has fewer cases.
    pub jobs: u32,
}

/// The campaign's cases in generation order, drawn as proptest's `TestRunner::run` draws them — each case from a
/// fresh RNG seeded from the previous one's — so a seed generates the same cases as in the fuzzer before sharding
/// (a test holds the two equal), and every shard draws the same case k.
struct CaseStream<S> {
    strategy: S,
    runner: TestRunner,
}

impl<S: Strategy> CaseStream<S> {
    fn new(strategy: S, config: Config, seed: u64) -> Self {
        CaseStream { strategy, runner: TestRunner::new_with_rng(config, rng(seed)) }
    }

    /// The next case, as a tree proptest can shrink.
    fn next_case(&mut self) -> Result<S::Tree, String> {
        // TestRunner::run: `self.rng.gen_get_seed()` (a ChaCha seed drawn from the RNG, which then restarts from it)
        // before each `new_tree`.
        let seed: [u8; 32] = self.runner.rng().random();
        *self.runner.rng() = TestRng::from_seed(RngAlgorithm::ChaCha, &seed);
        self.strategy.new_tree(&mut self.runner).map_err(|reason| reason.to_string())
    }
}

/// Fuzzes the cases of `config.shard` among `config.cases`; `on_progress` is called after every replayed case.
///
/// Two phases. The shard's cases are judged first — on `config.jobs` threads, each drawing the whole stream and
/// judging every `jobs`-th of the shard's cases — and then each failure is shrunk, in case order, on this thread.
/// The report is the one a single thread makes: without `keep_going` the run ends at the shard's first failing
/// case, and a case after it that another thread judged meanwhile is left out of every figure.
pub fn fuzz(config: &FuzzConfig, mut on_progress: impl FnMut(&Progress)) -> Report {
    let (jobs, judged) = judge_shard(config, &mut on_progress);
    let mut progress = Progress::default();
    for case in &judged {
        progress.add(case);
    }
    let progress = RefCell::new(progress);
    let on_progress = RefCell::new(&mut on_progress);
    let proptest_config = proptest_config(config);
    let mut stream = CaseStream::new(case::cases(config.bounds), proptest_config.clone(), config.seed);
    let mut drawn = 0;
    // Shrinking never draws from its runner's RNG: it walks the case's tree.
    let mut shrink_runner = TestRunner::new_with_rng(proptest_config, rng(config.seed));
    let mut failures = Vec::new();
    for case in &judged {
        let reason = match &case.outcome {
            Outcome::Passed => continue,
            Outcome::Aborted(reason) => {
                failures.push(aborted(case.case_index, reason));
                continue;
            }
            Outcome::Failed(reason) => reason,
        };
        // The same tree the judging thread held: the stream is drawn again, case for case, up to it.
        let tree = loop {
            let next = stream.next_case();
            drawn += 1;
            if drawn > case.case_index {
                break next;
            }
        };
        let tree = match tree {
            Ok(tree) => tree,
            Err(reason) => {
                failures.push(aborted(case.case_index, &reason));
                break;
            }
        };
        // The first call is the generated case, already judged; every later one is a shrinking attempt.
        let first_call = Cell::new(true);
        let result = shrink_runner.run_one(tree, |candidate| {
            if first_call.replace(false) {
                return Err(TestCaseError::fail(reason.clone()));
            }
            let verdict = judge(&candidate, config);
            {
                let mut progress = progress.borrow_mut();
                progress.shrink_steps += 1;
                progress.simulated += verdict.simulated;
                progress.invariant_checks += verdict.invariant_checks;
                (on_progress.borrow_mut())(&progress);
            }
            match verdict.failure {
                None => Ok(()),
                Some(found) => Err(TestCaseError::fail(found.reason)),
            }
        });
        match result {
            Ok(_) => {}
            Err(TestError::Fail(_, minimal)) => failures.push(shrunk_failure(case.case_index, minimal, config)),
            Err(TestError::Abort(reason)) => failures.push(aborted(case.case_index, &reason.to_string())),
        }
    }
    Report { progress: progress.into_inner(), failures, jobs }
}

/// proptest's settings for a campaign: its case count and shrinking budget.
fn proptest_config(config: &FuzzConfig) -> Config {
    Config {
        cases: config.cases,
        max_shrink_iters: config.max_shrink_iters,
        // Milliseconds; proptest takes 0 for no limit, so a zero budget is one millisecond.
        max_shrink_time: u32::try_from(config.max_shrink_time.as_millis()).unwrap_or(u32::MAX).max(1),
        failure_persistence: None,
        // Our cases are whole runs; a rejected one is not worth a retry budget.
        max_global_rejects: 0,
        ..Config::default()
    }
}

/// One generated case as the judging phase left it.
struct JudgedCase {
    case_index: u32,
    /// Its runs' simulated time and checks; `None` when judging it panicked or it could not be drawn.
    stats: Option<CaseStats>,
    outcome: Outcome,
}

struct CaseStats {
    simulated: Duration,
    invariant_checks: u64,
}

enum Outcome {
    Passed,
    /// An oracle failed (or the simulator panicked), for this reason.
    Failed(String),
    /// proptest gave up on the case: it could not be drawn or judged.
    Aborted(String),
}

impl Progress {
    /// Counts a judged case's runs; whether there were any (none when judging it panicked or it was not drawn).
    fn add(&mut self, case: &JudgedCase) -> bool {
        let Some(stats) = &case.stats else { return false };
        self.cases += 1;
        self.cases_simulated += stats.simulated;
        self.cases_invariant_checks += stats.invariant_checks;
        self.simulated += stats.simulated;
        self.invariant_checks += stats.invariant_checks;
        true
    }
}

impl Outcome {
    /// Whether the run stops at this case: always at an abort, at a failure unless `keep_going`.
    fn stops(&self, keep_going: bool) -> bool {
        match self {
            Outcome::Passed => false,
            Outcome::Failed(_) => !keep_going,
            Outcome::Aborted(_) => true,
        }
    }
}

/// The judging phase: every case of the shard up to where the run stops, in case order, reporting progress as
/// cases are judged (in the order they finish); and how many threads judged them.
fn judge_shard(config: &FuzzConfig, on_progress: &mut impl FnMut(&Progress)) -> (u32, Vec<JudgedCase>) {
    let jobs = config.jobs.get().min(config.shard.share_of(config.cases)).max(1);
    // The lowest case at which some thread stopped: no thread judges past it.
    let stopped_at = AtomicU32::new(u32::MAX);
    let mut running = Progress::default();
    let mut judged = Vec::new();
    let mut keep = |case: JudgedCase| {
        if running.add(&case) {
            on_progress(&running);
        }
        judged.push(case);
    };
    if jobs == 1 {
        judge_cases(config, (0, 1), &stopped_at, &mut keep);
    } else {
        std::thread::scope(|scope| {
            let (sender, receiver) = mpsc::channel();
            for job in 0..jobs {
                let (sender, stopped_at) = (sender.clone(), &stopped_at);
                scope.spawn(move || {
                    // A send fails only once the receiver is gone, and it outlives the scope's threads.
                    judge_cases(config, (job, jobs), stopped_at, &mut |case| drop(sender.send(case)));
                });
            }
            drop(sender);
            for case in receiver {
                keep(case);
            }
        });
    }
    judged.sort_by_key(|case| case.case_index);
    // Every thread draws the whole stream: a case that cannot be drawn is reported by each of them.
    judged.dedup_by_key(|case| case.case_index);
    if let Some(stop) = judged.iter().position(|case| case.outcome.stops(config.keep_going)) {
        judged.truncate(stop + 1);
    }
    (jobs, judged)
}

/// One judging thread, job `job` of `jobs`: draws the campaign's stream and judges the shard's cases that fall to
/// it (every `jobs`-th, in order), until the end or a case at which the run stops.
fn judge_cases(
    config: &FuzzConfig,
    (job, jobs): (u32, u32),
    stopped_at: &AtomicU32,
    keep: &mut impl FnMut(JudgedCase),
) {
    let proptest_config = Config { max_shrink_iters: 0, ..proptest_config(config) };
    let mut stream = CaseStream::new(case::cases(config.bounds), proptest_config.clone(), config.seed);
    // Judging runs the case through proptest (as shrinking will), which turns a panic of the simulator into the
    // case's failure; with no shrinking budget it stops there.
    let mut judge_runner = TestRunner::new_with_rng(proptest_config, rng(config.seed));
    for case_index in 0..config.cases {
        if case_index > stopped_at.load(Ordering::Relaxed) {
            return;
        }
        let tree = match stream.next_case() {
            Ok(tree) => tree,
            Err(reason) => {
                stopped_at.fetch_min(case_index, Ordering::Relaxed);
                keep(JudgedCase { case_index, stats: None, outcome: Outcome::Aborted(reason) });
                return;
            }
        };
        if !config.shard.judges(case_index) || (case_index / config.shard.count) % jobs != job {
            continue;
        }
        let stats = Cell::new(None);
        let result = judge_runner.run_one(tree, |case| {
            let verdict = judge(&case, config);
            stats.set(Some(CaseStats { simulated: verdict.simulated, invariant_checks: verdict.invariant_checks }));
            match verdict.failure {
                None => Ok(()),
                Some(found) => Err(TestCaseError::fail(found.reason)),
            }
        });
        let outcome = match result {
            Ok(_) => Outcome::Passed,
            Err(TestError::Fail(reason, _)) => Outcome::Failed(reason.message().to_owned()),
            Err(TestError::Abort(reason)) => Outcome::Aborted(reason.to_string()),
        };
        let stops = outcome.stops(config.keep_going);
        if stops {
            stopped_at.fetch_min(case_index, Ordering::Relaxed);
        }
        keep(JudgedCase { case_index, stats: stats.into_inner(), outcome });
        if stops {
            return;
        }
    }
}

/// The failure of a shrunk case: judged once more for its own reason and the scenario that shows it.
fn shrunk_failure(case_index: u32, case: FuzzCase, config: &FuzzConfig) -> Failure {
    let verdict = judge(&case, config);
    let found = verdict.failure.unwrap_or_else(|| Found {
        reason: "the minimal case passed when replayed".to_owned(),
        perturbed: true,
        expected_end_state: None,
    });
    let (reason, perturbed) = (found.reason, found.perturbed);
    let name = format!("fuzz-seed-{}-case-{case_index}", config.seed);
    let render = Render { perturbed, settle_within: config.settle_within, expect_end_state: found.expected_end_state };
    let scenario_yaml = case
        .to_scenario_yaml(&name, &render)
        .map(|yaml| with_header(&yaml, config, case_index, &reason))
        .unwrap_or_else(|e| format!("# the case could not be written as YAML: {e}\n# {case}\n"));
    Failure { case_index, case, reason, scenario_yaml, perturbed }
}

/// The failure that stops a run when proptest gives up on a case (it could not generate or judge it).
fn aborted(case_index: u32, reason: &str) -> Failure {
    Failure {
        case_index,
        case: FuzzCase {
            seed: 0,
            strategy: case::UpdateStrategy::InPlace,
            replicas: 0,
            validators_switch_secs: 0,
            ops: Vec::new(),
        },
        reason: format!("the fuzzer aborted: {reason}"),
        scenario_yaml: String::new(),
        perturbed: true,
    }
}

/// The oracles' verdict on one case.
pub struct Verdict {
    pub failure: Option<Found>,
    pub simulated: Duration,
    pub invariant_checks: u64,
}

/// What an oracle found.
pub struct Found {
    pub reason: String,
    /// Whether the run with faults shows it (false: the same operations fail even without faults).
    pub perturbed: bool,
    /// For a differential failure: the end state of the run without faults, which the run with them missed.
    pub expected_end_state: Option<Vec<String>>,
}

/// Runs a case with its faults and without, and applies the three oracles.
pub fn judge(case: &FuzzCase, config: &FuzzConfig) -> Verdict {
    let mut verdict = Verdict { failure: None, simulated: Duration::ZERO, invariant_checks: 0 };
    if let Err(found) = apply_oracles(case, config, &mut verdict) {
        verdict.failure = Some(found);
    }
    verdict
}

/// [`judge`]'s runs and oracles, adding each run's simulated time and checks to `verdict`; the first failure.
fn apply_oracles(case: &FuzzCase, config: &FuzzConfig, verdict: &mut Verdict) -> Result<(), Found> {
    let found = |perturbed: bool| move |reason: String| Found { reason, perturbed, expected_end_state: None };
    let perturbed_text = scenario_text(case, config, true).map_err(found(true))?;
    let perturbed = replay(&perturbed_text, config).map_err(found(true))?;
    verdict.simulated += perturbed.simulated;
    verdict.invariant_checks += perturbed.invariant_checks;
    if let Some(failure) = &perturbed.failure {
        return Err(found(true)(format!("{failure}\n--- trace tail ---\n{}", perturbed.trace.tail(30))));
    }
    let calm_text = scenario_text(case, config, false).map_err(found(false))?;
    // The same scenario text is the same run (same seed, same trace): a case with nothing to perturb
    // ([`FuzzCase::perturbs`]) is not run a second time to be compared with itself.
    let calm_run;
    let calm = if calm_text == perturbed_text {
        &perturbed
    } else {
        calm_run = replay(&calm_text, config).map_err(found(false))?;
        verdict.simulated += calm_run.simulated;
        verdict.invariant_checks += calm_run.invariant_checks;
        &calm_run
    };
    if let Some(failure) = &calm.failure {
        return Err(found(false)(format!("without faults: {failure}\n--- trace tail ---\n{}", calm.trace.tail(30))));
    }
    if let Some(wrong) = expected_outcome(case, &calm.end_state) {
        return Err(found(false)(wrong));
    }
    let perturbed_end = judged_end_state(case, &perturbed.end_state).map_err(found(true))?;
    let calm_end = judged_end_state(case, &calm.end_state).map_err(found(false))?;
    match differential(&perturbed_end, &calm_end) {
        Some(difference) => Err(Found {
            reason: format!("differential: {difference}"),
            perturbed: true,
            expected_end_state: Some(calm.end_state.clone()),
        }),
        None => Ok(()),
    }
}

/// Whether an end-state line is a deployment that names a failed rollout target.
fn failed_rollout(line: &str) -> bool {
    line.starts_with("SeiNodeDeployment ") && !line.contains("failedTargetHash= ")
}

/// What is wrong with how the unperturbed run ended, given the case's last edit, if anything. A rollout to the
/// broken release must end failed and say so — no rollout in progress, `RolloutInProgress` False, phase Degraded
/// or Failed, the target remembered; any other target is one the chain can run, and no rollout may fail.
pub fn expected_outcome(case: &FuzzCase, end_state: &[String]) -> Option<String> {
    // A Retain delete leaves every node of the deployment, at rest when deleted, running on without an owner.
    if let Some(replicas) = case.retained_nodes() {
        let kept = end_state.iter().filter(|line| line.starts_with("SeiNode ") && line.ends_with(" owner=")).count();
        if kept != replicas as usize {
            return Some(format!(
                "a Retain delete of the deployment at rest with {replicas} replica(s) must leave them running                  without an owner; the end state holds {kept} such node(s)"
            ));
        }
    }
    let deployment = end_state.iter().find(|line| line.starts_with("SeiNodeDeployment ") && of_the_run(line));
    if !case.expects_failed_rollout() {
        let failed = end_state.iter().find(|line| failed_rollout(line))?;
        return Some(format!("a rollout failed without any fault: {failed}"));
    }
    let Some(line) = deployment else {
        return Some(format!("the rollout to {} should have failed, but the deployment is gone", case::BROKEN_RELEASE));
    };
    let reported = failed_rollout(line)
        && line.contains(" rollout=false ")
        && line.contains("RolloutInProgress=False")
        && (line.contains("phase=Some(Degraded)") || line.contains("phase=Some(Failed)"));
    if reported {
        None
    } else {
        Some(format!(
            "the rollout to {} must end failed and reported (no rollout, RolloutInProgress False, Degraded or \
             Failed, the failed target named): {line}",
            case::BROKEN_RELEASE
        ))
    }
}

/// The end state as the differential oracle compares it: as it is, except in a run whose last edit names the
/// broken release, or whose `Retain` delete left its nodes while the template named it. There the fleet (the
/// deployment's, or the nodes left without an owner) may stay on any good release the template named before
/// ([`FuzzCase::releases_a_failed_run_may_end_on`]) — which one depends on whether an earlier rollout finished
/// before the failing edit, and each is right for its timing — so that release (and the `templateHash` of the
/// baseline it makes) is written as a placeholder, once it is checked to be one of them and the fleet's only one.
pub fn judged_end_state(case: &FuzzCase, end_state: &[String]) -> Result<Vec<String>, String> {
    let owner = if case.expects_failed_rollout() {
        case::DEPLOYMENT
    } else if case.retains_a_failed_rollout() {
        ""
    } else {
        return Ok(end_state.to_vec());
    };
    let mut fleet: Vec<&str> = end_state
        .iter()
        .filter(|line| line.starts_with("SeiNode ") && line.ends_with(&format!(" owner={owner}")))
        .filter_map(|line| line.split(" image=").nth(1)?.split(' ').next())
        .collect();
    fleet.sort_unstable();
    fleet.dedup();
    let [release] = fleet.as_slice() else {
        // No fleet, or a mixed one: compared as it is, and the difference shows.
        return Ok(end_state.to_vec());
    };
    let allowed = case.releases_a_failed_run_may_end_on();
    if !allowed.contains(release) {
        return Err(format!(
            "the fleet ends on {release} after its rollout to {} failed, a release the template never named \
             before that edit (it may end on {allowed:?})",
            case::BROKEN_RELEASE
        ));
    }
    let release = release.to_string();
    Ok(end_state
        .iter()
        .map(|line| {
            // A neighbour's objects are compared as they are: its rollout never fails, and its release is its own.
            if !of_the_run(line) {
                return line.clone();
            }
            let line = line.replace(&release, "<the release before the failed edit>");
            match line.split_once(" templateHash=") {
                Some((head, tail)) => {
                    let rest = tail.split_once(' ').map_or("", |(_, rest)| rest);
                    format!("{head} templateHash=<its hash> {rest}")
                }
                None => line,
            }
        })
        .collect())
}

/// Whether an end-state line is an object of the run's own deployment (it, its nodes — retained ones too, which
/// keep their names — and what is named after them), not of an [`case::Op::Neighbour`]'s.
fn of_the_run(line: &str) -> bool {
    line.split_once(' ')
        .is_some_and(|(_, object)| object.starts_with(&format!("{}/{}", case::NAMESPACE, case::DEPLOYMENT)))
}

/// Where the end states of the perturbed and the unperturbed run differ, if they do.
pub fn differential(perturbed: &[String], calm: &[String]) -> Option<String> {
    if perturbed == calm {
        return None;
    }
    let only_perturbed: Vec<&String> = perturbed.iter().filter(|line| !calm.contains(line)).collect();
    let only_calm: Vec<&String> = calm.iter().filter(|line| !perturbed.contains(line)).collect();
    let mut text = String::from("the run with faults ends differently from the same operations without them");
    for line in only_perturbed {
        text += &format!("\n  with faults only:    {line}");
    }
    for line in only_calm {
        text += &format!("\n  without faults only: {line}");
    }
    Some(text)
}

/// The scenario file text of `case`, perturbed or not.
fn scenario_text(case: &FuzzCase, config: &FuzzConfig, perturbed: bool) -> Result<String, String> {
    let render = Render { perturbed, settle_within: config.settle_within, expect_end_state: None };
    case.to_scenario_yaml("fuzz", &render).map_err(|e| format!("the case cannot be written: {e}"))
}

fn replay(yaml: &str, config: &FuzzConfig) -> Result<scenario::Outcome, String> {
    // Parsed back from its own text: the run is exactly what a written-out failure replays.
    let scenario = scenario::parse("fuzz case", yaml).map_err(|e| format!("the generated scenario is invalid: {e}"))?;
    Ok(scenario::run(&scenario, None, &config.root))
}

fn with_header(yaml: &str, config: &FuzzConfig, case_index: u32, reason: &str) -> String {
    let mut header = format!(
        "# Found by `sei-sim fuzz --seed {}` (case {case_index}) and shrunk to a minimal case. Replay it exactly:\n\
         #   cargo run --release -p sei-sim -- run <this file>\n# What failed:\n",
        config.seed
    );
    for line in reason.lines().take(12) {
        header += &format!("#   {line}\n");
    }
    header + yaml
}

/// The generator's RNG from a 64-bit seed.
fn rng(seed: u64) -> TestRng {
    let mut bytes = [0u8; 32];
    for (index, chunk) in bytes.chunks_mut(8).enumerate() {
        let word = seed.rotate_left(u32::try_from(index * 16).unwrap_or(0)) ^ (index as u64);
        chunk.copy_from_slice(&word.to_le_bytes());
    }
    TestRng::from_seed(RngAlgorithm::ChaCha, &bytes)
}

#[cfg(test)]
mod tests {
    use proptest::strategy::ValueTree;

    use super::*;

    fn lines(text: &[&str]) -> Vec<String> {
        text.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn the_case_stream_draws_the_cases_proptests_runner_draws() {
        // The stream a seed generated before sharding, case for case: recorded findings stay reproducible.
        let config = Config { cases: 40, failure_persistence: None, ..Config::default() };
        let bounds = Bounds::new(16, 12);
        let seen = RefCell::new(Vec::new());
        let mut runner = TestRunner::new_with_rng(config.clone(), rng(5));
        let run = runner.run(&case::cases(bounds), |case| {
            seen.borrow_mut().push(case);
            Ok(())
        });
        assert!(run.is_ok(), "{run:?}");
        let mut stream = CaseStream::new(case::cases(bounds), config, 5);
        let drawn: Vec<FuzzCase> = (0..40).map(|_| stream.next_case().expect("a case").current()).collect();
        assert_eq!(seen.into_inner(), drawn);
    }

    #[test]
    fn a_shard_is_written_i_of_n_and_the_shards_split_the_cases() {
        assert_eq!("2/5".parse(), Ok(Shard { index: 2, count: 5 }));
        assert_eq!("5/5".parse::<Shard>(), Err(ShardError::OutOfRange { index: 5, count: 5 }));
        assert_eq!("0/0".parse::<Shard>(), Err(ShardError::NoShards));
        assert_eq!("2".parse::<Shard>(), Err(ShardError::Syntax("2".into())));
        let shards: Vec<Shard> = (0..3).map(|index| Shard::new(index, 3).expect("a shard")).collect();
        for case_index in 0..10 {
            assert_eq!(shards.iter().filter(|shard| shard.judges(case_index)).count(), 1, "case {case_index}");
        }
        assert_eq!(shards.iter().map(|shard| shard.share_of(10)).collect::<Vec<_>>(), [4, 3, 3]);
    }

    #[test]
    fn the_differential_oracle_names_what_only_one_run_holds() {
        let calm = lines(&["SeiNode sei/a: image=x", "Service sei/a: selector=y"]);
        assert_eq!(differential(&calm, &calm), None);
        let perturbed = lines(&["SeiNode sei/a: image=x", "StatefulSet sei/b: images=x"]);
        let text = differential(&perturbed, &calm).expect("they differ");
        assert!(text.contains("with faults only:    StatefulSet sei/b"), "{text}");
        assert!(text.contains("without faults only: Service sei/a"), "{text}");
        assert!(!text.contains("SeiNode sei/a"), "lines both hold are not reported: {text}");
    }

    fn bluegreen(ops: Vec<case::Op>) -> FuzzCase {
        FuzzCase { seed: 3, strategy: case::UpdateStrategy::BlueGreen, replicas: 2, validators_switch_secs: 300, ops }
    }

    #[test]
    fn a_run_ending_on_the_broken_release_must_end_failed_and_say_so() {
        // BlueGreen releases: the three patch releases, then the missing one, then the broken one.
        let broken = bluegreen(vec![case::Op::SetImage { release: 1 }, case::Op::SetImage { release: 4 }]);
        assert!(broken.expects_failed_rollout());
        let failed = "SeiNodeDeployment sei/fuzz: phase=Some(Degraded) templateHash=a failedTargetHash=b \
                      rollout=false conditions=[NodesReady=True/AllNodesReady RolloutInProgress=False]";
        assert_eq!(expected_outcome(&broken, &lines(&[failed])), None);
        let left_true = failed.replace("RolloutInProgress=False", "RolloutInProgress=True/TemplateChanged");
        let text = expected_outcome(&broken, &lines(&[&left_true])).expect("not reported as failed");
        assert!(text.contains("must end failed and reported"), "{text}");
        let ready = "SeiNodeDeployment sei/fuzz: phase=Some(Ready) templateHash=a failedTargetHash= rollout=false \
                     conditions=[RolloutInProgress=False]";
        assert!(expected_outcome(&broken, &lines(&[ready])).is_some(), "a broken target cannot end Ready");

        // Fixed afterwards, or never broken: no rollout may fail.
        let fixed = bluegreen(vec![case::Op::SetImage { release: 4 }, case::Op::SetImage { release: 2 }]);
        assert!(!fixed.expects_failed_rollout());
        assert_eq!(expected_outcome(&fixed, &lines(&[ready])), None);
        let text = expected_outcome(&fixed, &lines(&[failed])).expect("an unexpected failure");
        assert!(text.contains("without any fault"), "{text}");
        // Deleted: nothing to fail.
        let deleted = bluegreen(vec![case::Op::SetImage { release: 4 }, case::Op::Delete]);
        assert!(!deleted.expects_failed_rollout());
    }

    #[test]
    fn a_neighbours_objects_are_judged_as_they_are_beside_a_run_that_ends_failed() {
        // The run's fleet stays on v6.3.1 after its rollout to the broken release failed; the neighbour, on the
        // same release, keeps its release and hash in the compared lines, and its line is not the run's.
        let broken = bluegreen(vec![case::Op::SetImage { release: 1 }, case::Op::SetImage { release: 4 }]);
        let failed = "SeiNodeDeployment sei/fuzz: phase=Some(Degraded) templateHash=a failedTargetHash=b \
                      rollout=false conditions=[RolloutInProgress=False]";
        let neighbour_ready = "SeiNodeDeployment sei/neighbour: phase=Some(Ready) templateHash=n failedTargetHash= \
                               rollout=false conditions=[RolloutInProgress=False]";
        let end = lines(&[
            failed,
            neighbour_ready,
            "SeiNode sei/fuzz-#0: image=sei:v6.3.1 phase=Some(Running) currentImage=sei:v6.3.1 owner=fuzz",
            "SeiNode sei/neighbour-#0: image=sei:v6.3.1 phase=Some(Running) currentImage=sei:v6.3.1 owner=neighbour",
        ]);
        let judged = judged_end_state(&broken, &end).expect("v6.3.1 was named before the failed edit");
        assert!(judged[0].contains("templateHash=<its hash>"), "{judged:?}");
        assert_eq!(judged[1], neighbour_ready, "{judged:?}");
        assert!(judged[2].contains("image=<the release before the failed edit>"), "{judged:?}");
        assert_eq!(judged[3], end[3], "{judged:?}");
        // The run's deployment is the one whose failure is asked for, whichever line sorts first.
        assert_eq!(expected_outcome(&broken, &lines(&[neighbour_ready, failed])), None);
        let gone = expected_outcome(&broken, &lines(&[neighbour_ready])).expect("the run's deployment is gone");
        assert!(gone.contains("the deployment is gone"), "{gone}");
    }

    #[test]
    fn bad_releases_replace_a_ready_one_and_a_missing_image_gets_fixed_before_the_end() {
        let render = Render { perturbed: false, settle_within: Duration::from_secs(600), expect_end_state: None };
        let good = bluegreen(vec![case::Op::SetImage { release: 1 }]).to_scenario_yaml("g", &render).expect("renders");
        assert!(!good.contains("phase: Ready"), "a good edit may land before the baseline: {good}");

        let missing = bluegreen(vec![case::Op::SetImage { release: 3 }]);
        assert_eq!(missing.final_image(), Some(case::MISSING_RELEASE));
        let text = missing.to_scenario_yaml("m", &render).expect("renders");
        let scenario = crate::scenario::parse("m", &text).expect("a valid scenario");
        assert!(!scenario.registry[case::MISSING_RELEASE].pullable);
        assert!(text.contains("phase: Ready"), "{text}");
        let (edit, fix) = (text.find("sei:v6.3.3-missing").unwrap_or(0), text.rfind("sei:v6.3.1"));
        assert!(fix.is_some_and(|fix| fix > edit), "the missing image is fixed after it is set: {text}");

        let broken = bluegreen(vec![case::Op::SetImage { release: 4 }]);
        let text = broken.to_scenario_yaml("b", &render).expect("renders");
        let scenario = crate::scenario::parse("b", &text).expect("a valid scenario");
        assert_eq!(scenario.registry[case::BROKEN_RELEASE].fails_task.as_deref(), Some("config-validate"));
        assert!(text.contains("phase: Ready") && !text.ends_with("sei:v6.3.1\n"), "{text}");
    }

    #[test]
    fn the_unperturbed_rendering_keeps_every_operation_but_no_fault() {
        let case = FuzzCase {
            seed: 5,
            strategy: case::UpdateStrategy::BlueGreen,
            replicas: 2,
            validators_switch_secs: 300,
            ops: vec![
                case::Op::Fault(crate::scenario::format::Fault::Partition { worker: 1 }),
                case::Op::SetImage { release: 1 },
                case::Op::Heal,
                case::Op::Wait { secs: 30 },
                case::Op::Delete,
                case::Op::Scale { replicas: 3 },
            ],
        };
        let render = |perturbed| Render { perturbed, settle_within: Duration::from_secs(600), expect_end_state: None };
        let calm = case.to_scenario_yaml("c", &render(false)).expect("renders");
        let perturbed = case.to_scenario_yaml("p", &render(true)).expect("renders");
        for text in [&calm, &perturbed] {
            let scenario = crate::scenario::parse("case", text).expect("a valid scenario");
            assert_eq!(scenario.seed, 5);
            assert!(text.contains("sei:v6.3.1") && text.contains("wait: 30s") && text.contains("settle: 600s"));
            // After the delete there is nothing to scale.
            assert!(!text.contains("spec.replicas"), "{text}");
        }
        assert!(!calm.contains("partition") && !calm.contains("heal"), "{calm}");
        assert!(perturbed.contains("partition") && perturbed.contains("heal: all"), "{perturbed}");
    }

    #[test]
    fn a_case_with_nothing_to_perturb_renders_alike_both_ways_and_is_run_once() {
        let render = |perturbed| Render { perturbed, settle_within: Duration::from_secs(300), expect_end_state: None };
        let calm_case = bluegreen(vec![case::Op::Wait { secs: 20 }, case::Op::RetainDelete]);
        assert!(!calm_case.perturbs());
        let both: Vec<String> =
            [true, false].map(|perturbed| calm_case.to_scenario_yaml("c", &render(perturbed)).expect("renders")).into();
        assert_eq!(both[0], both[1], "no heal of faults never made");
        assert!(!both[0].contains("heal"), "{}", both[0]);
        for stale in [case::Op::EditThenStaleReads { release: 1, after_secs: 5, versions: 1 }, case::Op::Heal] {
            let case = bluegreen(vec![stale]);
            assert!(case.perturbs());
            let perturbed = case.to_scenario_yaml("c", &render(true)).expect("renders");
            assert_ne!(perturbed, case.to_scenario_yaml("c", &render(false)).expect("renders"));
        }

        // Judged: the simulated time is one run's, where a case with a fault is run twice.
        let config = FuzzConfig { settle_within: Duration::from_secs(300), ..FuzzConfig::new(1, 1, Path::new(".")) };
        let short = bluegreen(vec![case::Op::Wait { secs: 20 }]);
        let once = replay(&scenario_text(&short, &config, true).expect("renders"), &config).expect("runs");
        let verdict = judge(&short, &config);
        assert!(verdict.failure.is_none(), "{:?}", verdict.failure.map(|f| f.reason));
        assert_eq!(verdict.simulated, once.simulated);
        let heal = bluegreen(vec![case::Op::Wait { secs: 20 }, case::Op::Heal]);
        assert!(judge(&heal, &config).simulated > once.simulated, "both runs of a case that perturbs");
    }
}
