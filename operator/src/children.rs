//! A SeiNodeDeployment's child SeiNodes as values: how a child is made, and which template fields reach an
//! existing child without a rollout (labels, annotations, overrides, peers, pod labels). The rollout fields
//! (image, entrypoint, chain id, sidecar image) of an existing child change only through a rollout plan.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::api::{SeiNode, SeiNodeDeployment, SeiNodeSpec, SeiNodeTemplate};
use crate::meta::{LABEL_DEPLOYMENT, LABEL_ORDINAL, LABEL_REVISION, controller_reference};

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
