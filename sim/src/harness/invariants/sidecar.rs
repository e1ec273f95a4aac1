//! Sidecars: one writer of sidecar tasks, and no task's work started twice.

use super::*;

/// Invariant 5: only the SeiNode controller calls sidecars — of every operator replica (`crate::operator_host::replicas`: the
/// caller tag is `<replica host>:<kind reconciled>`).
pub fn single_writer(world: &WorldState, observed: &mut ObservedObjects) -> Result<(), InvariantViolation> {
    let new = world.ledger.sidecar_calls.get(observed.calls_checked..).unwrap_or(&[]);
    observed.calls_checked = world.ledger.sidecar_calls.len();
    let wrong = |caller: &str| {
        crate::operator_host::replicas::replica_of_caller(caller).is_some()
            && caller.split_once(':').is_some_and(|(_, role)| Some(role) != SIDECAR_WRITER.split(':').nth(1))
    };
    match new.iter().find(|c| wrong(&c.caller)) {
        Some(call) => Err(InvariantViolation::new(
            SINGLE_WRITER,
            format!("{} called {} {} {}", call.caller, call.method, call.host, call.path),
        )),
        None => Ok(()),
    }
}

/// docs/design.md §4 (ids are deterministic, so a rebuilt plan's submissions are idempotent) and §6 (mark-ready goes
/// only to a sidecar that needs it): the operator never makes a sidecar process start the same work twice. A task id
/// whose first run it starts twice, or a task type it starts under a second id while the first has not failed,
/// means the operator lost track of work it had submitted — after a crash, a stale read or a Conflict — and
/// started it again. A re-run of a failed task (its id again, run 2 and up: sei-protocol/seictl
/// `sidecar/engine/engine.go`, `Engine.Submit`) or a retry of failed work under a new id is not a duplicate, and
/// neither is a submission to a later sidecar process.
pub fn no_sidecar_work_started_twice(
    world: &WorldState,
    observed: &mut ObservedObjects,
) -> Result<(), InvariantViolation> {
    let new = world.ledger.sidecar_submissions.get(observed.submissions_checked..).unwrap_or(&[]);
    observed.submissions_checked = world.ledger.sidecar_submissions.len();
    // Only the operator is judged: a test probing a sidecar may submit what it likes.
    for submission in new.iter().filter(|s| s.started && s.caller.starts_with("operator")) {
        let process = world
            .plane
            .pods
            .get(&submission.pod)
            .and_then(|p| p.sidecar.as_ref())
            .filter(|p| p.incarnation == submission.incarnation);
        let tasks = process.and_then(|_| crate::node::sidecar::process::tasks(world, &submission.pod));
        let key = (submission.pod.clone(), submission.incarnation, submission.task_type.clone());
        let earlier = observed.started.entry(key).or_default();
        // Work still running is never asked again; completed work is, for the config tasks, when the config
        // changed (a config plan writes it again and restarts seid: `no-needless-seid-restart` judges that), but a
        // process is marked ready once.
        let once = submission.task_type == SidecarTaskType::MarkReady.as_str();
        let unfinished = |id: &uuid::Uuid| {
            tasks.and_then(|t| t.get(id)).is_some_and(|t| match t.outcome {
                None => true,
                Some(Ok(())) => once,
                Some(Err(_)) => false,
            })
        };
        let again = earlier.iter().find(|id| if **id == submission.id { submission.run <= 1 } else { unfinished(id) });
        if let Some(first) = again {
            return Err(InvariantViolation::new(
                NO_WORK_STARTED_TWICE,
                format!(
                    "{} (sidecar #{}) started {} as {} after it had started it as {first}",
                    submission.pod, submission.incarnation, submission.task_type, submission.id
                ),
            ));
        }
        if !earlier.contains(&submission.id) {
            earlier.push(submission.id);
        }
    }
    Ok(())
}
