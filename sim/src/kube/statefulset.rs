//! The fake StatefulSet controller, following Kubernetes' `StatefulSetControl`: revisions named after a hash of
//! the pod template, `observedGeneration` written only when the controller gets to the set, pods created in
//! ordinal order, claims from `volumeClaimTemplates` created once, owned per `persistentVolumeClaimRetentionPolicy`
//! (`whenDeleted: Delete`: the set is their controller and they go with it; `Retain`: kept), and
//! rolling updates in reverse ordinal order.
//!
//! The subtle part it models: under `OrderedReady` the controller stops at the first pod that is not Running and
//! Ready, *before* the rolling-update step — so a crash-looping pod of the old revision is never replaced by a
//! template change (kubernetes/kubernetes#67250); under `Parallel` it carries on and replaces it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolumeClaimVolumeSource, Pod, Volume};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use sei_operator_core::cluster::ObjectRef;
use sei_operator_core::objects::meta::{controller_reference, is_controlled_by};
use serde_json::{Value, json};

use super::traced;
use crate::apiserver::json::Fields;
use crate::harness::state::WorldState;
use crate::kube::plane::{Revisions, UnchangedStatefulSets};

/// The label carrying a pod's revision.
pub const REVISION_LABEL: &str = "controller-revision-hash";
const ACTOR: &str = "statefulset-controller";

/// Syncs every StatefulSet, but those whose inputs did not change since a sync of theirs that wrote nothing.
pub fn sync(world: &mut WorldState) {
    let mut unchanged = std::mem::take(&mut world.plane.controllers.unchanged_statefulsets);
    unchanged.forget_changed(&world.api.store);
    let decoded = world.api.store.decoded();
    let sets: Vec<Arc<StatefulSet>> = world
        .api
        .store
        .all_of_kind("StatefulSet")
        .filter(|(key, _)| !unchanged.sets.contains(*key))
        .filter_map(|(key, value)| decoded.decode(key, value).ok())
        .collect();
    let owners: BTreeSet<&str> = sets.iter().filter_map(|set| set.metadata.uid.as_deref()).collect();
    // Pods by controller uid, read once for all sets (as the controller's pod informer would hold them).
    let mut pods_by_owner: BTreeMap<String, Vec<Arc<Pod>>> = BTreeMap::new();
    for (key, value) in world.api.store.all_of_kind("Pod") {
        let Some(owner) = value.at("/metadata/ownerReferences/0/uid").and_then(Value::as_str) else { continue };
        if !owners.contains(owner) {
            continue;
        }
        if let Ok(pod) = decoded.decode(key, value) {
            pods_by_owner.entry(owner.to_owned()).or_default().push(pod);
        }
    }
    for set in sets {
        let pods = set.metadata.uid.as_ref().and_then(|uid| pods_by_owner.remove(uid)).unwrap_or_default();
        let before = (world.api.store.version(), world.trace.lines().len());
        sync_one(world, &set, pods);
        let wrote = (world.api.store.version(), world.trace.lines().len()) != before;
        if let (false, Some(name), Some(namespace)) = (wrote, &set.metadata.name, &set.metadata.namespace) {
            unchanged.sets.insert(ObjectRef::new("StatefulSet", namespace, name));
        }
    }
    world.plane.controllers.unchanged_statefulsets = unchanged;
}

impl UnchangedStatefulSets {
    /// Forgets every set an object changed since the last look is an input of: the set itself; for a pod
    /// `<set>-<ordinal>`, the set its name names (an ordinal has no `-`, so that is the name before the last one);
    /// for a claim, every set of its namespace (claims are named `<template>-<set>-<ordinal>`, and change rarely).
    fn forget_changed(&mut self, store: &crate::apiserver::store::Store) {
        if !self.sets.is_empty() {
            for change in store.changes_since(self.scanned_to) {
                let object = &change.object;
                match object.kind.as_str() {
                    "StatefulSet" => {
                        self.sets.remove(&ObjectRef::new("StatefulSet", &object.namespace, &object.name));
                    }
                    "Pod" => {
                        let set = object.name.rsplit_once('-').map(|(set, _)| set);
                        if let Some(set) = set.filter(|set| ordinal_of(set, &object.name).is_some()) {
                            self.sets.remove(&ObjectRef::new("StatefulSet", &object.namespace, set));
                        }
                    }
                    "PersistentVolumeClaim" => {
                        self.sets.retain(|set| set.namespace != object.namespace);
                    }
                    _ => {}
                }
            }
        }
        self.scanned_to = store.log_len();
    }
}

impl Revisions {
    /// The set's update revision: remembered while its uid and generation stay, else computed and remembered.
    fn of(&mut self, set: &StatefulSet) -> String {
        let (Some(name), Some(namespace), Some(uid), Some(generation)) =
            (&set.metadata.name, &set.metadata.namespace, &set.metadata.uid, set.metadata.generation)
        else {
            return revision_of(set);
        };
        let key = ObjectRef::new("StatefulSet", namespace, name);
        if let Some((known_uid, known_generation, revision)) = self.by_set.get(&key)
            && known_uid == uid
            && *known_generation == generation
        {
            return revision.clone();
        }
        let revision = revision_of(set);
        self.by_set.insert(key, (uid.clone(), generation, revision.clone()));
        revision
    }
}

/// The revision name of a pod template: `<set>-<hash>`, as the controller names its ControllerRevisions.
pub fn revision_of(set: &StatefulSet) -> String {
    let template = serde_json::to_string(&set.spec.as_ref().map(|s| &s.template)).unwrap_or_default();
    format!("{}-{:x}", set.metadata.name.as_deref().unwrap_or_default(), fnv1a(template.as_bytes()) & 0xff_ffff_ffff)
}

/// FNV-1a, 64 bits: a stable hash (the real controller hashes the template with FNV-32a).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3))
}

fn is_running_and_ready(pod: &Pod) -> bool {
    let status = pod.status.as_ref();
    status.and_then(|s| s.phase.as_deref()) == Some("Running")
        && status
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn is_failed(pod: &Pod) -> bool {
    matches!(pod.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Failed" | "Succeeded"))
}

fn is_terminating(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

fn revision_label(pod: &Pod) -> Option<&str> {
    pod.metadata.labels.as_ref()?.get(REVISION_LABEL).map(String::as_str)
}

fn sync_one(world: &mut WorldState, set: &StatefulSet, owned: Vec<Arc<Pod>>) {
    let (Some(name), Some(namespace), Some(uid), Some(spec)) =
        (&set.metadata.name, &set.metadata.namespace, &set.metadata.uid, &set.spec)
    else {
        return;
    };
    if set.metadata.deletion_timestamp.is_some() {
        return;
    }
    let replicas = usize::try_from(spec.replicas.unwrap_or(1)).unwrap_or(0);
    let update_revision = world.plane.controllers.revisions.of(set);
    let current_revision = set
        .status
        .as_ref()
        .and_then(|s| s.current_revision.clone())
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| update_revision.clone());
    let monotonic = spec.pod_management_policy.as_deref() != Some("Parallel");
    let rolling = spec.update_strategy.as_ref().and_then(|s| s.type_.as_deref()) != Some("OnDelete");
    // Pods below the partition keep their revision (`rollingUpdate.partition`, defaulted to 0).
    let partition = spec
        .update_strategy
        .as_ref()
        .and_then(|s| s.rolling_update.as_ref())
        .and_then(|r| r.partition)
        .and_then(|p| usize::try_from(p).ok())
        .unwrap_or(0);

    for ordinal in 0..replicas {
        for claim in spec.volume_claim_templates.iter().flatten() {
            ensure_claim(world, set, claim, ordinal);
        }
    }

    let existing: BTreeMap<usize, Arc<Pod>> = owned
        .into_iter()
        .filter(|p| is_controlled_by(&p.metadata, uid))
        .filter_map(|p| Some((ordinal_of(name, p.metadata.name.as_deref()?)?, p)))
        .collect();
    let mut blocked = false;
    // Create missing pods and replace failed ones, in ordinal order; under OrderedReady, stop at the first pod
    // that is not Running and Ready.
    for ordinal in 0..replicas {
        match existing.get(&ordinal) {
            Some(pod) if is_failed(pod) => {
                delete_pod(world, namespace, pod);
                if monotonic {
                    blocked = true;
                    break;
                }
            }
            Some(pod) => {
                if monotonic && (!is_running_and_ready(pod) || is_terminating(pod)) {
                    blocked = true;
                    break;
                }
            }
            None => {
                // A missing pod is created at the update revision, as the real controller does for every ordinal
                // at or above the partition (apps/v1 defaults it to 0). Below a partition it would use the
                // current revision's template, which this fake does not keep: creation there is not modelled.
                create_pod(world, set, ordinal, &update_revision);
                if monotonic {
                    blocked = true;
                    break;
                }
            }
        }
    }
    if !blocked {
        // Scale down: the highest ordinal beyond replicas first, one at a time under OrderedReady.
        for (_, pod) in existing.range(replicas..).rev() {
            if !is_terminating(pod) {
                delete_pod(world, namespace, pod);
                if monotonic {
                    blocked = true;
                    break;
                }
            }
        }
    }
    if !blocked && rolling {
        // Rolling update: reverse ordinal order; delete the first outdated pod, wait for unhealthy ones.
        for ordinal in (partition.min(replicas)..replicas).rev() {
            let Some(pod) = existing.get(&ordinal) else { break };
            if revision_label(pod) != Some(update_revision.as_str()) && !is_terminating(pod) {
                delete_pod(world, namespace, pod);
                break;
            }
            if !is_running_and_ready(pod) {
                break;
            }
        }
    }
    // Re-read this set's pods after the actions above, by name (a pod still at the version it was read at is
    // the object decoded then).
    let ordinals: BTreeSet<usize> = existing.keys().copied().chain(0..replicas).collect();
    let pods: BTreeMap<usize, Arc<Pod>> = ordinals
        .into_iter()
        .filter_map(|ordinal| {
            let key = ObjectRef::new("Pod", namespace, format!("{name}-{ordinal}"));
            let value = world.api.store.get(&key, None)?;
            let pod: Arc<Pod> = world.api.store.decoded().decode(&key, value).ok()?;
            is_controlled_by(&pod.metadata, uid).then_some((ordinal, pod))
        })
        .collect();
    write_status(world, set, &pods, replicas, &current_revision, &update_revision);
}

fn ordinal_of(set: &str, pod: &str) -> Option<usize> {
    pod.strip_prefix(set)?.strip_prefix('-')?.parse().ok()
}

/// The set's `persistentVolumeClaimRetentionPolicy`: (whenDeleted, whenScaled), each `Retain` unless `Delete`.
fn retention_policy(set: &StatefulSet) -> (bool, bool) {
    let policy = set.spec.as_ref().and_then(|s| s.persistent_volume_claim_retention_policy.as_ref());
    let delete = |p: Option<&String>| p.map(String::as_str) == Some("Delete");
    (delete(policy.and_then(|p| p.when_deleted.as_ref())), delete(policy.and_then(|p| p.when_scaled.as_ref())))
}

/// The owner references a claim of this set should carry under its retention policy, or `None` to leave it
/// alone — kubernetes `pkg/controller/statefulset/stateful_set_utils.go` (`isClaimOwnerUpToDate`,
/// `updateClaimOwnerRefForSetAndPod`), applied by `stateful_pod_control.go` (`createPersistentVolumeClaims`,
/// `UpdatePodClaimForRetentionPolicy`). Modelled for `whenScaled: Retain` (what the operator sets): with
/// `whenDeleted: Delete` the set becomes the claim's controller, so the garbage collector deletes the claim with
/// the set; with `Retain` the set's references are scrubbed. A claim whose reference names a set of this name
/// with another uid (an older set's) is "managed by a previous version of the controller" and left untouched —
/// it goes when the collector notices its owner is gone, even if this set's pod mounted it meanwhile. A claim
/// with another controller (the operator's SeiNode, for a volume it made first) keeps it; only this set's
/// references are scrubbed. `PodClaimIsStale` — a claim whose *pod* reference has another uid blocks the pod
/// — applies only under `whenScaled: Delete`, which neither the operator nor this fake uses.
fn claim_owners(set: &StatefulSet, claim: &Value) -> Option<Vec<Value>> {
    let (set_name, set_uid) = (set.metadata.name.as_deref()?, set.metadata.uid.as_deref()?);
    let (when_deleted, _) = retention_policy(set);
    let refs: Vec<Value> =
        claim.metadata_field("ownerReferences").and_then(Value::as_array).cloned().unwrap_or_default();
    let field = |r: &Value, f: &str| r.get(f).and_then(Value::as_str).map(str::to_owned);
    let names_this_set =
        |r: &Value| field(r, "kind").as_deref() == Some("StatefulSet") && field(r, "name").as_deref() == Some(set_name);
    if refs.iter().any(|r| names_this_set(r) && field(r, "uid").as_deref() != Some(set_uid)) {
        return None;
    }
    let is_controller = |r: &Value| r.get("controller").and_then(Value::as_bool) == Some(true);
    let unexpected_controller = refs.iter().any(|r| is_controller(r) && field(r, "uid").as_deref() != Some(set_uid));
    let mut wanted: Vec<Value> = refs.iter().filter(|r| field(r, "uid").as_deref() != Some(set_uid)).cloned().collect();
    if when_deleted && !unexpected_controller {
        wanted.push(serde_json::to_value(controller_reference(set)?).ok()?);
    }
    (wanted != refs).then_some(wanted)
}

fn ensure_claim(
    world: &mut WorldState,
    set: &StatefulSet,
    claim: &k8s_openapi::api::core::v1::PersistentVolumeClaim,
    ordinal: usize,
) {
    let (Some(set_name), Some(namespace)) = (&set.metadata.name, &set.metadata.namespace) else { return };
    let name = format!("{}-{set_name}-{ordinal}", claim.metadata.name.as_deref().unwrap_or("data"));
    let key = ObjectRef::new("PersistentVolumeClaim", namespace, &name);
    if let Some(existing) = world.api.store.get(&key, None) {
        // An existing claim (made by the operator first, or by an earlier sync) gets the owner references the
        // policy asks for; one being deleted is left to go.
        if crate::apiserver::store::is_deleting(existing) {
            return;
        }
        let Some(owners) = claim_owners(set, existing) else { return };
        let mut updated = existing.clone();
        if let Some(meta) = updated.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert("ownerReferences".into(), owners.into());
        }
        let result = world.api.store.replace(updated);
        traced(world, ACTOR, "update owner references of", key.to_string(), result);
        return;
    }
    let mut value = serde_json::to_value(claim).unwrap_or_else(|_| json!({}));
    if let Some(object) = value.as_object_mut() {
        object.insert("apiVersion".into(), "v1".into());
        object.insert("kind".into(), "PersistentVolumeClaim".into());
        // The template's labels and the set's selector labels over them (kubernetes
        // `pkg/controller/statefulset/stateful_set_utils.go`, `getPersistentVolumeClaims`): what lets a watch by
        // the selector's label (the operator's claim cache) see the claim.
        let mut labels = claim.metadata.labels.clone().unwrap_or_default();
        labels.extend(set.spec.as_ref().and_then(|s| s.selector.match_labels.clone()).unwrap_or_default());
        let mut metadata = json!({"name": name, "namespace": namespace, "labels": labels});
        if let Some(owners) = claim_owners(set, &metadata_only(&metadata)) {
            metadata["ownerReferences"] = owners.into();
        }
        object.insert("metadata".into(), metadata);
    }
    let now = world.timestamp();
    let result = world.api.store.create(value, now);
    traced(world, ACTOR, "create", key.to_string(), result);
}

/// A claim value holding only `metadata`, for [`claim_owners`].
fn metadata_only(metadata: &Value) -> Value {
    json!({"metadata": metadata})
}

fn create_pod(world: &mut WorldState, set: &StatefulSet, ordinal: usize, revision: &str) {
    let (Some(set_name), Some(namespace), Some(spec)) = (&set.metadata.name, &set.metadata.namespace, &set.spec) else {
        return;
    };
    let name = format!("{set_name}-{ordinal}");
    let template = &spec.template;
    let mut labels = template.metadata.as_ref().and_then(|m| m.labels.clone()).unwrap_or_default();
    labels.insert(REVISION_LABEL.into(), revision.into());
    labels.insert("statefulset.kubernetes.io/pod-name".into(), name.clone());
    let mut pod_spec = template.spec.clone().unwrap_or_default();
    pod_spec.hostname = Some(name.clone());
    pod_spec.subdomain = spec.service_name.clone();
    let volumes = pod_spec.volumes.get_or_insert_with(Vec::new);
    for claim in spec.volume_claim_templates.iter().flatten() {
        let claim_name = claim.metadata.name.clone().unwrap_or_else(|| "data".into());
        volumes.retain(|v| v.name != claim_name);
        volumes.push(Volume {
            name: claim_name.clone(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: format!("{claim_name}-{set_name}-{ordinal}"),
                read_only: None,
            }),
            ..Volume::default()
        });
    }
    let pod = Pod {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(namespace.clone()),
            labels: Some(labels),
            annotations: template.metadata.as_ref().and_then(|m| m.annotations.clone()),
            // The set as controller, by uid (kubernetes `stateful_set_utils.go`, `newStatefulSetPod`).
            owner_references: controller_reference(set).map(|r| vec![r]),
            ..ObjectMeta::default()
        },
        spec: Some(pod_spec),
        status: None,
    };
    let now = world.timestamp();
    let result = serde_json::to_value(&pod)
        .map_err(|e| sei_operator_core::cluster::ClusterError::Transient(e.to_string()))
        .and_then(|value| world.api.store.create(value, now));
    traced(world, ACTOR, "create", format!("Pod {namespace}/{name} revision {revision}"), result);
}

fn delete_pod(world: &mut WorldState, namespace: &str, pod: &Pod) {
    let name = pod.metadata.name.clone().unwrap_or_default();
    let key = ObjectRef::new("Pod", namespace, &name);
    let now = world.timestamp();
    let result = world.api.store.delete(&key, now).map(|()| Value::Null);
    traced(world, ACTOR, "delete", key.to_string(), result);
}

fn write_status(
    world: &mut WorldState,
    set: &StatefulSet,
    pods: &BTreeMap<usize, Arc<Pod>>,
    replicas: usize,
    current_revision: &str,
    update_revision: &str,
) {
    let (Some(name), Some(namespace)) = (&set.metadata.name, &set.metadata.namespace) else { return };
    let live: Vec<&Pod> = pods.values().map(|p| &**p).filter(|p| !is_terminating(p)).collect();
    let count = |revision: &str| live.iter().filter(|p| revision_label(p) == Some(revision)).count();
    let ready = live.iter().filter(|p| is_running_and_ready(p)).count();
    let updated = count(update_revision);
    let (mut current_revision, mut current) = (current_revision.to_owned(), count(current_revision));
    // The rollout is complete once every replica runs the update revision and is Ready.
    if updated == replicas && ready == replicas {
        current_revision = update_revision.to_owned();
        current = updated;
    }
    let status = json!({
        "observedGeneration": set.metadata.generation,
        "replicas": live.len(),
        "readyReplicas": ready,
        "availableReplicas": ready,
        "currentReplicas": current,
        "updatedReplicas": updated,
        "currentRevision": current_revision,
        "updateRevision": update_revision,
        "collisionCount": 0,
    });
    let key = ObjectRef::new("StatefulSet", namespace, name);
    // Compared in place, and only the status is sent: most syncs change nothing, and copying the whole set
    // only to find that out (or to have replace_status ignore it) was costly.
    let Some(stored) = world.api.store.get(&key, None) else { return };
    if stored.get("status") == Some(&status) {
        return;
    }
    let update = crate::apiserver::store::status_update(stored, status);
    let result = world.api.store.replace_status(update);
    let text = format!(
        "status {key} observedGeneration={:?} ready={ready} current={current_revision} update={update_revision}",
        set.metadata.generation
    );
    traced(world, ACTOR, "write", text, result);
}
