//! A generated run: one SeiNodeDeployment, a chain, and a timeline of user operations and faults with waits
//! between them — and its rendering as a scenario file, so what the fuzzer runs and what it writes out for a
//! failure are the same text.
//!
//! The generator only builds runs whose right outcome is known, so an oracle failure is an operator bug and not
//! a user's mistake: InPlace and BlueGreen runs move between releases that process the same blocks (the chain's
//! upgrade is out of reach); HardFork runs start on the old binary, are Ready before anything else happens, and
//! fork to releases that know the upgrade. Two bad releases are generated on purpose, each with a known
//! outcome: a missing image (its rollout stalls until a later edit supersedes it; a run never ends on it) and,
//! in BlueGreen runs, a release that rejects the node's configuration (its rollout must fail, reported).

use std::fmt;
use std::time::Duration;

use proptest::prelude::*;
use serde_json::{Value, json};

/// The deployment every run creates.
pub const DEPLOYMENT: &str = "fuzz";
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
/// The HardFork chain: the tip starts here and the upgrade height is 300 blocks (1 s each) ahead.
const FORK_START_HEIGHT: u64 = 4_700;
const FORK_HEIGHT: u64 = 5_000;

/// The update strategy a run starts with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpdateStrategy {
    InPlace,
    BlueGreen,
    HardFork,
}

impl UpdateStrategy {
    fn name(self) -> &'static str {
        match self {
            UpdateStrategy::InPlace => "InPlace",
            UpdateStrategy::BlueGreen => "BlueGreen",
            UpdateStrategy::HardFork => "HardFork",
        }
    }
}

/// A fault, as the scenario format names it; nodes by ordinal of the deployment's first node set.
#[derive(Clone, Debug, PartialEq)]
pub enum FaultOp {
    PodCrash {
        ordinal: u32,
    },
    SidecarRestart {
        ordinal: u32,
    },
    OperatorCrash {
        after_write: Option<u32>,
    },
    /// The operator crashes right after the first write of the next reconcile of the deployment that writes
    /// (armed until then, or a heal): when the deployment is at rest, the one that detects the next edit — the
    /// reconcile whose writes must each leave a status a restarted operator can continue from.
    DeploymentReconcileCrash,
    StaleReads {
        versions: u64,
    },
    DropWatchEvents {
        count: u32,
    },
    Partition {
        worker: u32,
    },
    Latency {
        worker: u32,
        millis: u64,
    },
    WorkerCrash {
        worker: u32,
        secs: u64,
    },
    ApiConflicts {
        count: u32,
    },
    ApiConflictRate {
        percent: u32,
    },
    ApiErrors {
        count: u32,
    },
}

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
    Scale {
        replicas: u32,
    },
    /// Switch an InPlace run to BlueGreen and back (BlueGreen runs, which may edit to the broken release, and
    /// HardFork runs keep their strategy: the outcome of a broken release depends on the strategy).
    ToggleStrategy,
    Delete,
    Fault(FaultOp),
    Heal,
}

impl Op {
    fn is_perturbation(&self) -> bool {
        matches!(self, Op::Fault(_) | Op::Heal)
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
        write!(f, "{} ×{} seed {}: ", self.strategy.name(), self.replicas, self.seed)?;
        let ops: Vec<String> = self.ops.iter().map(|op| format!("{op:?}")).collect();
        write!(f, "{}", ops.join(", "))
    }
}

/// What bounds generation.
#[derive(Clone, Copy, Debug)]
pub struct Bounds {
    pub max_replicas: u32,
    pub max_ops: usize,
}

/// Whole runs within `bounds`.
pub fn cases(bounds: Bounds) -> impl proptest::strategy::Strategy<Value = FuzzCase> {
    let max_replicas = bounds.max_replicas.max(1);
    let strategy =
        prop_oneof![Just(UpdateStrategy::InPlace), Just(UpdateStrategy::BlueGreen), Just(UpdateStrategy::HardFork)];
    (any::<u64>(), strategy, 1..=max_replicas, 240u64..900)
        .prop_flat_map(move |(seed, strategy, replicas, switch)| {
            let ops = proptest::collection::vec(op(strategy, max_replicas), 1..=bounds.max_ops.max(1));
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

fn op(strategy: UpdateStrategy, max_replicas: u32) -> impl proptest::strategy::Strategy<Value = Op> {
    let good = match strategy {
        UpdateStrategy::HardFork => FORK_RELEASES.len(),
        UpdateStrategy::InPlace | UpdateStrategy::BlueGreen => PATCH_RELEASES.len(),
    };
    // Bad releases sit after the good ones in `releases(strategy)`; one edit in six names one of them.
    let (missing_weight, broken_weight) = match strategy {
        UpdateStrategy::HardFork => (0, 0),
        UpdateStrategy::InPlace => (1, 0),
        UpdateStrategy::BlueGreen => (1, 1),
    };
    let release = prop_oneof![
        4 => 0..good,
        missing_weight => Just(PATCH_RELEASES.len()),
        broken_weight => Just(PATCH_RELEASES.len() + 1),
    ];
    let toggle_weight = if strategy == UpdateStrategy::InPlace { 1 } else { 0 };
    prop_oneof![
        5 => (5u64..300).prop_map(|secs| Op::Wait { secs }),
        4 => release.prop_map(|release| Op::SetImage { release }),
        1 => (0u32..1000).prop_map(|value| Op::EditOverride { value }),
        1 => (1..=max_replicas).prop_map(|replicas| Op::Scale { replicas }),
        toggle_weight => Just(Op::ToggleStrategy),
        1 => Just(Op::Delete),
        5 => fault(max_replicas).prop_map(Op::Fault),
        1 => Just(Op::Heal),
    ]
}

fn fault(max_replicas: u32) -> impl proptest::strategy::Strategy<Value = FaultOp> {
    let ordinal = 0..max_replicas;
    let worker = 0..WORKERS;
    prop_oneof![
        ordinal.clone().prop_map(|ordinal| FaultOp::PodCrash { ordinal }),
        ordinal.prop_map(|ordinal| FaultOp::SidecarRestart { ordinal }),
        proptest::option::of(1u32..8).prop_map(|after_write| FaultOp::OperatorCrash { after_write }),
        Just(FaultOp::DeploymentReconcileCrash),
        (1u64..6).prop_map(|versions| FaultOp::StaleReads { versions }),
        (1u32..5).prop_map(|count| FaultOp::DropWatchEvents { count }),
        worker.clone().prop_map(|worker| FaultOp::Partition { worker }),
        (worker.clone(), 100u64..3000).prop_map(|(worker, millis)| FaultOp::Latency { worker, millis }),
        (worker, 30u64..180).prop_map(|(worker, secs)| FaultOp::WorkerCrash { worker, secs }),
        (1u32..12).prop_map(|count| FaultOp::ApiConflicts { count }),
        (10u32..60).prop_map(|percent| FaultOp::ApiConflictRate { percent }),
        (1u32..12).prop_map(|count| FaultOp::ApiErrors { count }),
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

    fn to_scenario_value(&self, name: &str, render: &Render) -> Value {
        let mut timeline = vec![json!({"apply": {"objects": [self.deployment()]}})];
        if self.strategy == UpdateStrategy::HardFork || self.edits_to_a_bad_release() {
            // A fork needs incumbents: a deployment created straight on the fork's image would run a binary that
            // refuses the chain's current blocks — a user's mistake, not the operator's. A bad release likewise
            // replaces a running one: an edit landing before the first reconcile would become the baseline, and
            // nodes created on it are a different outcome than a rollout to it.
            timeline.push(json!({"expect": {"within": "15m", "deployment": DEPLOYMENT, "phase": "Ready"}}));
        }
        let mut strategy = self.strategy;
        let mut deleted = false;
        for op in &self.ops {
            if op.is_perturbation() && !render.perturbed {
                continue;
            }
            // After a delete there is nothing left to edit; waits and faults still run.
            let touches_deployment =
                matches!(op, Op::SetImage { .. } | Op::EditOverride { .. } | Op::Scale { .. } | Op::ToggleStrategy);
            if deleted && (touches_deployment || matches!(op, Op::Delete)) {
                continue;
            }
            match op {
                Op::Wait { secs } => timeline.push(json!({"wait": format!("{secs}s")})),
                Op::SetImage { release } => {
                    timeline.push(edit(json!({"spec.template.spec.image": image(self.strategy, *release)})))
                }
                Op::EditOverride { value } => {
                    timeline.push(edit(json!({"spec.template.spec.overrides.fuzz-edit": value.to_string()})))
                }
                Op::Scale { replicas } => timeline.push(edit(json!({"spec.replicas": replicas}))),
                Op::ToggleStrategy => {
                    strategy = match strategy {
                        UpdateStrategy::InPlace => UpdateStrategy::BlueGreen,
                        UpdateStrategy::BlueGreen => UpdateStrategy::InPlace,
                        UpdateStrategy::HardFork => UpdateStrategy::HardFork,
                    };
                    timeline.push(edit(json!({"spec.updateStrategy.type": strategy.name()})));
                }
                Op::Delete => {
                    deleted = true;
                    timeline.push(json!({"delete": {"kind": "SeiNodeDeployment", "name": DEPLOYMENT}}));
                }
                Op::Fault(fault) => timeline.push(json!({"fault": fault_value(fault)})),
                Op::Heal => timeline.push(json!({"heal": "all"})),
            }
        }
        if self.final_image() == Some(MISSING_RELEASE) {
            // The user notices the stalled rollout and fixes the image: a missing image never settles, by design.
            timeline.push(edit(json!({"spec.template.spec.image": PATCH_RELEASES[1]})));
        }
        if render.perturbed {
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
            "world": {"workers": WORKERS},
            "chain": self.chain(),
            "registry": registry(),
            "timeline": timeline,
        })
    }

    /// The image the template names after the last operation (before a missing image's fix), or `None` when the
    /// run deletes the deployment.
    pub fn final_image(&self) -> Option<&'static str> {
        let mut image = PATCH_RELEASES[0];
        for op in &self.ops {
            match op {
                Op::SetImage { release } => image = self::image(self.strategy, *release),
                Op::Delete => return None,
                _ => {}
            }
        }
        Some(image)
    }

    /// Whether the run must end with its rollout failed and reported: its last edit names the broken release.
    pub fn expects_failed_rollout(&self) -> bool {
        self.final_image() == Some(BROKEN_RELEASE)
    }

    /// Whether some edit (before any delete) names a bad release.
    fn edits_to_a_bad_release(&self) -> bool {
        self.ops
            .iter()
            .take_while(|op| !matches!(op, Op::Delete))
            .any(|op| matches!(op, Op::SetImage { release } if *release >= PATCH_RELEASES.len()))
    }

    fn chain(&self) -> Value {
        match self.strategy {
            UpdateStrategy::HardFork => json!({
                "id": "pacific-1",
                "initialHeight": FORK_START_HEIGHT,
                "blockTime": "1s",
                "snapshotInterval": 100,
                "upgrades": [{
                    "name": UPGRADE,
                    "height": FORK_HEIGHT,
                    "validatorsSwitchAt": format!("{}s", self.validators_switch_secs),
                }],
            }),
            // The upgrade never comes within a run: every patch release keeps processing blocks.
            UpdateStrategy::InPlace | UpdateStrategy::BlueGreen => json!({
                "id": "pacific-1",
                "initialHeight": 1000,
                "blockTime": "1s",
            }),
        }
    }

    fn deployment(&self) -> Value {
        let mut update_strategy = json!({"type": self.strategy.name()});
        let mut snapshot_height = 0;
        if self.strategy == UpdateStrategy::HardFork {
            update_strategy["hardFork"] = json!({"haltHeight": FORK_HEIGHT});
            snapshot_height = 4_000;
        }
        json!({
            "apiVersion": "sei.io/v1alpha1",
            "kind": "SeiNodeDeployment",
            "metadata": {"name": DEPLOYMENT, "namespace": NAMESPACE},
            "spec": {
                "replicas": self.replicas,
                "updateStrategy": update_strategy,
                "template": {"spec": {
                    "chainId": "pacific-1",
                    "image": PATCH_RELEASES[0],
                    "sidecar": {"image": "seictl:v0.9.0"},
                    "peers": {"static": ["3f1c0a@seed-0.sei.svc:26656"]},
                    "fullNode": {"snapshot": {"s3": {"targetHeight": snapshot_height}}},
                }},
            },
        })
    }
}

/// The release `release` indexes among the run's (its starting strategy's) releases.
fn image(strategy: UpdateStrategy, release: usize) -> &'static str {
    let releases: &[&'static str] = match strategy {
        UpdateStrategy::HardFork => &FORK_RELEASES,
        UpdateStrategy::InPlace => &INPLACE_RELEASES,
        UpdateStrategy::BlueGreen => &BLUEGREEN_RELEASES,
    };
    releases[release % releases.len()]
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
        "seictl:v0.9.0": {},
    })
}

fn fault_value(fault: &FaultOp) -> Value {
    let node = |ordinal: &u32| format!("{DEPLOYMENT}-{ordinal}");
    match fault {
        FaultOp::PodCrash { ordinal } => json!({"podCrash": {"node": node(ordinal)}}),
        FaultOp::SidecarRestart { ordinal } => json!({"sidecarRestart": {"node": node(ordinal)}}),
        FaultOp::OperatorCrash { after_write: None } => json!({"operatorCrash": {}}),
        FaultOp::OperatorCrash { after_write: Some(write) } => json!({"operatorCrash": {"afterWrite": write}}),
        FaultOp::DeploymentReconcileCrash => {
            json!({"operatorCrash": {"afterWrite": 1, "reconciling": "SeiNodeDeployment"}})
        }
        FaultOp::StaleReads { versions } => json!({"staleReads": {"versions": versions}}),
        FaultOp::DropWatchEvents { count } => json!({"dropWatchEvents": {"count": count}}),
        FaultOp::Partition { worker } => json!({"partition": {"worker": worker}}),
        FaultOp::Latency { worker, millis } => {
            json!({"latency": {"worker": worker, "delay": format!("{millis}ms")}})
        }
        FaultOp::WorkerCrash { worker, secs } => json!({"workerCrash": {"worker": worker, "for": format!("{secs}s")}}),
        FaultOp::ApiConflicts { count } => json!({"apiConflicts": {"count": count}}),
        FaultOp::ApiConflictRate { percent } => json!({"apiConflicts": {"rate": f64::from(*percent) / 100.0}}),
        FaultOp::ApiErrors { count } => json!({"apiErrors": {"count": count}}),
    }
}
