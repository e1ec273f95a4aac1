//! The scenario file format (YAML): a world (workers, chain, image registry), manifests, and a timeline of steps
//! with expectations under simulated deadlines. Every struct denies unknown keys, so a misspelt key is an error
//! naming its line, not a silently ignored setting. `docs/scenarios.md` documents the format with an annotated
//! example.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

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
    /// `false`: the API server stores SeiNode / SeiNodeDeployment objects without validating them against the
    /// CRDs — as for objects stored before a rule existed, or written past a broken webhook — so the operator
    /// must cope with whatever it reads. `apply` steps then skip admission too.
    #[serde(default = "yes")]
    pub admission: bool,
    /// Block-sync speed (blocks per second) of named SeiNodes, overriding the simulator's default of 200: a
    /// slow node catches up long after it runs.
    #[serde(default)]
    pub sync_speeds: BTreeMap<String, u64>,
    /// Operator replicas (default 1). Two or more elect a leader through the Lease, as production's do
    /// (`sei_sim::operator_host::replicas`); one runs with no election, exactly as before.
    #[serde(default = "one")]
    pub operator_replicas: u32,
}

fn one() -> u32 {
    1
}

impl Default for WorldSpec {
    fn default() -> Self {
        WorldSpec {
            workers: default_workers(),
            tick: None,
            task_durations: BTreeMap::new(),
            admission: true,
            sync_speeds: BTreeMap::new(),
            operator_replicas: 1,
        }
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
    /// A sidecar task type (`config-validate`) that always fails in a pod running this image: a release that
    /// rejects the node's configuration. Unlike `taskFailure`, a property of the release, in every run.
    #[serde(default)]
    pub fails_task: Option<String>,
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
    /// Delete one child SeiNode of a deployment, picked when the step runs (a generated run cannot know its
    /// nodes' names): among its live children sorted by name — only the Failed ones when `failed` and there are
    /// any — the one at `index` modulo their count. With no child, nothing happens.
    DeleteChild(ChildPick),
    /// Let simulated time pass.
    #[serde(deserialize_with = "duration")]
    Wait(Duration),
    /// Inject a fault.
    Fault(Fault),
    /// Undo faults: all of them, or one kind.
    Heal(Heal),
    /// Wait (up to `within`) until everything listed holds; fail the scenario otherwise.
    Expect(Box<Expectation>),
    /// Liveness: run until the world is at rest — every SeiNodeDeployment settled (no rollout in progress, its
    /// status observed the latest spec or names the target that failed) and Ready, Degraded or Failed, every
    /// SeiNode Running or Failed — within this long; otherwise the scenario fails with the liveness invariant.
    #[serde(deserialize_with = "duration")]
    Settle(Duration),
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
    /// Dotted path → value, set on every object before it is applied (`null` removes the field): a fixture
    /// with another name, replica count or strategy, without a copy of the fixture.
    #[serde(default)]
    pub set: BTreeMap<String, serde_json::Value>,
    /// The apply must be refused by admission with an error containing this text (and nothing is stored):
    /// how a scenario shows what the CRD's rules refuse.
    #[serde(default)]
    pub rejected_with: Option<String>,
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

/// A child of a deployment, picked when the step runs.
#[derive(Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ChildPick {
    pub deployment: String,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub index: u32,
    /// Pick among the Failed children, when there are any: a user deleting a Failed node to retry it.
    #[serde(default)]
    pub failed: bool,
}

/// Kinds a timeline can name.
#[derive(Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectKind {
    SeiNodeDeployment,
    SeiNode,
    /// A deployment's Service (named after the deployment), which selects the nodes that get traffic.
    Service,
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
    /// Make the edit (of a SeiNodeDeployment) right after a moment of the operator's — its n-th status write,
    /// SeiNode write or Service write from now, or the status write that records a task Complete — inside the
    /// simulated tick, before the operator's next call (see [`crate::harness::aimed`]); the timeline waits for it.
    #[serde(default)]
    pub after: Option<crate::harness::aimed::Moment>,
}

/// A fault to inject.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq)]
// `rename_all_fields`: the variants' fields are camelCase too (`afterWrite`), like every other key.
#[serde(deny_unknown_fields, rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum Fault {
    /// Restart every container of a SeiNode's pod (a crash): the same pod, its restart counts up, its
    /// volume and its image kept.
    PodCrash { node: String },
    /// Delete a SeiNode's pod through the API (a drain, an eviction, `kubectl delete pod`) — or, with
    /// `bootstrap: true`, the live pod of its bootstrap Job. The pod object goes; its StatefulSet makes a new
    /// pod from its *current* template, the Job counts the lost pod as failed and makes another.
    PodDelete {
        node: String,
        #[serde(default, skip_serializing_if = "is_false")]
        bootstrap: bool,
    },
    /// Restart only a SeiNode's sidecar container (its memory is lost; seid waits for mark-ready again).
    SidecarRestart { node: String },
    /// Crash a worker node, every pod on it; back after `for` (unset: until `heal: workers` or `heal: all`). The
    /// worker is named by its index (`worker`) or as the one hosting a SeiNode's pod (`hosting`), which does
    /// not depend on where the seed scheduled the pod.
    WorkerCrash {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        worker: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        hosting: Option<String>,
        /// With `hosting`: the worker running that SeiNode's bootstrap Job pod instead of its own pod.
        #[serde(default, skip_serializing_if = "is_false")]
        bootstrap: bool,
        #[serde(
            default,
            rename = "for",
            deserialize_with = "optional_duration",
            serialize_with = "serialize_optional_duration",
            skip_serializing_if = "Option::is_none"
        )]
        down_for: Option<Duration>,
    },
    /// Crash the operator (all in-memory state lost; the store survives), now or right after its i-th write of
    /// a reconcile — of any reconcile, or only of one of an object of kind `reconciling`. With `untilHealed:
    /// true` (and `afterWrite`) it crashes right after the i-th write of every such reconcile, restart after
    /// restart — a crash loop — until `heal: operatorCrashes` or `heal: all`.
    OperatorCrash {
        // `rename_all` on an enum renames its variants, not their fields.
        #[serde(default, rename = "afterWrite", skip_serializing_if = "Option::is_none")]
        after_write: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reconciling: Option<String>,
        #[serde(default, rename = "untilHealed", skip_serializing_if = "is_false")]
        until_healed: bool,
    },
    /// Cut the network between the operator and a worker node.
    Partition { worker: u32 },
    /// Delay messages between the operator and a worker node.
    Latency {
        worker: u32,
        #[serde(deserialize_with = "duration", serialize_with = "serialize_duration")]
        delay: Duration,
    },
    /// Fail the operator's next writes with Conflict (`count`), or each write with probability `rate`, or
    /// (`everyOther: true`, until healed) its first write after each tick in which one of its writes succeeded:
    /// about every other write, without locking onto the same write of every reconcile as a strict count would.
    ApiConflicts {
        #[serde(default, skip_serializing_if = "is_zero")]
        count: u32,
        #[serde(default, skip_serializing_if = "is_zero_rate")]
        rate: f64,
        #[serde(default, rename = "everyOther", skip_serializing_if = "is_false")]
        every_other: bool,
    },
    /// Fail the operator's next API calls transiently (`count`), or each with probability `rate`.
    ApiErrors {
        #[serde(default, skip_serializing_if = "is_zero")]
        count: u32,
        #[serde(default, skip_serializing_if = "is_zero_rate")]
        rate: f64,
    },
    /// Serve the operator's reads from the store as it was `versions` versions ago.
    StaleReads { versions: u64 },
    /// Drop the next `count` watch events (a later event for the same object still arrives).
    DropWatchEvents { count: u32 },
    /// Make a sidecar task type fail its next `times` runs (on one node, or any).
    TaskFailure {
        task: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        node: Option<String>,
        #[serde(default = "once")]
        times: u32,
    },
    /// Take an RBAC permission away from the operator (see [`RevokedPermission`]).
    RevokePermission(RevokedPermission),
    /// The operator's next `count` writes (or each with probability `rate`) are applied by the API server but
    /// their responses are lost: a client timeout, or with `gatewayTimeout: true` a 504 the client re-sends.
    LostResponses {
        #[serde(default, skip_serializing_if = "is_zero")]
        count: u32,
        #[serde(default, skip_serializing_if = "is_zero_rate")]
        rate: f64,
        #[serde(default, rename = "gatewayTimeout", skip_serializing_if = "is_false")]
        gateway_timeout: bool,
    },
    /// For `for`, the API server refuses every call of the operator with `status`: 429 (with `retryAfter`), 503
    /// or 500.
    ApiRefusals {
        #[serde(rename = "for", deserialize_with = "duration", serialize_with = "serialize_duration")]
        duration: Duration,
        status: u16,
        #[serde(
            default,
            rename = "retryAfter",
            deserialize_with = "optional_duration",
            serialize_with = "serialize_optional_duration",
            skip_serializing_if = "Option::is_none"
        )]
        retry_after: Option<Duration>,
    },
    /// Crash operator replica `replica` (unset: the one holding the Lease); it restarts after `for` (unset: at
    /// once, as a container restart — with its identity, so it renews a Lease it still holds).
    ReplicaCrash {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replica: Option<u32>,
        #[serde(
            default,
            rename = "for",
            deserialize_with = "optional_duration",
            serialize_with = "serialize_optional_duration",
            skip_serializing_if = "Option::is_none"
        )]
        down_for: Option<Duration>,
    },
    /// Cut operator replica `replica` (unset: the leader) off from the API server for `for`: its calls fail.
    ReplicaApiPartition {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replica: Option<u32>,
        #[serde(rename = "for", deserialize_with = "duration", serialize_with = "serialize_duration")]
        duration: Duration,
    },
    /// Pause operator replica `replica`'s process (unset: the leader) for `for`: it runs nothing, its calls in
    /// flight land, and it resumes with its stale memory.
    ReplicaPause {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replica: Option<u32>,
        #[serde(rename = "for", deserialize_with = "duration", serialize_with = "serialize_duration")]
        duration: Duration,
    },
}

/// A cluster admin's RBAC edit taking one permission away from the operator's ServiceAccount, until
/// `heal: rbac` or `heal: all`: its calls needing it get 403, as they would on a cluster.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RevokedPermission {
    /// The API group; `""` (the default) for the core group.
    #[serde(default)]
    pub group: String,
    /// The resource, with `/subresource` when it is one (`seinodes/status`).
    pub resource: String,
    pub verb: String,
}

fn once() -> u32 {
    1
}

// Serializing a fault writes only what differs from the defaults, as a scenario file would (the fuzzer writes
// its faults through these).
fn is_false(value: &bool) -> bool {
    !value
}

fn is_zero<N: Default + PartialEq>(value: &N) -> bool {
    *value == N::default()
}

fn is_zero_rate(value: &f64) -> bool {
    *value == 0.0
}

/// A duration as a scenario writes it: whole seconds as `90s`, anything finer in milliseconds.
pub fn duration_text(duration: &Duration) -> String {
    if duration.subsec_millis() == 0 {
        format!("{}s", duration.as_secs())
    } else {
        format!("{}ms", duration.as_millis())
    }
}

fn serialize_duration<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&duration_text(duration))
}

fn serialize_optional_duration<S: Serializer>(duration: &Option<Duration>, serializer: S) -> Result<S::Ok, S::Error> {
    match duration {
        Some(duration) => serialize_duration(duration, serializer),
        None => serializer.serialize_none(),
    }
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
    /// Boot every crashed worker node now.
    Workers,
    /// Give back every permission a `revokePermission` took.
    Rbac,
    /// Disarm an operator crash still waiting for its write (`operatorCrash: {afterWrite}`), the persistent
    /// one (`untilHealed: true`) included.
    OperatorCrashes,
}

/// What must hold, and by when: a deadline, then a few orthogonal parts — which deployment (`deployment`) and
/// what holds of it (`is`), node sets (`nodes`), other objects (`objects`), one events matcher (`events`), one
/// panics matcher (`panics`) — and the checks of what happened that no object stores (`trace`,
/// `sidecarSubmissions`, `revisions`, `endState`, `settled`). Object checks are field matchers on dotted paths
/// of the stored object ([`ObjectCheck`]).
#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Expectation {
    /// Deadline in simulated time from this step's start; unset: must hold now.
    #[serde(default, deserialize_with = "optional_duration")]
    pub within: Option<Duration>,
    /// Everything listed must hold before this simulated time (from the start of the run), for checks tied
    /// to the world's schedule ("complete before the validators switch"); with `within` too, the earlier
    /// deadline counts. A step that begins at or after it fails.
    #[serde(default, deserialize_with = "optional_duration")]
    pub before: Option<Duration>,
    /// The SeiNodeDeployment this expectation is about: it must exist; `is` checks it; node sets `of:
    /// deployment`, `children` and `service` are its; `events` are those about it; `trace.perNode` counts its
    /// nodes.
    #[serde(default)]
    pub deployment: Option<String>,
    /// What holds of the deployment: field matchers on its paths, and its derived facts.
    #[serde(default)]
    pub is: Option<ObjectCheck>,
    /// Node sets, each picked by names or as a set, and what holds of them.
    #[serde(default, deserialize_with = "valid")]
    pub nodes: Vec<NodeSet>,
    /// Other objects by `Kind/name` (SeiNodeDeployment, SeiNode, Service, Job, PersistentVolumeClaim): whether
    /// they exist, and field matchers on their paths.
    #[serde(default)]
    pub objects: BTreeMap<ObjectPath, ObjectCheck>,
    /// Events about the deployment (about every object without one): each matcher must hold.
    #[serde(default, deserialize_with = "valid")]
    pub events: Vec<EventsMatcher>,
    /// seid's exits with an error, counted: each matcher must hold.
    #[serde(default, deserialize_with = "valid")]
    pub panics: Vec<PanicsMatcher>,
    /// Revisions, by names the scenario gives them: each name lists places that must all carry one revision —
    /// `service` (the revision the deployment's Service selects), `activeSet` (`status.activeSet.revision`),
    /// `templateHash` (`status.templateHash`) or a SeiNode's name (its `sei.io/revision` label). The first
    /// step that passes binds the name to that revision for the rest of the scenario, and a name binds only a
    /// revision no other name stands for, so `{blue: [service]}` then `{green: [service]}` says traffic moved.
    #[serde(default)]
    pub revisions: BTreeMap<String, Vec<String>>,
    /// Lines the trace must hold, and how many times.
    #[serde(default)]
    pub trace: Vec<TraceExpectation>,
    /// What the sidecars were asked to do.
    #[serde(default)]
    pub sidecar_submissions: Option<SubmissionsExpectation>,
    /// The objects the world holds, exactly, as `sei_sim::scenario::end_state` prints them (one line per
    /// object): what the fuzzer's differential oracle writes into a failing case.
    #[serde(default)]
    pub end_state: Vec<String>,
    /// `true`: every SeiNodeDeployment has settled — no rollout in progress, and its status observed its latest
    /// generation or names the target that failed (the liveness invariant's notion).
    #[serde(default)]
    pub settled: bool,
    /// Checks that must hold at every step while this expectation waits, until the rest of it holds: `until the
    /// slow entrant caught up, the Service selects the incumbents`. A failure is reported at once. Takes no
    /// `within`; revision names it binds are forgotten.
    #[serde(default)]
    pub meanwhile: Option<Box<Expectation>>,
    /// More expectations that must hold at the same moment as this one, each about its own deployment. They
    /// take this step's deadline, so they have no `within` (nor `meanwhile`) of their own.
    #[serde(default)]
    pub and: Vec<Expectation>,
}

/// An object, as `Kind/name` (in the scenario's namespace), for `objects`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ObjectPath {
    pub kind: CheckedKind,
    pub name: String,
}

/// The kinds `objects` can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum CheckedKind {
    SeiNodeDeployment,
    SeiNode,
    Service,
    Job,
    PersistentVolumeClaim,
}

impl<'de> Deserialize<'de> for ObjectPath {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let invalid = || {
            serde::de::Error::custom(format!(
                "{text:?} is not Kind/name (e.g. Service/rpc; kinds: SeiNodeDeployment, SeiNode, Service, Job, \
                 PersistentVolumeClaim)"
            ))
        };
        let (kind, name) = text.split_once('/').ok_or_else(invalid)?;
        let kind = match kind {
            "SeiNodeDeployment" => CheckedKind::SeiNodeDeployment,
            "SeiNode" => CheckedKind::SeiNode,
            "Service" => CheckedKind::Service,
            "Job" => CheckedKind::Job,
            "PersistentVolumeClaim" => CheckedKind::PersistentVolumeClaim,
            _ => return Err(invalid()),
        };
        if name.is_empty() {
            return Err(invalid());
        }
        Ok(ObjectPath { kind, name: name.to_owned() })
    }
}

/// What holds of one object: field matchers on dotted paths of the object as stored, and a few typed keys for
/// what is not a stored field. A key is a typed key when it is one of the words below, a path otherwise (every
/// path starts with `metadata`, `spec` or `status`).
///
/// Paths: `.` separates segments; a number indexes a list (`status.plan.tasks.0.type`); another segment into a
/// list picks the item whose `type` it is (`status.conditions.Ready.reason`); a key with dots in it is written
/// as it is (`spec.selector.sei.io/revision`). A missing field reads as `null`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ObjectCheck {
    /// `exists: false`: the object must not exist (and nothing else is checked); otherwise it must.
    pub exists: Option<bool>,
    /// Dotted path → matcher, in the order the scenario lists them (the order failures are reported in).
    pub fields: Vec<(String, Matcher)>,
    /// A SeiNodeDeployment's plan is at this task: the type of its first task not Complete, while Active.
    pub current_task: Option<String>,
    /// A SeiNodeDeployment's `status.templateHash` is (`true`) or is not the hash of its current template.
    pub latest_spec_rolled_out: Option<bool>,
    /// `true`: every SeiNode labelled with the deployment's name (not being deleted) is its child.
    pub adopted_all: Option<bool>,
    /// A SeiNode's pod, as the kubelet runs it.
    pub pod: Option<PodCheck>,
    /// A SeiNode's panics (its pods' seid exits with an error), as the expectation's `panics`.
    pub panics: Vec<PanicsMatcher>,
}

impl ObjectCheck {
    /// The matcher of a path, if the check has one.
    pub fn field(&self, path: &str) -> Option<&Matcher> {
        self.fields.iter().find(|(p, _)| p == path).map(|(_, matcher)| matcher)
    }
}

impl PanicsMatcher {
    /// Whether it counts one way at most.
    pub fn validate(&self) -> Result<(), String> {
        if self.count.is_some() && self.at_most.is_some() {
            return Err("a panics matcher takes count or atMost, not both".into());
        }
        Ok(())
    }
}

/// The typed keys of an [`ObjectCheck`]; every other key is a path.
const TYPED_KEYS: [&str; 6] = ["exists", "currentTask", "latestSpecRolledOut", "adoptedAll", "pod", "panics"];

impl<'de> Deserialize<'de> for ObjectCheck {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = ObjectCheck;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                write!(f, "a map of dotted paths (and {}) to what they must be", TYPED_KEYS.join(", "))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<ObjectCheck, A::Error> {
                let mut check = ObjectCheck::default();
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "exists" => check.exists = Some(map.next_value()?),
                        "currentTask" => check.current_task = Some(map.next_value()?),
                        "latestSpecRolledOut" => check.latest_spec_rolled_out = Some(map.next_value()?),
                        "adoptedAll" => check.adopted_all = Some(map.next_value()?),
                        "pod" => check.pod = Some(map.next_value()?),
                        "panics" => {
                            let panics: Vec<PanicsMatcher> = map.next_value()?;
                            for matcher in &panics {
                                matcher.validate().map_err(serde::de::Error::custom)?;
                            }
                            check.panics = panics;
                        }
                        path if ["metadata", "spec", "status"].contains(&path_root(path)) => {
                            if check.field(&key).is_some() {
                                return Err(serde::de::Error::custom(format!("path {key:?} twice")));
                            }
                            check.fields.push((key, map.next_value()?));
                        }
                        _ => {
                            return Err(serde::de::Error::custom(format!(
                                "{key:?} is neither a path (metadata..., spec..., status...) nor one of {}",
                                TYPED_KEYS.join(", ")
                            )));
                        }
                    }
                }
                Ok(check)
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

/// The first segment of a dotted path.
fn path_root(path: &str) -> &str {
    path.split('.').next().unwrap_or_default()
}

/// What a value at a path must be. A plain value (a text, number, boolean, list or `null`) means `equals`; a
/// map lists matchers, all of which must hold. `null` stands for a missing field.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Matcher {
    /// The value, exactly (`null`: missing).
    pub equals: Option<serde_json::Value>,
    /// Anything but this value.
    pub not: Option<serde_json::Value>,
    /// `true`: set (not `null`); `false`: missing.
    pub present: Option<bool>,
    /// A text containing each of these texts, or a list containing each of these values.
    pub contains: Vec<serde_json::Value>,
    /// One of these values.
    pub one_of: Option<Vec<serde_json::Value>>,
    /// A number above this one.
    pub above: Option<i64>,
    /// Remember the value under this name once the whole expectation holds (it must be set).
    pub remember: Option<String>,
    /// The value remembered under this name.
    pub same_as: Option<String>,
    /// Not the value remembered under this name.
    pub different_from: Option<String>,
}

/// The matcher keys, as written in a scenario.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct MatcherKeys {
    #[serde(default, deserialize_with = "some_value")]
    equals: Option<serde_json::Value>,
    #[serde(default, deserialize_with = "some_value")]
    not: Option<serde_json::Value>,
    #[serde(default)]
    present: Option<bool>,
    #[serde(default)]
    contains: Option<serde_json::Value>,
    #[serde(default)]
    one_of: Option<Vec<serde_json::Value>>,
    #[serde(default)]
    above: Option<i64>,
    #[serde(default)]
    remember: Option<String>,
    #[serde(default)]
    same_as: Option<String>,
    #[serde(default)]
    different_from: Option<String>,
}

/// A value that may be `null`, kept as `Some(Null)`: `equals: null` is a matcher, not an unset key.
fn some_value<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<serde_json::Value>, D::Error> {
    serde_json::Value::deserialize(deserializer).map(Some)
}

impl<'de> Deserialize<'de> for Matcher {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        if !value.is_object() {
            return Ok(Matcher { equals: Some(value), ..Matcher::default() });
        }
        let keys: MatcherKeys = serde_json::from_value(value).map_err(|e| {
            serde::de::Error::custom(format!(
                "a matcher map takes equals, not, present, contains, oneOf, above, remember, sameAs, \
                 differentFrom (to compare with a map, write `equals: {{...}}`): {e}"
            ))
        })?;
        let contains = match keys.contains {
            None => Vec::new(),
            Some(serde_json::Value::Array(items)) => items,
            Some(one) => vec![one],
        };
        Ok(Matcher {
            equals: keys.equals,
            not: keys.not,
            present: keys.present,
            contains,
            one_of: keys.one_of,
            above: keys.above,
            remember: keys.remember,
            same_as: keys.same_as,
            different_from: keys.different_from,
        })
    }
}

/// A set of SeiNodes — by `names`, or `of` a set — and what holds of them: each of them is as `are` says
/// (at least `atLeast` of them, when given), and the set is `exactly` these names.
#[derive(Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NodeSet {
    /// These SeiNodes (one name, or a list): each must exist, unless `are: {exists: false}`.
    #[serde(default, deserialize_with = "one_or_many")]
    pub names: Vec<String>,
    /// Or a set, found when the check runs.
    #[serde(default)]
    pub of: Option<NodeSetKind>,
    /// The set is exactly these SeiNodes, in any order.
    #[serde(default)]
    pub exactly: Option<Vec<String>>,
    /// With `of` and `are`: at least this many of the set are as `are` says (which ones does not matter);
    /// without it, every one is, and the set is not empty.
    #[serde(default)]
    pub at_least: Option<u32>,
    /// What holds of each.
    #[serde(default)]
    pub are: Option<ObjectCheck>,
}

impl NodeSet {
    /// Whether the keys go together: `names` or `of`; `exactly` and `atLeast` with `of`; `atLeast` with `are`.
    pub fn validate(&self) -> Result<(), String> {
        match (self.names.is_empty(), self.of) {
            (false, None) if self.exactly.is_some() || self.at_least.is_some() => {
                Err(format!("nodes {:?}: `exactly` and `atLeast` go with `of`, not `names`", self.names))
            }
            (false, None) => Ok(()),
            (true, Some(_)) if self.at_least.is_some() && self.are.is_none() => {
                Err("a node set with `atLeast` says what they `are`".into())
            }
            (true, Some(_)) => Ok(()),
            _ => Err("a node set takes `names` or `of`, one of them".into()),
        }
    }
}

/// Parse-time checks of a list's items, so a mistake is an error naming the file and line, not a step that
/// fails at its deadline.
pub(crate) trait Validate {
    fn validate(&self) -> Result<(), String>;
}

impl Validate for NodeSet {
    fn validate(&self) -> Result<(), String> {
        NodeSet::validate(self)
    }
}

impl Validate for EventsMatcher {
    fn validate(&self) -> Result<(), String> {
        EventsMatcher::validate(self)
    }
}

impl Validate for PanicsMatcher {
    fn validate(&self) -> Result<(), String> {
        PanicsMatcher::validate(self)
    }
}

fn valid<'de, D: Deserializer<'de>, T: Deserialize<'de> + Validate>(deserializer: D) -> Result<Vec<T>, D::Error> {
    let items = Vec::<T>::deserialize(deserializer)?;
    for item in &items {
        item.validate().map_err(serde::de::Error::custom)?;
    }
    Ok(items)
}

/// The node sets a [`NodeSet`] can be `of`.
#[derive(Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum NodeSetKind {
    /// The live (not deleting) SeiNodes labelled with the expectation's deployment (the namespace's without one).
    Deployment,
    /// The live SeiNodes of the namespace.
    Namespace,
    /// The SeiNodes the deployment controls (ownerReference), those being deleted included.
    Children,
    /// The SeiNodes the deployment's Service selects, those being deleted included (their pods may still serve).
    Service,
}

/// What holds of a SeiNode's pod (`<node>-0`): runtime state no object stores.
#[derive(Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PodCheck {
    /// The pod is Ready (seid runs, marked ready, and has not panicked).
    #[serde(default)]
    pub ready: Option<bool>,
    /// The sidecar process now running in the pod has completed a mark-ready (its healthz answers 200) — the
    /// pod's truth, where `status.sidecarReady` is what the SeiNode controller last observed.
    #[serde(default)]
    pub marked_ready: Option<bool>,
    /// The config the seid now running in the pod read when it started, `{overrides, peers}`. Fails when seid
    /// does not run.
    #[serde(default)]
    pub seid_config: Option<serde_json::Value>,
    /// How many times the pod has restarted its seid container; a pod made again starts at 0.
    #[serde(default)]
    pub seid_restarts: Option<u32>,
}

/// Events picked by `type`, `reason` and `messageContains` (unset: any), and what holds of them: one mode —
/// `inOrder` (these reasons in this order, others between allowed), `exactly` (these reasons, in order, and no
/// others), `none` (no event with these reasons), `count` (exactly this many events), `atMost` — or, with no
/// mode, at least one event.
#[derive(Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EventsMatcher {
    /// `Normal` or `Warning`.
    #[serde(default, rename = "type")]
    pub type_: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub message_contains: Option<String>,
    #[serde(default)]
    pub in_order: Option<Vec<String>>,
    #[serde(default)]
    pub exactly: Option<Vec<String>>,
    #[serde(default)]
    pub none: Option<Vec<String>>,
    #[serde(default)]
    pub count: Option<u32>,
    #[serde(default)]
    pub at_most: Option<u32>,
}

impl EventsMatcher {
    /// Whether it has one mode at most.
    pub fn validate(&self) -> Result<(), String> {
        let modes = [
            self.in_order.is_some(),
            self.exactly.is_some(),
            self.none.is_some(),
            self.count.is_some(),
            self.at_most.is_some(),
        ];
        if modes.iter().filter(|m| **m).count() > 1 {
            return Err("an events matcher takes one of inOrder, exactly, none, count, atMost".into());
        }
        Ok(())
    }
}

/// seid's exits with an error (panics) picked by node, node-name prefix, image and kind (`upgrade: true`: only
/// upgrade panics, a binary stopping at an upgrade it does not know), counted: `count` exactly, `atMost`, or
/// with neither at least one.
#[derive(Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PanicsMatcher {
    #[serde(default)]
    pub upgrade: bool,
    /// Of this SeiNode's pods, in the scenario's namespace (set by the node check it sits in).
    #[serde(default)]
    pub node: Option<String>,
    /// Of the pods of SeiNodes whose names start so.
    #[serde(default)]
    pub node_prefix: Option<String>,
    /// Of pods running this image.
    #[serde(default)]
    pub image: Option<String>,
    #[serde(default)]
    pub count: Option<u32>,
    #[serde(default)]
    pub at_most: Option<u32>,
}

pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let signed: sei_operator_core::clock::SignedDuration =
        text.parse().map_err(|e| format!("{text:?} is not a duration like 30s, 5m or 1h: {e}"))?;
    Duration::try_from(signed).map_err(|_| format!("{text:?} is negative"))
}

fn duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    parse_duration(&text).map_err(serde::de::Error::custom)
}

pub(crate) fn optional_duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Duration>, D::Error> {
    Option::<String>::deserialize(deserializer)?
        .map(|text| parse_duration(&text).map_err(serde::de::Error::custom))
        .transpose()
}

/// A list of texts, or one text alone (`messageContains: stalled` or `messageContains: [a, b]`).
fn one_or_many<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    match OneOrMany::deserialize(deserializer) {
        Ok(OneOrMany::One(text)) => Ok(vec![text]),
        Ok(OneOrMany::Many(texts)) => Ok(texts),
        Err(_) => Err(serde::de::Error::custom("expected a text or a list of texts")),
    }
}

fn duration_map<'de, D: Deserializer<'de>>(deserializer: D) -> Result<BTreeMap<String, Duration>, D::Error> {
    BTreeMap::<String, String>::deserialize(deserializer)?
        .into_iter()
        .map(|(key, text)| Ok((key, parse_duration(&text).map_err(serde::de::Error::custom)?)))
        .collect()
}

/// Trace lines matching `line` — a text each line must contain, where `*` stands for any run of characters —
/// occur `count` times exactly, or at least `atLeast` and at most `atMost` times; at least once when none is
/// given. Every API write is a trace line (`operator replace-status SeiNode sei/rpc-0`), so this is also how a
/// scenario counts writes.
#[derive(Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TraceExpectation {
    pub line: String,
    #[serde(default)]
    pub count: Option<u32>,
    #[serde(default)]
    pub at_least: Option<u32>,
    #[serde(default)]
    pub at_most: Option<u32>,
    /// Only lines recorded after this `mark` step; the whole trace when unset.
    #[serde(default)]
    pub since: Option<String>,
    /// `true`: `{node}` in `line` stands for each live SeiNode of the namespace (of `deployment`, when the
    /// expectation names one) in turn, and the counts hold for each node's lines on their own.
    #[serde(default)]
    pub per_node: bool,
}

/// Task submissions the sidecars accepted. seictl answers 201 whether the id was new or known
/// (sei-protocol/seictl `sidecar/engine/engine.go`, `Engine.Submit`), so whether a submission started work —
/// a new id, or a failed one re-run — is the simulator's record, not the answer's.
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

/// One sidecar submission: to the pod of `node` (`<node>-0`), of task type `task`, and whether it `started`
/// work (a new id, or a failed one re-run) or was a no-op (an id running or completed).
#[derive(Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SubmissionMatch {
    #[serde(default)]
    pub node: Option<String>,
    #[serde(default)]
    pub task: Option<String>,
    #[serde(default)]
    pub started: Option<bool>,
}
