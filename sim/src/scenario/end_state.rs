//! The state a run ends in, as sorted text lines: what the fuzzer's differential oracle compares between a
//! perturbed run and the same operations run without perturbations. It keeps what a user of the operator relies
//! on — which objects exist, what they run, the deployment's settled status — and leaves out what legitimately
//! differs with timing: events, timestamps, resource versions, heights, plan task progress — and the names of
//! a deployment's nodes: a child is named by its ordinal (`fuzz-#2`), not by the generation of the rollout that
//! made it (`fuzz-g7-2`), because whether an edit lands before or after a switch (a revert that cancels a
//! rollout or starts another, an edit before or after the baseline) changes the generation and nothing a user
//! relies on. Objects named after a node (its StatefulSet, Service, bootstrap Job) follow its new name.

use std::sync::Arc;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Service};
use sei_operator_core::api::{SeiNode, SeiNodeDeployment};
use sei_operator_core::cluster::ObjectRef;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::harness::state::WorldState;
use crate::harness::world::World;

/// One line per object of the kinds the operator manages, sorted by kind and name.
pub fn end_state(world: &World) -> Vec<String> {
    world.inspect(|state| {
        let names = node_names(state);
        let name = |name: &str| display_name(&names, name);
        let mut lines = Vec::new();
        for (key, value) in state.api.store.all_of_kind("SeiNodeDeployment") {
            if let Some(d) = decode::<SeiNodeDeployment>(state, key, value) {
                lines.push(format!("SeiNodeDeployment {}/{}: {}", key.namespace, key.name, deployment_line(&d)));
            }
        }
        for (key, value) in state.api.store.all_of_kind("SeiNode") {
            if let Some(node) = decode::<SeiNode>(state, key, value) {
                let status = node.status.as_ref();
                let owner = node.metadata.owner_references.as_ref().and_then(|o| o.first()).map(|o| o.name.as_str());
                lines.push(format!(
                    "SeiNode {}/{}: image={} phase={:?} currentImage={} owner={}",
                    key.namespace,
                    name(&key.name),
                    node.spec.image,
                    status.and_then(|s| s.phase.as_ref()),
                    status.and_then(|s| s.current_image.as_deref()).unwrap_or_default(),
                    owner.unwrap_or_default(),
                ));
            }
        }
        for (key, value) in state.api.store.all_of_kind("StatefulSet") {
            if let Some(set) = decode::<StatefulSet>(state, key, value) {
                let pod = set.spec.as_ref().and_then(|s| s.template.spec.as_ref());
                let images: Vec<&str> =
                    pod.map(|p| p.containers.iter().filter_map(|c| c.image.as_deref()).collect()).unwrap_or_default();
                // The init containers: seid-init and the sidecar (a native sidecar), whose image is a rollout field.
                let init: Vec<&str> = pod
                    .and_then(|p| p.init_containers.as_ref())
                    .map(|c| c.iter().filter_map(|c| c.image.as_deref()).collect())
                    .unwrap_or_default();
                lines.push(format!(
                    "StatefulSet {}/{}: images={} initImages={}",
                    key.namespace,
                    name(&key.name),
                    images.join(","),
                    init.join(",")
                ));
            }
        }
        let nodes: Vec<(String, String, std::collections::BTreeMap<String, String>)> = state
            .api
            .store
            .all_of_kind("SeiNode")
            .filter_map(|(key, value)| {
                let node = decode::<SeiNode>(state, key, value)?;
                Some((key.namespace.clone(), key.name.clone(), node.metadata.labels.clone().unwrap_or_default()))
            })
            .collect();
        for (key, value) in state.api.store.all_of_kind("Service") {
            if let Some(service) = decode::<Service>(state, key, value) {
                // Which nodes it sends traffic to, not the revision label it does it by: an InPlace rollout keeps
                // its nodes' revision label while a deployment created on the same template has the new one.
                let selector = service.spec.as_ref().and_then(|s| s.selector.clone()).unwrap_or_default();
                let mut selected: Vec<String> = nodes
                    .iter()
                    .filter(|(namespace, _, labels)| {
                        *namespace == key.namespace && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
                    })
                    .map(|(_, node, _)| name(node))
                    .collect();
                selected.sort();
                lines.push(format!(
                    "Service {}/{}: selects nodes={}",
                    key.namespace,
                    name(&key.name),
                    selected.join(",")
                ));
            }
        }
        for (key, value) in state.api.store.all_of_kind("PersistentVolumeClaim") {
            if let Some(claim) = decode::<PersistentVolumeClaim>(state, key, value) {
                // What the claim asks for, not what it has: a resize the operator sent is its part.
                let requested = claim
                    .spec
                    .as_ref()
                    .and_then(|s| s.resources.as_ref())
                    .and_then(|r| r.requests.as_ref())
                    .and_then(|r| r.get("storage"))
                    .map_or("", |q| q.0.as_str());
                // A StatefulSet's claim is named `<template>-<pod>` (`data-fuzz-g7-2-0`): its node's name follows.
                let shown = match key.name.split_once('-') {
                    Some((template, pod)) => format!("{template}-{}", name(pod)),
                    None => key.name.clone(),
                };
                lines.push(format!("PersistentVolumeClaim {}/{shown}: requests={requested}", key.namespace));
            }
        }
        for (key, value) in state.api.store.all_of_kind("Job") {
            if decode::<Job>(state, key, value).is_some() {
                lines.push(format!("Job {}/{}", key.namespace, name(&key.name)));
            }
        }
        lines.sort();
        lines
    })
}

/// Node name → the name the end state shows: `<deployment>-#<ordinal>` for a deployment's child that is the
/// only live one of its deployment with that ordinal; any other node keeps its name.
fn node_names(state: &WorldState) -> std::collections::BTreeMap<String, String> {
    use sei_operator_core::objects::meta::{LABEL_DEPLOYMENT, LABEL_ORDINAL};
    let mut by_ordinal: std::collections::BTreeMap<(String, String, String), Vec<String>> = Default::default();
    for (key, value) in state.api.store.all_of_kind("SeiNode") {
        let Some(node) = decode::<SeiNode>(state, key, value) else { continue };
        let Some(labels) = &node.metadata.labels else { continue };
        if let (Some(deployment), Some(ordinal)) = (labels.get(LABEL_DEPLOYMENT), labels.get(LABEL_ORDINAL)) {
            let slot = (key.namespace.clone(), deployment.clone(), ordinal.clone());
            by_ordinal.entry(slot).or_default().push(key.name.clone());
        }
    }
    by_ordinal
        .into_iter()
        .filter(|(_, names)| names.len() == 1)
        .flat_map(|((_, deployment, ordinal), names)| {
            names.into_iter().map(move |name| (name, format!("{deployment}-#{ordinal}")))
        })
        .collect()
}

/// The name an object shows: a renamed node's, or that of an object named after one (`<node>-bootstrap`).
fn display_name(names: &std::collections::BTreeMap<String, String>, name: &str) -> String {
    if let Some(renamed) = names.get(name) {
        return renamed.clone();
    }
    // The longest node name the object's name extends with a dash.
    names
        .iter()
        .filter(|(node, _)| name.strip_prefix(node.as_str()).is_some_and(|rest| rest.starts_with('-')))
        .max_by_key(|(node, _)| node.len())
        .map_or_else(|| name.to_owned(), |(node, renamed)| format!("{renamed}{}", &name[node.len()..]))
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

/// `value`, stored under `key`, as a `K` (`None` if it is not one), through the world's decoded objects: an object
/// at a version some reader already decoded is not decoded again.
fn decode<K: DeserializeOwned + Send + Sync + 'static>(
    state: &WorldState,
    key: &ObjectRef,
    value: &Value,
) -> Option<Arc<K>> {
    state.api.store.decoded().decode(key, value).ok()
}
