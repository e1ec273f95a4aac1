//! `SeiNodeDeployment`: a set of identical SeiNodes made from one template, and how a template change rolls out
//! to them.

// kube's `printcolumn(...)` entries repeat `type_ = "..."`, which clippy mistakes for duplicated attributes.
#![allow(clippy::duplicated_attributes)]

use std::collections::BTreeMap;

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{
    Condition, Plan, RolloutFields, RolloutStatus, S3Snapshot, SeiNodePhase, SeiNodeSpec, SnapshotSource,
    UpdateStrategy,
};

/// A fleet of `replicas` SeiNodes made from `template`, updated with `updateStrategy`.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "sei.io",
    version = "v1alpha1",
    kind = "SeiNodeDeployment",
    namespaced,
    status = "SeiNodeDeploymentStatus",
    shortname = "snd",
    derive = "PartialEq",
    doc = "A fleet of identical SeiNodes made from one template, and the rollout of template changes to them.",
    printcolumn(name = "Ready", type_ = "integer", json_path = ".status.readyReplicas"),
    printcolumn(name = "Replicas", type_ = "integer", json_path = ".status.replicas"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Revision", type_ = "string", json_path = ".status.templateHash"),
    printcolumn(name = "Gate", type_ = "integer", json_path = ".status.rollout.upgradeHeight"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    // A deployment's entrant nodes are `<name>-g<generation>-<ordinal>`: a deployment named `rpc-g2` would make
    // `rpc-g2-0`, the first entrant of `rpc`'s rollout at generation 2 (`names::is_reserved_deployment_name`).
    validation = Rule::new("!self.metadata.name.matches('-g[0-9]+$')").message(
        "metadata.name must not end in -g<digits> (such as rpc-g2): that suffix names the entrant nodes of a \
         rollout, so the nodes of rpc-g2 (rpc-g2-0, ...) would take the names of rpc's entrants at generation 2"
    ),
    // The deployment's Service takes its name; its nodes are `<name>-<ordinal>` and `<name>-g<generation>-<ordinal>`
    // and must fit a SeiNode name (`names::MAX_DEPLOYMENT_NAME`).
    validation = Rule::new("self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')").message(
        "metadata.name must be a DNS-1035 label (lower-case letters, digits and '-', starting with a letter and \
         ending with a letter or digit): the deployment's Service takes its name"
    ),
    validation = Rule::new("self.metadata.name.size() <= 40").message(
        "metadata.name must be at most 40 characters: its nodes are named <name>-g<generation>-<ordinal>, and a \
         SeiNode name may have at most 52 (room for a generation of 7 digits and an ordinal of 2)"
    )
)]
#[x_kube(validation = Rule::new(
    "self.updateStrategy.type != 'HardFork' || \
     (has(self.template.spec.fullNode) && has(self.template.spec.fullNode.snapshot) && has(self.template.spec.fullNode.snapshot.s3)) || \
     (has(self.template.spec.validator) && has(self.template.spec.validator.snapshot) && has(self.template.spec.validator.snapshot.s3)) || \
     (has(self.template.spec.replayer) && has(self.template.spec.replayer.snapshot) && has(self.template.spec.replayer.snapshot.s3))"
).message("updateStrategy.type HardFork requires an S3 snapshot source in the template (template.spec.<mode>.snapshot.s3), so that new nodes can bootstrap to the halt height"))]
#[serde(rename_all = "camelCase")]
#[schemars(transform = require_update_strategy)]
pub struct SeiNodeDeploymentSpec {
    /// Number of nodes.
    #[serde(default = "default_replicas")]
    #[schemars(range(min = 1, max = 100))]
    pub replicas: i32,
    /// The SeiNode every replica is made from.
    pub template: SeiNodeTemplate,
    /// What happens to the nodes when the deployment is deleted.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    /// How a template change that needs a rollout (chain id, image, entrypoint, sidecar image) reaches the nodes.
    #[serde(default)]
    pub update_strategy: UpdateStrategy,
}

fn require_update_strategy(schema: &mut schemars::Schema) {
    super::require_fields(schema, &["updateStrategy"]);
}

fn default_replicas() -> i32 {
    1
}

/// The SeiNode a deployment makes its replicas from.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SeiNodeTemplate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<TemplateMetadata>,
    pub spec: SeiNodeSpec,
}

/// Labels and annotations copied onto every SeiNode of the deployment.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemplateMetadata {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// What deleting a deployment does to its nodes.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum DeletionPolicy {
    /// Delete the nodes (and their Service) with the deployment.
    #[default]
    Delete,
    /// Keep the nodes running, detached from the deployment.
    Retain,
}

/// Phase of a SeiNodeDeployment.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema)]
pub enum DeploymentPhase {
    /// No nodes yet.
    #[default]
    Pending,
    /// Nodes are being created or initialized.
    Initializing,
    /// All replicas run.
    Ready,
    /// A rollout is in progress.
    Upgrading,
    /// Some nodes failed, or the spec targets a rollout that failed.
    Degraded,
    /// All nodes failed.
    Failed,
    /// Being deleted.
    Terminating,
}

impl DeploymentPhase {
    /// Every phase, in declaration order (one metric series each).
    pub const ALL: [DeploymentPhase; 7] = [
        DeploymentPhase::Pending,
        DeploymentPhase::Initializing,
        DeploymentPhase::Ready,
        DeploymentPhase::Upgrading,
        DeploymentPhase::Degraded,
        DeploymentPhase::Failed,
        DeploymentPhase::Terminating,
    ];

    /// The phase as it is written in `status.phase`.
    pub fn as_str(self) -> &'static str {
        match self {
            DeploymentPhase::Pending => "Pending",
            DeploymentPhase::Initializing => "Initializing",
            DeploymentPhase::Ready => "Ready",
            DeploymentPhase::Upgrading => "Upgrading",
            DeploymentPhase::Degraded => "Degraded",
            DeploymentPhase::Failed => "Failed",
            DeploymentPhase::Terminating => "Terminating",
        }
    }
}

/// One node of the deployment, as last observed.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeSummary {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<SeiNodePhase>,
}

/// The node set that serves: created at `generation` (0 for the deployment's first set, named `<name>-<i>`; else
/// a BlueGreen / HardFork entrant set, named `<name>-g<generation>-<i>`), its nodes labelled `revision`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActiveSet {
    pub revision: String,
    pub generation: i64,
    /// The rollout fields (chain id, image, entrypoint, sidecar image) the set's nodes were made to run. A node
    /// made again for the set when none of its nodes is left to copy gets these, not the template's (which may
    /// name a target that failed). Absent in a status stored before it was recorded: the template stands in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields: Option<RolloutFields>,
    /// For a set a HardFork made, its bootstrap: the pre-fork image and the block before the upgrade. A node
    /// made again for the set must bootstrap the same way, or the post-fork binary would start from the
    /// template's pre-fork snapshot and refuse its blocks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fork_bootstrap: Option<ForkBootstrap>,
}

/// A bootstrap to a height with an image: S3 snapshot to `targetHeight`, synced there by `image`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ForkBootstrap {
    pub image: String,
    pub target_height: i64,
}

impl ActiveSet {
    /// The set of `revision` made at `generation`, its nodes made to run `spec`.
    pub fn running(revision: String, generation: i64, spec: &SeiNodeSpec) -> Self {
        let fork_bootstrap =
            spec.bootstrap().map(|(image, target_height)| ForkBootstrap { image: image.to_owned(), target_height });
        ActiveSet { revision, generation, fields: Some(RolloutFields::of(spec)), fork_bootstrap }
    }

    /// The spec a node made again for this set gets: `template` with the set's recorded rollout fields and
    /// bootstrap, where recorded.
    pub fn spec_from(&self, template: &SeiNodeSpec) -> SeiNodeSpec {
        let mut spec = template.clone();
        if let Some(fields) = &self.fields {
            fields.apply_to(&mut spec);
        }
        self.with_fork_bootstrap(spec)
    }

    /// `spec` with the set's recorded bootstrap, when it has one.
    pub fn with_fork_bootstrap(&self, mut spec: SeiNodeSpec) -> SeiNodeSpec {
        if let (Some(fork), Some(slot)) = (&self.fork_bootstrap, spec.snapshot_mut()) {
            let snapshot = slot.get_or_insert_with(SnapshotSource::default);
            snapshot.s3 = Some(S3Snapshot { target_height: fork.target_height });
            snapshot.state_sync = None;
            snapshot.bootstrap_image = Some(fork.image.clone());
        }
        spec
    }
}

/// What the operator knows of a SeiNodeDeployment; `rollout` is the rollout state machine.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SeiNodeDeploymentStatus {
    /// Generation of the spec the deployment last fully converged to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Hash of the rollout fields (chain id, image, entrypoint, sidecar image) the nodes run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_hash: Option<String>,
    /// Target hash of the last rollout that failed; the same target is not retried until the spec changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_target_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<DeploymentPhase>,
    /// Number of nodes in the active set.
    #[serde(default)]
    pub replicas: i32,
    /// Number of nodes in the active set that are Running.
    #[serde(default)]
    pub ready_replicas: i32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<NodeSummary>,
    /// The plan being executed (a rollout or initialization plan).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<Plan>,
    /// Names of the nodes in the active set.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub incumbent_nodes: Vec<String>,
    /// Which node set is active: its revision label and how its nodes are named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_set: Option<ActiveSet>,
    /// Set exactly while a rollout is in progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<RolloutStatus>,
    #[serde(default, skip_serializing_if = "Vec::is_empty", serialize_with = "super::timestamp::conditions")]
    pub conditions: Vec<Condition>,
    /// Events the transitions this status records still owe: written with the transition, emitted after it, and
    /// dropped by a later status write once emitted — so an operator that dies between the write and the event
    /// emits it after its restart.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending_events: Vec<PendingEvent>,
    /// The rollout target (template hash, strategy, haltHeight) the current InvalidUpdateStrategy refusal is
    /// about: a refusal is reported once while its cause is unchanged, however its message's live numbers move.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused_target: Option<String>,
}

/// An event a recorded transition owes (see `status.pendingEvents`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PendingEvent {
    /// Normal or Warning.
    #[serde(rename = "type")]
    pub type_: String,
    pub reason: String,
    pub message: String,
    /// The transition's identity: the Event is recorded once under a name derived from it.
    pub key: String,
}
