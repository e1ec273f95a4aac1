//! The three summary conditions both kinds carry for tools that know nothing of Sei: `Ready` (what `kubectl wait
//! --for=condition=Ready` waits for) and kstatus's abnormal-true pair `Reconciling` / `Stalled` (what Argo CD,
//! Flux, `kpt live` and Helm 4's `--wait` read).
//!
//! kstatus (kubernetes-sigs/cli-utils `pkg/kstatus/status/generic.go`, `checkGenericProperties`) decides a custom
//! resource's status from, in order: a deletion timestamp (Terminating); `status.observedGeneration` differing
//! from `metadata.generation` (InProgress); the first condition in the list that is `Reconciling=True`
//! (InProgress) or `Stalled=True` (Failed); otherwise Current. So the two are never True together here, and a
//! status that describes the current generation — converged, failed or refused — says so with
//! `observedGeneration`.
//!
//! These are summaries of what the detailed conditions and the phase already say; they are derived from them
//! in one place, after every other field of the status is decided.

use crate::api::{Condition, DeploymentPhase, SeiNodeDeploymentStatus, SeiNodePhase, SeiNodeStatus};
use crate::clock::Timestamp;
use crate::objects::meta::{ConditionUpdate, find_condition, set_condition};

/// Condition: the object is what its spec asks for, and serving.
pub const READY: &str = "Ready";
/// Condition (kstatus): the controller is still working toward the spec.
pub const RECONCILING: &str = "Reconciling";
/// Condition (kstatus): the controller cannot make progress without someone acting.
pub const STALLED: &str = "Stalled";

/// What a summary condition says: its status, reason and message.
struct Summary {
    status: bool,
    reason: String,
    message: String,
}

impl Summary {
    fn on(reason: impl Into<String>, message: impl Into<String>) -> Self {
        Summary { status: true, reason: reason.into(), message: message.into() }
    }

    fn off(reason: impl Into<String>, message: impl Into<String>) -> Self {
        Summary { status: false, reason: reason.into(), message: message.into() }
    }
}

fn write(conditions: &mut Vec<Condition>, type_: &str, summary: Summary, generation: Option<i64>, now: Timestamp) {
    let update = ConditionUpdate {
        type_,
        status: summary.status,
        reason: &summary.reason,
        message: summary.message,
        observed_generation: generation,
    };
    set_condition(conditions, update, now);
}

/// The message of condition `type_`, or `fallback` when it is absent.
fn message_of(conditions: &[Condition], type_: &str, fallback: &str) -> String {
    find_condition(conditions, type_).map_or_else(|| fallback.to_owned(), |c| c.message.clone())
}

/// Sets Ready / Reconciling / Stalled on a SeiNodeDeployment's status from its phase and its conditions.
///
/// - Stalled: the rollout failed and the spec still asks for it (phase Degraded by a failed target), the rollout
///   is reported Stalled, the spec was refused (`InvalidUpdateStrategy`), or nodes failed (Degraded, Failed).
/// - Reconciling: otherwise, while nodes are made or a rollout runs (Pending, Initializing, Upgrading).
/// - Ready: phase Ready with the status describing the current generation, and nothing stalled.
pub fn summarize_deployment(status: &mut SeiNodeDeploymentStatus, generation: Option<i64>, now: Timestamp) {
    use crate::rollout::vocabulary::{
        NODES_READY, REASON_INVALID_UPDATE_STRATEGY, REASON_STALLED, ROLLOUT_IN_PROGRESS,
    };
    let phase = status.phase.unwrap_or_default();
    let rollout = find_condition(&status.conditions, ROLLOUT_IN_PROGRESS);
    let nodes = message_of(&status.conditions, NODES_READY, "no nodes observed yet");
    let stalled = match rollout {
        Some(c) if c.reason == REASON_INVALID_UPDATE_STRATEGY => Some(Summary::on(c.reason.clone(), c.message.clone())),
        Some(c) if c.status == "True" && c.reason == REASON_STALLED => {
            Some(Summary::on("RolloutStalled", c.message.clone()))
        }
        _ if status.failed_target_hash.is_some() && phase == DeploymentPhase::Degraded => {
            let message = rollout.map_or_else(|| "the rollout failed".to_owned(), |c| c.message.clone());
            Some(Summary::on("RolloutFailed", message))
        }
        _ if matches!(phase, DeploymentPhase::Degraded | DeploymentPhase::Failed) => {
            Some(Summary::on(format!("Nodes{}", phase.as_str()), nodes.clone()))
        }
        _ => None,
    };
    let working =
        matches!(phase, DeploymentPhase::Pending | DeploymentPhase::Initializing | DeploymentPhase::Upgrading);
    let reconciling = match (&stalled, working) {
        (None, true) => {
            let message = match (phase, rollout) {
                (DeploymentPhase::Upgrading, Some(c)) => c.message.clone(),
                _ => nodes.clone(),
            };
            Summary::on(phase.as_str(), message)
        }
        (Some(_), _) => Summary::off("Stalled", "no progress is possible without a change: see the Stalled condition"),
        (None, false) => Summary::off(phase.as_str(), nodes.clone()),
    };
    let current = generation.is_some() && status.observed_generation == generation;
    let ready = if let Some(stalled) = &stalled {
        // Serving, maybe, but not what the spec asks for.
        Summary::off(stalled.reason.clone(), stalled.message.clone())
    } else if phase == DeploymentPhase::Ready && current {
        Summary::on(phase.as_str(), nodes)
    } else if phase == DeploymentPhase::Ready {
        Summary::off("LatestGenerationNotObserved", "the operator has not acted on the latest spec yet")
    } else {
        Summary::off(phase.as_str(), nodes)
    };
    let stalled = stalled.unwrap_or_else(|| Summary::off("Progressing", "nothing is stuck"));
    write(&mut status.conditions, READY, ready, generation, now);
    write(&mut status.conditions, RECONCILING, reconciling, generation, now);
    write(&mut status.conditions, STALLED, stalled, generation, now);
}

/// Sets Ready / Reconciling / Stalled on a SeiNode's status from its phase and its `UpToDate` condition.
///
/// - Ready: Running and up to date (its pod on the current template and Ready, the spec's config).
/// - Reconciling: Pending or Initializing, or Running while a change reaches the pod.
/// - Stalled: Failed (the init plan failed; see `Initialized`).
pub fn summarize_node(status: &mut SeiNodeStatus, generation: Option<i64>, now: Timestamp) {
    use crate::controller::{INITIALIZED, UP_TO_DATE};
    let phase = status.phase.unwrap_or_default();
    let up_to_date = find_condition(&status.conditions, UP_TO_DATE)
        .filter(|c| c.observed_generation == generation)
        .map(|c| (c.status == "True", c.reason.clone(), c.message.clone()));
    let node_phase = phase.as_str();
    let (ready, reconciling, stalled) = match phase {
        SeiNodePhase::Failed => (
            Summary::off(node_phase, "the node failed"),
            Summary::off("Stalled", "no progress is possible without a change: see the Stalled condition"),
            Summary::on("InitFailed", message_of(&status.conditions, INITIALIZED, "the init plan failed")),
        ),
        SeiNodePhase::Running => match up_to_date {
            Some((true, _, message)) => {
                (Summary::on(node_phase, message.clone()), Summary::off(node_phase, message), not_stalled())
            }
            Some((false, reason, message)) => {
                (Summary::off(reason.clone(), message.clone()), Summary::on(reason, message), not_stalled())
            }
            None => {
                let message = "the operator has not checked the pod against the current spec yet";
                (Summary::off("UpToDateUnknown", message), Summary::on("UpToDateUnknown", message), not_stalled())
            }
        },
        SeiNodePhase::Pending | SeiNodePhase::Initializing => {
            let message = message_of(&status.conditions, INITIALIZED, "the init plan has not started");
            (Summary::off(node_phase, message.clone()), Summary::on(node_phase, message), not_stalled())
        }
        SeiNodePhase::Terminating => {
            (Summary::off(node_phase, "being deleted"), Summary::off(node_phase, "being deleted"), not_stalled())
        }
    };
    write(&mut status.conditions, READY, ready, generation, now);
    write(&mut status.conditions, RECONCILING, reconciling, generation, now);
    write(&mut status.conditions, STALLED, stalled, generation, now);
}

fn not_stalled() -> Summary {
    Summary::off("Progressing", "nothing is stuck")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::RolloutStatus;
    use crate::rollout::vocabulary::{REASON_INVALID_UPDATE_STRATEGY, REASON_STALLED, ROLLOUT_IN_PROGRESS};

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(second).expect("in range")
    }

    fn status_of(conditions: &[Condition], type_: &str) -> (String, String) {
        let c = find_condition(conditions, type_).expect(type_);
        (c.status.clone(), c.reason.clone())
    }

    fn deployment(phase: DeploymentPhase, observed: i64) -> SeiNodeDeploymentStatus {
        SeiNodeDeploymentStatus { phase: Some(phase), observed_generation: Some(observed), ..Default::default() }
    }

    fn set_rollout_condition(status: &mut SeiNodeDeploymentStatus, on: bool, reason: &str) {
        let update = ConditionUpdate {
            type_: ROLLOUT_IN_PROGRESS,
            status: on,
            reason,
            message: reason.to_owned(),
            observed_generation: Some(2),
        };
        set_condition(&mut status.conditions, update, at(0));
    }

    /// kstatus's reading of a status: the first abnormal-true condition in list order, else Current.
    fn kstatus(conditions: &[Condition]) -> &'static str {
        for c in conditions {
            if c.type_ == RECONCILING && c.status == "True" {
                return "InProgress";
            }
            if c.type_ == STALLED && c.status == "True" {
                return "Failed";
            }
        }
        "Current"
    }

    #[test]
    fn a_ready_deployment_at_its_generation_is_ready_and_current() {
        let mut status = deployment(DeploymentPhase::Ready, 2);
        summarize_deployment(&mut status, Some(2), at(1));
        assert_eq!(status_of(&status.conditions, READY), ("True".into(), "Ready".into()));
        assert_eq!(kstatus(&status.conditions), "Current");
        // The spec moved on and the operator has not acted on it yet.
        summarize_deployment(&mut status, Some(3), at(2));
        assert_eq!(status_of(&status.conditions, READY), ("False".into(), "LatestGenerationNotObserved".into()));
    }

    #[test]
    fn a_rollout_reconciles_until_it_stalls() {
        let mut status = deployment(DeploymentPhase::Upgrading, 1);
        let rollout = serde_json::json!({"strategy": "InPlace", "targetHash": "abc", "startedAt": "2026-01-01T00:00:00Z",
                                          "generation": 2, "nodes": []});
        status.rollout = Some(serde_json::from_value::<RolloutStatus>(rollout).expect("a rollout"));
        set_rollout_condition(&mut status, true, "TemplateChanged");
        summarize_deployment(&mut status, Some(2), at(1));
        assert_eq!(status_of(&status.conditions, RECONCILING), ("True".into(), "Upgrading".into()));
        assert_eq!(status_of(&status.conditions, READY).0, "False");
        assert_eq!(kstatus(&status.conditions), "InProgress");
        set_rollout_condition(&mut status, true, REASON_STALLED);
        summarize_deployment(&mut status, Some(2), at(2));
        assert_eq!(status_of(&status.conditions, STALLED), ("True".into(), "RolloutStalled".into()));
        assert_eq!(status_of(&status.conditions, RECONCILING).0, "False");
        assert_eq!(kstatus(&status.conditions), "Failed");
    }

    #[test]
    fn a_failed_or_refused_target_is_stalled_not_ready() {
        let mut failed = deployment(DeploymentPhase::Degraded, 2);
        failed.failed_target_hash = Some("abc".into());
        set_rollout_condition(&mut failed, false, "RolloutFailed");
        summarize_deployment(&mut failed, Some(2), at(1));
        assert_eq!(status_of(&failed.conditions, STALLED), ("True".into(), "RolloutFailed".into()));
        assert_eq!(status_of(&failed.conditions, READY).0, "False");
        assert_eq!(kstatus(&failed.conditions), "Failed");

        let mut refused = deployment(DeploymentPhase::Ready, 2);
        set_rollout_condition(&mut refused, false, REASON_INVALID_UPDATE_STRATEGY);
        summarize_deployment(&mut refused, Some(2), at(1));
        assert_eq!(status_of(&refused.conditions, STALLED).1, REASON_INVALID_UPDATE_STRATEGY);
        assert_eq!(status_of(&refused.conditions, READY).0, "False");
    }

    #[test]
    fn a_node_is_ready_when_running_and_up_to_date_and_stalled_when_failed() {
        fn up_to_date(on: bool, reason: &str) -> ConditionUpdate<'_> {
            ConditionUpdate {
                type_: crate::controller::UP_TO_DATE,
                status: on,
                reason,
                message: reason.to_owned(),
                observed_generation: Some(1),
            }
        }
        let mut node = SeiNodeStatus { phase: Some(SeiNodePhase::Initializing), ..Default::default() };
        summarize_node(&mut node, Some(1), at(1));
        assert_eq!(kstatus(&node.conditions), "InProgress");
        node.phase = Some(SeiNodePhase::Running);
        set_condition(&mut node.conditions, up_to_date(false, "PodNotReady"), at(2));
        summarize_node(&mut node, Some(1), at(2));
        assert_eq!(status_of(&node.conditions, READY), ("False".into(), "PodNotReady".into()));
        set_condition(&mut node.conditions, up_to_date(true, "UpToDate"), at(3));
        summarize_node(&mut node, Some(1), at(3));
        assert_eq!(status_of(&node.conditions, READY), ("True".into(), "Running".into()));
        assert_eq!(kstatus(&node.conditions), "Current");
        // UpToDate from an older generation says nothing of this one.
        summarize_node(&mut node, Some(2), at(4));
        assert_eq!(status_of(&node.conditions, READY).0, "False");
        node.phase = Some(SeiNodePhase::Failed);
        summarize_node(&mut node, Some(2), at(5));
        assert_eq!(kstatus(&node.conditions), "Failed");
    }
}
