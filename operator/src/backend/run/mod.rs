//! `sei-operator run`: the operator process. It connects to the API server, serves `/metrics`, `/healthz` and
//! `/readyz` (`crate::backend::health` decides them), reads every kind it needs once (the preflight), waits for the
//! leader Lease (`leader`), then drives the reconcilers from kube-runtime controllers (`controllers`) until SIGTERM
//! or until leadership is lost. After SIGTERM the reconciles in flight get `--shutdown-timeout` to finish; then the
//! controllers are dropped whatever they are doing and the Lease is released, so the process always exits in time
//! for the kubelet's grace period and a standby takes over at once.

mod controllers;
mod leader;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Service};
use kube::Client;
use kube::api::ListParams;
use kube::client::retry::RetryPolicy;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::buffer::BufferLayer;
use tower::retry::RetryLayer;

use self::controllers::{run_controllers_bounded, scoped_api};
use self::leader::lead_then_run;
use super::health::{Health, HealthConfig, PREFLIGHT, Role};
use super::logging::{self, LogFormat};
use super::metrics::Metrics;
use super::serve::{Endpoints, serve};
use crate::api::{SeiNode, SeiNodeDeployment};
use crate::api_retry::API_RETRY;
use crate::node_defaults::NodeDefaults;

/// How often the preflight read is retried while it fails.
const PREFLIGHT_RETRY: Duration = Duration::from_secs(5);
/// A pause in a watch's errors this long ends its error streak: kube-runtime's watcher back-off tops out at 30 s.
const ERROR_STREAK_GAP: Duration = Duration::from_secs(45);

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
    /// YAML file of pod settings per mode (`fullNode`, `archive`, `validator`, `replayer`: resources, storage,
    /// scheduling, serviceAccountName, imagePullSecrets, pod and container security contexts) for what a
    /// SeiNode's spec leaves unset; each field it leaves unset keeps the built-in default. Read once, at start.
    #[arg(long, env = "SEI_OPERATOR_NODE_DEFAULTS", value_name = "FILE", value_parser = parse_node_defaults)]
    pub node_defaults: Option<Arc<NodeDefaults>>,
    /// How long to wait for the API server to answer at startup before giving up.
    #[arg(long, env = "SEI_OPERATOR_STARTUP_TIMEOUT", default_value = "15s", value_parser = parse_duration)]
    pub startup_timeout: Duration,
    /// After SIGTERM, how long the reconciles in flight may run before the controllers are dropped and the Lease
    /// released; keep it below the pod's terminationGracePeriodSeconds (30 s by default) minus a few seconds.
    #[arg(long, env = "SEI_OPERATOR_SHUTDOWN_TIMEOUT", default_value = "20s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,
    /// How long a watch (or the startup read of the kinds) may fail without a break before `/healthz` fails and the
    /// kubelet restarts the process.
    #[arg(long, env = "SEI_OPERATOR_WATCH_FAILURE_LIMIT", default_value = "5m", value_parser = parse_duration)]
    pub watch_failure_limit: Duration,
    /// Development only: reach every pod's sidecar and seid RPC at `<URL>/<pod-host>/<port>` instead of
    /// `http://<pod-host>:<port>` — what `sei-sim serve` prints, since the simulated pods have no DNS names on the
    /// machine running the operator. Never set in a cluster.
    #[arg(long, env = "SEI_OPERATOR_SIDECAR_PROXY", value_name = "URL")]
    pub sidecar_proxy: Option<String>,
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
    #[error("{0}; exiting so that a restart starts the controllers again")]
    ControllersEnded(String),
}

/// Reads and checks the `--node-defaults` file, so a bad one stops the operator before it connects.
fn parse_node_defaults(path: &str) -> Result<Arc<NodeDefaults>, String> {
    NodeDefaults::load(std::path::Path::new(path)).map(Arc::new).map_err(|e| e.to_string())
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
    let config = HealthConfig { failing_limit: args.watch_failure_limit, streak_gap: ERROR_STREAK_GAP };
    let health = Arc::new(Health::new(config));

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let shutdown = move || {
        let mut receiver = shutdown_rx.clone();
        async move {
            // An error means the sender is gone, which only happens when the process is ending anyway.
            let _ = receiver.wait_for(|stop| *stop).await;
        }
    };
    spawn_signal_handler(shutdown_tx, health.clone())?;

    let metrics_listener = bind(args.metrics_addr).await?;
    let probe_listener = bind(args.probe_addr).await?;
    let metrics_server = tokio::spawn(serve(metrics_listener, Endpoints::Metrics(metrics.clone()), shutdown()));
    let probe_server = tokio::spawn(serve(probe_listener, Endpoints::Probes(health.clone()), shutdown()));
    tracing::info!(metrics = %args.metrics_addr, probes = %args.probe_addr, "serving metrics and probes");

    let outcome = match until_deadline_after(preflight(&args, &client, &health), shutdown(), Duration::ZERO).await {
        None => Ok(()),
        Some(()) => {
            let identity = args.identity.clone().unwrap_or_else(default_identity);
            let context =
                RunContext { args: &args, client: &client, identity: &identity, metrics: &metrics, health: &health };
            if args.leader_elect {
                lead_then_run(&context, &shutdown).await
            } else {
                health.set_role(Role::Leading);
                metrics.set_leader(true);
                let outcome = run_controllers_bounded(&context, &shutdown).await;
                metrics.set_leader(false);
                outcome
            }
        }
    };

    health.set_role(Role::Stopping);
    // Stop the HTTP servers whatever ended the controllers (they stop by themselves only on a signal).
    metrics_server.abort();
    probe_server.abort();
    tracing::info!("stopped");
    outcome
}

/// What the controllers and the leader loop share.
pub(crate) struct RunContext<'a> {
    pub args: &'a RunArgs,
    pub client: &'a Client,
    pub identity: &'a str,
    pub metrics: &'a Arc<Metrics>,
    pub health: &'a Arc<Health>,
}

/// Runs `work` to its end, unless `signal` fires first: then it gets `grace` more, and is dropped after that
/// (`None`). Dropping is what bounds shutdown — a kube-runtime controller whose watcher sits in its back-off can
/// otherwise wait indefinitely for a graceful end.
pub(crate) async fn until_deadline_after<F: Future>(
    work: F,
    signal: impl Future<Output = ()>,
    grace: Duration,
) -> Option<F::Output> {
    tokio::pin!(work);
    tokio::pin!(signal);
    tokio::select! {
        output = &mut work => return Some(output),
        () = &mut signal => {}
    }
    tokio::time::timeout(grace, work).await.ok()
}

/// Reads one object of every kind the operator watches or writes, in the namespace it manages, until all
/// succeed: a missing CRD (404) or a missing permission (403) keeps the process not ready — and, past
/// `--watch-failure-limit`, not live — with the reason in the log, instead of a pod that looks healthy and does
/// nothing. The Lease is read in its own namespace.
async fn preflight(args: &RunArgs, client: &Client, health: &Health) {
    let ns = args.namespace.as_str();
    let lease_namespace = args.lease_namespace.clone().unwrap_or_else(|| client.default_namespace().to_owned());
    let one = ListParams::default().limit(1);
    loop {
        let lease = async {
            if !args.leader_elect {
                return None;
            }
            // Only read by name (the Role grants get, not list); absent is fine, forbidden is not.
            let leases = kube::Api::<Lease>::namespaced(client.clone(), &lease_namespace);
            leases.get_opt(&args.lease_name).await.err()
        };
        let checks = [
            ("seinodedeployments", scoped_api::<SeiNodeDeployment>(client, ns).list_metadata(&one).await.err()),
            ("seinodes", scoped_api::<SeiNode>(client, ns).list_metadata(&one).await.err()),
            ("statefulsets", scoped_api::<StatefulSet>(client, ns).list_metadata(&one).await.err()),
            ("services", scoped_api::<Service>(client, ns).list_metadata(&one).await.err()),
            ("jobs", scoped_api::<Job>(client, ns).list_metadata(&one).await.err()),
            ("pods", scoped_api::<Pod>(client, ns).list_metadata(&one).await.err()),
            ("persistentvolumeclaims", scoped_api::<PersistentVolumeClaim>(client, ns).list_metadata(&one).await.err()),
            ("the leader Lease", lease.await),
        ];
        let failures: Vec<String> = checks
            .into_iter()
            .filter_map(|(kind, error)| error.map(|e| format!("reading {kind}: {}", one_line(&e))))
            .collect();
        if failures.is_empty() {
            health.synced(PREFLIGHT);
            tracing::info!("read every kind the operator needs");
            return;
        }
        let error = failures.join("; ");
        tracing::error!(%error, "cannot read the kinds the operator needs (CRDs installed? RBAC applied?); retrying");
        health.failed(PREFLIGHT, error, std::time::Instant::now());
        tokio::time::sleep(PREFLIGHT_RETRY).await;
    }
}

/// The host name, as a pod's default identity; a fixed name when even that is unknown.
fn default_identity() -> String {
    std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()).unwrap_or_else(|| CONTROLLER_NAME.to_owned())
}

/// Builds the client and checks that the API server answers, so a misconfigured start fails in one line.
async fn connect(timeout: Duration) -> Result<Client, RunError> {
    let config = kube::Config::infer().await.map_err(|error| RunError::Config(error.to_string()))?;
    let url = config.cluster_url.to_string();
    let client = api_client(config)?;
    match tokio::time::timeout(timeout, client.apiserver_version()).await {
        Ok(Ok(version)) => {
            tracing::info!(%url, version = %version.git_version, "connected to the API server");
            Ok(client)
        }
        Ok(Err(error)) => Err(RunError::Unreachable { url, reason: one_line(&error) }),
        Err(_) => Err(RunError::Unreachable { url, reason: format!("no answer within {timeout:?}") }),
    }
}

/// The operator's API client for `config`: kube's stack with the operator's retry policy
/// (`sei_operator_core::api_retry::API_RETRY`) in place of kube's default one, whose last sleeps run to minutes
/// after an outage ends. The retry layer sits outside kube's own layers, so each attempt is authenticated and
/// traced afresh; a buffer under it makes the boxed stack cloneable, as retrying needs.
pub fn api_client(mut config: kube::Config) -> Result<Client, RunError> {
    let retry = API_RETRY;
    let policy = RetryPolicy::new(retry.min_delay, retry.max_delay, retry.max_retries, true)
        .map_err(|error| RunError::Config(format!("the API client's retry policy: {error}")))?;
    config.default_retry = false;
    let builder = kube::client::ClientBuilder::try_from(config).map_err(|error| RunError::Config(error.to_string()))?;
    Ok(builder.with_layer(&BufferLayer::new(API_CLIENT_BUFFER)).with_layer(&RetryLayer::new(policy)).build())
}

/// Requests the retrying stack queues for kube's HTTP client (the bound kube's own `Client::new` uses).
const API_CLIENT_BUFFER: usize = 1024;

/// An error and its causes on one line.
pub(crate) fn one_line(error: &(dyn std::error::Error + 'static)) -> String {
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

/// Flips the shutdown channel on SIGTERM (what the kubelet sends) or SIGINT (Ctrl-C), and stops readiness at once.
fn spawn_signal_handler(shutdown: watch::Sender<bool>, health: Arc<Health>) -> Result<(), RunError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).map_err(|error| RunError::Signal(error.to_string()))?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(|error| RunError::Signal(error.to_string()))?;
    tokio::spawn(async move {
        let name = tokio::select! {
            _ = terminate.recv() => "SIGTERM",
            _ = interrupt.recv() => "SIGINT",
        };
        tracing::info!(signal = name, "shutting down: finishing the reconciles in flight");
        health.set_role(Role::Stopping);
        let _ = shutdown.send(true);
    });
    Ok(())
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
}
