//! What wakes each controller: for a watched object, the fingerprint of the fields that controller's rules read.
//! A watch event whose object has the same fingerprint as the last one seen for it wakes nothing (kube-runtime's
//! `predicates` model: `Fn(&K) -> Option<u64>`, `None` meaning "always wake"). Production filters its
//! kube-runtime trigger streams with these functions and [`TriggerFilter`], and the simulator's operator host
//! filters its simulated watch events with the very same ones, so both wake on the same changes.
//!
//! Why: without them every status write of a node — a new `latestHeight` at each observation — woke the node's
//! own reconcile at once (defeating [`super::OBSERVE_INTERVAL`]) and the deployment controller, which lists
//! every child. Periodic observation does not depend on watch events: a Running node requeues itself.
//! Likewise a deployment's status write that only reports its children (ready counts, summaries, conditions)
//! woke the deployment again, for a reconcile that lists every child and finds nothing to do.

use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hash, Hasher};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::api::{SeiNode, SeiNodeDeployment, SeiNodeDeploymentStatus};

/// A fingerprint's hasher: foldhash with a fixed seed (a fingerprint is only compared with the last one taken of
/// the same object in the same process; std's SipHash took 2.4 times as long over these short fields).
fn fingerprint_hasher() -> impl Hasher {
    foldhash::quality::FixedState::default().build_hasher()
}

/// The metadata a controller acts on for any object it reconciles or owns: spec changes (`generation`),
/// labels, annotations, the start of a deletion, finalizers and owners. `resourceVersion` and `managedFields`
/// are left out: they change with every write, status writes included.
fn hash_metadata(meta: &ObjectMeta, hasher: &mut impl Hasher) {
    meta.generation.hash(hasher);
    meta.labels.hash(hasher);
    meta.annotations.hash(hasher);
    meta.deletion_timestamp.as_ref().map(|t| t.0.to_string()).hash(hasher);
    meta.finalizers.hash(hasher);
    let owners: Vec<(&str, Option<bool>)> =
        meta.owner_references.iter().flatten().map(|o| (o.uid.as_str(), o.controller)).collect();
    owners.hash(hasher);
}

/// What wakes the SeiNode controller for a SeiNode: its metadata (above) and its phase — never what the
/// controller itself records from observing the pod (height, catching up, sidecar readiness, current image),
/// so its own periodic status writes do not reconcile it again at once. The phase is in because another
/// writer resetting it (a retry of a Failed node) must wake the controller; its own phase changes are rare.
pub fn node_wakes_itself(node: &SeiNode) -> Option<u64> {
    let mut hasher = fingerprint_hasher();
    hash_metadata(&node.metadata, &mut hasher);
    node.status.as_ref().and_then(|s| s.phase).map(|p| p as u8).hash(&mut hasher);
    Some(hasher.finish())
}

/// What wakes the SeiNodeDeployment controller for a SeiNodeDeployment: its metadata (above) — spec changes
/// through `generation`, labels, annotations, deletion, finalizers — and the status fields its reconcile acts on
/// when it reads them back (plan, active set, incumbents, rollout, owed events, hashes): it decides, stores the
/// decision, and acts on the stored decision at the next reconcile — the one the write's watch event wakes, whose
/// read of the cache holds the write. Left out is what the status only reports of the children (phase, replica
/// counts, the node summaries, conditions): rewritten whenever a child changes, acted on by nothing, and a
/// reconcile woken by it lists every child to find nothing to do.
pub fn deployment_wakes_itself(deployment: &SeiNodeDeployment) -> Option<u64> {
    let mut hasher = fingerprint_hasher();
    hash_metadata(&deployment.metadata, &mut hasher);
    if let Some(status) = &deployment.status {
        let decisions = SeiNodeDeploymentStatus {
            phase: None,
            replicas: 0,
            ready_replicas: 0,
            nodes: Vec::new(),
            conditions: Vec::new(),
            ..status.clone()
        };
        // Serialized to hash: the status types derive no Hash. serde_json's maps are ordered, so equal
        // statuses give equal text. One that fails to serialize always wakes.
        match serde_json::to_string(&decisions) {
            Ok(text) => text.hash(&mut hasher),
            Err(_) => return None,
        }
    }
    Some(hasher.finish())
}

/// What wakes the SeiNodeDeployment controller for a child SeiNode: what its rules and plan tasks read of a
/// child (`rollout::rules`, `tasks::deployment`, `rollout::phase`) — metadata (owners, revision label,
/// deletion), spec (through `generation`), phase, current image, sidecar readiness, catching up — and not
/// `latestHeight`, which changes with every block and is read only when a HardFork is planned (its refusal of
/// a fork behind the chain), a reconcile the deployment's own spec change wakes.
pub fn deployment_wakes_for_child(node: &SeiNode) -> Option<u64> {
    let mut hasher = fingerprint_hasher();
    hash_metadata(&node.metadata, &mut hasher);
    if let Some(status) = &node.status {
        status.phase.map(|p| p as u8).hash(&mut hasher);
        status.current_image.hash(&mut hasher);
        status.sidecar_ready.hash(&mut hasher);
        status.catching_up.hash(&mut hasher);
        // Read when the child has Failed (why its entrant failed); it changes with the phase, but a retried
        // plan may fail again differently.
        status.plan.as_ref().and_then(|p| p.failed_task_detail.as_ref()).map(|f| &f.error).hash(&mut hasher);
    }
    Some(hasher.finish())
}

/// The last fingerprint seen per object, as kube-runtime's `predicate_filter` keeps it: an object's first
/// event always passes, a later one only if its fingerprint changed, a deletion always (and forgets the object).
#[derive(Debug)]
pub struct TriggerFilter<K: Ord> {
    seen: BTreeMap<K, u64>,
}

impl<K: Ord> Default for TriggerFilter<K> {
    fn default() -> Self {
        TriggerFilter { seen: BTreeMap::new() }
    }
}

impl<K: Ord> TriggerFilter<K> {
    /// Whether an event on `key` with this fingerprint wakes the controller; remembers the fingerprint.
    pub fn admit(&mut self, key: K, fingerprint: Option<u64>) -> bool {
        let Some(fingerprint) = fingerprint else { return true };
        self.seen.insert(key, fingerprint) != Some(fingerprint)
    }

    /// The object is gone: its deletion wakes the controller, and a new object of that name starts afresh.
    pub fn forget(&mut self, key: &K) {
        self.seen.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::SeiNodePhase;

    fn node() -> SeiNode {
        let mut node: SeiNode = serde_json::from_value(serde_json::json!({
            "apiVersion": "sei.io/v1alpha1",
            "kind": "SeiNode",
            "metadata": {"name": "rpc-0", "namespace": "sei", "generation": 1, "labels": {"sei.io/revision": "a"}},
            "spec": {"chainId": "pacific-1", "image": "sei:v1", "fullNode": {}},
        }))
        .expect("a valid SeiNode");
        let status = node.status.get_or_insert_default();
        status.phase = Some(SeiNodePhase::Running);
        status.current_image = Some("sei:v1".into());
        status.sidecar_ready = Some(true);
        status.catching_up = Some(false);
        status.latest_height = Some(1000);
        node
    }

    #[test]
    fn a_height_only_change_wakes_neither_controller() {
        let before = node();
        let mut after = before.clone();
        after.metadata.resource_version = Some("99".into());
        after.status.as_mut().expect("status").latest_height = Some(1150);
        assert_eq!(node_wakes_itself(&before), node_wakes_itself(&after));
        assert_eq!(deployment_wakes_for_child(&before), deployment_wakes_for_child(&after));
    }

    #[test]
    fn observations_wake_the_deployment_but_not_the_node() {
        let before = node();
        let changes: [fn(&mut SeiNode); 3] = [
            |n| n.status.as_mut().expect("status").current_image = Some("sei:v2".into()),
            |n| n.status.as_mut().expect("status").sidecar_ready = Some(false),
            |n| n.status.as_mut().expect("status").catching_up = Some(true),
        ];
        for change in changes {
            let mut after = before.clone();
            change(&mut after);
            assert_eq!(node_wakes_itself(&before), node_wakes_itself(&after));
            assert_ne!(deployment_wakes_for_child(&before), deployment_wakes_for_child(&after));
        }
    }

    #[test]
    fn spec_metadata_and_phase_changes_wake_both() {
        let before = node();
        let changes: [fn(&mut SeiNode); 6] = [
            |n| n.metadata.generation = Some(2),
            |n| n.metadata.labels = Some([("sei.io/revision".to_owned(), "b".to_owned())].into()),
            |n| n.metadata.annotations = Some([("a".to_owned(), "b".to_owned())].into()),
            |n| n.metadata.deletion_timestamp = Some(crate::api::Time(crate::clock::Timestamp::UNIX_EPOCH)),
            |n| n.metadata.finalizers = Some(vec!["x".into()]),
            |n| n.status.as_mut().expect("status").phase = Some(SeiNodePhase::Failed),
        ];
        for change in changes {
            let mut after = before.clone();
            change(&mut after);
            assert_ne!(node_wakes_itself(&before), node_wakes_itself(&after));
            assert_ne!(deployment_wakes_for_child(&before), deployment_wakes_for_child(&after));
        }
    }

    #[test]
    fn a_deployment_wakes_for_its_spec_metadata_and_decisions_not_for_what_its_status_reports() {
        let before: SeiNodeDeployment = serde_json::from_value(serde_json::json!({
            "apiVersion": "sei.io/v1alpha1",
            "kind": "SeiNodeDeployment",
            "metadata": {"name": "rpc", "namespace": "sei", "generation": 1},
            "spec": {"replicas": 2, "template": {"spec": {"chainId": "pacific-1", "image": "sei:v1", "fullNode": {}}}},
        }))
        .expect("a valid SeiNodeDeployment");
        let before = SeiNodeDeployment { status: Some(SeiNodeDeploymentStatus::default()), ..before };
        let mut reported = before.clone();
        reported.metadata.resource_version = Some("42".into());
        let status = reported.status.get_or_insert_default();
        (status.replicas, status.ready_replicas) = (2, 1);
        status.phase = Some(crate::api::DeploymentPhase::Ready);
        assert_eq!(deployment_wakes_itself(&before), deployment_wakes_itself(&reported));
        let changes: [fn(&mut SeiNodeDeployment); 6] = [
            |d| d.status.get_or_insert_default().template_hash = Some("abc".into()),
            |d| d.status.get_or_insert_default().incumbent_nodes = vec!["rpc-0".into()],
            |d| d.metadata.generation = Some(2),
            |d| d.metadata.annotations = Some([("a".to_owned(), "b".to_owned())].into()),
            |d| d.metadata.deletion_timestamp = Some(crate::api::Time(crate::clock::Timestamp::UNIX_EPOCH)),
            |d| d.metadata.finalizers = Some(vec!["x".into()]),
        ];
        for change in changes {
            let mut after = before.clone();
            change(&mut after);
            assert_ne!(deployment_wakes_itself(&before), deployment_wakes_itself(&after));
        }
    }

    #[test]
    fn the_filter_passes_first_sightings_changes_and_deletions_only() {
        let mut filter = TriggerFilter::default();
        assert!(filter.admit("a", Some(1)), "first sighting");
        assert!(!filter.admit("a", Some(1)), "unchanged");
        assert!(filter.admit("a", Some(2)), "changed");
        assert!(filter.admit("b", Some(2)), "another object");
        assert!(filter.admit("a", None), "no fingerprint: always");
        filter.forget(&"a");
        assert!(filter.admit("a", Some(2)), "a new object of a deleted one's name");
    }
}
