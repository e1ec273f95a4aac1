//! The template fields whose change needs a rollout (chain id, image, entrypoint, sidecar image) and
//! `templateHash`, their digest. Other fields (overrides, peers, labels) propagate in place and do not move it.
//! One module for both: planning and the rollout rules read them, and neither owns them.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Entrypoint, SeiNodeSpec, SidecarSpec};

/// The template fields whose change needs a rollout. `templateHash` is their digest.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
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
                spec.sidecar = Some(SidecarSpec { image: Some(image.clone()), ..Default::default() })
            }
            (None, None) => {}
        }
    }

    /// Whether a spec already carries these fields.
    pub fn matches(&self, spec: &SeiNodeSpec) -> bool {
        RolloutFields::of(spec) == *self
    }
}

/// The template hash of a spec. Stable across runs and processes: a struct's JSON keeps its fields in declaration
/// order, and none of the hashed fields is a map. Sixteen hex digits: short enough for a label value and a print
/// column, long enough never to collide among one deployment's revisions.
pub fn template_hash(spec: &SeiNodeSpec) -> String {
    let canonical = serde_json::to_vec(&RolloutFields::of(spec)).unwrap_or_default();
    crate::digest::short_sha256(&canonical)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(value: serde_json::Value) -> SeiNodeSpec {
        serde_json::from_value(value).expect("valid spec")
    }

    #[test]
    fn template_hash_covers_chain_id_image_entrypoint_and_sidecar_image() {
        let base = json!({"chainId": "c", "image": "sei:v1", "fullNode": {}, "sidecar": {"image": "s:1"}});
        let hash = template_hash(&spec(base.clone()));
        assert_eq!(hash.len(), 16);
        for (field, value) in [
            ("chainId", json!("d")),
            ("image", json!("sei:v2")),
            ("entrypoint", json!({"command": ["seid"]})),
            ("sidecar", json!({"image": "s:2"})),
        ] {
            let mut changed = base.clone();
            changed[field] = value;
            assert_ne!(template_hash(&spec(changed)), hash, "{field} must move the hash");
        }
    }

    #[test]
    fn template_hash_ignores_fields_that_propagate_in_place() {
        let base = json!({"chainId": "c", "image": "sei:v1", "fullNode": {}});
        let hash = template_hash(&spec(base.clone()));
        let mut changed = base;
        changed["overrides"] = json!({"a.b": "1", "c.d": "2"});
        changed["peers"] = json!({"static": ["x@y:1"]});
        changed["podLabels"] = json!({"team": "rpc"});
        changed["sidecar"] = json!({"port": 9000});
        assert_eq!(template_hash(&spec(changed)), hash);
    }

    #[test]
    fn template_hash_is_a_fixed_function_of_its_input() {
        // Pinned: a change here changes every deployment's revision label on upgrade of the operator.
        let hash = template_hash(&spec(json!({"chainId": "pacific-1", "image": "sei:v6.3.0", "fullNode": {}})));
        assert_eq!(hash, template_hash(&spec(json!({"image": "sei:v6.3.0", "fullNode": {}, "chainId": "pacific-1"}))));
        assert_eq!(hash, "967aad44a14a6237");
    }
}
