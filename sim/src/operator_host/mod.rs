//! The operator's host: a deterministic work queue fed by the store's watch and by requeue timers, driving an
//! injected [`Reconciler`], concurrently across keys and never twice at once for one key. Everything here lives
//! in the host's memory and is lost when the world crashes the host; the store survives.
//!
//! Plugging the operator's controllers in: write them against the `Cluster`, `Sidecar` and `Clock` traits, and
//! wrap them in one `Reconciler` that dispatches on `key.kind`:
//!
//! ```text
//! struct Controllers { /* in-memory state, rebuilt at every operator (re)start */ }
//! impl Reconciler for Controllers {
//!     fn kinds(&self) -> Vec<String> { vec!["SeiNode".into(), "SeiNodeDeployment".into()] }
//!     async fn reconcile(&self, ctx: &OperatorContext, key: &ObjectRef) -> Requeue {
//!         match key.kind.as_str() {
//!             "SeiNode" => node::reconcile(&ctx.cluster, &ctx.sidecar, &ctx.clock, key).await.into(),
//!             _ => deployment::reconcile(&ctx.cluster, &ctx.clock, key).await.into(),
//!         }
//!     }
//! }
//! world.start_operator(|| Controllers { .. });
//! ```
//!
//! Events on a StatefulSet, Service, Job or child SeiNode reach the reconciler through their controller owner
//! reference, as kube-runtime's `owns` does.
//!
//! Beside the loop: [`cluster`] (`SimCluster`, the operator's `Cluster` client on the API server, with its cache
//! lag and injected faults), [`clock`] (`SimClock`), [`replicas`] (several replicas electing a leader through the
//! Lease) and [`reconcilers`] (the operator's real reconcilers plugged into the host).

pub mod clock;
pub mod cluster;
mod host_loop;
mod queue;
pub mod reconcilers;
pub mod replicas;

use host_loop::run_operator_gated;
pub use queue::WorkQueue;

use std::future::Future;
use std::rc::Rc;
use std::time::Duration;

use sei_operator_core::cluster::ObjectRef;
use sei_operator_core::controller::ReconcileError;

use crate::harness::state::SharedWorld;
use crate::node::sidecar::client::SimSidecar;
use crate::operator_host::clock::SimClock;
use crate::operator_host::cluster::SimCluster;

/// What a reconcile asks of the queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Requeue {
    /// Nothing more until the next watch event.
    Done,
    /// Reconcile again after this long (zero: as soon as the queue gets to it).
    After(Duration),
    /// The reconcile failed: retried after production's delay for this error and the key's failures in a row
    /// ([`ReconcileError::retry_after`], the policy kube-runtime's error policy uses in production).
    Error(ReconcileError),
}

/// What a reconcile gets: the operator's API client, a sidecar client tagged `operator:<Kind>` for the kind
/// being reconciled, and the clock.
#[derive(Clone)]
pub struct OperatorContext {
    pub cluster: SimCluster,
    pub sidecar: SimSidecar,
    pub clock: SimClock,
}

/// A controller's reconcile function, plugged into the operator host.
pub trait Reconciler: 'static {
    /// The kinds it reconciles. An event on one of them enqueues that object; an event on an object whose
    /// controller owner is of one of them enqueues the owner (kube-runtime's `owns`).
    fn kinds(&self) -> Vec<String>;

    fn reconcile(&self, ctx: &OperatorContext, key: &ObjectRef) -> impl Future<Output = Requeue>;

    /// Whether watch events are filtered by the operator's trigger rules (`sei_operator_core::controller::triggers`),
    /// as production's controllers filter theirs: an event on an object whose fingerprint did not change since
    /// the last one wakes nothing. Off by default: every change wakes.
    fn filters_triggers(&self) -> bool {
        false
    }
}

/// More reconciles than this in one simulated instant is a livelock — a controller that requeues itself at once,
/// forever, each pass undoing the last. Simulated time would stop with it, and a scenario would hang instead of
/// failing; past this budget the host reports `no-operator-livelock` and waits for the next tick.
pub const RECONCILES_PER_INSTANT: u64 = 10_000;

/// How the operator host runs reconciles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OperatorConfig {
    /// Reconciles running at once, each on a different key (kube-runtime's default is unbounded).
    pub concurrency: usize,
}

impl Default for OperatorConfig {
    fn default() -> Self {
        OperatorConfig { concurrency: usize::MAX }
    }
}

/// The operator host's software: kube-runtime's controller loop, deterministically. Reconciles of different
/// keys run concurrently (as tasks on the host); a key is never reconciled twice at once — an event for a key in
/// flight reruns it when the running reconcile ends.
pub async fn run_operator<R: Reconciler>(
    shared: SharedWorld,
    reconciler: R,
    config: OperatorConfig,
    tick: Duration,
) -> turmoil::Result {
    run_operator_gated(shared, reconciler, config, tick, None).await
}

/// One replica of several (`crate::operator_host::replicas`): its lease loop runs beside the controller loop, which starts
/// reconciles only while the replica believes it leads.
pub async fn run_replica<R: Reconciler>(
    shared: SharedWorld,
    reconciler: R,
    config: OperatorConfig,
    tick: Duration,
    index: usize,
) -> turmoil::Result {
    let gate = crate::operator_host::replicas::Gate {
        index,
        leading: Rc::new(std::cell::Cell::new(false)),
        changed: Rc::new(tokio::sync::Notify::new()),
    };
    tokio::task::spawn_local(crate::operator_host::replicas::lease_loop(shared.clone(), gate.clone()));
    run_operator_gated(shared, reconciler, config, tick, Some(gate)).await
}
