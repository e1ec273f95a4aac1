//! `status.currentImage` of a SeiNode (docs/design.md §6): the StatefulSet's image, reported only once its rollout has
//! truly finished.

use k8s_openapi::api::apps::v1::StatefulSet;

use crate::objects::workload::seid_image;

/// The image the node's pod now runs, or `None` while that cannot be said (keep the previous value).
///
/// Finished means: the StatefulSet controller has seen the latest template (`observedGeneration ==
/// generation` — right after a template change it still shows its old, equal revisions, and the new image would
/// be reported before any pod ran it); `currentRevision` is non-empty and equals `updateRevision`; and at least
/// one replica is ready.
pub fn observed_current_image(stateful_set: Option<&StatefulSet>) -> Option<String> {
    let sts = stateful_set?;
    let status = sts.status.as_ref()?;
    let generation = sts.metadata.generation?;
    let observed = status.observed_generation == Some(generation);
    let current = status.current_revision.as_deref().filter(|r| !r.is_empty());
    let converged = current.is_some() && current == status.update_revision.as_deref();
    let ready = status.ready_replicas.unwrap_or(0) >= 1;
    if observed && converged && ready { seid_image(&sts.spec.as_ref()?.template).map(str::to_owned) } else { None }
}
