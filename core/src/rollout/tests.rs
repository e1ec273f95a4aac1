//! The rollout rules of docs/design.md §5, one named test per rule (including the intent of the seed design's test list),
//! and the SeiNode currentImage rule of docs/design.md §6.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetStatus};
use serde_json::json;

use super::phase::{NodeCounts, nodes_ready_message};
use super::vocabulary::*;
use super::*;
use crate::api::template_hash;
use crate::api::{
    DeploymentPhase, NodeGate, PlanPhase, SeiNode, SeiNodeDeployment, SeiNodeDeploymentStatus, SeiNodePhase, Strategy,
    TaskStatus, Time,
};
use crate::clock::Timestamp;
use crate::cluster::EventType;
use crate::objects::meta::{LABEL_REVISION, find_condition};
use crate::objects::workload;

const OLD: &str = "sei:v6.3.0";
const NEW: &str = "sei:v6.4.0";

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + seconds).expect("in range")
}

fn deployment(strategy: &str, replicas: i32, image: &str) -> SeiNodeDeployment {
    let mut update_strategy = json!({"type": strategy});
    if strategy == "HardFork" {
        update_strategy["hardFork"] = json!({"haltHeight": 1000});
    }
    serde_json::from_value(json!({
        "apiVersion": "sei.io/v1alpha1",
        "kind": "SeiNodeDeployment",
        "metadata": {"name": "rpc", "namespace": "sei", "uid": "uid-rpc", "generation": 1},
        "spec": {
            "replicas": replicas,
            "updateStrategy": update_strategy,
            "template": {"spec": {
                "chainId": "pacific-1", "image": image,
                "fullNode": {"snapshot": {"s3": {"targetHeight": 0}}}
            }}
        }
    }))
    .expect("valid deployment")
}

#[derive(Clone, Copy)]
struct NodeState<'a> {
    phase: SeiNodePhase,
    image: &'a str,
    current: Option<&'a str>,
    sidecar_ready: bool,
    catching_up: bool,
}

const RUNNING_OLD: NodeState<'static> =
    NodeState { phase: SeiNodePhase::Running, image: OLD, current: Some(OLD), sidecar_ready: true, catching_up: false };

fn node(name: &str, revision: &str, state: NodeState<'_>) -> SeiNode {
    serde_json::from_value(json!({
        "apiVersion": "sei.io/v1alpha1",
        "kind": "SeiNode",
        "metadata": {"name": name, "namespace": "sei", "labels": {LABEL_REVISION: revision}},
        "spec": {"chainId": "pacific-1", "image": state.image, "fullNode": {}},
        "status": {
            "phase": state.phase,
            "currentImage": state.current,
            "sidecarReady": state.sidecar_ready,
            "catchingUp": state.catching_up,
        }
    }))
    .expect("valid node")
}

fn run(d: &SeiNodeDeployment, nodes: &[SeiNode], service: Option<&str>, now: i64) -> Decision {
    let nodes = shared(nodes);
    evaluate(d, &Observed { nodes: &nodes, service_revision: service, now: at(now) }, &RolloutConfig::default())
}

/// Nodes as a list hands them out.
fn shared(nodes: &[SeiNode]) -> Vec<Arc<SeiNode>> {
    nodes.iter().cloned().map(Arc::new).collect()
}

/// A deployment whose baseline was recorded at OLD with `replicas` running nodes, now edited to NEW.
fn edited(strategy: &str, replicas: i32) -> (SeiNodeDeployment, Vec<SeiNode>, String) {
    let mut d = deployment(strategy, replicas, OLD);
    let baseline_revision = template_hash(&d.spec.template.spec);
    let nodes: Vec<SeiNode> =
        (0..replicas).map(|i| node(&format!("rpc-{i}"), &baseline_revision, RUNNING_OLD)).collect();
    d.status = Some(run(&d, &nodes, Some(&baseline_revision), 0).status);
    d.spec.template.spec.image = NEW.into();
    d.metadata.generation = Some(2);
    (d, nodes, baseline_revision)
}

fn rollout_condition(status: &SeiNodeDeploymentStatus) -> (String, String, String) {
    let c = find_condition(&status.conditions, ROLLOUT_IN_PROGRESS).expect("RolloutInProgress is set");
    (c.status.clone(), c.reason.clone(), c.message.clone())
}

fn event_reasons(decision: &Decision) -> Vec<&str> {
    decision.events.iter().map(|e| e.reason.as_str()).collect()
}

fn task_types(status: &SeiNodeDeploymentStatus) -> Vec<&str> {
    status.plan.as_ref().map(|p| p.tasks.iter().map(|t| t.type_.as_str()).collect()).unwrap_or_default()
}

#[test]
fn baseline_is_recorded_on_first_sight_and_starts_nothing() {
    let d = deployment("InPlace", 3, OLD);
    let decision = run(&d, &[], None, 0);
    assert_eq!(decision.status.template_hash.as_deref(), Some(template_hash(&d.spec.template.spec).as_str()));
    assert!(decision.status.rollout.is_none());
    assert!(decision.status.plan.is_none());
    assert!(decision.events.is_empty());
    assert_eq!(decision.status.incumbent_nodes, ["rpc-0", "rpc-1", "rpc-2"]);
    assert_eq!(rollout_condition(&decision.status).0, "False");
}

#[test]
fn detect_in_place_sets_rollout_in_progress_and_plans_in_one_write() {
    let (d, nodes, _) = edited("InPlace", 3);
    let decision = run(&d, &nodes, None, 60);
    let rollout = decision.status.rollout.as_ref().expect("rollout set");
    assert_eq!(rollout.strategy, Strategy::InPlace);
    assert_eq!(rollout.target_hash, template_hash(&d.spec.template.spec));
    let names: Vec<&str> = rollout.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["rpc-0", "rpc-1", "rpc-2"]);
    let (status, reason, _) = rollout_condition(&decision.status);
    assert_eq!((status.as_str(), reason.as_str()), ("True", REASON_TEMPLATE_CHANGED));
    assert_eq!(event_reasons(&decision), [EVENT_ROLLOUT_STARTED]);
    // The baseline does not advance while the rollout runs.
    assert_ne!(decision.status.template_hash, Some(rollout.target_hash.clone()));
    assert_eq!(decision.status.phase, Some(DeploymentPhase::Upgrading));
}

#[test]
fn every_transition_event_carries_a_key_naming_its_transition() {
    // A key is what lets an event owed by a stored status be emitted again after a crash and recorded once.
    let (mut d, nodes, _) = edited("InPlace", 2);
    let started = run(&d, &nodes, None, 60);
    let key = started.events[0].key.clone().expect("keyed");
    assert!(key.starts_with("RolloutStarted/2/"), "{key}");
    d.status = Some(started.status.clone());
    assert_eq!(run(&d, &nodes, None, 61).events, [], "nothing new to report");
    let stalled = run(&d, &nodes, None, 700);
    let stall_key = stalled.events[0].key.clone().expect("keyed");
    assert!(stall_key.starts_with("RolloutStalled/2/") && stall_key != key, "{stall_key}");
}

#[test]
fn in_place_plan_has_exactly_its_three_tasks() {
    let (d, nodes, _) = edited("InPlace", 3);
    let status = run(&d, &nodes, None, 60).status;
    assert_eq!(task_types(&status), ["update-node-specs", "await-spec-update", "mark-nodes-ready"]);
}

#[test]
fn detect_with_an_already_active_rollout_is_a_no_op() {
    let (mut d, nodes, _) = edited("InPlace", 3);
    d.status = Some(run(&d, &nodes, None, 60).status);
    let again = run(&d, &nodes, None, 90);
    assert!(again.events.is_empty(), "{:?}", again.events);
    let before = d.status.as_ref().and_then(|s| s.plan.clone());
    assert_eq!(again.status.plan, before, "the plan is not rebuilt");
    assert_eq!(
        again.status.rollout.as_ref().map(|r| r.started_at.clone()),
        d.status.as_ref().and_then(|s| s.rollout.as_ref()).map(|r| r.started_at.clone())
    );
}

#[test]
fn empty_strategy_type_is_treated_as_in_place_with_a_warning() {
    let (mut d, nodes, _) = edited("InPlace", 2);
    d.spec.update_strategy.type_ = crate::api::UpdateStrategyType::Unspecified;
    let decision = run(&d, &nodes, None, 60);
    assert_eq!(decision.status.rollout.as_ref().map(|r| r.strategy), Some(Strategy::InPlace));
    let defaulted = decision.events.iter().find(|e| e.reason == EVENT_UPDATE_STRATEGY_DEFAULTED).expect("warned");
    assert_eq!(defaulted.type_, EventType::Warning);
}

#[test]
fn an_unknown_strategy_is_reported_once_and_starts_nothing() {
    let (mut d, nodes, _) = edited("InPlace", 2);
    d.spec.update_strategy.type_ = crate::api::UpdateStrategyType::Unknown("Rolling".into());
    let decision = run(&d, &nodes, None, 60);
    assert!(decision.status.rollout.is_none());
    let (status, reason, message) = rollout_condition(&decision.status);
    assert_eq!((status.as_str(), reason.as_str()), ("False", REASON_INVALID_UPDATE_STRATEGY));
    assert!(message.contains("\"Rolling\""), "{message}");
    assert_eq!(event_reasons(&decision), [EVENT_INVALID_UPDATE_STRATEGY]);
    d.status = Some(decision.status);
    assert!(run(&d, &nodes, None, 90).events.is_empty(), "no event storm");
}

#[test]
fn hard_fork_without_halt_height_is_reported_not_planned() {
    let (mut d, nodes, _) = edited("HardFork", 2);
    d.spec.update_strategy.hard_fork = None;
    let decision = run(&d, &nodes, Some("x"), 60);
    assert!(decision.status.rollout.is_none());
    assert!(rollout_condition(&decision.status).2.contains("haltHeight"));
}

#[test]
fn hard_fork_to_a_halt_height_the_incumbents_passed_is_refused_until_the_height_moves_ahead() {
    let (mut d, mut nodes, revision) = edited("HardFork", 2);
    let at_height = |node: &mut SeiNode, height: i64| {
        if let Some(status) = node.status.as_mut() {
            status.latest_height = Some(height);
        }
    };
    // One block short of the upgrade: the incumbents still run the pre-fork binary; the fork can be straddled.
    nodes.iter_mut().for_each(|n| at_height(n, 999));
    assert!(run(&d, &nodes, Some(&revision), 60).status.rollout.is_some());
    // rpc-1 processed the upgrade block: a bootstrap with its binary could not replay the blocks before it.
    at_height(&mut nodes[1], 1000);
    let decision = run(&d, &nodes, Some(&revision), 60);
    assert!(decision.status.rollout.is_none() && decision.status.plan.is_none(), "nothing starts");
    let (status, reason, message) = rollout_condition(&decision.status);
    assert_eq!((status.as_str(), reason.as_str()), ("False", REASON_INVALID_UPDATE_STRATEGY));
    assert!(message.contains("haltHeight 1000 is behind the chain (incumbent rpc-1 is at height 1000)"), "{message}");
    assert_eq!(event_reasons(&decision), [EVENT_INVALID_UPDATE_STRATEGY]);
    d.status = Some(decision.status);
    assert!(run(&d, &nodes, Some(&revision), 90).events.is_empty(), "reported once");
    // The chain moves on: the message's live height is not a new cause — no event, and no status to write.
    at_height(&mut nodes[1], 1042);
    let later = run(&d, &nodes, Some(&revision), 95);
    assert!(later.events.is_empty(), "one Warning while the cause is unchanged");
    assert_eq!(Some(&later.status), d.status.as_ref(), "the status does not follow the height");
    // An edit elsewhere in the spec refuses the same target: still that one report.
    d.metadata.generation = Some(3);
    assert!(run(&d, &nodes, Some(&revision), 100).events.is_empty());
    // The next upgrade's height: the same target now rolls out.
    d.spec.update_strategy.hard_fork = Some(crate::api::HardForkStrategy { halt_height: Some(2000) });
    d.metadata.generation = Some(4);
    let decision = run(&d, &nodes, Some(&revision), 120);
    assert!(decision.status.rollout.is_some());
    assert_eq!(event_reasons(&decision), [EVENT_ROLLOUT_STARTED]);
    assert_eq!(decision.status.refused_target, None, "the refusal is over");
}

#[test]
fn hard_fork_from_entrants_of_the_same_fork_bootstraps_with_the_binary_they_bootstrapped_with() {
    // The active set came out of a HardFork to NEW at this haltHeight: bootstrapped with OLD to 999, running NEW
    // (already a post-fork binary, before and after the chain passes the upgrade). Moving on to a patched NEW must
    // bootstrap with OLD again: NEW cannot replay the blocks before the upgrade.
    const PATCHED: &str = "sei:v6.4.1";
    let mut d = deployment("HardFork", 1, NEW);
    let revision = template_hash(&d.spec.template.spec);
    let mut incumbent = node("rpc-g2-0", &revision, NodeState { image: NEW, current: Some(NEW), ..RUNNING_OLD });
    incumbent.spec.full_node =
        serde_json::from_value(json!({"snapshot": {"s3": {"targetHeight": 999}, "bootstrapImage": OLD}}))
            .expect("a full node mode");
    if let Some(status) = incumbent.status.as_mut() {
        status.latest_height = Some(1005);
    }
    let nodes = [incumbent];
    let mut status = run(&d, &nodes, Some(&revision), 0).status;
    status.active_set = Some(crate::api::ActiveSet::running(revision.clone(), 2, &nodes[0].spec));
    status.incumbent_nodes = vec!["rpc-g2-0".into()];
    d.status = Some(status);
    d.spec.template.spec.image = PATCHED.into();
    d.metadata.generation = Some(2);
    let status = run(&d, &nodes, Some(&revision), 60).status;
    assert_eq!(status.rollout.as_ref().and_then(|r| r.incumbent_image.as_deref()), Some(OLD));
    let spec = &status.plan.expect("planned, not refused: the fork can still be straddled").tasks[0].params["spec"];
    assert_eq!(spec["fullNode"]["snapshot"]["bootstrapImage"], json!(OLD));
    assert_eq!(spec["image"], json!(PATCHED));
}

fn complete_plan(status: &mut SeiNodeDeploymentStatus) {
    if let Some(plan) = status.plan.as_mut() {
        plan.phase = PlanPhase::Complete;
        plan.tasks.iter_mut().for_each(|t| t.status = TaskStatus::Complete);
    }
}

#[test]
fn all_ready_in_place_completes_and_clears_the_rollout() {
    let (mut d, _, revision) = edited("InPlace", 2);
    let running_new = NodeState { image: NEW, current: Some(NEW), ..RUNNING_OLD };
    let nodes: Vec<SeiNode> = (0..2).map(|i| node(&format!("rpc-{i}"), &revision, running_new)).collect();
    let mut status = run(&d, &nodes, None, 60).status;
    complete_plan(&mut status);
    d.status = Some(status);
    let decision = run(&d, &nodes, None, 120);
    assert!(decision.status.rollout.is_none());
    assert_eq!(decision.status.template_hash, Some(template_hash(&d.spec.template.spec)));
    assert_eq!(decision.status.observed_generation, Some(2));
    let (status, reason, _) = rollout_condition(&decision.status);
    assert_eq!((status.as_str(), reason.as_str()), ("False", REASON_ROLLOUT_COMPLETE));
    assert_eq!(event_reasons(&decision), [EVENT_ROLLOUT_COMPLETE]);
    assert_eq!(decision.status.phase, Some(DeploymentPhase::Ready));
}

#[test]
fn partial_in_place_keeps_the_rollout_and_tracks_each_node() {
    let (mut d, _, revision) = edited("InPlace", 2);
    let nodes = vec![
        node("rpc-0", &revision, NodeState { image: NEW, current: Some(NEW), ..RUNNING_OLD }),
        node("rpc-1", &revision, NodeState { image: NEW, current: Some(OLD), ..RUNNING_OLD }),
    ];
    d.status = Some(run(&d, &nodes, None, 60).status);
    let decision = run(&d, &nodes, None, 90);
    let rollout = decision.status.rollout.expect("still rolling");
    let ready: Vec<(&str, bool)> = rollout.nodes.iter().map(|n| (n.name.as_str(), n.ready)).collect();
    assert_eq!(ready, [("rpc-0", true), ("rpc-1", false)]);
}

#[test]
fn stall_escalates_after_the_threshold_with_one_warning_naming_the_waiting_nodes() {
    let (mut d, nodes, _) = edited("InPlace", 2);
    d.status = Some(run(&d, &nodes, None, 0).status);
    let before = run(&d, &nodes, None, 599);
    assert_eq!(rollout_condition(&before.status).1, REASON_TEMPLATE_CHANGED);

    let stalled = run(&d, &nodes, None, 601);
    let (status, reason, message) = rollout_condition(&stalled.status);
    assert_eq!((status.as_str(), reason.as_str()), ("True", REASON_STALLED));
    assert!(message.contains("rpc-0, rpc-1"), "{message}");
    assert_eq!(event_reasons(&stalled), [EVENT_ROLLOUT_STALLED]);
    assert!(stalled.status.rollout.is_some(), "a stall is a signal, not a failure");

    d.status = Some(stalled.status);
    assert!(run(&d, &nodes, None, 700).events.is_empty(), "one Warning per rollout");
}

#[test]
fn stall_threshold_is_configurable() {
    let (mut d, nodes, _) = edited("InPlace", 1);
    d.status = Some(run(&d, &nodes, None, 0).status);
    let config = RolloutConfig { stall_threshold: Duration::from_secs(30) };
    let decision = evaluate(&d, &Observed { nodes: &shared(&nodes), service_revision: None, now: at(31) }, &config);
    assert_eq!(rollout_condition(&decision.status).1, REASON_STALLED);
}

#[test]
fn a_failed_plan_clears_the_rollout_degrades_and_is_not_retried_for_the_same_target() {
    let (mut d, nodes, revision) = edited("BlueGreen", 2);
    let mut status = run(&d, &nodes, Some(&revision), 60).status;
    if let Some(plan) = status.plan.as_mut() {
        plan.phase = PlanPhase::Failed;
        plan.failed_task_index = Some(1);
        plan.failed_task_detail = Some(crate::api::FailedTaskDetail {
            type_: "await-nodes-running".into(),
            id: "t".into(),
            error: "entrant SeiNode rpc-g2-0 failed".into(),
            retry_count: 0,
            max_retries: 0,
        });
    }
    d.status = Some(status);
    let failed = run(&d, &nodes, Some(&revision), 90);
    assert!(failed.status.rollout.is_none());
    let (status, reason, message) = rollout_condition(&failed.status);
    assert_eq!((status.as_str(), reason.as_str()), ("False", REASON_ROLLOUT_FAILED));
    assert!(message.contains("await-nodes-running") && message.contains("rpc-g2-0 failed"), "{message}");
    assert_eq!(failed.events[0].type_, EventType::Warning);
    assert_eq!(failed.status.phase, Some(DeploymentPhase::Degraded));
    assert_eq!(failed.status.incumbent_nodes, ["rpc-0", "rpc-1"], "incumbents untouched");

    d.status = Some(failed.status);
    let later = run(&d, &nodes, Some(&revision), 200);
    assert!(later.status.rollout.is_none(), "the same target is not retried");
    assert!(later.events.is_empty());
    assert_eq!(later.status.phase, Some(DeploymentPhase::Degraded), "and it stays Degraded, not Ready");

    d.spec.template.spec.image = "sei:v6.4.1".into();
    assert!(run(&d, &nodes, Some(&revision), 300).status.rollout.is_some(), "a new spec change starts anew");
}

#[test]
fn supersession_replaces_the_plan_with_one_for_the_newest_spec() {
    let (mut d, nodes, _) = edited("InPlace", 2);
    d.status = Some(run(&d, &nodes, None, 60).status);
    let first_plan = d.status.as_ref().and_then(|s| s.plan.as_ref()).map(|p| p.id.clone());
    d.spec.template.spec.image = "sei:v6.4.1".into();
    d.metadata.generation = Some(3);
    let decision = run(&d, &nodes, None, 90);
    let rollout = decision.status.rollout.as_ref().expect("rolling");
    assert_eq!(rollout.target_hash, template_hash(&d.spec.template.spec));
    assert_ne!(decision.status.plan.as_ref().map(|p| p.id.clone()), first_plan);
    assert_eq!(event_reasons(&decision), [EVENT_ROLLOUT_SUPERSEDED]);
    let params = &decision.status.plan.as_ref().expect("plan").tasks[0].params;
    assert_eq!(params["fields"]["image"], json!("sei:v6.4.1"));
}

#[test]
fn superseded_blue_green_entrants_become_strays_before_the_switch() {
    let (mut d, mut nodes, revision) = edited("BlueGreen", 2);
    d.status = Some(run(&d, &nodes, Some(&revision), 60).status);
    let entrant_revision = template_hash(&d.spec.template.spec);
    nodes.extend((0..2).map(|i| node(&format!("rpc-g2-{i}"), &entrant_revision, RUNNING_OLD)));

    d.spec.template.spec.image = "sei:v6.4.1".into();
    d.metadata.generation = Some(3);
    let decision = run(&d, &nodes, Some(&revision), 90);
    let rollout = decision.status.rollout.as_ref().expect("rolling");
    assert_eq!(rollout.entrant_nodes, ["rpc-g3-0", "rpc-g3-1"]);
    assert_eq!(rollout.incumbent_nodes, ["rpc-0", "rpc-1"]);
    assert_eq!(stray_nodes(&decision.status, &shared(&nodes), Some(&revision)), ["rpc-g2-0", "rpc-g2-1"]);
}

#[test]
fn superseded_blue_green_entrants_that_already_serve_become_the_incumbents() {
    let (mut d, mut nodes, revision) = edited("BlueGreen", 2);
    d.status = Some(run(&d, &nodes, Some(&revision), 60).status);
    let entrant_revision = template_hash(&d.spec.template.spec);
    nodes.extend((0..2).map(|i| node(&format!("rpc-g2-{i}"), &entrant_revision, RUNNING_OLD)));

    d.spec.template.spec.image = "sei:v6.4.1".into();
    d.metadata.generation = Some(3);
    // The Service already selects the g2 entrants.
    let decision = run(&d, &nodes, Some(&entrant_revision), 90);
    let rollout = decision.status.rollout.as_ref().expect("rolling");
    assert_eq!(rollout.incumbent_nodes, ["rpc-g2-0", "rpc-g2-1"]);
    assert_eq!(rollout.incumbent_revision.as_deref(), Some(entrant_revision.as_str()));
    assert_eq!(stray_nodes(&decision.status, &shared(&nodes), Some(&entrant_revision)), ["rpc-0", "rpc-1"]);
}

/// Marks the plan's tasks up to and including `switch-traffic` Complete: the switch is on record.
fn record_switch(status: &mut SeiNodeDeploymentStatus) {
    if let Some(plan) = status.plan.as_mut() {
        for task in plan.tasks.iter_mut() {
            task.status = TaskStatus::Complete;
            if task.type_ == "switch-traffic" {
                break;
            }
        }
    }
}

#[test]
fn a_switch_on_record_outweighs_a_stale_read_of_the_service_when_superseded() {
    let (mut d, mut nodes, revision) = edited("BlueGreen", 2);
    let mut status = run(&d, &nodes, Some(&revision), 60).status;
    let entrant_revision = template_hash(&d.spec.template.spec);
    nodes.extend((0..2).map(|i| node(&format!("rpc-g2-{i}"), &entrant_revision, RUNNING_OLD)));
    record_switch(&mut status);
    d.status = Some(status);
    d.spec.template.spec.image = "sei:v6.4.1".into();
    d.metadata.generation = Some(3);
    // A lagging read still shows the Service on the incumbents; the plan says traffic moved.
    let decision = run(&d, &nodes, Some(&revision), 90);
    let rollout = decision.status.rollout.as_ref().expect("rolling");
    assert_eq!(rollout.incumbent_nodes, ["rpc-g2-0", "rpc-g2-1"], "the entrants serve: they are the incumbents");
    assert!(!stray_nodes(&decision.status, &shared(&nodes), Some(&revision)).iter().any(|n| n.starts_with("rpc-g2")));
}

#[test]
fn a_plan_failing_after_its_switch_keeps_the_entrants_it_switched_to() {
    let (mut d, mut nodes, revision) = edited("BlueGreen", 2);
    let mut status = run(&d, &nodes, Some(&revision), 60).status;
    let entrant_revision = template_hash(&d.spec.template.spec);
    nodes.extend((0..2).map(|i| node(&format!("rpc-g2-{i}"), &entrant_revision, RUNNING_OLD)));
    record_switch(&mut status);
    if let Some(plan) = status.plan.as_mut() {
        plan.phase = PlanPhase::Failed;
        plan.failed_task_index = Some(4);
    }
    d.status = Some(status);
    let failed = run(&d, &nodes, Some(&revision), 90);
    assert!(failed.status.rollout.is_none());
    assert_eq!(failed.status.incumbent_nodes, ["rpc-g2-0", "rpc-g2-1"]);
    assert_eq!(failed.status.active_set.as_ref().map(|s| s.revision.as_str()), Some(entrant_revision.as_str()));
    // The incumbents go once a read shows the Service where the plan put it (a stale one keeps them a while).
    assert!(stray_nodes(&failed.status, &shared(&nodes), Some(&revision)).is_empty());
    assert_eq!(stray_nodes(&failed.status, &shared(&nodes), Some(&entrant_revision)), ["rpc-0", "rpc-1"]);
    assert!(rollout_condition(&failed.status).2.contains("traffic had already moved"));
}

#[test]
fn a_changed_halt_height_supersedes_a_hard_fork_and_its_entrants_bootstrap_to_the_new_height() {
    let (mut d, mut nodes, revision) = edited("HardFork", 2);
    let first = run(&d, &nodes, Some(&revision), 60).status;
    let old = first.rollout.clone().expect("rolling");
    assert_eq!(old.halt_height, Some(1000));
    let entrant_revision = old.entrant_revision.clone().expect("an entrant revision");
    nodes.extend((0..2).map(|i| node(&format!("rpc-g2-{i}"), &entrant_revision, RUNNING_OLD)));
    d.status = Some(first.clone());
    assert!(run(&d, &nodes, Some(&revision), 70).events.is_empty(), "the same target: nothing new");

    d.spec.update_strategy.hard_fork = Some(crate::api::HardForkStrategy { halt_height: Some(1200) });
    d.metadata.generation = Some(3);
    let decision = run(&d, &nodes, Some(&revision), 90);
    let rollout = decision.status.rollout.as_ref().expect("rolling");
    assert_eq!((rollout.halt_height, rollout.target_hash.as_str()), (Some(1200), old.target_hash.as_str()));
    assert_eq!(rollout.entrant_nodes, ["rpc-g3-0", "rpc-g3-1"]);
    assert_ne!(rollout.entrant_revision, old.entrant_revision, "the old entrants must not be selected with the new");
    assert_ne!(decision.status.plan.as_ref().map(|p| &p.id), first.plan.as_ref().map(|p| &p.id));
    assert_eq!(event_reasons(&decision), [EVENT_ROLLOUT_SUPERSEDED]);
    assert!(decision.events[0].message.contains("haltHeight 1000 superseded by haltHeight 1200"));
    let spec = &decision.status.plan.as_ref().expect("a plan").tasks[0].params["spec"];
    assert_eq!(spec["fullNode"]["snapshot"]["s3"]["targetHeight"], json!(1199));
    assert_eq!(stray_nodes(&decision.status, &shared(&nodes), Some(&revision)), ["rpc-g2-0", "rpc-g2-1"]);
}

#[test]
fn a_revert_before_the_switch_cancels_the_rollout_and_keeps_the_incumbents() {
    for strategy in ["BlueGreen", "HardFork"] {
        let (mut d, mut nodes, revision) = edited(strategy, 2);
        let status = run(&d, &nodes, Some(&revision), 60).status;
        let entrant_revision = status.rollout.as_ref().and_then(|r| r.entrant_revision.clone()).expect("revision");
        nodes.extend((0..2).map(|i| node(&format!("rpc-g2-{i}"), &entrant_revision, RUNNING_OLD)));
        d.status = Some(status);
        d.spec.template.spec.image = OLD.into();
        d.metadata.generation = Some(3);
        let decision = run(&d, &nodes, Some(&revision), 90);
        assert!(decision.status.rollout.is_none() && decision.status.plan.is_none(), "{strategy}: canceled");
        let (on, reason, message) = rollout_condition(&decision.status);
        assert_eq!((on.as_str(), reason.as_str()), ("False", REASON_ROLLOUT_CANCELED), "{strategy}");
        assert!(message.contains("which the incumbents already run"), "{message}");
        assert_eq!(event_reasons(&decision), [EVENT_ROLLOUT_SUPERSEDED]);
        assert_eq!(decision.status.incumbent_nodes, ["rpc-0", "rpc-1"]);
        assert_eq!(decision.status.observed_generation, Some(3));
        assert_eq!(decision.status.phase, Some(DeploymentPhase::Ready));
        assert_eq!(stray_nodes(&decision.status, &shared(&nodes), Some(&revision)), ["rpc-g2-0", "rpc-g2-1"]);
    }
}

#[test]
fn a_revert_after_the_switch_rolls_back_out_from_the_entrants() {
    let (mut d, mut nodes, revision) = edited("BlueGreen", 2);
    let mut status = run(&d, &nodes, Some(&revision), 60).status;
    let entrant_revision = status.rollout.as_ref().and_then(|r| r.entrant_revision.clone()).expect("revision");
    nodes.extend((0..2).map(|i| node(&format!("rpc-g2-{i}"), &entrant_revision, RUNNING_OLD)));
    record_switch(&mut status);
    d.status = Some(status);
    d.spec.template.spec.image = OLD.into();
    d.metadata.generation = Some(3);
    let decision = run(&d, &nodes, Some(&entrant_revision), 90);
    let rollout = decision.status.rollout.as_ref().expect("the entrants serve: OLD must be rolled out to again");
    assert_eq!(rollout.incumbent_nodes, ["rpc-g2-0", "rpc-g2-1"]);
    assert_eq!(rollout.entrant_nodes, ["rpc-g3-0", "rpc-g3-1"]);
    assert_ne!(rollout.entrant_revision.as_deref(), Some(revision.as_str()), "not the torn-down incumbents' label");
}

#[test]
fn blue_green_completion_makes_the_entrants_the_active_set() {
    let (mut d, nodes, revision) = edited("BlueGreen", 2);
    let mut status = run(&d, &nodes, Some(&revision), 60).status;
    let entrant_revision = status.rollout.as_ref().and_then(|r| r.entrant_revision.clone()).expect("revision");
    complete_plan(&mut status);
    d.status = Some(status);
    let decision = run(&d, &nodes, Some(&entrant_revision), 90);
    assert_eq!(decision.status.incumbent_nodes, ["rpc-g2-0", "rpc-g2-1"]);
    assert_eq!(
        decision.status.active_set.as_ref().map(|s| (s.revision.clone(), s.generation)),
        Some((entrant_revision, 2))
    );
    // The torn-down incumbents are never recreated: scaling later names nodes of the active set.
    d.status = Some(decision.status);
    d.spec.replicas = 3;
    let scaled = run(&d, &nodes, None, 120);
    assert_eq!(scaled.status.incumbent_nodes, ["rpc-g2-0", "rpc-g2-1", "rpc-g2-2"]);
}

#[test]
fn blue_green_plan_gates_on_caught_up_and_switches_before_teardown() {
    let (d, nodes, revision) = edited("BlueGreen", 2);
    let status = run(&d, &nodes, Some(&revision), 60).status;
    assert_eq!(
        task_types(&status),
        ["create-entrant-nodes", "await-nodes-running", "await-nodes-caught-up", "switch-traffic", "teardown-nodes"]
    );
    let plan = status.plan.expect("plan");
    assert_eq!(plan.tasks[4].params["revision"], json!(revision), "teardown targets the incumbents' revision");
}

#[test]
fn hard_fork_entrants_bootstrap_with_the_incumbent_image_to_one_below_the_halt_height() {
    let (d, nodes, revision) = edited("HardFork", 2);
    let status = run(&d, &nodes, Some(&revision), 60).status;
    assert_eq!(
        task_types(&status),
        ["create-entrant-nodes", "await-nodes-running", "switch-traffic", "teardown-nodes"]
    );
    assert_eq!(status.rollout.as_ref().and_then(|r| r.incumbent_image.as_deref()), Some(OLD));
    let spec = &status.plan.expect("plan").tasks[0].params["spec"];
    assert_eq!(spec["image"], json!(NEW));
    assert_eq!(spec["fullNode"]["snapshot"]["bootstrapImage"], json!(OLD));
    assert_eq!(spec["fullNode"]["snapshot"]["s3"]["targetHeight"], json!(999));
}

#[test]
fn entrant_revision_never_equals_the_serving_revision() {
    // The active set was created at NEW's hash, then moved to OLD in place; rolling back to NEW with BlueGreen
    // must not label the entrants with the serving revision.
    let mut d = deployment("BlueGreen", 1, NEW);
    let new_hash = template_hash(&d.spec.template.spec);
    d.status = Some(run(&d, &[], None, 0).status);
    if let Some(status) = d.status.as_mut() {
        status.template_hash = Some("0000000000000000".into());
    }
    let nodes = [node("rpc-0", &new_hash, RUNNING_OLD)];
    let rollout = run(&d, &nodes, Some(&new_hash), 60).status.rollout.expect("rolling");
    assert_ne!(rollout.entrant_revision.as_deref(), Some(new_hash.as_str()));
}

#[test]
fn phase_is_upgrading_exactly_while_a_rollout_is_in_progress() {
    let (d, nodes, _) = edited("InPlace", 2);
    let decision = run(&d, &nodes, None, 60);
    assert!(decision.status.rollout.is_some());
    assert_eq!(decision.status.phase, Some(DeploymentPhase::Upgrading));
    assert_eq!(rollout_condition(&decision.status).0, "True");
}

#[test]
fn phase_follows_its_rules_in_order() {
    let d = deployment("InPlace", 3, OLD);
    let revision = template_hash(&d.spec.template.spec);
    let with = |phases: &[SeiNodePhase]| -> Vec<SeiNode> {
        phases
            .iter()
            .enumerate()
            .map(|(i, phase)| node(&format!("rpc-{i}"), &revision, NodeState { phase: *phase, ..RUNNING_OLD }))
            .collect()
    };
    use SeiNodePhase::*;
    let phase = |nodes: &[SeiNode]| run(&d, nodes, None, 0).status.phase;
    assert_eq!(phase(&[]), Some(DeploymentPhase::Pending));
    assert_eq!(phase(&with(&[Running, Running, Running])), Some(DeploymentPhase::Ready));
    assert_eq!(phase(&with(&[Failed, Failed, Failed])), Some(DeploymentPhase::Failed));
    assert_eq!(phase(&with(&[Running, Failed, Initializing])), Some(DeploymentPhase::Degraded));
    assert_eq!(phase(&with(&[Running, Initializing, Pending])), Some(DeploymentPhase::Initializing));

    let mut deleting = d.clone();
    deleting.metadata.deletion_timestamp = Some(crate::api::Time(at(0)));
    assert_eq!(run(&deleting, &with(&[Running]), None, 0).status.phase, Some(DeploymentPhase::Terminating));
}

#[test]
fn nodes_ready_message_counts_ready_failed_and_initializing() {
    let counts = NodeCounts { replicas: 4, existing: 3, ready: 2, failed: 1 };
    assert_eq!(nodes_ready_message(&counts), "2/4 nodes ready (1 failed, 1 initializing)");
    let d = deployment("InPlace", 2, OLD);
    let revision = template_hash(&d.spec.template.spec);
    let nodes = [node("rpc-0", &revision, RUNNING_OLD)];
    let status = run(&d, &nodes, None, 0).status;
    let c = find_condition(&status.conditions, NODES_READY).expect("NodesReady");
    assert_eq!((c.status.as_str(), c.message.as_str()), ("False", "1/2 nodes ready (0 failed, 1 initializing)"));
}

#[test]
fn scale_down_strays_are_deleted_but_never_the_last_serving_nodes_before_a_kept_one_serves() {
    let d = deployment("InPlace", 1, OLD);
    let revision = template_hash(&d.spec.template.spec);
    let nodes: Vec<SeiNode> = (0..3).map(|i| node(&format!("rpc-{i}"), &revision, RUNNING_OLD)).collect();
    let status = run(&d, &nodes, Some(&revision), 0).status;
    assert_eq!(stray_nodes(&status, &shared(&nodes), Some(&revision)), ["rpc-1", "rpc-2"]);
    // Were the kept node missing, the serving revision's nodes would be the last to serve: keep them.
    let serving_only = &nodes[1..];
    assert!(stray_nodes(&status, &shared(serving_only), Some(&revision)).is_empty());
    // The kept node is still starting: the serving ones wait for it; the surplus that does not serve goes.
    let starting = NodeState { phase: SeiNodePhase::Initializing, current: None, ..RUNNING_OLD };
    let mut scaled = vec![node("rpc-0", &revision, starting)];
    scaled.push(node("rpc-1", &revision, RUNNING_OLD));
    scaled.push(node("rpc-2", &revision, starting));
    assert_eq!(stray_nodes(&status, &shared(&scaled), Some(&revision)), ["rpc-2"]);
    scaled[0] = node("rpc-0", &revision, RUNNING_OLD);
    assert_eq!(stray_nodes(&status, &shared(&scaled), Some(&revision)), ["rpc-1", "rpc-2"], "once it serves");
}

fn stateful_set(generation: i64, observed: i64, current: &str, update: &str, ready: i32) -> StatefulSet {
    let n = node("rpc-0", "r", NodeState { image: NEW, ..RUNNING_OLD });
    let mut sts = workload::stateful_set(&n, &crate::node_defaults::NodeDefaults::built_in().for_node(&n.spec));
    sts.metadata.generation = Some(generation);
    sts.status = Some(StatefulSetStatus {
        observed_generation: Some(observed),
        current_revision: Some(current.into()),
        update_revision: Some(update.into()),
        ready_replicas: Some(ready),
        replicas: 1,
        ..Default::default()
    });
    sts
}

#[test]
fn current_image_is_observed_once_the_stateful_set_has_converged() {
    assert_eq!(observed_current_image(Some(&stateful_set(2, 2, "rev-b", "rev-b", 1))).as_deref(), Some(NEW));
}

#[test]
fn current_image_is_skipped_while_rolling() {
    assert_eq!(observed_current_image(Some(&stateful_set(2, 2, "rev-a", "rev-b", 1))), None);
}

#[test]
fn current_image_is_skipped_before_the_controller_observed_the_new_generation() {
    // Right after a template change the StatefulSet still shows its old, equal revisions.
    assert_eq!(observed_current_image(Some(&stateful_set(3, 2, "rev-a", "rev-a", 1))), None);
}

#[test]
fn current_image_is_skipped_with_zero_ready_replicas() {
    assert_eq!(observed_current_image(Some(&stateful_set(2, 2, "rev-b", "rev-b", 0))), None);
}

#[test]
fn current_image_is_skipped_with_an_empty_revision() {
    assert_eq!(observed_current_image(Some(&stateful_set(1, 1, "", "", 1))), None);
}

#[test]
fn current_image_without_a_stateful_set_is_unknown() {
    assert_eq!(observed_current_image(None), None);
}

#[test]
fn current_image_observation_is_idempotent() {
    let sts = stateful_set(2, 2, "rev-b", "rev-b", 1);
    assert_eq!(observed_current_image(Some(&sts)), observed_current_image(Some(&sts)));
}

/// A deployment applied again after a `Retain` delete adopts the nodes left running: at its first sight they are
/// the active set (their revision, the generation their names carry), and the baseline is what they run — so a
/// template that differs from them rolls out onto them, and one that matches starts nothing.
#[test]
fn the_first_sight_of_adopted_nodes_takes_them_as_the_active_set_and_what_they_run_as_the_baseline() {
    let set = |status: &SeiNodeDeploymentStatus| {
        status
            .active_set
            .as_ref()
            .map(|s| (s.revision.clone(), s.generation, s.fields.as_ref().map(|f| f.image.clone())))
    };
    let same = deployment("BlueGreen", 2, OLD);
    let entrants: Vec<SeiNode> = (0..2).map(|i| node(&format!("rpc-g3-{i}"), "r3", RUNNING_OLD)).collect();
    let status = run(&same, &entrants, None, 0).status;
    assert_eq!(status.template_hash, Some(template_hash(&same.spec.template.spec)));
    assert_eq!(set(&status), Some(("r3".into(), 3, Some(OLD.into()))));
    assert_eq!(status.incumbent_nodes, ["rpc-g3-0", "rpc-g3-1"]);
    assert!(status.rollout.is_none());

    let mut newer = deployment("InPlace", 2, NEW);
    let first: Vec<SeiNode> = (0..2).map(|i| node(&format!("rpc-{i}"), "r0", RUNNING_OLD)).collect();
    let baseline = run(&newer, &first, None, 0).status;
    assert_eq!(baseline.template_hash, Some(template_hash(&first[0].spec)), "what the nodes run, not the template");
    assert_eq!(set(&baseline), Some(("r0".into(), 0, Some(OLD.into()))), "and the set is recorded as running it");
    newer.status = Some(baseline);
    let next = run(&newer, &first, None, 1).status;
    let rollout = next.rollout.expect("the template rolls out onto the adopted nodes");
    assert_eq!(rollout.target_hash, template_hash(&newer.spec.template.spec));

    // Two sets left by a delete mid-rollout: the one already on the template wins.
    let mut both = first.clone();
    both.extend((0..2).map(|i| node(&format!("rpc-g2-{i}"), "r2", NodeState { image: NEW, ..RUNNING_OLD })));
    let status = run(&deployment("BlueGreen", 2, NEW), &both, None, 0).status;
    assert_eq!(set(&status), Some(("r2".into(), 2, Some(NEW.into()))));
    // Nodes not named as this deployment names its nodes are no set of it.
    let stranger = vec![node("rpc-x", "rx", RUNNING_OLD)];
    let status = run(&deployment("InPlace", 1, NEW), &stranger, None, 0).status;
    let fresh = deployment("InPlace", 1, NEW);
    assert_eq!(set(&status), Some((template_hash(&fresh.spec.template.spec), 0, Some(NEW.into()))));
}

/// `edited("InPlace", n)` with the height gate `upgradeHeight: 1000` and every node at `height`.
fn gated(replicas: i32, height: i64) -> (SeiNodeDeployment, Vec<SeiNode>) {
    let (mut d, mut nodes, _) = edited("InPlace", replicas);
    d.spec.update_strategy.in_place = Some(crate::api::InPlaceStrategy { upgrade_height: Some(1000) });
    for node in &mut nodes {
        node.status.get_or_insert_default().latest_height = Some(height);
    }
    (d, nodes)
}

#[test]
fn a_height_gate_stages_the_image_in_a_gated_plan_and_waits_without_stalling() {
    let (mut d, nodes) = gated(2, 500);
    let started = run(&d, &nodes, None, 60);
    let rollout = started.status.rollout.as_ref().expect("a gated rollout");
    assert_eq!(rollout.upgrade_height, Some(1000));
    assert_eq!(task_types(&started.status), ["update-node-specs-at-height", "await-spec-update", "mark-nodes-ready"]);
    d.status = Some(started.status);
    // An hour later the chain is still below the gate: waiting as asked, not stalled.
    let waiting = run(&d, &nodes, None, 3_660);
    let (status, reason, message) = rollout_condition(&waiting.status);
    assert_eq!((status.as_str(), reason.as_str()), ("True", REASON_AWAITING_UPGRADE_HEIGHT), "{message}");
    assert!(message.contains("committed block 999") && message.contains("rpc-0, rpc-1"), "{message}");
    let gates: Vec<_> = waiting.status.rollout.as_ref().map(|r| r.nodes.iter().map(|n| n.gate).collect()).unwrap();
    assert_eq!(gates, [Some(NodeGate::Waiting), Some(NodeGate::Waiting)]);
    assert!(!event_reasons(&waiting).contains(&EVENT_ROLLOUT_STALLED));
    // Once every node is at the gate the stall threshold counts from that moment.
    let at_gate: Vec<SeiNode> = nodes
        .iter()
        .cloned()
        .map(|mut n| {
            n.status.get_or_insert_default().latest_height = Some(999);
            n
        })
        .collect();
    d.status = Some(waiting.status);
    let reached = run(&d, &at_gate, None, 3_700);
    assert_eq!(reached.status.rollout.as_ref().and_then(|r| r.gate_reached_at.clone()), Some(Time(at(3_700))));
    d.status = Some(reached.status);
    assert_eq!(rollout_condition(&run(&d, &at_gate, None, 4_200).status).1, REASON_TEMPLATE_CHANGED);
    assert_eq!(rollout_condition(&run(&d, &at_gate, None, 4_400).status).1, REASON_STALLED);
}

#[test]
fn a_height_gate_the_fleet_has_passed_is_refused_and_removing_it_rolls_out_at_once() {
    let (mut d, nodes) = gated(2, 1_200);
    let refused = run(&d, &nodes, None, 60);
    assert!(refused.status.rollout.is_none());
    let (_, reason, message) = rollout_condition(&refused.status);
    assert_eq!(reason, REASON_INVALID_UPDATE_STRATEGY);
    assert!(message.contains("upgradeHeight 1000 is behind the chain (node rpc-0 is at height 1200)"), "{message}");
    d.status = Some(refused.status);
    d.spec.update_strategy.in_place = None;
    let rolled = run(&d, &nodes, None, 120);
    assert_eq!(task_types(&rolled.status)[0], "update-node-specs");
}

#[test]
fn moving_or_removing_the_gate_supersedes_a_gated_rollout() {
    let (mut d, nodes) = gated(1, 500);
    d.status = Some(run(&d, &nodes, None, 60).status);
    d.spec.update_strategy.in_place = Some(crate::api::InPlaceStrategy { upgrade_height: Some(1100) });
    let moved = run(&d, &nodes, None, 120);
    assert_eq!(event_reasons(&moved), [EVENT_ROLLOUT_SUPERSEDED]);
    assert!(rollout_condition(&moved.status).2.contains("upgradeHeight 1000 superseded by upgradeHeight 1100"));
    assert_eq!(moved.status.rollout.as_ref().and_then(|r| r.upgrade_height), Some(1100));
    d.status = Some(moved.status);
    d.spec.update_strategy.in_place = None;
    let removed = run(&d, &nodes, None, 180);
    assert!(rollout_condition(&removed.status).2.contains("superseded by no height gate"));
    assert_eq!(task_types(&removed.status)[0], "update-node-specs");
}

/// `gated(replicas, height)` whose active set already runs NEW with the bootstrap `{OLD, bootstrap_height}`
/// recorded (by a gated rollout or a HardFork), every node on NEW, edited on to a patch of NEW.
fn gated_from_a_bootstrapped_set(
    replicas: i32,
    height: i64,
    bootstrap_height: i64,
) -> (SeiNodeDeployment, Vec<SeiNode>) {
    let (mut d, mut nodes) = gated(replicas, height);
    for node in &mut nodes {
        node.spec.image = NEW.into();
        node.status.get_or_insert_default().current_image = Some(NEW.into());
    }
    if let Some(set) = d.status.as_mut().and_then(|s| s.active_set.as_mut()) {
        set.fields = Some(crate::api::RolloutFields::of(&nodes[0].spec));
        set.fork_bootstrap = Some(crate::api::ForkBootstrap { image: OLD.into(), target_height: bootstrap_height });
    }
    d.spec.template.spec.image = "sei:v6.4.1".into();
    (d, nodes)
}

/// `nodes` (their names and labels) in `state`, each having committed `height`.
fn moved_on(nodes: &[SeiNode], state: NodeState<'_>, height: i64) -> Vec<SeiNode> {
    nodes
        .iter()
        .map(|n| {
            let mut moved = node(n.metadata.name.as_deref().unwrap_or_default(), "", state);
            moved.metadata.labels.clone_from(&n.metadata.labels);
            moved.status.get_or_insert_default().latest_height = Some(height);
            moved
        })
        .collect()
}

/// The gated rollout's `previous` fields' image, as planned.
fn planned_previous_image(status: &SeiNodeDeploymentStatus) -> Option<String> {
    let task = status.plan.as_ref()?.tasks.iter().find(|t| t.type_ == "update-node-specs-at-height")?;
    task.params["previous"]["image"].as_str().map(str::to_owned)
}

#[test]
fn a_gate_corrected_below_a_mistyped_one_keeps_the_pre_upgrade_binary_as_the_bootstrap() {
    // The chain's upgrade is at 1000. A rollout to NEW gated at a mistyped 1001 completed (its nodes were already
    // on NEW, switched at 999 by the gate it superseded) and recorded the bootstrap {OLD, 1000}. The gate is
    // corrected to 1000 and the image moved on: OLD is still the binary that committed 999, and NEW (which knows
    // the upgrade) must not become the bootstrap of a node made again (found by fuzz seed 9797001, case 1037).
    let (mut d, nodes) = gated_from_a_bootstrapped_set(2, 999, 1000);
    let started = run(&d, &nodes, None, 60);
    assert_eq!(planned_previous_image(&started.status).as_deref(), Some(OLD));
    let mut status = started.status;
    complete_plan(&mut status);
    d.status = Some(status);
    let patched = NodeState { image: "sei:v6.4.1", current: Some("sei:v6.4.1"), ..RUNNING_OLD };
    let moved = moved_on(&nodes, patched, 1_003);
    let completed = run(&d, &moved, None, 120);
    assert_eq!(event_reasons(&completed), [EVENT_ROLLOUT_COMPLETE]);
    let bootstrap = completed.status.active_set.and_then(|s| s.fork_bootstrap);
    assert_eq!(bootstrap, Some(crate::api::ForkBootstrap { image: OLD.into(), target_height: 999 }));
}

#[test]
fn a_gate_below_a_forked_sets_bootstrap_that_the_chain_has_passed_is_still_refused() {
    // The set went through an upgrade at 2000 (bootstrap {OLD, 1999}) and its nodes run NEW at 2100: a gate at
    // 1000 is behind the chain, though OLD, not NEW, is the binary that committed 999.
    let (d, nodes) = gated_from_a_bootstrapped_set(1, 2_100, 1_999);
    let refused = run(&d, &nodes, None, 60);
    assert!(refused.status.rollout.is_none());
    let (_, reason, message) = rollout_condition(&refused.status);
    assert_eq!(reason, REASON_INVALID_UPDATE_STRATEGY);
    assert!(message.contains("upgradeHeight 1000 is behind the chain (node rpc-0 is at height 2100)"), "{message}");
}

#[test]
fn a_revert_to_the_binary_without_the_upgrade_is_refused_once_the_chain_has_passed_the_gate() {
    // Staged NEW at 1000; the gate switched both nodes, which have processed the upgrade (1003). A revert to OLD
    // would stop every node at the upgrade for good: refused, and the rollout to NEW goes on (found by fuzz seed
    // 9898001 case 1481, shrunk again).
    let (mut d, nodes) = gated(2, 999);
    let started = run(&d, &nodes, None, 60);
    let new_target = started.status.rollout.as_ref().map(|r| r.target_hash.clone());
    d.status = Some(started.status);
    let switched = NodeState { image: NEW, current: Some(NEW), ..RUNNING_OLD };
    let past = moved_on(&nodes, switched, 1_003);
    d.spec.template.spec.image = OLD.into();
    d.metadata.generation = Some(3);
    let refused = run(&d, &past, None, 120);
    assert_eq!(refused.status.rollout.as_ref().map(|r| r.target_hash.clone()), new_target, "the rollout goes on");
    let (_, reason, message) = rollout_condition(&refused.status);
    assert_eq!(reason, REASON_INVALID_UPDATE_STRATEGY);
    assert!(
        message.contains("sei:v6.3.0 is the binary without the upgrade at upgradeHeight 1000")
            && message.contains("node rpc-0 committed or stopped at it"),
        "{message}"
    );
    // The same revert before any node passed the gate is an ordinary revert.
    let reverted = run(&d, &nodes, None, 120);
    assert_eq!(event_reasons(&reverted), [EVENT_ROLLOUT_SUPERSEDED]);
}

#[test]
fn current_sidecar_image_is_observed_with_the_current_image_and_only_then() {
    // The node's spec names no sidecar image: the template carries the operator's default.
    let converged = stateful_set(2, 2, "rev-b", "rev-b", 1);
    assert_eq!(observed_current_sidecar_image(Some(&converged)).as_deref(), Some(workload::DEFAULT_SIDECAR_IMAGE));
    for rolling in [stateful_set(2, 2, "rev-a", "rev-b", 1), stateful_set(3, 2, "rev-a", "rev-a", 1)] {
        assert_eq!(observed_current_sidecar_image(Some(&rolling)), None);
        assert_eq!(observed_current_image(Some(&rolling)), None);
    }
    assert_eq!(observed_current_sidecar_image(Some(&stateful_set(2, 2, "rev-b", "rev-b", 0))), None);
}
