//! Typed objects decoded from stored values, kept by key with the resourceVersion each was decoded at. Every
//! write moves an object's resourceVersion, so a value at a version already decoded decodes to the same object:
//! handing out the kept one skips serde's walk of the whole value (for a Pod or a StatefulSet, most of it is the
//! `PodSpec`). One cache serves the whole world — the store (which decodes the custom resources it commits, for
//! their trigger fingerprints), the fake controllers and every simulated client — as what a version decodes to
//! does not depend on who decodes it; production's informer caches and kube-controller-manager's, too, hold
//! decoded objects.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use foldhash::fast::FixedState;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use sei_operator_core::api::{SeiNode, SeiNodeDeployment};
use sei_operator_core::cluster::ObjectRef;
use serde::Deserialize;
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
        let Some(version) = value.metadata_field("resourceVersion").and_then(Value::as_str) else {
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

    /// A status write stored `written` over the value at resourceVersion `replaced`: a status write changes
    /// nothing else but the resourceVersion (`Store::replace_status`, after kubernetes
    /// `staging/src/k8s.io/apiextensions-apiserver/pkg/registry/customresource/status_strategy.go`,
    /// `PrepareForUpdate`), so the object kept for `replaced` with the written status decoded in is what `written`
    /// decodes to, and is kept for it. Done for the kinds whose status is written often: the kubelet's pods, the
    /// StatefulSet controller's sets and the operator's own two (whose every committed version the store decodes
    /// for its trigger fingerprints); any other object is decoded in full when read.
    pub fn carry_over_status_write(&self, key: &ObjectRef, replaced: &str, written: &Value) {
        let Some(version) = written.metadata_field("resourceVersion").and_then(Value::as_str) else { return };
        let mut objects = self.objects.lock().unwrap_or_else(PoisonError::into_inner);
        let Some((at, object)) = objects.get_mut(key).filter(|(at, _)| at == replaced) else { return };
        // Taken out of the map, so that when no reader holds it any more its metadata and spec are moved into the
        // new object rather than copied (a Pod's or a StatefulSet's spec is most of it).
        let kept = std::mem::replace(object, Arc::new(()));
        let kind = (*kept).type_id();
        // Each kind has `metadata`, `spec` and `status` fields: rebuilt from the kept object's metadata and spec.
        macro_rules! carried {
            ($($kind:ident),+) => {
                $(if kind == TypeId::of::<$kind>() {
                    with_status(
                        kept,
                        written,
                        version,
                        |kept: &$kind| $kind { metadata: kept.metadata.clone(), spec: kept.spec.clone(), status: None },
                        |object| (&mut object.metadata, &mut object.status),
                    )
                } else)+ {
                    Err(kept)
                }
            };
        }
        match carried!(Pod, StatefulSet, SeiNode, SeiNodeDeployment) {
            Ok(carried) => {
                *at = version.to_owned();
                *object = carried;
            }
            Err(kept) => *object = kept,
        }
    }
}

/// The kept `object` with the status of `written` (the value a status write stored over the one it was decoded
/// from) and its resourceVersion `version`: the kept object itself when no one else holds it, else one built by
/// `copy` from its metadata and spec (its old status is not copied). `Err` gives the kept object back if it is not
/// a `K` or the status does not decode (a full decode then reports the error).
fn with_status<K, S>(
    object: Arc<dyn Any + Send + Sync>,
    written: &Value,
    version: &str,
    copy: fn(&K) -> K,
    fields: fn(&mut K) -> (&mut ObjectMeta, &mut Option<S>),
) -> Result<Arc<dyn Any + Send + Sync>, Arc<dyn Any + Send + Sync>>
where
    K: Send + Sync + 'static,
    S: DeserializeOwned,
{
    let kept = object.downcast::<K>()?;
    // As a full decode reads it: a missing or null status is none.
    let Ok(status) = Option::<S>::deserialize(written.get("status").unwrap_or(&Value::Null)) else {
        return Err(kept);
    };
    let mut carried = Arc::try_unwrap(kept).unwrap_or_else(|kept| copy(&kept));
    let (metadata, kept_status) = fields(&mut carried);
    metadata.resource_version = Some(version.to_owned());
    *kept_status = status;
    Ok(Arc::new(carried))
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
    fn a_status_write_carries_a_kept_pod_or_set_over_with_the_written_status_decoded_in() {
        let key = ObjectRef::new("Pod", "ns", "p");
        let decoded = DecodedObjects::default();
        let _: Arc<Pod> = decoded.decode(&key, &pod("1", "a")).unwrap();
        // The spec says "b" here only to show which object is handed out: a real status write keeps the spec.
        let mut written = pod("2", "b");
        written["status"] = json!({"phase": "Running"});
        decoded.carry_over_status_write(&key, "1", &written);
        let carried: Arc<Pod> = decoded.decode(&key, &written).unwrap();
        assert_eq!(image(&carried), Some("a"), "the kept object, carried over");
        assert_eq!(carried.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Running"));
        assert_eq!(carried.metadata.resource_version.as_deref(), Some("2"));
        // Not over another version than the kept one, and a status that does not decode is left to a full decode.
        decoded.carry_over_status_write(&key, "1", &pod("3", "c"));
        assert_eq!(image(&decoded.decode::<Pod>(&key, &pod("3", "c")).unwrap()), Some("c"));
        let mut broken = pod("4", "c");
        broken["status"] = json!({"phase": 7});
        decoded.carry_over_status_write(&key, "3", &broken);
        assert!(decoded.decode::<Pod>(&key, &broken).is_err());
        // A kind it does not carry over is decoded in full.
        let node = ObjectRef::new("SeiNode", "ns", "n");
        let _: Arc<Value> = decoded.decode(&node, &pod("1", "a")).unwrap();
        decoded.carry_over_status_write(&node, "1", &pod("2", "b"));
        let again: Arc<Value> = decoded.decode(&node, &pod("2", "b")).unwrap();
        assert_eq!(again.at("/spec/containers/0/image"), Some(&json!("b")));
    }

    #[test]
    fn a_status_write_of_a_seinode_carries_it_over_as_a_full_decode_reads_it() {
        let key = ObjectRef::new("SeiNode", "sei", "rpc-0");
        let node = |version: &str, status: Value| {
            json!({
                "apiVersion": "sei.io/v1alpha1", "kind": "SeiNode",
                "metadata": {"name": "rpc-0", "namespace": "sei", "uid": "u", "resourceVersion": version,
                             "generation": 2, "labels": {"sei.io/deployment": "rpc"}},
                "spec": {"chainId": "pacific-1", "image": "sei:v6.3.0", "fullNode": {}},
                "status": status,
            })
        };
        let decoded = DecodedObjects::default();
        let _: Arc<SeiNode> = decoded.decode(&key, &node("1", json!({"phase": "Pending"}))).unwrap();
        let statuses = [
            json!({"phase": "Running", "latestHeight": 42, "latestHeightTime": "2026-12-02T10:00:00Z",
                   "conditions": [{"type": "Ready", "status": "True", "reason": "Caught",
                                   "message": "", "lastTransitionTime": "2026-12-02T10:00:00Z"}]}),
            Value::Null,
            json!({"phase": "Initializing", "plan": {"id": "init", "phase": "Active", "tasks": [
                {"id": "a", "type": "configure-genesis", "status": "Pending", "params": {"x": 1}}]}}),
        ];
        for (index, status) in statuses.into_iter().enumerate() {
            let (replaced, version) = ((index + 1).to_string(), (index + 2).to_string());
            let written = node(&version, status);
            decoded.carry_over_status_write(&key, &replaced, &written);
            let carried: Arc<SeiNode> = decoded.decode(&key, &written).unwrap();
            let full: SeiNode = serde_json::from_value(written.clone()).unwrap();
            assert_eq!(*carried, full, "{written}");
        }
        // The carried object is the kept one: a spec that (unlike a real status write's) differs is not read.
        let mut written = node("5", json!({"phase": "Running"}));
        written["spec"]["image"] = json!("sei:other");
        decoded.carry_over_status_write(&key, "4", &written);
        let carried: Arc<SeiNode> = decoded.decode(&key, &written).unwrap();
        assert_eq!(carried.spec.image, "sei:v6.3.0");
        assert_eq!(carried.metadata.resource_version.as_deref(), Some("5"));
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
