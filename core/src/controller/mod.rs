//! The two reconcilers, written against the `Cluster`, `Sidecar` and `Clock` traits and deciding with the pure
//! core (`rollout`, `plan`): production drives them from kube-runtime watches, the simulator from its own
//! deterministic queue. Each reconcile reads, acts idempotently, and makes at most one status write carrying
//! the resourceVersion it read; a Conflict is returned as an error so the caller re-reads and retries the whole
//! reconcile.

pub mod authorization;
mod deployment;
mod node;
pub mod triggers;

pub use deployment::{DeploymentContext, reconcile_deployment};
pub use node::{
    HEIGHT_WRITE_INTERVAL, INITIALIZED, NodeContext, OBSERVE_INTERVAL, SIDECAR_READY, UP_TO_DATE, reconcile_node,
};

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
    /// How long to wait before reconciling the object again after this error, its `consecutive_failures`-th in a
    /// row (1 for the first); a successful reconcile resets the count. The one retry policy: production's
    /// kube-runtime error policy and the simulator's operator host both call it.
    ///
    /// - Conflict: the reconcile re-reads and retries almost at once — 200 ms — since a stale resourceVersion is
    ///   the optimistic-concurrency protocol working. Doubling to 5 s: conflicting again and again means another
    ///   writer keeps changing the object, and backing off lets it finish.
    /// - Transient (the API server unavailable, throttling, timeouts): 5 s, doubling to 2 minutes, so a fleet of
    ///   objects does not retry in lockstep against an API server that is already struggling.
    /// - The rest (Invalid, NotFound, AlreadyExists, Forbidden) needs something to change first: 30 s, doubling to
    ///   5 minutes, which also keeps a permanent error from filling the log every 30 s.
    ///
    /// A watch event on the object still reconciles it at once, whatever the delay.
    pub fn retry_after(&self, consecutive_failures: u32) -> Duration {
        let (first, cap) = match self {
            ReconcileError::Cluster(ClusterError::Conflict(_)) => (Duration::from_millis(200), Duration::from_secs(5)),
            ReconcileError::Cluster(ClusterError::Transient(_)) => (Duration::from_secs(5), Duration::from_secs(120)),
            ReconcileError::Cluster(_) => (Duration::from_secs(30), Duration::from_secs(300)),
        };
        let doublings = consecutive_failures.saturating_sub(1).min(16);
        first.saturating_mul(1 << doublings).min(cap)
    }

    /// A short, stable label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            ReconcileError::Cluster(ClusterError::Conflict(_)) => "conflict",
            ReconcileError::Cluster(ClusterError::NotFound(_)) => "not_found",
            ReconcileError::Cluster(ClusterError::AlreadyExists(_)) => "already_exists",
            ReconcileError::Cluster(ClusterError::Invalid { .. }) => "invalid",
            ReconcileError::Cluster(ClusterError::Transient(_)) => "transient",
            ReconcileError::Cluster(ClusterError::Forbidden { .. }) => "forbidden",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::ObjectRef;

    fn errors() -> [ReconcileError; 3] {
        let node = ObjectRef::new("SeiNode", "ns", "a");
        [
            ReconcileError::Cluster(ClusterError::Conflict(node.clone())),
            ReconcileError::Cluster(ClusterError::Transient("x".into())),
            ReconcileError::Cluster(ClusterError::Invalid { object: node, message: String::new() }),
        ]
    }

    #[test]
    fn conflicts_retry_sooner_than_transient_errors_and_those_sooner_than_the_rest() {
        let [conflict, transient, invalid] = errors();
        assert_eq!(conflict.retry_after(1), Duration::from_millis(200));
        assert_eq!(transient.retry_after(1), Duration::from_secs(5));
        assert_eq!(invalid.retry_after(1), Duration::from_secs(30));
        for n in 1..40 {
            assert!(conflict.retry_after(n) <= transient.retry_after(n));
            assert!(transient.retry_after(n) < invalid.retry_after(n));
        }
    }

    #[test]
    fn repeated_failures_back_off_to_a_cap() {
        let [conflict, transient, invalid] = errors();
        assert_eq!(transient.retry_after(0), transient.retry_after(1), "0 reads as the first failure");
        assert_eq!(transient.retry_after(2), Duration::from_secs(10));
        assert_eq!(transient.retry_after(3), Duration::from_secs(20));
        assert_eq!(conflict.retry_after(u32::MAX), Duration::from_secs(5));
        assert_eq!(transient.retry_after(u32::MAX), Duration::from_secs(120));
        assert_eq!(invalid.retry_after(u32::MAX), Duration::from_secs(300));
        for error in errors() {
            let delays: Vec<Duration> = (1..30).map(|n| error.retry_after(n)).collect();
            assert!(delays.windows(2).all(|w| w[0] <= w[1]), "never shorter after another failure");
        }
    }
}
