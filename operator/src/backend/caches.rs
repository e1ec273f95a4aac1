//! The operator's watch caches: kube-runtime reflector stores fed by the watches the two controllers run anyway,
//! from which `KubeCluster` answers the reads [`crate::read_policy`] allows — so a reconcile at rest costs the
//! API server no read of the objects it is woken about.
//!
//! A store answers only once its initial list is done; before, every read goes to the API server.

use std::any::Any;
use std::sync::Arc;

use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Service;
use kube::runtime::reflector::{self, ObjectRef as StoreKey, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};

use crate::api::{SeiNode, SeiNodeDeployment};
use crate::cluster::{ClusterObject, LabelSelector};
use crate::meta::{LABEL_DEPLOYMENT, LABEL_NODE, matches_selector};
use crate::read_policy::{cache_answers_get, cache_answers_list};

/// The reflector stores of the watched kinds. StatefulSets, Jobs and Services come from label-filtered watches:
/// their stores hold only the operator's labelled objects (two Service stores: a deployment's and a node's).
#[derive(Clone)]
pub struct Caches {
    pub deployments: Store<SeiNodeDeployment>,
    pub nodes: Store<SeiNode>,
    pub stateful_sets: Store<StatefulSet>,
    pub jobs: Store<Job>,
    pub services: Vec<Store<Service>>,
}

/// What a cache says of a get: the object it holds (`None`: none of that name), or that it cannot say.
pub enum Cached<K> {
    Answer(Option<K>),
    AskTheApi,
}

impl Caches {
    /// A get of `K` `namespace/name`, answered from the kind's store when the policy allows it.
    pub fn get<K: ClusterObject>(&self, namespace: &str, name: &str) -> Cached<K> {
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
        let labels = found.as_ref().map(|object| object.labels.clone());
        if !cache_answers_get(&K::kind(&()), labels.as_ref().map(Option::as_ref)) {
            return Cached::AskTheApi;
        }
        match found {
            None => Cached::Answer(None),
            Some(object) => match object.value.downcast::<K>() {
                Ok(object) => Cached::Answer(Some(Arc::unwrap_or_clone(object))),
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
        let mut items: Vec<K> = store
            .state()
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
    labels: Option<std::collections::BTreeMap<String, String>>,
    value: Arc<dyn Any + Send + Sync>,
}

/// What `store` holds under `namespace/name`; `None` until its initial list is done.
fn lookup<T: ClusterObject>(store: &Store<T>, namespace: &str, name: &str) -> Option<Option<Found>> {
    if !is_ready(store) {
        return None;
    }
    let object = store.get(&StoreKey::new(name).within(namespace));
    Some(object.map(|object| Found { labels: object.meta().labels.clone(), value: object }))
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
    /// The watches of `namespace` (all namespaces when empty). Nothing is sent before the streams are polled.
    pub fn new(client: &Client, namespace: &str) -> Self {
        let all = watcher::Config::default;
        let (deployments_store, deployments) = reflected(client, namespace, all());
        let (nodes_store, nodes) = reflected(client, namespace, all());
        let (deployment_services_store, deployment_services) =
            reflected(client, namespace, all().labels(LABEL_DEPLOYMENT));
        let (stateful_sets_store, stateful_sets) = reflected(client, namespace, all().labels(LABEL_NODE));
        let (node_services_store, node_services) = reflected(client, namespace, all().labels(LABEL_NODE));
        let (jobs_store, jobs) = reflected(client, namespace, all().labels(LABEL_NODE));
        Watches {
            caches: Caches {
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

/// A watch of `K` in `namespace` (all when empty) reflected into a new store: the store, and the watch's events.
fn reflected<K: ClusterObject>(
    client: &Client,
    namespace: &str,
    config: watcher::Config,
) -> (Store<K>, BoxStream<'static, watcher::Result<watcher::Event<K>>>) {
    let api = if namespace.is_empty() { Api::all(client.clone()) } else { Api::namespaced(client.clone(), namespace) };
    let (store, writer) = reflector::store();
    (store, watcher(api, config).default_backoff().reflect(writer).boxed())
}
