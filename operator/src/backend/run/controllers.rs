//! The two kube-runtime controllers of `sei-operator run`: SeiNodeDeployment (owning SeiNodes and the Service)
//! and SeiNode (owning StatefulSet, Services and Job), each calling its reconciler with the production backends,
//! timing it for `/metrics`, and mapping its outcome onto kube-runtime's requeue actions.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures::StreamExt;
use kube::runtime::controller::{Action as KubeAction, Controller};
use kube::runtime::events::Reporter;
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Api, Client, ResourceExt};

use tracing::Instrument;

use super::{CONTROLLER_NAME, RunContext, RunError, one_line, until_deadline_after};
use crate::api::{SeiNode, SeiNodeDeployment};
use crate::backend::caches;
use crate::backend::clock::SystemClock;
use crate::backend::health::track;
use crate::backend::http_sidecar::{BaseUrlResolver, HttpSidecar, HttpSidecarConfig};
use crate::backend::kube_cluster::KubeCluster;
use crate::backend::metrics::Metrics;
use crate::cluster::ClusterError;
use crate::controller::triggers::{self, TriggerFilter};
use crate::controller::{Action, DeploymentContext, NodeContext, ReconcileError, reconcile_deployment, reconcile_node};
use crate::rollout::RolloutConfig;

/// What both reconcile callbacks share.
struct Shared {
    deployment: DeploymentContext<KubeCluster, SystemClock>,
    node: NodeContext<KubeCluster, HttpSidecar, SystemClock>,
    metrics: Arc<Metrics>,
    failures: Failures,
    deployment_queue: Arc<Queue>,
    node_queue: Arc<Queue>,
}

/// Failed reconciles in a row, per object (kind, namespace, name): the count [`ReconcileError::retry_after`]
/// backs off with. A successful reconcile forgets the object.
#[derive(Default)]
struct Failures(Mutex<HashMap<(String, String, String), u32>>);

impl Failures {
    fn key<K: kube::Resource<DynamicType = ()>>(object: &K) -> (String, String, String) {
        (K::kind(&()).into_owned(), object.namespace().unwrap_or_default(), object.name_any())
    }

    /// Counts one more failure of `object`; answers the count.
    fn failed<K: kube::Resource<DynamicType = ()>>(&self, object: &K) -> u32 {
        let mut counts = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let count = counts.entry(Self::key(object)).or_insert(0);
        *count = count.saturating_add(1);
        *count
    }

    fn succeeded<K: kube::Resource<DynamicType = ()>>(&self, object: &K) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(&Self::key(object));
    }
}

const DEPLOYMENT_CONTROLLER: &str = "seinodedeployment";
const NODE_CONTROLLER: &str = "seinode";

fn to_kube_action(action: Action) -> KubeAction {
    match action {
        Action::Requeue(after) => KubeAction::requeue(after),
        Action::AwaitChange => KubeAction::await_change(),
    }
}

/// The span a reconcile's log lines carry: the controller, the object, and the plan its stored status runs.
fn reconcile_span(controller: &str, namespace: &str, name: &str, plan: Option<&str>) -> tracing::Span {
    tracing::info_span!("reconcile", controller, object = %format_args!("{namespace}/{name}"), plan = plan.unwrap_or("-"))
}

async fn reconcile_deployment_object(
    object: Arc<SeiNodeDeployment>,
    shared: Arc<Shared>,
) -> Result<KubeAction, ReconcileError> {
    let (namespace, name) = (object.namespace().unwrap_or_default(), object.name_any());
    shared.deployment_queue.started(&namespace, &name);
    let plan = object.status.as_ref().and_then(|s| s.plan.as_ref()).map(|p| p.id.as_str());
    let span = reconcile_span(DEPLOYMENT_CONTROLLER, &namespace, &name, plan);
    let started = Instant::now();
    let result = reconcile_deployment(&shared.deployment, &namespace, &name).instrument(span).await;
    if result.is_ok() {
        shared.failures.succeeded(object.as_ref());
    }
    let label = result.as_ref().err().map(ReconcileError::metric_label);
    shared.metrics.record_reconcile(DEPLOYMENT_CONTROLLER, started.elapsed(), label);
    result.map(to_kube_action)
}

async fn reconcile_node_object(object: Arc<SeiNode>, shared: Arc<Shared>) -> Result<KubeAction, ReconcileError> {
    let (namespace, name) = (object.namespace().unwrap_or_default(), object.name_any());
    shared.node_queue.started(&namespace, &name);
    let plan = object.status.as_ref().and_then(|s| s.plan.as_ref()).map(|p| p.id.as_str());
    let span = reconcile_span(NODE_CONTROLLER, &namespace, &name, plan);
    let started = Instant::now();
    let result = reconcile_node(&shared.node, &namespace, &name).instrument(span).await;
    if result.is_ok() {
        shared.failures.succeeded(object.as_ref());
    }
    let label = result.as_ref().err().map(ReconcileError::metric_label);
    shared.metrics.record_reconcile(NODE_CONTROLLER, started.elapsed(), label);
    result.map(to_kube_action)
}

/// kube-runtime's error policy: production's one retry policy, [`ReconcileError::retry_after`].
fn on_error<K: kube::Resource<DynamicType = ()>>(
    object: Arc<K>,
    error: &ReconcileError,
    shared: Arc<Shared>,
) -> KubeAction {
    KubeAction::requeue(error.retry_after(shared.failures.failed(object.as_ref())))
}

pub(super) fn scoped_api<K>(client: &Client, namespace: &str) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    if namespace.is_empty() { Api::all(client.clone()) } else { Api::namespaced(client.clone(), namespace) }
}

/// [`run_controllers`] with a bounded end: once `shutdown` resolves, the reconciles in flight get
/// `--shutdown-timeout`, then the controllers are dropped whatever their watches are doing.
pub(super) async fn run_controllers_bounded<S, F>(context: &RunContext<'_>, shutdown: &S) -> Result<(), RunError>
where
    S: Fn() -> F,
    F: Future<Output = ()> + Send + Sync + 'static,
{
    let timeout = context.args.shutdown_timeout;
    until_deadline_after(run_controllers(context, shutdown()), shutdown(), timeout).await.unwrap_or_else(|| {
        tracing::warn!(?timeout, "reconciles still running at the shutdown deadline: dropped");
        Ok(())
    })
}

/// Runs both controllers until `shutdown` resolves and the reconciles in flight finish. A controller whose stream
/// ends otherwise is an error: the process exits, and `/healthz` fails meanwhile.
pub(super) async fn run_controllers<F>(context: &RunContext<'_>, shutdown: F) -> Result<(), RunError>
where
    F: Future<Output = ()> + Send + Sync + 'static,
{
    let RunContext { args, client, identity, metrics, health } = *context;
    let reporter = Reporter { controller: CONTROLLER_NAME.to_owned(), instance: Some(identity.to_owned()) };
    let ns = args.namespace.as_str();
    // The watches the controllers run, reflected into the stores reads are answered from (`caches`).
    // Every watch reports into `health` (readiness waits for its initial list; a watch failing without a break
    // fails liveness).
    let watches = caches::Watches::new(client, ns, health);
    let cluster = KubeCluster::new(client.clone(), reporter, metrics.clone()).with_caches(watches.caches.clone());
    let sidecar = match args.sidecar_proxy.clone() {
        None => HttpSidecar::new(HttpSidecarConfig::default())?,
        Some(proxy) => {
            let proxy = proxy.trim_end_matches('/').to_owned();
            let resolve: BaseUrlResolver = Arc::new(move |pod, port| format!("{proxy}/{}/{port}", pod.host));
            HttpSidecar::with_resolver(HttpSidecarConfig::default(), resolve)?
        }
    };
    let shared = Arc::new(Shared {
        deployment: DeploymentContext {
            cluster: cluster.clone(),
            clock: SystemClock,
            config: RolloutConfig { stall_threshold: args.stall_threshold },
        },
        node: NodeContext {
            cluster,
            sidecar,
            clock: SystemClock,
            defaults: args.node_defaults.clone().unwrap_or_default(),
            desired: Default::default(),
        },
        metrics: metrics.clone(),
        failures: Failures::default(),
        deployment_queue: Arc::new(Queue::new(DEPLOYMENT_CONTROLLER, metrics.clone())),
        node_queue: Arc::new(Queue::new(NODE_CONTROLLER, metrics.clone())),
    });

    // One shutdown future feeds both controllers.
    let shutdown = futures::future::FutureExt::shared(Box::pin(shutdown));

    // SeiNode events reach each controller only when they change what it reads (`controller::triggers`): a
    // node's own observation writes do not reconcile it again, and a height-only change does not wake the
    // deployment controller, which lists every child.
    let child_nodes = track(
        health.clone(),
        "seinodes (children of deployments)",
        watcher(scoped_api::<SeiNode>(client, ns), watcher::Config::default()).default_backoff(),
    );
    let caches::Watches {
        caches,
        deployments,
        nodes,
        deployment_services,
        stateful_sets,
        node_services,
        jobs,
        claims,
        pods,
    } = watches;
    let (deployment_store, node_store) = (caches.deployments.clone(), caches.nodes.clone());
    // A deployment's own status writes do not wake it again (`triggers::deployment_wakes_itself`).
    let deployment_queue = shared.deployment_queue.clone();
    let deployments = Controller::for_stream(
        deployment_queue.woken(filter_triggers(deployments, triggers::deployment_wakes_itself)),
        deployment_store.clone(),
    )
    .owns_stream(
        deployment_queue
            .woken_owners(filter_triggers(child_nodes, triggers::deployment_wakes_for_child), deployment_store.clone()),
    )
    .owns_stream(deployment_queue.woken_owners(deployment_services, deployment_store.clone()))
    .graceful_shutdown_on(shutdown.clone())
    .run(reconcile_deployment_object, on_error, shared.clone())
    .for_each(|result| async move { log_outcome(DEPLOYMENT_CONTROLLER, result) });
    let node_queue = shared.node_queue.clone();
    let nodes = Controller::for_stream(
        node_queue.woken(filter_triggers(nodes, triggers::node_wakes_itself)),
        node_store.clone(),
    )
    .owns_stream(node_queue.woken_owners(stateful_sets, node_store.clone()))
    .owns_stream(node_queue.woken_owners(node_services, node_store.clone()))
    .owns_stream(node_queue.woken_owners(jobs, node_store.clone()))
    // A node's data claim: the one it made ahead of a bootstrap is its own (the StatefulSet's belongs to the set).
    .owns_stream(node_queue.woken_owners(claims, node_store.clone()))
    // Polled to keep the pod cache current; a pod's owner is its StatefulSet or Job, never a SeiNode: it wakes none.
    .owns_stream(node_queue.woken_owners(pods, node_store.clone()))
    .graceful_shutdown_on(shutdown)
    .run(reconcile_node_object, on_error, shared.clone())
    .for_each(|result| async move { log_outcome(NODE_CONTROLLER, result) });

    // `/metrics` reports every deployment and node from the caches while this process leads.
    metrics.set_object_source(Some(Box::new(move || (deployment_store.state(), node_store.state()))));
    tracing::info!(namespace = if ns.is_empty() { "<all>" } else { ns }, "controllers running");
    futures::future::join(deployments, nodes).await;
    metrics.set_object_source(None);
    if health.is_stopping() {
        return Ok(());
    }
    let reason = "a controller's watch stream ended".to_owned();
    health.ended(reason.clone());
    Err(RunError::ControllersEnded(reason))
}

/// The objects a controller has been woken for by a watch event and has not started reconciling since: its
/// reconcile queue as far as watches fill it (requeues after a delay are not counted), for
/// `sei_operator_reconcile_queue_depth`.
struct Queue {
    controller: &'static str,
    waiting: Mutex<BTreeSet<(String, String)>>,
    metrics: Arc<Metrics>,
}

impl Queue {
    fn new(controller: &'static str, metrics: Arc<Metrics>) -> Self {
        metrics.set_queue_depth(controller, 0);
        Queue { controller, waiting: Mutex::new(BTreeSet::new()), metrics }
    }

    fn update(&self, change: impl FnOnce(&mut BTreeSet<(String, String)>)) {
        let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        change(&mut waiting);
        self.metrics.set_queue_depth(self.controller, waiting.len());
    }

    /// The reconcile of `namespace/name` started.
    fn started(&self, namespace: &str, name: &str) {
        self.update(|waiting| {
            waiting.remove(&(namespace.to_owned(), name.to_owned()));
        });
    }

    /// Marks each object of the controller's own kind the stream yields as woken (one being deleted is not
    /// reconciled once gone, so it is not counted).
    fn woken<K, S>(self: &Arc<Self>, objects: S) -> impl futures::Stream<Item = S::Item> + Send + 'static
    where
        K: kube::Resource + Send + 'static,
        S: futures::Stream<Item = Result<K, watcher::Error>> + Send + 'static,
    {
        let queue = self.clone();
        objects.inspect(move |object| {
            if let Ok(object) = object {
                let key = (object.namespace().unwrap_or_default(), object.name_any());
                if object.meta().deletion_timestamp.is_none() {
                    queue.update(|waiting| {
                        waiting.insert(key);
                    });
                }
            }
        })
    }

    /// Marks the owners (of the controller's kind, present in `owners`) of each object the stream yields.
    fn woken_owners<K, O, S>(
        self: &Arc<Self>,
        objects: S,
        owners: reflector::Store<O>,
    ) -> impl futures::Stream<Item = S::Item> + Send + 'static
    where
        K: kube::Resource + Send + 'static,
        O: kube::Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
        S: futures::Stream<Item = Result<K, watcher::Error>> + Send + 'static,
    {
        let queue = self.clone();
        objects.inspect(move |object| {
            let Ok(object) = object else { return };
            let namespace = object.namespace().unwrap_or_default();
            let kind = O::kind(&());
            for owner in object.owner_references().iter().filter(|o| o.kind == kind) {
                let reference = reflector::ObjectRef::<O>::new(&owner.name).within(&namespace);
                if owners.get(&reference).is_some() {
                    queue.update(|waiting| {
                        waiting.insert((namespace.clone(), owner.name.clone()));
                    });
                }
            }
        })
    }
}

/// A watch's events, as the objects that wake a controller: those whose fingerprint changed since the last
/// event on them (the first event on each, deletions always) — [`TriggerFilter`], the simulator's rule too.
fn filter_triggers<K, S>(
    events: S,
    fingerprint: fn(&K) -> Option<u64>,
) -> impl futures::Stream<Item = Result<K, watcher::Error>> + Send + 'static
where
    K: kube::Resource + Send + 'static,
    S: futures::Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
{
    let mut filter: TriggerFilter<(String, String, Option<String>)> = TriggerFilter::default();
    let key = |object: &K| (object.namespace().unwrap_or_default(), object.name_any(), object.uid());
    events.filter_map(move |event| {
        let woken = match event {
            Err(error) => Some(Err(error)),
            Ok(watcher::Event::Apply(object) | watcher::Event::InitApply(object)) => {
                filter.admit(key(&object), fingerprint(&object)).then_some(Ok(object))
            }
            Ok(watcher::Event::Delete(object)) => {
                filter.forget(&key(&object));
                Some(Ok(object))
            }
            Ok(watcher::Event::Init | watcher::Event::InitDone) => None,
        };
        futures::future::ready(woken)
    })
}

type ControllerResult<K> = Result<
    (kube::runtime::reflector::ObjectRef<K>, KubeAction),
    kube::runtime::controller::Error<ReconcileError, watcher::Error>,
>;

fn log_outcome<K: kube::Resource>(controller: &str, result: ControllerResult<K>)
where
    K::DynamicType: Eq + std::hash::Hash + Clone + std::fmt::Debug,
{
    match result {
        Ok((object, action)) => tracing::debug!(controller, %object, ?action, "reconciled"),
        // A Conflict is the optimistic-concurrency protocol working (re-read, retry at once), not a problem.
        Err(kube::runtime::controller::Error::ReconcilerFailed(
            error @ ReconcileError::Cluster(ClusterError::Conflict(_)),
            object,
        )) => tracing::debug!(controller, %object, %error, "reconcile retried after a conflict"),
        Err(kube::runtime::controller::Error::ReconcilerFailed(error, object)) => {
            tracing::warn!(controller, %object, kind = error.metric_label(), %error, "reconcile failed")
        }
        Err(error) => tracing::warn!(controller, error = %one_line(&error), "controller error"),
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::Service;

    use super::*;

    #[test]
    fn failures_count_per_object_until_a_success() {
        let failures = Failures::default();
        let node = |name: &str| {
            let mut node = Service::default();
            node.metadata.name = Some(name.into());
            node.metadata.namespace = Some("ns".into());
            node
        };
        assert_eq!(failures.failed(&node("a")), 1);
        assert_eq!(failures.failed(&node("a")), 2);
        assert_eq!(failures.failed(&node("b")), 1);
        failures.succeeded(&node("a"));
        assert_eq!(failures.failed(&node("a")), 1);
    }
}
