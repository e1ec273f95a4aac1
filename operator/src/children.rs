//! A SeiNodeDeployment's child SeiNodes as values: how a child is made, and which template fields reach an
//! existing child without a rollout (labels, annotations, overrides, peers, pod labels). The rollout fields
//! (image, entrypoint, chain id, sidecar image) of an existing child change only through a rollout plan.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::api::{SeiNode, SeiNodeDeployment, SeiNodeSpec, SeiNodeTemplate};
use crate::meta::{LABEL_DEPLOYMENT, LABEL_ORDINAL, LABEL_REVISION, controller_reference};
use crate::plan::params::RolloutFields;

/// A new child of `deployment`: its labels (the template's, plus deployment, revision and ordinal), the
/// template's annotations, a controller reference to the deployment, and `spec`.
pub fn child_node(
    deployment: &SeiNodeDeployment,
    name: &str,
    ordinal: u32,
    revision: &str,
    metadata: (&BTreeMap<String, String>, &BTreeMap<String, String>),
    spec: SeiNodeSpec,
) -> SeiNode {
    let (labels, annotations) = metadata;
    let mut labels = labels.clone();
    labels.insert(LABEL_DEPLOYMENT.into(), deployment.metadata.name.clone().unwrap_or_default());
    labels.insert(LABEL_REVISION.into(), revision.to_owned());
    labels.insert(LABEL_ORDINAL.into(), ordinal.to_string());
    SeiNode {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: deployment.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: (!annotations.is_empty()).then(|| annotations.clone()),
            owner_references: controller_reference(deployment).map(|r| vec![r]),
            ..Default::default()
        },
        spec,
        status: None,
    }
}

/// The spec of a child the active set gains by a scale-up: the template, with the active set's rollout fields
/// (not those of a pending or failed target). When the active set came out of a HardFork, its nodes bootstrapped
/// with the pre-fork binary to the block before the upgrade and run the post-fork one; a new node must do the
/// same, or the post-fork binary would start from the template's pre-fork snapshot and refuse its blocks. So an
/// active spec with a bootstrap image lends its snapshot source too.
pub fn scale_up_spec(template: &SeiNodeSpec, active: &SeiNodeSpec) -> SeiNodeSpec {
    let mut spec = template.clone();
    RolloutFields::of(active).apply_to(&mut spec);
    let forked = active.snapshot().filter(|snapshot| snapshot.bootstrap_image.is_some());
    if let (Some(snapshot), Some(slot)) = (forked, spec.snapshot_mut()) {
        *slot = Some(snapshot.clone());
    }
    spec
}

/// `child` with the template's non-rollout fields: labels and annotations (the operator's own labels kept),
/// overrides, peers and pod labels. Everything else, the rollout fields included, stays as it is.
pub fn with_template_fields(template: &SeiNodeTemplate, child: &SeiNode) -> SeiNode {
    let mut updated = child.clone();
    let metadata = template.metadata.clone().unwrap_or_default();
    let own: BTreeMap<String, String> = child
        .metadata
        .labels
        .iter()
        .flatten()
        .filter(|(key, _)| [LABEL_DEPLOYMENT, LABEL_REVISION, LABEL_ORDINAL].contains(&key.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut labels = metadata.labels;
    labels.extend(own);
    updated.metadata.labels = Some(labels);
    updated.metadata.annotations = (!metadata.annotations.is_empty()).then_some(metadata.annotations);
    updated.spec.overrides.clone_from(&template.spec.overrides);
    updated.spec.peers.clone_from(&template.spec.peers);
    updated.spec.pod_labels.clone_from(&template.spec.pod_labels);
    updated
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn spec(value: serde_json::Value) -> SeiNodeSpec {
        serde_json::from_value(value).expect("a SeiNode spec")
    }

    #[test]
    fn a_scale_up_child_of_a_hard_fork_active_set_bootstraps_as_its_siblings_did() {
        let template = spec(json!({
            "chainId": "pacific-1", "image": "sei:v6.4.1", "peers": {"static": ["a@b:1"]},
            "fullNode": {"snapshot": {"s3": {"targetHeight": 4000}}}
        }));
        let active = spec(json!({
            "chainId": "pacific-1", "image": "sei:v6.4.0",
            "fullNode": {"snapshot": {"s3": {"targetHeight": 4999}, "bootstrapImage": "sei:v6.3.0"}}
        }));
        let child = scale_up_spec(&template, &active);
        assert_eq!(child.image, "sei:v6.4.0", "the active set's image, not a pending target's");
        let snapshot = child.snapshot().expect("a snapshot source");
        assert_eq!(snapshot.bootstrap_image.as_deref(), Some("sei:v6.3.0"));
        assert_eq!(snapshot.s3.as_ref().map(|s| s.target_height), Some(4999));
        assert_eq!(child.peers, template.peers, "non-rollout fields come from the template");
    }

    #[test]
    fn a_scale_up_child_of_an_active_set_without_bootstrap_keeps_the_template_snapshot() {
        let template = spec(json!({
            "chainId": "pacific-1", "image": "sei:v6.4.0",
            "fullNode": {"snapshot": {"s3": {"targetHeight": 4500}}}
        }));
        let active = spec(json!({
            "chainId": "pacific-1", "image": "sei:v6.3.0",
            "fullNode": {"snapshot": {"s3": {"targetHeight": 4000}}}
        }));
        let child = scale_up_spec(&template, &active);
        assert_eq!(child.image, "sei:v6.3.0");
        assert_eq!(child.snapshot().and_then(|s| s.s3.as_ref()).map(|s| s.target_height), Some(4500));
    }
}
