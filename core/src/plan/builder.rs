//! Assembling a plan: tasks in order, each with its deterministic id and its type's retry budget.

use serde::Serialize;

use super::ids::{plan_id, task_id};
use super::task_type::TaskType;
use crate::api::{Plan, PlanPhase, Task, TaskStatus};

/// A plan could not be built from its inputs.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("{0} has no uid: plans are built only for stored objects")]
    NotStored(String),
    #[error("{0}")]
    InvalidSpec(String),
    #[error("task parameters of {task} cannot be encoded: {message}")]
    Params { task: &'static str, message: String },
}

/// Builds a plan task by task.
pub struct PlanBuilder {
    id: String,
    tasks: Vec<Task>,
}

impl PlanBuilder {
    /// A plan for `owner_uid` moving to `target_hash`; `kind` is the strategy, or `init` for a node.
    pub fn new(owner_uid: &str, target_hash: &str, kind: &str) -> Self {
        PlanBuilder { id: plan_id(owner_uid, target_hash, kind).to_string(), tasks: Vec::new() }
    }

    /// Appends a task.
    pub fn task(mut self, task_type: TaskType, params: &impl Serialize) -> Result<Self, PlanError> {
        let params = serde_json::to_value(params)
            .map_err(|e| PlanError::Params { task: task_type.as_str(), message: e.to_string() })?;
        let index = self.tasks.len();
        self.tasks.push(Task {
            type_: task_type.as_str().to_owned(),
            id: task_id(&self.id, task_type.as_str(), index).to_string(),
            status: TaskStatus::Pending,
            params,
            submitted_at: None,
            next_retry_at: None,
            error: None,
            max_retries: task_type.max_retries(),
            retry_count: 0,
        });
        Ok(self)
    }

    pub fn build(self) -> Plan {
        Plan {
            id: self.id,
            phase: PlanPhase::Active,
            tasks: self.tasks,
            failed_task_index: None,
            failed_task_detail: None,
        }
    }
}
