//! The executor's rules, one test each, and its properties under arbitrary task outcomes.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};

use proptest::prelude::*;

use super::*;
use crate::plan::builder::PlanBuilder;
use crate::sidecar::wire::SidecarTaskType;

/// Drives a future whose every await is ready at once (the scripted runner never waits).
fn run_ready<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
    }
}

/// Answers each run with the next scripted outcome (Running once the script is exhausted), recording the
/// order in which tasks ran.
struct Script {
    outcomes: Mutex<VecDeque<Result<Progress, TaskError>>>,
    ran: Mutex<Vec<String>>,
}

impl Script {
    fn new(outcomes: impl IntoIterator<Item = Result<Progress, TaskError>>) -> Self {
        Script { outcomes: Mutex::new(outcomes.into_iter().collect()), ran: Mutex::new(Vec::new()) }
    }

    fn ran(&self) -> Vec<String> {
        self.ran.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

impl TaskRunner for Script {
    fn run(&self, task: &Task, _: TaskType) -> impl Future<Output = Result<Progress, TaskError>> + Send {
        if let Ok(mut ran) = self.ran.lock() {
            ran.push(task.id.clone());
        }
        let next = self.outcomes.lock().ok().and_then(|mut o| o.pop_front()).unwrap_or(Ok(Progress::Running));
        std::future::ready(next)
    }
}

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + seconds).expect("in range")
}

/// A plan of `n` sidecar tasks (3 retries each) and, after them, one Kubernetes task (no retries).
fn plan(n: usize) -> Plan {
    let mut builder = PlanBuilder::new("uid", "hash", "test");
    for _ in 0..n {
        builder =
            builder.task(TaskType::Sidecar(SidecarTaskType::ConfigApply), &serde_json::json!({})).expect("encodes");
    }
    builder.task(TaskType::AwaitSpecUpdate, &serde_json::json!({})).expect("encodes").build()
}

#[test]
fn a_completed_task_marks_and_continues_immediately_to_the_next() {
    let mut plan = plan(2);
    let script = Script::new([Ok(Progress::Complete), Ok(Progress::Complete), Ok(Progress::Running)]);
    assert_eq!(run_ready(execute(&mut plan, &script, at(0))), Next::RequeueAfter(POLL_INTERVAL));
    let statuses: Vec<TaskStatus> = plan.tasks.iter().map(|t| t.status).collect();
    assert_eq!(statuses, [TaskStatus::Complete, TaskStatus::Complete, TaskStatus::Pending]);
    assert_eq!(script.ran().len(), 3, "three tasks ran in one step");
    assert!(plan.tasks.iter().all(|t| t.submitted_at == Some(Time(at(0)))));
}

#[test]
fn all_tasks_complete_completes_the_plan() {
    let mut plan = plan(1);
    let script = Script::new([Ok(Progress::Complete), Ok(Progress::Complete)]);
    assert_eq!(run_ready(execute(&mut plan, &script, at(0))), Next::Finished(PlanPhase::Complete));
    assert_eq!(plan.phase, PlanPhase::Complete);
}

#[test]
fn a_running_task_is_polled_again_after_the_poll_interval() {
    let mut plan = plan(1);
    let script = Script::new([Ok(Progress::Running)]);
    assert_eq!(run_ready(execute(&mut plan, &script, at(0))), Next::RequeueAfter(POLL_INTERVAL));
    assert_eq!(plan.tasks[0].status, TaskStatus::Pending);
    assert_eq!(plan.phase, PlanPhase::Active);
}

#[test]
fn backoff_starts_at_five_seconds_doubles_and_caps_at_thirty() {
    let seconds: Vec<u64> = (1..=6).map(|n| backoff(n).as_secs()).collect();
    assert_eq!(seconds, [5, 10, 20, 30, 30, 30]);
}

#[test]
fn a_failed_attempt_retries_after_backoff_while_retries_remain_then_fails_the_plan() {
    let mut plan = plan(1);
    let failure = || Ok(Progress::Failed("config rejected".into()));
    let script = Script::new([failure(), failure(), failure(), failure()]);

    assert_eq!(run_ready(execute(&mut plan, &script, at(0))), Next::RequeueAfter(Duration::from_secs(5)));
    assert_eq!(plan.tasks[0].retry_count, 1);
    assert_eq!(plan.tasks[0].error.as_deref(), Some("config rejected"));
    // Woken early (a watch event): the backoff is honoured, nothing runs.
    assert_eq!(run_ready(execute(&mut plan, &script, at(2))), Next::RequeueAfter(Duration::from_secs(3)));
    assert_eq!(script.ran().len(), 1);

    assert_eq!(run_ready(execute(&mut plan, &script, at(5))), Next::RequeueAfter(Duration::from_secs(10)));
    assert_eq!(run_ready(execute(&mut plan, &script, at(15))), Next::RequeueAfter(Duration::from_secs(20)));
    assert_eq!(plan.tasks[0].retry_count, 3);
    assert_eq!(run_ready(execute(&mut plan, &script, at(35))), Next::Finished(PlanPhase::Failed));

    assert_eq!(plan.phase, PlanPhase::Failed);
    assert_eq!(plan.tasks[0].status, TaskStatus::Failed);
    assert_eq!(plan.failed_task_index, Some(0));
    let detail = plan.failed_task_detail.as_ref().expect("detail recorded");
    assert_eq!((detail.type_.as_str(), detail.retry_count, detail.max_retries), ("config-apply", 3, 3));
    assert_eq!(detail.error, "config rejected");
}

#[test]
fn a_transient_error_retries_on_the_next_poll_without_spending_a_retry() {
    let mut plan = plan(1);
    let script = Script::new([Err(TaskError::Transient("sidecar unreachable".into())), Ok(Progress::Complete)]);
    assert_eq!(run_ready(execute(&mut plan, &script, at(0))), Next::RequeueAfter(POLL_INTERVAL));
    assert_eq!(plan.tasks[0].retry_count, 0);
    assert_eq!(plan.tasks[0].error.as_deref(), Some("sidecar unreachable"));
    run_ready(execute(&mut plan, &script, at(5)));
    assert_eq!(plan.tasks[0].status, TaskStatus::Complete);
    assert_eq!(plan.tasks[0].error, None, "a completed task carries no stale error");
}

#[test]
fn a_terminal_error_fails_the_plan_at_once() {
    let mut plan = plan(2);
    let script = Script::new([Ok(Progress::Complete), Err(TaskError::Terminal("entrant failed".into()))]);
    assert_eq!(run_ready(execute(&mut plan, &script, at(0))), Next::Finished(PlanPhase::Failed));
    assert_eq!(plan.failed_task_index, Some(1));
    assert_eq!(plan.tasks[1].retry_count, 0);
}

#[test]
fn a_task_without_retries_fails_the_plan_on_its_first_failure() {
    let mut plan = plan(0);
    let script = Script::new([Ok(Progress::Failed("no".into()))]);
    assert_eq!(run_ready(execute(&mut plan, &script, at(0))), Next::Finished(PlanPhase::Failed));
}

#[test]
fn an_unknown_task_type_is_terminal() {
    let mut plan = plan(1);
    plan.tasks[0].type_ = "submit-halt-signal".into();
    let script = Script::new([]);
    assert_eq!(run_ready(execute(&mut plan, &script, at(0))), Next::Finished(PlanPhase::Failed));
    assert!(script.ran().is_empty(), "nothing runs for an unknown type");
    let detail = plan.failed_task_detail.expect("detail");
    assert!(detail.error.contains("unknown task type \"submit-halt-signal\""), "{}", detail.error);
}

#[test]
fn complete_and_failed_plans_never_run_again() {
    for phase in [PlanPhase::Complete, PlanPhase::Failed] {
        let mut plan = plan(1);
        plan.phase = phase;
        let before = plan.clone();
        let script = Script::new([Ok(Progress::Complete)]);
        assert_eq!(run_ready(execute(&mut plan, &script, at(0))), Next::Finished(phase));
        assert_eq!(plan, before);
        assert!(script.ran().is_empty());
    }
}

fn outcome() -> impl Strategy<Value = Result<Progress, TaskError>> {
    prop_oneof![
        3 => Just(Ok(Progress::Running)),
        4 => Just(Ok(Progress::Complete)),
        3 => Just(Ok(Progress::Failed("failed".into()))),
        2 => Just(Err(TaskError::Transient("transient".into()))),
        1 => Just(Err(TaskError::Terminal("terminal".into()))),
    ]
}

proptest! {
    #[test]
    fn executor_properties_hold_under_any_outcomes(
        tasks in 1usize..6,
        outcomes in proptest::collection::vec(outcome(), 0..60),
        gaps in proptest::collection::vec(0i64..40, 1..60),
    ) {
        let mut plan = plan(tasks);
        let script = Script::new(outcomes);
        let mut now = 0;
        let mut finished: Option<Plan> = None;
        for gap in gaps {
            now += gap;
            run_ready(execute(&mut plan, &script, at(now)));
            // Retries never exceed the budget.
            for task in &plan.tasks {
                prop_assert!(task.retry_count <= task.max_retries, "{task:?}");
            }
            // Tasks complete in order: Complete* then at most one non-Pending, then Pending*.
            let first_open = plan.tasks.iter().position(|t| t.status != TaskStatus::Complete).unwrap_or(plan.tasks.len());
            prop_assert!(plan.tasks[first_open.min(plan.tasks.len())..].iter().skip(1).all(|t| t.status == TaskStatus::Pending));
            prop_assert_eq!(plan.phase == PlanPhase::Complete, first_open == plan.tasks.len());
            prop_assert_eq!(plan.phase == PlanPhase::Failed, plan.tasks.iter().any(|t| t.status == TaskStatus::Failed));
            // Terminal states are absorbing.
            if let Some(done) = &finished {
                prop_assert_eq!(&plan, done);
            } else if plan.phase != PlanPhase::Active {
                finished = Some(plan.clone());
            }
        }
    }

    #[test]
    fn plan_ids_are_stable_across_rebuilds(uid in "[a-z0-9-]{1,36}", hash in "[0-9a-f]{16}", tasks in 0usize..5) {
        let build = || {
            let mut builder = PlanBuilder::new(&uid, &hash, "BlueGreen");
            for _ in 0..tasks {
                builder = builder.task(TaskType::TeardownNodes, &serde_json::json!({"nodes": []})).expect("encodes");
            }
            builder.build()
        };
        prop_assert_eq!(build(), build());
    }
}
