//! The ledger: what happened in a run that the invariants and the reports judge — sidecar calls and task
//! submissions, seid panics, images run by Ready pods, Events, violations caught at the moment they happen, the
//! user's deletes, faults that may fail a rollout, and what each reconcile read.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use sei_operator_core::cluster::{Event, ObjectRef};

use sei_operator_core::api::Strategy;

/// What happened.
#[derive(Debug, Default)]
pub struct Ledger {
    pub sidecar_calls: Vec<SidecarCall>,
    /// Every task submission a sidecar accepted, and whether it started work.
    pub sidecar_submissions: Vec<SidecarSubmission>,
    pub panics: Vec<PanicRecord>,
    /// When every fault injected so far stops acting on the world (`Fault::acts_until`); `None` while one acts
    /// until a heal. Checks that bound how fast the operator reacts hold only outside faults.
    pub faults_act_until: Option<Duration>,
    /// (namespace, node, image) for every image a Ready pod of that node has run.
    pub ready_images: BTreeSet<(String, String, String)>,
    /// (namespace, node, sidecar image) for every sidecar image a Ready pod of that node has run.
    pub ready_sidecar_images: BTreeSet<(String, String, String)>,
    pub events: Vec<(Duration, Event)>,
    /// Violations found at the moment they happen — a write, a delete, seid's start — that a check of the state
    /// after the step would miss.
    pub write_violations: Vec<InvariantViolation>,
    /// (namespace, deployment, revision) of every SeiNode a user (the harness) deleted, in order: a Service left
    /// with no node to send traffic to by a user's delete is the user's doing, not the operator's.
    pub user_deleted_nodes: Vec<(String, String, String)>,
    /// Faults injected that can fail a rollout by design (a scripted sidecar task failure, a re-pushed image, a
    /// worker crash), with when: a rollout that fails with none of them before is judged needless.
    pub failure_faults: Vec<(Duration, String)>,
    /// What each SeiNodeDeployment reconcile in flight read (by reconcile id): write-time invariants judge a
    /// write by what its reconcile could see.
    pub reconcile_reads: BTreeMap<u64, ReconcileReads>,
}

/// A sidecar or seid RPC request, as the client sent it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SidecarCall {
    pub at: Duration,
    pub caller: String,
    pub host: String,
    pub method: String,
    pub path: String,
}

/// A task submission a sidecar accepted (`POST /v0/tasks`, always answered 201). Whether it started work is not
/// in the answer (sei-protocol/seictl `sidecar/engine/engine.go`, `Engine.Submit`, answers a new id, a re-run
/// and a no-op alike), so it is recorded here: lets tests and invariants prove submissions are idempotent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SidecarSubmission {
    pub at: Duration,
    pub pod: ObjectRef,
    /// The sidecar process that answered (each restart is a new incarnation; the task table outlives it).
    pub incarnation: u64,
    pub id: uuid::Uuid,
    pub task_type: String,
    /// The HTTP status answered.
    pub status: u16,
    /// It started a run: the id was new, or its task had failed and runs again.
    pub started: bool,
    /// The task's run number after the submission (1 for a new id; one more for each re-run after a failure).
    pub run: u32,
    /// Who submitted it (the client's caller tag: `operator:SeiNode` for the operator's node controller).
    pub caller: String,
}

/// A seid exit that was not a clean halt, and which node it hit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PanicRecord {
    pub at: Duration,
    pub namespace: String,
    pub node: Option<String>,
    pub pod: String,
    pub image: String,
    pub reason: String,
    pub upgrade_panic: bool,
    pub exit: crate::node::seid::SeidExit,
    /// The uid of the SeiNode the pod ran for — its controller's controller (a StatefulSet's or a bootstrap Job's
    /// SeiNode), as stored when seid stopped; `None` when that chain was broken by then: the workload deleted, or
    /// made anew for another SeiNode of the same name.
    pub node_uid: Option<String>,
}

/// A broken invariant: which one, and what was seen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvariantViolation {
    pub invariant: &'static str,
    pub message: String,
}

impl InvariantViolation {
    pub fn new(invariant: &'static str, message: impl Into<String>) -> Self {
        InvariantViolation { invariant, message: message.into() }
    }
}

/// Who made a write: the operator's client within a reconcile (its id and the kind of object reconciled), or
/// the harness / a client outside any reconcile (`reconcile: None`).
#[derive(Clone, Copy, Debug, Default)]
pub struct Writer<'a> {
    pub reconcile: Option<(u64, &'a str)>,
}

impl Writer<'_> {
    /// The id of the SeiNodeDeployment reconcile that writes, if that is who writes.
    pub fn deployment_reconcile(&self) -> Option<u64> {
        self.reconcile.filter(|(_, kind)| *kind == "SeiNodeDeployment").map(|(id, _)| id)
    }
}

/// What one reconcile of a SeiNodeDeployment read, as far as the write-time checks need it: a write is judged
/// by what its reconcile could see — not by the store at the moment of the write, which may hold a user's edit
/// made since the read, or be ahead of a lagging cache.
#[derive(Clone, Debug, Default)]
pub struct ReconcileReads {
    /// The deployment as the reconcile first read it.
    pub deployment: Option<DeploymentRead>,
    /// Nodes read Running with their sidecar ready, `currentImage` their spec's image and `currentSidecarImage`
    /// their spec's sidecar image: (name, image, sidecar image).
    pub ready_nodes: BTreeSet<(String, String, String)>,
    /// Each node's spec image as first read.
    pub node_images: BTreeMap<String, String>,
}

/// A deployment's rollout as a reconcile read it.
#[derive(Clone, Debug)]
pub struct DeploymentRead {
    pub key: ObjectRef,
    pub rollout: Option<RolloutRead>,
    /// Its template had moved off the rollout's target (`rollout::is_superseded`): the plan must take no step.
    pub superseded: bool,
}

#[derive(Clone, Debug)]
pub struct RolloutRead {
    pub strategy: Strategy,
    pub target_hash: String,
    pub entrant_revision: Option<String>,
    /// The nodes an InPlace rollout moves.
    pub nodes: Vec<String>,
}
