//! User edits aimed at moments of the operator's: a deployment edit armed to land right after the operator's
//! n-th write of some kind — a status write of the deployment, a write of one of its SeiNodes, of its Service,
//! or the status write that records a plan task Complete. A harness step runs between simulated ticks, and a
//! reconcile (and the next one it requeues at once) runs within one: an edit made between ticks can never land
//! between two reconciles of one tick, which is where ordering bugs live (a plan that takes one more step in
//! the reconcile that supersedes it). An aimed edit lands inside the tick, right after the write it aims at,
//! before the operator's next call — as a user's `kubectl edit` can land between any two API calls.

mod fire;

pub use fire::{after_write, apply};

use std::collections::BTreeMap;
use std::time::Duration;

use crate::apiserver::json::Fields;
use sei_operator_core::cluster::ObjectRef;
use serde::Deserialize;
use serde_json::Value;

/// Which write of the operator's an aimed edit lands right after.
#[derive(Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Moment {
    /// Whose writes are counted: `statusWrite` (the deployment's status), `node` (a SeiNode the deployment
    /// owns or labels), `service` (the deployment's Service: a traffic switch).
    pub write: MomentWrite,
    /// Lands right after the n-th such write since the edit was armed (1: the next one).
    #[serde(default = "one")]
    pub nth: u32,
    /// Only status writes that newly record a plan task of this type Complete count (`write: statusWrite`).
    #[serde(default)]
    pub task_completed: Option<String>,
    /// When the moment has not come within this long, the edit is made then anyway (default 10 minutes): a
    /// generated run's template ends the same whether its moment came or not.
    #[serde(default, deserialize_with = "crate::scenario::optional_duration")]
    pub within: Option<Duration>,
}

fn one() -> u32 {
    1
}

/// The kinds of write a [`Moment`] counts.
#[derive(Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum MomentWrite {
    StatusWrite,
    Node,
    Service,
}

impl Moment {
    /// How long the runner waits for the moment before making the edit anyway.
    pub fn deadline(&self) -> Duration {
        self.within.unwrap_or(Duration::from_secs(600))
    }
}

/// An armed edit of a SeiNodeDeployment.
#[derive(Clone, Debug, PartialEq)]
pub struct AimedEdit {
    pub deployment: ObjectRef,
    pub moment: Moment,
    /// Dotted path → new value, as a scenario's `edit.set`.
    pub set: BTreeMap<String, Value>,
    /// Matching writes seen so far.
    pub seen: u32,
    /// Plan tasks of `moment.taskCompleted`'s type already Complete in the last status seen (by task id).
    pub completed: Vec<String>,
    /// Made (at its moment, or by the runner at the deadline).
    pub fired: bool,
}

impl AimedEdit {
    /// An edit armed now, against the deployment as the store holds it (`stored`, `None` when it is gone).
    pub fn arm(stored: Option<&Value>, deployment: ObjectRef, moment: Moment, set: BTreeMap<String, Value>) -> Self {
        let completed = match (&moment.task_completed, stored) {
            (Some(task), Some(stored)) => completed_tasks(stored, task),
            _ => Vec::new(),
        };
        AimedEdit { deployment, moment, set, seen: 0, completed, fired: false }
    }

    /// Whether the operator's write of `key` (`verb`, now stored as `stored`) is this edit's moment.
    pub(crate) fn matches(&mut self, key: &ObjectRef, verb: &str, stored: &Value) -> bool {
        if key.namespace != self.deployment.namespace {
            return false;
        }
        let name = self.deployment.name.as_str();
        let counts = match self.moment.write {
            MomentWrite::StatusWrite => {
                if key != &self.deployment || verb != "replace-status" {
                    return false;
                }
                match &self.moment.task_completed {
                    None => true,
                    Some(task) => {
                        let now = completed_tasks(stored, task);
                        let new = now.iter().any(|id| !self.completed.contains(id));
                        self.completed = now;
                        new
                    }
                }
            }
            MomentWrite::Node => {
                key.kind == "SeiNode"
                    && stored
                        .at(&format!(
                            "/metadata/labels/{}",
                            sei_operator_core::objects::meta::LABEL_DEPLOYMENT.replace('/', "~1")
                        ))
                        .and_then(Value::as_str)
                        == Some(name)
            }
            MomentWrite::Service => {
                key.kind == "Service"
                    && key.name == sei_operator_core::objects::names::deployment_service(name)
                    && verb != "delete"
            }
        };
        if counts {
            self.seen += 1;
        }
        counts && self.seen >= self.moment.nth.max(1)
    }
}

/// The ids of `stored`'s plan tasks of type `task` that are Complete.
fn completed_tasks(stored: &Value, task: &str) -> Vec<String> {
    stored
        .at("/status/plan/tasks")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|t| {
            t.get("type").and_then(Value::as_str) == Some(task)
                && t.get("status").and_then(Value::as_str) == Some("Complete")
        })
        .filter_map(|t| t.get("id").and_then(Value::as_str).map(str::to_owned))
        .collect()
}
