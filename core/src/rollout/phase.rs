//! A SeiNodeDeployment's phase and its `NodesReady` message (docs/design.md §5.8), from its status and its active nodes.

use crate::api::{DeploymentPhase, PlanPhase, SeiNode, SeiNodeDeploymentStatus, SeiNodePhase};

/// How the active set's nodes are doing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeCounts {
    /// Desired replicas.
    pub replicas: i32,
    /// Active nodes that exist.
    pub existing: i32,
    /// Running.
    pub ready: i32,
    pub failed: i32,
}

impl NodeCounts {
    /// Neither Running nor Failed, missing nodes included.
    pub fn initializing(&self) -> i32 {
        (self.replicas.max(self.existing) - self.ready - self.failed).max(0)
    }
}

/// Counts the active set's nodes.
pub fn count_nodes(active: &[&SeiNode], replicas: i32) -> NodeCounts {
    let phase = |n: &&&SeiNode| n.status.as_ref().and_then(|s| s.phase);
    let count = |wanted: SeiNodePhase| {
        i32::try_from(active.iter().filter(|n| phase(n) == Some(wanted)).count()).unwrap_or(i32::MAX)
    };
    NodeCounts {
        replicas,
        existing: i32::try_from(active.len()).unwrap_or(i32::MAX),
        ready: count(SeiNodePhase::Running),
        failed: count(SeiNodePhase::Failed),
    }
}

/// `"k/n nodes ready (f failed, i initializing)"`.
pub fn nodes_ready_message(counts: &NodeCounts) -> String {
    format!(
        "{}/{} nodes ready ({} failed, {} initializing)",
        counts.ready,
        counts.replicas,
        counts.failed,
        counts.initializing()
    )
}

/// The phase, first rule that applies: Terminating while deleting; Upgrading while a rollout is in progress;
/// Initializing while another plan is active; Pending with no nodes; Degraded while the spec still targets a
/// rollout that failed; Ready when all replicas run; Failed when all nodes failed; Degraded when some failed
/// and some run; else Initializing.
pub fn deployment_phase(
    deleting: bool,
    status: &SeiNodeDeploymentStatus,
    template_hash: &str,
    counts: &NodeCounts,
) -> DeploymentPhase {
    let plan_active = status.plan.as_ref().is_some_and(|p| p.phase == PlanPhase::Active);
    if deleting {
        DeploymentPhase::Terminating
    } else if status.rollout.is_some() {
        DeploymentPhase::Upgrading
    } else if plan_active {
        DeploymentPhase::Initializing
    } else if counts.existing == 0 {
        DeploymentPhase::Pending
    } else if status.failed_target_hash.as_deref() == Some(template_hash) {
        DeploymentPhase::Degraded
    } else if counts.ready >= counts.replicas {
        DeploymentPhase::Ready
    } else if counts.failed == counts.existing {
        DeploymentPhase::Failed
    } else if counts.failed > 0 && counts.ready > 0 {
        DeploymentPhase::Degraded
    } else {
        DeploymentPhase::Initializing
    }
}
