//! Tasks of a SeiNode's init plan: the bootstrap Job and its Service, the tasks submitted to the bootstrap pod's
//! sidecar, the node's workload, and the tasks submitted to the node's own sidecar.

use std::sync::Arc;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Service};

use super::mark_ready::ensure_marked_ready;
use super::{api_error, params, sidecar_error};
use crate::api::{PodSettings, SeiNode, Task};
use crate::clock::Timestamp;
use crate::cluster::{
    ChildHolder, Cluster, ClusterError, ClusterObject, LabelSelector, OptionalExt, delete_if_present, ensure_child,
};
use crate::objects::desired::DesiredStatefulSets;
use crate::objects::meta::{ANNOTATION_BOOTSTRAPPED_TO, LABEL_NODE, is_controlled_by};
use crate::objects::names;
use crate::objects::workload;
use crate::plan::TaskType;
use crate::plan::executor::{Progress, TaskError, TaskRunner};
use crate::plan::ids::attempt_submission_id;
use crate::plan::params::Bootstrap;
use crate::sidecar::wire::{SidecarTaskType, TaskRequest, TaskState};
use crate::sidecar::{PodAddress, Sidecar};

/// Runs a SeiNode's plan tasks.
pub struct NodeTasks<'a, C, S> {
    pub cluster: &'a C,
    pub sidecar: &'a S,
    pub node: &'a SeiNode,
    /// The pod settings of the node: its spec's, with the operator's defaults for what it leaves unset.
    pub settings: &'a PodSettings,
    /// The operator process's desired StatefulSets, the one the plan creates among them.
    pub desired: &'a DesiredStatefulSets,
    pub now: Timestamp,
    /// Which attempt of the init plan this is (1 the first): a retried plan submits its sidecar tasks under ids
    /// of its own, since a sidecar answers a known id with its old result.
    pub attempt: i32,
    /// A child whose name another object holds, found by this run: what the controller reports.
    pub blocked: std::sync::Mutex<Option<ChildHolder>>,
    /// In a config plan: the submission id of its last config task, whose completion `restart-seid` is judged
    /// against (`NodeTasks::restart_seid`).
    pub config_written_by: Option<uuid::Uuid>,
}

impl<'a, C, S> NodeTasks<'a, C, S> {
    /// A runner for attempt `attempt` of a plan of `node`, outside any config plan.
    pub fn new(
        cluster: &'a C,
        sidecar: &'a S,
        node: &'a SeiNode,
        settings: &'a PodSettings,
        desired: &'a DesiredStatefulSets,
        now: Timestamp,
        attempt: i32,
    ) -> Self {
        NodeTasks {
            cluster,
            sidecar,
            node,
            settings,
            desired,
            now,
            attempt,
            blocked: Default::default(),
            config_written_by: None,
        }
    }
}

impl<C: Cluster, S: Sidecar> TaskRunner for NodeTasks<'_, C, S> {
    async fn run(&self, task: &Task, task_type: TaskType) -> Result<Progress, TaskError> {
        // The Job and StatefulSet tasks' futures are boxed: they are several times the size of the others' (up to
        // 14 KB, with a Job and its pod spec held across awaits), run once or a few times per node, and unboxed
        // they would set the size of every reconcile's future — which is copied whole each time one is spawned.
        match task_type {
            TaskType::CreateBootstrapService => {
                self.ensure(&workload::bootstrap_service(self.node)).await?;
                Ok(Progress::Complete)
            }
            TaskType::CreateBootstrapJob => Box::pin(self.create_bootstrap_job(&params(task)?)).await,
            TaskType::AwaitBootstrapJob => Box::pin(self.await_bootstrap_job(params(task)?)).await,
            TaskType::TeardownBootstrap => self.teardown_bootstrap(params(task)?).await,
            TaskType::CreateWorkload => Box::pin(self.create_workload()).await,
            TaskType::Sidecar(SidecarTaskType::RestartSeid) => self.restart_seid(task).await,
            TaskType::Sidecar(sidecar_task) => self.sidecar_task(task, sidecar_task, &self.node_pod()).await,
            TaskType::BootstrapSidecar(sidecar_task) => self.bootstrap_sidecar_task(task, sidecar_task).await,
            other => Err(TaskError::Terminal(format!("{} is not a SeiNode task", other.as_str()))),
        }
    }
}

impl<C: Cluster, S: Sidecar> NodeTasks<'_, C, S> {
    /// The node's headless Service and StatefulSet, then its pod.
    async fn create_workload(&self) -> Result<Progress, TaskError> {
        self.ensure(&workload::headless_service(self.node)).await?;
        self.ensure(&*self.desired.stateful_set(self.node, self.settings)).await?;
        self.await_own_pod().await
    }

    fn namespace(&self) -> &str {
        self.node.metadata.namespace.as_deref().unwrap_or_default()
    }

    fn name(&self) -> &str {
        self.node.metadata.name.as_deref().unwrap_or_default()
    }

    /// The node's own pod, through its headless Service.
    fn node_pod(&self) -> PodAddress {
        PodAddress::for_node(self.namespace(), self.name(), sidecar_port(self.node))
    }

    /// The bootstrap Job's pod, through the bootstrap Service (`hostname` and `subdomain` in its template).
    fn bootstrap_pod(&self) -> PodAddress {
        let name = names::bootstrap(self.name());
        PodAddress { host: format!("{name}.{name}.{}.svc", self.namespace()), sidecar_port: sidecar_port(self.node) }
    }

    /// The bootstrap Job's live pod, if one is visible: the newest that has not finished.
    async fn bootstrap_pod_object(&self) -> Result<Option<Arc<Pod>>, TaskError> {
        let selector = LabelSelector::from([
            (LABEL_NODE.to_owned(), self.name().to_owned()),
            (workload::LABEL_BOOTSTRAP.to_owned(), "true".to_owned()),
        ]);
        let pods = self.cluster.list::<Pod>(self.namespace(), &selector).await.map_err(api_error)?;
        let finished = |pod: &Pod| {
            let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
            matches!(phase, Some("Succeeded" | "Failed")) || pod.metadata.deletion_timestamp.is_some()
        };
        Ok(pods
            .into_iter()
            .filter(|p| !finished(p))
            .max_by(|a, b| a.metadata.creation_timestamp.cmp(&b.metadata.creation_timestamp)))
    }

    /// Creates the child unless the node already has it. A name held by another object is waited on (a
    /// predecessor's, being collected) or reported (a stranger's), and never used.
    async fn ensure<K: ClusterObject>(&self, object: &K) -> Result<(), TaskError> {
        let holder = ensure_child(self.cluster, object).await.map_err(api_error)?;
        let message = match &holder {
            ChildHolder::Owner => return Ok(()),
            ChildHolder::Predecessor { object, .. } => {
                format!("{object} belongs to another owner or is being deleted; waiting for it to go")
            }
            ChildHolder::Stranger { object } => format!("{object} exists and is not this SeiNode's; not using it"),
        };
        if let Ok(mut blocked) = self.blocked.lock() {
            blocked.get_or_insert(holder);
        }
        Err(TaskError::Transient(message))
    }

    /// Complete once the node's StatefulSet is its own and has a pod of its own. A SeiNode deleted and made again
    /// under the same name (a user deleting a child, which its deployment recreates) leaves its StatefulSet and
    /// pod to the garbage collector: until they are gone, the name is taken by the predecessor's set
    /// (AlreadyExists is not ours), and then by its terminating pod, which the new set cannot replace yet and
    /// does not count. The sidecar tasks that follow address the pod by name: run earlier, they would act on the
    /// dying predecessor's pod.
    async fn await_own_pod(&self) -> Result<Progress, TaskError> {
        let namespace = self.namespace();
        let name = names::node_workload(self.node.metadata.name.as_deref().unwrap_or_default());
        let set = self.cluster.get_shared::<StatefulSet>(namespace, &name).await.optional().map_err(api_error)?;
        let Some(set) = set else {
            // Created a moment ago; a lagging cache may not show it yet.
            return Ok(Progress::Running);
        };
        let uid = self.node.metadata.uid.as_deref().unwrap_or_default();
        if !is_controlled_by(&set.metadata, uid) {
            return Err(TaskError::Transient(format!(
                "StatefulSet {namespace}/{name} belongs to a predecessor of this SeiNode; waiting for it to go"
            )));
        }
        let own_pods = set.status.as_ref().map_or(0, |s| s.replicas);
        Ok(if own_pods >= 1 { Progress::Complete } else { Progress::Running })
    }

    /// Creates the bootstrap Job. One of this node's that failed — a failed attempt's, which a retry runs this
    /// task again for — is deleted first (its pods with it), and the new one made once it is gone: the volume,
    /// and what the bootstrap's sidecar tasks left on it, stay.
    async fn create_bootstrap_job(&self, bootstrap: &Bootstrap) -> Result<Progress, TaskError> {
        let job = self.cluster.get::<Job>(self.namespace(), &bootstrap.job).await.optional().map_err(api_error)?;
        let uid = self.node.metadata.uid.as_deref().unwrap_or_default();
        if let Some(job) = job.filter(|j| is_controlled_by(&j.metadata, uid)) {
            let failed = job
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_deref())
                .unwrap_or_default()
                .iter()
                .any(|c| c.type_ == "Failed" && c.status == "True");
            if failed || job.metadata.deletion_timestamp.is_some() {
                delete_if_present::<_, Job>(self.cluster, self.namespace(), &bootstrap.job).await.map_err(api_error)?;
                return Ok(Progress::Running);
            }
        }
        self.ensure_bootstrap_job(bootstrap).await?;
        Ok(Progress::Complete)
    }

    /// The bootstrap Job and the volume it prepares, created if missing.
    async fn ensure_bootstrap_job(&self, bootstrap: &Bootstrap) -> Result<(), TaskError> {
        self.ensure(&workload::data_volume(self.node, self.settings)).await?;
        self.ensure(&workload::bootstrap_job(self.node, self.settings, &bootstrap.image, bootstrap.halt_height)).await
    }

    async fn await_bootstrap_job(&self, bootstrap: Bootstrap) -> Result<Progress, TaskError> {
        let job = self.cluster.get::<Job>(self.namespace(), &bootstrap.job).await.optional().map_err(api_error)?;
        let Some(job) = job else {
            // The teardown marks the volume before it deletes the Job: a marked volume means the teardown already
            // ran (this task's completion was lost with a status write). Otherwise the Job is not in a lagging
            // cache yet, or someone deleted it: made again if missing (it resumes on the same volume), never a
            // reason to fail the node.
            if self.volume_bootstrapped(&bootstrap).await? {
                return Ok(Progress::Complete);
            }
            self.ensure(&workload::bootstrap_service(self.node)).await?;
            self.ensure_bootstrap_job(&bootstrap).await?;
            return Ok(Progress::Running);
        };
        let conditions = job.status.as_ref().and_then(|s| s.conditions.as_deref()).unwrap_or_default();
        let holds = |type_: &str| conditions.iter().find(|c| c.type_ == type_ && c.status == "True");
        if holds("Complete").is_some() {
            Ok(Progress::Complete)
        } else if let Some(failed) = holds("Failed") {
            Err(TaskError::Terminal(format!(
                "bootstrap Job {} failed: {}",
                bootstrap.job,
                failed.message.as_deref().or(failed.reason.as_deref()).unwrap_or("no reason given")
            )))
        } else {
            // A replacement pod (the Job re-creates a failed or evicted one) or a restarted sidecar is not ready
            // again on its own: its restore and config persist on the volume, its ready flag does not. Unreachable
            // now means: ask again at the next poll.
            if let Some(pod) = self.bootstrap_pod_object().await? {
                let _ = ensure_marked_ready(self.sidecar, &self.bootstrap_pod(), Some(&*pod), self.now).await;
            }
            Ok(Progress::Running)
        }
    }

    /// Deletes the bootstrap Service, then the Job (its pods go with it); the volume stays for the StatefulSet.
    async fn teardown_bootstrap(&self, bootstrap: Bootstrap) -> Result<Progress, TaskError> {
        let namespace = self.namespace();
        if !self.mark_volume_bootstrapped(&bootstrap).await? {
            return Ok(Progress::Running);
        }
        let service_gone = match self.cluster.delete::<Service>(namespace, &bootstrap.service).await {
            Ok(()) | Err(ClusterError::NotFound(_)) => true,
            Err(other) => return Err(api_error(other)),
        };
        match self.cluster.delete::<Job>(namespace, &bootstrap.job).await {
            Ok(()) | Err(ClusterError::NotFound(_)) => {}
            Err(other) => return Err(api_error(other)),
        }
        let job_gone =
            self.cluster.get::<Job>(namespace, &bootstrap.job).await.optional().map_err(api_error)?.is_none();
        Ok(if service_gone && job_gone { Progress::Complete } else { Progress::Running })
    }

    /// Whether the node's volume carries the teardown's mark for this bootstrap.
    async fn volume_bootstrapped(&self, bootstrap: &Bootstrap) -> Result<bool, TaskError> {
        self.volume_marked(&bootstrap.volume, bootstrap.halt_height).await
    }

    /// Whether `volume` carries the teardown's mark of a bootstrap to `height`.
    async fn volume_marked(&self, volume: &str, height: i64) -> Result<bool, TaskError> {
        let volume = self.cluster.get::<PersistentVolumeClaim>(self.namespace(), volume).await;
        let volume = volume.optional().map_err(api_error)?;
        let mark = height.to_string();
        Ok(volume.is_some_and(|v| {
            v.metadata.annotations.as_ref().and_then(|a| a.get(ANNOTATION_BOOTSTRAPPED_TO)) == Some(&mark)
        }))
    }

    /// Marks the node's volume as bootstrapped to the target height; `false` while the volume is not visible.
    async fn mark_volume_bootstrapped(&self, bootstrap: &Bootstrap) -> Result<bool, TaskError> {
        let volume = self.cluster.get::<PersistentVolumeClaim>(self.namespace(), &bootstrap.volume).await;
        let Some(mut volume) = volume.optional().map_err(api_error)? else { return Ok(false) };
        let mark = bootstrap.halt_height.to_string();
        let annotations = volume.metadata.annotations.get_or_insert_with(Default::default);
        if annotations.get(ANNOTATION_BOOTSTRAPPED_TO) != Some(&mark) {
            annotations.insert(ANNOTATION_BOOTSTRAPPED_TO.to_owned(), mark);
            self.cluster.replace(&volume).await.map_err(api_error)?;
        }
        Ok(true)
    }

    /// A task of the bootstrap pod's sidecar. That pod lives only until its seid halts at the target: then the Job
    /// completes and the kubelet stops the native sidecar with it (seconds after `mark-ready`, when the volume
    /// was nearly there), and the task's result can no longer be read. A finished Job settles every such task —
    /// seid ran only after `mark-ready` — and `await-bootstrap-job` reads how it finished. So does a volume the
    /// teardown marked: the bootstrap is over and its Job gone (the completions that led there were lost with a
    /// status write), and the tasks after this one find it so too.
    async fn bootstrap_sidecar_task(&self, task: &Task, sidecar_task: SidecarTaskType) -> Result<Progress, TaskError> {
        match self.sidecar_task(task, sidecar_task, &self.bootstrap_pod()).await {
            Err(TaskError::Transient(reason)) => {
                let job = names::bootstrap(self.name());
                let job = self.cluster.get::<Job>(self.namespace(), &job).await.optional().map_err(api_error)?;
                let conditions = job.as_ref().and_then(|j| j.status.as_ref()).and_then(|s| s.conditions.as_deref());
                let finished = conditions
                    .unwrap_or_default()
                    .iter()
                    .any(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True");
                let torn_down = match self.node.spec.bootstrap() {
                    Some((_, height)) if !finished => {
                        self.volume_marked(&names::node_volume(self.name()), height).await?
                    }
                    _ => false,
                };
                if finished || torn_down { Ok(Progress::Complete) } else { Err(TaskError::Transient(reason)) }
            }
            other => other,
        }
    }

    /// `restart-seid`, unless seid already read the config the plan wrote: its container started (the pod's
    /// `state.running.startedAt`, whole seconds, on the node's clock) after the sidecar completed the plan's last
    /// config task (its `completedAt`, on the same node's clock) — a pod replaced or crashed meanwhile. seid reads
    /// its config as it starts, after its container does. A container started before the write whose wrapper
    /// started seid after it (waiting on the sidecar's healthz) is restarted again: nothing the pod reports tells
    /// seid's own start. Any doubt (a result or a status missing) is a restart.
    async fn restart_seid(&self, task: &Task) -> Result<Progress, TaskError> {
        let pod = self.node_pod();
        let id = attempt_submission_id(&task.id, self.attempt, task.retry_count);
        let submitted = self.sidecar.get_task(&pod, id).await.map_err(sidecar_error)?.is_some();
        if !submitted && self.seid_started_after_the_write(&pod).await {
            return Ok(Progress::Complete);
        }
        self.sidecar_task(task, SidecarTaskType::RestartSeid, &pod).await
    }

    async fn seid_started_after_the_write(&self, pod: &PodAddress) -> bool {
        let Some(writer) = self.config_written_by else { return false };
        let Ok(Some(result)) = self.sidecar.get_task(pod, writer).await else { return false };
        let Some(written) = result.completed_at.as_deref().and_then(|t| t.parse::<Timestamp>().ok()) else {
            return false;
        };
        let Ok(Some(pod)) =
            self.cluster.get_shared::<Pod>(self.namespace(), &names::node_pod(self.name())).await.optional()
        else {
            return false;
        };
        let started = pod
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .and_then(|all| all.iter().find(|c| c.name == workload::SEID_CONTAINER))
            .and_then(|c| c.state.as_ref())
            .and_then(|state| state.running.as_ref())
            .and_then(|running| running.started_at.as_ref())
            .map(|t| t.0);
        // `startedAt` is cut to whole seconds: the true start is at or after it, so a cut start after the write is
        // a start after the write.
        started.is_some_and(|started| started.duration_since(written) > crate::clock::SignedDuration::ZERO)
    }

    /// Submits the task to the sidecar at `pod` under its deterministic id, and reports the sidecar's verdict. A
    /// sidecar that does not know the id gets it; a known id is never submitted again from here (seictl would
    /// re-run a failed one, but a retry is the executor's decision, under the retry's own id).
    async fn sidecar_task(
        &self,
        task: &Task,
        sidecar_task: SidecarTaskType,
        pod: &PodAddress,
    ) -> Result<Progress, TaskError> {
        let pod = pod.clone();
        let id = attempt_submission_id(&task.id, self.attempt, task.retry_count);
        match self.sidecar.get_task(&pod, id).await.map_err(sidecar_error)? {
            Some(result) => Ok(match result.status {
                TaskState::Running => Progress::Running,
                TaskState::Completed => Progress::Complete,
                TaskState::Failed => {
                    Progress::Failed(result.error.unwrap_or_else(|| format!("{} failed", result.type_)))
                }
            }),
            None => {
                let request = TaskRequest {
                    id: Some(id),
                    type_: sidecar_task.as_str().to_owned(),
                    params: (!task.params.is_null()).then(|| task.params.clone()),
                };
                self.sidecar.submit_task(&pod, &request).await.map_err(sidecar_error)?;
                Ok(Progress::Running)
            }
        }
    }
}

fn sidecar_port(node: &SeiNode) -> u16 {
    u16::try_from(node.spec.sidecar_port()).unwrap_or(crate::api::DEFAULT_SIDECAR_PORT as u16)
}
