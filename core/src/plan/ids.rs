//! Deterministic ids. A plan rebuilt from the same inputs after a crash is byte-identical, so its sidecar
//! submissions are idempotent (seictl answers a running or completed id with a no-op) and its snapshots are stable.

use uuid::Uuid;

/// The namespace of every id the operator derives (UUIDv5 of the operator's URL in the URL namespace).
pub fn id_namespace() -> Uuid {
    Uuid::new_v5(&Uuid::NAMESPACE_URL, b"https://sei.io/operator")
}

/// Plan id: UUIDv5 over the owner's uid, the target hash and the plan kind (the strategy, or `init`).
pub fn plan_id(owner_uid: &str, target_hash: &str, kind: &str) -> Uuid {
    Uuid::new_v5(&id_namespace(), format!("{owner_uid}/{target_hash}/{kind}").as_bytes())
}

/// Task id: UUIDv5 over `planId/taskType/index`.
pub fn task_id(plan_id: &str, task_type: &str, index: usize) -> Uuid {
    Uuid::new_v5(&id_namespace(), format!("{plan_id}/{task_type}/{index}").as_bytes())
}

/// The id a sidecar submission carries: the task id on the first attempt, and a fresh derived id for each
/// retry — a sidecar answers a known id with the old (failed) result instead of running the task again.
pub fn submission_id(task_id: &str, retry_count: i32) -> Uuid {
    match (retry_count, Uuid::parse_str(task_id)) {
        (0, Ok(id)) => id,
        _ => Uuid::new_v5(&id_namespace(), format!("{task_id}/retry/{retry_count}").as_bytes()),
    }
}

/// The id a sidecar submission carries in attempt `attempt` (1-based) of a retried plan: the first attempt's ids
/// are [`submission_id`]'s, every later attempt's are its own — the sidecar's task table, kept on the volume the
/// retry keeps, holds the failed attempt's results under the old ids.
pub fn attempt_submission_id(task_id: &str, attempt: i32, retry_count: i32) -> Uuid {
    if attempt <= 1 {
        return submission_id(task_id, retry_count);
    }
    Uuid::new_v5(&id_namespace(), format!("{task_id}/attempt/{attempt}/retry/{retry_count}").as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_across_calls_and_distinct_across_inputs() {
        let a = plan_id("uid-1", "abc", "InPlace");
        assert_eq!(a, plan_id("uid-1", "abc", "InPlace"));
        assert_ne!(a, plan_id("uid-2", "abc", "InPlace"));
        assert_ne!(a, plan_id("uid-1", "abd", "InPlace"));
        assert_ne!(a, plan_id("uid-1", "abc", "BlueGreen"));
        assert_eq!(a.get_version_num(), 5);

        let plan = a.to_string();
        assert_eq!(task_id(&plan, "mark-ready", 2), task_id(&plan, "mark-ready", 2));
        assert_ne!(task_id(&plan, "mark-ready", 2), task_id(&plan, "mark-ready", 3));
    }

    #[test]
    fn a_retry_is_submitted_under_a_new_id_and_the_first_attempt_under_the_task_id() {
        let task = task_id("plan", "config-apply", 0).to_string();
        assert_eq!(submission_id(&task, 0).to_string(), task);
        assert_ne!(submission_id(&task, 1), submission_id(&task, 0));
        assert_ne!(submission_id(&task, 1), submission_id(&task, 2));
        assert_eq!(submission_id(&task, 2), submission_id(&task, 2));
    }

    #[test]
    fn each_attempt_of_a_retried_plan_submits_under_ids_of_its_own() {
        let task = task_id("plan", "config-apply", 0).to_string();
        assert_eq!(attempt_submission_id(&task, 1, 0), submission_id(&task, 0));
        assert_eq!(attempt_submission_id(&task, 1, 2), submission_id(&task, 2));
        let second = attempt_submission_id(&task, 2, 0);
        assert_ne!(second, submission_id(&task, 0));
        assert_ne!(second, attempt_submission_id(&task, 3, 0));
        assert_ne!(second, attempt_submission_id(&task, 2, 1));
        assert_eq!(second, attempt_submission_id(&task, 2, 0));
    }
}
