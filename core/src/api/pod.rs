//! The settings of a node's pods a platform team chooses: compute resources, the data volume's class and size,
//! scheduling, identity, image pull secrets and security contexts. Each is a field of `SeiNode.spec` (and so of a
//! deployment's template); a field a spec leaves unset takes the operator's default for the node's mode
//! (`crate::node_defaults`). The Kubernetes shapes are k8s-openapi's own, so their schemas and docs are
//! Kubernetes'.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Affinity, LocalObjectReference, PodSecurityContext, ResourceRequirements, SecurityContext, Toleration,
    TopologySpreadConstraint,
};
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The node's data volume (its PersistentVolumeClaim `data-<node>-0`).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[x_kube(validation = Rule::new("!has(self.size) || (isQuantity(self.size) && quantity(self.size).isGreaterThan(quantity('0')))")
    .message("storage.size must be a positive Kubernetes quantity, such as 2000Gi or 40Ti"))]
#[x_kube(validation = Rule::new(
    "!has(self.storageClassName) || (self.storageClassName.size() <= 253 && self.storageClassName.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$'))"
).message("storage.storageClassName must be a DNS subdomain (lower-case letters, digits, '-' and '.', at most 253 characters), the name of a StorageClass"))]
#[serde(rename_all = "camelCase")]
pub struct StorageSpec {
    /// StorageClass of the claim; the cluster's default class when neither the spec nor the operator's defaults
    /// name one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class_name: Option<String>,
    /// Size requested, a Kubernetes quantity (`2000Gi`, `40Ti`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
}

/// Where a node's pods may run. Each field is Kubernetes' own pod field of that name.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[x_kube(validation = Rule::new("!has(self.tolerations) || self.tolerations.all(t, !has(t.operator) || t.operator in ['', 'Equal', 'Exists'])")
    .message("scheduling.tolerations: operator must be Equal or Exists"))]
#[x_kube(validation = Rule::new("!has(self.tolerations) || self.tolerations.all(t, !has(t.effect) || t.effect in ['', 'NoSchedule', 'PreferNoSchedule', 'NoExecute'])")
    .message("scheduling.tolerations: effect must be NoSchedule, PreferNoSchedule or NoExecute (or empty, for all)"))]
#[x_kube(validation = Rule::new("!has(self.tolerations) || self.tolerations.all(t, !has(t.operator) || t.operator != 'Exists' || !has(t.value) || t.value == '')")
    .message("scheduling.tolerations: a toleration with operator Exists must have no value"))]
#[x_kube(validation = Rule::new("!has(self.tolerations) || self.tolerations.all(t, (has(t.key) && t.key != '') || (has(t.operator) && t.operator == 'Exists'))")
    .message("scheduling.tolerations: a toleration without a key must have operator Exists"))]
#[x_kube(validation = Rule::new("!has(self.tolerations) || self.tolerations.all(t, !has(t.tolerationSeconds) || (has(t.effect) && t.effect == 'NoExecute'))")
    .message("scheduling.tolerations: tolerationSeconds applies only to effect NoExecute"))]
#[x_kube(validation = Rule::new(
    "!has(self.priorityClassName) || (self.priorityClassName.size() <= 253 && self.priorityClassName.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$'))"
).message("scheduling.priorityClassName must be a DNS subdomain, the name of a PriorityClass"))]
#[serde(rename_all = "camelCase")]
pub struct SchedulingSpec {
    /// Labels a Kubernetes node must carry for the pod to run there (a dedicated node pool).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// Taints the pod tolerates (a dedicated node pool's taint).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    /// Node and pod (anti-)affinity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    /// How the pods of several nodes spread over zones or hosts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub topology_spread_constraints: Vec<TopologySpreadConstraint>,
    /// PriorityClass of the pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_class_name: Option<String>,
}

/// The pod settings of one node, as a spec gives them or as the operator's defaults for a mode give them: every
/// field optional, an unset (or empty) one taking the next source's.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PodSettings {
    /// Compute resources of the seid container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// The data volume's StorageClass and size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<StorageSpec>,
    /// Where the pods may run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduling: Option<SchedulingSpec>,
    /// ServiceAccount of the pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,
    /// Secrets for pulling the images.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_pull_secrets: Vec<LocalObjectReference>,
    /// Security context of the pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_security_context: Option<PodSecurityContext>,
    /// Security context of the seid container (the sidecar's adds a read-only root filesystem).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_security_context: Option<SecurityContext>,
}

impl PodSettings {
    /// These settings, with every field they leave unset taken from `fallback` — field by field, and within
    /// `storage` and `scheduling` sub-field by sub-field.
    pub fn or(self, fallback: &PodSettings) -> PodSettings {
        let storage = match (self.storage, &fallback.storage) {
            (Some(own), Some(other)) => Some(StorageSpec {
                storage_class_name: own.storage_class_name.or_else(|| other.storage_class_name.clone()),
                size: own.size.or_else(|| other.size.clone()),
            }),
            (own, other) => own.or_else(|| other.clone()),
        };
        let scheduling = match (self.scheduling, &fallback.scheduling) {
            (Some(own), Some(other)) => Some(SchedulingSpec {
                node_selector: non_empty(own.node_selector, &other.node_selector),
                tolerations: non_empty_vec(own.tolerations, &other.tolerations),
                affinity: own.affinity.or_else(|| other.affinity.clone()),
                topology_spread_constraints: non_empty_vec(
                    own.topology_spread_constraints,
                    &other.topology_spread_constraints,
                ),
                priority_class_name: own.priority_class_name.or_else(|| other.priority_class_name.clone()),
            }),
            (own, other) => own.or_else(|| other.clone()),
        };
        PodSettings {
            resources: self.resources.or_else(|| fallback.resources.clone()),
            storage,
            scheduling,
            service_account_name: self.service_account_name.or_else(|| fallback.service_account_name.clone()),
            image_pull_secrets: non_empty_vec(self.image_pull_secrets, &fallback.image_pull_secrets),
            pod_security_context: self.pod_security_context.or_else(|| fallback.pod_security_context.clone()),
            container_security_context: self
                .container_security_context
                .or_else(|| fallback.container_security_context.clone()),
        }
    }
}

fn non_empty(own: BTreeMap<String, String>, other: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    if own.is_empty() { other.clone() } else { own }
}

fn non_empty_vec<T: Clone>(own: Vec<T>, other: &[T]) -> Vec<T> {
    if own.is_empty() { other.to_vec() } else { own }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_field_wins_and_an_unset_one_is_taken_from_the_fallback_sub_field_by_sub_field() {
        let own = PodSettings {
            storage: Some(StorageSpec { size: Some("4Ti".into()), storage_class_name: None }),
            scheduling: Some(SchedulingSpec {
                node_selector: BTreeMap::from([("pool".into(), "rpc".into())]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let fallback = PodSettings {
            storage: Some(StorageSpec { size: Some("2000Gi".into()), storage_class_name: Some("gp3".into()) }),
            scheduling: Some(SchedulingSpec {
                node_selector: BTreeMap::from([("pool".into(), "default".into())]),
                priority_class_name: Some("sei-high".into()),
                ..Default::default()
            }),
            service_account_name: Some("sei-node".into()),
            ..Default::default()
        };
        let merged = own.or(&fallback);
        let storage = merged.storage.unwrap_or_default();
        assert_eq!(storage.size.as_deref(), Some("4Ti"), "the spec's size");
        assert_eq!(storage.storage_class_name.as_deref(), Some("gp3"), "the default's class");
        let scheduling = merged.scheduling.unwrap_or_default();
        assert_eq!(scheduling.node_selector.get("pool").map(String::as_str), Some("rpc"));
        assert_eq!(scheduling.priority_class_name.as_deref(), Some("sei-high"));
        assert_eq!(merged.service_account_name.as_deref(), Some("sei-node"));
    }
}
