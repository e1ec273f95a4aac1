//! The state a run ends in, as sorted text lines: what the fuzzer's differential oracle compares between a
//! perturbed run and the same operations run without perturbations. It keeps what a user of the operator relies
//! on — which objects exist, what they run, the deployment's settled status — and leaves out what legitimately
//! differs with timing: events, timestamps, resource versions, heights, plan task progress.

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Service;
use sei_operator::api::{SeiNode, SeiNodeDeployment};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::world::World;

/// One line per object of the kinds the operator manages, sorted by kind and name.
pub fn end_state(world: &World) -> Vec<String> {
    world.inspect(|state| {
        let mut lines = Vec::new();
        for (key, value) in state.store.all_of_kind("SeiNodeDeployment") {
            if let Some(d) = decode::<SeiNodeDeployment>(value) {
                lines.push(format!("SeiNodeDeployment {}/{}: {}", key.namespace, key.name, deployment_line(&d)));
            }
        }
        for (key, value) in state.store.all_of_kind("SeiNode") {
            if let Some(node) = decode::<SeiNode>(value) {
                let status = node.status.unwrap_or_default();
                let owner = node.metadata.owner_references.unwrap_or_default().into_iter().map(|o| o.name).next();
                lines.push(format!(
                    "SeiNode {}/{}: image={} phase={:?} currentImage={} owner={}",
                    key.namespace,
                    key.name,
                    node.spec.image,
                    status.phase,
                    status.current_image.unwrap_or_default(),
                    owner.unwrap_or_default(),
                ));
            }
        }
        for (key, value) in state.store.all_of_kind("StatefulSet") {
            if let Some(set) = decode::<StatefulSet>(value) {
                let images: Vec<String> = set
                    .spec
                    .and_then(|s| s.template.spec)
                    .map(|p| p.containers.into_iter().filter_map(|c| c.image).collect())
                    .unwrap_or_default();
                lines.push(format!("StatefulSet {}/{}: images={}", key.namespace, key.name, images.join(",")));
            }
        }
        let nodes: Vec<(String, String, std::collections::BTreeMap<String, String>)> = state
            .store
            .all_of_kind("SeiNode")
            .filter_map(|(key, value)| {
                let node = decode::<SeiNode>(value)?;
                Some((key.namespace.clone(), key.name.clone(), node.metadata.labels.unwrap_or_default()))
            })
            .collect();
        for (key, value) in state.store.all_of_kind("Service") {
            if let Some(service) = decode::<Service>(value) {
                // Which nodes it sends traffic to, not the revision label it does it by: an InPlace rollout keeps
                // its nodes' revision label while a deployment created on the same template has the new one.
                let selector = service.spec.and_then(|s| s.selector).unwrap_or_default();
                let selected: Vec<&str> = nodes
                    .iter()
                    .filter(|(namespace, _, labels)| {
                        *namespace == key.namespace && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
                    })
                    .map(|(_, name, _)| name.as_str())
                    .collect();
                lines.push(format!("Service {}/{}: selects nodes={}", key.namespace, key.name, selected.join(",")));
            }
        }
        for (key, value) in state.store.all_of_kind("Job") {
            if decode::<Job>(value).is_some() {
                lines.push(format!("Job {}/{}", key.namespace, key.name));
            }
        }
        lines.sort();
        lines
    })
}

fn deployment_line(deployment: &SeiNodeDeployment) -> String {
    let status = deployment.status.clone().unwrap_or_default();
    // Reasons of a settled RolloutInProgress differ with timing (an edit before the baseline is NoRollout, after
    // it RolloutComplete), and so does the active set's revision label: both are left out.
    let mut conditions: Vec<String> = status
        .conditions
        .iter()
        .map(|c| {
            if c.type_ == "RolloutInProgress" && c.status == "False" {
                format!("{}={}", c.type_, c.status)
            } else {
                format!("{}={}/{}", c.type_, c.status, c.reason)
            }
        })
        .collect();
    conditions.sort();
    format!(
        "phase={:?} templateHash={} failedTargetHash={} rollout={} conditions=[{}]",
        status.phase,
        status.template_hash.unwrap_or_default(),
        status.failed_target_hash.unwrap_or_default(),
        status.rollout.is_some(),
        conditions.join(" ")
    )
}

fn decode<K: DeserializeOwned>(value: &Value) -> Option<K> {
    K::deserialize(value).ok()
}
