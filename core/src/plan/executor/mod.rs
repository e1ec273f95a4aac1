//! The plan executor (docs/design.md §4): one step per reconcile. The current task is the first one not Complete; it is
//! executed (idempotently) and polled. Running → come back later; Complete → mark it and go straight on to the
//! next task; Failed → retry with exponential backoff (5 s doubling, capped at 30 s) while
//! `retryCount < maxRetries`, else fail the plan with `failedTaskIndex` / `failedTaskDetail`. A transient error
//! retries on the next poll; a terminal one (an unknown task type among them) fails the plan. Complete and Failed
//! plans never change again.
//!
//! [`record`] is the whole decision, a pure function over values; [`execute`] is the thin async shell that runs
//! tasks through a [`TaskRunner`]. Neither writes anything: the caller makes the one status write of its
//! reconcile with the plan this leaves behind.

use std::future::Future;
use std::time::Duration;

use super::task_type::TaskType;
use crate::api::{FailedTaskDetail, Plan, PlanPhase, Task, TaskStatus, Time};
use crate::clock::{SignedDuration, Timestamp};

/// How soon a running task is polled again.
pub const POLL_INTERVAL: Duration = Duration::from_secs(5);
const BACKOFF_BASE: Duration = Duration::from_secs(5);
const BACKOFF_CAP: Duration = Duration::from_secs(30);

/// What executing and polling a task found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Progress {
    Running,
    Complete,
    /// The attempt failed; a retry may succeed.
    Failed(String),
}

/// Why a task could not be executed or polled.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TaskError {
    /// Try again on the next poll, without spending a retry (API server or sidecar briefly unreachable).
    #[error("{0}")]
    Transient(String),
    /// Retrying cannot help: the plan fails.
    #[error("{0}")]
    Terminal(String),
}

/// What the reconcile should do after a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// The current task completed: run the next one now, in this reconcile.
    Continue,
    /// Come back after this long.
    RequeueAfter(Duration),
    /// The plan reached a final phase.
    Finished(PlanPhase),
}

/// Backoff before retry number `retry_count` (1-based): 5 s, 10 s, 20 s, then 30 s.
pub fn backoff(retry_count: i32) -> Duration {
    let doublings = u32::try_from(retry_count.saturating_sub(1)).unwrap_or(0).min(16);
    BACKOFF_BASE.saturating_mul(1 << doublings).min(BACKOFF_CAP)
}

/// Index of the task to run: the first one not Complete, while the plan is Active.
pub fn current_task(plan: &Plan) -> Option<usize> {
    if plan.phase != PlanPhase::Active {
        return None;
    }
    plan.tasks.iter().position(|t| t.status != TaskStatus::Complete)
}

/// How long a task must still wait out its backoff; `None` when it may run now.
pub fn backoff_remaining(task: &Task, now: Timestamp) -> Option<Duration> {
    let retry_at = task.next_retry_at.as_ref()?.0;
    let remaining = retry_at.duration_since(now);
    (remaining > SignedDuration::ZERO).then(|| Duration::try_from(remaining).unwrap_or(POLL_INTERVAL))
}

/// Records the result of running task `index` of `plan` at `now`, and says what comes next.
pub fn record(plan: &mut Plan, index: usize, result: Result<Progress, TaskError>, now: Timestamp) -> Next {
    if plan.phase != PlanPhase::Active {
        return Next::Finished(plan.phase);
    }
    let last = index + 1 == plan.tasks.len();
    let Some(task) = plan.tasks.get_mut(index) else {
        return Next::Finished(plan.phase);
    };
    task.submitted_at.get_or_insert(Time(now));
    match result {
        Ok(Progress::Running) => Next::RequeueAfter(POLL_INTERVAL),
        Ok(Progress::Complete) => {
            task.status = TaskStatus::Complete;
            task.error = None;
            task.next_retry_at = None;
            if last {
                plan.phase = PlanPhase::Complete;
                Next::Finished(PlanPhase::Complete)
            } else {
                Next::Continue
            }
        }
        Err(TaskError::Transient(error)) => {
            task.error = Some(error);
            Next::RequeueAfter(POLL_INTERVAL)
        }
        Ok(Progress::Failed(error)) if task.retry_count < task.max_retries => {
            task.retry_count += 1;
            let wait = backoff(task.retry_count);
            task.error = Some(error);
            task.next_retry_at = Some(Time(now.checked_add(wait).unwrap_or(now)));
            Next::RequeueAfter(wait)
        }
        Ok(Progress::Failed(error)) | Err(TaskError::Terminal(error)) => {
            task.status = TaskStatus::Failed;
            task.error = Some(error.clone());
            task.next_retry_at = None;
            plan.failed_task_detail = Some(FailedTaskDetail {
                type_: task.type_.clone(),
                id: task.id.clone(),
                error,
                retry_count: task.retry_count,
                max_retries: task.max_retries,
            });
            plan.failed_task_index = i32::try_from(index).ok();
            plan.phase = PlanPhase::Failed;
            Next::Finished(PlanPhase::Failed)
        }
    }
}

/// Executes and polls one task. Must be idempotent: after a crash the same task runs again.
pub trait TaskRunner {
    fn run(&self, task: &Task, task_type: TaskType) -> impl Future<Output = Result<Progress, TaskError>> + Send;
}

/// Runs the plan from its current task until a task is still running, must wait, or the plan is finished.
pub async fn execute<R: TaskRunner>(plan: &mut Plan, runner: &R, now: Timestamp) -> Next {
    // Each pass either finishes or completes one task, so this is bounded by the number of tasks.
    for _ in 0..=plan.tasks.len() {
        let Some(index) = current_task(plan) else {
            if plan.phase == PlanPhase::Active {
                // Every task is Complete (a plan written before its last task's completion was recorded).
                plan.phase = PlanPhase::Complete;
            }
            return Next::Finished(plan.phase);
        };
        let task = &plan.tasks[index];
        if let Some(wait) = backoff_remaining(task, now) {
            return Next::RequeueAfter(wait);
        }
        let result = match TaskType::parse(&task.type_) {
            Some(task_type) => runner.run(task, task_type).await,
            None => Err(TaskError::Terminal(format!("unknown task type {:?}", task.type_))),
        };
        match record(plan, index, result, now) {
            Next::Continue => continue,
            other => return other,
        }
    }
    Next::RequeueAfter(POLL_INTERVAL)
}

#[cfg(test)]
mod tests;
