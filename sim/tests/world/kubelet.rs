//! The kubelet runs what the pod spec says: seid's start follows its command (the operator's wait loop, or at
//! once), `--halt-height` exits 130 and only a wrapper that maps it makes a Job succeed, `seid-init` prepares an
//! empty volume, readiness follows the probes, and seid starting on a volume its node has not prepared breaks an
//! invariant. The operator's former pod specs, replayed here, fail visibly; its current ones
//! (`sei_operator_core::objects::workload`) succeed.

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Pod, Service};
use sei_operator_core::api::SeiNode;
use sei_operator_core::node_defaults::NodeDefaults;
use sei_operator_core::objects::workload;
use sei_operator_core::sidecar::wire::TaskRequest;
use sei_operator_core::sidecar::{PodAddress, Sidecar};
use sei_sim::harness::invariants::{CURRENT_IMAGE_WAS_RUN, SEID_RUNS_ON_PREPARED_VOLUME};
use sei_sim::harness::ledger::InvariantViolation;
use sei_sim::harness::state::Timings;
use sei_sim::kube::kubelet::Seid;
use sei_sim::node::chain::Chain;
use sei_sim::node::seid::SeidExit;
use sei_sim::{SimError, World};
use serde_json::{Value, json};

use crate::common::*;

/// The chain of [`chain`] with a snapshot every 100 blocks, so a restore lands near the tip.
fn snapshot_chain() -> Chain {
    let mut chain = chain();
    chain.snapshot_interval = 100;
    chain
}

fn world_with(seed: u64, timings: Timings) -> World {
    World::builder(seed).workers(2).chain(snapshot_chain()).registry(registry()).timings(timings).build().unwrap()
}

fn snapshot_world(seed: u64) -> World {
    world_with(seed, Timings::default())
}

/// A SeiNode restoring the newest S3 snapshot (so its volume must be restored before seid runs).
fn s3_node(name: &str) -> SeiNode {
    serde_json::from_value(json!({
        "apiVersion": "sei.io/v1alpha1", "kind": "SeiNode",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"chainId": "pacific-1", "image": "sei:v1", "fullNode": {"snapshot": {"s3": {"targetHeight": 0}}}},
    }))
    .unwrap()
}

/// The StatefulSet the operator built before pods had to work with stock images (its `workload.rs` at 16ee9a0):
/// seid with no command, the sidecar a regular container, no init container, no probes.
fn former_statefulset(name: &str, image: &str) -> StatefulSet {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "replicas": 1, "serviceName": name, "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": {"sei.io/node": name}},
            "template": {
                "metadata": {"labels": {"sei.io/node": name}},
                "spec": {"containers": [
                    {"name": "seid", "image": image, "ports": [{"name": "p2p", "containerPort": 26656},
                        {"name": "rpc", "containerPort": 26657}]},
                    {"name": "sidecar", "image": "seictl:v1", "ports": [{"name": "sidecar", "containerPort": 7777}],
                        "env": [{"name": "SEI_CHAIN_ID", "value": "pacific-1"}]},
                ]},
            },
            "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"]}}],
        },
    }))
    .unwrap()
}

/// The former bootstrap Job (16ee9a0): a native sidecar with `SEI_BOOTSTRAP=true` (which seictl ignores),
/// seid with no command and `--halt-height N` as its args, no init container.
fn former_bootstrap_job(node: &str, image: &str, halt: u64) -> Job {
    serde_json::from_value(json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": format!("{node}-bootstrap"), "namespace": NS},
        "spec": {"backoffLimit": 3, "template": {
            "metadata": {"labels": {"sei.io/node": node, "sei.io/bootstrap": "true"}},
            "spec": {
                "restartPolicy": "Never",
                "initContainers": [{"name": "sidecar", "image": "seictl:v1", "restartPolicy": "Always",
                    "ports": [{"name": "sidecar", "containerPort": 7777}],
                    "env": [{"name": "SEI_BOOTSTRAP", "value": "true"}, {"name": "SEI_CHAIN_ID", "value": "pacific-1"}]}],
                "containers": [{"name": "seid", "image": image, "args": ["--halt-height", halt.to_string()]}],
                "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": format!("data-{node}-0")}}],
            },
        }},
    }))
    .unwrap()
}

/// Creates SeiNode `name` and the objects the operator builds for it today: its headless Service and StatefulSet.
fn current_node(world: &mut World, node: SeiNode) -> SeiNode {
    let node = world.create(&node).unwrap();
    world.create(&workload::headless_service(&node)).unwrap();
    world.create(&workload::stateful_set(&node, &NodeDefaults::built_in().for_node(&node.spec))).unwrap();
    node
}

fn address(node: &str) -> PodAddress {
    PodAddress::for_node(NS, node, 7777)
}

fn bootstrap_address(node: &str) -> PodAddress {
    PodAddress { host: format!("{node}-bootstrap.{node}-bootstrap.{NS}.svc"), sidecar_port: 7777 }
}

/// Submits a task as a test (not the operator) would, to the sidecar at `to`.
fn submit(world: &mut World, to: PodAddress, type_: &str, params: Option<Value>) {
    let request = TaskRequest { id: None, type_: type_.into(), params };
    let answer = world.probe("test", move |s| async move { s.submit_task(&to, &request).await }).unwrap();
    assert!(answer.is_ok(), "{type_}: {answer:?}");
}

/// What the operator's init plan submits, in order: restore (when asked), config, mark-ready.
fn prepare(world: &mut World, to: &PodAddress, restore: Option<u64>) {
    if let Some(target) = restore {
        submit(world, to.clone(), "snapshot-restore", Some(json!({"targetHeight": target})));
        world.run_for(secs(31)).unwrap();
    }
    submit(world, to.clone(), "config-apply", Some(json!({"chainId": "pacific-1", "mode": "fullNode"})));
    world.run_for(secs(2)).unwrap();
    submit(world, to.clone(), "mark-ready", None);
}

/// Runs until `done`, letting seid start on unprepared volumes again (a crash loop restarts it each time).
fn run_until_past_unprepared(
    world: &mut World,
    what: &str,
    within: std::time::Duration,
    done: impl Fn(&World) -> bool,
) {
    let end = world.now() + within;
    loop {
        match world.run_until(what, end.saturating_sub(world.now()), &done) {
            Ok(()) => return,
            Err(SimError::Invariant { violation, .. }) if violation.invariant == SEID_RUNS_ON_PREPARED_VOLUME => {}
            Err(other) => panic!("{other:?}"),
        }
    }
}

/// Runs until an invariant breaks; the violation.
fn violation_within(world: &mut World, within: std::time::Duration) -> InvariantViolation {
    match world.run_until("a violation", within, |_| false) {
        Err(SimError::Invariant { violation, .. }) => violation,
        other => panic!("expected a violation, got {other:?}"),
    }
}

fn stored_pod(world: &World, name: &str) -> Pod {
    world.get::<Pod>(NS, name).unwrap()
}

fn seid_status(pod: &Pod) -> k8s_openapi::api::core::v1::ContainerStatus {
    let statuses = pod.status.as_ref().and_then(|s| s.container_statuses.clone()).unwrap_or_default();
    statuses.into_iter().find(|c| c.name == "seid").expect("a seid container status")
}

fn init_status(pod: &Pod, name: &str) -> k8s_openapi::api::core::v1::ContainerStatus {
    let statuses = pod.status.as_ref().and_then(|s| s.init_container_statuses.clone()).unwrap_or_default();
    statuses.into_iter().find(|c| c.name == name).unwrap_or_else(|| panic!("no init container status {name}"))
}

fn job_pods(world: &World, job: &str) -> Vec<Pod> {
    world.list::<Pod>(NS, &[("job-name".to_owned(), job.to_owned())].into()).unwrap()
}

fn job_condition(world: &World, job: &str, type_: &str) -> bool {
    world
        .get::<Job>(NS, job)
        .ok()
        .and_then(|j| j.status?.conditions)
        .is_some_and(|c| c.iter().any(|c| c.type_ == type_ && c.status == "True"))
}

fn seid_height(world: &World, pod: &str) -> Option<u64> {
    let pod = world.pod(NS, pod)?;
    let Seid::Running { run, .. } = pod.seid else { return None };
    Some(run.height_at(&snapshot_chain(), world.now()))
}

// ---- the former pod specs fail --------------------------------------------------------------------------------

#[test]
fn the_former_statefulset_starts_seid_at_once_on_a_volume_nobody_prepared() {
    let mut world = snapshot_world(70);
    world.create(&s3_node("n")).unwrap();
    world.create(&headless_service("n")).unwrap();
    world.create(&former_statefulset("n", "sei:v1")).unwrap();
    // seid waits for nothing: it starts the moment its image is pulled, before anyone could restore anything.
    let violation = violation_within(&mut world, secs(60));
    assert_eq!(violation.invariant, SEID_RUNS_ON_PREPARED_VOLUME);
    assert!(violation.message.contains("seid init, snapshot-restore, config-apply"), "{}", violation.message);
    // Nothing ran `seid init`: no genesis, a panic at start, and a crash loop the sidecar cannot end.
    let crash_looping = |w: &World| {
        matches!(w.pod(NS, "n-0").map(|p| p.seid), Some(Seid::BackOff { last_exit: SeidExit::NoGenesis, .. }))
    };
    assert!(crash_looping(&world));
    // The sidecar restores and configures, but nothing writes a genesis: the loop never ends.
    submit(&mut world, address("n"), "snapshot-restore", Some(json!({"targetHeight": 0})));
    run_until_past_unprepared(&mut world, "a while", secs(300), |w| w.now() > secs(300));
    assert!(crash_looping(&world));
    assert!(world.pod(NS, "n-0").unwrap().restarts >= 4);
    assert!(!pod_ready(&world, "n-0"));
}

#[test]
fn seid_without_the_wrapper_runs_from_height_zero_before_the_restore() {
    let mut world = snapshot_world(71);
    world.create(&s3_node("n")).unwrap();
    world.create(&headless_service("n")).unwrap();
    // The former pod, given only `seid init`: seid now runs — on an empty chain.
    let mut set = former_statefulset("n", "sei:v1");
    set.spec.as_mut().unwrap().template.spec.as_mut().unwrap().init_containers =
        Some(vec![serde_json::from_value(seid_init("sei:v1")).unwrap()]);
    world.create(&set).unwrap();
    let violation = violation_within(&mut world, secs(60));
    assert_eq!(violation.invariant, SEID_RUNS_ON_PREPARED_VOLUME);
    assert!(violation.message.contains("(height 0)"), "{}", violation.message);
    assert!(violation.message.contains("snapshot-restore, config-apply"), "{}", violation.message);
    let Seid::Running { run, .. } = world.pod(NS, "n-0").unwrap().seid else { panic!("seid runs") };
    assert_eq!(run.start_height, 0, "block-syncing from genesis");
    // With no readiness probe the pod is Ready while seid is a thousand blocks behind.
    world.run_until("pod ready", secs(10), |w| pod_ready(w, "n-0")).unwrap();
    assert!(seid_height(&world, "n-0").unwrap() + 300 < world.inspect(|s| s.chains.by_id["pacific-1"].tip(s.now)));
}

#[test]
fn the_former_bootstrap_job_fails() {
    let mut world = snapshot_world(72);
    world.create(&s3_node("n")).unwrap();
    world.create(&claim("data-n-0")).unwrap();
    world.create(&former_bootstrap_job("n", "sei:v1", 1_050)).unwrap();
    let violation = violation_within(&mut world, secs(60));
    assert_eq!(violation.invariant, SEID_RUNS_ON_PREPARED_VOLUME);
    // Each pod's seid panics at start (no genesis): four pods fail, and the Job with them.
    run_until_past_unprepared(&mut world, "job failed", secs(120), |w| job_condition(w, "n-bootstrap", "Failed"));
    let status = world.get::<Job>(NS, "n-bootstrap").unwrap().status.unwrap();
    assert_eq!(status.failed, Some(4), "backoffLimit 3: the fourth failure fails the Job");
    assert_eq!(world.inspect(|s| s.plane.volumes.values().next().map(|v| v.height)), Some(0));
}

// ---- the current pod specs work -------------------------------------------------------------------------------

#[test]
fn the_current_statefulset_waits_for_restore_config_and_mark_ready_then_reads_ready_near_the_tip() {
    let mut world = snapshot_world(73);
    current_node(&mut world, s3_node("n"));
    world
        .run_until("sidecar up", secs(60), |w| w.pod(NS, "n-0").is_some_and(|p| p.seid == Seid::WaitingForSidecar))
        .unwrap();
    let pod = stored_pod(&world, "n-0");
    assert_eq!(seid_status(&pod).started, Some(false), "the startup probe waits on healthz");
    assert!(!pod_ready(&world, "n-0"));
    assert_eq!(init_status(&pod, "seid-init").state.unwrap().terminated.unwrap().exit_code, 0);
    assert_eq!(init_status(&pod, "sidecar").started, Some(true));
    assert!(world.inspect(|s| s.plane.volumes.values().next().unwrap().initialized), "seid init ran");

    prepare(&mut world, &address("n"), Some(0));
    world.run_until("seid runs", secs(10), |w| seid_height(w, "n-0").is_some()).unwrap();
    let Seid::Running { run, .. } = world.pod(NS, "n-0").unwrap().seid else { unreachable!() };
    assert_eq!(run.start_height, 1_000, "from the restored snapshot");
    world.run_until("pod ready", secs(15), |w| pod_ready(w, "n-0")).unwrap();
    let pod = stored_pod(&world, "n-0");
    assert_eq!((seid_status(&pod).started, seid_status(&pod).ready), (Some(true), true));
    world.run_until("ready replica", secs(5), |w| sts_status(w, "n").ready_replicas == Some(1)).unwrap();
}

#[test]
fn the_wrapper_starts_seid_at_its_next_poll_after_mark_ready() {
    let mut world = snapshot_world(74);
    current_node(&mut world, s3_node("n"));
    world
        .run_until("sidecar up", secs(60), |w| w.pod(NS, "n-0").is_some_and(|p| p.seid == Seid::WaitingForSidecar))
        .unwrap();
    prepare(&mut world, &address("n"), Some(0));
    world.run_until("healthz 200", secs(5), |w| w.pod(NS, "n-0").unwrap().sidecar.unwrap().ready).unwrap();
    let marked = world.now();
    world.run_until("seid runs", secs(10), |w| seid_height(w, "n-0").is_some()).unwrap();
    let pod = world.pod(NS, "n-0").unwrap();
    let Seid::Running { run, .. } = &pod.seid else { unreachable!() };
    // Polls at the container's start, then every 5 s: seid starts at the first poll after healthz said 200.
    let waited = run.started_at - pod.healthz_ready_at.unwrap();
    assert!(waited <= secs(5), "{waited:?}");
    assert!(pod.healthz_ready_at.unwrap() <= marked);
    let since_container = run.started_at - pod.probe_state.container_started_at;
    assert_eq!(since_container.as_millis() % 5_000, 0, "on the wrapper's 5 s cadence: {since_container:?}");
}

#[test]
fn the_current_bootstrap_job_halts_at_its_target_and_succeeds() {
    let mut world = snapshot_world(75);
    let node = world.create(&s3_node("n")).unwrap();
    world.create(&workload::data_volume(&node, &NodeDefaults::built_in().for_node(&node.spec))).unwrap();
    world.create(&workload::bootstrap_service(&node)).unwrap();
    world
        .create(&workload::bootstrap_job(&node, &NodeDefaults::built_in().for_node(&node.spec), "sei:v1", 1_090))
        .unwrap();
    world
        .run_until("bootstrap sidecar up", secs(60), |w| {
            w.inspect(|s| s.plane.pods.values().any(|p| p.seid == Seid::WaitingForSidecar && p.sidecar.is_some()))
        })
        .unwrap();
    prepare(&mut world, &bootstrap_address("n"), Some(1_090));
    world.run_until("job complete", secs(120), |w| job_condition(w, "n-bootstrap", "Complete")).unwrap();
    let pods = job_pods(&world, "n-bootstrap");
    assert_eq!(pods.len(), 1);
    let pod = &pods[0];
    assert_eq!(pod.status.as_ref().unwrap().phase.as_deref(), Some("Succeeded"));
    let seid = seid_status(pod).state.unwrap().terminated.unwrap();
    assert_eq!(seid.exit_code, 0, "the wrapper maps seid's 130 to 0");
    // seid writes no termination message, and the bootstrap script copies none: the kubelet reports none.
    assert_eq!(seid.message, None);
    assert_eq!(world.inspect(|s| s.plane.volumes.values().next().unwrap().height), 1_090);
    assert!(world.inspect(|s| s.ledger.panics.is_empty()), "halting is not a panic");
}

// ---- --halt-height exits 130 ----------------------------------------------------------------------------------

fn halting_job(name: &str, command: Value, halt_claim: &str) -> Job {
    serde_json::from_value(json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"backoffLimit": 0, "template": {"spec": {
            "restartPolicy": "Never",
            "initContainers": [seid_init("sei:v1")],
            "containers": [{"name": "seid", "image": "sei:v1", "command": command}],
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": halt_claim}}],
        }}},
    }))
    .unwrap()
}

fn run_halting_job(seed: u64, command: Value) -> (World, Pod) {
    let mut world = world(seed);
    world.create(&claim("data-n-0")).unwrap();
    world.create(&halting_job("halt", command, "data-n-0")).unwrap();
    world
        .run_until("job finished", secs(120), |w| {
            job_condition(w, "halt", "Complete") || job_condition(w, "halt", "Failed")
        })
        .unwrap();
    let pod = job_pods(&world, "halt").remove(0);
    (world, pod)
}

#[test]
fn a_bare_halt_height_exits_130_and_fails_a_job() {
    let (world, pod) = run_halting_job(76, json!(["seid", "start", "--home", "/sei", "--halt-height", "1010"]));
    assert_eq!(pod.status.as_ref().unwrap().phase.as_deref(), Some("Failed"));
    assert_eq!(seid_status(&pod).state.unwrap().terminated.unwrap().exit_code, 130);
    assert!(job_condition(&world, "halt", "Failed"), "backoffLimit 0: one failed pod fails the Job");
    assert_eq!(world.inspect(|s| s.plane.volumes.values().next().unwrap().height), 1_010, "though it did reach 1010");
}

#[test]
fn exec_passes_130_through_and_only_the_mapping_wrapper_succeeds() {
    let exec = json!(["/bin/bash", "-c", "exec seid start --home /sei --halt-height 1010"]);
    let (world, pod) = run_halting_job(77, exec);
    assert_eq!(seid_status(&pod).state.unwrap().terminated.unwrap().exit_code, 130);
    assert!(job_condition(&world, "halt", "Failed"));

    let (world, pod) = run_halting_job(78, json!(["/bin/bash", "-c", halting_script(1_010)]));
    assert_eq!(seid_status(&pod).state.unwrap().terminated.unwrap().exit_code, 0);
    assert_eq!(pod.status.as_ref().unwrap().phase.as_deref(), Some("Succeeded"));
    assert!(job_condition(&world, "halt", "Complete"));
}

#[test]
fn a_node_restarted_at_its_halt_height_processes_one_more_block() {
    let mut world = world(79);
    world.create(&claim("data-n-0")).unwrap();
    world.create(&bootstrap_job("first", "sei:v1", 1_010, "data-n-0")).unwrap();
    world.run_until("first complete", secs(120), |w| job_condition(w, "first", "Complete")).unwrap();
    assert_eq!(world.inspect(|s| s.plane.volumes.values().next().unwrap().height), 1_010);
    // A second run at 1010 with the same --halt-height processes 1011, then halts.
    world.create(&bootstrap_job("second", "sei:v1", 1_010, "data-n-0")).unwrap();
    world.run_until("second complete", secs(120), |w| job_condition(w, "second", "Complete")).unwrap();
    assert_eq!(world.inspect(|s| s.plane.volumes.values().next().unwrap().height), 1_011);
}

#[test]
fn a_bootstrap_restarted_at_the_block_before_an_upgrade_panics_instead_of_halting() {
    let mut world = world(80);
    world.create(&claim("data-n-0")).unwrap();
    let halt = UPGRADE_HEIGHT - 1;
    world.create(&bootstrap_job("first", "sei:v1", halt, "data-n-0")).unwrap();
    world.run_until("first complete", secs(200), |w| job_condition(w, "first", "Complete")).unwrap();
    // Once the network is past the upgrade, the old binary at H-1 must process H: it cannot.
    world.run_until("upgrade live", secs(300), |w| w.now() > SWITCH_AT + secs(5)).unwrap();
    world.create(&bootstrap_job("second", "sei:v1", halt, "data-n-0")).unwrap();
    world.run_until("second failed", secs(120), |w| job_condition(w, "second", "Failed")).unwrap();
    let panic = world.inspect(|s| s.ledger.panics.last().cloned()).unwrap();
    assert!(panic.reason.contains("UPGRADE NEEDED"), "{}", panic.reason);
    assert_eq!(world.inspect(|s| s.plane.volumes.values().next().unwrap().height), halt);
}

// ---- readiness follows the probes -----------------------------------------------------------------------------

/// The node's headless Service, publishing only Ready pods: cluster DNS answers for a pod only while it is Ready.
fn ready_only_service(name: &str) -> Service {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": NS},
        "spec": {"clusterIP": "None", "selector": {"sei.io/node": name}},
    }))
    .unwrap()
}

fn is_endpoint(world: &World, pod: &str, service: &str) -> bool {
    world.inspect(|s| sei_sim::node::resolver::resolve(s, &format!("{pod}.{service}.{NS}.svc"), 7777).is_ok())
}

/// A world running StatefulSet `n` (a native sidecar, seid's wrapper, no probe at all) behind a Service of
/// Ready pods only, until its pod `n-0` is Ready.
fn run_until_ready_with_no_probe(world: &mut World) {
    world.create(&ready_only_service("n")).unwrap();
    let mut set = statefulset("n", "sei:v1", true, "Parallel");
    let containers = &mut set.spec.as_mut().unwrap().template.spec.as_mut().unwrap().containers;
    containers[0].startup_probe = None;
    world.create(&set).unwrap();
    world.run_until("pod ready", secs(60), |w| pod_ready(w, "n-0")).unwrap();
}

/// The kubelet's status as the API server stores it: what a client reads, field for field. Empty fields are
/// absent (not null), `imageID` is present and empty (the simulated runtime has none), a running native sidecar
/// has no `startedAt`, a finished init container says how it ended.
#[test]
fn a_pods_status_is_stored_as_the_api_server_holds_it() {
    let mut world = world(81);
    run_until_ready_with_no_probe(&mut world);
    let key = sei_operator_core::cluster::ObjectRef::new("Pod", NS, "n-0");
    let status = world.inspect(|s| s.api.store.get(&key, None).map(|pod| pod["status"].clone())).unwrap();
    let started = status["containerStatuses"][0]["state"]["running"]["startedAt"].clone();
    assert!(started.as_str().is_some_and(|t| t.ends_with('Z')), "{started}");
    let condition = |type_: &str, value: &str| json!({"type": type_, "status": value});
    assert_eq!(
        status,
        json!({
            "phase": "Running",
            "hostIP": status["hostIP"].clone(),
            "conditions": [
                condition("Initialized", "True"),
                condition("Ready", "True"),
                condition("ContainersReady", "True"),
                condition("PodScheduled", "True"),
            ],
            "containerStatuses": [{
                "name": "seid", "image": "sei:v1", "imageID": "", "ready": true, "restartCount": 0,
                "started": true, "state": {"running": {"startedAt": started}},
            }],
            "initContainerStatuses": [
                {
                    "name": "seid-init", "image": "sei:v1", "imageID": "", "ready": true, "restartCount": 0,
                    "started": false, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}},
                },
                {
                    "name": "sidecar", "image": "seictl:v1", "imageID": "", "ready": true, "restartCount": 0,
                    "started": true, "state": {"running": {}},
                },
            ],
        })
    );
    assert!(status["hostIP"].as_str().is_some_and(|ip| ip.starts_with("worker-")), "{}", status["hostIP"]);
}

#[test]
fn with_no_readiness_probe_a_pod_is_ready_while_its_wrapper_waits() {
    let mut world = world(81);
    run_until_ready_with_no_probe(&mut world);
    assert_eq!(world.pod(NS, "n-0").unwrap().seid, Seid::WaitingForSidecar, "seid is not even running");
    world.run_until("ready replica", secs(5), |w| sts_status(w, "n").ready_replicas == Some(1)).unwrap();
    // The Service routes to it, and no image counts as run by a Ready pod: seid has run nothing.
    assert!(is_endpoint(&world, "n-0", "n"), "the pod is an endpoint while seid does not run");
    assert!(world.inspect(|s| s.ledger.ready_images.is_empty()));
}

#[test]
fn with_the_operators_probes_a_pod_is_an_endpoint_only_once_seid_runs_near_the_tip() {
    let mut world = snapshot_world(88);
    let node = world.create(&s3_node("n")).unwrap();
    world.create(&ready_only_service("n")).unwrap();
    world.create(&workload::stateful_set(&node, &NodeDefaults::built_in().for_node(&node.spec))).unwrap();
    world
        .run_until("wrapper waiting", secs(60), |w| w.pod(NS, "n-0").is_some_and(|p| p.seid == Seid::WaitingForSidecar))
        .unwrap();
    world.run_for(secs(20)).unwrap();
    assert!(!pod_ready(&world, "n-0") && !is_endpoint(&world, "n-0", "n"));
    // The init plan's tasks, handed straight to the sidecar (this Service does not resolve a pod not Ready).
    let key = sei_operator_core::cluster::ObjectRef::new("Pod", NS, "n-0");
    let tasks = [("snapshot-restore", Some(json!({"targetHeight": 0}))), ("config-apply", None), ("mark-ready", None)];
    for (id, (type_, params)) in (1..).zip(tasks) {
        world.modify(|s| {
            sei_sim::node::sidecar::process::submit(s, &key, uuid::Uuid::from_u128(id), type_, params).unwrap();
            s.plane.controllers.kubelet_dirty = true;
        });
        world.run_for(secs(31)).unwrap();
    }
    world.run_until("pod ready", secs(30), |w| pod_ready(w, "n-0")).unwrap();
    assert!(is_endpoint(&world, "n-0", "n"));
    assert!(world.inspect(|s| s.ledger.ready_images.contains(&(NS.to_owned(), "n".to_owned(), "sei:v1".to_owned()))));
}

#[test]
fn a_startup_probe_keeps_the_container_unstarted_until_healthz_answers() {
    let mut world = world(82);
    world.create(&headless_service("n")).unwrap();
    world.create(&statefulset("n", "sei:v1", true, "Parallel")).unwrap();
    world
        .run_until("sidecar up", secs(60), |w| w.pod(NS, "n-0").is_some_and(|p| p.seid == Seid::WaitingForSidecar))
        .unwrap();
    world.run_for(secs(30)).unwrap();
    assert!(!pod_ready(&world, "n-0"));
    assert_eq!(seid_status(&stored_pod(&world, "n-0")).started, Some(false));
    submit(&mut world, address("n"), "mark-ready", None);
    world.run_until("pod ready", secs(10), |w| pod_ready(w, "n-0")).unwrap();
    assert_eq!(seid_status(&stored_pod(&world, "n-0")).started, Some(true));
    assert!(seid_height(&world, "n-0").is_some(), "started and seid runs, at the same poll");
}

#[test]
fn the_lag_status_readiness_probe_waits_for_the_tip_and_drops_a_crashed_seid() {
    // A slow node: 20 blocks/s against 1 block/s; from a genesis-height volume it needs ~40 s to get within 300.
    let mut world = world_with(83, Timings { sync_speed: 20, ..Timings::default() });
    let node = s3_node("n");
    let mut node = world.create(&node).unwrap();
    // No S3 restore asked for: only the config matters.
    node.spec.full_node.as_mut().unwrap().snapshot = None;
    let node = world.edit::<SeiNode>(NS, "n", |n| n.spec = node.spec.clone()).unwrap();
    world.create(&workload::headless_service(&node)).unwrap();
    world.create(&workload::stateful_set(&node, &NodeDefaults::built_in().for_node(&node.spec))).unwrap();
    world
        .run_until("sidecar up", secs(60), |w| w.pod(NS, "n-0").is_some_and(|p| p.seid == Seid::WaitingForSidecar))
        .unwrap();
    prepare(&mut world, &address("n"), None);
    world.run_until("seid runs", secs(10), |w| seid_height(w, "n-0").is_some()).unwrap();
    // What the probe reads: seid's own `/lag_status`.
    let lag_status = |world: &World| {
        world.inspect(|s| {
            let key = sei_operator_core::cluster::ObjectRef::new("Pod", NS, "n-0");
            let Seid::Running { rpc_incarnation, .. } = &s.plane.pods[&key].seid else { return 0 };
            sei_sim::node::sidecar::api::rpc(s, &key, *rpc_incarnation, "/lag_status").0
        })
    };
    world.run_for(secs(5)).unwrap();
    assert!(!pod_ready(&world, "n-0"), "far behind the tip");
    assert_eq!(lag_status(&world), 417);
    assert_eq!(seid_status(&stored_pod(&world, "n-0")).started, Some(true));
    world.run_until("pod ready", secs(120), |w| pod_ready(w, "n-0")).unwrap();
    assert_eq!(lag_status(&world), 200);
    let tip = world.inspect(|s| s.chains.by_id["pacific-1"].tip(s.now));
    assert!(seid_height(&world, "n-0").unwrap() + sei_sim::kube::kubelet::LAG_THRESHOLD >= tip);
    world.run_until("ready replica", secs(5), |w| sts_status(w, "n").ready_replicas == Some(1)).unwrap();
    // The old binary panics at the upgrade: the container is not running, so not ready at once.
    world
        .run_until("upgrade panic", secs(400), |w| w.inspect(|s| s.ledger.panics.iter().any(|p| p.upgrade_panic)))
        .unwrap();
    world.run_until("pod not ready", secs(1), |w| !pod_ready(w, "n-0")).unwrap();
}

// ---- seid-init, the sidecar's port and restart counts ---------------------------------------------------------

#[test]
fn seid_init_initializes_only_an_empty_volume() {
    let mut world = world(84);
    world.create(&headless_service("n")).unwrap();
    world.create(&statefulset("n", "sei:v1", true, "Parallel")).unwrap();
    world
        .run_until("sidecar up", secs(60), |w| w.pod(NS, "n-0").is_some_and(|p| p.seid == Seid::WaitingForSidecar))
        .unwrap();
    submit(&mut world, address("n"), "config-apply", None);
    world.run_for(secs(2)).unwrap();
    let volume = world.inspect(|s| s.plane.volumes.values().next().cloned().unwrap());
    assert!(volume.initialized && volume.configured);
    // A new pod on the same claim: seid-init sees the genesis and leaves the volume (and its config) alone.
    let uid = stored_pod(&world, "n-0").metadata.uid;
    world.delete::<Pod>(NS, "n-0").unwrap();
    world
        .run_until("pod back", secs(60), |w| {
            w.pod(NS, "n-0").is_some_and(|p| p.sidecar.is_some() && Some(&p.uid) != uid.as_ref())
        })
        .unwrap();
    assert!(world.trace().text().contains("init container seid-init: data-n-0 already initialized"));
    assert!(world.inspect(|s| s.plane.volumes.values().next().unwrap().configured));
    // Without seid-init nothing initializes a volume, and seid cannot start on it.
    let mut bare = statefulset("m", "sei:v1", false, "Parallel");
    bare.spec.as_mut().unwrap().template.spec.as_mut().unwrap().init_containers = None;
    world.create(&headless_service("m")).unwrap();
    world.create(&bare).unwrap();
    world
        .run_until("no genesis", secs(60), |w| {
            matches!(w.pod(NS, "m-0").map(|p| p.seid), Some(Seid::BackOff { last_exit: SeidExit::NoGenesis, .. }))
        })
        .unwrap();
}

#[test]
fn the_sidecar_listens_on_its_env_port_not_its_declared_one() {
    let mut world = world(85);
    world.create(&headless_service("n")).unwrap();
    let mut set = statefulset("n", "sei:v1", true, "Parallel");
    let spec = set.spec.as_mut().unwrap().template.spec.as_mut().unwrap();
    let sidecar = &mut spec.init_containers.as_mut().unwrap()[1];
    sidecar.env = Some(vec![serde_json::from_value(json!({"name": "SEI_SIDECAR_PORT", "value": "8888"})).unwrap()]);
    world.create(&set).unwrap();
    world.run_until("pod up", secs(60), |w| w.pod(NS, "n-0").is_some_and(|p| p.sidecar.is_some())).unwrap();
    let on_7777 = world.probe("test", |s| async move { s.healthz(&address("n")).await }).unwrap();
    assert!(on_7777.is_err(), "nothing listens on the declared 7777: {on_7777:?}");
    let on_8888 = PodAddress::for_node(NS, "n", 8888);
    let answer = world.probe("test", move |s| async move { s.healthz(&on_8888).await }).unwrap();
    assert_eq!(answer, Ok(false));
    // The wrapper polls 7777: marking the sidecar on 8888 ready does not start seid.
    let request = TaskRequest { id: None, type_: "mark-ready".into(), params: None };
    let on_8888 = PodAddress::for_node(NS, "n", 8888);
    world.probe("test", move |s| async move { s.submit_task(&on_8888, &request).await }).unwrap().unwrap();
    world.run_for(secs(30)).unwrap();
    assert_eq!(world.pod(NS, "n-0").unwrap().seid, Seid::WaitingForSidecar);
}

#[test]
fn restart_counts_follow_the_containers_that_restart() {
    let mut world = world(86);
    world.create(&headless_service("n")).unwrap();
    world.create(&statefulset("n", "sei:v1", true, "Parallel")).unwrap();
    world.run_until("pod up", secs(60), |w| w.pod(NS, "n-0").is_some_and(|p| p.sidecar.is_some())).unwrap();
    let counts = |world: &World| {
        let pod = stored_pod(world, "n-0");
        (seid_status(&pod).restart_count, init_status(&pod, "sidecar").restart_count)
    };
    assert_eq!(counts(&world), (0, 0));
    let uid = stored_pod(&world, "n-0").metadata.uid;
    world.restart_sidecar(NS, "n-0");
    world.run_for(secs(2)).unwrap();
    assert_eq!(counts(&world), (0, 1), "only the sidecar restarted");
    world.crash_pod(NS, "n-0");
    world.run_for(secs(2)).unwrap();
    assert_eq!(counts(&world), (1, 2), "every container restarted");
    assert_eq!(stored_pod(&world, "n-0").metadata.uid, uid, "the same pod");
}

#[test]
fn current_image_counts_only_an_image_seid_ran_in_a_ready_pod() {
    let mut world = world(87);
    world.create(&crate::operator::sei_node("n")).unwrap();
    world.create(&headless_service("n")).unwrap();
    let mut set = statefulset("n", "sei:v1", true, "Parallel");
    set.spec.as_mut().unwrap().template.spec.as_mut().unwrap().containers[0].startup_probe = None;
    world.create(&set).unwrap();
    world.run_until("pod ready", secs(60), |w| pod_ready(w, "n-0")).unwrap();
    // Ready (no probes), but seid never ran: claiming sei:v1 runs is a lie.
    world
        .edit_status::<SeiNode>(NS, "n", |n| n.status.get_or_insert_default().current_image = Some("sei:v1".into()))
        .unwrap();
    assert_eq!(violation_within(&mut world, secs(5)).invariant, CURRENT_IMAGE_WAS_RUN);
}

#[test]
fn a_startup_probe_that_never_passes_gets_the_container_killed_and_restarted() {
    let mut world = world(89);
    world.create(&headless_service("n")).unwrap();
    let mut set = statefulset("n", "sei:v1", true, "Parallel");
    let probe = json!({"httpGet": {"path": "/v0/healthz", "port": 7777}, "periodSeconds": 5, "failureThreshold": 3});
    set.spec.as_mut().unwrap().template.spec.as_mut().unwrap().containers[0].startup_probe =
        Some(serde_json::from_value(probe).unwrap());
    world.create(&set).unwrap();
    world
        .run_until("killed", secs(60), |w| {
            matches!(
                w.pod(NS, "n-0").map(|p| p.seid),
                Some(Seid::BackOff { last_exit: SeidExit::KilledByStartupProbe, .. })
            )
        })
        .unwrap();
    // Three failures: at the container's start, 5 s and 10 s later; then the kubelet kills it (137).
    let pod = world.pod(NS, "n-0").unwrap();
    assert_eq!(pod.restarts, 1);
    assert!(world.trace().text().contains("startup probe failed 3 times in a row"));
    let status = seid_status(&stored_pod(&world, "n-0"));
    assert_eq!(status.state.unwrap().waiting.unwrap().reason.as_deref(), Some("CrashLoopBackOff"));
    assert_eq!(status.restart_count, 1);
}
