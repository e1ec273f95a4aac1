//! Typed parameters of each task, stored as JSON in the plan. A plan carries everything its tasks need, so a
//! plan read back after a crash runs the same way without re-deriving anything from a spec that may have moved.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::api::{Entrypoint, SeiNodeSpec};

/// The template fields whose change needs a rollout. `templateHash` is their digest.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RolloutFields {
    pub chain_id: String,
    pub image: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Entrypoint>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sidecar_image: Option<String>,
}

impl RolloutFields {
    pub fn of(spec: &SeiNodeSpec) -> Self {
        RolloutFields {
            chain_id: spec.chain_id.clone(),
            image: spec.image.clone(),
            entrypoint: spec.entrypoint.clone(),
            sidecar_image: spec.sidecar_image().map(str::to_owned),
        }
    }

    /// Writes these fields onto a spec, leaving every other field as it is.
    pub fn apply_to(&self, spec: &mut SeiNodeSpec) {
        spec.chain_id.clone_from(&self.chain_id);
        spec.image.clone_from(&self.image);
        spec.entrypoint.clone_from(&self.entrypoint);
        match (&self.sidecar_image, spec.sidecar.as_mut()) {
            (image, Some(sidecar)) => sidecar.image.clone_from(image),
            (Some(image), None) => {
                spec.sidecar = Some(crate::api::SidecarSpec { image: Some(image.clone()), ..Default::default() })
            }
            (None, None) => {}
        }
    }

    /// Whether a spec already carries these fields.
    pub fn matches(&self, spec: &SeiNodeSpec) -> bool {
        RolloutFields::of(spec) == *self
    }
}

/// `update-node-specs`: write the rollout fields onto these nodes.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct UpdateNodeSpecs {
    pub nodes: Vec<String>,
    pub fields: RolloutFields,
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
