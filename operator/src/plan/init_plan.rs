//! A SeiNode's init plan (SPEC §6): with a bootstrap image and a target height, first the bootstrap — a Service,
//! a Job running the bootstrap image on the node's volume, the bootstrap pod's sidecar tasks (restore to the
//! target, config, mark-ready), waiting for seid to halt at the target, tearing it down — then the node's own
//! workload (headless Service, StatefulSet), then the sidecar tasks for its mode.

use serde_json::json;

use super::builder::{PlanBuilder, PlanError};
use super::params::Bootstrap;
use super::task_type::TaskType;
use crate::api::{NodeMode, Plan, SeiNode, SeiNodeSpec};
use crate::names;
use crate::rollout::hash::template_hash;
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

/// Builds the init plan of a stored SeiNode.
pub fn init_plan(node: &SeiNode) -> Result<Plan, PlanError> {
    let name = node.metadata.name.clone().unwrap_or_default();
    let uid = node.metadata.uid.as_deref().ok_or_else(|| PlanError::NotStored(format!("SeiNode {name}")))?;
    let spec = &node.spec;
    let mode = spec.mode().ok_or_else(|| {
        PlanError::InvalidSpec("exactly one mode must be set: fullNode, archive, validator or replayer".into())
    })?;
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
    plan = plan.task(TaskType::Sidecar(SidecarTaskType::ConfigApply), &config_apply_params(spec, mode))?;
    if let Some(peers) = &spec.peers {
        plan = plan.task(TaskType::Sidecar(SidecarTaskType::DiscoverPeers), peers)?;
    }
    Ok(plan
        .task(TaskType::Sidecar(SidecarTaskType::ConfigValidate), &json!({}))?
        .task(TaskType::Sidecar(SidecarTaskType::MarkReady), &json!({}))?
        .build())
}
