//! The fake Job controller: one pod at a time (parallelism and completions 1), a new pod after each failed one
//! until `backoffLimit` (default 6) failures, then the `Failed` condition; the `Complete` condition once a pod
//! succeeds; a pod being deleted counts as failed and is replaced at once. Pods are named `<job>-<5 random characters>` and labelled `job-name`, as the real controller does.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use rand::Rng;
use sei_operator_core::cluster::{ClusterError, ObjectRef};
use sei_operator_core::objects::meta::{controller_reference, is_controlled_by};
use serde_json::{Value, json};

use super::traced;
use crate::apiserver::json::Fields;
use crate::apiserver::store::time_value;
use crate::harness::state::WorldState;

const ACTOR: &str = "job-controller";
const DEFAULT_BACKOFF_LIMIT: i32 = 6;
/// The finalizer through which the Job controller counts its pods (GA since Kubernetes 1.26).
pub const JOB_TRACKING: &str = "batch.kubernetes.io/job-tracking";

/// Syncs every Job.
pub fn sync(world: &mut WorldState) {
    // Decoded through the world's cache: a finished Job is read at every sync and rarely changes.
    let decoded = world.api.store.decoded();
    let jobs: Vec<Arc<Job>> =
        world.api.store.all_of_kind("Job").filter_map(|(key, v)| decoded.decode(key, v).ok()).collect();
    for job in jobs {
        sync_one(world, &job);
    }
    release_orphans(world);
}

fn finished(job: &Job) -> bool {
    job.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True"))
}

fn sync_one(world: &mut WorldState, job: &Job) {
    let (Some(name), Some(namespace), Some(uid)) = (&job.metadata.name, &job.metadata.namespace, &job.metadata.uid)
    else {
        return;
    };
    if job.metadata.deletion_timestamp.is_some() || finished(job) {
        return;
    }
    let decoded = world.api.store.decoded();
    let pods: Vec<Arc<Pod>> = world
        .api
        .store
        .list("Pod", namespace, &BTreeMap::new(), None)
        .into_iter()
        .filter_map(|v| {
            let key = ObjectRef::new("Pod", namespace, v.metadata_field("name")?.as_str()?);
            decoded.decode(&key, v).ok()
        })
        .filter(|p: &Arc<Pod>| is_controlled_by(&p.metadata, uid))
        .collect();
    // Pods are counted through the `batch.kubernetes.io/job-tracking` finalizer, as the real controller does
    // (kubernetes `pkg/controller/job/job_controller.go`, `trackJobStatusAndRemoveFinalizers`): a finished pod
    // still carrying it is added to `status.succeeded` / `status.failed`, then loses it; so a pod is counted
    // once, even when its object is gone by the next sync. A pod being deleted (evicted, drained, deleted by
    // hand) counts as failed unless it succeeded, and is no longer active: the Job replaces it at once
    // (`isPodFailed`: "Count deleted Pods as failures to account for orphan Pods that never have a chance to
    // reach the Failed phase"; the default `podReplacementPolicy: TerminatingOrFailed` without a
    // podFailurePolicy).
    let outcome = |p: &Pod| match p.status.as_ref().and_then(|s| s.phase.as_deref()) {
        Some("Succeeded") => Some(true),
        Some("Failed") => Some(false),
        _ if p.metadata.deletion_timestamp.is_some() => Some(false),
        _ => None,
    };
    let tracked = |p: &Pod| p.metadata.finalizers.iter().flatten().any(|f| f == JOB_TRACKING);
    let newly = |succeeded: bool| pods.iter().filter(|p| tracked(p) && outcome(p) == Some(succeeded)).count();
    let counted = |n: Option<i32>| n.and_then(|n| usize::try_from(n).ok()).unwrap_or(0);
    let status = job.status.as_ref();
    let succeeded = counted(status.and_then(|s| s.succeeded)) + newly(true);
    let failed = counted(status.and_then(|s| s.failed)) + newly(false);
    let active = pods.iter().filter(|p| outcome(p).is_none()).count();
    let newly_finished: Vec<ObjectRef> = pods
        .iter()
        .filter(|p| tracked(p) && outcome(p).is_some())
        .filter_map(|p| Some(ObjectRef::new("Pod", namespace, p.metadata.name.as_deref()?)))
        .collect();
    let backoff_limit = job.spec.as_ref().and_then(|s| s.backoff_limit).unwrap_or(DEFAULT_BACKOFF_LIMIT);
    let now = world.timestamp();
    let mut conditions = Vec::new();
    if succeeded > 0 {
        conditions.push(json!({"type": "Complete", "status": "True", "lastTransitionTime": time_value(now)}));
    } else if failed > usize::try_from(backoff_limit).unwrap_or(0) {
        conditions.push(json!({"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
            "message": "Job has reached the specified backoff limit", "lastTransitionTime": time_value(now)}));
    } else if active == 0 {
        create_pod(world, job);
    }
    let mut status = json!({
        "active": if conditions.is_empty() { active.max(1) } else { 0 },
        "succeeded": succeeded,
        "failed": failed,
        "startTime": job.status.as_ref().and_then(|s| s.start_time.clone()).map_or_else(|| time_value(now), |t| json!(t)),
    });
    if !conditions.is_empty() {
        status["conditions"] = Value::Array(conditions);
        if succeeded > 0 {
            status["completionTime"] = time_value(now);
        }
    }
    let key = ObjectRef::new("Job", namespace, name);
    let Some(stored) = world.api.store.get(&key, None) else { return };
    if stored.get("status") == Some(&status) {
        return;
    }
    let update = crate::apiserver::store::status_update(stored, status.clone());
    let result = world.api.store.replace_status(update);
    let written = result.is_ok();
    let text = format!("status {key} active={} succeeded={succeeded} failed={failed}", status["active"]);
    traced(world, ACTOR, "write", text, result);
    if written {
        for pod in newly_finished {
            remove_tracking_finalizer(world, &pod);
        }
    }
}

/// Removes the job-tracking finalizer from a pod the Job has counted, or whose Job is gone.
fn remove_tracking_finalizer(world: &mut WorldState, pod: &ObjectRef) {
    let Some(mut value) = world.api.store.get(pod, None).cloned() else { return };
    let Some(list) = value.pointer_mut("/metadata/finalizers").and_then(Value::as_array_mut) else { return };
    list.retain(|f| f.as_str() != Some(JOB_TRACKING));
    let result = world.api.store.replace(value);
    traced(world, ACTOR, "remove the job-tracking finalizer of", pod.to_string(), result);
}

/// Pods that carry the job-tracking finalizer but whose Job is gone or being deleted lose it, as the real
/// controller's orphan-pod handling does: nothing else would ever let them go.
fn release_orphans(world: &mut WorldState) {
    let live_jobs: std::collections::BTreeSet<String> = world
        .api
        .store
        .all_of_kind("Job")
        .filter(|(_, v)| !crate::apiserver::store::is_deleting(v))
        .filter_map(|(_, v)| v.metadata_field("uid").and_then(Value::as_str).map(str::to_owned))
        .collect();
    let orphans: Vec<ObjectRef> = world
        .api
        .store
        .all_of_kind("Pod")
        .filter(|(_, v)| crate::apiserver::store::finalizers(v).contains(&JOB_TRACKING))
        .filter(|(_, v)| {
            let owner = v.at("/metadata/ownerReferences/0/uid").and_then(Value::as_str).unwrap_or_default();
            !live_jobs.contains(owner)
        })
        .map(|(k, _)| k.clone())
        .collect();
    for pod in orphans {
        remove_tracking_finalizer(world, &pod);
    }
}

fn create_pod(world: &mut WorldState, job: &Job) {
    let (Some(job_name), Some(namespace), Some(uid)) = (&job.metadata.name, &job.metadata.namespace, &job.metadata.uid)
    else {
        return;
    };
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let suffix: String = (0..5).map(|_| char::from(ALPHABET[world.rng.random_range(0..ALPHABET.len())])).collect();
    let name = format!("{job_name}-{suffix}");
    let template = job.spec.as_ref().map(|s| s.template.clone()).unwrap_or_default();
    let mut labels = template.metadata.as_ref().and_then(|m| m.labels.clone()).unwrap_or_default();
    labels.insert("job-name".into(), job_name.clone());
    labels.insert("batch.kubernetes.io/job-name".into(), job_name.clone());
    labels.insert("controller-uid".into(), uid.clone());
    let pod = Pod {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(namespace.clone()),
            labels: Some(labels),
            owner_references: controller_reference(job).map(|r| vec![r]),
            finalizers: Some(vec![JOB_TRACKING.into()]),
            ..ObjectMeta::default()
        },
        spec: template.spec,
        status: None,
    };
    let now = world.timestamp();
    let result = serde_json::to_value(&pod)
        .map_err(|e| ClusterError::Transient(e.to_string()))
        .and_then(|value| world.api.store.create(value, now));
    traced(world, ACTOR, "create", format!("Pod {namespace}/{name}"), result);
}
