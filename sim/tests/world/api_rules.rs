//! The API server's rules for built-in kinds and the faults of real nodes, as the simulated cluster answers them:
//! immutable fields and names refused with 422, the generation bump of a deletion, the StatefulSet pod-name
//! budget, taint-based eviction from an unreachable worker, a deleted pod's replacement by its controller and
//! the ReadWriteOnce volume its predecessor still holds. Each test names the Kubernetes source it pins.

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use sei_operator_core::cluster::ClusterError;
use sei_sim::SimError;
use sei_sim::kube::kubelet::Seid;

use crate::common::*;

fn is_invalid(result: Result<impl std::fmt::Debug, SimError>, wording: &str) -> bool {
    match result {
        Err(SimError::Cluster(ClusterError::Invalid { message, .. })) => {
            assert!(message.contains(wording), "422 without {wording:?}: {message}");
            true
        }
        other => panic!("expected 422 Invalid, got {other:?}"),
    }
}

/// kubernetes `pkg/apis/apps/validation/validation.go` (`ValidateStatefulSetUpdate`).
#[test]
fn a_statefulset_update_to_an_immutable_field_is_refused_with_422() {
    let world = world(1);
    world.create(&statefulset("n", "sei:v1", false, "Parallel")).unwrap();
    let forbidden = "updates to statefulset spec for fields other than 'replicas'";
    assert!(is_invalid(
        world.edit::<StatefulSet>(NS, "n", |s| s.spec.as_mut().unwrap().service_name = Some("m".into())),
        forbidden
    ));
    assert!(is_invalid(
        world.edit::<StatefulSet>(NS, "n", |s| s.spec.as_mut().unwrap().pod_management_policy =
            Some("OrderedReady".into())),
        forbidden
    ));
    assert!(is_invalid(
        world.edit::<StatefulSet>(NS, "n", |s| {
            s.spec.as_mut().unwrap().selector.match_labels.as_mut().unwrap().insert("x".into(), "y".into());
        }),
        forbidden
    ));
    assert!(is_invalid(
        world.edit::<StatefulSet>(NS, "n", |s| s.spec.as_mut().unwrap().volume_claim_templates = None),
        forbidden
    ));
    // The template, replicas and the claim retention policy may change.
    world
        .edit::<StatefulSet>(NS, "n", |s| {
            let spec = s.spec.as_mut().unwrap();
            spec.replicas = Some(0);
            spec.template.spec.as_mut().unwrap().containers[0].image = Some("sei:v1.1".into());
        })
        .unwrap();
}

/// kubernetes `pkg/apis/batch/validation/validation.go` (`ValidateJobSpecUpdate`).
#[test]
fn a_jobs_template_is_immutable() {
    let world = world(1);
    world.create(&bootstrap_job("b", "sei:v1", 1_050, "data-b")).unwrap();
    let changed = world.edit::<Job>(NS, "b", |j| {
        j.spec.as_mut().unwrap().template.spec.as_mut().unwrap().containers[0].image = Some("sei:v2".into());
    });
    assert!(is_invalid(changed, "spec.template: Invalid value: [omitted]: field is immutable"));
    world.edit::<Job>(NS, "b", |j| j.spec.as_mut().unwrap().backoff_limit = Some(2)).unwrap();
}

/// kubernetes `pkg/apis/core/validation/validation.go` (`ValidateServiceName`: a DNS-1035 label),
/// `pkg/apis/apps/validation/validation.go` (`ValidateStatefulSetName`: a DNS-1123 label), `pkg/registry/batch/
/// job/strategy.go` (the Job's name becomes the template's `job-name` label value).
#[test]
fn names_the_api_server_refuses() {
    let world = world(1);
    assert!(is_invalid(world.create(&headless_service("0rpc")), "a DNS-1035 label"));
    assert!(is_invalid(world.create(&headless_service(&"s".repeat(64))), "must be no more than 63 characters"));
    world.create(&headless_service(&"s".repeat(63))).unwrap();
    assert!(is_invalid(world.create(&statefulset("rpc.0", "sei:v1", false, "Parallel")), "RFC 1123 label"));
    assert!(is_invalid(world.create(&statefulset(&"n".repeat(64), "sei:v1", false, "Parallel")), "63 characters"));
    let job = bootstrap_job(&"j".repeat(64), "sei:v1", 1_050, "data-j");
    assert!(is_invalid(world.create(&job), "spec.template.labels: Invalid value"));
}

/// The StatefulSet's name is only a DNS label to the API server, but its pods carry `controller-revision-hash:
/// <set>-<hash>` (kubernetes `pkg/controller/history/controller_history.go`, `ControllerRevisionName`), a label
/// value of 63 characters at most: a set of 53 characters is stored and never gets a pod.
#[test]
fn a_statefulset_whose_revision_label_would_pass_63_characters_never_gets_a_pod() {
    let mut world = world(1);
    let long = "n".repeat(53);
    world.create(&statefulset(&long, "sei:v1", false, "Parallel")).unwrap();
    let fits = "m".repeat(52);
    world.create(&statefulset(&fits, "sei:v1", false, "Parallel")).unwrap();
    world
        .run_until("the 52-character set's pod", secs(60), |w| w.get::<Pod>(NS, &format!("{fits}-0")).is_ok())
        .unwrap();
    world.run_for(secs(30)).unwrap();
    assert!(world.get::<Pod>(NS, &format!("{long}-0")).is_err(), "the pod's revision label is refused");
    let refused = world.inspect(|s| {
        s.trace.lines().iter().any(|l| l.contains(&format!("{long}-0")) && l.contains("must be no more than 63"))
    });
    assert!(refused, "the controller's pod create failed with 422");
}

/// kubernetes `staging/src/k8s.io/apiserver/pkg/registry/rest/delete.go` (`BeforeDelete`) and
/// `pkg/registry/generic/registry/store.go` (`markAsDeleting`): the first deletionTimestamp bumps a generation.
#[test]
fn setting_the_deletion_timestamp_bumps_the_generation() {
    let mut world = world(1);
    let mut guarded = statefulset("n", "sei:v1", false, "Parallel");
    guarded.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    world.create(&guarded).unwrap();
    world.run_until("pod", secs(60), |w| pod_ready(w, "n-0")).unwrap();
    let before = world.get::<StatefulSet>(NS, "n").unwrap().metadata.generation.unwrap();
    let pod_before = world.get::<Pod>(NS, "n-0").unwrap().metadata.generation.unwrap();
    world.delete::<StatefulSet>(NS, "n").unwrap();
    world.delete::<StatefulSet>(NS, "n").unwrap();
    let deleting = world.get::<StatefulSet>(NS, "n").unwrap();
    assert!(deleting.metadata.deletion_timestamp.is_some());
    assert_eq!(deleting.metadata.generation, Some(before + 1), "bumped once, by the first deletion only");
    world.delete::<Pod>(NS, "n-0").unwrap();
    let pod = world.get::<Pod>(NS, "n-0").unwrap();
    assert_eq!(pod.metadata.generation, Some(pod_before + 1), "a graceful pod deletion bumps it too");
}

fn worker_of(world: &sei_sim::World, pod: &str) -> usize {
    world.pod(NS, pod).unwrap().worker
}

fn terminating(world: &sei_sim::World, pod: &str) -> bool {
    world.get::<Pod>(NS, pod).is_ok_and(|p| p.metadata.deletion_timestamp.is_some())
}

/// kubernetes `pkg/controller/tainteviction/taint_eviction.go` with the `tolerationSeconds: 300` of
/// `plugin/pkg/admission/defaulttolerationseconds/admission.go`: pods of a worker unreachable past the node
/// monitor's grace (40 s) and 300 s more are deleted; with the kubelet gone they stay Terminating, and the
/// StatefulSet makes the pod again only once the worker is back — from its template as it is *then*
/// (`newVersionedStatefulSetPod`: under OnDelete, or at or above a rolling update's partition, the update
/// revision). OnDelete here, so that the template change alone does not replace the pod.
#[test]
fn a_pod_on_an_unreachable_worker_is_evicted_and_comes_back_from_the_current_template() {
    let mut world = world(1);
    world.create(&headless_service("n")).unwrap();
    let mut set = statefulset("n", "sei:v1", false, "Parallel");
    set.spec.as_mut().unwrap().update_strategy = Some(k8s_openapi::api::apps::v1::StatefulSetUpdateStrategy {
        type_: Some("OnDelete".into()),
        rolling_update: None,
    });
    world.create(&set).unwrap();
    world.run_until("pod ready", secs(60), |w| pod_ready(w, "n-0")).unwrap();
    let worker = worker_of(&world, "n-0");
    world.crash_worker(worker);
    world
        .edit::<StatefulSet>(NS, "n", |s| {
            s.spec.as_mut().unwrap().template.spec.as_mut().unwrap().containers[0].image = Some("sei:v1.1".into());
        })
        .unwrap();
    world.run_for(secs(330)).unwrap();
    assert!(!terminating(&world, "n-0"), "tolerated for 40 s + 300 s");
    world.run_for(secs(15)).unwrap();
    assert!(terminating(&world, "n-0"), "evicted once the toleration ran out");
    world.run_for(secs(300)).unwrap();
    assert!(terminating(&world, "n-0"), "nobody confirms the deletion while the kubelet is down");
    assert_eq!(pod_image(&world, "n-0").as_deref(), Some("sei:v1"), "not replaced meanwhile");
    world.restart_worker(worker);
    world
        .run_until("re-created on the new template", secs(120), |w| {
            !terminating(w, "n-0") && pod_image(w, "n-0").as_deref() == Some("sei:v1.1") && pod_ready(w, "n-0")
        })
        .unwrap();
}

/// kubernetes `pkg/controller/job/job_controller.go` (`isPodFailed`: a deleted pod counts as failed; the
/// default `podReplacementPolicy` replaces it at once) and `pkg/controller/volume/attachdetach` (a ReadWriteOnce
/// volume stays attached to the node of a pod object that still exists there): the replacement of a Job pod
/// lost with its worker waits for the volume until the old pod is gone.
#[test]
fn a_deleted_job_pod_counts_as_failed_and_its_replacement_waits_for_the_volume() {
    let mut world = world(1);
    world.create(&claim("data-b")).unwrap();
    let mut job = bootstrap_job("b", "sei:v1", 1_000_000, "data-b");
    job.spec.as_mut().unwrap().backoff_limit = Some(3);
    world.create(&job).unwrap();
    let job_pods = |w: &sei_sim::World| -> Vec<String> {
        w.inspect(|s| {
            s.api
                .store
                .all_of_kind("Pod")
                .filter(|(_, v)| v.pointer("/metadata/labels/job-name").and_then(|n| n.as_str()) == Some("b"))
                .map(|(k, _)| k.name.clone())
                .collect()
        })
    };
    world
        .run_until("the Job's pod runs", secs(60), |w| {
            job_pods(w).first().is_some_and(|p| matches!(w.pod(NS, p).map(|p| p.seid), Some(Seid::Running { .. })))
        })
        .unwrap();
    let first = job_pods(&world)[0].clone();
    world.crash_worker(worker_of(&world, &first));
    world.inject(&sei_sim::harness::fault_state::Fault::DeletePod { namespace: NS.into(), pod: first.clone() });
    world.run_until("a replacement", secs(30), |w| job_pods(w).len() == 2).unwrap();
    let status = world.get::<Job>(NS, "b").unwrap().status.unwrap();
    assert_eq!(status.failed, Some(1), "the deleted pod counts as failed");
    let second = job_pods(&world).into_iter().find(|p| *p != first).unwrap();
    world.run_for(secs(120)).unwrap();
    assert!(terminating(&world, &first));
    assert_eq!(world.pod(NS, &second).map(|p| p.seid), Some(Seid::Unscheduled), "Multi-Attach: the volume is held");
    let down = (0..2).find(|w| !world.inspect(|s| s.plane.workers[*w].up)).unwrap();
    world.restart_worker(down);
    world
        .run_until("the replacement runs once the old pod is gone", secs(120), |w| {
            w.get::<Pod>(NS, &first).is_err()
                && matches!(w.pod(NS, &second).map(|p| p.seid), Some(Seid::Running { .. }))
        })
        .unwrap();
    assert_eq!(world.get::<Job>(NS, "b").unwrap().status.unwrap().failed, Some(1), "still counted once gone");
}

/// A pod deleted through the API is not a crash: the pod object goes and its StatefulSet makes a new one (a
/// new uid, restart counts from zero), where a crash restarts the containers of the same pod.
#[test]
fn a_deleted_pod_is_a_new_pod_a_crashed_one_the_same() {
    let mut world = world(1);
    world.create(&headless_service("n")).unwrap();
    world.create(&statefulset("n", "sei:v1", false, "Parallel")).unwrap();
    world.run_until("pod ready", secs(60), |w| pod_ready(w, "n-0")).unwrap();
    let uid = |w: &sei_sim::World| w.get::<Pod>(NS, "n-0").ok().and_then(|p| p.metadata.uid);
    let original = uid(&world);
    world.inject(&sei_sim::harness::fault_state::Fault::CrashPod { namespace: NS.into(), pod: "n-0".into() });
    world.run_until("restarted", secs(60), |w| w.pod(NS, "n-0").is_some_and(|p| p.restarts == 1)).unwrap();
    assert_eq!(uid(&world), original, "a crash keeps the pod");
    world.inject(&sei_sim::harness::fault_state::Fault::DeletePod { namespace: NS.into(), pod: "n-0".into() });
    world
        .run_until("made again", secs(60), |w| uid(w).is_some_and(|u| Some(u) != original) && pod_ready(w, "n-0"))
        .unwrap();
    assert_eq!(world.pod(NS, "n-0").unwrap().restarts, 0, "a new pod");
}

fn with_retention(name: &str, when_deleted: &str) -> StatefulSet {
    let mut set = statefulset(name, "sei:v1", false, "Parallel");
    set.spec.as_mut().unwrap().persistent_volume_claim_retention_policy =
        Some(k8s_openapi::api::apps::v1::StatefulSetPersistentVolumeClaimRetentionPolicy {
            when_deleted: Some(when_deleted.into()),
            when_scaled: Some("Retain".into()),
        });
    // A label of the template's own, which the claims keep beside the selector's.
    let template = &mut set.spec.as_mut().unwrap().volume_claim_templates.as_mut().unwrap()[0];
    template.metadata.labels = Some([("tier".to_owned(), "chain-data".to_owned())].into());
    set
}

fn claim_of(world: &sei_sim::World, name: &str) -> Option<k8s_openapi::api::core::v1::PersistentVolumeClaim> {
    world.get(NS, name).ok()
}

/// kubernetes `pkg/controller/statefulset/stateful_set_utils.go` (`getPersistentVolumeClaims`: a claim has its
/// template's labels and the set's selector labels; `updateClaimOwnerRefForSetAndPod`): under
/// `whenDeleted: Delete` the set is its claims' controller, and the garbage collector deletes them (and so the
/// chain data on them) with it; under `Retain` a set of the same name made again finds the claim and its data.
#[test]
fn a_claim_goes_with_its_set_under_when_deleted_delete_and_stays_under_retain() {
    let mut world = world(1);
    world.create(&with_retention("d", "Delete")).unwrap();
    world.create(&with_retention("r", "Retain")).unwrap();
    world.run_until("both pods run", secs(60), |w| pod_ready(w, "d-0") && pod_ready(w, "r-0")).unwrap();
    world.run_for(secs(20)).unwrap();
    let set_uid = world.get::<StatefulSet>(NS, "d").unwrap().metadata.uid;
    let owners = claim_of(&world, "data-d-0").unwrap().metadata.owner_references.unwrap_or_default();
    assert_eq!(owners.len(), 1);
    assert_eq!((Some(owners[0].uid.clone()), owners[0].controller), (set_uid, Some(true)), "the set controls it");
    assert!(claim_of(&world, "data-r-0").unwrap().metadata.owner_references.unwrap_or_default().is_empty());
    let selector = world.get::<StatefulSet>(NS, "d").unwrap().spec.unwrap().selector.match_labels.unwrap();
    let labels = claim_of(&world, "data-d-0").unwrap().metadata.labels.unwrap_or_default();
    let mut wanted = selector.clone();
    wanted.insert("tier".into(), "chain-data".into());
    assert_eq!(labels, wanted, "the template's labels and the selector's");
    let retained_uid = claim_of(&world, "data-r-0").unwrap().metadata.uid;
    let deleted_uid = claim_of(&world, "data-d-0").unwrap().metadata.uid;

    world.delete::<StatefulSet>(NS, "d").unwrap();
    world.delete::<StatefulSet>(NS, "r").unwrap();
    world.run_until("the Delete claim is gone", secs(120), |w| claim_of(w, "data-d-0").is_none()).unwrap();
    let key = |name: &str| sei_operator_core::cluster::ObjectRef::new("PersistentVolumeClaim", NS, name);
    assert!(!world.inspect(|s| s.plane.volumes.contains_key(&key("data-d-0"))), "its chain data went with it");
    let height = world.inspect(|s| s.plane.volumes.get(&key("data-r-0")).map(|v| v.height)).unwrap();
    assert!(height > 0, "the retained volume holds chain data");

    world.create(&with_retention("d", "Delete")).unwrap();
    world.create(&with_retention("r", "Retain")).unwrap();
    world.run_until("both pods run again", secs(120), |w| pod_ready(w, "d-0") && pod_ready(w, "r-0")).unwrap();
    assert_eq!(claim_of(&world, "data-r-0").unwrap().metadata.uid, retained_uid, "the same claim, reused");
    assert_ne!(claim_of(&world, "data-d-0").unwrap().metadata.uid, deleted_uid, "a new, empty claim");
}
