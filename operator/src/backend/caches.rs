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
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Service};
use kube::runtime::reflector::{self, ObjectRef as StoreKey, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};

use super::health::{Health, track};
use crate::api::{SeiNode, SeiNodeDeployment};
use crate::cluster::{ClusterObject, LabelSelector, ObjectRef};
use crate::objects::meta::{LABEL_DEPLOYMENT, LABEL_NODE, matches_selector};
use crate::read_policy::{Read, ReadSource, cache_answers_get, cache_answers_list, cache_holds_own_write, read_source};

/// The reflector stores of the watched kinds. StatefulSets, Jobs, Services, PersistentVolumeClaims and Pods come
/// from label-filtered watches: their stores hold only the operator's labelled objects (two Service stores: a
/// deployment's and a node's).
#[derive(Clone)]
pub struct Caches {
    pub deployments: Store<SeiNodeDeployment>,
    pub nodes: Store<SeiNode>,
    pub stateful_sets: Store<StatefulSet>,
    pub jobs: Store<Job>,
    pub services: Vec<Store<Service>>,
    /// Nodes' data claims (the StatefulSet's, and the one made ahead of a bootstrap).
    pub claims: Store<PersistentVolumeClaim>,
    /// Nodes' and bootstrap Jobs' pods.
    pub pods: Store<Pod>,
    /// The operator's own writes of cached kinds that their stores may not hold yet: the resourceVersion each
    /// write was answered with, and the object's labels (for lists). Dropped once a read finds the store
    /// holding it, when the operator deletes the object, or when its store has seen past the write without the
    /// object (`Settler`) — a user's delete, or the garbage collector's of a child, reported by the watch or
    /// missed while it was down and relisted: no read of the object may ever come to drop the record.
    pub own_writes: OwnWrites,
}

/// An object's labels, as its metadata holds them.
type Labels = Option<BTreeMap<String, String>>;

/// Per object the operator wrote: the resourceVersion the write was answered with, and the object's labels.
pub type OwnWrites = Arc<Mutex<BTreeMap<ObjectRef, (String, Labels)>>>;

/// Forgets, after each watch event has reached its store, the read-your-writes records that store has settled.
///
/// Once a store reflects a revision at or after the operator's write of an object and does not hold the object,
/// the object was deleted (or left the watch's label filter) since the write: no read will find that write, so
/// nothing is left to wait for. Events arrive in revision order, so after an ADDED / MODIFIED / DELETED event the
/// store reflects every revision up to the event's object's. A DELETED event carries the object at the revision of
/// its deletion, newer than any write before it (kubernetes `staging/src/k8s.io/apiserver/pkg/storage/etcd3/
/// watcher.go`, `prepareObjs`), as does the one of an update that takes an object out of a label-filtered watch.
/// A relist reports no deletion at all (kube-rs `kube-runtime/src/watcher.rs`, `InitDone`: objects not listed
/// "should be assumed to have been Deleted"); the newest object it lists bounds the revision it was taken at from
/// below, so a record at or before that revision whose object is absent is settled when the relist is done.
/// A delete of an earlier incarnation (the operator re-created the object since, and the watch has yet to deliver
/// that) settles nothing.
struct Settler<K: ClusterObject> {
    own_writes: OwnWrites,
    store: Store<K>,
    /// The watch's namespace (all when empty) and label filter: the records its store could hold.
    namespace: String,
    label: Option<&'static str>,
    /// The newest resourceVersion among the objects of the relist under way (`None`: none yet; one that is not
    /// a number is skipped).
    listed_up_to: Option<u64>,
}

impl<K: ClusterObject> Settler<K> {
    fn after(&mut self, event: &watcher::Event<K>) {
        let settled = match event {
            watcher::Event::Apply(object) | watcher::Event::Delete(object) => object.meta().resource_version.clone(),
            watcher::Event::Init => {
                self.listed_up_to = None;
                return;
            }
            watcher::Event::InitApply(object) => {
                let version = object.meta().resource_version.as_deref().and_then(|v| v.parse::<u64>().ok());
                self.listed_up_to = self.listed_up_to.max(version);
                return;
            }
            watcher::Event::InitDone => self.listed_up_to.take().map(|version| version.to_string()),
        };
        let Some(settled) = settled else { return };
        let kind = K::kind(&());
        let mut writes = self.own_writes.lock().unwrap_or_else(PoisonError::into_inner);
        writes.retain(|key, (written, labels)| {
            let could_hold = key.kind == kind
                && (self.namespace.is_empty() || key.namespace == self.namespace)
                && self.label.is_none_or(|label| labels.as_ref().is_some_and(|labels| labels.contains_key(label)));
            let absent = || self.store.get(&StoreKey::new(&key.name).within(&key.namespace)).is_none();
            !(could_hold && cache_holds_own_write(Some(&settled), written) && absent())
        });
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
            "PersistentVolumeClaim" => lookup(&self.claims, namespace, name),
            "Pod" => lookup(&self.pods, namespace, name),
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
    pub fn list<K: ClusterObject>(&self, namespace: &str, selector: &LabelSelector) -> Option<Vec<Arc<K>>> {
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
        // The store's own copies, shared: a list is only read.
        let mut items: Vec<Arc<K>> = items
            .into_iter()
            .filter(|object| {
                let meta = object.meta();
                meta.namespace.as_deref() == Some(namespace) && matches_selector(meta.labels.as_ref(), selector)
            })
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
    pub claims: BoxStream<'static, watcher::Result<PersistentVolumeClaim>>,
    pub pods: BoxStream<'static, watcher::Result<Pod>>,
}

impl Watches {
    /// The watches of `namespace` (all namespaces when empty), each reporting into `health` under its name.
    /// Nothing is sent before the streams are polled.
    pub fn new(client: &Client, namespace: &str, health: &Arc<Health>) -> Self {
        let own_writes = OwnWrites::default();
        let watch = |name| (client, namespace, health.clone(), own_writes.clone(), name);
        let (deployments_store, deployments) = reflected(watch("seinodedeployments"), None);
        let (nodes_store, nodes) = reflected(watch("seinodes"), None);
        let (deployment_services_store, deployment_services) =
            reflected(watch("services (of deployments)"), Some(LABEL_DEPLOYMENT));
        let (stateful_sets_store, stateful_sets) = reflected(watch("statefulsets"), Some(LABEL_NODE));
        let (node_services_store, node_services) = reflected(watch("services (of nodes)"), Some(LABEL_NODE));
        let (jobs_store, jobs) = reflected(watch("jobs"), Some(LABEL_NODE));
        let (claims_store, claims) = reflected(watch("persistentvolumeclaims"), Some(LABEL_NODE));
        let (pods_store, pods) = reflected(watch("pods"), Some(LABEL_NODE));
        Watches {
            caches: Caches {
                own_writes,
                deployments: deployments_store,
                nodes: nodes_store,
                stateful_sets: stateful_sets_store,
                jobs: jobs_store,
                services: vec![deployment_services_store, node_services_store],
                claims: claims_store,
                pods: pods_store,
            },
            deployments,
            nodes,
            deployment_services: deployment_services.touched_objects().boxed(),
            stateful_sets: stateful_sets.touched_objects().boxed(),
            node_services: node_services.touched_objects().boxed(),
            jobs: jobs.touched_objects().boxed(),
            claims: claims.touched_objects().boxed(),
            pods: pods.touched_objects().boxed(),
        }
    }
}

/// A watch of `K` in `namespace` (all when empty) of the objects with `label` (all when `None`), reporting into
/// `health` as `name`, reflected into a new store and forgetting the read-your-writes records that store settles
/// ([`Settler`]): the store, and the watch's events.
fn reflected<K: ClusterObject>(
    (client, namespace, health, own_writes, name): (&Client, &str, Arc<Health>, OwnWrites, &'static str),
    label: Option<&'static str>,
) -> (Store<K>, BoxStream<'static, watcher::Result<watcher::Event<K>>>) {
    let api = if namespace.is_empty() { Api::all(client.clone()) } else { Api::namespaced(client.clone(), namespace) };
    let config = match label {
        Some(label) => watcher::Config::default().labels(label),
        None => watcher::Config::default(),
    };
    let (store, writer) = reflector::store();
    let events = track(health, name, watcher(api, config).default_backoff()).reflect(writer);
    let mut settler =
        Settler { own_writes, store: store.clone(), namespace: namespace.into(), label, listed_up_to: None };
    // After `reflect`: the store has dropped the object before its record goes, so no read between them answers
    // the object as it was before the operator's write.
    let events = events.inspect(move |event| {
        if let Ok(event) = event {
            settler.after(event);
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
        let user_claim = object::<PersistentVolumeClaim>("scratch", None);
        let (claims, _c) =
            listed(vec![object::<PersistentVolumeClaim>("data-rpc-0-0", Some(LABEL_NODE)), user_claim], true);
        let own_writes = Arc::default();
        let services = vec![deployment_services, services];
        let (pods, _p) = listed(vec![object::<k8s_openapi::api::core::v1::Pod>("rpc-0-0", Some(LABEL_NODE))], true);
        let caches = Caches { deployments, nodes, stateful_sets, jobs, services, claims, pods, own_writes };

        assert!(matches!(caches.get::<SeiNodeDeployment>("sei", "rpc"), Cached::Answer(Some(_))));
        assert!(matches!(caches.get::<SeiNodeDeployment>("sei", "gone"), Cached::Answer(None)), "a full store's miss");
        assert!(matches!(caches.get::<StatefulSet>("sei", "rpc-0"), Cached::Answer(Some(_))));
        assert!(matches!(caches.get::<StatefulSet>("sei", "rpc-1"), Cached::AskTheApi), "a labelled store's miss");
        assert!(matches!(caches.get::<Service>("sei", "rpc-0"), Cached::Answer(Some(_))), "a hit in either store");
        assert!(matches!(caches.get::<Service>("sei", "rpc"), Cached::AskTheApi));
        assert!(matches!(caches.get::<Job>("sei", "rpc-0"), Cached::AskTheApi), "not listed yet");
        assert!(matches!(caches.get::<Pod>("sei", "rpc-0-0"), Cached::Answer(Some(_))));
        assert!(matches!(caches.get::<Pod>("sei", "rpc-1-0"), Cached::AskTheApi), "a labelled store's miss");
        assert!(matches!(caches.get::<k8s_openapi::api::core::v1::Event>("sei", "e"), Cached::AskTheApi));
        assert!(matches!(caches.get::<PersistentVolumeClaim>("sei", "data-rpc-0-0"), Cached::Answer(Some(_))));
        assert!(matches!(caches.get::<PersistentVolumeClaim>("sei", "data-rpc-1-0"), Cached::AskTheApi));
        assert!(matches!(caches.get::<PersistentVolumeClaim>("sei", "scratch"), Cached::AskTheApi), "unlabelled");

        let selector = [(LABEL_DEPLOYMENT.to_owned(), "rpc-0".to_owned())].into();
        let listed: Vec<Arc<SeiNode>> = caches.list("sei", &selector).expect("answered from the store");
        assert_eq!(listed.len(), 1);
        let name = listed[0].metadata.name.clone().unwrap_or_default();
        let Cached::Answer(Some(stored)) = caches.get::<SeiNode>("sei", &name) else { panic!("{name} is cached") };
        assert!(Arc::ptr_eq(&listed[0], &stored), "a list hands out the store's own copy, not a clone");
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
        let (claims, _c) = listed(Vec::<PersistentVolumeClaim>::new(), true);
        let (pods, _p) = listed(Vec::<Pod>::new(), true);
        let own_writes = Arc::default();
        let services = Vec::new();
        let caches = Caches { deployments, nodes, stateful_sets, jobs, services, claims, pods, own_writes };
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

        let mut event = k8s_openapi::api::core::v1::Event::default();
        event.metadata.name = Some("rpc.1".into());
        event.metadata.namespace = Some("sei".into());
        event.metadata.resource_version = Some("13".into());
        caches.note_write(&event);
        assert_eq!(pending(&caches), 0, "writes of kinds no cache answers are not remembered");
    }

    /// A store of StatefulSets, listed empty, whose settler forgets records of `own_writes`: what delivers a
    /// watch event to both, the store first (as `reflected` does).
    fn watched_sets(own_writes: &OwnWrites) -> impl FnMut(watcher::Event<StatefulSet>) {
        let (store, mut writer) = listed(Vec::<StatefulSet>::new(), true);
        let (own_writes, namespace) = (own_writes.clone(), "sei".into());
        let mut settler = Settler { own_writes, store, namespace, label: Some(LABEL_NODE), listed_up_to: None };
        move |event| {
            writer.apply_watcher_event(&event);
            settler.after(&event);
        }
    }

    fn set_at(name: &str, version: &str) -> StatefulSet {
        let mut set = object::<StatefulSet>(name, Some(LABEL_NODE));
        set.metadata.resource_version = Some(version.into());
        set
    }

    fn record(own_writes: &OwnWrites, set: &StatefulSet) {
        let version = set.metadata.resource_version.clone().unwrap_or_default();
        let entry = (version, set.metadata.labels.clone());
        own_writes.lock().unwrap_or_else(PoisonError::into_inner).insert(ObjectRef::to(set), entry);
    }

    fn pending(own_writes: &OwnWrites) -> Vec<String> {
        own_writes.lock().unwrap_or_else(PoisonError::into_inner).keys().map(|key| key.name.clone()).collect()
    }

    #[test]
    fn an_own_write_of_an_object_deleted_since_is_forgotten_and_of_an_earlier_incarnation_kept() {
        let own_writes = OwnWrites::default();
        let mut deliver = watched_sets(&own_writes);
        deliver(watcher::Event::Apply(set_at("rpc-0", "10")));
        // The operator re-created the set (rv 20) before the watch delivered the first one's delete (rv 15).
        record(&own_writes, &set_at("rpc-0", "20"));
        deliver(watcher::Event::Delete(set_at("rpc-0", "15")));
        assert_eq!(pending(&own_writes), ["rpc-0"], "the delete of an earlier incarnation says nothing of the write");
        deliver(watcher::Event::Apply(set_at("rpc-0", "21")));
        assert_eq!(pending(&own_writes), ["rpc-0"], "held, not settled: a read forgets a held write");
        // The garbage collector deletes it (rv 30): no read of it may ever come to drop the record.
        deliver(watcher::Event::Delete(set_at("rpc-0", "30")));
        assert!(pending(&own_writes).is_empty());
    }

    #[test]
    fn an_own_write_of_an_object_deleted_while_the_watch_was_down_is_forgotten_once_a_relist_has_seen_past_it() {
        let own_writes = OwnWrites::default();
        let mut deliver = watched_sets(&own_writes);
        deliver(watcher::Event::Apply(set_at("rpc-0", "10")));
        deliver(watcher::Event::Apply(set_at("rpc-1", "11")));
        record(&own_writes, &set_at("rpc-0", "20"));
        record(&own_writes, &set_at("rpc-1", "40"));
        // A set the store could never hold (another namespace; no `sei.io/node` label) is not the watch's to settle.
        let mut elsewhere = set_at("rpc-2", "21");
        elsewhere.metadata.namespace = Some("other".into());
        record(&own_writes, &elsewhere);
        let mut unlabelled = set_at("rpc-3", "22");
        unlabelled.metadata.labels = None;
        record(&own_writes, &unlabelled);

        // The watch breaks; both sets are deleted in the gap; the relist lists another set, at rv 30.
        deliver(watcher::Event::Init);
        deliver(watcher::Event::InitApply(set_at("rpc-9", "30")));
        assert_eq!(pending(&own_writes).len(), 4, "nothing is settled before the relist is done");
        deliver(watcher::Event::InitDone);
        assert_eq!(pending(&own_writes), ["rpc-2", "rpc-1", "rpc-3"], "rpc-0 (rv 20 ≤ 30) settled; rpc-1 (40) not yet");

        // A later event of any set carries the store past rv 40.
        deliver(watcher::Event::Apply(set_at("rpc-9", "41")));
        assert_eq!(pending(&own_writes), ["rpc-2", "rpc-3"]);

        // A relist that lists nothing proves no revision: nothing is settled by it.
        record(&own_writes, &set_at("rpc-4", "50"));
        deliver(watcher::Event::Init);
        deliver(watcher::Event::InitDone);
        assert_eq!(pending(&own_writes), ["rpc-2", "rpc-3", "rpc-4"]);
    }
}
