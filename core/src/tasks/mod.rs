//! Every task type of a plan, executed against the traits: deployment tasks touch only Kubernetes objects
//! (through `Cluster`); only SeiNode tasks call a sidecar (through `Sidecar`) — the single-writer rule, held by the
//! types: a deployment task runner has no sidecar to call.
//!
//! Every task is idempotent (it runs again after a crash) and reports [`Progress`]; an error is transient
//! (retry on the next poll) unless retrying cannot help.

mod deployment;
pub mod mark_ready;
mod node;

pub use deployment::DeploymentTasks;
pub use node::NodeTasks;

use serde::de::DeserializeOwned;

use crate::api::Task;
use crate::cluster::ClusterError;
use crate::plan::executor::{Progress, TaskError};
use crate::sidecar::SidecarError;

/// A task's parameters, decoded; malformed parameters cannot get better by retrying.
fn params<T: DeserializeOwned>(task: &Task) -> Result<T, TaskError> {
    serde_json::from_value(task.params.clone())
        .map_err(|e| TaskError::Terminal(format!("task {} has malformed parameters: {e}", task.type_)))
}

/// API errors: conflicts and outages pass; an invalid object or an unexpected absence does not.
fn api_error(error: ClusterError) -> TaskError {
    match error {
        // A missing permission fails no plan: the task waits, its error naming the permission, until the RBAC rule
        // is granted — the rollout then carries on where it stood.
        ClusterError::Transient(_) | ClusterError::Conflict(_) | ClusterError::Forbidden { .. } => {
            TaskError::Transient(error.to_string())
        }
        other => TaskError::Terminal(other.to_string()),
    }
}

fn sidecar_error(error: SidecarError) -> TaskError {
    if error.is_transient() { TaskError::Transient(error.to_string()) } else { TaskError::Terminal(error.to_string()) }
}

/// Complete when every item is done, else Running.
fn all_done(done: impl IntoIterator<Item = bool>) -> Progress {
    if done.into_iter().all(|d| d) { Progress::Complete } else { Progress::Running }
}
