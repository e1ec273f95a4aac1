//! A generated run: one SeiNodeDeployment (and, in some InPlace and BlueGreen runs, a neighbour beside it:
//! [`Op::Neighbour`]), a chain, and a timeline of user operations and faults with waits between them — and its
//! rendering as a scenario file, so what the fuzzer runs and what it writes out for a failure are the same text.
//! Its faults are the scenario format's own ([`crate::scenario::format::Fault`]): one vocabulary for what a
//! scenario injects, whoever wrote it.
//!
//! The generator only builds runs whose right outcome is known, so an oracle failure is an operator bug and not
//! a user's mistake: InPlace and BlueGreen runs move between releases that process the same blocks (the chain's
//! upgrade is out of reach); HardFork runs start on the old binary, are Ready before anything else happens, and
//! fork to releases that know the upgrade. Two bad releases are generated on purpose, each with a known
//! outcome: a missing image (its rollout stalls until a later edit supersedes it; a run never ends on it) and,
//! in BlueGreen runs, a release that rejects the node's configuration (its rollout must fail, reported).
//!
//! A HardFork run's chain passes the upgrade height only when the run ends with the fleet asked onto a release
//! that knows the upgrade, and no haltHeight typo is in flight: a fleet the user leaves on the pre-fork binary
//! crash-loops at the upgrade (the user's choice, not the operator's), and a mistyped haltHeight above the upgrade
//! is harmless only while the chain waits below it. Otherwise the external validators never switch within the run.

use std::fmt;
use std::time::Duration;

use proptest::prelude::*;
use serde_json::{Value, json};

use crate::scenario::format::{Fault, RevokedPermission};

/// The deployment every run creates.
pub const DEPLOYMENT: &str = "fuzz";
/// The second deployment an [`Op::Neighbour`] applies beside it (a name that shares no prefix with
/// [`DEPLOYMENT`], so that the oracles can tell their objects apart by name).
pub const NEIGHBOUR: &str = "neighbour";
pub const NAMESPACE: &str = "sei";
/// Worker nodes of the generated world.
pub const WORKERS: u32 = 3;

/// Releases that process the same blocks as the incumbent: any rollout among them must complete.
const PATCH_RELEASES: [&str; 3] = ["sei:v6.3.0", "sei:v6.3.1", "sei:v6.3.2"];
/// Not in the registry (ImagePullBackOff): a rollout to it stalls, by design, until a later edit supersedes it.
/// A run whose last edit names it gets the user's fix (an edit back to a patch release) before it must settle.
pub const MISSING_RELEASE: &str = "sei:v6.3.3-missing";
/// Its `config-validate` always fails: BlueGreen entrants on it fail their init plans, and so does the rollout —
/// the generated way to fail a plan. Only in BlueGreen runs: under InPlace, running nodes never re-validate, so
/// the release would run and fail only nodes created later.
pub const BROKEN_RELEASE: &str = "sei:v6.3.4-strict";
/// What InPlace runs edit the image to (an index into it: `Op::SetImage`).
const INPLACE_RELEASES: [&str; 4] = [PATCH_RELEASES[0], PATCH_RELEASES[1], PATCH_RELEASES[2], MISSING_RELEASE];
/// What BlueGreen runs edit the image to.
const BLUEGREEN_RELEASES: [&str; 5] =
    [PATCH_RELEASES[0], PATCH_RELEASES[1], PATCH_RELEASES[2], MISSING_RELEASE, BROKEN_RELEASE];
/// Releases that know the upgrade: the targets of a HardFork.
const FORK_RELEASES: [&str; 2] = ["sei:v6.4.0", "sei:v6.4.1"];
const UPGRADE: &str = "v6.4.0";
/// Sidecar (seictl) releases: the sidecar image is a rollout field, so an edit of it rolls the fleet out as an
/// image edit does ([`Op::SetSidecar`]).
const SIDECAR_RELEASES: [&str; 2] = ["seictl:v0.9.0", "seictl:v0.9.1"];
/// The HardFork chain: the tip starts here and the upgrade height is 300 blocks (1 s each) ahead.
const FORK_START_HEIGHT: u64 = 4_700;
const FORK_HEIGHT: u64 = 5_000;

/// The update strategy a run starts with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpdateStrategy {
    InPlace,
    BlueGreen,
    HardFork,
    /// InPlace with a height gate at the chain's upgrade (`updateStrategy.inPlace.upgradeHeight`): the run starts
    /// on the old binary, as HardFork runs do, and moves to releases that know the upgrade.
    GatedInPlace,
}

impl UpdateStrategy {
    /// `spec.updateStrategy.type`.
    fn name(self) -> &'static str {
        match self {
            UpdateStrategy::InPlace | UpdateStrategy::GatedInPlace => "InPlace",
            UpdateStrategy::BlueGreen => "BlueGreen",
            UpdateStrategy::HardFork => "HardFork",
        }
    }

    /// How a case names it.
    fn label(self) -> &'static str {
        match self {
            UpdateStrategy::GatedInPlace => "InPlace gated",
            other => other.name(),
        }
    }

    /// Runs that cross the chain's upgrade: they start on the old binary and move to releases that know it.
    fn crosses_the_upgrade(self) -> bool {
        matches!(self, UpdateStrategy::HardFork | UpdateStrategy::GatedInPlace)
    }
}

/// Whether a fault needs two operator replicas. A case with any replica fault runs two replicas
/// (`world.operatorReplicas: 2`); the unperturbed run of the differential oracle runs one.
fn needs_replicas(fault: &Fault) -> bool {
    matches!(fault, Fault::ReplicaCrash { .. } | Fault::ReplicaApiPartition { .. } | Fault::ReplicaPause { .. })
}

/// Permissions the operator's rollouts use, for the generated `revokePermission` faults: (resource, verb).
const REVOCABLE: &[(&str, &str)] = &[
    ("persistentvolumeclaims", "update"),
    ("services", "update"),
    ("seinodes", "create"),
    ("seinodes", "update"),
    ("seinodes", "delete"),
    ("statefulsets", "update"),
    ("jobs", "create"),
];

/// Sidecar task types a generated `taskFailure` fails: those a plan retries (`max_retries` 3,
/// `core/src/plan/task_type.rs`) and `mark-ready`, which a Running node re-submits with back-off for ever
/// (`core/src/tasks/mark_ready.rs`). Not `restart-seid`: a failed restart is reported and fails its plan on the
/// first failure, by design — work a fault fails, not one it only delays.
const RETRIED_TASKS: [&str; 6] =
    ["snapshot-restore", "config-apply", "discover-peers", "config-validate", "mark-ready", "await-condition"];

/// How many scripted failures of one task type a run injects at most: within the 3 retries of a plan's task, so
/// that every one of them only delays the run and the differential oracle can ask for the unperturbed end state.
const TASK_FAILURES_PER_TYPE: u32 = 3;

/// One step of a generated timeline.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    Wait {
        secs: u64,
    },
    /// Edit the template image (index into the run's releases: patch releases, then the bad ones).
    SetImage {
        release: usize,
    },
    /// Edit a template field outside the rollout hash (a config override): no rollout, children follow.
    EditOverride {
        value: u32,
    },
    /// Edit seid's CPU request, a pod setting: no rollout, the nodes' pods are replaced one at a time.
    EditResources {
        cpus: u32,
    },
    Scale {
        replicas: u32,
    },
    /// Switch an InPlace run to BlueGreen and back (BlueGreen runs, which may edit to the broken release, and
    /// HardFork runs keep their strategy: the outcome of a broken release depends on the strategy).
    ToggleStrategy,
    Delete,
    /// A fault, in the scenario format's own vocabulary: what the fuzzer generates is what a case file says.
    Fault(Fault),
    Heal,
    /// A→B→A: edit the image to another good release and, `after_secs` later, back to the one before. Under
    /// BlueGreen / HardFork a revert that lands before the traffic switch cancels the rollout (issue #14).
    Revert {
        release: usize,
        after_secs: u64,
    },
    /// HardFork only, while the template is still pre-fork: the fork edit with a mistyped haltHeight
    /// (`FORK_HEIGHT + excess`), corrected `after_secs` later. Above the upgrade and while the chain waits below it, the typo's rollout can never finish.
    HaltHeightTypo {
        release: usize,
        excess: u64,
        after_secs: u64,
    },
    /// An image edit, then `after_secs` later the deletion of one of the deployment's SeiNodes (picked when it runs:
    /// `index` modulo the live children) — a child deleted mid-rollout.
    DeleteChildMidRollout {
        release: usize,
        after_secs: u64,
        index: u32,
    },
    /// The deletion of one of the deployment's SeiNodes, a Failed one if there is any: a user retrying it.
    DeleteFailedChild {
        index: u32,
    },
    /// An image edit, then `after_secs` later reads that lag `versions` (1–2) behind the store until a heal: the
    /// traffic switch and teardown fall under them. The run without faults keeps the edit and the wait.
    EditThenStaleReads {
        release: usize,
        after_secs: u64,
        versions: u64,
    },
    /// Sidecar tasks of one type fail `times` times (on the first set's node `ordinal`, or whichever runs one
    /// first), then an image edit and `after_secs` of its rollout: the entrants' or the replaced pods' tasks
    /// meet the failures. Within the retries a run allows (`TASK_FAILURES_PER_TYPE`), they only delay it. The
    /// run without faults keeps the edit and the wait.
    FailTasksThenEdit {
        task: usize,
        ordinal: Option<u32>,
        times: u32,
        release: usize,
        after_secs: u64,
    },
    /// `deletionPolicy: Retain`, delete, wait until the deployment is gone, then apply it again as it was: the
    /// retained nodes must be adopted (`Bounds::retain_reapply`).
    ReapplyAfterRetainDelete,
    /// `deletionPolicy: Retain`, then delete: the deployment goes, its nodes stay as they are (later edits are
    /// dropped, as after any delete).
    RetainDelete,
    /// A wait past the rollout stall threshold (10 minutes) and its report's grace: a rollout still running by
    /// then must say Stalled.
    LongWait {
        secs: u64,
    },
    /// An image edit, then a second edit aimed at a moment of the rollout it starts (see [`AimedAt`]), landing
    /// right after the operator's write, before its next call: back to the image before (`revert`, a cancel
    /// under BlueGreen / HardFork) or on to another good release (a supersession).
    AimedEdit {
        release: usize,
        at: AimedAt,
        nth: u32,
        revert: bool,
    },
    /// Grow the template's storage by `by` × 250 GiB (from a full node's built-in 2000 GiB): not a rollout field,
    /// so each node's claim is expanded in place (the operator updates it), and nodes made later get the new
    /// size. Never smaller: a claim cannot shrink (a user's mistake with its own scenario).
    GrowStorage {
        by: u32,
    },
    /// Edit the sidecar image to another seictl release (`release` indexes them; the current one means the
    /// next): a seictl upgrade, a rollout of its own. InPlace and BlueGreen runs that never edit to the broken
    /// release: its failed rollout leaves the fleet on whichever sidecar the timing left, with no one right
    /// end state (the image's placeholder covers the seid release only).
    SetSidecar {
        release: usize,
    },
    /// A second deployment, [`NEIGHBOUR`] (InPlace, or BlueGreen when `blue_green`; `replicas` on the run's first
    /// release), applied here and `after_secs` later edited to another patch release: its rollout runs beside the
    /// run's own, under the same faults, as a platform team's deployments share a namespace and an upgrade day.
    /// The operator must keep the two apart — a fault or a user's action aimed at one may only delay the other —
    /// and both must end as they do without the faults. InPlace and BlueGreen runs only (a HardFork or gated run's
    /// chain passes an upgrade the neighbour's releases refuse), at most once a run.
    Neighbour {
        replicas: u32,
        blue_green: bool,
        release: usize,
        after_secs: u64,
    },
}

/// The moment an [`Op::AimedEdit`] lands after.
#[derive(Clone, Debug, PartialEq)]
pub enum AimedAt {
    /// The deployment's n-th status write.
    StatusWrite,
    /// The status write that records a plan task Complete (an index into the strategy's plan tasks).
    TaskCompleted(usize),
    /// The n-th write of one of its SeiNodes: the reconcile that follows may be the one in which a wait on the
    /// nodes completes.
    NodeWrite,
    /// The n-th write of its Service: between the traffic switch and the teardown.
    ServiceWrite,
}

impl Op {
    fn is_perturbation(&self) -> bool {
        matches!(self, Op::Fault(_) | Op::Heal)
    }

    /// Whether the perturbed run has something the unperturbed one leaves out: a fault, a heal, stale reads.
    fn perturbs(&self) -> bool {
        self.is_perturbation() || matches!(self, Op::EditThenStaleReads { .. } | Op::FailTasksThenEdit { .. })
    }
}

/// A whole generated run.
#[derive(Clone, Debug, PartialEq)]
pub struct FuzzCase {
    pub seed: u64,
    pub strategy: UpdateStrategy,
    pub replicas: u32,
    /// HardFork runs: when the chain's external validators switch to the new binary (seconds from the start).
    pub validators_switch_secs: u64,
    pub ops: Vec<Op>,
}

impl fmt::Display for FuzzCase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ×{} seed {}: ", self.strategy.label(), self.replicas, self.seed)?;
        let ops: Vec<String> = self.ops.iter().map(|op| format!("{op:?}")).collect();
        write!(f, "{}", ops.join(", "))
    }
}

/// What bounds generation.
#[derive(Clone, Copy, Debug)]
pub struct Bounds {
    pub max_replicas: u32,
    pub max_ops: usize,
    /// Generate `ReapplyAfterRetainDelete` (on by default; `--without-retain-reapply` turns it off).
    pub retain_reapply: bool,
    /// Generate InPlace and BlueGreen runs only: measuring a bug class the HardFork runs' open findings would
    /// otherwise cut short (`--without-hard-fork`).
    pub without_hard_fork: bool,
}

impl Bounds {
    pub fn new(max_replicas: u32, max_ops: usize) -> Self {
        Bounds { max_replicas, max_ops, retain_reapply: true, without_hard_fork: false }
    }
}

/// The plan tasks of a strategy's rollout, as `AimedAt::TaskCompleted` indexes them.
fn plan_tasks(strategy: UpdateStrategy) -> &'static [&'static str] {
    match strategy {
        UpdateStrategy::InPlace => &["update-node-specs", "await-spec-update", "mark-nodes-ready"],
        UpdateStrategy::BlueGreen => &[
            "create-entrant-nodes",
            "await-nodes-running",
            "await-nodes-caught-up",
            "switch-traffic",
            "teardown-nodes",
        ],
        UpdateStrategy::HardFork => {
            &["create-entrant-nodes", "await-nodes-running", "switch-traffic", "teardown-nodes"]
        }
        UpdateStrategy::GatedInPlace => &["update-node-specs-at-height", "await-spec-update", "mark-nodes-ready"],
    }
}

/// The most replicas an [`Op::Neighbour`] has: a bystander, not a second fleet to pay for in every case.
const NEIGHBOUR_MAX_REPLICAS: u32 = 2;

/// How long a generated aimed edit waits for its moment before it is made anyway.
const AIMED_EDIT_WITHIN_SECS: u64 = 300;

/// Whole runs within `bounds`.
pub fn cases(bounds: Bounds) -> impl proptest::strategy::Strategy<Value = FuzzCase> {
    let max_replicas = bounds.max_replicas.max(1);
    let strategy = if bounds.without_hard_fork {
        prop_oneof![Just(UpdateStrategy::InPlace), Just(UpdateStrategy::BlueGreen), Just(UpdateStrategy::GatedInPlace)]
            .boxed()
    } else {
        prop_oneof![
            Just(UpdateStrategy::InPlace),
            Just(UpdateStrategy::BlueGreen),
            Just(UpdateStrategy::HardFork),
            Just(UpdateStrategy::GatedInPlace),
        ]
        .boxed()
    };
    (any::<u64>(), strategy, 1..=max_replicas, 240u64..900)
        .prop_flat_map(move |(seed, strategy, replicas, switch)| {
            let ops =
                proptest::collection::vec(op(strategy, max_replicas, bounds.retain_reapply), 1..=bounds.max_ops.max(1));
            (Just(seed), Just(strategy), Just(replicas), Just(switch), ops)
        })
        .prop_map(|(seed, strategy, replicas, validators_switch_secs, ops)| FuzzCase {
            seed,
            strategy,
            replicas,
            validators_switch_secs,
            ops,
        })
}

fn op(
    strategy: UpdateStrategy,
    max_replicas: u32,
    retain_reapply: bool,
) -> impl proptest::strategy::Strategy<Value = Op> {
    let good = good_releases(strategy).len();
    // Bad releases sit after the good ones in `releases(strategy)`; one edit in six names one of them.
    let (missing_weight, broken_weight) = match strategy {
        UpdateStrategy::HardFork | UpdateStrategy::GatedInPlace => (0, 0),
        UpdateStrategy::InPlace => (1, 0),
        UpdateStrategy::BlueGreen => (1, 1),
    };
    let release = prop_oneof![
        4 => 0..good,
        missing_weight => Just(PATCH_RELEASES.len()),
        broken_weight => Just(PATCH_RELEASES.len() + 1),
    ];
    let toggle_weight = if strategy == UpdateStrategy::InPlace { 1 } else { 0 };
    let typo_weight = if strategy.crosses_the_upgrade() { 1 } else { 0 };
    // Not under a height gate: a deployment applied again knows only what its adopted nodes run. A node it makes
    // restores a snapshot from below the upgrade with a binary that knows it, and the binary that could replay
    // those blocks was forgotten with the deleted deployment — no right outcome (docs/fuzzing.md).
    let reapply_weight = u32::from(retain_reapply && strategy != UpdateStrategy::GatedInPlace);
    let neighbour_weight = u32::from(!strategy.crosses_the_upgrade());
    let sidecar_weight = u32::from(!strategy.crosses_the_upgrade());
    let index = 0..max_replicas;
    let arms: Vec<(u32, BoxedStrategy<Op>)> = vec![
        (5, (5u64..300).prop_map(|secs| Op::Wait { secs }).boxed()),
        (4, release.prop_map(|release| Op::SetImage { release }).boxed()),
        (1, (0u32..1000).prop_map(|value| Op::EditOverride { value }).boxed()),
        (1, (1u32..64).prop_map(|cpus| Op::EditResources { cpus }).boxed()),
        (1, (1..=max_replicas).prop_map(|replicas| Op::Scale { replicas }).boxed()),
        (toggle_weight, Just(Op::ToggleStrategy).boxed()),
        (1, Just(Op::Delete).boxed()),
        (5, fault(max_replicas).prop_map(Op::Fault).boxed()),
        (1, Just(Op::Heal).boxed()),
        (1, (0..good, 5u64..40).prop_map(|(release, after_secs)| Op::Revert { release, after_secs }).boxed()),
        (
            typo_weight,
            (0..good, 1u64..300, 5u64..90)
                .prop_map(|(release, excess, after_secs)| Op::HaltHeightTypo { release, excess, after_secs })
                .boxed(),
        ),
        (
            1,
            (0..good, 5u64..120, index.clone())
                .prop_map(|(release, after_secs, index)| Op::DeleteChildMidRollout { release, after_secs, index })
                .boxed(),
        ),
        (1, index.clone().prop_map(|index| Op::DeleteFailedChild { index }).boxed()),
        (
            1,
            (0..good, 5u64..120, 1u64..=2)
                .prop_map(|(release, after_secs, versions)| Op::EditThenStaleReads { release, after_secs, versions })
                .boxed(),
        ),
        (
            2,
            (
                0..RETRIED_TASKS.len(),
                proptest::option::of(index.clone()),
                1..=TASK_FAILURES_PER_TYPE,
                0..good,
                60u64..400,
            )
                .prop_map(|(task, ordinal, times, release, after_secs)| Op::FailTasksThenEdit {
                    task,
                    ordinal,
                    times,
                    release,
                    after_secs,
                })
                .boxed(),
        ),
        (reapply_weight, Just(Op::ReapplyAfterRetainDelete).boxed()),
        (1, (1u32..=4).prop_map(|by| Op::GrowStorage { by }).boxed()),
        (sidecar_weight, (0..SIDECAR_RELEASES.len()).prop_map(|release| Op::SetSidecar { release }).boxed()),
        (
            neighbour_weight,
            (1..=max_replicas.min(NEIGHBOUR_MAX_REPLICAS), any::<bool>(), 0..PATCH_RELEASES.len() - 1, 5u64..300)
                .prop_map(|(replicas, blue_green, release, after_secs)| Op::Neighbour {
                    replicas,
                    blue_green,
                    release,
                    after_secs,
                })
                .boxed(),
        ),
        (1, Just(Op::RetainDelete).boxed()),
        (1, (600u64..1200).prop_map(|secs| Op::LongWait { secs }).boxed()),
        // Most often the very next write: right after the detection's status write, the plan's first step is
        // the next reconcile's, and a supersession there is where a plan's extra step writes.
        (
            4,
            (0..good, aimed_at(strategy), prop_oneof![3 => Just(1u32), 1 => 2u32..5], any::<bool>())
                .prop_map(|(release, at, nth, revert)| Op::AimedEdit { release, at, nth, revert })
                .boxed(),
        ),
    ];
    // proptest's weighted union refuses a zero weight: an operation a run's strategy never has is left out.
    proptest::strategy::Union::new_weighted(arms.into_iter().filter(|(weight, _)| *weight > 0).collect())
}

fn aimed_at(strategy: UpdateStrategy) -> impl proptest::strategy::Strategy<Value = AimedAt> {
    // An InPlace rollout never writes its Service: the moment would never come.
    let service_weight = if matches!(strategy, UpdateStrategy::InPlace | UpdateStrategy::GatedInPlace) { 0 } else { 1 };
    prop_oneof![
        2 => Just(AimedAt::StatusWrite),
        2 => (0..plan_tasks(strategy).len()).prop_map(AimedAt::TaskCompleted),
        2 => Just(AimedAt::NodeWrite),
        service_weight => Just(AimedAt::ServiceWrite),
    ]
}

/// Faults of the scenario format, nodes named by ordinal of the deployment's first node set. (An arm added here
/// or in [`op`] changes the cases a seed generates: a seed and case number in docs/fuzzing.md name a case of
/// the generator of their day, while the scenario files and tests kept from them replay as written.)
fn fault(max_replicas: u32) -> impl proptest::strategy::Strategy<Value = Fault> {
    let ordinal = 0..max_replicas;
    let worker = 0..WORKERS;
    let node = |ordinal: u32| format!("{DEPLOYMENT}-{ordinal}");
    let secs = Duration::from_secs;
    let operator_crash = |after_write: Option<u32>, reconciling: Option<String>| Fault::OperatorCrash {
        after_write,
        reconciling,
        until_healed: false,
    };
    prop_oneof![
        ordinal.clone().prop_map(move |ordinal| Fault::PodCrash { node: node(ordinal) }),
        ordinal.clone().prop_map(move |ordinal| Fault::SidecarRestart { node: node(ordinal) }),
        proptest::option::of(1u32..8).prop_map(move |after_write| operator_crash(after_write, None)),
        // Right after the first write of the next reconcile of the deployment that writes (armed until then, or
        // a heal): when the deployment is at rest, the one that detects the next edit — the reconcile whose
        // writes must each leave a status a restarted operator can continue from.
        Just(operator_crash(Some(1), Some("SeiNodeDeployment".into()))),
        (1u64..6).prop_map(|versions| Fault::StaleReads { versions }),
        (1u32..5).prop_map(|count| Fault::DropWatchEvents { count }),
        worker.clone().prop_map(|worker| Fault::Partition { worker }),
        (worker.clone(), 100u64..3000)
            .prop_map(|(worker, millis)| Fault::Latency { worker, delay: Duration::from_millis(millis) }),
        // Past 340 s down (NotReady at 40 s, then the 300 s `unreachable` toleration) its pods are evicted.
        (worker, prop_oneof![30u64..180, 340u64..600]).prop_map(move |(worker, down)| Fault::WorkerCrash {
            worker: Some(worker),
            hosting: None,
            bootstrap: false,
            down_for: Some(secs(down)),
        }),
        (1u32..12).prop_map(|count| Fault::ApiConflicts { count, rate: 0.0, every_other: false }),
        (10u32..60).prop_map(|percent| Fault::ApiConflicts {
            count: 0,
            rate: f64::from(percent) / 100.0,
            every_other: false
        }),
        (1u32..12).prop_map(|count| Fault::ApiErrors { count, rate: 0.0 }),
        // The pod object of a node deleted through the API: a drain or an eviction, not a crash. (Not a bootstrap
        // Job's pod: whether one is live at a generated moment is timing, and naming none is an error.)
        ordinal.clone().prop_map(move |ordinal| Fault::PodDelete { node: node(ordinal), bootstrap: false }),
        (1u32..8, proptest::bool::ANY).prop_map(|(count, gateway_timeout)| Fault::LostResponses {
            count,
            rate: 0.0,
            gateway_timeout
        }),
        (10u32..40, proptest::bool::ANY).prop_map(|(percent, gateway_timeout)| Fault::LostResponses {
            count: 0,
            rate: f64::from(percent) / 100.0,
            gateway_timeout
        }),
        (10u64..240, prop_oneof![Just(429u16), Just(503), Just(500)], 1u64..30).prop_map(
            move |(duration, status, retry_after)| Fault::ApiRefusals {
                duration: secs(duration),
                status,
                retry_after: (status == 429).then(|| secs(retry_after)),
            }
        ),
        (0..REVOCABLE.len()).prop_map(|which| {
            let (resource, verb) = REVOCABLE[which];
            Fault::RevokePermission(RevokedPermission {
                group: String::new(),
                resource: resource.into(),
                verb: verb.into(),
            })
        }),
        // A sidecar task fails a few times (on one node of the first set, or whichever runs it first): retried,
        // so it only delays. The walk keeps each type's failures over the run within the retries.
        (0..RETRIED_TASKS.len(), proptest::option::of(ordinal.clone()), 1u32..=TASK_FAILURES_PER_TYPE).prop_map(
            move |(task, ordinal, times)| Fault::TaskFailure {
                task: RETRIED_TASKS[task].into(),
                node: ordinal.map(node),
                times
            }
        ),
        // The leader crashes, down for a while (0: restarted at once).
        prop_oneof![Just(0u64), 20u64..120]
            .prop_map(move |down| Fault::ReplicaCrash { replica: None, down_for: (down > 0).then(|| secs(down)) }),
        // The leader cut off from the API server: it stops leading at its renew deadline.
        (10u64..90).prop_map(move |duration| Fault::ReplicaApiPartition { replica: None, duration: secs(duration) }),
        // The leader's process stops: past the lease, the standby takes over while its calls in flight land.
        (10u64..90).prop_map(move |duration| Fault::ReplicaPause { replica: None, duration: secs(duration) }),
    ]
}

/// How a case becomes a scenario file.
#[derive(Clone, Debug)]
pub struct Render {
    /// Keep the faults and heals (false: the differential oracle's unperturbed run).
    pub perturbed: bool,
    /// The liveness bound: how long after the last operation every deployment has to settle.
    pub settle_within: Duration,
    /// The end state the run must reach (a differential failure written out: the unperturbed run's end).
    pub expect_end_state: Option<Vec<String>>,
}

impl FuzzCase {
    /// The scenario file text of this case.
    pub fn to_scenario_yaml(&self, name: &str, render: &Render) -> Result<String, serde_saphyr::ser::Error> {
        let value = self.to_scenario_value(name, render);
        // Top-level keys in reading order (a JSON object would sort them): what it is, then the world, then
        // what happens.
        let mut text = String::new();
        for key in ["name", "description", "seed", "namespace", "world", "chain", "registry", "timeline"] {
            if let Some(field) = value.get(key) {
                text += &serde_saphyr::to_string(&json!({ key: field }))?;
            }
        }
        Ok(text)
    }

    /// The world: two operator replicas when a kept fault needs them.
    fn world(&self, perturbed: bool) -> Value {
        let replicas = perturbed && self.ops.iter().any(|op| matches!(op, Op::Fault(f) if needs_replicas(f)));
        if replicas { json!({"workers": WORKERS, "operatorReplicas": 2}) } else { json!({"workers": WORKERS}) }
    }

    /// Whether the perturbed run differs from the unperturbed one: with nothing to perturb, both render to the
    /// same text (no heal of faults never made), so the differential oracle need not run the case twice.
    pub fn perturbs(&self) -> bool {
        self.ops.iter().any(Op::perturbs)
    }

    fn to_scenario_value(&self, name: &str, render: &Render) -> Value {
        let perturbed = render.perturbed && self.perturbs();
        let walk = self.walk(perturbed);
        let mut timeline = vec![json!({"apply": {"objects": [self.deployment(&Template::initial(self))]}})];
        if self.strategy.crosses_the_upgrade() || walk.edits_to_a_bad_release {
            // A fork needs incumbents: a deployment created straight on the fork's image would run a binary that
            // refuses the chain's current blocks — a user's mistake, not the operator's. A bad release likewise
            // replaces a running one: an edit landing before the first reconcile would become the baseline, and
            // nodes created on it are a different outcome than a rollout to it.
            timeline
                .push(json!({"expect": {"within": "15m", "deployment": DEPLOYMENT, "is": {"status.phase": "Ready"}}}));
        }
        timeline.extend(walk.steps);
        if walk.final_image == Some(MISSING_RELEASE) {
            // The user notices the stalled rollout and fixes the image: a missing image never settles, by design.
            timeline.push(edit(json!({"spec.template.spec.image": PATCH_RELEASES[1]})));
        }
        if perturbed {
            timeline.push(json!({"heal": "all"}));
        }
        timeline.push(json!({"settle": format!("{}s", render.settle_within.as_secs())}));
        if let Some(lines) = &render.expect_end_state {
            timeline.push(json!({"expect": {"endState": lines}}));
        }
        json!({
            "name": name,
            "description": format!("generated by sei-sim fuzz: {self}"),
            "seed": self.seed,
            "namespace": NAMESPACE,
            "world": self.world(perturbed),
            "chain": self.chain(),
            "registry": registry(),
            "timeline": timeline,
        })
    }

    /// The operations as timeline steps (with the faults or without), and what the template says along the way.
    fn walk(&self, perturbed: bool) -> Walk {
        let mut template = Template::initial(self);
        let mut walk = Walk {
            steps: Vec::new(),
            final_image: Some(template.image),
            named: vec![template.image],
            edits_to_a_bad_release: false,
            retained_image: None,
            retained_replicas: None,
        };
        let mut deleted = false;
        // A child deleted since the deployment last settled: the deployment has yet to make it again.
        let mut child_missing = false;
        // Scripted failures each task type has left: a plan's task fails at most its retries.
        let mut task_failures_left = std::collections::BTreeMap::new();
        let mut neighbour_applied = false;
        for op in &self.ops {
            if op.is_perturbation() && !perturbed {
                continue;
            }
            // After a delete there is nothing left to edit; waits and faults still run.
            let touches_deployment =
                !matches!(op, Op::Wait { .. } | Op::LongWait { .. } | Op::Fault(_) | Op::Heal | Op::Neighbour { .. });
            if deleted && touches_deployment {
                continue;
            }
            let steps = &mut walk.steps;
            match op {
                Op::Wait { secs } => steps.push(wait(*secs)),
                Op::SetImage { release } => set_image(&mut template, image(self.strategy, *release), steps),
                Op::EditOverride { value } => {
                    template.override_value = Some(*value);
                    steps.push(edit(json!({"spec.template.spec.overrides.fuzz-edit": value.to_string()})))
                }
                Op::EditResources { cpus } => {
                    template.cpus = Some(*cpus);
                    steps.push(edit(json!({"spec.template.spec.resources": resources(*cpus)})))
                }
                Op::Scale { replicas } => {
                    template.replicas = *replicas;
                    steps.push(edit(json!({"spec.replicas": replicas})))
                }
                Op::ToggleStrategy => {
                    template.strategy = match template.strategy {
                        UpdateStrategy::InPlace => UpdateStrategy::BlueGreen,
                        UpdateStrategy::BlueGreen => UpdateStrategy::InPlace,
                        other => other,
                    };
                    steps.push(edit(json!({"spec.updateStrategy.type": template.strategy.name()})));
                }
                Op::Delete => {
                    deleted = true;
                    steps.push(json!({"delete": {"kind": "SeiNodeDeployment", "name": DEPLOYMENT}}));
                }
                Op::Fault(Fault::TaskFailure { task, node, times }) => {
                    let Some(name) = RETRIED_TASKS.iter().find(|t| *t == task) else { continue };
                    steps.extend(task_failure(&mut task_failures_left, name, node.clone(), *times));
                }
                Op::Fault(fault) => steps.push(json!({"fault": fault_value(fault)})),
                Op::Heal => steps.push(json!({"heal": "all"})),
                Op::Revert { release, after_secs } => {
                    let before = template.image;
                    set_image(&mut template, self.other_good_release(*release, before), steps);
                    walk.named.push(template.image);
                    steps.push(wait(*after_secs));
                    set_image(&mut template, before, steps);
                }
                Op::HaltHeightTypo { release, excess, after_secs } if self.strategy == UpdateStrategy::GatedInPlace => {
                    // A height gate mistyped on the upgrade's edit, corrected later: an odd excess puts it above the
                    // upgrade (the old binary stops at the real one, below the gate: held until the fix), an even
                    // one behind the nodes (refused until the fix).
                    if template.image != PATCH_RELEASES[0] {
                        continue;
                    }
                    let typo = if excess % 2 == 1 { FORK_HEIGHT + excess } else { FORK_START_HEIGHT - excess };
                    template.image = self.other_good_release(*release, template.image);
                    steps.push(edit(json!({
                        "spec.template.spec.image": template.image,
                        "spec.updateStrategy.inPlace.upgradeHeight": typo,
                    })));
                    steps.push(wait(*after_secs));
                    steps.push(edit(json!({"spec.updateStrategy.inPlace.upgradeHeight": FORK_HEIGHT})));
                }
                Op::HaltHeightTypo { release, excess, after_secs } => {
                    // A typo on the fork edit itself: once the fleet forked, another haltHeight would be a second
                    // fork, which this chain (one upgrade) does not have — its bootstrap has no right binary.
                    if self.strategy != UpdateStrategy::HardFork || template.image != PATCH_RELEASES[0] {
                        continue;
                    }
                    template.image = self.other_good_release(*release, template.image);
                    steps.push(edit(json!({
                        "spec.template.spec.image": template.image,
                        "spec.updateStrategy.hardFork.haltHeight": FORK_HEIGHT + excess,
                    })));
                    steps.push(wait(*after_secs));
                    steps.push(edit(json!({"spec.updateStrategy.hardFork.haltHeight": FORK_HEIGHT})));
                }
                Op::DeleteChildMidRollout { release, after_secs, index } => {
                    let target = self.other_good_release(*release, template.image);
                    set_image(&mut template, target, steps);
                    steps.push(wait(*after_secs));
                    steps.push(json!({"deleteChild": {"deployment": DEPLOYMENT, "index": index}}));
                    child_missing = true;
                }
                Op::DeleteFailedChild { index } => {
                    steps.push(json!({"deleteChild": {"deployment": DEPLOYMENT, "index": index, "failed": true}}));
                    child_missing = true;
                }
                Op::EditThenStaleReads { release, after_secs, versions } => {
                    let target = self.other_good_release(*release, template.image);
                    set_image(&mut template, target, steps);
                    steps.push(wait(*after_secs));
                    if perturbed {
                        steps.push(json!({"fault": fault_value(&Fault::StaleReads { versions: *versions })}));
                    }
                }
                Op::FailTasksThenEdit { task, ordinal, times, release, after_secs } => {
                    if perturbed {
                        let task = RETRIED_TASKS[task % RETRIED_TASKS.len()];
                        let node = ordinal.map(|ordinal| format!("{DEPLOYMENT}-{ordinal}"));
                        steps.extend(task_failure(&mut task_failures_left, task, node, *times));
                    }
                    let target = self.other_good_release(*release, template.image);
                    set_image(&mut template, target, steps);
                    steps.push(wait(*after_secs));
                }
                Op::LongWait { secs } => steps.push(wait(*secs)),
                Op::RetainDelete => {
                    // At rest first: a Retain delete mid-rollout keeps whichever nodes the rollout's timing left
                    // (incumbents, entrants or both), each right for its timing — no one right end state.
                    if perturbed {
                        steps.push(json!({"heal": "all"}));
                    }
                    if template.image == MISSING_RELEASE {
                        set_image(&mut template, PATCH_RELEASES[1], steps);
                    }
                    steps.push(json!({"settle": "30m"}));
                    child_missing = false;
                    walk.retained_image = Some(template.image);
                    walk.retained_replicas = Some(template.replicas);
                    deleted = true;
                    steps.push(edit(json!({"spec.deletionPolicy": "Retain"})));
                    steps.push(json!({"delete": {"kind": "SeiNodeDeployment", "name": DEPLOYMENT}}));
                }
                Op::AimedEdit { release, at, nth, revert } => {
                    let before = template.image;
                    set_image(&mut template, self.other_good_release(*release, before), steps);
                    walk.named.push(template.image);
                    // A HardFork back to the pre-fork release may land after the fork: a rollback across an
                    // upgrade, which has no right outcome. Such runs move on to the other fork release.
                    // Nor is a revert to a bad release generated (an edit to one waits for Ready first).
                    let revert = *revert
                        && good_releases(self.strategy).contains(&before)
                        && (!self.strategy.crosses_the_upgrade() || FORK_RELEASES.contains(&before));
                    let next = if revert { before } else { self.third_good_release(before, template.image) };
                    template.image = next;
                    let mut moment = json!({"nth": nth, "within": format!("{AIMED_EDIT_WITHIN_SECS}s")});
                    match at {
                        AimedAt::StatusWrite => moment["write"] = json!("statusWrite"),
                        AimedAt::TaskCompleted(task) => {
                            let tasks = plan_tasks(self.strategy);
                            moment["write"] = json!("statusWrite");
                            moment["taskCompleted"] = json!(tasks[task % tasks.len()]);
                            moment["nth"] = json!(1);
                        }
                        AimedAt::NodeWrite => moment["write"] = json!("node"),
                        AimedAt::ServiceWrite => moment["write"] = json!("service"),
                    }
                    steps.push(json!({"edit": {
                        "kind": "SeiNodeDeployment",
                        "name": DEPLOYMENT,
                        "set": {"spec.template.spec.image": next},
                        "after": moment,
                    }}));
                }
                Op::GrowStorage { by } => {
                    let size = template.storage_gi.unwrap_or(FULL_NODE_STORAGE_GI) + by * 250;
                    template.storage_gi = Some(size);
                    steps.push(edit(json!({"spec.template.spec.storage": storage(size)})));
                }
                Op::SetSidecar { release } => {
                    if self.strategy.crosses_the_upgrade() || self.edits_to_the_broken_release() {
                        continue;
                    }
                    let pick = SIDECAR_RELEASES[release % SIDECAR_RELEASES.len()];
                    template.sidecar = if pick == template.sidecar {
                        SIDECAR_RELEASES[(release + 1) % SIDECAR_RELEASES.len()]
                    } else {
                        pick
                    };
                    steps.push(edit(json!({"spec.template.spec.sidecar.image": template.sidecar})));
                }
                Op::Neighbour { replicas, blue_green, release, after_secs } => {
                    if neighbour_applied || self.strategy.crosses_the_upgrade() {
                        continue;
                    }
                    neighbour_applied = true;
                    let strategy = if *blue_green { UpdateStrategy::BlueGreen } else { UpdateStrategy::InPlace };
                    let template = Template { replicas: *replicas, strategy, ..Template::initial(self) };
                    steps.push(json!({"apply": {"objects": [self.deployment_named(NEIGHBOUR, &template)]}}));
                    steps.push(wait(*after_secs));
                    // Another patch release than the one it starts on: its rollout has a target to reach.
                    let target = PATCH_RELEASES[1 + release % (PATCH_RELEASES.len() - 1)];
                    steps.push(json!({"edit": {
                        "kind": "SeiNodeDeployment",
                        "name": NEIGHBOUR,
                        "set": {"spec.template.spec.image": target},
                    }}));
                    // Not the run's own template: `named` and `final_image` stay the run's deployment's.
                    continue;
                }
                Op::ReapplyAfterRetainDelete => {
                    // Across the upgrade, a deleted child is made again from the pre-fork snapshot with the
                    // pre-fork binary up to the fork, which only the deployment's status remembers (its last
                    // template before the fork). A deployment applied anew knows only its template: a node it
                    // makes fresh on a fork release from that snapshot panics at the first pre-fork block
                    // ("binary updated before trigger") and never serves — no right outcome, as for a user who
                    // creates such a deployment from scratch. So the child is made again first: at rest. On the
                    // pre-fork release too: a deployment applied anew with no node to adopt takes its template at
                    // its first reconcile as its baseline, so a fork edit that lands before it (the adoption check
                    // holds at once with nothing to adopt) makes the child fresh on the fork release, the same
                    // user's mistake (`--seed 9797001`, case 2447).
                    if child_missing && self.strategy.crosses_the_upgrade() {
                        if perturbed {
                            steps.push(json!({"heal": "all"}));
                        }
                        steps.push(json!({"settle": "30m"}));
                        child_missing = false;
                    }
                    steps.push(edit(json!({"spec.deletionPolicy": "Retain"})));
                    steps.push(json!({"delete": {"kind": "SeiNodeDeployment", "name": DEPLOYMENT}}));
                    let gone = format!("SeiNodeDeployment/{DEPLOYMENT}");
                    steps.push(json!({"expect": {"within": "10m", "objects": {gone: {"exists": false}}}}));
                    steps.push(json!({"apply": {"objects": [self.deployment(&template)]}}));
                    // Adopted before anything else happens to it: deleted before its first reconcile, the
                    // deployment would leave the retained nodes ownerless — on whatever image they ran, the
                    // missing one included, where they never come to rest and no one is left to fix them.
                    steps.push(
                        json!({"expect": {"within": "10m", "deployment": DEPLOYMENT, "is": {"adoptedAll": true}}}),
                    );
                }
            }
            if matches!(op, Op::SetImage { release } if *release >= good_releases(self.strategy).len()) {
                walk.edits_to_a_bad_release = true;
            }
            walk.named.push(template.image);
        }
        walk.final_image = (!deleted).then_some(template.image);
        walk
    }

    /// Whether an image edit of the run names the broken release (whatever comes after it).
    fn edits_to_the_broken_release(&self) -> bool {
        self.ops
            .iter()
            .any(|op| matches!(op, Op::SetImage { release } if image(self.strategy, *release) == BROKEN_RELEASE))
    }

    /// A good release of the run, not `current` (the next one when `release` names it): an edit that changes
    /// the image.
    fn other_good_release(&self, release: usize, current: &'static str) -> &'static str {
        let good = good_releases(self.strategy);
        let pick = good[release % good.len()];
        if pick == current { good[(release + 1) % good.len()] } else { pick }
    }

    /// A good release other than both `a` and `b` when there is one (HardFork runs have two: then `a`).
    fn third_good_release(&self, a: &'static str, b: &'static str) -> &'static str {
        good_releases(self.strategy).iter().copied().find(|r| *r != a && *r != b).unwrap_or(a)
    }

    /// The image the template names after the last operation (before a missing image's fix), or `None` when the
    /// run deletes the deployment.
    pub fn final_image(&self) -> Option<&'static str> {
        self.walk(false).final_image
    }

    /// How many nodes the run's `Retain` delete (of the deployment at rest) must leave running without an
    /// owner, if it has one.
    pub fn retained_nodes(&self) -> Option<u32> {
        self.walk(false).retained_replicas
    }

    /// Whether the run must end with its rollout failed and reported: its last edit names the broken release.
    pub fn expects_failed_rollout(&self) -> bool {
        self.final_image() == Some(BROKEN_RELEASE)
    }

    /// Whether the run's `Retain` delete left the nodes behind while the template named the broken release: they
    /// run whichever good release a rollout last finished on, as the fleet of [`FuzzCase::expects_failed_rollout`]
    /// does ([`FuzzCase::releases_a_failed_run_may_end_on`]), only without an owner.
    pub fn retains_a_failed_rollout(&self) -> bool {
        self.walk(false).retained_image == Some(BROKEN_RELEASE)
    }

    /// The good releases the fleet may run at the end of a run whose last edit names the broken release: any
    /// the template named before (the initial one too). Which one depends on timing — a rollout to B that a
    /// partition delays past the edit to the broken release is superseded, and the fleet stays on A; without
    /// the partition it completes first — and each is right for its timing.
    pub fn releases_a_failed_run_may_end_on(&self) -> Vec<&'static str> {
        let mut named: Vec<&'static str> =
            self.walk(false).named.into_iter().filter(|image| good_releases(self.strategy).contains(image)).collect();
        named.sort_unstable();
        named.dedup();
        named
    }

    /// When the chain's external validators switch to the fork's binary (HardFork runs), if within the run: only
    /// when the run ends with the fleet asked onto a release that knows the upgrade, and no haltHeight typo is
    /// generated. A fleet left on the pre-fork binary crash-loops once the chain passes the upgrade — the user
    /// did not upgrade, and no end state of the operator's is right or wrong about that — and a haltHeight typo
    /// above the upgrade is harmless only while the chain waits below it.
    pub fn validators_switch(&self) -> Option<u64> {
        // A mistyped height gate is corrected within the run; a mistyped haltHeight's rollout never finishes.
        let typo = self.strategy == UpdateStrategy::HardFork
            && self.ops.iter().any(|op| matches!(op, Op::HaltHeightTypo { .. }));
        let walk = self.walk(false);
        // Nodes a Retain delete left behind run on as they are: on the pre-fork binary they are a fleet the
        // user left there, as much as a template that names it.
        let last = walk.final_image.or(walk.retained_image);
        let forked = last.is_none_or(|image| FORK_RELEASES.contains(&image));
        (forked && !typo).then_some(self.validators_switch_secs)
    }

    fn chain(&self) -> Value {
        match self.strategy {
            UpdateStrategy::HardFork | UpdateStrategy::GatedInPlace => {
                let mut upgrade = json!({"name": UPGRADE, "height": FORK_HEIGHT});
                if let Some(secs) = self.validators_switch() {
                    upgrade["validatorsSwitchAt"] = json!(format!("{secs}s"));
                }
                json!({
                    "id": "pacific-1",
                    "initialHeight": FORK_START_HEIGHT,
                    "blockTime": "1s",
                    "snapshotInterval": 100,
                    "upgrades": [upgrade],
                })
            }
            // The upgrade never comes within a run: every patch release keeps processing blocks.
            UpdateStrategy::InPlace | UpdateStrategy::BlueGreen => json!({
                "id": "pacific-1",
                "initialHeight": 1000,
                "blockTime": "1s",
            }),
        }
    }

    fn deployment(&self, template: &Template) -> Value {
        self.deployment_named(DEPLOYMENT, template)
    }

    fn deployment_named(&self, name: &str, template: &Template) -> Value {
        let mut update_strategy = json!({"type": template.strategy.name()});
        let mut snapshot_height = 0;
        match self.strategy {
            UpdateStrategy::HardFork => update_strategy["hardFork"] = json!({"haltHeight": FORK_HEIGHT}),
            UpdateStrategy::GatedInPlace => update_strategy["inPlace"] = json!({"upgradeHeight": FORK_HEIGHT}),
            UpdateStrategy::InPlace | UpdateStrategy::BlueGreen => {}
        }
        if self.strategy.crosses_the_upgrade() {
            snapshot_height = 4_000;
        }
        let mut spec = json!({
            "chainId": "pacific-1",
            "image": template.image,
            "sidecar": {"image": template.sidecar},
            "peers": {"static": ["3f1c0a@seed-0.sei.svc:26656"]},
            "fullNode": {"snapshot": {"s3": {"targetHeight": snapshot_height}}},
        });
        if let Some(value) = template.override_value {
            spec["overrides"] = json!({"fuzz-edit": value.to_string()});
        }
        if let Some(cpus) = template.cpus {
            spec["resources"] = resources(cpus);
        }
        if let Some(size) = template.storage_gi {
            spec["storage"] = storage(size);
        }
        json!({
            "apiVersion": "sei.io/v1alpha1",
            "kind": "SeiNodeDeployment",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {
                "replicas": template.replicas,
                "updateStrategy": update_strategy,
                "template": {"spec": spec},
            },
        })
    }
}

/// What the deployment's spec says at a point of a run.
struct Template {
    image: &'static str,
    sidecar: &'static str,
    replicas: u32,
    strategy: UpdateStrategy,
    override_value: Option<u32>,
    cpus: Option<u32>,
    /// GiB; `None`: the mode's built-in size.
    storage_gi: Option<u32>,
}

impl Template {
    fn initial(case: &FuzzCase) -> Self {
        Template {
            image: PATCH_RELEASES[0],
            sidecar: SIDECAR_RELEASES[0],
            replicas: case.replicas,
            strategy: case.strategy,
            override_value: None,
            cpus: None,
            storage_gi: None,
        }
    }
}

/// A case's operations rendered, and what they ask of the deployment.
struct Walk {
    steps: Vec<Value>,
    /// The image the template names at the end; `None` when the deployment is deleted.
    final_image: Option<&'static str>,
    /// Every image the template named, in order (the initial one first).
    named: Vec<&'static str>,
    edits_to_a_bad_release: bool,
    /// The image the nodes a `Retain` delete left behind run: they outlive the deployment.
    retained_image: Option<&'static str>,
    /// How many nodes a `Retain` delete left behind (the replicas of the deployment at rest when deleted).
    retained_replicas: Option<u32>,
}

/// The releases a run's rollouts can complete on.
fn good_releases(strategy: UpdateStrategy) -> &'static [&'static str] {
    match strategy {
        UpdateStrategy::HardFork | UpdateStrategy::GatedInPlace => &FORK_RELEASES,
        UpdateStrategy::InPlace | UpdateStrategy::BlueGreen => &PATCH_RELEASES,
    }
}

/// A `taskFailure` step of at most the failures `task` has left in the run (none: no step).
fn task_failure(
    left: &mut std::collections::BTreeMap<&'static str, u32>,
    task: &'static str,
    node: Option<String>,
    times: u32,
) -> Option<Value> {
    let left = left.entry(task).or_insert(TASK_FAILURES_PER_TYPE);
    let times = times.min(*left);
    if times == 0 {
        return None;
    }
    *left -= times;
    Some(json!({"fault": fault_value(&Fault::TaskFailure { task: task.into(), node, times })}))
}

fn set_image(template: &mut Template, image: &'static str, steps: &mut Vec<Value>) {
    template.image = image;
    steps.push(edit(json!({"spec.template.spec.image": image})));
}

fn wait(secs: u64) -> Value {
    json!({"wait": format!("{secs}s")})
}

/// The release `release` indexes among the run's (its starting strategy's) releases.
fn image(strategy: UpdateStrategy, release: usize) -> &'static str {
    let releases: &[&'static str] = match strategy {
        UpdateStrategy::HardFork | UpdateStrategy::GatedInPlace => &FORK_RELEASES,
        UpdateStrategy::InPlace => &INPLACE_RELEASES,
        UpdateStrategy::BlueGreen => &BLUEGREEN_RELEASES,
    };
    releases[release % releases.len()]
}

/// A full node's volume size when the template names none (`core/src/node_defaults.rs`, the upstream operator's).
const FULL_NODE_STORAGE_GI: u32 = 2000;

/// The template's storage of `gi` GiB.
fn storage(gi: u32) -> Value {
    json!({"size": format!("{gi}Gi")})
}

/// seid's resources with a CPU request of `cpus`.
fn resources(cpus: u32) -> Value {
    json!({"requests": {"cpu": cpus.to_string()}})
}

fn edit(set: Value) -> Value {
    json!({"edit": {"kind": "SeiNodeDeployment", "name": DEPLOYMENT, "set": set}})
}

fn registry() -> Value {
    json!({
        "sei:v6.3.0": {"version": "v6.3.0"},
        "sei:v6.3.1": {"version": "v6.3.1"},
        "sei:v6.3.2": {"version": "v6.3.2"},
        MISSING_RELEASE: {"pullable": false},
        BROKEN_RELEASE: {"version": "v6.3.4", "failsTask": "config-validate"},
        "sei:v6.4.0": {"version": "v6.4.0", "knows": [UPGRADE]},
        "sei:v6.4.1": {"version": "v6.4.1", "knows": [UPGRADE]},
        SIDECAR_RELEASES[0]: {},
        SIDECAR_RELEASES[1]: {},
    })
}

/// A fault as a timeline step writes it: the scenario format's own serialization.
fn fault_value(fault: &Fault) -> Value {
    serde_json::to_value(fault).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    use super::*;

    /// What the fuzzer writes for a fault is that fault: a failing case file replays the run that failed.
    #[test]
    fn every_generated_fault_reads_back_as_itself() {
        let mut runner = TestRunner::deterministic();
        let strategy = fault(4);
        for _ in 0..500 {
            let generated = strategy.new_tree(&mut runner).map(|tree| tree.current());
            let Ok(generated) = generated else { panic!("a fault is generated") };
            let written = fault_value(&generated);
            let read: Fault = serde_json::from_value(written.clone()).unwrap_or_else(|e| panic!("{written}: {e}"));
            assert_eq!(read, generated, "{written}");
        }
    }
}
