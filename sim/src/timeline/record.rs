//! What a scenario run did, as data for its picture: per SeiNode, per SeiNodeDeployment and per chain, the states
//! they went through as run-length segments, heights as simplified polylines, and the timeline's steps. The
//! [`Recorder`] observes the world after every tick and keeps changes only, so an hour-long run stays small.

use std::collections::BTreeMap;
use std::time::Duration;

use sei_operator_core::api::{PlanPhase, SeiNode, SeiNodeDeployment, TaskStatus};
use sei_operator_core::cluster::ObjectRef;
use serde::Deserialize;

use crate::apiserver::json::Fields;
use crate::harness::state::WorldState;
use crate::harness::world::World;
use crate::kube::pod::{PodRuntime, Seid};
use crate::scenario::Scenario;
use crate::scenario::format::{Expectation, Manifests, Matcher, ObjectName, Step};
use crate::scenario::runner::{Observer, Outcome, step_name};

/// A value that held from `start` until `end`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment<T> {
    pub start: Duration,
    pub end: Duration,
    pub value: T,
}

/// A value over time as run-length segments; a gap where the thing did not exist.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Track<T> {
    segments: Vec<Segment<T>>,
    /// The last segment still holds (it is extended by the next observation of the same value).
    open: bool,
}

impl<T> Default for Track<T> {
    fn default() -> Self {
        Track { segments: Vec::new(), open: false }
    }
}

impl<T: PartialEq> Track<T> {
    /// The value observed at `at` (`None`: absent). The same value as before only extends the open segment.
    pub fn observe(&mut self, at: Duration, value: Option<T>) {
        if self.open
            && let Some(last) = self.segments.last_mut()
        {
            last.end = at;
            if value.as_ref() == Some(&last.value) {
                return;
            }
        }
        self.open = value.is_some();
        if let Some(value) = value {
            self.segments.push(Segment { start: at, end: at, value });
        }
    }

    /// Ends the open segment at `at` (the end of the run).
    pub fn close(&mut self, at: Duration) {
        if self.open
            && let Some(last) = self.segments.last_mut()
        {
            last.end = at.max(last.start);
        }
        self.open = false;
    }
}

impl<T> Track<T> {
    /// A track of ready-made segments (hand-built timelines, tests).
    pub fn from_segments(segments: Vec<Segment<T>>) -> Self {
        Track { segments, open: false }
    }

    pub fn segments(&self) -> &[Segment<T>] {
        &self.segments
    }
}

/// One point of a series: a time and a value (a block height).
pub type Point = (Duration, u64);

/// Any slope at all: the door of a line with no dropped points.
const WIDE_OPEN: (f64, f64) = (f64::NEG_INFINITY, f64::INFINITY);

/// A value over time as polylines (one per stretch in which it existed), simplified as it is observed: a point
/// is dropped while one straight line from the last kept point passes within `tolerance` of it and of every point
/// dropped since (the "swinging door" compression of process historians). A height that rises one block every
/// few ticks is a handful of points, not one per tick.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    tolerance: f64,
    /// Kept points; the last line is still extended while `open`.
    lines: Vec<Vec<Point>>,
    open: bool,
    /// The latest observation of the open line, kept only once a later one shows it is needed.
    pending: Option<Point>,
    /// The slopes (value per second) a line from the last kept point may have and still pass within tolerance of
    /// every point dropped since.
    door: (f64, f64),
}

impl Series {
    pub fn new(tolerance: f64) -> Self {
        Series { tolerance, lines: Vec::new(), open: false, pending: None, door: WIDE_OPEN }
    }

    /// A series of ready-made polylines (hand-built timelines, tests).
    pub fn from_lines(lines: Vec<Vec<Point>>) -> Self {
        Series { lines, ..Series::new(0.0) }
    }

    /// The value observed at `at` (`None`: the thing does not exist now, which ends the polyline).
    pub fn observe(&mut self, at: Duration, value: Option<u64>) {
        let Some(value) = value else {
            if let Some(pending) = self.pending.take() {
                self.keep(pending);
            }
            self.open = false;
            return;
        };
        let point = (at, value);
        let anchor = self.lines.last().and_then(|line| line.last().copied());
        let (Some(anchor), true) = (anchor, self.open) else {
            self.lines.push(vec![point]);
            (self.open, self.pending, self.door) = (true, None, WIDE_OPEN);
            return;
        };
        if let Some(pending) = self.pending {
            // Dropping the pending point narrows the door to the slopes that pass near it as well.
            let door = narrow(self.door, anchor, pending, self.tolerance);
            let slope = slope(anchor, point);
            if at > pending.0 && door.0 <= slope && slope <= door.1 {
                self.door = door;
            } else {
                self.keep(pending);
            }
        }
        self.pending = Some(point);
    }

    /// The polylines, the latest observation included.
    pub fn lines(&self) -> Vec<Vec<Point>> {
        let mut lines = self.lines.clone();
        if let (Some(pending), Some(last)) = (self.pending, lines.last_mut()) {
            last.push(pending);
        }
        lines
    }

    /// The latest value observed.
    pub fn last(&self) -> Option<u64> {
        self.pending.or_else(|| self.lines.last().and_then(|line| line.last().copied())).map(|(_, value)| value)
    }

    fn keep(&mut self, point: Point) {
        if let Some(line) = self.lines.last_mut() {
            line.push(point);
        }
        self.door = WIDE_OPEN;
    }
}

/// `door` narrowed to the slopes from `anchor` that pass within `tolerance` of `point`.
fn narrow(door: (f64, f64), anchor: Point, point: Point, tolerance: f64) -> (f64, f64) {
    let dt = point.0.saturating_sub(anchor.0).as_secs_f64();
    if dt <= 0.0 {
        return (f64::INFINITY, f64::NEG_INFINITY);
    }
    let rise = point.1 as f64 - anchor.1 as f64;
    (door.0.max((rise - tolerance) / dt), door.1.min((rise + tolerance) / dt))
}

fn slope(from: Point, to: Point) -> f64 {
    let dt = to.0.saturating_sub(from.0).as_secs_f64();
    if dt <= 0.0 { 0.0 } else { (to.1 as f64 - from.1 as f64) / dt }
}

/// What a SeiNode's pod was doing, as the kubelet sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodState {
    /// `Ready`, `CrashLoopBackOff`, `Pulling`, ...: what the picture colours.
    pub state: String,
    /// More for the tooltip (the last exit of a crash loop, the image being pulled).
    pub detail: String,
}

/// A SeiNode's image: what its spec asks for and what its status says runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageState {
    pub spec: String,
    pub current: Option<String>,
}

/// A condition's status and reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConditionState {
    pub status: String,
    pub reason: String,
}

/// One SeiNode over the run.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeLane {
    /// The chain its pod follows, for the height chart.
    pub chain: Option<String>,
    /// `status.phase`.
    pub phase: Track<String>,
    /// Its StatefulSet pod (`<node>-0`).
    pub pod: Track<PodState>,
    pub image: Track<ImageState>,
    /// `status.sidecarReady`.
    pub sidecar_ready: Track<bool>,
    /// The block height on its volume: seid's while it runs, else what it left on the PVC.
    pub height: Series,
}

impl Default for NodeLane {
    fn default() -> Self {
        NodeLane {
            chain: None,
            phase: Track::default(),
            pod: Track::default(),
            image: Track::default(),
            sidecar_ready: Track::default(),
            height: Series::new(HEIGHT_TOLERANCE),
        }
    }
}

/// One SeiNodeDeployment over the run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DeploymentLane {
    pub phase: Track<String>,
    /// The active plan's current task (`type i/n`), or how the plan failed.
    pub task: Track<String>,
    /// By condition type.
    pub conditions: BTreeMap<String, Track<ConditionState>>,
}

/// A chain's governance upgrade.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpgradeMark {
    pub name: String,
    pub height: u64,
}

/// One chain over the run.
#[derive(Clone, Debug, PartialEq)]
pub struct ChainLane {
    pub tip: Series,
    pub upgrades: Vec<UpgradeMark>,
}

/// A step of the scenario's timeline, and when it started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepMark {
    /// 1-based, as failure reports count steps.
    pub number: usize,
    /// `apply`, `edit`, `fault`, ...
    pub kind: String,
    /// What it does, in a few words.
    pub detail: String,
    pub at: Duration,
}

/// How the run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunResult {
    Passed,
    /// `step`: the step that failed (1-based), `None` when the world could not even be set up.
    Failed {
        step: Option<usize>,
        reason: String,
    },
}

/// Everything the picture shows.
#[derive(Clone, Debug, PartialEq)]
pub struct Timeline {
    pub scenario: String,
    pub description: String,
    pub seed: u64,
    /// Simulated time the run covered.
    pub end: Duration,
    pub result: RunResult,
    pub steps: Vec<StepMark>,
    /// By chain id.
    pub chains: BTreeMap<String, ChainLane>,
    /// By name (`namespace/name` outside the scenario's namespace).
    pub deployments: BTreeMap<String, DeploymentLane>,
    pub nodes: BTreeMap<String, NodeLane>,
}

/// Heights are drawn to within a block.
const HEIGHT_TOLERANCE: f64 = 1.0;

/// What the recorder last read from the store's SeiNode and SeiNodeDeployment objects.
#[derive(Default)]
struct Objects {
    nodes: BTreeMap<String, NodeObject>,
    deployments: BTreeMap<String, DeploymentObject>,
}

struct NodeObject {
    namespace: String,
    name: String,
    phase: Option<String>,
    image: ImageState,
    sidecar_ready: Option<bool>,
}

struct DeploymentObject {
    phase: Option<String>,
    task: Option<String>,
    conditions: BTreeMap<String, ConditionState>,
}

/// Builds a [`Timeline`] from a run: an [`Observer`] that looks at the world after every tick.
pub struct Recorder {
    timeline: Timeline,
    namespace: String,
    /// The store version the objects were read at: they are read again only when the store changed.
    read_at: Option<u64>,
    objects: Objects,
}

impl Recorder {
    pub fn new(scenario: &Scenario) -> Self {
        Recorder {
            timeline: Timeline {
                scenario: scenario.name.clone(),
                description: scenario.description.clone(),
                seed: scenario.seed,
                end: Duration::ZERO,
                result: RunResult::Passed,
                steps: Vec::new(),
                chains: BTreeMap::new(),
                deployments: BTreeMap::new(),
                nodes: BTreeMap::new(),
            },
            namespace: scenario.namespace.clone(),
            read_at: None,
            objects: Objects::default(),
        }
    }

    /// The timeline of the run that ended with `outcome`.
    pub fn finish(mut self, outcome: &Outcome) -> Timeline {
        let end = outcome.simulated.max(self.timeline.end);
        let timeline = &mut self.timeline;
        timeline.seed = outcome.seed;
        timeline.end = end;
        timeline.result = match &outcome.failure {
            None => RunResult::Passed,
            // A run stops at the step that failed: the last one started (none: the set-up failed).
            Some(reason) => RunResult::Failed { step: timeline.steps.last().map(|s| s.number), reason: reason.clone() },
        };
        for chain in timeline.chains.values_mut() {
            chain.tip.observe(end, None);
        }
        for deployment in timeline.deployments.values_mut() {
            deployment.phase.close(end);
            deployment.task.close(end);
            deployment.conditions.values_mut().for_each(|track| track.close(end));
        }
        for node in timeline.nodes.values_mut() {
            node.phase.close(end);
            node.pod.close(end);
            node.image.close(end);
            node.sidecar_ready.close(end);
            node.height.observe(end, None);
        }
        self.timeline
    }

    fn lane_name(&self, namespace: &str, name: &str) -> String {
        if namespace == self.namespace { name.to_owned() } else { format!("{namespace}/{name}") }
    }

    /// Reads the SeiNode and SeiNodeDeployment objects again.
    fn read_objects(&self, state: &WorldState) -> Objects {
        let mut objects = Objects::default();
        for (key, value) in state.api.store.all_of_kind("SeiNode") {
            let Ok(node) = SeiNode::deserialize(value) else { continue };
            let status = node.status.unwrap_or_default();
            objects.nodes.insert(
                self.lane_name(&key.namespace, &key.name),
                NodeObject {
                    namespace: key.namespace.clone(),
                    name: key.name.clone(),
                    phase: status.phase.map(|p| format!("{p:?}")),
                    image: ImageState { spec: node.spec.image.clone(), current: status.current_image },
                    sidecar_ready: status.sidecar_ready,
                },
            );
        }
        for (key, value) in state.api.store.all_of_kind("SeiNodeDeployment") {
            let Ok(deployment) = SeiNodeDeployment::deserialize(value) else { continue };
            let status = deployment.status.unwrap_or_default();
            let conditions = status
                .conditions
                .iter()
                .map(|c| (c.type_.clone(), ConditionState { status: c.status.clone(), reason: c.reason.clone() }))
                .collect();
            let task = status.plan.as_ref().and_then(|plan| {
                let count = plan.tasks.len();
                match plan.phase {
                    PlanPhase::Active => plan
                        .tasks
                        .iter()
                        .enumerate()
                        .find(|(_, t)| t.status == TaskStatus::Pending)
                        .map(|(i, t)| format!("{} {}/{count}", t.type_, i + 1)),
                    PlanPhase::Failed => {
                        let failed = plan.failed_task_index.and_then(|i| usize::try_from(i).ok());
                        let task = failed.and_then(|i| plan.tasks.get(i)).map_or("plan", |t| t.type_.as_str());
                        Some(format!("failed: {task}"))
                    }
                    PlanPhase::Complete => None,
                }
            });
            objects.deployments.insert(
                self.lane_name(&key.namespace, &key.name),
                DeploymentObject { phase: status.phase.map(|p| format!("{p:?}")), task, conditions },
            );
        }
        objects
    }

    fn observe(&mut self, state: &WorldState) {
        let now = state.now;
        self.timeline.end = now;
        if self.read_at != Some(state.api.store.version()) {
            self.read_at = Some(state.api.store.version());
            self.objects = self.read_objects(state);
        }
        for (id, chain) in &state.chains.by_id {
            let lane = self.timeline.chains.entry(id.clone()).or_insert_with(|| ChainLane {
                tip: Series::new(HEIGHT_TOLERANCE),
                upgrades: chain
                    .upgrades
                    .iter()
                    .map(|u| UpgradeMark { name: u.name.clone(), height: u.height })
                    .collect(),
            });
            lane.tip.observe(now, Some(chain.tip(now)));
        }
        // Lanes of deleted objects get a gap; new objects get a lane.
        for name in self.objects.deployments.keys() {
            self.timeline.deployments.entry(name.clone()).or_default();
        }
        for (name, lane) in &mut self.timeline.deployments {
            let object = self.objects.deployments.get(name);
            lane.phase.observe(now, object.and_then(|d| d.phase.clone()));
            lane.task.observe(now, object.and_then(|d| d.task.clone()));
            for kind in object.iter().flat_map(|d| d.conditions.keys()) {
                lane.conditions.entry(kind.clone()).or_default();
            }
            for (kind, track) in &mut lane.conditions {
                track.observe(now, object.and_then(|d| d.conditions.get(kind).cloned()));
            }
        }
        for name in self.objects.nodes.keys() {
            self.timeline.nodes.entry(name.clone()).or_default();
        }
        for (name, lane) in &mut self.timeline.nodes {
            let object = self.objects.nodes.get(name);
            lane.phase.observe(now, object.and_then(|n| n.phase.clone()));
            lane.image.observe(now, object.map(|n| n.image.clone()));
            lane.sidecar_ready.observe(now, object.and_then(|n| n.sidecar_ready));
            let pod = object
                .and_then(|n| state.plane.pods.get(&ObjectRef::new("Pod", &n.namespace, format!("{}-0", n.name))));
            lane.pod.observe(now, pod.map(pod_state));
            if let Some(pod) = pod {
                lane.chain = state.chain_for(pod.chain_id.as_deref()).map(|c| c.id.clone()).or(lane.chain.take());
            }
            lane.height.observe(now, pod.and_then(|p| height(state, p)));
        }
    }
}

impl Observer for Recorder {
    fn on_step_start(&mut self, index: usize, step: &Step, now: Duration) {
        self.timeline.steps.push(StepMark {
            number: index + 1,
            kind: step_name(step).to_owned(),
            detail: describe(step),
            at: now,
        });
    }

    fn after_tick(&mut self, world: &World) {
        world.inspect(|state| self.observe(state));
    }
}

/// What the kubelet is doing with the pod.
fn pod_state(pod: &PodRuntime) -> PodState {
    let (state, detail) = match &pod.seid {
        Seid::Unscheduled => ("Unscheduled", String::new()),
        Seid::Pulling { .. } => ("Pulling", pod.image.clone()),
        Seid::ImagePullBackOff => ("ImagePullBackOff", pod.image.clone()),
        Seid::WaitingForSidecar => ("WaitingForSidecar", "seid waits for mark-ready".to_owned()),
        Seid::Running { .. } if pod.is_ready() => ("Ready", pod.image.clone()),
        Seid::Running { .. } => ("Running", format!("{} (not ready)", pod.image)),
        Seid::BackOff { last_exit, .. } => ("CrashLoopBackOff", last_exit.describe()),
        Seid::Terminated { exit } => ("Terminated", exit.describe()),
        Seid::NodeDown => ("NodeDown", format!("worker-{} is down", pod.worker)),
    };
    PodState { state: state.to_owned(), detail }
}

/// The pod's block height: seid's while it runs, else what its volume holds.
fn height(state: &WorldState, pod: &PodRuntime) -> Option<u64> {
    if let Seid::Running { run, .. } = &pod.seid {
        let chain = state.chain_for(pod.chain_id.as_deref())?;
        return Some(run.height_at(chain, state.now));
    }
    pod.volume.as_ref().and_then(|volume| state.plane.volumes.get(volume)).map(|v| v.height)
}

/// A step in a few words.
fn describe(step: &Step) -> String {
    match step {
        Step::Apply(Manifests { file: Some(file), .. }) => file.clone(),
        Step::Apply(Manifests { objects, .. }) => {
            let names: Vec<String> = objects
                .iter()
                .map(|o| {
                    let field = |pointer: &str| o.at(pointer).and_then(|v| v.as_str()).unwrap_or("?").to_owned();
                    format!("{} {}", field("/kind"), field("/metadata/name"))
                })
                .collect();
            names.join(", ")
        }
        Step::Edit(edit) => {
            let changes: Vec<String> =
                edit.set.iter().map(|(path, value)| format!("{path}={}", plain(value))).collect();
            format!("{} {}", edit.name, changes.join(" "))
        }
        Step::Delete(ObjectName { kind, name, .. }) => format!("{kind:?} {name}"),
        Step::Wait(duration) => span(*duration),
        Step::Expect(expectation) => {
            let when = expectation.within.map_or("now".to_owned(), |within| format!("within {}", span(within)));
            format!("{when}: {}", expected(expectation))
        }
        // Faults and heals by their Debug form, tidied: new kinds of fault need no change here.
        Step::Fault(fault) => tidy(&format!("{fault:?}")),
        Step::Heal(heal) => tidy(&format!("{heal:?}")),
        // Kinds of step added later are shown by their kind alone until they get words here.
        #[allow(unreachable_patterns)]
        _ => String::new(),
    }
}

/// A duration the way scenario files write it: `400ms`, `30s`, `2m`, `1h30m`.
pub fn span(duration: Duration) -> String {
    let (secs, millis) = (duration.as_secs(), duration.subsec_millis());
    if secs == 0 {
        return format!("{millis}ms");
    }
    let mut text = String::new();
    for (count, unit) in [(secs / 3600, "h"), (secs / 60 % 60, "m"), (secs % 60, "s")] {
        if count > 0 {
            text.push_str(&format!("{count}{unit}"));
        }
    }
    if millis > 0 {
        text.push_str(&format!("{millis}ms"));
    }
    text
}

/// What an expectation waits for, in short: the deployment's phase and conditions, the event reasons it waits
/// for (or forbids), the nodes it names, and the panics it counts.
fn expected(expectation: &Expectation) -> String {
    let mut parts = Vec::new();
    let deployment = expectation.deployment.as_deref().unwrap_or("");
    let fields: Vec<(&String, &Matcher)> =
        expectation.is.iter().flat_map(|is| &is.fields).map(|(p, m)| (p, m)).collect();
    if let Some(phase) = fields.iter().find(|(path, _)| *path == "status.phase").and_then(|(_, m)| m.equals.as_ref()) {
        parts.push(format!("{deployment} {}", plain(phase)).trim().to_owned());
    }
    // A condition's status and reason, as one part (`RolloutInProgress False RolloutComplete`); a condition
    // checked otherwise (its message, its absence) by its type alone.
    let mut conditions: Vec<(&str, [Option<String>; 2])> = Vec::new();
    for (path, matcher) in &fields {
        let Some(rest) = path.strip_prefix("status.conditions.") else { continue };
        let (condition, field) = rest.split_once('.').unwrap_or((rest, ""));
        let at = match conditions.iter().position(|(c, _)| *c == condition) {
            Some(at) => at,
            None => {
                conditions.push((condition, [None, None]));
                conditions.len() - 1
            }
        };
        let slot = match field {
            "status" => 0,
            "reason" => 1,
            _ => continue,
        };
        if let Some(want) = &matcher.equals {
            conditions[at].1[slot] = Some(plain(want));
        }
    }
    for (condition, wanted) in conditions {
        let wanted: Vec<String> = wanted.into_iter().flatten().collect();
        parts.push(format!("{condition} {}", wanted.join(" ")).trim().to_owned());
    }
    for events in &expectation.events {
        if let Some(reasons) = &events.in_order {
            parts.push(format!("events {}", reasons.join(" → ")));
        }
        if let Some(reasons) = &events.none {
            parts.push(format!("no {}", reasons.join(", ")));
        }
    }
    let mut names: Vec<&str> = expectation.nodes.iter().flat_map(|set| &set.names).map(String::as_str).collect();
    names.sort_unstable();
    if !names.is_empty() {
        parts.push(format!("nodes {}", names.join(", ")));
    }
    for panics in expectation
        .panics
        .iter()
        .filter(|p| p.upgrade && p.node.is_none() && p.node_prefix.is_none() && p.image.is_none())
    {
        if let Some(count) = panics.count {
            parts.push(format!("{count} upgrade panics"));
        }
    }
    parts.join(", ")
}

/// A JSON value without the quotes of a string.
fn plain(value: &serde_json::Value) -> String {
    value.as_str().map_or_else(|| value.to_string(), str::to_owned)
}

/// `PodCrash { node: "rpc-0" }` → `podCrash node: rpc-0`: the scenario file's spelling, near enough.
fn tidy(debug: &str) -> String {
    let text: String = debug.chars().filter(|c| !matches!(c, '{' | '}' | '"')).collect();
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut chars = text.chars();
    chars.next().map(|first| first.to_lowercase().chain(chars).collect()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(millis: u64) -> Duration {
        Duration::from_millis(millis)
    }

    fn seg(start: u64, end: u64, value: &str) -> Segment<String> {
        Segment { start: ms(start), end: ms(end), value: value.to_owned() }
    }

    #[test]
    fn a_track_keeps_one_segment_per_run_of_equal_values() {
        let mut track = Track::default();
        for (at, value) in [(0, "a"), (100, "a"), (200, "a"), (300, "b"), (400, "b"), (500, "a")] {
            track.observe(ms(at), Some(value.to_owned()));
        }
        track.close(ms(900));
        assert_eq!(track.segments(), [seg(0, 300, "a"), seg(300, 500, "b"), seg(500, 900, "a")]);
    }

    #[test]
    fn absence_leaves_a_gap_and_a_value_after_it_starts_a_new_segment() {
        let mut track = Track::default();
        track.observe(ms(0), Some("a".to_owned()));
        track.observe(ms(100), Some("a".to_owned()));
        track.observe(ms(200), None);
        track.observe(ms(300), None);
        track.observe(ms(400), Some("a".to_owned()));
        track.close(ms(500));
        // Closing again (or observing absence after the end) changes nothing.
        track.close(ms(700));
        assert_eq!(track.segments(), [seg(0, 200, "a"), seg(400, 500, "a")]);
    }

    #[test]
    fn a_value_seen_once_gets_a_segment_up_to_the_next_observation() {
        let mut track = Track::default();
        track.observe(ms(0), Some("a".to_owned()));
        track.observe(ms(100), Some("b".to_owned()));
        track.observe(ms(200), Some("a".to_owned()));
        assert_eq!(track.segments(), [seg(0, 100, "a"), seg(100, 200, "b"), seg(200, 200, "a")]);
    }

    /// The vertical distance from `point` to the polyline through `line`.
    fn deviation(line: &[Point], (at, value): Point) -> f64 {
        let pair = line.windows(2).find(|w| w[0].0 <= at && at <= w[1].0).expect("within the line");
        let (a, b) = (pair[0], pair[1]);
        let span = (b.0 - a.0).as_secs_f64();
        let fraction = if span == 0.0 { 0.0 } else { (at - a.0).as_secs_f64() / span };
        let expected = a.1 as f64 + fraction * (b.1 as f64 - a.1 as f64);
        (value as f64 - expected).abs()
    }

    #[test]
    fn a_height_rising_block_by_block_is_a_few_points_within_a_block() {
        // 100 ms ticks, 400 ms blocks: a staircase. Then the chain halts for a minute, then runs again.
        let height = |tick: u64| match tick {
            0..=1200 => 1000 + tick / 4,
            1201..=1800 => 1300,
            _ => 1300 + (tick - 1800) / 4,
        };
        let mut series = Series::new(1.0);
        let raw: Vec<Point> = (0..=2400).map(|tick| (ms(tick * 100), height(tick))).collect();
        for point in &raw {
            series.observe(point.0, Some(point.1));
        }
        let lines = series.lines();
        assert_eq!(lines.len(), 1);
        let line = &lines[0];
        assert!(line.len() <= 8, "{} points: {line:?}", line.len());
        assert_eq!(line.first(), raw.first());
        assert_eq!(line.last(), raw.last());
        for point in &raw {
            assert!(deviation(line, *point) <= 1.0 + 1e-9, "{point:?} is off the line {line:?}");
        }
        assert_eq!(series.last(), Some(1450));
    }

    #[test]
    fn absence_ends_a_polyline() {
        let mut series = Series::new(1.0);
        for tick in 0..10 {
            series.observe(ms(tick * 100), Some(tick));
        }
        series.observe(ms(1000), None);
        for tick in 20..25 {
            series.observe(ms(tick * 100), Some(50));
        }
        let lines = series.lines();
        assert_eq!(lines, [vec![(ms(0), 0), (ms(900), 9)], vec![(ms(2000), 50), (ms(2400), 50)]]);
    }

    #[test]
    fn a_jump_is_kept_sharp() {
        let mut series = Series::new(1.0);
        for tick in 0..10 {
            series.observe(ms(tick * 100), Some(if tick < 5 { 0 } else { 4900 }));
        }
        assert_eq!(series.lines(), [vec![(ms(0), 0), (ms(400), 0), (ms(500), 4900), (ms(900), 4900)]]);
    }

    #[test]
    fn steps_are_described_the_way_scenario_files_write_them() {
        let scenario = crate::scenario::parse(
            "inline",
            r#"
name: x
chain: {id: c, initialHeight: 1}
registry: {}
timeline:
  - edit: {kind: SeiNodeDeployment, name: rpc, set: {spec.template.spec.image: "sei:v2", spec.replicas: 4}}
  - fault: {podCrash: {node: rpc-0}}
  - heal: all
  - wait: 1h30m
  - expect: {within: 90s, deployment: rpc, is: {status.phase: Ready}, panics: [{upgrade: true, count: 0}]}
  - expect: {nodes: [{names: rpc-0, are: {status.phase: Running}}], deployment: rpc, is: {status.conditions.RolloutInProgress.status: "False"}}
"#,
        )
        .expect("valid");
        let described: Vec<String> = scenario.timeline.iter().map(describe).collect();
        assert_eq!(
            described,
            [
                "rpc spec.replicas=4 spec.template.spec.image=sei:v2",
                "podCrash node: rpc-0",
                "all",
                "1h30m",
                "within 1m30s: rpc Ready, 0 upgrade panics",
                "now: RolloutInProgress False, nodes rpc-0",
            ]
        );
        assert_eq!(span(ms(400)), "400ms");
    }
}
