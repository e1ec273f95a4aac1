//! The chain as the pods see it: upgrade panics of the old and the new binary, and a bootstrap Job that halts
//! at its height.

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use sei_operator_core::sidecar::wire::TaskRequest;
use sei_operator_core::sidecar::{PodAddress, Sidecar};
use sei_sim::kube::kubelet::Seid;
use sei_sim::node::seid::SeidExit;
use serde_json::json;

use crate::common::*;

#[test]
fn the_old_binary_panics_at_the_upgrade_height_and_the_new_one_takes_over() {
    let mut world = world(10);
    world.create(&statefulset("n", "sei:v1", false, "Parallel")).unwrap();
    world
        .run_until("upgrade panic", secs(400), |w| w.inspect(|s| s.ledger.panics.iter().any(|p| p.upgrade_panic)))
        .unwrap();
    let panic = world.inspect(|s| s.ledger.panics[0].clone());
    assert_eq!(panic.image, "sei:v1");
    assert!(panic.reason.contains("UPGRADE NEEDED at height 1100"), "{}", panic.reason);
    assert!(world.now() > SWITCH_AT, "the tip stalls at 1099 until the validators switch");
    assert!(matches!(world.pod(NS, "n-0").unwrap().seid, Seid::BackOff { .. }));
    let height = world.inspect(|s| s.plane.volumes.values().next().unwrap().height);
    assert_eq!(height, UPGRADE_HEIGHT - 1);

    // Parallel lets the stuck pod roll: the new binary starts at 1099 and processes 1100 onwards.
    world
        .edit::<StatefulSet>(NS, "n", |s| {
            s.spec.as_mut().unwrap().template.spec.as_mut().unwrap().containers[0].image = Some("sei:v2".into());
        })
        .unwrap();
    world
        .run_until("new binary ready", secs(120), |w| {
            pod_ready(w, "n-0") && pod_image(w, "n-0").as_deref() == Some("sei:v2")
        })
        .unwrap();
    world.run_for(secs(30)).unwrap();
    let pod = world.pod(NS, "n-0").unwrap();
    let Seid::Running { run, .. } = pod.seid else { panic!("not running") };
    let chain = chain();
    assert!(run.height_at(&chain, world.now()) > UPGRADE_HEIGHT);
    assert_eq!(world.inspect(|s| s.ledger.panics.len()), 1, "no panic of the new binary");
}

#[test]
fn the_new_binary_panics_on_a_block_below_the_upgrade() {
    let mut world = world(11);
    world.create(&statefulset("n", "sei:v2", false, "OrderedReady")).unwrap();
    world.run_until("early panic", secs(60), |w| w.inspect(|s| !s.ledger.panics.is_empty())).unwrap();
    let panic = world.inspect(|s| s.ledger.panics[0].clone());
    assert!(panic.upgrade_panic);
    assert!(panic.reason.contains("binary updated before trigger"), "{}", panic.reason);
    assert!(!pod_ready(&world, "n-0"));
}

#[test]
fn a_bootstrap_job_whose_wrapper_maps_130_succeeds_at_its_halt_height() {
    let mut world = world(12);
    world.create(&claim("data-n-0")).unwrap();
    world.create(&bootstrap_job("n-bootstrap", "sei:v1", UPGRADE_HEIGHT - 1, "data-n-0")).unwrap();
    world
        .run_until("job complete", secs(300), |w| {
            w.get::<Job>(NS, "n-bootstrap").ok().and_then(|j| j.status).and_then(|s| s.succeeded) == Some(1)
        })
        .unwrap();
    let job = world.get::<Job>(NS, "n-bootstrap").unwrap();
    let conditions = job.status.unwrap().conditions.unwrap();
    assert!(conditions.iter().any(|c| c.type_ == "Complete" && c.status == "True"));
    assert_eq!(world.inspect(|s| s.plane.volumes.values().next().unwrap().height), UPGRADE_HEIGHT - 1);
    assert!(world.inspect(|s| s.ledger.panics.is_empty()), "halting is not a panic");
    assert!(world.now() < SWITCH_AT, "it halted at 1099 without waiting for the upgrade");
    let pods = world.list::<Pod>(NS, &[("job-name".to_owned(), "n-bootstrap".to_owned())].into()).unwrap();
    assert_eq!(pods.len(), 1);
    assert_eq!(pods[0].status.as_ref().unwrap().phase.as_deref(), Some("Succeeded"));
    let pod = world.pod(NS, pods[0].metadata.name.as_deref().unwrap()).unwrap();
    assert_eq!(pod.seid, Seid::Terminated { exit: SeidExit::Halted });
    assert_eq!(SeidExit::Halted.exit_code(), 130, "seid's own code; the wrapper made the container's 0");
}

#[test]
fn a_failing_bootstrap_job_fails_after_its_backoff_limit() {
    let mut world = world(13);
    world.create(&claim("data-n-0")).unwrap();
    world.create(&bootstrap_job("n-bootstrap", "sei:broken", 1_050, "data-n-0")).unwrap();
    world
        .run_until("job failed", secs(120), |w| {
            w.get::<Job>(NS, "n-bootstrap")
                .ok()
                .and_then(|j| j.status)
                .and_then(|s| s.conditions)
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Failed" && c.status == "True"))
        })
        .unwrap();
}

#[test]
fn a_pod_waits_for_its_claim() {
    let mut world = world(14);
    world.create(&bootstrap_job("n-bootstrap", "sei:v1", 1_010, "data-n-0")).unwrap();
    world.run_for(secs(30)).unwrap();
    let pods = world.list::<Pod>(NS, &[("job-name".to_owned(), "n-bootstrap".to_owned())].into()).unwrap();
    let name = pods[0].metadata.name.clone().unwrap();
    assert_eq!(world.pod(NS, &name).unwrap().seid, Seid::Unscheduled, "no claim, no scheduling");
    world.create(&claim("data-n-0")).unwrap();
    world
        .run_until("job complete", secs(60), |w| {
            w.get::<Job>(NS, "n-bootstrap").ok().and_then(|j| j.status).and_then(|s| s.succeeded) == Some(1)
        })
        .unwrap();
}

/// A bootstrap Job whose pod has the sidecar, as a regular container or as a native sidecar, and seid's
/// bootstrap wrapper (wait for the sidecar's healthz, then `--halt-height 1010` with 130 mapped to 0).
fn job_with_sidecar(native: bool) -> Job {
    let script = sei_operator_core::objects::workload::bootstrap_start_script(7777, 1_010);
    let seid = json!({"name": "seid", "image": "sei:v1", "command": ["/bin/bash", "-c"], "args": [script]});
    let sidecar = json!({"name": "sidecar", "image": "seictl:v1", "ports": [{"containerPort": 7777}]});
    let (containers, init) = if native {
        (json!([seid]), json!([seid_init("sei:v1"), native_sidecar()]))
    } else {
        (json!([seid, sidecar]), json!([seid_init("sei:v1")]))
    };
    serde_json::from_value(json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "n-bootstrap", "namespace": NS},
        "spec": {"backoffLimit": 0, "template": {
            "metadata": {"labels": {"sei.io/node": "n"}},
            "spec": {
                "restartPolicy": "Never", "hostname": "n-0", "subdomain": "n",
                "containers": containers, "initContainers": init,
                "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data-n-0"}}],
            },
        }},
    }))
    .unwrap()
}

fn run_sidecar_job(native: bool) -> sei_sim::World {
    let mut world = world(15);
    world.create(&headless_service("n")).unwrap();
    world.create(&claim("data-n-0")).unwrap();
    world.create(&job_with_sidecar(native)).unwrap();
    world
        .run_until("sidecar up", secs(60), |w| {
            w.inspect(|s| s.plane.pods.values().any(|p| p.seid == Seid::WaitingForSidecar))
        })
        .unwrap();
    let request = TaskRequest { id: None, type_: "mark-ready".into(), params: None };
    let submitted = world
        .probe("test", move |s| async move { s.submit_task(&PodAddress::for_node(NS, "n", 7777), &request).await });
    assert!(submitted.unwrap().is_ok());
    world
        .run_until("seid halted", secs(120), |w| {
            w.inspect(|s| s.plane.pods.values().any(|p| matches!(p.seid, Seid::Terminated { .. })))
        })
        .unwrap();
    world.run_for(secs(10)).unwrap();
    world
}

#[test]
fn a_job_whose_sidecar_is_a_regular_container_never_completes() {
    let world = run_sidecar_job(false);
    let status = world.get::<Job>(NS, "n-bootstrap").unwrap().status.unwrap();
    assert_eq!(status.succeeded, Some(0));
    let pods = world.list::<Pod>(NS, &[("job-name".to_owned(), "n-bootstrap".to_owned())].into()).unwrap();
    assert_eq!(pods[0].status.as_ref().unwrap().phase.as_deref(), Some("Running"), "the sidecar keeps it alive");
}

#[test]
fn a_job_with_a_native_sidecar_completes() {
    let world = run_sidecar_job(true);
    let status = world.get::<Job>(NS, "n-bootstrap").unwrap().status.unwrap();
    assert_eq!(status.succeeded, Some(1));
    assert_eq!(world.inspect(|s| s.plane.volumes.values().next().unwrap().height), 1_010);
}

#[test]
fn deleting_a_job_garbage_collects_its_pods_and_keeps_the_claim() {
    let mut world = world(16);
    world.create(&claim("data-n-0")).unwrap();
    world.create(&bootstrap_job("n-bootstrap", "sei:v1", 1_010, "data-n-0")).unwrap();
    world
        .run_until("job complete", secs(120), |w| {
            w.get::<Job>(NS, "n-bootstrap").ok().and_then(|j| j.status).and_then(|s| s.succeeded) == Some(1)
        })
        .unwrap();
    world.delete::<Job>(NS, "n-bootstrap").unwrap();
    world
        .run_until("pods collected", secs(10), |w| w.inspect(|s| s.api.store.all_of_kind("Pod").next().is_none()))
        .unwrap();
    assert!(world.trace().text().contains("garbage-collector delete Pod"));
    assert_eq!(world.inspect(|s| s.plane.volumes.values().next().map(|v| v.height)), Some(1_010));
}

#[test]
fn a_seid_stop_records_the_seinode_its_pod_ran_for_and_none_without_one() {
    // What `height-gate-holds` tells a node's own stop from its predecessor's by: the uid of the SeiNode whose
    // StatefulSet runs the pod, as stored when seid stops.
    let mut world = world(10);
    let node: sei_operator_core::api::SeiNode = serde_json::from_value(json!({
        "apiVersion": "sei.io/v1alpha1", "kind": "SeiNode",
        // Not the pods' `sei.io/node`: a SeiNode of that name would have the volume prepared by its own plan.
        "metadata": {"name": "owner", "namespace": NS},
        "spec": {"chainId": "pacific-1", "image": "sei:v1", "fullNode": {}},
    }))
    .unwrap();
    let node = world.create(&node).unwrap();
    let uid = node.metadata.uid.clone().expect("a stored node has a uid");
    let mut set = statefulset("n", "sei:v1", false, "Parallel");
    set.metadata.owner_references = sei_operator_core::objects::meta::controller_reference(&node).map(|r| vec![r]);
    world.create(&set).unwrap();
    world
        .run_until("upgrade panic", secs(400), |w| w.inspect(|s| s.ledger.panics.iter().any(|p| p.upgrade_panic)))
        .unwrap();
    assert_eq!(world.inspect(|s| s.ledger.panics[0].node_uid.clone()), Some(uid));

    // The set made again without an owner: the next pod's stops belong to no node (a broken link; a
    // predecessor's pod finds its set gone or another under the name, and its uid not the one it names).
    let count = world.inspect(|s| s.ledger.panics.len());
    world.delete::<StatefulSet>(NS, "n").unwrap();
    world.create(&statefulset("n", "sei:v1", false, "Parallel")).unwrap();
    world.run_until("another panic", secs(600), |w| w.inspect(|s| s.ledger.panics.len() > count)).unwrap();
    assert_eq!(world.inspect(|s| s.ledger.panics.last().and_then(|p| p.node_uid.clone())), None);
}
