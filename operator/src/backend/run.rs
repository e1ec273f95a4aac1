//! `sei-operator run`: the operator process. It connects to the API server, serves `/metrics`, `/healthz` and
//! `/readyz`, waits for the leader Lease, then drives [`reconcile_deployment`] and [`reconcile_node`] from
//! kube-runtime controllers until SIGTERM (finishing the reconciles in flight) or until leadership is lost.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Service;
use kube::runtime::controller::{Action as KubeAction, Controller};
use kube::runtime::events::Reporter;
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
use kube_lease_manager::LeaseManagerBuilder;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::clock::SystemClock;
use super::http_sidecar::{HttpSidecar, HttpSidecarConfig};
use super::kube_cluster::KubeCluster;
use super::logging::{self, LogFormat};
use super::metrics::Metrics;
use super::serve::{Endpoints, Probes, serve};
use crate::api::{SeiNode, SeiNodeDeployment};
use crate::cluster::ClusterError;
use crate::controller::{Action, DeploymentContext, NodeContext, ReconcileError, reconcile_deployment, reconcile_node};
use crate::meta::{LABEL_DEPLOYMENT, LABEL_NODE};
use crate::rollout::RolloutConfig;

/// The name on the Events the operator publishes and its Lease's default name.
pub const CONTROLLER_NAME: &str = "sei-operator";

/// Flags of `sei-operator run`; each has an environment variable, shown by `--help`.
#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    /// Namespace whose SeiNodeDeployments and SeiNodes are managed; all namespaces when empty.
    #[arg(long, env = "SEI_OPERATOR_NAMESPACE", default_value = "")]
    pub namespace: String,
    /// How long a rollout may run with nodes not ready before it is reported Stalled (`90s`, `10m`, `1h`).
    #[arg(long, env = "SEI_OPERATOR_STALL_THRESHOLD", default_value = "10m", value_parser = parse_duration)]
    pub stall_threshold: Duration,
    /// Where `/metrics` is served.
    #[arg(long, env = "SEI_OPERATOR_METRICS_ADDR", default_value = "0.0.0.0:8080")]
    pub metrics_addr: SocketAddr,
    /// Where `/healthz` and `/readyz` are served.
    #[arg(long, env = "SEI_OPERATOR_PROBE_ADDR", default_value = "0.0.0.0:8081")]
    pub probe_addr: SocketAddr,
    /// Log line format.
    #[arg(long, env = "SEI_OPERATOR_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Log filter: a level, or `level,target=level,...` (`info,sei_operator=debug`).
    #[arg(long, env = "SEI_OPERATOR_LOG", default_value = "info")]
    pub log_filter: String,
    /// Whether to wait for the leader Lease before reconciling (disable only when exactly one replica runs).
    #[arg(long, env = "SEI_OPERATOR_LEADER_ELECT", default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_elect: bool,
    /// Name of the leader Lease.
    #[arg(long, env = "SEI_OPERATOR_LEASE_NAME", default_value = CONTROLLER_NAME)]
    pub lease_name: String,
    /// Namespace of the leader Lease; the client's namespace (the pod's, in a cluster) when unset.
    #[arg(long, env = "POD_NAMESPACE")]
    pub lease_namespace: Option<String>,
    /// This replica's name in the Lease and on Events; the host name when unset.
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    /// How long to wait for the API server to answer at startup before giving up.
    #[arg(long, env = "SEI_OPERATOR_STARTUP_TIMEOUT", default_value = "15s", value_parser = parse_duration)]
    pub startup_timeout: Duration,
}

/// Why the operator stopped; each prints as one line.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Logging(#[from] logging::LoggingError),
    #[error("no Kubernetes client configuration (in-cluster service account or kubeconfig): {0}")]
    Config(String),
    #[error("Kubernetes API server at {url} is unreachable: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("cannot listen on {addr}: {reason}")]
    Listen { addr: SocketAddr, reason: String },
    #[error(transparent)]
    Sidecar(#[from] super::http_sidecar::HttpSidecarBuildError),
    #[error("leader election on Lease {lease}: {reason}")]
    LeaderElection { lease: String, reason: String },
    #[error("lost the leader Lease {0}; exiting so that a restart stands by cleanly")]
    LostLeadership(String),
    #[error("installing the signal handler: {0}")]
    Signal(String),
}

/// Parses `90`, `90s`, `10m`, `1h`, `500ms` into a duration.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: u64 = number.parse().map_err(|_| format!("{text:?} is not a duration like 90s, 10m or 1h"))?;
    let seconds = match unit {
        "ms" => return Ok(Duration::from_millis(value)),
        "" | "s" => value,
        "m" => value.saturating_mul(60),
        "h" => value.saturating_mul(3600),
        _ => return Err(format!("{text:?}: unknown unit {unit:?} (use ms, s, m or h)")),
    };
    Ok(Duration::from_secs(seconds))
}

/// Runs the operator until SIGTERM / SIGINT (Ok) or a fatal error.
pub async fn run(args: RunArgs) -> Result<(), RunError> {
    logging::init(args.log_format, &args.log_filter)?;
    let client = connect(args.startup_timeout).await?;
    let metrics = Arc::new(Metrics::new());
    let probes = Arc::new(Probes::default());

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let shutdown = move || {
        let mut receiver = shutdown_rx.clone();
        async move {
            // An error means the sender is gone, which only happens when the process is ending anyway.
            let _ = receiver.wait_for(|stop| *stop).await;
        }
    };
    spawn_signal_handler(shutdown_tx)?;

    let metrics_listener = bind(args.metrics_addr).await?;
    let probe_listener = bind(args.probe_addr).await?;
    let metrics_server = tokio::spawn(serve(metrics_listener, Endpoints::Metrics(metrics.clone()), shutdown()));
    let probe_server = tokio::spawn(serve(probe_listener, Endpoints::Probes(probes.clone()), shutdown()));
    tracing::info!(metrics = %args.metrics_addr, probes = %args.probe_addr, "serving metrics and probes");

    // A standby replica is ready too: readiness gating on leadership would deadlock a rolling update, whose new pod
    // must be ready before the old one (the leader) stops.
    probes.set_ready(true);

    let identity = args.identity.clone().unwrap_or_else(default_identity);
    let outcome = if args.leader_elect {
        lead_then_run(&args, &client, &identity, &metrics, &shutdown).await
    } else {
        run_controllers(&args, &client, &identity, &metrics, shutdown()).await
    };

    probes.set_ready(false);
    // Stop the HTTP servers whatever ended the controllers (they stop by themselves only on a signal).
    metrics_server.abort();
    probe_server.abort();
    tracing::info!("stopped");
    outcome
}

/// The host name, as a pod's default identity; a fixed name when even that is unknown.
fn default_identity() -> String {
    std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()).unwrap_or_else(|| CONTROLLER_NAME.to_owned())
}

/// Builds the client and checks that the API server answers, so a misconfigured start fails in one line.
async fn connect(timeout: Duration) -> Result<Client, RunError> {
    let config = kube::Config::infer().await.map_err(|error| RunError::Config(error.to_string()))?;
    let url = config.cluster_url.to_string();
    let client = Client::try_from(config).map_err(|error| RunError::Config(error.to_string()))?;
    match tokio::time::timeout(timeout, client.apiserver_version()).await {
        Ok(Ok(version)) => {
            tracing::info!(%url, version = %version.git_version, "connected to the API server");
            Ok(client)
        }
        Ok(Err(error)) => Err(RunError::Unreachable { url, reason: one_line(&error) }),
        Err(_) => Err(RunError::Unreachable { url, reason: format!("no answer within {timeout:?}") }),
    }
}

/// An error and its causes on one line.
fn one_line(error: &(dyn std::error::Error + 'static)) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        // kube's errors often repeat their cause in their own message.
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        source = cause.source();
    }
    line.replace('\n', " ")
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, RunError> {
    TcpListener::bind(addr).await.map_err(|error| RunError::Listen { addr, reason: error.to_string() })
}

/// Flips the shutdown channel on SIGTERM (what the kubelet sends) or SIGINT (Ctrl-C).
fn spawn_signal_handler(shutdown: watch::Sender<bool>) -> Result<(), RunError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).map_err(|error| RunError::Signal(error.to_string()))?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(|error| RunError::Signal(error.to_string()))?;
    tokio::spawn(async move {
        let name = tokio::select! {
            _ = terminate.recv() => "SIGTERM",
            _ = interrupt.recv() => "SIGINT",
        };
        tracing::info!(signal = name, "shutting down: finishing the reconciles in flight");
        let _ = shutdown.send(true);
    });
    Ok(())
}

/// Waits for the Lease, runs the controllers while holding it, and releases it on the way out.
async fn lead_then_run<S, F>(
    args: &RunArgs,
    client: &Client,
    identity: &str,
    metrics: &Arc<Metrics>,
    shutdown: &S,
) -> Result<(), RunError>
where
    S: Fn() -> F,
    F: std::future::Future<Output = ()> + Send + Sync + 'static,
{
    let namespace = args.lease_namespace.clone().unwrap_or_else(|| client.default_namespace().to_owned());
    let lease = format!("{namespace}/{}", args.lease_name);
    let election_error = |error: kube_lease_manager::LeaseManagerError| RunError::LeaderElection {
        lease: lease.clone(),
        reason: error.to_string(),
    };
    let manager = LeaseManagerBuilder::new(client.clone(), &args.lease_name)
        .with_namespace(&namespace)
        .with_identity(identity)
        .build()
        .await
        .map_err(election_error)?;
    let (mut leading, lease_task) = manager.watch().await;

    tracing::info!(%lease, %identity, "waiting for the leader Lease");
    // None: asked to stop while standing by. Some(false): the lease task stopped, which it does only when the
    // channel fails.
    let acquired = tokio::select! {
        () = shutdown() => None,
        changed = leading.wait_for(|is_leader| *is_leader) => Some(changed.is_ok()),
    };
    let outcome = match acquired {
        None => Ok(()),
        Some(false) => {
            Err(RunError::LeaderElection { lease: lease.clone(), reason: "the Lease manager stopped".into() })
        }
        Some(true) => {
            tracing::info!(%lease, "leading");
            let lost = async {
                // Err: the lease task ended (it logs why); treat it as leadership lost.
                let _ = leading.wait_for(|is_leader| !*is_leader).await;
            };
            // Losing the Lease drops the controllers at once: another replica may already be reconciling.
            tokio::select! {
                result = run_controllers(args, client, identity, metrics, shutdown()) => result,
                () = lost => Err(RunError::LostLeadership(lease.clone())),
            }
        }
    };

    // Closing the channel makes the lease task release the Lease, so a standby takes over without waiting for
    // it to expire.
    drop(leading);
    match tokio::time::timeout(Duration::from_secs(5), lease_task).await {
        Ok(Ok(Ok(_))) => tracing::info!(%lease, "released the leader Lease"),
        Ok(Ok(Err(error))) => tracing::warn!(%lease, %error, "releasing the leader Lease failed; it will expire"),
        Ok(Err(error)) => tracing::warn!(%lease, %error, "the Lease task ended abnormally; the Lease will expire"),
        Err(_) => tracing::warn!(%lease, "releasing the leader Lease timed out; it will expire"),
    }
    outcome
}

/// What both reconcile callbacks share.
struct Shared {
    deployment: DeploymentContext<KubeCluster, SystemClock>,
    node: NodeContext<KubeCluster, HttpSidecar, SystemClock>,
    metrics: Arc<Metrics>,
}

const DEPLOYMENT_CONTROLLER: &str = "seinodedeployment";
const NODE_CONTROLLER: &str = "seinode";

fn to_kube_action(action: Action) -> KubeAction {
    match action {
        Action::Requeue(after) => KubeAction::requeue(after),
        Action::AwaitChange => KubeAction::await_change(),
    }
}

/// Conflicts retry at once (the reconcile re-reads); transient errors after a short pause; errors that need
/// someone to change something after a longer one.
fn retry_after(error: &ReconcileError) -> Duration {
    match error {
        ReconcileError::Cluster(ClusterError::Conflict(_)) => Duration::from_millis(200),
        ReconcileError::Cluster(ClusterError::Transient(_)) => Duration::from_secs(5),
        ReconcileError::Cluster(_) => Duration::from_secs(30),
    }
}

async fn reconcile_deployment_object(
    object: Arc<SeiNodeDeployment>,
    shared: Arc<Shared>,
) -> Result<KubeAction, ReconcileError> {
    let (namespace, name) = (object.namespace().unwrap_or_default(), object.name_any());
    let started = Instant::now();
    let result = reconcile_deployment(&shared.deployment, &namespace, &name).await;
    let label = result.as_ref().err().map(ReconcileError::metric_label);
    shared.metrics.record_reconcile(DEPLOYMENT_CONTROLLER, started.elapsed(), label);
    result.map(to_kube_action)
}

async fn reconcile_node_object(object: Arc<SeiNode>, shared: Arc<Shared>) -> Result<KubeAction, ReconcileError> {
    let (namespace, name) = (object.namespace().unwrap_or_default(), object.name_any());
    let started = Instant::now();
    let result = reconcile_node(&shared.node, &namespace, &name).await;
    let label = result.as_ref().err().map(ReconcileError::metric_label);
    shared.metrics.record_reconcile(NODE_CONTROLLER, started.elapsed(), label);
    result.map(to_kube_action)
}

fn on_error<K>(_object: Arc<K>, error: &ReconcileError, _shared: Arc<Shared>) -> KubeAction {
    KubeAction::requeue(retry_after(error))
}

fn scoped_api<K>(client: &Client, namespace: &str) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    if namespace.is_empty() { Api::all(client.clone()) } else { Api::namespaced(client.clone(), namespace) }
}

/// Runs both controllers until `shutdown` resolves and the reconciles in flight finish.
async fn run_controllers<F>(
    args: &RunArgs,
    client: &Client,
    identity: &str,
    metrics: &Arc<Metrics>,
    shutdown: F,
) -> Result<(), RunError>
where
    F: std::future::Future<Output = ()> + Send + Sync + 'static,
{
    let reporter = Reporter { controller: CONTROLLER_NAME.to_owned(), instance: Some(identity.to_owned()) };
    let cluster = KubeCluster::new(client.clone(), reporter, metrics.clone());
    let sidecar = HttpSidecar::new(HttpSidecarConfig::default())?;
    let shared = Arc::new(Shared {
        deployment: DeploymentContext {
            cluster: cluster.clone(),
            clock: SystemClock,
            config: RolloutConfig { stall_threshold: args.stall_threshold },
        },
        node: NodeContext { cluster, sidecar, clock: SystemClock },
        metrics: metrics.clone(),
    });
    let ns = args.namespace.as_str();
    // Children are watched by the labels the operator puts on them, not every Service / Job in the cluster.
    let deployment_children = watcher::Config::default().labels(LABEL_DEPLOYMENT);
    let node_children = watcher::Config::default().labels(LABEL_NODE);

    // One shutdown future feeds both controllers.
    let shutdown = futures::future::FutureExt::shared(Box::pin(shutdown));

    let deployments = Controller::new(scoped_api::<SeiNodeDeployment>(client, ns), watcher::Config::default())
        .owns(scoped_api::<SeiNode>(client, ns), watcher::Config::default())
        .owns(scoped_api::<Service>(client, ns), deployment_children)
        .graceful_shutdown_on(shutdown.clone())
        .run(reconcile_deployment_object, on_error, shared.clone())
        .for_each(|result| async move { log_outcome(DEPLOYMENT_CONTROLLER, result) });
    let nodes = Controller::new(scoped_api::<SeiNode>(client, ns), watcher::Config::default())
        .owns(scoped_api::<StatefulSet>(client, ns), node_children.clone())
        .owns(scoped_api::<Service>(client, ns), node_children.clone())
        .owns(scoped_api::<Job>(client, ns), node_children)
        .graceful_shutdown_on(shutdown)
        .run(reconcile_node_object, on_error, shared)
        .for_each(|result| async move { log_outcome(NODE_CONTROLLER, result) });
    tracing::info!(namespace = if ns.is_empty() { "<all>" } else { ns }, "controllers running");
    futures::future::join(deployments, nodes).await;
    Ok(())
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
        Err(kube::runtime::controller::Error::ReconcilerFailed(error, object)) => {
            tracing::warn!(controller, %object, kind = error.metric_label(), %error, "reconcile failed")
        }
        Err(error) => tracing::warn!(controller, error = %one_line(&error), "controller error"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("ten minutes").is_err());
        assert!(parse_duration("5d").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn conflicts_retry_sooner_than_other_errors() {
        let node = crate::cluster::ObjectRef::new("SeiNode", "ns", "a");
        let conflict = retry_after(&ReconcileError::Cluster(ClusterError::Conflict(node.clone())));
        let transient = retry_after(&ReconcileError::Cluster(ClusterError::Transient("x".into())));
        let invalid =
            retry_after(&ReconcileError::Cluster(ClusterError::Invalid { object: node, message: String::new() }));
        assert!(conflict < transient && transient < invalid);
    }
}
