//! Kubernetes object plumbing, written once and shared by the operator and the simulator: the labels the
//! operator sets, controller owner references, label selectors, and conditions with `metav1.Condition`
//! semantics.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Resource;

use crate::api::{Condition, Time};
use crate::clock::Timestamp;

/// On every child SeiNode: the owning deployment's name.
pub const LABEL_DEPLOYMENT: &str = "sei.io/nodedeployment";
/// On every child SeiNode: its ordinal within its set.
pub const LABEL_ORDINAL: &str = "sei.io/nodedeployment-ordinal";
/// On every child SeiNode (and its pod), and in the deployment Service's selector: the revision of the node set
/// it belongs to — the template hash the set was created at. InPlace rollouts change a set's image, not its
/// revision; BlueGreen and HardFork create a new set with a new revision.
pub const LABEL_REVISION: &str = "sei.io/revision";
/// On a node's StatefulSet, pod, Service and Job: the SeiNode's name.
pub const LABEL_NODE: &str = "sei.io/node";
/// On a node's data volume, set by the bootstrap teardown before it deletes anything: the height the volume was
/// bootstrapped to. Durable proof the bootstrap finished, where a missing Job proves nothing (a lagging cache
/// may not show it yet).
pub const ANNOTATION_BOOTSTRAPPED_TO: &str = "sei.io/bootstrapped-to";
/// Annotation on a node's pod template: a digest of the pod settings its SeiNode's spec gives (resources,
/// scheduling, identity, pull secrets, security contexts). A change of them changes the template, so the
/// StatefulSet replaces the pod; the operator's own defaults are not in it, and reach a pod when it is next
/// replaced for another reason.
pub const ANNOTATION_POD_SETTINGS: &str = "sei.io/pod-settings";

/// A controller owner reference to `owner`; `None` when it has no uid yet (it was never stored).
pub fn controller_reference<K: Resource<DynamicType = ()>>(owner: &K) -> Option<OwnerReference> {
    let meta = owner.meta();
    Some(OwnerReference {
        api_version: K::api_version(&()).into_owned(),
        kind: K::kind(&()).into_owned(),
        name: meta.name.clone()?,
        uid: meta.uid.clone()?,
        controller: Some(true),
        block_owner_deletion: Some(true),
    })
}

/// The owner reference marked `controller`, if any.
pub fn controller_of(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references.as_deref()?.iter().find(|r| r.controller == Some(true))
}

/// Whether the object's controller is the object with `owner_uid`.
pub fn is_controlled_by(meta: &ObjectMeta, owner_uid: &str) -> bool {
    controller_of(meta).is_some_and(|r| r.uid == owner_uid)
}

/// Whether `labels` carry every pair of an equality-based selector (an empty selector matches everything).
pub fn matches_selector(labels: Option<&BTreeMap<String, String>>, selector: &BTreeMap<String, String>) -> bool {
    selector.iter().all(|(key, value)| labels.and_then(|l| l.get(key)) == Some(value))
}

/// The condition of `type_`, if present.
pub fn find_condition<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Whether the condition of `type_` is present with status `"True"`.
pub fn is_condition_true(conditions: &[Condition], type_: &str) -> bool {
    find_condition(conditions, type_).is_some_and(|c| c.status == "True")
}

/// The desired state of one condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConditionUpdate<'a> {
    pub type_: &'a str,
    pub status: bool,
    pub reason: &'a str,
    pub message: String,
    pub observed_generation: Option<i64>,
}

/// Sets a condition as Kubernetes' `meta.SetStatusCondition` does: `lastTransitionTime` moves only when the
/// status changes; reason, message and observedGeneration are always updated. Conditions stay sorted by type,
/// so the same state always serializes to the same bytes.
pub fn set_condition(conditions: &mut Vec<Condition>, update: ConditionUpdate<'_>, now: Timestamp) {
    let status = if update.status { "True" } else { "False" }.to_owned();
    match conditions.iter_mut().find(|c| c.type_ == update.type_) {
        Some(existing) => {
            if existing.status != status {
                existing.status = status;
                existing.last_transition_time = Time(now);
            }
            existing.reason = update.reason.to_owned();
            existing.message = update.message;
            existing.observed_generation = update.observed_generation;
        }
        None => {
            conditions.push(Condition {
                type_: update.type_.to_owned(),
                status,
                reason: update.reason.to_owned(),
                message: update.message,
                observed_generation: update.observed_generation,
                last_transition_time: Time(now),
            });
            conditions.sort_by(|a, b| a.type_.cmp(&b.type_));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(seconds).expect("in range")
    }

    fn update(status: bool, reason: &str) -> ConditionUpdate<'_> {
        ConditionUpdate {
            type_: "RolloutInProgress",
            status,
            reason,
            message: reason.to_owned(),
            observed_generation: Some(1),
        }
    }

    #[test]
    fn transition_time_moves_only_when_status_changes() {
        let mut conditions = Vec::new();
        set_condition(&mut conditions, update(true, "TemplateChanged"), at(10));
        set_condition(&mut conditions, update(true, "Stalled"), at(20));
        assert_eq!(conditions[0].last_transition_time, Time(at(10)));
        assert_eq!(conditions[0].reason, "Stalled");
        set_condition(&mut conditions, update(false, "RolloutComplete"), at(30));
        assert_eq!(conditions[0].last_transition_time, Time(at(30)));
        assert_eq!(conditions[0].status, "False");
        assert_eq!(conditions.len(), 1);
    }

    #[test]
    fn conditions_stay_sorted_by_type() {
        let mut conditions = Vec::new();
        for type_ in ["RolloutInProgress", "NodesReady", "PlanInProgress"] {
            set_condition(&mut conditions, ConditionUpdate { type_, ..update(true, "x") }, at(0));
        }
        let types: Vec<&str> = conditions.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(types, ["NodesReady", "PlanInProgress", "RolloutInProgress"]);
    }

    #[test]
    fn selectors_match_on_every_pair() {
        let labels: BTreeMap<String, String> =
            [("a", "1"), ("b", "2")].into_iter().map(|(k, v)| (k.into(), v.into())).collect();
        let selector = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect()
        };
        assert!(matches_selector(Some(&labels), &selector(&[("a", "1")])));
        assert!(matches_selector(Some(&labels), &selector(&[])));
        assert!(!matches_selector(Some(&labels), &selector(&[("a", "2")])));
        assert!(!matches_selector(None, &selector(&[("a", "1")])));
    }
}
