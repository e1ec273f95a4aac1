//! `SeiNode`: one Sei node — seid and its sidecar in one pod of a one-replica StatefulSet, with its chain data on
//! a PersistentVolumeClaim that survives restarts.

// kube's `printcolumn(...)` entries repeat `type_ = "..."`, which clippy mistakes for duplicated attributes.
#![allow(clippy::duplicated_attributes)]

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{LocalObjectReference, PodSecurityContext, ResourceRequirements, SecurityContext};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Condition, Plan, PodSettings, SchedulingSpec, StorageSpec, Time};

/// Port of the sidecar's HTTP API when `spec.sidecar.port` is not set.
pub const DEFAULT_SIDECAR_PORT: i32 = 7777;

/// What a Sei node runs and how it joins its chain. Exactly one mode (`fullNode`, `archive`, `validator`,
/// `replayer`) must be set.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "sei.io",
    version = "v1alpha1",
    kind = "SeiNode",
    namespaced,
    status = "SeiNodeStatus",
    shortname = "snode",
    derive = "PartialEq",
    doc = "A Sei node: seid and its sidecar on a one-replica StatefulSet with its own PersistentVolumeClaim.",
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Image", type_ = "string", json_path = ".spec.image"),
    printcolumn(name = "Current", type_ = "string", json_path = ".status.currentImage"),
    printcolumn(name = "Height", type_ = "integer", json_path = ".status.latestHeight"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
    // The node's children are named after it (`names`): its headless Service (a DNS-1035 label), its StatefulSet
    // whose pods carry `controller-revision-hash: <name>-<hash>` (a label value, at most 63 characters, the hash up
    // to 10), its bootstrap Job and Service `<name>-bootstrap`. A name the API server would refuse for a child
    // is refused here, at admission, instead of leaving the node stuck (`names::MAX_NODE_NAME`).
    validation = Rule::new("self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')").message(
        "metadata.name must be a DNS-1035 label (lower-case letters, digits and '-', starting with a letter and \
         ending with a letter or digit): the node's headless Service takes its name"
    ),
    validation = Rule::new("self.metadata.name.size() <= 52").message(
        "metadata.name must be at most 52 characters: the node's pods carry the label controller-revision-hash = \
         <name>-<hash of up to 10 characters>, which Kubernetes limits to 63 characters"
    )
)]
#[x_kube(validation = Rule::new(
    "(has(self.fullNode) ? 1 : 0) + (has(self.archive) ? 1 : 0) + (has(self.validator) ? 1 : 0) + (has(self.replayer) ? 1 : 0) == 1"
).message("exactly one mode must be set: fullNode, archive, validator or replayer"))]
#[x_kube(validation = Rule::new("!has(self.replayer) || has(self.peers)")
    .message("replayer mode requires peers: set spec.peers"))]
#[serde(rename_all = "camelCase")]
pub struct SeiNodeSpec {
    /// Chain this node joins (for example `pacific-1`).
    #[schemars(length(min = 1))]
    pub chain_id: String,
    /// Container image of seid (for example `sei:v6.3.0`).
    #[schemars(length(min = 1, max = 512))]
    pub image: String,
    /// Overrides the image's command and arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Entrypoint>,
    /// The sidecar (seictl) that runs beside seid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sidecar: Option<SidecarSpec>,
    /// Extra labels for the node's pod.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pod_labels: BTreeMap<String, String>,
    /// seid configuration overrides, as flat dotted keys (`p2p.max_num_inbound_peers: "40"`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub overrides: BTreeMap<String, String>,
    /// Where the node finds its peers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peers: Option<PeerSource>,
    /// Mode: a full node serving RPC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_node: Option<FullNodeMode>,
    /// Mode: an archive node keeping all history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive: Option<ArchiveMode>,
    /// Mode: a validator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validator: Option<ValidatorMode>,
    /// Mode: a replayer (requires peers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replayer: Option<ReplayerMode>,
    /// Compute resources of the seid container; the operator's default for the node's mode when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// The data volume's StorageClass and size; each unset field takes the operator's default for the mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<StorageSpec>,
    /// Where the node's pods may run (node selector, tolerations, affinity, topology spread, priority class);
    /// each unset field takes the operator's default for the mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduling: Option<SchedulingSpec>,
    /// ServiceAccount the node's pods run as (workload identity, for the sidecar's S3 access).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub service_account_name: Option<String>,
    /// Secrets for pulling the seid and sidecar images.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_pull_secrets: Vec<LocalObjectReference>,
    /// Security context of the node's pods; the operator's default (non-root, fsGroup 65532) when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_security_context: Option<PodSecurityContext>,
    /// Security context of the seid container (the sidecar's is the same with a read-only root filesystem);
    /// the operator's default (no privilege escalation, every capability dropped) when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_security_context: Option<SecurityContext>,
}

/// The command and arguments seid starts with, replacing the image's own.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Entrypoint {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
}

/// The sidecar container beside seid.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SidecarSpec {
    /// Sidecar image; the operator's default when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512))]
    pub image: Option<String>,
    /// Port of the sidecar's HTTP API (7777 when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<i32>,
    /// Compute resources of the sidecar container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
}

/// Where a node finds its peers: a static list of addresses, or the SeiNodes matching a label selector.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[x_kube(validation = Rule::new("has(self.static) != has(self.selector)")
    .message("peers: set exactly one of static or selector"))]
#[serde(rename_all = "camelCase")]
pub struct PeerSource {
    /// Peer addresses (`<node-id>@<host>:<port>`).
    #[serde(rename = "static", default, skip_serializing_if = "Option::is_none")]
    pub static_addresses: Option<Vec<String>>,
    /// SeiNodes whose addresses become this node's peers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
}

/// Full-node mode.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FullNodeMode {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<SnapshotSource>,
}

/// Archive mode: keeps all history, so it always syncs from genesis (no snapshot).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct ArchiveMode {}

/// Validator mode.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ValidatorMode {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<SnapshotSource>,
}

/// Replayer mode.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplayerMode {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<SnapshotSource>,
}

/// Where a node's initial chain state comes from: an S3 snapshot or state sync, and optionally a bootstrap
/// image that syncs the node to the snapshot's target height before its own image takes over.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[x_kube(validation = Rule::new("has(self.s3) != has(self.stateSync)")
    .message("snapshot: set exactly one of s3 or stateSync"))]
#[serde(rename_all = "camelCase")]
pub struct SnapshotSource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<S3Snapshot>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_sync: Option<StateSyncSnapshot>,
    /// Image that prepares the node's volume (a one-shot Job syncing to `s3.targetHeight` with
    /// `--halt-height`) before the node's own image starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 512))]
    pub bootstrap_image: Option<String>,
}

/// Restore from the newest S3 snapshot at or below `targetHeight`, then block-sync up to it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct S3Snapshot {
    /// Height to reach; 0 means the newest snapshot, with no height target.
    #[serde(default)]
    #[schemars(range(min = 0))]
    pub target_height: i64,
}

/// Join the chain through CometBFT state sync.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct StateSyncSnapshot {}

/// The mode a spec selects, borrowed from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeMode<'a> {
    FullNode(&'a FullNodeMode),
    Archive(&'a ArchiveMode),
    Validator(&'a ValidatorMode),
    Replayer(&'a ReplayerMode),
}

impl NodeMode<'_> {
    /// The mode's field name in the spec.
    pub fn name(&self) -> &'static str {
        match self {
            NodeMode::FullNode(_) => "fullNode",
            NodeMode::Archive(_) => "archive",
            NodeMode::Validator(_) => "validator",
            NodeMode::Replayer(_) => "replayer",
        }
    }
}

impl SeiNodeSpec {
    /// The pod settings this spec gives (unset ones take the operator's defaults for the mode).
    pub fn pod_settings(&self) -> PodSettings {
        PodSettings {
            resources: self.resources.clone(),
            storage: self.storage.clone(),
            scheduling: self.scheduling.clone(),
            service_account_name: self.service_account_name.clone(),
            image_pull_secrets: self.image_pull_secrets.clone(),
            pod_security_context: self.pod_security_context.clone(),
            container_security_context: self.container_security_context.clone(),
        }
    }

    /// The one mode this spec selects, or `None` when zero or several are set (the CRD rejects both; an object
    /// stored before the rule existed can still carry them).
    pub fn mode(&self) -> Option<NodeMode<'_>> {
        let modes: Vec<NodeMode<'_>> = [
            self.full_node.as_ref().map(NodeMode::FullNode),
            self.archive.as_ref().map(NodeMode::Archive),
            self.validator.as_ref().map(NodeMode::Validator),
            self.replayer.as_ref().map(NodeMode::Replayer),
        ]
        .into_iter()
        .flatten()
        .collect();
        match modes.as_slice() {
            [one] => Some(*one),
            _ => None,
        }
    }

    /// The snapshot source of the selected mode, if any.
    pub fn snapshot(&self) -> Option<&SnapshotSource> {
        match self.mode()? {
            NodeMode::FullNode(m) => m.snapshot.as_ref(),
            NodeMode::Validator(m) => m.snapshot.as_ref(),
            NodeMode::Replayer(m) => m.snapshot.as_ref(),
            NodeMode::Archive(_) => None,
        }
    }

    /// Mutable access to the snapshot source of the selected mode (archive nodes have none).
    pub fn snapshot_mut(&mut self) -> Option<&mut Option<SnapshotSource>> {
        if let Some(m) = self.full_node.as_mut() {
            return Some(&mut m.snapshot);
        }
        if let Some(m) = self.validator.as_mut() {
            return Some(&mut m.snapshot);
        }
        if let Some(m) = self.replayer.as_mut() {
            return Some(&mut m.snapshot);
        }
        None
    }

    /// The bootstrap this node needs before its own image starts: `(bootstrap image, target height)`. A node
    /// bootstraps when its snapshot names a bootstrap image and an S3 source with `targetHeight > 0`.
    pub fn bootstrap(&self) -> Option<(&str, i64)> {
        let snapshot = self.snapshot()?;
        let image = snapshot.bootstrap_image.as_deref()?;
        let height = snapshot.s3.as_ref()?.target_height;
        (height > 0).then_some((image, height))
    }

    /// Port of the sidecar's HTTP API.
    pub fn sidecar_port(&self) -> i32 {
        self.sidecar.as_ref().and_then(|s| s.port).unwrap_or(DEFAULT_SIDECAR_PORT)
    }

    /// The sidecar image the spec names, if any.
    pub fn sidecar_image(&self) -> Option<&str> {
        self.sidecar.as_ref()?.image.as_deref()
    }

    /// The sidecar image the node's pod is built with: the spec's, or the operator's default.
    pub fn effective_sidecar_image(&self) -> &str {
        self.sidecar_image().unwrap_or(crate::objects::workload::DEFAULT_SIDECAR_IMAGE)
    }
}

/// Lifecycle phase of a SeiNode.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema)]
pub enum SeiNodePhase {
    /// Accepted, nothing started yet.
    #[default]
    Pending,
    /// The init plan (bootstrap, sidecar tasks) is running.
    Initializing,
    /// The node runs; the StatefulSet is converged to the spec.
    Running,
    /// The init plan failed.
    Failed,
    /// Being deleted.
    Terminating,
}

impl SeiNodePhase {
    /// Every phase, in declaration order (one metric series each).
    pub const ALL: [SeiNodePhase; 5] = [
        SeiNodePhase::Pending,
        SeiNodePhase::Initializing,
        SeiNodePhase::Running,
        SeiNodePhase::Failed,
        SeiNodePhase::Terminating,
    ];

    /// The phase as it is written in `status.phase`.
    pub fn as_str(self) -> &'static str {
        match self {
            SeiNodePhase::Pending => "Pending",
            SeiNodePhase::Initializing => "Initializing",
            SeiNodePhase::Running => "Running",
            SeiNodePhase::Failed => "Failed",
            SeiNodePhase::Terminating => "Terminating",
        }
    }
}

/// What the operator knows of a SeiNode.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SeiNodeStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<SeiNodePhase>,
    /// Generation of the spec this status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The image the node's pod runs, set only once the StatefulSet has fully rolled to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_image: Option<String>,
    /// The sidecar image the node's pod runs, set with `currentImage` once the StatefulSet has fully rolled to it
    /// (the sidecar image is a rollout field: a rollout that changes only it waits on this).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_sidecar_image: Option<String>,
    /// The node's init plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<Plan>,
    #[serde(default, skip_serializing_if = "Vec::is_empty", serialize_with = "super::timestamp::conditions")]
    pub conditions: Vec<Condition>,
    /// Whether the sidecar last reported `Ready`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sidecar_ready: Option<bool>,
    /// The node's latest block height, from seid's RPC. Refreshed at most about once a minute while nothing
    /// else in the status changes, so a chain's blocks do not become a stream of status writes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_height: Option<i64>,
    /// When `latestHeight` was observed.
    #[serde(default, skip_serializing_if = "Option::is_none", serialize_with = "super::timestamp::optional_time")]
    pub latest_height_time: Option<Time>,
    /// Whether seid reported it is still catching up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catching_up: Option<bool>,
    /// Which attempt of the init plan runs, or ran last: a failed init plan is retried with back-off, on the
    /// same volume, from its failed task. Unset: the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_attempt: Option<i32>,
    /// While Failed: when the init plan is tried again (unset when it will not be, e.g. an invalid spec).
    #[serde(default, skip_serializing_if = "Option::is_none", serialize_with = "super::timestamp::optional_time")]
    pub next_init_attempt_at: Option<Time>,
    /// The latest plan that brought a Running node's config to its spec after an `overrides` or `peers`
    /// change: the sidecar's config tasks run again, then seid restarts in place to read them. Unset until the
    /// first such change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_plan: Option<Plan>,
    /// A digest of the config the sidecar last wrote for seid, whole (`config-apply`'s overrides, then
    /// `discover-peers`' peers): what seid reads at its next start. Unset: the init plan's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub written_config: Option<String>,
    /// While seid does not answer: what its last exit said about its binary and the chain's upgrade plan, read
    /// from its container's termination message. Unset once seid answers again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade_panic: Option<UpgradePanic>,
}

/// A panic of Cosmos SDK's x/upgrade module, as seid's container reported it on exit.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpgradePanic {
    pub reason: UpgradePanicReason,
    /// The upgrade plan's name.
    pub upgrade: String,
    /// `UpgradeNeeded`: the height the plan is due at (the node committed the block before it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<i64>,
}

/// Which x/upgrade panic.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum UpgradePanicReason {
    /// `UPGRADE "<name>" NEEDED at height: H`: the binary has no handler for the plan due at H.
    UpgradeNeeded,
    /// `BINARY UPDATED BEFORE TRIGGER! UPGRADE "<name>"`: the binary carries the handler of a plan not yet due.
    BinaryUpdatedBeforeTrigger,
}

impl SeiNodeStatus {
    /// Whether the node's initialization has failed: it is Failed, or it is retrying its init plan after a
    /// failure and has not yet reached Running. A rollout that waits for it reads either as failed at once: a
    /// retry hides no failure from the deployment's rules.
    pub fn init_failed(&self) -> bool {
        match self.phase {
            Some(SeiNodePhase::Failed) => true,
            Some(SeiNodePhase::Initializing) => self.init_attempt.is_some_and(|a| a > 1),
            _ => false,
        }
    }
}
