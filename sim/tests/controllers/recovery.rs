//! Crash recovery and fault tolerance: the operator loses its memory, its writes conflict, its reads lag, pods
//! and sidecars restart — and every plan resumes from status, with the same ids, to the same outcome.

use std::collections::BTreeSet;

use sei_operator::api::{DeploymentPhase, PlanPhase, SeiNode, SeiNodeDeployment, UpdateStrategyType};
use sei_operator::meta::{LABEL_REVISION, is_controlled_by};
use sei_operator::rollout::template_hash;
use sei_sim::World;

use crate::common::*;

const NODES: [&str; 3] = ["rpc-0", "rpc-1", "rpc-2"];

fn rollout_complete(world: &World, name: &str) -> bool {
    condition(world, name, "RolloutInProgress") == Some(("False".into(), "RolloutComplete".into()))
}

fn current_images(world: &World, names: &[&str]) -> Vec<Option<String>> {
    names.iter().map(|n| node(world, n).and_then(|n| n.status?.current_image)).collect()
}

fn node_plan_id(world: &World, name: &str) -> Option<String> {
    node(world, name)?.status?.plan.map(|p| p.id)
}

/// The rollout plan ids the deployment's status has held while a rollout was set, recorded by `run_until`.
fn record_rollout_plan(world: &World, name: &str, seen: &mut BTreeSet<String>) {
    let status = deployment(world, name).status.unwrap_or_default();
    if status.rollout.is_some()
        && let Some(plan) = status.plan
    {
        seen.insert(plan.id);
    }
}

fn crash_lines(world: &World) -> Vec<String> {
    world.trace().lines().iter().filter(|l| l.contains("operator crashes right after this write")).cloned().collect()
}

/// The operator crashes four times while every node runs its init plan (snapshot restore, config, mark-ready):
/// each node resumes its own plan — same id — and no sidecar starts the same work twice.
#[test]
fn operator_crashes_during_node_init_resume_the_same_init_plans() {
    let mut world = world(11, chain(Some(mins(30))));
    apply_fixture(&world, "inplace-fullnode");
    run_until(&mut world, "every node has its init plan", mins(2), |w| {
        NODES.iter().all(|n| node_plan_id(w, n).is_some())
    });
    let plan_ids: Vec<Option<String>> = NODES.iter().map(|n| node_plan_id(&world, n)).collect();
    run_until(&mut world, "a sidecar accepted a task", mins(2), |w| w.inspect(|s| !s.sidecar_submissions.is_empty()));
    for _ in 0..4 {
        world.crash_operator();
        world.run_for(secs(7)).expect("invariants hold");
    }
    until_ready(&mut world, "rpc", mins(10));

    assert_eq!(NODES.iter().map(|n| node_plan_id(&world, n)).collect::<Vec<_>>(), plan_ids, "init plans rebuilt");
    for name in NODES {
        let plan = node(&world, name).and_then(|n| n.status?.plan).expect("init plan kept");
        assert_eq!(plan.phase, PlanPhase::Complete, "{name}");
    }
    assert_eq!(duplicate_submissions(&world), Vec::<String>::new());
    assert_eq!(world.trace().lines().iter().filter(|l| l.contains("crash operator")).count(), 4);
    world.run_until_settled(mins(1)).expect("settled");
}

/// The operator crashes at three points of an InPlace rollout — right after the plan was persisted, after the
/// first node rolled, after the second — and the rollout completes under the one plan id.
#[test]
fn operator_crashes_mid_rollout_resume_the_same_plan() {
    let mut world = world(12, chain(Some(mins(30))));
    apply_fixture(&world, "inplace-fullnode");
    until_ready(&mut world, "rpc", mins(10));
    let submissions_before = world.inspect(|s| s.sidecar_submissions.len());

    world.edit::<SeiNodeDeployment>(NS, "rpc", |d| d.spec.template.spec.image = PATCH.into()).expect("edited");
    let mut seen = BTreeSet::new();
    run_until(&mut world, "the rollout plan is persisted", mins(1), |w| {
        record_rollout_plan(w, "rpc", &mut seen);
        !seen.is_empty()
    });
    world.crash_operator();
    run_until(&mut world, "a node rolls to the new image", mins(5), |w| {
        record_rollout_plan(w, "rpc", &mut seen);
        current_images(w, &NODES).contains(&Some(PATCH.to_owned()))
    });
    world.crash_operator();
    run_until(&mut world, "a second node rolls", mins(5), |w| {
        record_rollout_plan(w, "rpc", &mut seen);
        current_images(w, &NODES).iter().filter(|i| i.as_deref() == Some(PATCH)).count() >= 2
    });
    world.crash_operator();
    run_until(&mut world, "rollout complete", mins(10), |w| {
        record_rollout_plan(w, "rpc", &mut seen);
        rollout_complete(w, "rpc")
    });

    assert_eq!(seen.len(), 1, "one plan for one rollout across three crashes: {seen:?}");
    assert_eq!(plan_id(&world, "rpc").as_ref(), seen.first(), "the completed plan is the one first persisted");
    assert_eq!(current_images(&world, &NODES), vec![Some(PATCH.to_owned()); 3]);
    assert_eq!(events(&world, "rpc", "RolloutComplete").len(), 1);
    assert_eq!(duplicate_submissions(&world), Vec::<String>::new());
    // The restarted pods' sidecars were re-marked ready: new processes, one mark-ready each.
    let marked = world.inspect(|s| {
        s.sidecar_submissions[submissions_before..].iter().filter(|s| s.task_type == "mark-ready").count()
    });
    assert!(marked >= 3, "every rolled pod was marked ready ({marked} submissions)");
    world.run_until_settled(mins(1)).expect("settled");
}

/// Sieve's intermediate-state fault: the operator dies right after its i-th write of one reconcile, for each
/// write of the reconcile that starts a rollout (1: the plan persisted) and of the one that runs
/// `update-node-specs` (2–4: nodes rewritten one by one, then the status). The restarted operator finishes the
/// same plan; no node is left on the old image.
#[test]
fn operator_crash_right_after_each_write_of_a_reconcile_resumes_the_plan() {
    for write in 1..=4 {
        let mut world = world(20 + u64::from(write), chain(Some(mins(30))));
        apply_fixture(&world, "inplace-fullnode");
        until_ready(&mut world, "rpc", mins(10));

        world.crash_operator_after_write(write);
        world.edit::<SeiNodeDeployment>(NS, "rpc", |d| d.spec.template.spec.image = PATCH.into()).expect("edited");
        let mut seen = BTreeSet::new();
        run_until(&mut world, &format!("the operator crashes after write {write}"), mins(2), |w| {
            record_rollout_plan(w, "rpc", &mut seen);
            !crash_lines(w).is_empty()
        });
        run_until(&mut world, "rollout complete", mins(10), |w| {
            record_rollout_plan(w, "rpc", &mut seen);
            rollout_complete(w, "rpc")
        });

        // Write 1 persists the plan; 2 and 3 rewrite rpc-1 and rpc-2 (rpc-0 before them), leaving nodes of both
        // images; 4 is the status write after update-node-specs.
        let expected =
            ["SeiNodeDeployment sei/rpc", "SeiNode sei/rpc-1", "SeiNode sei/rpc-2", "SeiNodeDeployment sei/rpc"];
        let crash = crash_lines(&world);
        assert_eq!(crash.len(), 1, "write {write}: {crash:?}");
        assert!(crash[0].ends_with(&format!("({})", expected[write as usize - 1])), "write {write}: {}", crash[0]);
        assert_eq!(seen.len(), 1, "write {write} ({}): one plan, got {seen:?}", crash[0]);
        assert_eq!(current_images(&world, &NODES), vec![Some(PATCH.to_owned()); 3], "write {write}");
        assert_eq!(duplicate_submissions(&world), Vec::<String>::new(), "write {write}");
        world.run_until_settled(mins(1)).expect("settled");
    }
}

/// Every other write the operator makes is refused with a Conflict for the whole rollout. Each Conflict
/// re-reads and retries the whole reconcile; the rollout completes, and no status ever shows a Complete plan
/// beside an unfinished rollout.
#[test]
fn conflicts_on_every_other_write_do_not_break_a_rollout() {
    let mut world = world(13, chain(Some(mins(30))));
    apply_fixture(&world, "inplace-fullnode");
    until_ready(&mut world, "rpc", mins(10));

    world.edit::<SeiNodeDeployment>(NS, "rpc", |d| d.spec.template.spec.image = PATCH.into()).expect("edited");
    let mut cursor = world.trace().lines().len();
    let (mut conflicts, mut complete_but_unfinished) = (0, Vec::new());
    run_until(&mut world, "rollout complete under conflicts", mins(20), |w| {
        let status = deployment(w, "rpc").status.unwrap_or_default();
        if status.plan.as_ref().is_some_and(|p| p.phase == PlanPhase::Complete) && status.rollout.is_some() {
            complete_but_unfinished.push(w.now());
        }
        // Arm the next Conflict once the previous one was spent and a write has succeeded since.
        let trace = w.trace();
        let new = &trace.lines()[cursor..];
        cursor = trace.lines().len();
        let succeeded = new.iter().any(|l| l.contains(" write ") && l.contains("operator ") && !l.contains("failed"));
        if succeeded && w.inspect(|s| s.api_faults.conflicts == 0) {
            w.inject_conflicts(1);
            conflicts += 1;
        }
        rollout_complete(w, "rpc")
    });

    assert_eq!(
        complete_but_unfinished,
        Vec::<std::time::Duration>::new(),
        "a plan was left Complete with its rollout unfinished"
    );
    let refused = world
        .trace()
        .lines()
        .iter()
        .filter(|l| l.contains(" write ") && l.contains("operator ") && l.contains("resourceVersion conflict"))
        .count();
    // The rollout takes a few dozen writes: half of them, less the last armed one, were refused.
    assert!(
        conflicts >= 5 && refused + 1 >= conflicts,
        "the rollout ran under conflicts ({conflicts} armed, {refused} refused)"
    );
    assert_eq!(current_images(&world, &NODES), vec![Some(PATCH.to_owned()); 3]);
    assert_eq!(events(&world, "rpc", "RolloutComplete").len(), 1);
    world.heal_all();
    world.run_until_settled(mins(1)).expect("settled");
}

/// Sieve's stale-state fault: the operator reads the store several versions behind while a BlueGreen rollout
/// is superseded by a second image. The deployment ends on the newest image with exactly its replicas, of one
/// revision: the superseded entrants are gone.
#[test]
fn stale_reads_during_supersession_end_on_the_newest_image_with_nothing_leaked() {
    let mut world = world(14, chain(Some(mins(30))));
    let mut blue_green = fixture_deployment("inplace-fullnode");
    blue_green.spec.update_strategy.type_ = UpdateStrategyType::BlueGreen;
    blue_green.spec.replicas = 2;
    world.create(&blue_green).expect("created");
    until_ready(&mut world, "rpc", mins(10));

    world.set_read_lag(5);
    world.edit::<SeiNodeDeployment>(NS, "rpc", |d| d.spec.template.spec.image = PATCH.into()).expect("edited");
    run_until(&mut world, "the first rollout's entrants exist", mins(5), |w| {
        let rollout = deployment(w, "rpc").status.and_then(|s| s.rollout);
        rollout.is_some_and(|r| r.entrant_nodes.iter().all(|n| node(w, n).is_some()))
    });
    let first_entrants = deployment(&world, "rpc").status.and_then(|s| s.rollout).expect("rolling").entrant_nodes;
    world.edit::<SeiNodeDeployment>(NS, "rpc", |d| d.spec.template.spec.image = PATCH2.into()).expect("edited");
    let newest = template_hash(&deployment(&world, "rpc").spec.template.spec);
    run_until(&mut world, "the newest template is rolled out", mins(30), |w| {
        deployment(w, "rpc").status.is_some_and(|s| s.rollout.is_none() && s.template_hash == Some(newest.clone()))
    });
    world.heal_all();
    world.run_until_settled(mins(2)).expect("settled");

    let d = deployment(&world, "rpc");
    let uid = d.metadata.uid.clone().expect("stored");
    let children: Vec<SeiNode> = world
        .list::<SeiNode>(NS, &Default::default())
        .expect("listed")
        .into_iter()
        .filter(|n| is_controlled_by(&n.metadata, &uid))
        .collect();
    let names: Vec<String> = children.iter().filter_map(|n| n.metadata.name.clone()).collect();
    assert_eq!(children.len(), 2, "exactly the replicas, nothing leaked: {names:?}");
    assert!(names.iter().all(|n| !first_entrants.contains(n)), "superseded entrants deleted: {names:?}");
    let revisions: BTreeSet<Option<String>> =
        children.iter().map(|n| n.metadata.labels.as_ref().and_then(|l| l.get(LABEL_REVISION).cloned())).collect();
    assert_eq!(revisions.len(), 1, "{revisions:?}");
    for child in &children {
        assert_eq!(child.spec.image, PATCH2);
        assert_eq!(child.status.as_ref().and_then(|s| s.current_image.as_deref()), Some(PATCH2));
    }
    assert_eq!(phase(&world, "rpc"), Some(DeploymentPhase::Ready));
    assert_eq!(events(&world, "rpc", "RolloutSuperseded").len(), 1);
}

/// A Running node's pod crashes with no rollout anywhere: its sidecar comes back Initializing and seid waits on
/// it. The node controller re-submits mark-ready, and the pod is Ready again — no rollout starts.
#[test]
fn a_pod_restart_outside_any_rollout_is_marked_ready_again() {
    let mut world = world(15, chain(Some(mins(30))));
    apply_fixture(&world, "inplace-fullnode");
    until_ready(&mut world, "rpc", mins(10));
    world.run_for(secs(30)).expect("invariants hold");
    let submissions_before = world.inspect(|s| s.sidecar_submissions.len());

    world.crash_pod(NS, "rpc-1-0");
    world.run_for(secs(1)).expect("invariants hold");
    assert!(!world.pod(NS, "rpc-1-0").expect("pod").is_ready(), "seid waits on the restarted sidecar");
    run_until(&mut world, "the pod is Ready again", mins(1), |w| w.pod(NS, "rpc-1-0").is_some_and(|p| p.is_ready()));
    run_until(&mut world, "the node reports its sidecar ready", mins(1), |w| {
        node(w, "rpc-1").and_then(|n| n.status?.sidecar_ready) == Some(true)
    });

    let marked: Vec<(String, u16)> = world.inspect(|s| {
        s.sidecar_submissions[submissions_before..].iter().map(|s| (s.pod.name.clone(), s.status)).collect()
    });
    assert_eq!(marked.first(), Some(&("rpc-1-0".to_owned(), 201)), "mark-ready re-submitted: {marked:?}");
    assert!(marked.iter().all(|(pod, _)| pod == "rpc-1-0"), "{marked:?}");
    assert_eq!(deployment(&world, "rpc").status.and_then(|s| s.rollout), None);
    assert_eq!(event_reasons(&world, "rpc"), Vec::<String>::new(), "no rollout started");
    assert_eq!(phase(&world, "rpc"), Some(DeploymentPhase::Ready));
    world.run_until_settled(mins(1)).expect("settled");
}

/// Only the sidecar container restarts: seid keeps running, but the new sidecar reports Initializing until it
/// is marked ready again — which the node controller does, with no rollout.
#[test]
fn a_sidecar_restart_outside_any_rollout_is_marked_ready_again() {
    let mut world = world(16, chain(Some(mins(30))));
    apply_fixture(&world, "inplace-fullnode");
    until_ready(&mut world, "rpc", mins(10));
    world.run_for(secs(30)).expect("invariants hold");
    let submissions_before = world.inspect(|s| s.sidecar_submissions.len());

    world.restart_sidecar(NS, "rpc-2-0");
    assert!(!world.pod(NS, "rpc-2-0").and_then(|p| p.sidecar).expect("sidecar").ready);
    run_until(&mut world, "the sidecar is ready again", mins(1), |w| {
        w.pod(NS, "rpc-2-0").and_then(|p| p.sidecar).is_some_and(|s| s.ready)
    });

    let marked: Vec<(String, String, u16)> = world.inspect(|s| {
        s.sidecar_submissions[submissions_before..]
            .iter()
            .map(|s| (s.pod.name.clone(), s.task_type.clone(), s.status))
            .collect()
    });
    assert_eq!(marked.first(), Some(&("rpc-2-0".to_owned(), "mark-ready".to_owned(), 201)), "{marked:?}");
    assert_eq!(deployment(&world, "rpc").status.and_then(|s| s.rollout), None);
    assert_eq!(event_reasons(&world, "rpc"), Vec::<String>::new(), "no rollout started");
    world.run_until_settled(mins(1)).expect("settled");
}

/// Everything at once, on three seeds: stale reads, dropped watch events, random Conflicts and API errors, an
/// operator crash, a pod crash and a sidecar restart while an InPlace rollout is superseded. Once healed, the
/// deployment settles with every node on the newest image and no sidecar work started twice.
#[test]
fn mixed_faults_during_a_superseded_in_place_rollout_settle_on_the_newest_image() {
    for seed in 0..3 {
        let mut world = world(40 + seed, chain(Some(mins(30))));
        apply_fixture(&world, "inplace-fullnode");
        until_ready(&mut world, "rpc", mins(10));
        world.set_read_lag(3);
        world.drop_watch_events(5);
        world.set_api_fault_rates(0.1, 0.05);
        world.edit::<SeiNodeDeployment>(NS, "rpc", |d| d.spec.template.spec.image = PATCH.into()).expect("edited");
        world.run_for(secs(5 + seed * 3)).expect("invariants hold");
        world.crash_operator();
        world.crash_pod(NS, "rpc-0-0");
        world.edit::<SeiNodeDeployment>(NS, "rpc", |d| d.spec.template.spec.image = PATCH2.into()).expect("edited");
        world.run_for(secs(30)).expect("invariants hold");
        world.restart_sidecar(NS, "rpc-1-0");
        world.run_for(secs(30)).expect("invariants hold");
        world.heal_all();
        world.run_until_settled(mins(30)).expect("settled");

        let status = deployment(&world, "rpc").status.expect("status");
        assert_eq!(status.failed_target_hash, None, "seed {seed}");
        assert_eq!(current_images(&world, &NODES), vec![Some(PATCH2.to_owned()); 3], "seed {seed}");
        assert_eq!(duplicate_submissions(&world), Vec::<String>::new(), "seed {seed}");
    }
}

crate::scenario_tests! {}
