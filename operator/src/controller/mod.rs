//! The two reconcilers, written against the `Cluster`, `Sidecar` and `Clock` traits and deciding with the pure
//! core (`rollout`, `plan`): production drives them from kube-runtime watches, the simulator from its own
//! deterministic queue. Each reconcile reads, acts idempotently, and makes at most one status write carrying
//! the resourceVersion it read; a Conflict is returned as an error so the caller re-reads and retries the whole
//! reconcile.

mod deployment;
mod node;

pub use deployment::{DeploymentContext, reconcile_deployment};
pub use node::{NodeContext, OBSERVE_INTERVAL, reconcile_node};

use std::time::Duration;

use crate::cluster::ClusterError;

/// The finalizer a SeiNodeDeployment carries, so its deletion policy runs before it goes.
pub const FINALIZER: &str = "sei.io/nodedeployment-cleanup";

/// When to reconcile the object again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// After this long, even if nothing changes.
    Requeue(Duration),
    /// Only when a watched object changes.
    AwaitChange,
}

impl Action {
    /// The sooner of two actions.
    pub fn min(self, other: Action) -> Action {
        match (self, other) {
            (Action::Requeue(a), Action::Requeue(b)) => Action::Requeue(a.min(b)),
            (Action::Requeue(a), Action::AwaitChange) | (Action::AwaitChange, Action::Requeue(a)) => Action::Requeue(a),
            (Action::AwaitChange, Action::AwaitChange) => Action::AwaitChange,
        }
    }
}

/// Why a reconcile stopped early; the caller retries with backoff (a Conflict at once).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReconcileError {
    #[error(transparent)]
    Cluster(#[from] ClusterError),
}

impl ReconcileError {
    /// A short, stable label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            ReconcileError::Cluster(ClusterError::Conflict(_)) => "conflict",
            ReconcileError::Cluster(ClusterError::NotFound(_)) => "not_found",
            ReconcileError::Cluster(ClusterError::AlreadyExists(_)) => "already_exists",
            ReconcileError::Cluster(ClusterError::Invalid { .. }) => "invalid",
            ReconcileError::Cluster(ClusterError::Transient(_)) => "transient",
        }
    }
}
