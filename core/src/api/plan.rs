//! Plans: ordered lists of tasks stored in the owning object's status, so that any operator process can resume
//! them after a crash.

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

use super::Time;

/// An ordered list of tasks, executed one step per reconcile.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    /// Deterministic: derived from the owner's uid, the target hash and the strategy.
    pub id: String,
    pub phase: PlanPhase,
    pub tasks: Vec<Task>,
    /// Index of the task that failed the plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_task_index: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_task_detail: Option<FailedTaskDetail>,
}

/// Phase of a plan. Complete and Failed are final.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum PlanPhase {
    Active,
    Complete,
    Failed,
}

/// One step of a plan.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    /// The task type (`update-node-specs`, `mark-ready`, ...). Kept as a string: an unknown type read from a
    /// stored plan fails the plan, it does not make the object unreadable.
    #[serde(rename = "type")]
    pub type_: String,
    /// Deterministic: derived from the plan id, the task type and the task's index.
    pub id: String,
    pub status: TaskStatus,
    /// The task's parameters.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    #[schemars(schema_with = "free_form_object")]
    pub params: serde_json::Value,
    /// When the task was first executed.
    #[serde(default, skip_serializing_if = "Option::is_none", serialize_with = "super::timestamp::optional_time")]
    pub submitted_at: Option<Time>,
    /// After a failed attempt: the task is not retried before this time (exponential backoff).
    #[serde(default, skip_serializing_if = "Option::is_none", serialize_with = "super::timestamp::optional_time")]
    pub next_retry_at: Option<Time>,
    /// The last error the task reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default)]
    pub max_retries: i32,
    #[serde(default)]
    pub retry_count: i32,
}

/// Status of one task.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum TaskStatus {
    Pending,
    Complete,
    Failed,
}

/// The task that failed a plan, and why.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FailedTaskDetail {
    #[serde(rename = "type")]
    pub type_: String,
    pub id: String,
    pub error: String,
    pub retry_count: i32,
    pub max_retries: i32,
}

/// A JSON object whose fields the API server keeps as they are (task parameters differ per task type).
fn free_form_object(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
    })
}
