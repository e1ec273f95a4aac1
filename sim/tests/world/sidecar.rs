//! The pods' servers over turmoil: healthz and mark-ready, seid's RPC, restarts and partitions — and the fake
//! sidecar's fidelity to seictl (sei-protocol/seictl `sidecar/engine/engine.go`, `sidecar/server/server.go`,
//! `serve.go`): a task table on the volume that outlives restarts, a ready flag that does not, `Engine.Submit`'s
//! idempotence and re-runs, `RehydrateStaleTasks`, and the server's status codes and error bodies.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use sei_operator_core::cluster::ObjectRef;
use sei_operator_core::sidecar::wire::{ReadinessStatus, TaskRequest, TaskResult, TaskState};
use sei_operator_core::sidecar::{PodAddress, SEID_RPC_PORT, Sidecar, SidecarError};
use sei_sim::World;
use sei_sim::kube::kubelet::Seid;
use sei_sim::node::sidecar::api;
use serde_json::{Value, json};
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
    assert_eq!(submitted, Ok(Uuid::from_u128(1)));
    let again = world.probe("test", |s| async move { s.submit_task(&address(), &mark_ready(1)).await }).unwrap();
    assert_eq!(again, Ok(Uuid::from_u128(1)), "resubmitting the same id answers the same");
    assert_eq!(started(&world), [(1, true, 1), (1, false, 1)], "and starts nothing");
    world.run_for(secs(3)).unwrap();
    let task = world.probe("test", |s| async move { s.get_task(&address(), Uuid::from_u128(1)).await }).unwrap();
    assert_eq!(task.unwrap().unwrap().status, TaskState::Completed);
    assert_eq!(world.probe("test", |s| async move { s.healthz(&address()).await }).unwrap(), Ok(true));
    world.run_until("seid ready", secs(10), |w| pod_ready(w, "n-0")).unwrap();
    let chain = world.probe("test", |s| async move { s.chain_status(&address()).await }).unwrap().unwrap();
    assert!(chain.latest_height > 0);

    world.crash_pod(NS, "n-0");
    let after = world.probe("test", |s| async move { s.healthz(&address()).await }).unwrap();
    assert_eq!(after, Ok(false), "the restarted sidecar is not ready");
    let kept = world.probe("test", |s| async move { s.get_task(&address(), Uuid::from_u128(1)).await }).unwrap();
    assert_eq!(kept.unwrap().unwrap().status, TaskState::Completed, "though its task table on the volume is kept");
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
    let message = "unknown task type: reboot";
    assert!(matches!(&rejected, Err(SidecarError::Rejected { message: m, .. }) if m == message), "{rejected:?}");
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
        assert_eq!(submitted.unwrap(), Ok(Uuid::from_u128(id)));
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

// ---- seictl fidelity -------------------------------------------------------------------------------------------

fn pod_key() -> ObjectRef {
    ObjectRef::new("Pod", NS, "n-0")
}

/// Every submission the sidecars accepted: (id, started a run, run number).
fn started(world: &World) -> Vec<(u128, bool, u32)> {
    world.inspect(|s| s.ledger.sidecar_submissions.iter().map(|s| (s.id.as_u128(), s.started, s.run)).collect())
}

fn task_request(id: u128, type_: &str, params: Option<Value>) -> TaskRequest {
    TaskRequest { id: Some(Uuid::from_u128(id)), type_: type_.into(), params }
}

fn submit(world: &mut World, request: TaskRequest) -> Result<Uuid, SidecarError> {
    world.probe("test", move |s| async move { s.submit_task(&address(), &request).await }).unwrap()
}

fn get_task(world: &mut World, id: u128) -> Option<TaskResult> {
    world.probe("test", move |s| async move { s.get_task(&address(), Uuid::from_u128(id)).await }).unwrap().unwrap()
}

fn readiness(world: &mut World) -> (bool, ReadinessStatus) {
    world
        .probe("test", |s| async move { (s.healthz(&address()).await.unwrap(), s.status(&address()).await.unwrap()) })
        .unwrap()
}

fn wait_for_sidecar(world: &mut World) {
    world.run_until("sidecar up", secs(60), |w| w.pod(NS, "n-0").is_some_and(|p| p.sidecar.is_some())).unwrap();
}

fn incarnation(world: &World) -> u64 {
    world.pod(NS, "n-0").and_then(|p| p.sidecar).map(|s| s.incarnation).expect("a sidecar process")
}

/// The raw HTTP answer of the pod's sidecar to one request, as its server computes it.
fn raw(world: &World, method: &str, path: &str, body: &str) -> (u16, String) {
    let incarnation = incarnation(world);
    world.modify(|s| api::sidecar(s, &pod_key(), incarnation, "test", method, path, body.as_bytes()))
}

fn error_body(message: &str) -> String {
    json!({ "error": message }).to_string() + "\n"
}

#[test]
fn the_task_table_survives_a_sidecar_restart_a_pod_restart_and_the_pod_re_created_on_its_claim() {
    let mut world = started_world(60);
    submit(&mut world, task_request(20, "config-apply", None)).unwrap();
    world.run_for(secs(3)).unwrap();
    let done = get_task(&mut world, 20).expect("known");
    assert_eq!((done.status, done.run), (TaskState::Completed, 1));

    world.restart_sidecar(NS, "n-0");
    assert_eq!(get_task(&mut world, 20).as_ref(), Some(&done), "after a sidecar restart");
    world.crash_pod(NS, "n-0");
    wait_for_sidecar(&mut world);
    assert_eq!(get_task(&mut world, 20).as_ref(), Some(&done), "after a pod restart");
    let uid = world.pod(NS, "n-0").unwrap().uid;
    world.delete::<Pod>(NS, "n-0").unwrap();
    world
        .run_until("pod re-created", secs(120), |w| {
            w.pod(NS, "n-0").is_some_and(|p| p.uid != uid && p.seid == Seid::WaitingForSidecar)
        })
        .unwrap();
    assert_eq!(get_task(&mut world, 20).as_ref(), Some(&done), "in a new pod on the same claim");
}

#[test]
fn a_pod_without_a_volume_keeps_its_task_table_in_the_process() {
    let mut world = world(61);
    world.create(&headless_service("n")).unwrap();
    let mut set = statefulset("n", "sei:v1", true, "OrderedReady");
    set.spec.as_mut().unwrap().volume_claim_templates = None;
    world.create(&set).unwrap();
    world
        .run_until("sidecar up", secs(60), |w| w.pod(NS, "n-0").is_some_and(|p| p.seid == Seid::WaitingForSidecar))
        .unwrap();
    assert_eq!(world.pod(NS, "n-0").unwrap().volume, None);
    submit(&mut world, task_request(21, "config-apply", None)).unwrap();
    world.run_for(secs(3)).unwrap();
    assert_eq!(get_task(&mut world, 21).map(|t| t.status), Some(TaskState::Completed));
    world.restart_sidecar(NS, "n-0");
    assert_eq!(get_task(&mut world, 21), None, "lost with the process");
}

#[test]
fn a_completed_mark_ready_resubmitted_to_a_restarted_sidecar_is_a_no_op_and_a_new_id_marks_it_ready() {
    let mut world = started_world(62);
    submit(&mut world, mark_ready(1)).unwrap();
    world.run_until("seid ready", secs(10), |w| pod_ready(w, "n-0")).unwrap();
    assert_eq!(readiness(&mut world), (true, ReadinessStatus::Ready));

    world.restart_sidecar(NS, "n-0");
    assert_eq!(readiness(&mut world), (false, ReadinessStatus::Initializing), "the ready flag is memory only");
    assert_eq!(submit(&mut world, mark_ready(1)), Ok(Uuid::from_u128(1)), "201 with the same id");
    world.run_for(secs(5)).unwrap();
    assert_eq!(readiness(&mut world), (false, ReadinessStatus::Initializing), "a completed id is not run again");
    assert_eq!(get_task(&mut world, 1).map(|t| t.run), Some(1));

    assert_eq!(submit(&mut world, mark_ready(2)), Ok(Uuid::from_u128(2)));
    world.run_for(secs(3)).unwrap();
    assert_eq!(readiness(&mut world), (true, ReadinessStatus::Ready), "a new id runs and marks this process ready");
    assert_eq!(started(&world), [(1, true, 1), (1, false, 1), (2, true, 1)]);
}

#[test]
fn a_failed_task_submitted_again_runs_again_as_run_2() {
    let mut world = started_world(63);
    world.fail_task(Some("n"), "config-apply", 1, "disk full");
    submit(&mut world, task_request(30, "config-apply", None)).unwrap();
    world.run_for(secs(3)).unwrap();
    let failed = get_task(&mut world, 30).unwrap();
    assert_eq!((failed.status, failed.run, failed.error.as_deref()), (TaskState::Failed, 1, Some("disk full")));

    assert_eq!(submit(&mut world, task_request(30, "config-apply", None)), Ok(Uuid::from_u128(30)));
    let rerun = get_task(&mut world, 30).unwrap();
    assert_eq!((rerun.status, rerun.run, rerun.error), (TaskState::Running, 2, None));
    world.run_for(secs(3)).unwrap();
    let done = get_task(&mut world, 30).unwrap();
    assert_eq!((done.status, done.run), (TaskState::Completed, 2));
    // Completed now: a third submission is a no-op.
    submit(&mut world, task_request(30, "config-apply", None)).unwrap();
    assert_eq!(started(&world), [(30, true, 1), (30, true, 2), (30, false, 2)]);
}

#[test]
fn a_task_running_at_a_restart_is_run_again_by_the_next_process_only() {
    let mut world = started_world(64);
    // snapshot-restore takes 30 s.
    submit(&mut world, task_request(40, "snapshot-restore", Some(json!({"targetHeight": 0})))).unwrap();
    let submitted_at = world.now();
    world.run_for(secs(20)).unwrap();
    world.restart_sidecar(NS, "n-0");
    let restarted_at = world.now();
    let trace = world.trace();
    assert!(
        trace.lines().iter().any(|l| l.contains("sidecar re-runs snapshot-restore") && l.contains("(run 1)")),
        "the new process re-runs it (RehydrateStaleTasks), run number unchanged"
    );
    // The dead process's run would have finished 30 s after the submission: nothing finishes it.
    world.run_for((submitted_at + secs(31)).saturating_sub(world.now())).unwrap();
    let running = get_task(&mut world, 40).unwrap();
    assert_eq!((running.status, running.run), (TaskState::Running, 1));
    world.run_for((restarted_at + secs(31)).saturating_sub(world.now())).unwrap();
    let done = get_task(&mut world, 40).unwrap();
    assert_eq!((done.status, done.run), (TaskState::Completed, 1));

    // A pod restart too; and a mark-ready caught running marks the new process ready when it completes there.
    submit(&mut world, mark_ready(41)).unwrap();
    world.crash_pod(NS, "n-0");
    wait_for_sidecar(&mut world);
    world.run_until("seid ready", secs(10), |w| pod_ready(w, "n-0")).unwrap();
    assert_eq!(readiness(&mut world), (true, ReadinessStatus::Ready));
    assert_eq!(started(&world).len(), 2, "nobody submitted it again");
}

#[test]
fn the_server_answers_with_seictls_codes_and_error_bodies() {
    let world = started_world(65);
    let post = |body: &str| raw(&world, "POST", "/v0/tasks", body);
    // server.go handlePostTask, then Engine.Submit, in their order.
    assert_eq!(post("not json"), (400, error_body("invalid request body")));
    assert_eq!(post(r#"{"type": "mark-ready", "params": [1]}"#), (400, error_body("invalid request body")));
    assert_eq!(post("{}"), (400, error_body("type is required")));
    assert_eq!(post(r#"{"type": "reboot", "id": "nope"}"#), (400, error_body("unknown task type: reboot")));
    assert_eq!(
        post(r#"{"type": "mark-ready", "id": "nope"}"#),
        (400, error_body(r#"task ID must be a valid UUID: "nope""#))
    );
    let id = Uuid::from_u128(50);
    let accepted = (201, format!("{{\"id\":\"{id}\"}}\n"));
    assert_eq!(post(&format!(r#"{{"id": "{id}", "type": "config-apply"}}"#)), accepted);
    assert_eq!(post(&format!(r#"{{"id": "{id}", "type": "config-apply"}}"#)), accepted, "known: 201 too");
    let (status, body) = post(r#"{"type": "config-apply", "id": ""}"#);
    assert_eq!(status, 201, "an empty id asks the sidecar to pick one: {body}");
    assert_eq!(post(r#"{"type": "config-apply"} trailing"#).0, 201, "Go's decoder stops after the first value");

    // Probes: empty bodies.
    assert_eq!(raw(&world, "GET", "/v0/healthz", ""), (503, String::new()));
    assert_eq!(raw(&world, "GET", "/v0/startupz", ""), (503, String::new()));
    assert_eq!(raw(&world, "GET", "/v0/livez", ""), (200, String::new()));
    assert_eq!(raw(&world, "GET", "/v0/status", ""), (200, "{\"status\":\"Initializing\"}\n".into()));

    // Tasks.
    assert_eq!(
        raw(&world, "GET", &format!("/v0/tasks/{}", Uuid::from_u128(51)), ""),
        (404, error_body("task not found"))
    );
    assert_eq!(raw(&world, "GET", "/v0/tasks/not-a-uuid", ""), (404, error_body("task not found")));
    let (status, body) = raw(&world, "GET", &format!("/v0/tasks/{id}"), "");
    let task: TaskResult = serde_json::from_str(&body).unwrap();
    assert_eq!((status, task.id, task.status, task.run), (200, id, TaskState::Running, 1));
    let (status, body) = raw(&world, "GET", "/v0/tasks", "");
    let listed: Vec<TaskResult> = serde_json::from_str(&body).unwrap();
    assert_eq!((status, listed.len()), (200, 3));
    assert_eq!(raw(&world, "DELETE", &format!("/v0/tasks/{id}"), ""), (204, String::new()));
    assert_eq!(raw(&world, "DELETE", &format!("/v0/tasks/{id}"), ""), (404, error_body("task not found")));

    // Go's ServeMux for the rest.
    assert_eq!(raw(&world, "GET", "/v0/nowhere", ""), (404, "404 page not found\n".into()));
    assert_eq!(raw(&world, "POST", "/v0/healthz", "").0, 405);
}

#[test]
fn await_condition_parameters_are_checked_when_it_runs_not_when_it_is_submitted() {
    let mut world = started_world(66);
    let request = task_request(70, "await-condition", Some(json!({"targetHeight": 5})));
    assert_eq!(submit(&mut world, request), Ok(Uuid::from_u128(70)));
    world.run_for(secs(1)).unwrap();
    let failed = get_task(&mut world, 70).unwrap();
    assert_eq!((failed.status, failed.error.as_deref()), (TaskState::Failed, Some("condition is required")));
}

#[test]
fn a_worker_reboot_re_runs_what_was_running() {
    let mut world = started_world(67);
    submit(&mut world, task_request(80, "snapshot-restore", None)).unwrap();
    let worker = world.pod(NS, "n-0").unwrap().worker;
    world.crash_worker(worker);
    world.run_for(secs(40)).unwrap();
    let stranded = world.inspect(|s| {
        let volume = s.plane.pods[&pod_key()].volume.clone().unwrap();
        s.plane.volumes[&volume].sidecar_tasks[&Uuid::from_u128(80)].outcome.clone()
    });
    assert_eq!(stranded, None, "still running in the table: its process died with the node");
    world.restart_worker(worker);
    wait_for_sidecar(&mut world);
    world.run_for(Duration::from_secs(31)).unwrap();
    assert_eq!(get_task(&mut world, 80).map(|t| t.status), Some(TaskState::Completed));
}

/// A node's pod with seid running, marked ready; `shared`: the pod shares its process namespace.
fn running_world(seed: u64, shared: bool) -> World {
    let mut world = world(seed);
    world.create(&headless_service("n")).unwrap();
    let mut set = statefulset("n", "sei:v1", true, "OrderedReady");
    if let Some(pod) = set.spec.as_mut().and_then(|s| s.template.spec.as_mut()) {
        pod.share_process_namespace = Some(shared);
    }
    world.create(&set).unwrap();
    world
        .run_until("sidecar up", secs(60), |w| w.pod(NS, "n-0").is_some_and(|p| p.seid == Seid::WaitingForSidecar))
        .unwrap();
    world.probe("test", |s| async move { s.submit_task(&address(), &mark_ready(1)).await }).unwrap().unwrap();
    world.run_until("seid ready", secs(20), |w| pod_ready(w, "n-0")).unwrap();
    world
}

#[test]
fn restart_seid_stops_seid_for_the_kubelet_to_start_again_only_where_the_pod_shares_its_process_namespace() {
    let restart = TaskRequest { id: Some(Uuid::from_u128(2)), type_: "restart-seid".into(), params: None };

    let mut shared = running_world(24, true);
    let request = restart.clone();
    shared.probe("test", |s| async move { s.submit_task(&address(), &request).await }).unwrap().unwrap();
    assert!(!matches!(shared.pod(NS, "n-0").unwrap().seid, Seid::Running { .. }), "SIGTERM: seid exits at once");
    shared.run_for(secs(30)).unwrap();
    let task = shared.probe("test", |s| async move { s.get_task(&address(), Uuid::from_u128(2)).await }).unwrap();
    assert_eq!(task.unwrap().unwrap().status, TaskState::Completed, "seid's RPC serves again");
    let pod = shared.pod(NS, "n-0").unwrap();
    assert!(matches!(pod.seid, Seid::Running { .. }) && pod.restarts == 1, "the same pod, its container restarted");

    let mut separate = running_world(24, false);
    separate.probe("test", |s| async move { s.submit_task(&address(), &restart).await }).unwrap().unwrap();
    separate.run_for(secs(1)).unwrap();
    let task = separate.probe("test", |s| async move { s.get_task(&address(), Uuid::from_u128(2)).await }).unwrap();
    let task = task.unwrap().unwrap();
    assert_eq!(task.status, TaskState::Failed);
    assert!(task.error.as_deref().unwrap_or_default().contains("not found in /proc"), "{:?}", task.error);
    let pod = separate.pod(NS, "n-0").unwrap();
    assert!(matches!(pod.seid, Seid::Running { .. }) && pod.restarts == 0, "seid was never signalled");
}

#[test]
fn a_restart_of_a_seid_already_on_its_volumes_config_breaks_no_needless_seid_restart() {
    let mut world = running_world(25, true);
    let node: sei_operator_core::api::SeiNode = serde_json::from_value(json!({
        "apiVersion": "sei.io/v1alpha1", "kind": "SeiNode",
        "metadata": {"name": "n", "namespace": NS},
        "spec": {"chainId": "pacific-1", "image": "sei:v1", "fullNode": {}},
    }))
    .unwrap();
    world.create(&node).unwrap();
    let restart = TaskRequest { id: Some(Uuid::from_u128(2)), type_: "restart-seid".into(), params: None };
    let outcome = world.probe("test", |s| async move { s.submit_task(&address(), &restart).await });
    let violation = format!("{:?}", outcome.expect_err("seid ran the config on its volume already"));
    assert!(violation.contains("no-needless-seid-restart"), "{violation}");
}
