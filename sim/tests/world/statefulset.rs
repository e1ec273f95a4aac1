//! The fake StatefulSet controller and kubelet: observedGeneration lag, revisions, rolling, OrderedReady versus
//! Parallel, image pulls and CrashLoopBackOff.

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use sei_sim::kube::kubelet::Seid;

use crate::common::*;

#[test]
fn a_template_change_rolls_only_after_the_observed_generation_lag() {
    let mut world = world(1);
    world.create(&headless_service("n")).unwrap();
    world.create(&statefulset("n", "sei:v1", false, "OrderedReady")).unwrap();
    world.run_until("pod ready", secs(60), |w| pod_ready(w, "n-0")).unwrap();
    let before = sts_status(&world, "n");
    assert_eq!(before.observed_generation, Some(1));
    assert_eq!(before.current_revision, before.update_revision);

    let edited = world
        .edit::<StatefulSet>(NS, "n", |s| {
            let spec = s.spec.as_mut().unwrap().template.spec.as_mut().unwrap();
            spec.containers[0].image = Some("sei:v1.1".into());
        })
        .unwrap();
    assert_eq!(edited.metadata.generation, Some(2));
    world.run_for(secs_f(0.5)).unwrap();
    let lagging = sts_status(&world, "n");
    assert_eq!(lagging.observed_generation, Some(1), "the controller has not seen the change yet");
    assert_eq!(lagging.update_revision, before.update_revision, "revisions still look converged");
    assert_eq!(pod_image(&world, "n-0").as_deref(), Some("sei:v1"));

    world
        .run_until("rolled to v1.1", secs(120), |w| {
            let status = sts_status(w, "n");
            pod_image(w, "n-0").as_deref() == Some("sei:v1.1")
                && pod_ready(w, "n-0")
                && status.current_revision == status.update_revision
        })
        .unwrap();
    let after = sts_status(&world, "n");
    assert_eq!(after.observed_generation, Some(2));
    assert_ne!(after.update_revision, before.update_revision);
    assert_eq!(after.ready_replicas, Some(1));
    assert_eq!(after.updated_replicas, Some(1));
}

fn secs_f(s: f64) -> std::time::Duration {
    std::time::Duration::from_secs_f64(s)
}

fn roll_broken_pod(policy: &str) -> sei_sim::World {
    let mut world = world(2);
    world.create(&headless_service("n")).unwrap();
    world.create(&statefulset("n", "sei:broken", false, policy)).unwrap();
    world
        .run_until("crash looping", secs(60), |w| {
            matches!(w.pod(NS, "n-0").map(|p| p.seid), Some(Seid::BackOff { .. }))
        })
        .unwrap();
    world
        .edit::<StatefulSet>(NS, "n", |s| {
            s.spec.as_mut().unwrap().template.spec.as_mut().unwrap().containers[0].image = Some("sei:v1".into());
        })
        .unwrap();
    world.run_for(secs(120)).unwrap();
    world
}

#[test]
fn an_unready_pod_under_ordered_ready_is_not_replaced() {
    let world = roll_broken_pod("OrderedReady");
    let status = sts_status(&world, "n");
    assert_eq!(status.observed_generation, Some(2), "the controller saw the change");
    assert_ne!(status.current_revision, status.update_revision);
    assert_eq!(pod_image(&world, "n-0").as_deref(), Some("sei:broken"), "the crash-looping pod is left alone");
    assert!(world.pod(NS, "n-0").unwrap().restarts >= 2);
}

#[test]
fn an_unready_pod_under_parallel_is_replaced() {
    let world = roll_broken_pod("Parallel");
    assert_eq!(pod_image(&world, "n-0").as_deref(), Some("sei:v1"));
    assert!(pod_ready(&world, "n-0"));
    let status = sts_status(&world, "n");
    assert_eq!(status.current_revision, status.update_revision);
}

#[test]
fn an_unknown_image_never_pulls_and_never_becomes_ready() {
    let mut world = world(3);
    world.create(&statefulset("n", "sei:nope", false, "OrderedReady")).unwrap();
    world.run_for(secs(300)).unwrap();
    let pod = world.pod(NS, "n-0").unwrap();
    assert_eq!(pod.seid, Seid::ImagePullBackOff);
    assert!(!pod_ready(&world, "n-0"));
    assert_eq!(sts_status(&world, "n").ready_replicas, Some(0));
}

#[test]
fn crash_loop_back_off_doubles_from_ten_seconds_to_five_minutes() {
    let mut world = world(4);
    world.create(&statefulset("n", "sei:broken", false, "OrderedReady")).unwrap();
    let mut backoffs = Vec::new();
    let mut last_until = None;
    while backoffs.len() < 7 {
        world.step().unwrap();
        if let Some(Seid::BackOff { until, .. }) = world.pod(NS, "n-0").map(|p| p.seid)
            && last_until != Some(until)
        {
            last_until = Some(until);
            backoffs.push((until - world.now()).as_secs_f64().round() as u64);
        }
    }
    // Measured one tick after the crash, so each is the back-off less at most a tick.
    let expected = [10, 20, 40, 80, 160, 300, 300];
    for (seen, want) in backoffs.iter().zip(expected) {
        assert!(want - 1 <= *seen && *seen <= want, "back-offs {backoffs:?}, want {expected:?}");
    }
}

#[test]
fn claims_survive_pod_deletion() {
    let mut world = world(5);
    world.create(&statefulset("n", "sei:v1", false, "OrderedReady")).unwrap();
    world.run_until("pod ready", secs(60), |w| pod_ready(w, "n-0")).unwrap();
    world.run_for(secs(30)).unwrap();
    world.delete::<k8s_openapi::api::core::v1::Pod>(NS, "n-0").unwrap();
    world.run_until("pod gone", secs(5), |w| w.pod(NS, "n-0").is_none()).unwrap();
    let saved = world.inspect(|w| w.plane.volumes.values().next().map(|v| v.height)).unwrap();
    assert!(saved > 1_000, "the chain data was saved on the claim: {saved}");
    world.run_until("pod back", secs(60), |w| pod_ready(w, "n-0")).unwrap();
    assert!(world.get::<PersistentVolumeClaim>(NS, "data-n-0").is_ok());
    let pod = world.pod(NS, "n-0").unwrap();
    match pod.seid {
        Seid::Running { run, .. } => assert_eq!(run.start_height, saved, "the new pod resumes from the claim"),
        other => panic!("not running: {other:?}"),
    }
}

#[test]
fn a_dead_node_reads_ready_for_the_grace_period_and_healing_restarts_it() {
    let mut world = world(6);
    world.create(&statefulset("n", "sei:v1", false, "OrderedReady")).unwrap();
    world.run_until("pod ready", secs(60), |w| pod_ready(w, "n-0")).unwrap();
    let worker = world.pod(NS, "n-0").unwrap().worker;
    world.crash_worker(worker);
    world.run_for(secs(30)).unwrap();
    assert!(pod_ready(&world, "n-0"), "the node monitor's grace period: the dead pod still reads Ready");
    world.run_until("pod not ready", secs(15), |w| !pod_ready(w, "n-0")).unwrap();
    world.heal_all();
    world.run_until("pod ready again", secs(60), |w| pod_ready(w, "n-0")).unwrap();
}

fn three_replicas(policy: &str) -> StatefulSet {
    let mut set = statefulset("n", "sei:v1", false, policy);
    set.spec.as_mut().unwrap().replicas = Some(3);
    set
}

/// Trace lines of the StatefulSet controller creating or deleting pods, in order.
fn pod_actions(world: &sei_sim::World) -> Vec<String> {
    world
        .trace()
        .lines()
        .iter()
        .filter(|l| l.contains("statefulset-controller") && (l.contains("create Pod") || l.contains("delete Pod")))
        .map(|l| l.split_whitespace().skip(3).take(3).collect::<Vec<_>>().join(" "))
        .collect()
}

#[test]
fn ordered_ready_creates_pods_one_at_a_time_and_rolls_in_reverse() {
    let mut world = world(7);
    world.create(&three_replicas("OrderedReady")).unwrap();
    world.run_until("all ready", secs(120), |w| ["n-0", "n-1", "n-2"].iter().all(|p| pod_ready(w, p))).unwrap();
    let trace = world.trace();
    let position = |needle: &str| trace.lines().iter().position(|l| l.contains(needle)).unwrap();
    assert!(position("create Pod sei/n-1") > position("Pod sei/n-0 phase=Running ready=true"));
    assert!(position("create Pod sei/n-2") > position("Pod sei/n-1 phase=Running ready=true"));
    world
        .edit::<StatefulSet>(NS, "n", |s| {
            s.spec.as_mut().unwrap().template.spec.as_mut().unwrap().containers[0].image = Some("sei:v1.1".into());
        })
        .unwrap();
    world
        .run_until("rolled", secs(300), |w| {
            let status = sts_status(w, "n");
            status.observed_generation == Some(2) && status.current_revision == status.update_revision
        })
        .unwrap();
    let deletes: Vec<String> = pod_actions(&world).into_iter().filter(|a| a.starts_with("delete")).collect();
    assert_eq!(deletes, ["delete Pod sei/n-2", "delete Pod sei/n-1", "delete Pod sei/n-0"]);
    assert_eq!(sts_status(&world, "n").updated_replicas, Some(3));
}

#[test]
fn parallel_creates_every_pod_at_once_and_scales_down_from_the_top() {
    let mut world = world(8);
    world.create(&three_replicas("Parallel")).unwrap();
    world.run_for(secs(3)).unwrap();
    let creates = pod_actions(&world);
    assert_eq!(creates, ["create Pod sei/n-0", "create Pod sei/n-1", "create Pod sei/n-2"]);
    world.run_until("all ready", secs(60), |w| ["n-0", "n-1", "n-2"].iter().all(|p| pod_ready(w, p))).unwrap();
    world.edit::<StatefulSet>(NS, "n", |s| s.spec.as_mut().unwrap().replicas = Some(1)).unwrap();
    world.run_until("scaled down", secs(60), |w| sts_status(w, "n").replicas == 1).unwrap();
    world.run_until("pods killed", secs(5), |w| w.pod(NS, "n-1").is_none() && w.pod(NS, "n-2").is_none()).unwrap();
    assert!(world.pod(NS, "n-0").is_some());
    assert!(world.get::<PersistentVolumeClaim>(NS, "data-n-2").is_ok(), "claims outlive scale-down (Retain)");
}

#[test]
fn deleting_the_stuck_pod_under_ordered_ready_recreates_it_at_the_update_revision() {
    let mut world = roll_broken_pod("OrderedReady");
    assert_eq!(pod_image(&world, "n-0").as_deref(), Some("sei:broken"));
    world.delete::<k8s_openapi::api::core::v1::Pod>(NS, "n-0").unwrap();
    world
        .run_until("recreated on v1", secs(60), |w| {
            pod_image(w, "n-0").as_deref() == Some("sei:v1") && pod_ready(w, "n-0")
        })
        .unwrap();
    world
        .run_until("rollout complete", secs(5), |w| {
            let status = sts_status(w, "n");
            status.current_revision == status.update_revision
        })
        .unwrap();
}

#[test]
fn a_pod_deleted_on_a_dead_node_stays_terminating_and_is_not_replaced_until_the_node_returns() {
    let mut world = world(9);
    world.create(&statefulset("n", "sei:v1", false, "OrderedReady")).unwrap();
    world.run_until("pod ready", secs(60), |w| pod_ready(w, "n-0")).unwrap();
    let old_uid = world.get::<k8s_openapi::api::core::v1::Pod>(NS, "n-0").unwrap().metadata.uid;
    let worker = world.pod(NS, "n-0").unwrap().worker;
    world.crash_worker(worker);
    world.delete::<k8s_openapi::api::core::v1::Pod>(NS, "n-0").unwrap();
    world.run_for(secs(60)).unwrap();
    let stuck = world.get::<k8s_openapi::api::core::v1::Pod>(NS, "n-0").unwrap();
    assert!(stuck.metadata.deletion_timestamp.is_some(), "Terminating");
    assert_eq!(stuck.metadata.uid, old_uid, "the StatefulSet did not replace it (at most one pod per ordinal)");
    world.restart_worker(worker);
    world
        .run_until("replaced", secs(60), |w| {
            pod_ready(w, "n-0") && w.get::<k8s_openapi::api::core::v1::Pod>(NS, "n-0").unwrap().metadata.uid != old_uid
        })
        .unwrap();
}

/// A client that read a StatefulSet answers its next read from the object it decoded only while the stored set
/// is unchanged: after an edit it reads the edit, and what it hands out is the stored object either way.
#[test]
fn a_client_rereads_a_statefulset_it_decoded_once_the_set_changes() {
    use sei_operator_core::cluster::Cluster;
    use sei_sim::harness::world::poll_ready;
    let world = world(1);
    world.create(&headless_service("n")).unwrap();
    world.create(&statefulset("n", "sei:v1", false, "OrderedReady")).unwrap();
    let client = world.cluster();
    let read = |client: &sei_sim::operator_host::cluster::SimCluster| {
        poll_ready(client.get::<StatefulSet>(NS, "n")).expect("a store read does not wait").unwrap()
    };
    let first = read(&client);
    assert_eq!(read(&client), first, "an unchanged set reads the same");
    let edited = world
        .edit::<StatefulSet>(NS, "n", |s| {
            s.spec.as_mut().unwrap().template.spec.as_mut().unwrap().containers[0].image = Some("sei:v2".into());
        })
        .unwrap();
    let second = read(&client);
    assert_ne!(second.metadata.resource_version, first.metadata.resource_version);
    assert_eq!(second, edited, "the edit, as stored");
    assert_eq!(second, read(&world.cluster()), "what a client that never read it decodes");
}
