//! The benchmark `sei-sim bench` runs: a standard rollout at a given number of replicas, and the whole scenario
//! suite, both through [`crate::scenario::run`] — the operator's real reconcilers, every invariant checked after
//! every simulated step — so the figures measure what `sei-sim run` users run, not a model of it.
//!
//! The standard rollout: an InPlace SeiNodeDeployment of N full nodes (the shape of
//! `fixtures/inplace-fullnode.yaml`) is applied and becomes Ready; its image is then edited to a patch release,
//! and the run ends when the rollout is complete and every node reports the new image. Above 100 replicas (the
//! CRD's maximum for one deployment) it is several deployments of at most 100, applied and edited together.
//!
//! The API-load run (`sei-sim bench --api-load`) is the same rollout by an HA pair of operator replicas, with ten
//! simulated minutes at rest between Ready and the edit: it counts the requests the operator's clients send the
//! API server (`WorldState::api_requests`) in each window.
//!
//! Wall time is read here, around whole runs, never inside one: the simulation itself only knows simulated time.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::apiserver::ApiRequests;
use crate::harness::world::World;
use crate::scenario::format::{
    ChainSpec, Edit, EventsMatcher, Expectation, ImageSpec, Manifests, Matcher, NodeSet, ObjectCheck, ObjectKind, Step,
    WorldSpec,
};
use crate::scenario::{self, Observer, Scenario};

/// The standard rollout's deployment, and the images it moves between.
pub const DEPLOYMENT: &str = "rpc";
pub const NAMESPACE: &str = "sei";
pub const FROM_IMAGE: &str = "sei:v6.3.0";
pub const TO_IMAGE: &str = "sei:v6.3.1";
const SIDECAR_IMAGE: &str = "seictl:v0.9.0";

/// The replica counts `sei-sim bench` measures by default: the growth curve of the cost per simulated second.
pub const DEFAULT_REPLICAS: [u32; 4] = [3, 16, 100, 300];

/// Generous deadlines: the run ends as soon as an expectation holds, so they bound only a broken run.
const READY_WITHIN: Duration = Duration::from_secs(30 * 60);
const ROLLED_WITHIN: Duration = Duration::from_secs(30 * 60);

/// Worker nodes for `replicas` pods: about 25 pods per worker, two to four workers. turmoil links every pair of
/// hosts and walks every link on every tick, so its tick cost grows with the cube of the host count (docs/design.md §7); a
/// few workers keep a 100-replica rollout cheap, as a few real nodes would host it.
pub fn workers_for(replicas: u32) -> u32 {
    replicas.div_ceil(25).clamp(2, 4)
}

/// Most replicas one SeiNodeDeployment may have (the CRD's `spec.replicas` maximum). A larger standard rollout
/// is several deployments of at most this many each (`rpc0`, `rpc1`, ...), applied together and edited together.
pub const MAX_REPLICAS_PER_DEPLOYMENT: u32 = 100;

/// The standard rollout at `replicas` replicas, as a scenario value (what a scenario file would parse into).
pub fn standard_rollout(replicas: u32) -> Scenario {
    let count = replicas.div_ceil(MAX_REPLICAS_PER_DEPLOYMENT).max(1);
    // (name, replicas) per deployment, the replicas split as evenly as they go.
    let deployments: Vec<(String, u32)> = if count == 1 {
        vec![(DEPLOYMENT.to_owned(), replicas)]
    } else {
        (0..count).map(|i| (format!("{DEPLOYMENT}{i}"), replicas / count + u32::from(i < replicas % count))).collect()
    };
    let manifest = |name: &str, replicas: u32| {
        json!({
            "apiVersion": "sei.io/v1alpha1",
            "kind": "SeiNodeDeployment",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {
                "replicas": replicas,
                "updateStrategy": {"type": "InPlace"},
                "template": {
                    "metadata": {"labels": {"team": "rpc"}},
                    "spec": {
                        "chainId": "pacific-1",
                        "image": FROM_IMAGE,
                        "sidecar": {"image": SIDECAR_IMAGE},
                        "overrides": {"p2p.max_num_inbound_peers": "40"},
                        "peers": {"static": ["3f1c0a@seed-0.sei.svc:26656"]},
                        "fullNode": {"snapshot": {"s3": {"targetHeight": 0}}},
                    },
                },
            },
        })
    };
    // The deployment Ready, its rollout condition False with this reason.
    let ready_with = |reason: &str| ObjectCheck {
        fields: vec![
            ("status.phase".to_owned(), equals("Ready")),
            ("status.conditions.RolloutInProgress.status".to_owned(), equals("False")),
            ("status.conditions.RolloutInProgress.reason".to_owned(), equals(reason)),
        ],
        ..ObjectCheck::default()
    };
    let ready = |name: &str| Expectation {
        within: Some(READY_WITHIN),
        deployment: Some(name.into()),
        is: Some(ready_with("NoRollout")),
        ..expectation()
    };
    let rolled = |name: &str| Expectation {
        within: Some(ROLLED_WITHIN),
        deployment: Some(name.into()),
        is: Some(ready_with("RolloutComplete")),
        events: vec![EventsMatcher {
            in_order: Some(vec!["RolloutStarted".into(), "RolloutComplete".into()]),
            ..EventsMatcher::default()
        }],
        ..expectation()
    };
    // Every node, checked once the rollout says it is complete (an expectation without `within` is checked at
    // that instant only, so the bench does not pay for reading N nodes on every tick of the wait).
    let node = ObjectCheck {
        fields: vec![
            ("spec.image".to_owned(), equals(TO_IMAGE)),
            ("status.currentImage".to_owned(), equals(TO_IMAGE)),
            ("status.phase".to_owned(), equals("Running")),
            ("status.sidecarReady".to_owned(), Matcher { equals: Some(json!(true)), ..Matcher::default() }),
        ],
        ..ObjectCheck::default()
    };
    let every_node = Expectation {
        nodes: vec![NodeSet {
            names: deployments.iter().flat_map(|(name, n)| (0..*n).map(move |i| format!("{name}-{i}"))).collect(),
            are: Some(node),
            ..NodeSet::default()
        }],
        ..expectation()
    };
    let image = |version: &str| ImageSpec {
        version: Some(version.into()),
        knows: Vec::new(),
        pullable: true,
        crash_on_start: false,
        fails_task: None,
    };
    let registry = BTreeMap::from([
        (FROM_IMAGE.to_owned(), image("v6.3.0")),
        (TO_IMAGE.to_owned(), image("v6.3.1")),
        (SIDECAR_IMAGE.to_owned(), ImageSpec { version: None, ..image("") }),
    ]);
    let edit = |name: &str| {
        Step::Edit(Edit {
            kind: ObjectKind::SeiNodeDeployment,
            name: name.into(),
            namespace: None,
            set: BTreeMap::from([("spec.template.spec.image".to_owned(), json!(TO_IMAGE))]),
            after: None,
        })
    };
    let objects = deployments.iter().map(|(name, n)| manifest(name, *n)).collect();
    let mut timeline = vec![Step::Apply(Manifests { file: None, objects, set: BTreeMap::new(), rejected_with: None })];
    timeline.extend(deployments.iter().map(|(name, _)| Step::Expect(Box::new(ready(name)))));
    timeline.extend(deployments.iter().map(|(name, _)| edit(name)));
    timeline.extend(deployments.iter().map(|(name, _)| Step::Expect(Box::new(rolled(name)))));
    timeline.push(Step::Expect(Box::new(every_node)));
    Scenario {
        name: format!("standard rollout, {replicas} replicas"),
        description: "an InPlace deployment becomes Ready, then rolls onto a patch release".into(),
        seed: 1,
        namespace: NAMESPACE.into(),
        world: WorldSpec { workers: workers_for(replicas), ..WorldSpec::default() },
        chain: ChainSpec {
            id: "pacific-1".into(),
            initial_height: 1000,
            block_time: Some(Duration::from_secs(1)),
            snapshot_interval: None,
            upgrades: Vec::new(),
        },
        registry,
        timeline,
    }
}

fn expectation() -> Expectation {
    Expectation::default()
}

/// A field matcher for one text.
fn equals(text: &str) -> Matcher {
    Matcher { equals: Some(json!(text)), ..Matcher::default() }
}

/// One measured run (or, for the suite, the sum of its runs).
#[derive(Clone, Debug)]
pub struct Measurement {
    pub name: String,
    /// Simulated time covered.
    pub simulated: Duration,
    /// Wall time taken.
    pub wall: Duration,
    pub invariant_checks: u64,
    /// Runs that failed, each with its reason (a failed run's figures still count, but the bench fails).
    pub failures: Vec<String>,
}

impl Measurement {
    /// Simulated seconds per wall-clock second.
    pub fn speedup(&self) -> f64 {
        let wall = self.wall.as_secs_f64();
        if wall > 0.0 { self.simulated.as_secs_f64() / wall } else { f64::INFINITY }
    }

    /// Wall time per simulated second, in milliseconds: the growth table's figure.
    pub fn wall_ms_per_simulated_second(&self) -> f64 {
        let simulated = self.simulated.as_secs_f64();
        if simulated > 0.0 { self.wall.as_secs_f64() * 1000.0 / simulated } else { f64::INFINITY }
    }

    /// The row of the bench table.
    pub fn row(&self) -> String {
        format!(
            "{:<36} {:>9.0}s {:>9.2}s {:>10.0}× {:>13.3} {:>16}",
            self.name,
            self.simulated.as_secs_f64(),
            self.wall.as_secs_f64(),
            self.speedup(),
            self.wall_ms_per_simulated_second(),
            self.invariant_checks
        )
    }

    /// The table's header, aligned with [`Measurement::row`].
    pub fn header() -> String {
        format!(
            "{:<36} {:>10} {:>10} {:>11} {:>13} {:>16}",
            "run", "simulated", "wall", "× real time", "ms / sim. s", "invariant checks"
        )
    }
}

/// Runs `scenario` once (manifest files relative to `root`), timing it.
pub fn measure(scenario: &Scenario, root: &Path) -> Measurement {
    let started = Instant::now();
    let outcome = scenario::run(scenario, None, root);
    let wall = started.elapsed();
    Measurement {
        name: scenario.name.clone(),
        simulated: outcome.simulated,
        wall,
        invariant_checks: outcome.invariant_checks,
        failures: outcome
            .failure
            .map(|f| format!("{} (seed {}): {f}", outcome.name, outcome.seed))
            .into_iter()
            .collect(),
    }
}

/// The standard rollout at `replicas`, measured.
pub fn rollout(replicas: u32) -> Measurement {
    // The standard rollout names no manifest file: its root is never read.
    measure(&standard_rollout(replicas), Path::new("."))
}

/// The scenario files of a suite directory: its `*.yaml` / `*.yml`, in name order.
pub fn suite_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(format!("{}: no scenario files", dir.display()));
    }
    Ok(files)
}

/// Every scenario of `dir`, run one after another (manifest files relative to `root`): the sum of their
/// simulated times and invariant checks, and the wall time of the whole, file loading included.
pub fn suite(dir: &Path, root: &Path) -> Result<Measurement, String> {
    let files = suite_files(dir)?;
    let started = Instant::now();
    let mut total = Measurement {
        name: format!("suite: {} ({} files)", dir.display(), files.len()),
        simulated: Duration::ZERO,
        wall: Duration::ZERO,
        invariant_checks: 0,
        failures: Vec::new(),
    };
    for file in &files {
        let scenario = scenario::load(file).map_err(|e| e.to_string())?;
        let run = measure(&scenario, root);
        total.simulated += run.simulated;
        total.invariant_checks += run.invariant_checks;
        total.failures.extend(run.failures);
    }
    total.wall = started.elapsed();
    Ok(total)
}

/// The replica counts `sei-sim bench --api-load` measures by default.
pub const API_LOAD_REPLICAS: [u32; 2] = [16, 100];

/// How long the API-load run holds the Ready deployment at rest before the rollout.
pub const AT_REST: Duration = Duration::from_secs(10 * 60);

/// Operator replicas in the API-load run: an HA pair electing a leader, so the Lease traffic of the leader and
/// of its standby is counted with the reconcilers'.
const API_LOAD_OPERATORS: u32 = 2;

/// The timeline steps of [`api_load_scenario`] whose starts bound the two windows: the wait at rest, the edit
/// that starts the rollout, and the per-node check that follows the rollout's completion.
const REST_STEP: usize = 2;
const EDIT_STEP: usize = 3;
const ROLLED_STEP: usize = 5;

/// The API-load run at `replicas`: the standard rollout, run by `API_LOAD_OPERATORS` operator replicas, with
/// [`AT_REST`] of quiet between the deployment becoming Ready and the image edit.
pub fn api_load_scenario(replicas: u32) -> Scenario {
    let mut scenario = standard_rollout(replicas);
    scenario.name = format!("API load, {replicas} replicas");
    scenario.world.operator_replicas = API_LOAD_OPERATORS;
    scenario.timeline.insert(REST_STEP, Step::Wait(AT_REST));
    scenario
}

/// The operator's API requests in one window of a run.
#[derive(Clone, Debug, Default)]
pub struct Window {
    pub requests: ApiRequests,
    /// Simulated time covered.
    pub length: Duration,
}

impl Window {
    /// Requests per simulated minute.
    pub fn per_minute(&self, count: u64) -> f64 {
        let minutes = self.length.as_secs_f64() / 60.0;
        if minutes > 0.0 { count as f64 / minutes } else { 0.0 }
    }

    /// The table row: requests per simulated minute, reads, writes and all.
    pub fn row(&self, name: &str) -> String {
        let (reads, writes) = self.requests.reads_and_writes();
        format!(
            "{:<36} {:>9.0}s {:>9.1} {:>9.1} {:>9.1}",
            name,
            self.length.as_secs_f64(),
            self.per_minute(reads),
            self.per_minute(writes),
            self.per_minute(reads + writes)
        )
    }

    /// One line per (verb, kind): requests per simulated minute.
    pub fn breakdown(&self) -> Vec<String> {
        self.requests
            .by_call
            .iter()
            .map(|((verb, kind), n)| format!("    {verb:<14} {kind:<22} {:>9.1}/min", self.per_minute(*n)))
            .collect()
    }

    /// The header of [`Window::row`].
    pub fn header() -> String {
        format!(
            "{:<36} {:>10} {:>9} {:>9} {:>9}",
            "requests per simulated minute", "window", "reads", "writes", "total"
        )
    }
}

/// The API-load measurement of one replica count: the deployment at rest, and its rollout.
#[derive(Clone, Debug)]
pub struct ApiLoad {
    pub replicas: u32,
    pub at_rest: Window,
    pub rollout: Window,
    pub failures: Vec<String>,
}

/// Keeps the request counter as of each step's start (the last tick before it).
#[derive(Default)]
struct LoadObserver {
    last: (Duration, ApiRequests),
    starts: BTreeMap<usize, (Duration, ApiRequests)>,
}

impl Observer for LoadObserver {
    fn on_step_start(&mut self, index: usize, _step: &Step, now: Duration) {
        self.starts.insert(index, (now, self.last.1.clone()));
    }

    fn after_tick(&mut self, world: &World) {
        self.last = (world.now(), world.inspect(|w| w.api.requests.clone()));
    }
}

impl LoadObserver {
    fn window(&self, from: usize, to: usize) -> Window {
        match (self.starts.get(&from), self.starts.get(&to)) {
            (Some((start, before)), Some((end, after))) => {
                Window { requests: after.since(before), length: end.saturating_sub(*start) }
            }
            _ => Window::default(),
        }
    }
}

/// Runs the API-load scenario at `replicas` and counts the operator's requests at rest and during the rollout.
pub fn api_load(replicas: u32) -> ApiLoad {
    let scenario = api_load_scenario(replicas);
    let mut observer = LoadObserver::default();
    let outcome = scenario::run_observed(&scenario, None, Path::new("."), &mut observer);
    ApiLoad {
        replicas,
        at_rest: observer.window(REST_STEP, EDIT_STEP),
        rollout: observer.window(EDIT_STEP, ROLLED_STEP),
        failures: outcome
            .failure
            .map(|f| format!("{} (seed {}): {f}", outcome.name, outcome.seed))
            .into_iter()
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_stay_few() {
        assert_eq!(workers_for(1), 2);
        assert_eq!(workers_for(16), 2);
        assert_eq!(workers_for(51), 3);
        assert_eq!(workers_for(100), 4);
        assert_eq!(workers_for(1000), 4);
    }

    /// The bench's code path end to end at a tiny size: correctness only, never timing.
    #[test]
    fn a_tiny_standard_rollout_completes_with_every_invariant_checked() {
        let run = rollout(2);
        assert!(run.failures.is_empty(), "{:?}", run.failures);
        assert!(run.simulated > Duration::from_secs(10), "{run:?}");
        assert!(run.invariant_checks > 0, "{run:?}");
        assert!(run.row().starts_with("standard rollout, 2 replicas"), "{}", run.row());
    }

    #[test]
    fn a_suite_runs_every_file_of_its_directory() {
        let scratch = tempfile::Builder::new().prefix("sei-sim-bench-suite-").tempdir().unwrap();
        let dir = scratch.path();
        let file = "name: quiet\nchain: {id: pacific-1, initialHeight: 10}\nregistry: {}\ntimeline: [{wait: 30s}]\n";
        std::fs::write(dir.join("a.yaml"), file).unwrap();
        std::fs::write(dir.join("b.yml"), file.replace("quiet", "quiet too")).unwrap();
        std::fs::write(dir.join("notes.md"), "not a scenario").unwrap();
        let suite = suite(dir, dir);
        scratch.close().unwrap();
        let suite = suite.unwrap();
        assert!(suite.failures.is_empty(), "{:?}", suite.failures);
        assert_eq!(suite.simulated, Duration::from_secs(60));
        assert!(suite.name.ends_with("(2 files)"), "{}", suite.name);
    }

    #[test]
    fn an_empty_suite_is_an_error() {
        let scratch = tempfile::Builder::new().prefix("sei-sim-bench-empty-").tempdir().unwrap();
        let result = suite_files(scratch.path());
        scratch.close().unwrap();
        assert!(result.is_err());
    }

    #[test]
    fn the_api_load_run_counts_requests_at_rest_and_in_the_rollout() {
        let load = api_load(2);
        assert!(load.failures.is_empty(), "{:?}", load.failures);
        assert_eq!(load.at_rest.length, AT_REST);
        assert!(load.rollout.length > Duration::ZERO, "{load:?}");
        let (reads, writes) = load.rollout.requests.reads_and_writes();
        assert!(reads > 0 && writes > 0, "{load:?}");
        assert!(load.at_rest.requests.by_call.contains_key(&("get", "Lease".to_owned())), "{load:?}");
    }

    #[test]
    fn the_standard_rollout_checks_every_node() {
        let scenario = standard_rollout(5);
        let Some(Step::Expect(last)) = scenario.timeline.last() else { panic!("the rollout ends with a check") };
        let [set] = last.nodes.as_slice() else { panic!("one node set") };
        assert_eq!(set.names.len(), 5);
        let current = set.are.as_ref().and_then(|are| are.field("status.currentImage"));
        assert_eq!(current.and_then(|m| m.equals.clone()), Some(json!(TO_IMAGE)));
    }
}
