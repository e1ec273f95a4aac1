//! The operator's watch caches: kube-runtime reflector stores fed by the watches the two controllers run anyway,
//! from which `KubeCluster` answers the reads [`crate::read_policy`] allows — so a reconcile at rest costs the
//! API server no read of the objects it is woken about.
//!
//! A store answers only once its initial list is done; before, every read goes to the API server. So does a read
//! of an object the operator wrote, until its store holds that write (read-your-writes).

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Service;
use kube::runtime::reflector::{self, ObjectRef as StoreKey, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};

use super::health::{Health, track};
use crate::api::{SeiNode, SeiNodeDeployment};
use crate::cluster::{ClusterObject, LabelSelector, ObjectRef};
use crate::objects::meta::{LABEL_DEPLOYMENT, LABEL_NODE, matches_selector};
use crate::read_policy::{Read, ReadSource, cache_answers_get, cache_answers_list, cache_holds_own_write, read_source};

/// The reflector stores of the watched kinds. StatefulSets, Jobs and Services come from label-filtered watches:
/// their stores hold only the operator's labelled objects (two Service stores: a deployment's and a node's).
#[derive(Clone)]
pub struct Caches {
    pub deployments: Store<SeiNodeDeployment>,
    pub nodes: Store<SeiNode>,
    pub stateful_sets: Store<StatefulSet>,
    pub jobs: Store<Job>,
    pub services: Vec<Store<Service>>,
    /// The operator's own writes of cached kinds that their stores may not hold yet: the resourceVersion each
    /// write was answered with, and the object's labels (for lists). Dropped once a read finds the store
    /// holding it, when the operator deletes the object, or when its watch reports the object deleted after the
    /// write ([`forget_deleted`]) — a user's delete, or the garbage collector's of a child, which no read of the
    /// object may ever follow.
    pub own_writes: OwnWrites,
}

/// An object's labels, as its metadata holds them.
type Labels = Option<BTreeMap<String, String>>;

/// Per object the operator wrote: the resourceVersion the write was answered with, and the object's labels.
pub type OwnWrites = Arc<Mutex<BTreeMap<ObjectRef, (String, Labels)>>>;

/// After a watch event has reached its store: an object deleted at or after the operator's last write of it
/// leaves nothing to wait for, so its read-your-writes record is dropped. A delete of an earlier incarnation (the
/// operator re-created the object since, and the watch has yet to deliver that) keeps the record. A DELETED event
/// carries the object at the revision of its deletion, newer than any write before it (kubernetes
/// `staging/src/k8s.io/apiserver/pkg/storage/etcd3/watcher.go`, `prepareObjs`), as does the one of an update
/// that takes an object out of a label-filtered watch.
fn forget_deleted<K: ClusterObject>(own_writes: &OwnWrites, event: &watcher::Event<K>) {
    let watcher::Event::Delete(object) = event else { return };
    let key = ObjectRef::to(object);
    let mut writes = own_writes.lock().unwrap_or_else(PoisonError::into_inner);
    let deleted_after_write = writes
        .get(&key)
        .is_some_and(|(written, _)| cache_holds_own_write(object.meta().resource_version.as_deref(), written));
    if deleted_after_write {
        writes.remove(&key);
    }
}

/// What a cache says of a get: the object it holds (`None`: none of that name), or that it cannot say.
pub enum Cached<K> {
    Answer(Option<K>),
    AskTheApi,
}

impl Caches {
    /// Remembers the operator's write of `object` (as the API server answered it), if its kind is cached.
    pub fn note_write<K: ClusterObject>(&self, object: &K) {
        if read_source(&K::kind(&()), Read::Get) == ReadSource::Api {
            return;
        }
        let meta = object.meta();
        if let Some(version) = &meta.resource_version {
            let entry = (version.clone(), meta.labels.clone());
            self.own_writes.lock().unwrap_or_else(PoisonError::into_inner).insert(ObjectRef::to(object), entry);
        }
    }

    /// The operator deleted the object: nothing of it to wait for.
    pub fn note_delete<K: ClusterObject>(&self, namespace: &str, name: &str) {
        self.own_writes.lock().unwrap_or_else(PoisonError::into_inner).remove(&ObjectRef::of::<K>(namespace, name));
    }

    /// Whether the store's answer for `key` (the cached object's resourceVersion, `None` when it holds none)
    /// holds the operator's last write of it — forgetting the write once it does.
    fn holds_own_write(&self, key: &ObjectRef, cached: Option<&str>) -> bool {
        let mut writes = self.own_writes.lock().unwrap_or_else(PoisonError::into_inner);
        let Some((written, _)) = writes.get(key) else { return true };
        let holds = cache_holds_own_write(cached, written);
        if holds {
            writes.remove(key);
        }
        holds
    }

    /// A get of `K` `namespace/name`, answered from the kind's store when the policy allows it.
    /// The store's own copy: a caller that only reads it need not clone it.
    pub fn get<K: ClusterObject>(&self, namespace: &str, name: &str) -> Cached<Arc<K>> {
        let found = match &*K::kind(&()) {
            "SeiNodeDeployment" => lookup(&self.deployments, namespace, name),
            "SeiNode" => lookup(&self.nodes, namespace, name),
            "StatefulSet" => lookup(&self.stateful_sets, namespace, name),
            "Job" => lookup(&self.jobs, namespace, name),
            // A hit in either store; a miss when both are listed and hold none.
            "Service" => {
                let mut answers = self.services.iter().map(|store| lookup(store, namespace, name));
                answers.try_fold(None, |hit, answer| match (hit, answer?) {
                    (Some(object), _) | (None, Some(object)) => Some(Some(object)),
                    (None, None) => Some(None),
                })
            }
            _ => None,
        };
        let Some(found) = found else { return Cached::AskTheApi };
        let key = ObjectRef::of::<K>(namespace, name);
        let cached_version = found.as_ref().and_then(|object| object.resource_version.clone());
        if !self.holds_own_write(&key, cached_version.as_deref()) {
            return Cached::AskTheApi;
        }
        let labels = found.as_ref().map(|object| object.labels.clone());
        if !cache_answers_get(&K::kind(&()), labels.as_ref().map(Option::as_ref)) {
            return Cached::AskTheApi;
        }
        match found {
            None => Cached::Answer(None),
            Some(object) => match object.value.downcast::<K>() {
                Ok(object) => Cached::Answer(Some(object)),
                // Not the type its kind names (cannot happen: each store holds one type): ask the API server.
                Err(_) => Cached::AskTheApi,
            },
        }
    }

    /// A list of `K` in `namespace` matching `selector`, in name order, when the policy allows it.
    pub fn list<K: ClusterObject>(&self, namespace: &str, selector: &LabelSelector) -> Option<Vec<K>> {
        if !cache_answers_list(&K::kind(&())) {
            return None;
        }
        let store: &dyn Any = match &*K::kind(&()) {
            "SeiNode" => &self.nodes,
            _ => return None,
        };
        let store = store.downcast_ref::<Store<K>>()?;
        if !is_ready(store) {
            return None;
        }
        let items: Vec<Arc<K>> = store.state();
        // Read-your-writes: every object of the list's namespace the operator wrote that would match must be
        // in it at (at least) the version written.
        let pending: Vec<(ObjectRef, Labels)> = {
            let writes = self.own_writes.lock().unwrap_or_else(PoisonError::into_inner);
            let kind = K::kind(&());
            writes
                .iter()
                .filter(|(key, _)| key.kind == kind && key.namespace == namespace)
                .map(|(key, (_, labels))| (key.clone(), labels.clone()))
                .collect()
        };
        for (key, labels) in &pending {
            let cached = items.iter().find(|object| {
                object.meta().name.as_deref() == Some(key.name.as_str())
                    && object.meta().namespace.as_deref() == Some(namespace)
            });
            let version = cached.and_then(|object| object.meta().resource_version.clone());
            // One the store lacks matters only if it would be listed; one it holds, whatever its labels there.
            let matters = cached.is_some() || matches_selector(labels.as_ref(), selector);
            if matters && !self.holds_own_write(key, version.as_deref()) {
                return None;
            }
        }
        let mut items: Vec<K> = items
            .into_iter()
            .filter(|object| {
                let meta = object.meta();
                meta.namespace.as_deref() == Some(namespace) && matches_selector(meta.labels.as_ref(), selector)
            })
            .map(Arc::unwrap_or_clone)
            .collect();
        items.sort_by(|a, b| a.meta().name.cmp(&b.meta().name));
        Some(items)
    }
}

/// An object a store holds, type-erased, with its labels.
struct Found {
    labels: Labels,
    resource_version: Option<String>,
    value: Arc<dyn Any + Send + Sync>,
}

/// What `store` holds under `namespace/name`; `None` until its initial list is done.
fn lookup<T: ClusterObject>(store: &Store<T>, namespace: &str, name: &str) -> Option<Option<Found>> {
    if !is_ready(store) {
        return None;
    }
    let object = store.get(&StoreKey::new(name).within(namespace));
    Some(object.map(|object| {
        let meta = object.meta();
        Found { labels: meta.labels.clone(), resource_version: meta.resource_version.clone(), value: object }
    }))
}

/// Whether the store's initial list is done (kube-runtime marks it ready then, and never un-marks it).
fn is_ready<T: ClusterObject>(store: &Store<T>) -> bool {
    matches!(store.wait_until_ready().now_or_never(), Some(Ok(())))
}

/// The watches of `sei-operator run`, each reflected into its store: the two controllers' own (SeiNodeDeployment,
/// SeiNode: every object, as watch events for their trigger filters) and their children's (label-filtered, as
/// the objects they touch, for `owns_stream`). Children are watched by the labels the operator puts on them, not
/// every Service / Job in the cluster. Full objects, not metadata: the stores answer reads.
pub struct Watches {
    pub caches: Caches,
    pub deployments: BoxStream<'static, watcher::Result<watcher::Event<SeiNodeDeployment>>>,
    pub nodes: BoxStream<'static, watcher::Result<watcher::Event<SeiNode>>>,
    pub deployment_services: BoxStream<'static, watcher::Result<Service>>,
    pub stateful_sets: BoxStream<'static, watcher::Result<StatefulSet>>,
    pub node_services: BoxStream<'static, watcher::Result<Service>>,
    pub jobs: BoxStream<'static, watcher::Result<Job>>,
}

impl Watches {
    /// The watches of `namespace` (all namespaces when empty), each reporting into `health` under its name.
    /// Nothing is sent before the streams are polled.
    pub fn new(client: &Client, namespace: &str, health: &Arc<Health>) -> Self {
        let all = watcher::Config::default;
        let own_writes = OwnWrites::default();
        let watch = |name| (client, namespace, health.clone(), own_writes.clone(), name);
        let (deployments_store, deployments) = reflected(watch("seinodedeployments"), all());
        let (nodes_store, nodes) = reflected(watch("seinodes"), all());
        let (deployment_services_store, deployment_services) =
            reflected(watch("services (of deployments)"), all().labels(LABEL_DEPLOYMENT));
        let (stateful_sets_store, stateful_sets) = reflected(watch("statefulsets"), all().labels(LABEL_NODE));
        let (node_services_store, node_services) = reflected(watch("services (of nodes)"), all().labels(LABEL_NODE));
        let (jobs_store, jobs) = reflected(watch("jobs"), all().labels(LABEL_NODE));
        Watches {
            caches: Caches {
                own_writes,
                deployments: deployments_store,
                nodes: nodes_store,
                stateful_sets: stateful_sets_store,
                jobs: jobs_store,
                services: vec![deployment_services_store, node_services_store],
            },
            deployments,
            nodes,
            deployment_services: deployment_services.touched_objects().boxed(),
            stateful_sets: stateful_sets.touched_objects().boxed(),
            node_services: node_services.touched_objects().boxed(),
            jobs: jobs.touched_objects().boxed(),
        }
    }
}

/// A watch of `K` in `namespace` (all when empty), reporting into `health` as `name`, reflected into a new store
/// and forgetting the read-your-writes records of objects it sees deleted: the store, and the watch's events.
fn reflected<K: ClusterObject>(
    (client, namespace, health, own_writes, name): (&Client, &str, Arc<Health>, OwnWrites, &'static str),
    config: watcher::Config,
) -> (Store<K>, BoxStream<'static, watcher::Result<watcher::Event<K>>>) {
    let api = if namespace.is_empty() { Api::all(client.clone()) } else { Api::namespaced(client.clone(), namespace) };
    let (store, writer) = reflector::store();
    let events = track(health, name, watcher(api, config).default_backoff()).reflect(writer);
    // After `reflect`: the store has dropped the object before its record goes, so no read between them answers
    // the object as it was before the operator's write.
    let events = events.inspect(move |event| {
        if let Ok(event) = event {
            forget_deleted(&own_writes, event);
        }
    });
    (store, events.boxed())
}

#[cfg(test)]
mod tests {
    use kube::runtime::reflector::store::Writer;

    use super::*;
    use crate::cluster::ClusterObject;

    fn named<K: ClusterObject>(mut object: K, name: &str, label: Option<&str>) -> K {
        object.meta_mut().name = Some(name.into());
        object.meta_mut().namespace = Some("sei".into());
        object.meta_mut().labels = label.map(|key| [(key.to_owned(), name.to_owned())].into());
        object
    }

    /// A store listed with `objects` (or not listed at all).
    fn listed<K: ClusterObject>(objects: Vec<K>, done: bool) -> (Store<K>, Writer<K>) {
        let (store, mut writer) = reflector::store();
        writer.apply_watcher_event(&watcher::Event::Init);
        for object in objects {
            writer.apply_watcher_event(&watcher::Event::InitApply(object));
        }
        if done {
            writer.apply_watcher_event(&watcher::Event::InitDone);
        }
        (store, writer)
    }

    fn object<K: ClusterObject + Default>(name: &str, label: Option<&str>) -> K {
        named(K::default(), name, label)
    }

    fn node(name: &str) -> SeiNode {
        let node = serde_json::json!({
            "apiVersion": "sei.io/v1alpha1", "kind": "SeiNode", "metadata": {},
            "spec": {"chainId": "pacific-1", "image": "sei:v1", "fullNode": {}},
        });
        named(serde_json::from_value(node).expect("a valid SeiNode"), name, Some(LABEL_DEPLOYMENT))
    }

    fn deployment(name: &str) -> SeiNodeDeployment {
        let deployment = serde_json::json!({
            "apiVersion": "sei.io/v1alpha1", "kind": "SeiNodeDeployment", "metadata": {},
            "spec": {"replicas": 1, "template": {"spec": {"chainId": "pacific-1", "image": "sei:v1", "fullNode": {}}}},
        });
        named(serde_json::from_value(deployment).expect("a valid SeiNodeDeployment"), name, None)
    }

    #[test]
    fn reads_are_answered_by_a_listed_store_and_a_labelled_miss_asks_the_api() {
        let (deployments, _d) = listed(vec![deployment("rpc")], true);
        let (nodes, _n) = listed(vec![node("rpc-0")], true);
        let (stateful_sets, _s) = listed(vec![object::<StatefulSet>("rpc-0", Some(LABEL_NODE))], true);
        let (jobs, _j) = listed(Vec::<Job>::new(), false);
        let (services, _v) = listed(vec![object::<Service>("rpc-0", Some(LABEL_NODE))], true);
        let (deployment_services, _w) = listed(Vec::<Service>::new(), true);
        let own_writes = Arc::default();
        let services = vec![deployment_services, services];
        let caches = Caches { deployments, nodes, stateful_sets, jobs, services, own_writes };

        assert!(matches!(caches.get::<SeiNodeDeployment>("sei", "rpc"), Cached::Answer(Some(_))));
        assert!(matches!(caches.get::<SeiNodeDeployment>("sei", "gone"), Cached::Answer(None)), "a full store's miss");
        assert!(matches!(caches.get::<StatefulSet>("sei", "rpc-0"), Cached::Answer(Some(_))));
        assert!(matches!(caches.get::<StatefulSet>("sei", "rpc-1"), Cached::AskTheApi), "a labelled store's miss");
        assert!(matches!(caches.get::<Service>("sei", "rpc-0"), Cached::Answer(Some(_))), "a hit in either store");
        assert!(matches!(caches.get::<Service>("sei", "rpc"), Cached::AskTheApi));
        assert!(matches!(caches.get::<Job>("sei", "rpc-0"), Cached::AskTheApi), "not listed yet");
        assert!(matches!(caches.get::<k8s_openapi::api::core::v1::Pod>("sei", "rpc-0-0"), Cached::AskTheApi));

        let selector = [(LABEL_DEPLOYMENT.to_owned(), "rpc-0".to_owned())].into();
        let listed: Option<Vec<SeiNode>> = caches.list("sei", &selector);
        assert_eq!(listed.map(|nodes| nodes.len()), Some(1));
        assert_eq!(caches.list::<SeiNode>("other", &selector).map(|nodes| nodes.len()), Some(0));
        assert!(caches.list::<Service>("sei", &selector).is_none(), "lists of other kinds go to the API server");
    }

    #[test]
    fn a_read_of_an_own_write_the_store_does_not_hold_yet_asks_the_api() {
        let mut cached = deployment("rpc");
        cached.metadata.resource_version = Some("10".into());
        let (deployments, mut writer) = listed(vec![cached.clone()], true);
        let (nodes, _n) = listed(vec![node("rpc-0")], true);
        let (stateful_sets, _s) = listed(Vec::<StatefulSet>::new(), true);
        let (jobs, _j) = listed(Vec::<Job>::new(), true);
        let own_writes = Arc::default();
        let caches = Caches { deployments, nodes, stateful_sets, jobs, services: Vec::new(), own_writes };
        let pending = |caches: &Caches| caches.own_writes.lock().unwrap_or_else(PoisonError::into_inner).len();

        let mut written = cached.clone();
        written.metadata.resource_version = Some("11".into());
        caches.note_write(&written);
        assert!(matches!(caches.get::<SeiNodeDeployment>("sei", "rpc"), Cached::AskTheApi), "the store holds rv 10");
        writer.apply_watcher_event(&watcher::Event::Apply(written));
        assert!(matches!(caches.get::<SeiNodeDeployment>("sei", "rpc"), Cached::Answer(Some(_))));
        assert_eq!(pending(&caches), 0, "forgotten once held");

        let mut created = node("rpc-1");
        created.metadata.resource_version = Some("12".into());
        caches.note_write(&created);
        let selector = [(LABEL_DEPLOYMENT.to_owned(), "rpc-1".to_owned())].into();
        assert!(caches.list::<SeiNode>("sei", &selector).is_none(), "a created node the store lacks, that matches");
        let other: LabelSelector = [(LABEL_DEPLOYMENT.to_owned(), "rpc-0".to_owned())].into();
        assert_eq!(caches.list::<SeiNode>("sei", &other).map(|n| n.len()), Some(1), "one that would not match");
        caches.note_delete::<SeiNode>("sei", "rpc-1");
        assert!(caches.list::<SeiNode>("sei", &selector).is_some());

        let mut claim = k8s_openapi::api::core::v1::PersistentVolumeClaim::default();
        claim.metadata.name = Some("data".into());
        claim.metadata.namespace = Some("sei".into());
        claim.metadata.resource_version = Some("13".into());
        caches.note_write(&claim);
        assert_eq!(pending(&caches), 0, "writes of kinds no cache answers are not remembered");
    }

    #[test]
    fn an_own_write_of_an_object_deleted_since_is_forgotten_and_of_an_earlier_incarnation_kept() {
        let own_writes = OwnWrites::default();
        let pending = || own_writes.lock().unwrap_or_else(PoisonError::into_inner).len();
        let at = |version: &str| {
            let mut set = object::<StatefulSet>("rpc-0", Some(LABEL_NODE));
            set.metadata.resource_version = Some(version.into());
            set
        };
        let record = |set: &StatefulSet| {
            let version = set.metadata.resource_version.clone().unwrap_or_default();
            own_writes.lock().unwrap_or_else(PoisonError::into_inner).insert(ObjectRef::to(set), (version, None));
        };
        // The operator re-created the set (rv 20) before the watch delivered the first one's delete (rv 15).
        record(&at("20"));
        forget_deleted(&own_writes, &watcher::Event::Delete(at("15")));
        assert_eq!(pending(), 1, "the delete of an earlier incarnation says nothing of the write");
        forget_deleted(&own_writes, &watcher::Event::Apply(at("21")));
        assert_eq!(pending(), 1, "only deletes are looked at here; a read forgets a held write");
        // The garbage collector deletes it (rv 30): no read of it may ever come to drop the record.
        forget_deleted(&own_writes, &watcher::Event::Delete(at("30")));
        assert_eq!(pending(), 0);
    }
}
