//! PersistentVolumeClaims: the `kubernetes.io/pvc-protection` finalizer (added to every claim; removed from a
//! deleted claim only once no pod uses it, as Kubernetes' PVC protection controller does), and the chain data
//! each claim holds, dropped only when the claim is finally gone.

use sei_operator_core::cluster::ObjectRef;
use serde_json::Value;

use super::traced;
use crate::apiserver::store::{finalizers, is_deleting};
use crate::harness::state::WorldState;

pub const PVC_PROTECTION: &str = "kubernetes.io/pvc-protection";
const ACTOR: &str = "pvc-protection-controller";

pub fn sync(world: &mut WorldState) {
    // (claim, its finalizers after this sync) for the claims whose finalizers change.
    let changes: Vec<(ObjectRef, Vec<String>)> = world
        .api
        .store
        .all_of_kind("PersistentVolumeClaim")
        .filter_map(|(key, value)| {
            let current = finalizers(value);
            let protected = current.contains(&PVC_PROTECTION);
            let in_use = world.plane.pods.values().any(|p| p.volume.as_ref() == Some(key));
            let owned = |list: Vec<&str>| list.into_iter().map(str::to_owned).collect::<Vec<_>>();
            match (is_deleting(value), protected) {
                (false, false) => Some((key.clone(), owned([current, vec![PVC_PROTECTION]].concat()))),
                (true, true) if !in_use => {
                    Some((key.clone(), owned(current.into_iter().filter(|f| *f != PVC_PROTECTION).collect())))
                }
                _ => None,
            }
        })
        .collect();
    for (key, list) in changes {
        let Some(mut updated) = world.api.store.get(&key, None).cloned() else { continue };
        if let Some(meta) = updated.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert("finalizers".into(), list.into());
        }
        let result = world.api.store.replace(updated);
        traced(world, ACTOR, "update finalizers of", key.to_string(), result);
    }
    let gone: Vec<ObjectRef> =
        world.plane.volumes.keys().filter(|key| world.api.store.get(key, None).is_none()).cloned().collect();
    for key in gone {
        world.plane.volumes.remove(&key);
    }
}
