//! `status.currentImage` of a SeiNode (docs/design.md §6): the StatefulSet's image, reported only once its rollout has
//! truly finished.

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::PodTemplateSpec;

use crate::objects::workload::{seid_image, sidecar_image};

/// The image the node's pod now runs, or `None` while that cannot be said (keep the previous value).
///
/// Finished means: the StatefulSet controller has seen the latest template (`observedGeneration ==
/// generation` — right after a template change it still shows its old, equal revisions, and the new image would
/// be reported before any pod ran it); `currentRevision` is non-empty and equals `updateRevision`; and at least
/// one replica is ready.
pub fn observed_current_image(stateful_set: Option<&StatefulSet>) -> Option<String> {
    seid_image(rolled_template(stateful_set)?).map(str::to_owned)
}

/// The sidecar image the node's pod now runs, by the same rule as [`observed_current_image`]: a StatefulSet's
/// rollout is the whole pod's, so seid and the sidecar roll together (sei-protocol/sei-k8s-controller
/// `internal/task/observe_image.go` stamps `currentImage` and `currentSidecarImage` at once).
pub fn observed_current_sidecar_image(stateful_set: Option<&StatefulSet>) -> Option<String> {
    sidecar_image(rolled_template(stateful_set)?).map(str::to_owned)
}

/// The pod template a StatefulSet's pods run, once its rollout has truly finished.
fn rolled_template(stateful_set: Option<&StatefulSet>) -> Option<&PodTemplateSpec> {
    let sts = stateful_set?;
    let status = sts.status.as_ref()?;
    let generation = sts.metadata.generation?;
    let observed = status.observed_generation == Some(generation);
    let current = status.current_revision.as_deref().filter(|r| !r.is_empty());
    let converged = current.is_some() && current == status.update_revision.as_deref();
    let ready = status.ready_replicas.unwrap_or(0) >= 1;
    if observed && converged && ready { Some(&sts.spec.as_ref()?.template) } else { None }
}
