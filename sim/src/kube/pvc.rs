//! PersistentVolumeClaims: the `kubernetes.io/pvc-protection` finalizer (added to every claim; removed from a
//! deleted claim only once no pod uses it, as Kubernetes' PVC protection controller does), and the chain data
//! each claim holds, dropped only when the claim is finally gone.

use sei_operator::cluster::ObjectRef;
use serde_json::Value;

use super::traced;
use crate::state::WorldState;
use crate::store::{finalizers, is_deleting};

pub const PVC_PROTECTION: &str = "kubernetes.io/pvc-protection";
const ACTOR: &str = "pvc-protection-controller";

pub fn sync(world: &mut WorldState) {
    let claims: Vec<(ObjectRef, Value)> =
        world.store.all_of_kind("PersistentVolumeClaim").map(|(k, v)| (k.clone(), v.clone())).collect();
    for (key, value) in claims {
        let protected = finalizers(&value).contains(&PVC_PROTECTION);
        let in_use = world.pods.values().any(|p| p.volume.as_ref() == Some(&key));
        let finalizers_after: Option<Vec<String>> = match (is_deleting(&value), protected) {
            (false, false) => {
                Some(finalizers(&value).into_iter().map(str::to_owned).chain([PVC_PROTECTION.to_owned()]).collect())
            }
            (true, true) if !in_use => {
                Some(finalizers(&value).into_iter().filter(|f| *f != PVC_PROTECTION).map(str::to_owned).collect())
            }
            _ => None,
        };
        if let Some(list) = finalizers_after {
            let mut updated = value.clone();
            if let Some(meta) = updated.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.insert("finalizers".into(), list.into());
            }
            let result = world.store.replace(updated);
            traced(world, ACTOR, "update finalizers of", key.to_string(), result);
        }
    }
    let gone: Vec<ObjectRef> =
        world.volumes.keys().filter(|key| world.store.get(key, None).is_none()).cloned().collect();
    for key in gone {
        world.volumes.remove(&key);
    }
}
