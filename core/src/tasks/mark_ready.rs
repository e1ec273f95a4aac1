//! Keeping a sidecar marked ready across its restarts. seictl keeps its task table in `sidecar.db` on the node's
//! volume, so it survives sidecar and pod restarts, while its ready flag lives in memory only
//! (sei-protocol/seictl `serve.go`, `sidecar/engine/engine.go`: `Submit`, `Healthz`). A `mark-ready` id that
//! completed once is a no-op when submitted again, and a restarted sidecar stays Initializing — and seid's wrapper
//! waits on it — for good. So every sidecar *incarnation* gets its own id: derived from the pod's uid and the
//! sidecar container's restart count, as the kubelet reports them (stable within an incarnation, new for each,
//! neither random nor a counter in memory that a crash of the operator would lose).

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use uuid::Uuid;

use crate::clock::{SignedDuration, Timestamp};
use crate::objects::workload::SIDECAR_CONTAINER;
use crate::sidecar::wire::{ReadinessStatus, SidecarTaskType, TaskRequest, TaskState};
use crate::sidecar::{PodAddress, Sidecar, SidecarError};

/// Back-off before a failed `mark-ready` runs again: 5 s doubling per run, capped at 5 minutes. There is no
/// last attempt: a Running node whose sidecar is not ready is asked again for as long as that lasts.
pub const RETRY_INITIAL: Duration = Duration::from_secs(5);
pub const RETRY_MAX: Duration = Duration::from_secs(300);

/// One run of a pod's sidecar container: the pod it runs in and how often the container restarted before.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SidecarIncarnation {
    pub pod_uid: String,
    pub restart_count: i32,
}

impl SidecarIncarnation {
    /// The incarnation the kubelet reports for `pod`'s sidecar container (a native sidecar reports among the
    /// init containers, a regular one among the containers); `None` for a pod with no uid yet.
    pub fn of(pod: &Pod) -> Option<Self> {
        let pod_uid = pod.metadata.uid.clone()?;
        let status = pod.status.as_ref();
        let statuses = status
            .and_then(|s| s.init_container_statuses.as_ref())
            .into_iter()
            .flatten()
            .chain(status.and_then(|s| s.container_statuses.as_ref()).into_iter().flatten());
        let restart_count = statuses.filter(|c| c.name == SIDECAR_CONTAINER).map(|c| c.restart_count).max();
        Some(SidecarIncarnation { pod_uid, restart_count: restart_count.unwrap_or(0) })
    }

    /// The `mark-ready` id of this incarnation.
    pub fn mark_ready_id(&self) -> Uuid {
        let name = format!("{}/{SIDECAR_CONTAINER}/{}/mark-ready", self.pod_uid, self.restart_count);
        Uuid::new_v5(&crate::plan::ids::id_namespace(), name.as_bytes())
    }
}

/// Where a sidecar stands with respect to `mark-ready`, for status and for the next observation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MarkReady {
    /// The sidecar reports Ready.
    Ready,
    /// This incarnation's `mark-ready` has just been submitted, or re-run after a failure.
    Submitted { id: Uuid, incarnation: SidecarIncarnation },
    /// This incarnation's `mark-ready` runs, or completed while the sidecar still says Initializing — the pod
    /// status read lags a newer restart; the next observation reads the new restart count.
    Waiting { id: Uuid, incarnation: SidecarIncarnation },
    /// It failed; it is submitted again (and so re-run) once `retry_at` has passed.
    Failed { id: Uuid, run: u32, error: String, retry_at: Timestamp },
    /// The sidecar says Initializing but its pod cannot be read: nothing to derive an id from yet.
    NoPod,
}

impl MarkReady {
    /// Whether the sidecar is ready.
    pub fn is_ready(&self) -> bool {
        *self == MarkReady::Ready
    }

    /// A condition reason and message describing this state. Messages name no live numbers beyond the
    /// incarnation, so they change only when the state does.
    pub fn describe(&self) -> (&'static str, String) {
        match self {
            MarkReady::Ready => ("SidecarReady", "the sidecar is marked ready".into()),
            MarkReady::Submitted { id, incarnation } | MarkReady::Waiting { id, incarnation } => (
                "AwaitingMarkReady",
                format!(
                    "the sidecar (pod {}, restart {}) is Initializing: seid waits for mark-ready {id}",
                    incarnation.pod_uid, incarnation.restart_count
                ),
            ),
            MarkReady::Failed { id, run, error, retry_at } => {
                ("MarkReadyFailed", format!("mark-ready {id} failed (run {run}): {error}; retrying at {retry_at}"))
            }
            MarkReady::NoPod => {
                ("AwaitingMarkReady", "the sidecar is Initializing and its pod is not visible yet".into())
            }
        }
    }
}

/// The back-off after the `run`-th failed run.
pub fn retry_delay(run: u32) -> Duration {
    let exponent = run.saturating_sub(1).min(16);
    RETRY_INITIAL.checked_mul(1 << exponent).unwrap_or(RETRY_MAX).min(RETRY_MAX)
}

/// Makes sure the sidecar at `address`, whose pod is `pod`, is marked ready or on its way there: asks its status,
/// and when it says Initializing, submits this incarnation's `mark-ready` (see [`mark_initializing_ready`]).
pub async fn ensure_marked_ready<S: Sidecar>(
    sidecar: &S,
    address: &PodAddress,
    pod: Option<&Pod>,
    now: Timestamp,
) -> Result<MarkReady, SidecarError> {
    if sidecar.status(address).await? == ReadinessStatus::Ready {
        return Ok(MarkReady::Ready);
    }
    mark_initializing_ready(sidecar, address, pod, now).await
}

/// For a sidecar that has just reported Initializing: submits this incarnation's `mark-ready` unless it already
/// runs, or re-submits it (seictl re-runs a failed id) once its back-off has passed.
pub async fn mark_initializing_ready<S: Sidecar>(
    sidecar: &S,
    address: &PodAddress,
    pod: Option<&Pod>,
    now: Timestamp,
) -> Result<MarkReady, SidecarError> {
    let Some(incarnation) = pod.and_then(SidecarIncarnation::of) else { return Ok(MarkReady::NoPod) };
    let id = incarnation.mark_ready_id();
    let submit = || async {
        let request = TaskRequest { id: Some(id), type_: SidecarTaskType::MarkReady.as_str().to_owned(), params: None };
        sidecar.submit_task(address, &request).await.map(|_| ())
    };
    match sidecar.get_task(address, id).await? {
        None => {
            // A `mark-ready` submitted under an older incarnation's id — from a pod read that lagged a restart —
            // may run in this process right now (seictl re-runs a task left running by a dead process on start,
            // `Engine.RehydrateStaleTasks`): it will mark this process ready, so wait for it instead of starting
            // the same work a second time.
            let tasks = sidecar.list_tasks(address).await?;
            let mark_ready = SidecarTaskType::MarkReady.as_str();
            if let Some(running) = tasks.iter().find(|t| t.type_ == mark_ready && t.status == TaskState::Running) {
                return Ok(MarkReady::Waiting { id: running.id, incarnation });
            }
            // One that ran may have completed since the status said Initializing — it marked this process ready,
            // and the list shows it Completed among every earlier incarnation's. Asked after the list, the status
            // tells: nothing left running can mark it ready later.
            if sidecar.status(address).await? == ReadinessStatus::Ready {
                return Ok(MarkReady::Ready);
            }
            submit().await?;
            Ok(MarkReady::Submitted { id, incarnation })
        }
        Some(result) if result.status == TaskState::Failed => {
            let failed_at = result.completed_at.as_deref().and_then(|t| t.parse::<Timestamp>().ok()).unwrap_or(now);
            let delay = SignedDuration::try_from(retry_delay(result.run)).unwrap_or(SignedDuration::MAX);
            let retry_at = failed_at.checked_add(delay).unwrap_or(now);
            if now >= retry_at {
                submit().await?;
                Ok(MarkReady::Submitted { id, incarnation })
            } else {
                let error = result.error.unwrap_or_else(|| "no error given".into());
                Ok(MarkReady::Failed { id, run: result.run, error, retry_at })
            }
        }
        Some(_) => Ok(MarkReady::Waiting { id, incarnation }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ContainerStatus, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn pod(uid: &str, sidecar_restarts: i32) -> Pod {
        let status =
            ContainerStatus { name: SIDECAR_CONTAINER.into(), restart_count: sidecar_restarts, ..Default::default() };
        Pod {
            metadata: ObjectMeta { uid: Some(uid.into()), ..Default::default() },
            status: Some(PodStatus { init_container_statuses: Some(vec![status]), ..Default::default() }),
            ..Default::default()
        }
    }

    #[test]
    fn each_sidecar_incarnation_has_its_own_stable_mark_ready_id() {
        let first = SidecarIncarnation::of(&pod("uid-a", 0)).expect("has a uid");
        assert_eq!(first.mark_ready_id(), SidecarIncarnation::of(&pod("uid-a", 0)).expect("uid").mark_ready_id());
        let restarted = SidecarIncarnation::of(&pod("uid-a", 1)).expect("has a uid");
        let replaced = SidecarIncarnation::of(&pod("uid-b", 0)).expect("has a uid");
        assert_ne!(first.mark_ready_id(), restarted.mark_ready_id());
        assert_ne!(first.mark_ready_id(), replaced.mark_ready_id());
        assert_eq!(SidecarIncarnation::of(&Pod::default()), None, "no uid, no incarnation");
    }

    #[test]
    fn a_regular_sidecar_container_counts_too() {
        let status = ContainerStatus { name: SIDECAR_CONTAINER.into(), restart_count: 4, ..Default::default() };
        let pod = Pod {
            metadata: ObjectMeta { uid: Some("u".into()), ..Default::default() },
            status: Some(PodStatus { container_statuses: Some(vec![status]), ..Default::default() }),
            ..Default::default()
        };
        assert_eq!(SidecarIncarnation::of(&pod).map(|i| i.restart_count), Some(4));
    }

    #[test]
    fn failed_runs_back_off_without_end() {
        assert_eq!(retry_delay(1), Duration::from_secs(5));
        assert_eq!(retry_delay(2), Duration::from_secs(10));
        assert_eq!(retry_delay(7), Duration::from_secs(300));
        assert_eq!(retry_delay(1000), Duration::from_secs(300));
    }
}
