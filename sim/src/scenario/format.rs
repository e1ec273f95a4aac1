//! The scenario file format (YAML): a world (workers, chain, image registry), manifests, and a timeline of steps
//! with expectations under simulated deadlines. Every struct denies unknown keys, so a misspelt key is an error
//! naming its line, not a silently ignored setting. `docs/scenarios.md` documents the format with an annotated
//! example.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// A whole scenario file.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Scenario {
    /// Short name, shown in reports.
    pub name: String,
    /// What the scenario shows, in a sentence or two.
    #[serde(default)]
    pub description: String,
    /// Seed of the world's RNG; `sei-sim run --seed` overrides it.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Namespace of objects the timeline names without one.
    #[serde(default = "default_namespace")]
    pub namespace: String,
    #[serde(default)]
    pub world: WorldSpec,
    pub chain: ChainSpec,
    /// Image name → what running it does.
    pub registry: BTreeMap<String, ImageSpec>,
    pub timeline: Vec<Step>,
}

fn default_seed() -> u64 {
    1
}

fn default_namespace() -> String {
    "default".into()
}

/// The cluster: how many worker nodes pods are spread over.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WorldSpec {
    #[serde(default = "default_workers")]
    pub workers: u32,
    /// Simulated time per turmoil tick.
    #[serde(default, deserialize_with = "optional_duration")]
    pub tick: Option<Duration>,
    /// How long sidecar tasks take (`snapshot-restore: 2m`); unnamed tasks take the simulator's default.
    #[serde(default, deserialize_with = "duration_map")]
    pub task_durations: BTreeMap<String, Duration>,
}

impl Default for WorldSpec {
    fn default() -> Self {
        WorldSpec { workers: default_workers(), tick: None, task_durations: BTreeMap::new() }
    }
}

fn default_workers() -> u32 {
    3
}

/// The chain every node joins.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ChainSpec {
    pub id: String,
    /// Height of the tip when the simulation starts.
    pub initial_height: u64,
    #[serde(default, deserialize_with = "optional_duration")]
    pub block_time: Option<Duration>,
    /// Snapshots exist at every multiple of this height.
    #[serde(default)]
    pub snapshot_interval: Option<u64>,
    #[serde(default)]
    pub upgrades: Vec<UpgradeSpec>,
}

/// A governance upgrade: the tip stalls at `height - 1` until the external validators switch binaries.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpgradeSpec {
    pub name: String,
    pub height: u64,
    /// When (simulated time from the start) the external validators run the new binary; never when unset.
    #[serde(default, deserialize_with = "optional_duration")]
    pub validators_switch_at: Option<Duration>,
}

/// What an image is.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ImageSpec {
    /// seid version the image carries (`v6.3.0`); unset for sidecar images.
    #[serde(default)]
    pub version: Option<String>,
    /// Upgrades (by name) this binary processes: it refuses blocks below their heights and runs past them.
    #[serde(default)]
    pub knows: Vec<String>,
    /// `false`: the registry does not have it (the pod stays in ImagePullBackOff).
    #[serde(default = "yes")]
    pub pullable: bool,
    /// The binary exits with an error as soon as it starts.
    #[serde(default)]
    pub crash_on_start: bool,
}

fn yes() -> bool {
    true
}

/// One step of the timeline; steps run in order.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub enum Step {
    /// Create objects: a manifest file (relative to the repository root) or inline objects.
    Apply(Manifests),
    /// Change fields of a stored object (dotted paths under the object, e.g. `spec.template.spec.image`).
    Edit(Edit),
    /// Delete an object.
    Delete(ObjectName),
    /// Let simulated time pass.
    #[serde(deserialize_with = "duration")]
    Wait(Duration),
    /// Inject a fault.
    Fault(Fault),
    /// Undo faults: all of them, or one kind.
    Heal(Heal),
    /// Wait (up to `within`) until everything listed holds; fail the scenario otherwise.
    Expect(Box<Expectation>),
    /// Let simulated time pass until the clock (from the start of the run) reads this; nothing if it already
    /// has. For checks tied to the chain's schedule ("ten seconds before the tip reaches H-1").
    #[serde(deserialize_with = "duration")]
    WaitUntil(Duration),
    /// Remember this moment under a name, so a later check can look only at what happened since
    /// (`sidecarSubmissions.since`).
    Mark(String),
    /// Push images to the registry again under the same tags (a re-pushed tag, a broken build, its fix): pods
    /// already running keep the binary they started with; every later start runs the pushed one.
    Push(BTreeMap<String, ImageSpec>),
}

/// Objects to apply.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Manifests {
    #[serde(default)]
    pub file: Option<String>,
    #[serde(default)]
    pub objects: Vec<serde_json::Value>,
}

/// An object, by kind and name.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ObjectName {
    pub kind: ObjectKind,
    pub name: String,
    #[serde(default)]
    pub namespace: Option<String>,
}

/// Kinds a timeline can name.
#[derive(Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectKind {
    SeiNodeDeployment,
    SeiNode,
}

/// Field edits to one object.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Edit {
    pub kind: ObjectKind,
    pub name: String,
    #[serde(default)]
    pub namespace: Option<String>,
    /// Dotted path → new value (`null` removes the field).
    pub set: BTreeMap<String, serde_json::Value>,
}

/// A fault to inject.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub enum Fault {
    /// Kill a SeiNode's pod; its StatefulSet makes a new one (volume kept).
    PodCrash { node: String },
    /// Restart only a SeiNode's sidecar container (its memory is lost; seid waits for mark-ready again).
    SidecarRestart { node: String },
    /// Crash a worker node, every pod on it; back after `for`.
    WorkerCrash {
        worker: u32,
        #[serde(rename = "for", deserialize_with = "duration")]
        down_for: Duration,
    },
    /// Crash the operator (all in-memory state lost; the store survives), now or right after its i-th write of
    /// a reconcile.
    OperatorCrash {
        // `rename_all` on an enum renames its variants, not their fields.
        #[serde(default, rename = "afterWrite")]
        after_write: Option<u32>,
    },
    /// Cut the network between the operator and a worker node.
    Partition { worker: u32 },
    /// Delay messages between the operator and a worker node.
    Latency {
        worker: u32,
        #[serde(deserialize_with = "duration")]
        delay: Duration,
    },
    /// Fail the operator's next writes with Conflict (`count`), or each write with probability `rate`, or
    /// (`everyOther: true`, until healed) its first write after each tick in which one of its writes succeeded:
    /// about every other write, without locking onto the same write of every reconcile as a strict count would.
    ApiConflicts {
        #[serde(default)]
        count: u32,
        #[serde(default)]
        rate: f64,
        #[serde(default, rename = "everyOther")]
        every_other: bool,
    },
    /// Fail the operator's next API calls transiently (`count`), or each with probability `rate`.
    ApiErrors {
        #[serde(default)]
        count: u32,
        #[serde(default)]
        rate: f64,
    },
    /// Serve the operator's reads from the store as it was `versions` versions ago.
    StaleReads { versions: u64 },
    /// Drop the next `count` watch events (a later event for the same object still arrives).
    DropWatchEvents { count: u32 },
    /// Make a sidecar task type fail its next `times` runs (on one node, or any).
    TaskFailure {
        task: String,
        #[serde(default)]
        node: Option<String>,
        #[serde(default = "once")]
        times: u32,
    },
}

fn once() -> u32 {
    1
}

/// Which faults to undo.
#[derive(Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum Heal {
    All,
    Partitions,
    Latency,
    Api,
    StaleReads,
}

/// What must hold, and by when.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Expectation {
    /// Deadline in simulated time from this step's start; unset: must hold now.
    #[serde(default, deserialize_with = "optional_duration")]
    pub within: Option<Duration>,
    /// The deployment the deployment-level expectations are about.
    #[serde(default)]
    pub deployment: Option<String>,
    #[serde(default)]
    pub phase: Option<String>,
    #[serde(default)]
    pub conditions: Vec<ConditionExpectation>,
    /// Event reasons that must have been emitted about the deployment (in this order, others between allowed).
    #[serde(default)]
    pub events: Vec<String>,
    /// Event reasons that must not have been emitted.
    #[serde(default)]
    pub no_events: Vec<String>,
    /// Per SeiNode: what must hold of it (`absent: true` for a node that must not exist).
    #[serde(default)]
    pub nodes: BTreeMap<String, NodeExpectation>,
    /// How many upgrade panics nodes may have had so far (by node name prefix or all).
    #[serde(default)]
    pub upgrade_panics: Option<u32>,
    /// Everything listed must hold before this simulated time (from the start of the run), for checks tied
    /// to the world's schedule ("complete before the validators switch"); with `within` too, the earlier
    /// deadline counts. A step that begins at or after it fails.
    #[serde(default, deserialize_with = "optional_duration")]
    pub before: Option<Duration>,
    /// The deployment's plan (`status.plan`).
    #[serde(default)]
    pub plan: Option<PlanExpectation>,
    /// The deployment's rollout (`status.rollout`).
    #[serde(default)]
    pub rollout: Option<RolloutExpectation>,
    /// The deployment's `status.failedTargetHash`: the target of a failed rollout, which is not retried.
    #[serde(default)]
    pub failed_target_hash: Option<ValueExpectation>,
    /// `true`: the deployment's `status.templateHash` is the hash of its current template — the latest spec is
    /// rolled out; `false`: it is not.
    #[serde(default)]
    pub latest_spec_rolled_out: Option<bool>,
    /// The deployment's `status.incumbentNodes` (its active set), exactly, in order.
    #[serde(default)]
    pub incumbent_nodes: Option<Vec<String>>,
    /// The deployment's Service (named after it).
    #[serde(default)]
    pub service: Option<ServiceExpectation>,
    /// Exactly the SeiNodes the deployment controls (ownerReference), those being deleted included, in any
    /// order: nothing leaked, nothing missing.
    #[serde(default)]
    pub children: Option<Vec<String>>,
    /// Event reasons emitted about the deployment: exactly these, in this order, no others.
    #[serde(default)]
    pub events_exactly: Option<Vec<String>>,
    /// Event reason → how many times it was emitted about the deployment.
    #[serde(default)]
    pub event_counts: BTreeMap<String, u32>,
    /// Exactly the SeiNodes of the namespace that exist and are not being deleted, in any order.
    #[serde(default)]
    pub live_nodes: Option<Vec<String>>,
    /// At least some number of the namespace's SeiNodes match (when which ones does not matter, as in "a
    /// node has rolled").
    #[serde(default)]
    pub some_nodes: Option<SomeNodes>,
    /// Per Job (by name): what must hold of it.
    #[serde(default)]
    pub jobs: BTreeMap<String, JobExpectation>,
    /// Node name prefix → how many upgrade panics pods of the nodes so named have had so far.
    #[serde(default)]
    pub upgrade_panics_by_node_prefix: BTreeMap<String, u32>,
    /// Image → how many upgrade panics pods running it have had so far.
    #[serde(default)]
    pub upgrade_panics_by_image: BTreeMap<String, u32>,
    /// Lines the trace must hold, and how many times.
    #[serde(default)]
    pub trace: Vec<TraceExpectation>,
    /// What the sidecars were asked to do.
    #[serde(default)]
    pub sidecar_submissions: Option<SubmissionsExpectation>,
    /// `true`: every deployment has settled — no rollout in progress, and its status observed the latest
    /// generation or names the target that failed (the liveness invariant's end state).
    #[serde(default)]
    pub settled: bool,
}

/// A condition's expected status and reason.
#[derive(Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ConditionExpectation {
    #[serde(rename = "type")]
    pub type_: String,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
    /// Texts the condition's message must contain.
    #[serde(default)]
    pub message_contains: Vec<String>,
}

/// What must hold of one SeiNode.
#[derive(Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NodeExpectation {
    #[serde(default)]
    pub phase: Option<String>,
    /// `spec.image`.
    #[serde(default)]
    pub image: Option<String>,
    /// `status.currentImage`.
    #[serde(default)]
    pub current_image: Option<String>,
    #[serde(default)]
    pub sidecar_ready: Option<bool>,
    /// The node must not exist.
    #[serde(default)]
    pub absent: bool,
    /// `status.latestHeight` is above this (the node has processed past it).
    #[serde(default)]
    pub latest_height_above: Option<u64>,
    /// The image its bootstrap Job runs (`spec.<mode>.snapshot.bootstrapImage`).
    #[serde(default)]
    pub bootstrap_image: Option<String>,
    /// The node's init plan (`status.plan`).
    #[serde(default)]
    pub init_plan: Option<PlanExpectation>,
    /// The node's pod (`<node>-0`), as the kubelet sees it.
    #[serde(default)]
    pub pod: Option<PodExpectation>,
}

/// Durations are written the friendly way: `400ms`, `30s`, `5m`, `1h30m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let signed: sei_operator::clock::SignedDuration =
        text.parse().map_err(|e| format!("{text:?} is not a duration like 30s, 5m or 1h: {e}"))?;
    Duration::try_from(signed).map_err(|_| format!("{text:?} is negative"))
}

fn duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    parse_duration(&text).map_err(serde::de::Error::custom)
}

fn optional_duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Duration>, D::Error> {
    Option::<String>::deserialize(deserializer)?
        .map(|text| parse_duration(&text).map_err(serde::de::Error::custom))
        .transpose()
}

fn duration_map<'de, D: Deserializer<'de>>(deserializer: D) -> Result<BTreeMap<String, Duration>, D::Error> {
    BTreeMap::<String, String>::deserialize(deserializer)?
        .into_iter()
        .map(|(key, text)| Ok((key, parse_duration(&text).map_err(serde::de::Error::custom)?)))
        .collect()
}

/// A value the scenario cannot know in advance — a hash, a generated id, a revision: whether it is set, and
/// whether it is the one an earlier expectation remembered.
#[derive(Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ValueExpectation {
    /// `true`: the value is set; `false`: it is not.
    #[serde(default)]
    pub set: Option<bool>,
    /// Remember the value under this name once the whole expectation holds (the value must be set).
    #[serde(default)]
    pub remember: Option<String>,
    /// The value equals the one remembered under this name.
    #[serde(default)]
    pub same_as: Option<String>,
    /// The value differs from the one remembered under this name.
    #[serde(default)]
    pub different_from: Option<String>,
}

/// What must hold of a plan (a deployment's rollout plan or a node's init plan).
#[derive(Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PlanExpectation {
    /// `Active`, `Complete` or `Failed`.
    #[serde(default)]
    pub phase: Option<String>,
    /// The plan's id: set, remembered, or the same as one remembered.
    #[serde(default)]
    pub id: Option<ValueExpectation>,
    /// The type of the first task not Complete, while the plan is Active.
    #[serde(default)]
    pub current_task: Option<String>,
}

/// What must hold of a deployment's rollout.
#[derive(Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RolloutExpectation {
    /// `true`: a rollout is in progress; `false`: none is.
    #[serde(default)]
    pub set: Option<bool>,
    /// The rollout's entrant nodes, exactly, in order.
    #[serde(default)]
    pub entrant_nodes: Option<Vec<String>>,
}

/// What must hold of a deployment's Service.
#[derive(Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ServiceExpectation {
    /// The revision its selector names (`sei.io/revision`).
    #[serde(default)]
    pub revision: Option<ValueExpectation>,
    /// Exactly the SeiNodes its selector matches (those being deleted too: their pods may still serve), in any
    /// order.
    #[serde(default)]
    pub selects: Option<Vec<String>>,
}

/// At least `atLeast` SeiNodes of the namespace are as described.
#[derive(Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SomeNodes {
    pub at_least: u32,
    pub are: NodeExpectation,
}

/// What must hold of a Job.
#[derive(Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct JobExpectation {
    /// The Job must not exist; otherwise it must.
    #[serde(default)]
    pub absent: bool,
    /// Whether its `Complete` condition is True.
    #[serde(default)]
    pub complete: Option<bool>,
}

/// What must hold of a SeiNode's pod.
#[derive(Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PodExpectation {
    /// The pod is Ready (seid runs, marked ready, not crashed).
    #[serde(default)]
    pub ready: Option<bool>,
    /// Its sidecar process has completed mark-ready (a restarted sidecar has not, until marked again).
    #[serde(default)]
    pub sidecar_ready: Option<bool>,
}

/// Trace lines matching `line` — a text each line must contain, where `*` stands for any run of characters —
/// occur `count` times exactly, or at least `atLeast` times; at least once when neither is given.
#[derive(Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TraceExpectation {
    pub line: String,
    #[serde(default)]
    pub count: Option<u32>,
    #[serde(default)]
    pub at_least: Option<u32>,
}

/// Task submissions the sidecars answered (201: started new work; 202: an id they already had).
#[derive(Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SubmissionsExpectation {
    /// Only submissions after this `mark` step; all of them when unset.
    #[serde(default)]
    pub since: Option<String>,
    /// Only submissions of this task type.
    #[serde(default)]
    pub task: Option<String>,
    /// At least this many submissions.
    #[serde(default)]
    pub at_least: Option<u32>,
    /// The first submission is this one.
    #[serde(default)]
    pub first: Option<SubmissionMatch>,
    /// Every submission went to the pods of these nodes.
    #[serde(default)]
    pub only_nodes: Option<Vec<String>>,
}

/// One sidecar submission: to the pod of `node` (`<node>-0`), of task type `task`, answered `status`.
#[derive(Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SubmissionMatch {
    #[serde(default)]
    pub node: Option<String>,
    #[serde(default)]
    pub task: Option<String>,
    #[serde(default)]
    pub status: Option<u16>,
}
