//! A SeiNode's init plan (docs/design.md §6): with a bootstrap image and a target height, first the bootstrap — a Service,
//! a Job running the bootstrap image on the node's volume, the bootstrap pod's sidecar tasks (restore to the
//! target, config, mark-ready), waiting for seid to halt at the target, tearing it down — then the node's own
//! workload (headless Service, StatefulSet), then the sidecar tasks for its mode.

use std::time::Duration;

use serde_json::json;

use super::builder::{PlanBuilder, PlanError};
use super::params::Bootstrap;
use super::task_type::TaskType;
use crate::api::template_hash;
use crate::api::{NodeMode, Plan, PlanPhase, SeiNode, SeiNodeSpec, TaskStatus};
use crate::objects::names;
use crate::sidecar::wire::SidecarTaskType;

/// The plan kind of init plans, in the plan id.
pub const INIT_PLAN_KIND: &str = "init";

/// `config-apply`'s parameters: the node's chain, mode and overrides.
fn config_apply_params(spec: &SeiNodeSpec, mode: NodeMode<'_>) -> serde_json::Value {
    let state_sync = spec.snapshot().is_some_and(|s| s.state_sync.is_some());
    json!({
        "chainId": spec.chain_id,
        "mode": mode.name(),
        "stateSync": state_sync,
        "overrides": spec.overrides,
    })
}

/// First wait before a failed init plan is tried again, doubled after each failed attempt.
const INIT_RETRY_BASE: Duration = Duration::from_secs(30);
/// The longest wait between attempts: kubelet's CrashLoopBackOff cap, the pace Kubernetes itself retries a
/// broken container at for ever. Each attempt already spent its tasks' own retries (5 s doubling to 30 s).
const INIT_RETRY_CAP: Duration = Duration::from_secs(300);

/// How long a node whose init attempt `failed_attempt` (1-based) failed waits before the next: 30 s, 1 min,
/// 2 min, 4 min, then 5 min.
pub fn init_retry_backoff(failed_attempt: i32) -> Duration {
    let doublings = u32::try_from(failed_attempt.saturating_sub(1)).unwrap_or(0).min(16);
    INIT_RETRY_BASE.saturating_mul(1 << doublings).min(INIT_RETRY_CAP)
}

/// The plan of the next attempt after `previous` failed, from `fresh` — the init plan of the node's spec now.
/// What the previous attempt completed stays complete as long as it is what the fresh plan asks (same task, same
/// parameters, in order): its work is on the volume the retry keeps, so a snapshot restored is not restored
/// again. From the first task that differs or did not complete, the fresh plan runs — the failed task from its
/// first try. A failed bootstrap Job stays failed: its await can only pass on a Job made again, so its
/// creation runs again too (the bootstrap's sidecar tasks before the await are on the volume and stay done).
pub fn next_attempt(fresh: Plan, previous: &Plan) -> Plan {
    let mut plan = fresh;
    let mut resume_at = plan.tasks.len();
    for (index, (task, done)) in plan.tasks.iter_mut().zip(&previous.tasks).enumerate() {
        if done.status != TaskStatus::Complete || task.type_ != done.type_ || task.params != done.params {
            resume_at = index;
            break;
        }
        task.status = TaskStatus::Complete;
        task.submitted_at.clone_from(&done.submitted_at);
    }
    if plan.tasks.get(resume_at).is_some_and(|t| t.type_ == TaskType::AwaitBootstrapJob.as_str())
        && let Some(create) =
            plan.tasks[..resume_at].iter_mut().rev().find(|t| t.type_ == TaskType::CreateBootstrapJob.as_str())
    {
        create.status = TaskStatus::Pending;
        create.submitted_at = None;
    }
    plan.phase = PlanPhase::Active;
    plan
}

/// What a node's plans are built from: its name, its uid (plans exist only for stored objects) and its one mode.
fn stored_node(node: &SeiNode) -> Result<(String, &str, NodeMode<'_>), PlanError> {
    let name = node.metadata.name.clone().unwrap_or_default();
    let uid = node.metadata.uid.as_deref().ok_or_else(|| PlanError::NotStored(format!("SeiNode {name}")))?;
    let mode = node.spec.mode().ok_or_else(|| {
        PlanError::InvalidSpec("exactly one mode must be set: fullNode, archive, validator or replayer".into())
    })?;
    Ok((name, uid, mode))
}

/// Builds the init plan of a stored SeiNode.
pub fn init_plan(node: &SeiNode) -> Result<Plan, PlanError> {
    let (name, uid, mode) = stored_node(node)?;
    let spec = &node.spec;
    let mut plan = PlanBuilder::new(uid, &template_hash(spec), INIT_PLAN_KIND);

    let bootstrap = spec.bootstrap();
    if let Some((image, halt_height)) = bootstrap {
        let params = Bootstrap {
            job: names::bootstrap(&name),
            service: names::bootstrap(&name),
            volume: names::node_volume(&name),
            image: image.to_owned(),
            halt_height,
        };
        // The bootstrap pod's sidecar does nothing on its own (seictl has no such mode): the operator submits
        // its tasks as to a node's — restore the newest snapshot at or below the target, write the config,
        // mark seid ready — and seid's wrapper then runs the bootstrap image to the target and exits.
        plan = plan
            .task(TaskType::CreateBootstrapService, &params)?
            .task(TaskType::CreateBootstrapJob, &params)?
            .task(
                TaskType::BootstrapSidecar(SidecarTaskType::SnapshotRestore),
                &json!({ "targetHeight": halt_height }),
            )?
            .task(TaskType::BootstrapSidecar(SidecarTaskType::ConfigApply), &config_apply_params(spec, mode))?
            .task(TaskType::BootstrapSidecar(SidecarTaskType::ConfigValidate), &json!({}))?
            .task(TaskType::BootstrapSidecar(SidecarTaskType::MarkReady), &json!({}))?
            .task(TaskType::AwaitBootstrapJob, &params)?
            .task(TaskType::TeardownBootstrap, &params)?;
    }
    plan = plan.task(TaskType::CreateWorkload, &json!({ "statefulSet": names::node_workload(&name) }))?;

    // A bootstrapped volume already holds the chain up to the target height: restoring a snapshot over it
    // would throw that work away.
    if let (Some(s3), None) = (spec.snapshot().and_then(|s| s.s3.as_ref()), bootstrap) {
        plan = plan
            .task(TaskType::Sidecar(SidecarTaskType::SnapshotRestore), &json!({ "targetHeight": s3.target_height }))?;
    }
    for (task_type, params) in config_tasks(spec, mode) {
        plan = plan.task(task_type, &params)?;
    }
    Ok(plan
        .task(TaskType::Sidecar(SidecarTaskType::ConfigValidate), &json!({}))?
        .task(TaskType::Sidecar(SidecarTaskType::MarkReady), &json!({}))?
        .build())
}

/// The plan kind of a Running node's config plans, in the plan id.
pub const CONFIG_PLAN_KIND: &str = "config";

/// The node's own sidecar tasks that write seid's config, with their parameters: `config-apply` (chain, mode,
/// overrides), then `discover-peers` when the spec has peers. Once they ran, the config on the volume is the
/// spec's.
fn config_tasks(spec: &SeiNodeSpec, mode: NodeMode<'_>) -> Vec<(TaskType, serde_json::Value)> {
    let mut tasks = vec![(TaskType::Sidecar(SidecarTaskType::ConfigApply), config_apply_params(spec, mode))];
    if let Some(peers) = spec.peers.as_ref().and_then(|p| serde_json::to_value(p).ok()) {
        tasks.push((TaskType::Sidecar(SidecarTaskType::DiscoverPeers), peers));
    }
    tasks
}

/// What `spec` asks of seid's config, as the config tasks that write it (type and parameters); `None` without
/// exactly one mode.
pub fn wanted_config(spec: &SeiNodeSpec) -> Option<Vec<(String, serde_json::Value)>> {
    let tasks = config_tasks(spec, spec.mode()?);
    Some(tasks.into_iter().map(|(task_type, params)| (task_type.as_str().to_owned(), params)).collect())
}

/// What a plan's config tasks left on the volume.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WrittenConfig {
    /// None of them ran to completion: the config is what it was before the plan.
    Unchanged,
    /// Some did and some did not: a config no spec asked for.
    Partial,
    /// All of them did: the config they write, by its [`config_digest`].
    Whole(String),
}

/// The config tasks of `plan` (node-sidecar `config-apply` and `discover-peers`).
fn config_tasks_of(plan: &Plan) -> impl Iterator<Item = &crate::api::Task> {
    let config_types = [SidecarTaskType::ConfigApply, SidecarTaskType::DiscoverPeers].map(|t| t.as_str());
    plan.tasks.iter().filter(move |t| config_types.contains(&t.type_.as_str()))
}

/// The config `plan` writes: its config tasks, type and parameters.
pub fn planned_config(plan: &Plan) -> Vec<(String, serde_json::Value)> {
    config_tasks_of(plan).map(|t| (t.type_.clone(), t.params.clone())).collect()
}

/// Whether `plan` writes exactly `config` — `planned_config(plan) == config`, read in place: a node reconcile
/// asks it every time, and the plan's tasks are most of a node's status.
pub fn plans_config(plan: &Plan, config: &[(String, serde_json::Value)]) -> bool {
    config_tasks_of(plan).map(|t| (t.type_.as_str(), &t.params)).eq(config.iter().map(|(t, p)| (t.as_str(), p)))
}

/// What `plan`'s config tasks wrote, from their statuses.
pub fn written_config(plan: &Plan) -> WrittenConfig {
    let done: Vec<bool> = config_tasks_of(plan).map(|t| t.status == TaskStatus::Complete).collect();
    if done.iter().all(|d| *d) {
        WrittenConfig::Whole(config_digest(&planned_config(plan)))
    } else if done.iter().any(|d| *d) {
        WrittenConfig::Partial
    } else {
        WrittenConfig::Unchanged
    }
}

/// A digest of a config as its tasks write it. Stable across processes: JSON objects serialize in key order.
pub fn config_digest(config: &[(String, serde_json::Value)]) -> String {
    let canonical = serde_json::to_vec(config).unwrap_or_default();
    crate::digest::short_sha256(&canonical)
}

/// The plan that brings a Running node's config to its spec: the config tasks again, `config-validate`, then
/// `restart-seid` — seid reads its config only when it starts, and seictl's `config-reload` writes the file
/// but does not signal seid yet (sei-protocol/seictl `sidecar/tasks/config_reload.go`), so no field reaches a
/// running seid without a restart. The sidecar keeps running and stays ready: no pod is replaced. Its id comes
/// from the node's generation, so a config edited back to an earlier one is a new plan with new task ids (a
/// sidecar answers a known id with its old result).
pub fn config_plan(node: &SeiNode) -> Result<Plan, PlanError> {
    let (_, uid, mode) = stored_node(node)?;
    let spec = &node.spec;
    let generation = node.metadata.generation.unwrap_or_default();
    let mut plan = PlanBuilder::new(uid, &format!("generation-{generation}"), CONFIG_PLAN_KIND);
    for (task_type, params) in config_tasks(spec, mode) {
        plan = plan.task(task_type, &params)?;
    }
    Ok(plan
        .task(TaskType::Sidecar(SidecarTaskType::ConfigValidate), &json!({}))?
        .task(TaskType::Sidecar(SidecarTaskType::RestartSeid), &json!({}))?
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::FailedTaskDetail;

    fn node(spec: serde_json::Value) -> SeiNode {
        serde_json::from_value(json!({
            "apiVersion": "sei.io/v1alpha1",
            "kind": "SeiNode",
            "metadata": {"name": "explorer", "namespace": "sei", "uid": "uid-1"},
            "spec": spec,
        }))
        .expect("a valid SeiNode")
    }

    fn failed_at(mut plan: Plan, failed: usize) -> Plan {
        for task in &mut plan.tasks[..failed] {
            task.status = TaskStatus::Complete;
        }
        let task = &mut plan.tasks[failed];
        task.status = TaskStatus::Failed;
        task.retry_count = task.max_retries;
        plan.failed_task_index = Some(failed as i32);
        plan.failed_task_detail = Some(FailedTaskDetail {
            type_: task.type_.clone(),
            id: task.id.clone(),
            error: "boom".into(),
            retry_count: task.retry_count,
            max_retries: task.max_retries,
        });
        plan.phase = PlanPhase::Failed;
        plan
    }

    fn statuses(plan: &Plan) -> Vec<(&str, TaskStatus)> {
        plan.tasks.iter().map(|t| (t.type_.as_str(), t.status)).collect()
    }

    #[test]
    fn the_back_off_between_attempts_doubles_from_30_seconds_to_5_minutes() {
        let waits: Vec<u64> = (1..=7).map(|a| init_retry_backoff(a).as_secs()).collect();
        assert_eq!(waits, [30, 60, 120, 240, 300, 300, 300]);
        assert_eq!(init_retry_backoff(i32::MAX).as_secs(), 300);
    }

    #[test]
    fn a_retry_resumes_at_the_failed_task_with_what_is_done_kept_done() {
        let explorer =
            node(json!({"chainId": "c", "image": "sei:a", "fullNode": {"snapshot": {"s3": {"targetHeight": 10}}}}));
        let fresh = init_plan(&explorer).expect("plan");
        let validate = fresh.tasks.iter().position(|t| t.type_ == "config-validate").expect("config-validate");
        let previous = failed_at(fresh.clone(), validate);
        let next = next_attempt(fresh.clone(), &previous);
        assert_eq!(next.phase, PlanPhase::Active);
        assert_eq!(next.id, previous.id, "the same plan, resumed");
        assert_eq!(next.failed_task_detail, None);
        let done: Vec<_> = statuses(&next).into_iter().take_while(|(_, s)| *s == TaskStatus::Complete).collect();
        assert_eq!(done.len(), validate, "snapshot-restore and config-apply stay done: {:?}", statuses(&next));
        assert_eq!((next.tasks[validate].status, next.tasks[validate].retry_count), (TaskStatus::Pending, 0));
    }

    #[test]
    fn a_retry_after_a_spec_change_runs_again_from_the_first_task_that_differs() {
        let before = node(json!({"chainId": "c", "image": "sei:a", "fullNode": {}, "overrides": {"a": "1"}}));
        let previous = failed_at(init_plan(&before).expect("plan"), 3);
        let after = node(json!({"chainId": "c", "image": "sei:a", "fullNode": {}, "overrides": {"a": "2"}}));
        let next = next_attempt(init_plan(&after).expect("plan"), &previous);
        let apply = next.tasks.iter().position(|t| t.type_ == "config-apply").expect("config-apply");
        assert!(next.tasks[..apply].iter().all(|t| t.status == TaskStatus::Complete), "{:?}", statuses(&next));
        assert!(next.tasks[apply..].iter().all(|t| t.status == TaskStatus::Pending), "{:?}", statuses(&next));
    }

    #[test]
    fn a_failed_bootstrap_job_is_made_again_and_the_bootstrap_sidecar_work_on_the_volume_is_kept() {
        let snapshot = json!({"s3": {"targetHeight": 10}, "bootstrapImage": "sei:old"});
        let explorer = node(json!({"chainId": "c", "image": "sei:a", "fullNode": {"snapshot": snapshot}}));
        let fresh = init_plan(&explorer).expect("plan");
        let await_job = fresh.tasks.iter().position(|t| t.type_ == "await-bootstrap-job").expect("await");
        let next = next_attempt(fresh.clone(), &failed_at(fresh, await_job));
        let pending: Vec<&str> = next.tasks[..=await_job]
            .iter()
            .filter(|t| t.status == TaskStatus::Pending)
            .map(|t| t.type_.as_str())
            .collect();
        assert_eq!(pending, ["create-bootstrap-job", "await-bootstrap-job"]);
    }

    fn at_generation(mut node: SeiNode, generation: i64) -> SeiNode {
        node.metadata.generation = Some(generation);
        node
    }

    #[test]
    fn a_config_plan_writes_the_config_again_then_restarts_seid_and_is_new_at_every_generation() {
        let spec = json!({"chainId": "c", "image": "sei:a", "fullNode": {}, "overrides": {"a": "2"},
                          "peers": {"static": ["id@host:26656"]}});
        let plan = config_plan(&at_generation(node(spec.clone()), 4)).expect("plan");
        let types: Vec<&str> = plan.tasks.iter().map(|t| t.type_.as_str()).collect();
        assert_eq!(types, ["config-apply", "discover-peers", "config-validate", "restart-seid"]);
        assert_eq!(plan.tasks[0].params["overrides"], json!({"a": "2"}));
        let wanted = wanted_config(&node(spec.clone()).spec).expect("one mode");
        assert_eq!(planned_config(&plan), wanted, "the plan writes what the spec asks");
        assert!(plans_config(&plan, &wanted), "read in place, the same answer");
        let mut other = wanted.clone();
        other[0].1["overrides"] = json!({"a": "3"});
        assert!(!plans_config(&plan, &other), "another parameter is another config");
        assert!(!plans_config(&plan, &wanted[..1]), "a missing task is another config");
        let reordered: Vec<_> = wanted.iter().rev().cloned().collect();
        assert!(!plans_config(&plan, &reordered), "the tasks' order is part of it, as in planned_config");
        let again = config_plan(&at_generation(node(spec), 6)).expect("plan");
        assert_ne!(
            again.id, plan.id,
            "a config edited back is a new plan: a sidecar answers a known id with its old result"
        );
        assert_ne!(again.tasks[0].id, plan.tasks[0].id);
    }

    #[test]
    fn what_a_config_plan_left_on_the_volume_follows_its_config_tasks() {
        let spec = json!({"chainId": "c", "image": "sei:a", "fullNode": {}, "peers": {"static": ["id@host:26656"]}});
        let plan = config_plan(&at_generation(node(spec), 2)).expect("plan");
        assert_eq!(written_config(&failed_at(plan.clone(), 0)), WrittenConfig::Unchanged, "config-apply refused");
        assert_eq!(written_config(&failed_at(plan.clone(), 1)), WrittenConfig::Partial, "peers not written");
        let digest = config_digest(&planned_config(&plan));
        assert_eq!(written_config(&failed_at(plan.clone(), 3)), WrittenConfig::Whole(digest.clone()), "restart failed");
        let init = init_plan(&node(json!({"chainId": "c", "image": "sei:a", "fullNode": {},
                                             "peers": {"static": ["id@host:26656"]}})))
        .expect("plan");
        assert_eq!(config_digest(&planned_config(&init)), digest, "the init plan writes the same config");
    }
}
