//! Typed objects decoded from stored values, kept by key with the resourceVersion each was decoded at. Every
//! write moves an object's resourceVersion, so a value at a version already decoded decodes to the same object:
//! handing out the kept one skips serde's walk of the whole value (for a Pod or a StatefulSet, most of it is the
//! `PodSpec`). One cache serves the whole world — the store (which decodes the custom resources it commits, for
//! their trigger fingerprints), the fake controllers and every simulated client — as what a version decodes to
//! does not depend on who decodes it; production's informer caches and kube-controller-manager's, too, hold
//! decoded objects.

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use foldhash::fast::FixedState;
use sei_operator_core::cluster::ObjectRef;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::apiserver::json::Fields;

/// Decoded objects by key, each with the resourceVersion it was decoded at; clones share them. An entry is
/// replaced when its key is decoded at another version (or as another type), and otherwise kept for the life of
/// the world: bounded by the names the run used. Hashed, with a fixed seed, and never iterated: a lookup in a
/// BTreeMap of every object in the world compared kind, namespace and name at each of its levels.
#[derive(Clone, Default)]
pub struct DecodedObjects {
    objects: Arc<Mutex<HashMap<ObjectRef, Decoded, FixedState>>>,
}

/// One decoded object, type-erased, and the resourceVersion it was decoded at.
type Decoded = (String, Arc<dyn Any + Send + Sync>);

impl fmt::Debug for DecodedObjects {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kept = self.objects.lock().unwrap_or_else(PoisonError::into_inner).len();
        f.debug_struct("DecodedObjects").field("objects", &kept).finish()
    }
}

impl DecodedObjects {
    /// `value`, stored under `key`, as a `K`: the one decoded at its resourceVersion when kept, else decoded
    /// now and kept. A value without a resourceVersion is decoded and not kept.
    pub fn decode<K: DeserializeOwned + Send + Sync + 'static>(
        &self,
        key: &ObjectRef,
        value: &Value,
    ) -> Result<Arc<K>, serde_json::Error> {
        let Some(version) = value.at("/metadata/resourceVersion").and_then(Value::as_str) else {
            return K::deserialize(value).map(Arc::new);
        };
        let mut objects = self.objects.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((at, object)) = objects.get(key)
            && at == version
            && let Ok(object) = Arc::clone(object).downcast::<K>()
        {
            return Ok(object);
        }
        let object = Arc::new(K::deserialize(value)?);
        objects.insert(key.clone(), (version.to_owned(), object.clone()));
        Ok(object)
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::Pod;
    use serde_json::json;

    use super::*;

    fn pod(version: &str, image: &str) -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p", "namespace": "ns", "resourceVersion": version},
            "spec": {"containers": [{"name": "seid", "image": image}]},
        })
    }

    fn image(pod: &Pod) -> Option<&str> {
        pod.spec.as_ref()?.containers.first()?.image.as_deref()
    }

    #[test]
    fn a_value_at_a_kept_version_is_the_kept_object_and_a_new_version_is_decoded_again() {
        let key = ObjectRef::new("Pod", "ns", "p");
        let decoded = DecodedObjects::default();
        let first: Arc<Pod> = decoded.decode(&key, &pod("1", "a")).unwrap();
        // The same version: the kept object, whatever the value says (a version names one value).
        let again: Arc<Pod> = decoded.decode(&key, &pod("1", "b")).unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        let changed: Arc<Pod> = decoded.decode(&key, &pod("2", "b")).unwrap();
        assert_eq!(image(&changed), Some("b"));
        assert_eq!(image(&first), Some("a"));
    }

    #[test]
    fn a_value_without_a_version_is_decoded_every_time_and_errors_are_serdes() {
        let key = ObjectRef::new("Pod", "ns", "p");
        let decoded = DecodedObjects::default();
        let mut unversioned = pod("1", "a");
        unversioned["metadata"].as_object_mut().unwrap().remove("resourceVersion");
        let first: Arc<Pod> = decoded.decode(&key, &unversioned).unwrap();
        let second: Arc<Pod> = decoded.decode(&key, &unversioned).unwrap();
        assert!(!Arc::ptr_eq(&first, &second));
        let broken = json!({"metadata": {"resourceVersion": "3"}, "spec": {"containers": "none"}});
        assert!(decoded.decode::<Pod>(&key, &broken).is_err());
    }
}
