//! Typed parameters of each task, stored as JSON in the plan. A plan carries everything its tasks need, so a
//! plan read back after a crash runs the same way without re-deriving anything from a spec that may have moved.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use crate::api::RolloutFields;
use crate::api::SeiNodeSpec;

/// `update-node-specs`: write the rollout fields onto these nodes.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct UpdateNodeSpecs {
    pub nodes: Vec<String>,
    pub fields: RolloutFields,
}

/// `update-node-specs-at-height`: write the rollout fields onto each node once it has reached the block before
/// `upgradeHeight` (`rollout::gate`); put `previous` back on one that runs them too early.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct UpdateNodeSpecsAtHeight {
    pub nodes: Vec<String>,
    pub fields: RolloutFields,
    pub upgrade_height: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<RolloutFields>,
}

/// `await-spec-update`, `mark-nodes-ready`, `await-nodes-running`, `await-nodes-caught-up`: wait on these nodes.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AwaitNodes {
    pub nodes: Vec<String>,
    /// The image the nodes must run, where the wait is about an image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
}

/// One node a plan creates.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct NewNode {
    pub name: String,
    pub ordinal: u32,
}

/// `create-entrant-nodes`: create these SeiNodes from one spec, labelled with the entrant revision.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CreateEntrantNodes {
    pub nodes: Vec<NewNode>,
    pub revision: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    pub spec: SeiNodeSpec,
}

/// `switch-traffic`: point the deployment's Service at a revision.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SwitchTraffic {
    pub service: String,
    pub selector: BTreeMap<String, String>,
}

/// `teardown-nodes`: delete these nodes, which all carry `revision` — never while the Service selects it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct TeardownNodes {
    pub nodes: Vec<String>,
    pub revision: String,
    pub service: String,
}

/// The bootstrap of a SeiNode: a one-shot Job running `image` on the node's volume up to `haltHeight`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Bootstrap {
    pub job: String,
    pub service: String,
    pub volume: String,
    pub image: String,
    pub halt_height: i64,
}
