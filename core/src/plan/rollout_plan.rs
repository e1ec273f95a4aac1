//! The plan of each rollout strategy (docs/design.md §4):
//!
//! | strategy  | tasks |
//! |-----------|-------|
//! | InPlace   | update-node-specs → await-spec-update → mark-nodes-ready |
//! | InPlace, gated at H | update-node-specs-at-height (each node once it has committed H-1) → await-spec-update → mark-nodes-ready |
//! | BlueGreen | create-entrant-nodes → await-nodes-running → await-nodes-caught-up → switch-traffic → teardown-nodes |
//! | HardFork  | create-entrant-nodes (with bootstrap) → await-nodes-running → switch-traffic → teardown-nodes |
//!
//! Nodes a superseded or failed rollout leaves behind are not the plan's business: the deployment controller
//! deletes every owned node that is neither in the active set nor in the current rollout
//! (`rollout::stray_nodes`), whatever left it there.

use std::collections::BTreeMap;

use super::builder::{PlanBuilder, PlanError};
use super::params::{
    AwaitNodes, CreateEntrantNodes, NewNode, RolloutFields, SwitchTraffic, TeardownNodes, UpdateNodeSpecs,
    UpdateNodeSpecsAtHeight,
};
use super::task_type::TaskType;
use crate::api::{Plan, RolloutStatus, S3Snapshot, SeiNodeSpec, SeiNodeTemplate, Strategy};
use crate::objects::meta::{LABEL_DEPLOYMENT, LABEL_REVISION};
use crate::objects::names;

/// What a rollout plan is built from.
pub struct RolloutPlanInput<'a> {
    pub owner_uid: &'a str,
    pub deployment: &'a str,
    /// The rollout being planned (strategy, target, node sets, revisions, incumbent image).
    pub rollout: &'a RolloutStatus,
    /// The template the rollout moves to.
    pub template: &'a SeiNodeTemplate,
    /// HardFork: the upgrade height.
    pub halt_height: Option<i64>,
    /// The fields the nodes ran before the rollout (the active set's), when recorded: a gated InPlace rollout
    /// puts them back on a node that runs the target below the gate.
    pub previous_fields: Option<RolloutFields>,
}

/// Builds the plan of `input.rollout.strategy`.
pub fn rollout_plan(input: &RolloutPlanInput<'_>) -> Result<Plan, PlanError> {
    let rollout = input.rollout;
    let plan = PlanBuilder::new(input.owner_uid, &rollout.plan_target(), &rollout.strategy.to_string());
    let plan = match rollout.strategy {
        Strategy::InPlace => in_place(plan, input)?,
        Strategy::BlueGreen | Strategy::HardFork => blue_green(plan, input)?,
    };
    Ok(plan.build())
}

fn in_place(plan: PlanBuilder, input: &RolloutPlanInput<'_>) -> Result<PlanBuilder, PlanError> {
    let nodes: Vec<String> = input.rollout.nodes.iter().map(|n| n.name.clone()).collect();
    let fields = RolloutFields::of(&input.template.spec);
    let image = Some(fields.image.clone());
    let plan = match input.rollout.upgrade_height {
        Some(upgrade_height) => plan.task(
            TaskType::UpdateNodeSpecsAtHeight,
            &UpdateNodeSpecsAtHeight {
                nodes: nodes.clone(),
                fields,
                upgrade_height,
                previous: input.previous_fields.clone(),
            },
        )?,
        None => plan.task(TaskType::UpdateNodeSpecs, &UpdateNodeSpecs { nodes: nodes.clone(), fields })?,
    };
    plan.task(TaskType::AwaitSpecUpdate, &AwaitNodes { nodes: nodes.clone(), image: image.clone() })?
        .task(TaskType::MarkNodesReady, &AwaitNodes { nodes, image })
}

fn blue_green(plan: PlanBuilder, input: &RolloutPlanInput<'_>) -> Result<PlanBuilder, PlanError> {
    let rollout = input.rollout;
    let (Some(entrant_revision), Some(incumbent_revision)) = (&rollout.entrant_revision, &rollout.incumbent_revision)
    else {
        return Err(PlanError::InvalidSpec(format!("a {} rollout needs both revisions", rollout.strategy)));
    };
    let spec = match rollout.strategy {
        Strategy::HardFork => hard_fork_entrant_spec(input)?,
        _ => input.template.spec.clone(),
    };
    let metadata = input.template.metadata.clone().unwrap_or_default();
    let entrants = AwaitNodes { nodes: rollout.entrant_nodes.clone(), image: Some(spec.image.clone()) };
    let service = names::deployment_service(input.deployment);
    let mut plan = plan.task(
        TaskType::CreateEntrantNodes,
        &CreateEntrantNodes {
            nodes: rollout
                .entrant_nodes
                .iter()
                .zip(0..)
                .map(|(name, ordinal)| NewNode { name: name.clone(), ordinal })
                .collect(),
            revision: entrant_revision.clone(),
            labels: metadata.labels,
            annotations: metadata.annotations,
            spec,
        },
    )?;
    plan = plan.task(TaskType::AwaitNodesRunning, &entrants)?;
    if rollout.strategy == Strategy::BlueGreen {
        plan = plan.task(TaskType::AwaitNodesCaughtUp, &entrants)?;
    }
    plan.task(
        TaskType::SwitchTraffic,
        &SwitchTraffic {
            service: service.clone(),
            selector: BTreeMap::from([
                (LABEL_DEPLOYMENT.to_owned(), input.deployment.to_owned()),
                (LABEL_REVISION.to_owned(), entrant_revision.clone()),
            ]),
        },
    )?
    .task(
        TaskType::TeardownNodes,
        &TeardownNodes { nodes: rollout.incumbent_nodes.clone(), revision: incumbent_revision.clone(), service },
    )
}

/// The HardFork entrant spec: the new template, bootstrapped with the incumbent image to `haltHeight - 1`, so
/// that the bootstrap Job (old binary) stops one block short of the upgrade and the node's own StatefulSet
/// starts the new binary exactly at the upgrade height.
fn hard_fork_entrant_spec(input: &RolloutPlanInput<'_>) -> Result<SeiNodeSpec, PlanError> {
    let halt_height = input
        .halt_height
        .filter(|h| *h >= 1)
        .ok_or_else(|| PlanError::InvalidSpec("HardFork needs spec.updateStrategy.hardFork.haltHeight >= 1".into()))?;
    let incumbent_image = input.rollout.incumbent_image.clone().ok_or_else(|| {
        PlanError::InvalidSpec("HardFork needs the incumbents' image, and no incumbent node reports one".into())
    })?;
    let mut spec = input.template.spec.clone();
    let snapshot =
        spec.snapshot_mut().and_then(Option::as_mut).filter(|snapshot| snapshot.s3.is_some()).ok_or_else(|| {
            PlanError::InvalidSpec(
                "HardFork needs an S3 snapshot source in the template (template.spec.<mode>.snapshot.s3)".into(),
            )
        })?;
    snapshot.bootstrap_image = Some(incumbent_image);
    snapshot.s3 = Some(S3Snapshot { target_height: halt_height - 1 });
    Ok(spec)
}
