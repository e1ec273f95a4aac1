//! Every task type a plan can hold, with its wire name. A stored plan keeps task types as strings; one that
//! names no type here fails its plan (terminal), it never panics the operator.

use crate::sidecar::wire::SidecarTaskType;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TaskType {
    // SeiNodeDeployment rollouts: Kubernetes objects only, never a sidecar.
    UpdateNodeSpecs,
    UpdateNodeSpecsAtHeight,
    AwaitSpecUpdate,
    MarkNodesReady,
    CreateEntrantNodes,
    AwaitNodesRunning,
    AwaitNodesCaughtUp,
    SwitchTraffic,
    TeardownNodes,
    // SeiNode initialization: bootstrap and workload objects.
    CreateBootstrapService,
    CreateBootstrapJob,
    AwaitBootstrapJob,
    TeardownBootstrap,
    CreateWorkload,
    // SeiNode initialization: tasks submitted to the node's own sidecar.
    Sidecar(SidecarTaskType),
    // SeiNode initialization: tasks submitted to the bootstrap Job's pod's sidecar (named `bootstrap-<type>`).
    BootstrapSidecar(SidecarTaskType),
}

impl TaskType {
    const KUBERNETES: [TaskType; 14] = [
        TaskType::UpdateNodeSpecs,
        TaskType::UpdateNodeSpecsAtHeight,
        TaskType::AwaitSpecUpdate,
        TaskType::MarkNodesReady,
        TaskType::CreateEntrantNodes,
        TaskType::AwaitNodesRunning,
        TaskType::AwaitNodesCaughtUp,
        TaskType::SwitchTraffic,
        TaskType::TeardownNodes,
        TaskType::CreateBootstrapService,
        TaskType::CreateBootstrapJob,
        TaskType::AwaitBootstrapJob,
        TaskType::TeardownBootstrap,
        TaskType::CreateWorkload,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskType::UpdateNodeSpecs => "update-node-specs",
            TaskType::UpdateNodeSpecsAtHeight => "update-node-specs-at-height",
            TaskType::AwaitSpecUpdate => "await-spec-update",
            TaskType::MarkNodesReady => "mark-nodes-ready",
            TaskType::CreateEntrantNodes => "create-entrant-nodes",
            TaskType::AwaitNodesRunning => "await-nodes-running",
            TaskType::AwaitNodesCaughtUp => "await-nodes-caught-up",
            TaskType::SwitchTraffic => "switch-traffic",
            TaskType::TeardownNodes => "teardown-nodes",
            TaskType::CreateBootstrapService => "create-bootstrap-service",
            TaskType::CreateBootstrapJob => "create-bootstrap-job",
            TaskType::AwaitBootstrapJob => "await-bootstrap-job",
            TaskType::TeardownBootstrap => "teardown-bootstrap",
            TaskType::CreateWorkload => "create-workload",
            TaskType::Sidecar(sidecar) => sidecar.as_str(),
            TaskType::BootstrapSidecar(sidecar) => match sidecar {
                SidecarTaskType::SnapshotRestore => "bootstrap-snapshot-restore",
                SidecarTaskType::ConfigApply => "bootstrap-config-apply",
                SidecarTaskType::DiscoverPeers => "bootstrap-discover-peers",
                SidecarTaskType::ConfigValidate => "bootstrap-config-validate",
                SidecarTaskType::MarkReady => "bootstrap-mark-ready",
                SidecarTaskType::AwaitCondition => "bootstrap-await-condition",
                SidecarTaskType::RestartSeid => "bootstrap-restart-seid",
            },
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::KUBERNETES
            .into_iter()
            .find(|t| t.as_str() == name)
            .or_else(|| SidecarTaskType::parse(name).map(TaskType::Sidecar))
            .or_else(|| SidecarTaskType::ALL.into_iter().map(TaskType::BootstrapSidecar).find(|t| t.as_str() == name))
    }

    /// How many times a failed attempt is retried before the plan fails. Only sidecar tasks report failures
    /// that a retry can cure; the others either wait (poll again) or fail for good.
    pub fn max_retries(self) -> i32 {
        match self {
            // A restart that failed (seid not back within seictl's 5 minutes) is reported, not repeated: another
            // SIGTERM would only set a slow node back further.
            TaskType::Sidecar(SidecarTaskType::RestartSeid) => 0,
            TaskType::Sidecar(_) | TaskType::BootstrapSidecar(_) => 3,
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_task_type_round_trips_its_name() {
        let all = TaskType::KUBERNETES
            .into_iter()
            .chain(SidecarTaskType::ALL.into_iter().map(TaskType::Sidecar))
            .chain(SidecarTaskType::ALL.into_iter().map(TaskType::BootstrapSidecar));
        for task_type in all {
            assert_eq!(TaskType::parse(task_type.as_str()), Some(task_type), "{}", task_type.as_str());
        }
        assert_eq!(TaskType::parse("submit-halt-signal"), None, "the six-task HardFork plan is not built");
    }
}
