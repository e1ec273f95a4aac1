//! The pods' servers over turmoil: healthz and mark-ready, seid's RPC, restarts and partitions.

use sei_operator::sidecar::wire::{ReadinessStatus, TaskRequest, TaskState};
use sei_operator::sidecar::{PodAddress, SEID_RPC_PORT, Sidecar, SidecarError, Submission};
use sei_sim::kube::kubelet::Seid;
use uuid::Uuid;

use crate::common::*;

fn address() -> PodAddress {
    PodAddress::for_node(NS, "n", 7777)
}

fn mark_ready(id: u128) -> TaskRequest {
    TaskRequest { id: Some(Uuid::from_u128(id)), type_: "mark-ready".into(), params: None }
}

fn started_world(seed: u64) -> sei_sim::World {
    let mut world = world(seed);
    world.create(&headless_service("n")).unwrap();
    world.create(&statefulset("n", "sei:v1", true, "OrderedReady")).unwrap();
    world
        .run_until("sidecar up", secs(60), |w| w.pod(NS, "n-0").is_some_and(|p| p.seid == Seid::WaitingForSidecar))
        .unwrap();
    world
}

#[test]
fn healthz_turns_200_after_mark_ready_and_503_after_a_restart() {
    let mut world = started_world(20);
    let before =
        world.probe("test", |s| async move { (s.healthz(&address()).await, s.status(&address()).await) }).unwrap();
    assert_eq!(before, (Ok(false), Ok(ReadinessStatus::Initializing)));
    assert!(!pod_ready(&world, "n-0"), "seid waits for mark-ready");

    let submitted = world.probe("test", |s| async move { s.submit_task(&address(), &mark_ready(1)).await }).unwrap();
    assert_eq!(submitted, Ok(Submission::Created));
    let again = world.probe("test", |s| async move { s.submit_task(&address(), &mark_ready(1)).await }).unwrap();
    assert_eq!(again, Ok(Submission::AlreadyExists), "resubmitting the same id is idempotent");
    world.run_for(secs(3)).unwrap();
    let task = world.probe("test", |s| async move { s.get_task(&address(), Uuid::from_u128(1)).await }).unwrap();
    assert_eq!(task.unwrap().unwrap().status, TaskState::Completed);
    assert_eq!(world.probe("test", |s| async move { s.healthz(&address()).await }).unwrap(), Ok(true));
    world.run_until("seid ready", secs(10), |w| pod_ready(w, "n-0")).unwrap();
    let chain = world.probe("test", |s| async move { s.chain_status(&address()).await }).unwrap().unwrap();
    assert!(chain.latest_height > 0);

    world.crash_pod(NS, "n-0");
    let after = world.probe("test", |s| async move { s.healthz(&address()).await }).unwrap();
    assert_eq!(after, Ok(false), "the restarted sidecar remembers nothing");
    let forgotten = world.probe("test", |s| async move { s.get_task(&address(), Uuid::from_u128(1)).await }).unwrap();
    assert_eq!(forgotten, Ok(None));
    world.run_until("pod not ready", secs(5), |w| !pod_ready(w, "n-0")).unwrap();
}

#[test]
fn seid_rpc_answers_only_while_seid_runs() {
    let mut world = started_world(21);
    let early = world.probe("test", |s| async move { s.chain_status(&address()).await }).unwrap();
    assert!(
        matches!(early, Err(SidecarError::Unreachable { .. })),
        "nothing listens on {SEID_RPC_PORT} yet: {early:?}"
    );
    world.probe("test", |s| async move { s.submit_task(&address(), &mark_ready(3)).await }).unwrap().unwrap();
    world.run_until("seid ready", secs(10), |w| pod_ready(w, "n-0")).unwrap();
    let running = world.probe("test", |s| async move { s.chain_status(&address()).await }).unwrap().unwrap();
    // A fresh claim starts from genesis and block-syncs towards the tip (1000 and up).
    assert!(running.latest_height > 0 && running.catching_up, "{running:?}");
}

#[test]
fn unknown_hosts_and_bad_requests_are_reported() {
    let mut world = started_world(22);
    let nowhere = PodAddress::for_node(NS, "ghost", 7777);
    let unknown = world.probe("test", move |s| async move { s.healthz(&nowhere).await }).unwrap();
    assert!(matches!(unknown, Err(SidecarError::Unreachable { .. })));
    let bogus = TaskRequest { id: None, type_: "reboot".into(), params: None };
    let rejected = world.probe("test", move |s| async move { s.submit_task(&address(), &bogus).await }).unwrap();
    assert!(matches!(rejected, Err(SidecarError::Rejected { .. })), "{rejected:?}");
}

#[test]
fn a_sidecar_restart_keeps_seid_running() {
    let mut world = started_world(23);
    world.probe("test", |s| async move { s.submit_task(&address(), &mark_ready(7)).await }).unwrap().unwrap();
    world.run_until("seid ready", secs(10), |w| pod_ready(w, "n-0")).unwrap();
    world.restart_sidecar(NS, "n-0");
    world.run_for(secs(2)).unwrap();
    assert!(pod_ready(&world, "n-0"), "seid keeps running");
    let health = world.probe("test", |s| async move { s.healthz(&address()).await }).unwrap();
    assert_eq!(health, Ok(false));
}

#[test]
fn an_unready_pod_has_no_dns_name_unless_its_service_publishes_not_ready_addresses() {
    let mut world = world(24);
    let mut service = headless_service("n");
    service.spec.as_mut().unwrap().publish_not_ready_addresses = None;
    world.create(&service).unwrap();
    world.create(&statefulset("n", "sei:v1", true, "OrderedReady")).unwrap();
    world
        .run_until("sidecar up", secs(60), |w| w.pod(NS, "n-0").is_some_and(|p| p.seid == Seid::WaitingForSidecar))
        .unwrap();
    let hidden = world.probe("test", |s| async move { s.healthz(&address()).await }).unwrap();
    match hidden {
        Err(SidecarError::Unreachable { reason, .. }) => assert!(reason.contains("no such host"), "{reason}"),
        other => panic!("an unready pod is not an endpoint: {other:?}"),
    }
    world
        .edit::<k8s_openapi::api::core::v1::Service>(NS, "n", |s| {
            s.spec.as_mut().unwrap().publish_not_ready_addresses = Some(true);
        })
        .unwrap();
    assert_eq!(world.probe("test", |s| async move { s.healthz(&address()).await }).unwrap(), Ok(false));
}

#[test]
fn scripted_task_failures_fail_that_many_times() {
    let mut world = started_world(25);
    world.fail_task(Some("n"), "config-apply", 1, "disk full");
    let request = |id: u128| TaskRequest { id: Some(Uuid::from_u128(id)), type_: "config-apply".into(), params: None };
    for id in [10, 11] {
        let submitted = world.probe("test", move |s| async move { s.submit_task(&address(), &request(id)).await });
        assert_eq!(submitted.unwrap(), Ok(Submission::Created));
    }
    world.run_for(secs(3)).unwrap();
    let results = world
        .probe("test", |s| async move {
            let first = s.get_task(&address(), Uuid::from_u128(10)).await;
            let second = s.get_task(&address(), Uuid::from_u128(11)).await;
            (first, second)
        })
        .unwrap();
    let (first, second) = (results.0.unwrap().unwrap(), results.1.unwrap().unwrap());
    assert_eq!((first.status, first.error.as_deref()), (TaskState::Failed, Some("disk full")));
    assert_eq!(second.status, TaskState::Completed);
    assert!(first.completed_at.is_some() && first.submitted_at.starts_with("2026-01-01T"));
}

#[test]
fn a_pod_restart_leaves_its_neighbours_alone() {
    let mut world = sei_sim::World::builder(26).workers(1).chain(chain()).registry(registry()).build().unwrap();
    for name in ["a", "b"] {
        world.create(&headless_service(name)).unwrap();
        world.create(&statefulset(name, "sei:v1", true, "OrderedReady")).unwrap();
    }
    world
        .run_until("both up", secs(60), |w| {
            ["a-0", "b-0"].iter().all(|p| w.pod(NS, p).is_some_and(|p| p.seid == Seid::WaitingForSidecar))
        })
        .unwrap();
    for name in ["a", "b"] {
        let pod = PodAddress::for_node(NS, name, 7777);
        world.probe("test", move |s| async move { s.submit_task(&pod, &mark_ready(9)).await }).unwrap().unwrap();
    }
    world.run_until("both ready", secs(10), |w| pod_ready(w, "a-0") && pod_ready(w, "b-0")).unwrap();
    assert_eq!(world.pod(NS, "a-0").unwrap().worker, world.pod(NS, "b-0").unwrap().worker);
    world.crash_pod(NS, "a-0");
    world.run_for(secs(3)).unwrap();
    assert!(!pod_ready(&world, "a-0"));
    assert!(pod_ready(&world, "b-0"), "the neighbour on the same worker keeps running");
    let b = PodAddress::for_node(NS, "b", 7777);
    assert_eq!(world.probe("test", move |s| async move { s.healthz(&b).await }).unwrap(), Ok(true));
}
