//! A SeiNodeDeployment's child SeiNodes as values: how a child is made, and which template fields reach an
//! existing child without a rollout (labels, annotations, overrides, peers, pod labels). The rollout fields
//! (image, entrypoint, chain id, sidecar image) of an existing child change only through a rollout plan.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::api::template_hash;
use crate::api::{
    PlanPhase, SeiNode, SeiNodeDeployment, SeiNodeDeploymentStatus, SeiNodeSpec, SeiNodeTemplate, SidecarSpec,
    TaskStatus,
};
use crate::objects::meta::{LABEL_DEPLOYMENT, LABEL_ORDINAL, LABEL_REVISION, controller_reference};
use crate::plan::TaskType;
use crate::plan::params::{CreateEntrantNodes, RolloutFields, UpdateNodeSpecs, UpdateNodeSpecsAtHeight};

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

/// The spec the active set runs: that of an active node that runs the recorded template hash; else (no such
/// node is left, e.g. every one was deleted) the template with what the status recorded the set runs — its
/// rollout fields and fork snapshot — or the template alone, for a status stored before that was recorded.
/// A set that went through an upgrade in place (a gated InPlace rollout) records the bootstrap a node made for it
/// needs, which its nodes' own specs do not carry: it is added to the node's spec.
pub fn active_spec(
    deployment: &SeiNodeDeployment,
    status: &SeiNodeDeploymentStatus,
    nodes: &[Arc<SeiNode>],
) -> SeiNodeSpec {
    let active_hash = status.template_hash.as_deref();
    let template = &deployment.spec.template.spec;
    let running = nodes
        .iter()
        .filter(|n| n.metadata.name.as_ref().is_some_and(|name| status.incumbent_nodes.contains(name)))
        .find(|n| Some(template_hash(&n.spec).as_str()) == active_hash)
        .map(|n| n.spec.clone());
    match (running, status.active_set.as_ref()) {
        (Some(spec), Some(set)) if spec.bootstrap().is_none() => set.with_fork_bootstrap(spec),
        (Some(spec), _) => spec,
        (None, Some(set)) => set.spec_from(template),
        (None, None) => template.clone(),
    }
}

/// `active` on the `target` fields, bootstrapped from its S3 snapshot by `previous`'s image to the block before
/// `upgrade_height`; `None` when its mode restores no S3 snapshot.
fn bootstrapped_to_the_gate(
    active: &SeiNodeSpec,
    target: &RolloutFields,
    previous: &RolloutFields,
    upgrade_height: i64,
) -> Option<SeiNodeSpec> {
    let mut spec = active.clone();
    target.apply_to(&mut spec);
    let snapshot = spec.snapshot_mut()?.as_mut().filter(|snapshot| snapshot.s3.is_some())?;
    snapshot.bootstrap_image = Some(previous.image.clone());
    snapshot.s3 = Some(crate::api::S3Snapshot { target_height: upgrade_height - 1 });
    snapshot.state_sync = None;
    Some(spec)
}

/// The children an Active rollout plan needs that do not exist — a user deleted one mid-rollout (a Failed node,
/// to retry it, or any other) — each made with the spec the plan gives it, so the plan can finish:
///
/// - InPlace: a node the plan updates gets the active set's spec with the plan's rollout fields, as
///   `update-node-specs` would have left it — under a height gate, the active set's spec alone (its gate
///   switches it at the upgrade);
/// - BlueGreen / HardFork: an entrant, once `create-entrant-nodes` has made the set, gets that task's spec
///   (for HardFork, with its bootstrap to the block before the upgrade); an incumbent, until `switch-traffic`
///   has moved traffic off the incumbents, gets the active set's spec — after it, the plan is deleting them.
///
/// A rollout the template has moved off (its supersession may take more than one reconcile, or be refused) gets
/// back only what it had before it started: an incumbent, or an InPlace node on the active spec — never an
/// entrant, nor the superseded target's fields.
///
/// A node being deleted still holds its name; it is made again once it is gone. Pure: the caller creates.
pub fn missing_plan_children(
    deployment: &SeiNodeDeployment,
    status: &SeiNodeDeploymentStatus,
    nodes: &[Arc<SeiNode>],
) -> Vec<SeiNode> {
    let Some(plan) = status.plan.as_ref().filter(|p| p.phase == PlanPhase::Active) else { return Vec::new() };
    let Some(rollout) = status.rollout.as_ref() else { return Vec::new() };
    let superseded = crate::rollout::is_superseded(rollout, deployment);
    let exists = |name: &str| nodes.iter().any(|n| n.metadata.name.as_deref() == Some(name));
    let template = &deployment.spec.template;
    let metadata = template.metadata.clone().unwrap_or_default();
    let labels = (&metadata.labels, &metadata.annotations);
    let active = scale_up_spec(&template.spec, &active_spec(deployment, status, nodes));
    let active_revision = status.active_set.as_ref().map(|s| s.revision.clone());
    let ordinal_of = |name: &str, fallback: usize| {
        let index = status.incumbent_nodes.iter().position(|n| n == name).unwrap_or(fallback);
        u32::try_from(index).unwrap_or(u32::MAX)
    };
    let task_params = |task_type: TaskType| {
        plan.tasks.iter().find(|t| t.type_ == task_type.as_str()).map(|t| (t.status, t.params.clone()))
    };

    let mut missing = Vec::new();
    if let Some((_, params)) = task_params(TaskType::UpdateNodeSpecs)
        && let Ok(params) = serde_json::from_value::<UpdateNodeSpecs>(params)
        && let Some(revision) = &active_revision
    {
        for (index, name) in params.nodes.iter().enumerate().filter(|(_, name)| !exists(name)) {
            let mut spec = active.clone();
            if !superseded {
                params.fields.apply_to(&mut spec);
            }
            missing.push(child_node(deployment, name, ordinal_of(name, index), revision, labels, spec));
        }
    }
    // Gated: a node made again restores a snapshot from below the gate. While the gate's task runs, it starts on
    // the active set's binary and the task switches it at the upgrade, as any other. Once the task is done (every
    // node was at the gate: the chain is there), nothing would switch it: with an S3 snapshot it bootstraps as a
    // HardFork entrant does — the binary before the upgrade, to the block before it — and runs the target from
    // there.
    if let Some((task_status, params)) = task_params(TaskType::UpdateNodeSpecsAtHeight)
        && let Ok(params) = serde_json::from_value::<UpdateNodeSpecsAtHeight>(params)
        && let Some(revision) = &active_revision
    {
        let spec = match (&params.previous, superseded || task_status != TaskStatus::Complete) {
            (Some(previous), false) => {
                bootstrapped_to_the_gate(&active, &params.fields, previous, params.upgrade_height)
                    .unwrap_or_else(|| active.clone())
            }
            _ => active.clone(),
        };
        for (index, name) in params.nodes.iter().enumerate().filter(|(_, name)| !exists(name)) {
            missing.push(child_node(deployment, name, ordinal_of(name, index), revision, labels, spec.clone()));
        }
    }
    if let Some((TaskStatus::Complete, params)) = task_params(TaskType::CreateEntrantNodes)
        && !superseded
        && let Ok(params) = serde_json::from_value::<CreateEntrantNodes>(params)
    {
        for entrant in params.nodes.iter().filter(|n| !exists(&n.name)) {
            let labels = (&params.labels, &params.annotations);
            let spec = params.spec.clone();
            missing.push(child_node(deployment, &entrant.name, entrant.ordinal, &params.revision, labels, spec));
        }
    }
    let switched = task_params(TaskType::SwitchTraffic).is_some_and(|(status, _)| status == TaskStatus::Complete);
    if rollout.entrant_revision.is_some()
        && !switched
        && let Some(revision) = &rollout.incumbent_revision
    {
        for (index, name) in rollout.incumbent_nodes.iter().enumerate().filter(|(_, name)| !exists(name)) {
            missing.push(child_node(deployment, name, ordinal_of(name, index), revision, labels, active.clone()));
        }
    }
    missing
}

/// `child` with the template's non-rollout fields: labels and annotations (the operator's own labels kept),
/// overrides, peers, pod labels and the pod settings (resources, storage, scheduling, identity, pull secrets,
/// security contexts). Everything else in metadata and spec, the rollout fields included, stays as it is; the
/// status is left out (an update ignores it).
pub fn with_template_fields(template: &SeiNodeTemplate, child: &SeiNode) -> SeiNode {
    let mut updated = with_quiet_template_fields(template, child);
    updated.spec.overrides.clone_from(&template.spec.overrides);
    updated.spec.peers.clone_from(&template.spec.peers);
    updated.spec.pod_labels.clone_from(&template.spec.pod_labels);
    updated.spec.resources.clone_from(&template.spec.resources);
    updated.spec.scheduling.clone_from(&template.spec.scheduling);
    updated.spec.service_account_name.clone_from(&template.spec.service_account_name);
    updated.spec.image_pull_secrets.clone_from(&template.spec.image_pull_secrets);
    updated.spec.pod_security_context.clone_from(&template.spec.pod_security_context);
    updated.spec.container_security_context.clone_from(&template.spec.container_security_context);
    // The sidecar's port and resources; its image is a rollout field.
    let wanted = template.spec.sidecar.clone().unwrap_or_default();
    let image = updated.spec.sidecar.as_ref().and_then(|s| s.image.clone());
    let sidecar = SidecarSpec { image, port: wanted.port, resources: wanted.resources };
    updated.spec.sidecar = (sidecar != SidecarSpec::default()).then_some(sidecar);
    updated
}

/// `child` with the template's non-rollout fields that restart nothing a node runs: the SeiNode's labels and
/// annotations, and storage (a claim grows in place; a class applies to claims made after it). The others of
/// [`with_template_fields`] replace the pod (pod settings, pod labels) or restart seid (overrides, peers).
pub fn with_quiet_template_fields(template: &SeiNodeTemplate, child: &SeiNode) -> SeiNode {
    // Not the status: an update of a resource with a status subresource ignores it.
    let mut updated = SeiNode { metadata: child.metadata.clone(), spec: child.spec.clone(), status: None };
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
    updated.spec.storage.clone_from(&template.spec.storage);
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
    fn a_set_with_no_node_left_is_made_again_as_the_status_recorded_it_not_from_the_template() {
        // A forked set on v6.4.1; the template still names the pre-fork snapshot, and now a failed target.
        let made = spec(json!({
            "chainId": "pacific-1", "image": "sei:v6.4.1",
            "fullNode": {"snapshot": {"s3": {"targetHeight": 4999}, "bootstrapImage": "sei:v6.3.0"}}
        }));
        let mut d = deployment("HardFork", "sei:v6.5.0-broken");
        d.spec.template.spec = spec(json!({
            "chainId": "pacific-1", "image": "sei:v6.5.0-broken", "peers": {"static": ["a@b:1"]},
            "fullNode": {"snapshot": {"s3": {"targetHeight": 4000}}}
        }));
        let status = SeiNodeDeploymentStatus {
            template_hash: Some(template_hash(&made)),
            active_set: Some(made_set(&made)),
            incumbent_nodes: vec!["rpc-g2-0".into()],
            ..Default::default()
        };
        let again = active_spec(&d, &status, &[]);
        assert_eq!(again.image, "sei:v6.4.1", "the set's image, not the failed target's");
        assert_eq!(again.bootstrap(), Some(("sei:v6.3.0", 4999)), "bootstrapped as the set was");
        assert_eq!(again.peers, d.spec.template.spec.peers, "the template's other fields");
        // A status stored before the set was recorded: the template stands in, as it did.
        let mut old = status.clone();
        old.active_set = Some(crate::api::ActiveSet { fields: None, fork_bootstrap: None, ..made_set(&made) });
        assert_eq!(active_spec(&d, &old, &[]), d.spec.template.spec);
    }

    #[test]
    fn template_fields_come_over_the_childs_metadata_and_spec_and_leave_its_status_to_the_server() {
        let mut d = deployment("InPlace", "sei:v2");
        d.spec.template.spec.peers = spec(json!({
            "chainId": "pacific-1", "image": "x", "peers": {"static": ["a@b:1"]}, "fullNode": {}
        }))
        .peers;
        let child = running("rpc-0", "r1", "sei:v1");
        let quiet = with_quiet_template_fields(&d.spec.template, &child);
        let all = with_template_fields(&d.spec.template, &child);
        for updated in [&quiet, &all] {
            assert_eq!(updated.status, None, "an update ignores the status; none is copied");
            assert_eq!(updated.spec.image, "sei:v1", "a rollout field stays");
            assert_eq!(updated.metadata.labels.as_ref().and_then(|l| l.get("team")).map(String::as_str), Some("rpc"));
            assert_eq!(
                updated.metadata.labels.as_ref().and_then(|l| l.get(LABEL_REVISION)).map(String::as_str),
                Some("r1")
            );
        }
        assert_eq!(quiet.spec.peers, child.spec.peers, "peers restart seid: not a quiet field");
        assert_eq!(all.spec.peers, d.spec.template.spec.peers);
    }

    fn made_set(spec: &SeiNodeSpec) -> crate::api::ActiveSet {
        crate::api::ActiveSet::running("r2".into(), 2, spec)
    }

    fn deployment(strategy: &str, image: &str) -> SeiNodeDeployment {
        serde_json::from_value(json!({
            "apiVersion": "sei.io/v1alpha1", "kind": "SeiNodeDeployment",
            "metadata": {"name": "rpc", "namespace": "sei", "uid": "uid-rpc", "generation": 1},
            "spec": {"replicas": 2, "updateStrategy": {"type": strategy}, "template": {
                "metadata": {"labels": {"team": "rpc"}},
                "spec": {"chainId": "pacific-1", "image": image, "fullNode": {}}
            }}
        }))
        .expect("a deployment")
    }

    fn running(name: &str, revision: &str, image: &str) -> SeiNode {
        serde_json::from_value(json!({
            "apiVersion": "sei.io/v1alpha1", "kind": "SeiNode",
            "metadata": {"name": name, "namespace": "sei", "labels": {LABEL_REVISION: revision}},
            "spec": {"chainId": "pacific-1", "image": image, "fullNode": {}},
            "status": {"phase": "Running", "currentImage": image, "sidecarReady": true, "catchingUp": false}
        }))
        .expect("a node")
    }

    /// A deployment of two nodes on v1, edited to v2: its status with the rollout and its plan, and the nodes.
    fn rolling(strategy: &str) -> (SeiNodeDeployment, SeiNodeDeploymentStatus, Vec<Arc<SeiNode>>, String) {
        use crate::rollout::{Observed, RolloutConfig, evaluate};
        let mut d = deployment(strategy, "sei:v1");
        let revision = template_hash(&d.spec.template.spec);
        let nodes: Vec<Arc<SeiNode>> =
            (0..2).map(|i| Arc::new(running(&format!("rpc-{i}"), &revision, "sei:v1"))).collect();
        let now = crate::clock::Timestamp::from_second(1_800_000_000).expect("in range");
        let observed = Observed { nodes: &nodes, service_revision: Some(&revision), now };
        d.status = Some(evaluate(&d, &observed, &RolloutConfig::default()).status);
        d.spec.template.spec.image = "sei:v2".into();
        d.metadata.generation = Some(2);
        let status = evaluate(&d, &observed, &RolloutConfig::default()).status;
        (d, status, nodes, revision)
    }

    fn names(children: &[SeiNode]) -> Vec<&str> {
        children.iter().filter_map(|c| c.metadata.name.as_deref()).collect()
    }

    #[test]
    fn a_child_deleted_mid_in_place_rollout_comes_back_with_the_plans_spec() {
        let (d, status, nodes, revision) = rolling("InPlace");
        assert!(missing_plan_children(&d, &status, &nodes).is_empty(), "nothing is missing");
        let missing = missing_plan_children(&d, &status, &nodes[..1]);
        assert_eq!(names(&missing), ["rpc-1"]);
        let child = &missing[0];
        assert_eq!(child.spec.image, "sei:v2", "the image update-node-specs writes");
        let labels = child.metadata.labels.clone().unwrap_or_default();
        assert_eq!(labels.get(LABEL_REVISION), Some(&revision), "still of the active set");
        assert_eq!(labels.get(LABEL_ORDINAL).map(String::as_str), Some("1"));
        assert_eq!(labels.get("team").map(String::as_str), Some("rpc"));
        // No Active plan, nothing to do here: the active set's own reconcile makes missing children.
        let mut done = status.clone();
        done.plan.iter_mut().for_each(|p| p.phase = PlanPhase::Complete);
        assert!(missing_plan_children(&d, &done, &nodes[..1]).is_empty());
    }

    #[test]
    fn blue_green_entrants_come_back_once_created_and_incumbents_until_the_switch() {
        let (d, mut status, nodes, revision) = rolling("BlueGreen");
        // Before create-entrant-nodes ran, that task makes the entrants; a missing incumbent comes back.
        assert_eq!(names(&missing_plan_children(&d, &status, &nodes[1..])), ["rpc-0"]);
        let plan = status.plan.as_mut().expect("a plan");
        plan.tasks[0].status = TaskStatus::Complete;
        let entrant_revision = status.rollout.as_ref().and_then(|r| r.entrant_revision.clone()).expect("revision");
        let mut all = nodes.clone();
        all.push(Arc::new(running("rpc-g2-0", &entrant_revision, "sei:v2")));
        let missing = missing_plan_children(&d, &status, &all);
        assert_eq!(names(&missing), ["rpc-g2-1"]);
        assert_eq!(missing[0].spec.image, "sei:v2");
        assert_eq!(missing[0].metadata.labels.as_ref().and_then(|l| l.get(LABEL_REVISION)), Some(&entrant_revision));
        let incumbent = missing_plan_children(&d, &status, &all[1..]);
        assert_eq!(names(&incumbent), ["rpc-g2-1", "rpc-0"]);
        assert_eq!(incumbent[1].spec.image, "sei:v1", "an incumbent keeps the active set's image");
        assert_eq!(incumbent[1].metadata.labels.as_ref().and_then(|l| l.get(LABEL_REVISION)), Some(&revision));
        // Once traffic moved, the plan is deleting the incumbents: they are not made again.
        let plan = status.plan.as_mut().expect("a plan");
        plan.tasks.iter_mut().filter(|t| t.type_ != "teardown-nodes").for_each(|t| t.status = TaskStatus::Complete);
        assert_eq!(names(&missing_plan_children(&d, &status, &all[1..])), ["rpc-g2-1"]);
    }

    #[test]
    fn a_superseded_rollout_gets_back_its_incumbents_but_never_an_entrant_nor_its_target() {
        let (mut d, mut status, nodes, revision) = rolling("BlueGreen");
        let plan = status.plan.as_mut().expect("a plan");
        plan.tasks[0].status = TaskStatus::Complete;
        let entrant_revision = status.rollout.as_ref().and_then(|r| r.entrant_revision.clone()).expect("revision");
        let mut all = nodes.clone();
        all.push(Arc::new(running("rpc-g2-0", &entrant_revision, "sei:v2")));
        // The template moves on to v3 while the v2 plan is still Active.
        d.spec.template.spec.image = "sei:v3".into();
        let missing = missing_plan_children(&d, &status, &all[1..]);
        assert_eq!(names(&missing), ["rpc-0"], "the incumbent, not the entrant rpc-g2-1");
        assert_eq!(missing[0].spec.image, "sei:v1");
        assert_eq!(missing[0].metadata.labels.as_ref().and_then(|l| l.get(LABEL_REVISION)), Some(&revision));

        let (mut d, status, nodes, _) = rolling("InPlace");
        d.spec.template.spec.image = "sei:v3".into();
        let missing = missing_plan_children(&d, &status, &nodes[..1]);
        assert_eq!(names(&missing), ["rpc-1"]);
        assert_eq!(missing[0].spec.image, "sei:v1", "the active spec, not the superseded target v2");
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
