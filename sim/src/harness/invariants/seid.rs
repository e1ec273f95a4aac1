//! seid: no upgrade panic the operator caused, `currentImage` run by a Ready pod, seid started only on a
//! prepared volume and never restarted needlessly.

use super::*;

/// Invariant 2: zero upgrade panics on the entrants of a HardFork rollout.
pub fn no_upgrade_panic_on_hardfork_entrant(
    world: &WorldState,
    observed: &mut ObservedObjects,
) -> Result<(), InvariantViolation> {
    let new = world.ledger.panics.get(observed.panics_checked..).unwrap_or(&[]);
    observed.panics_checked = world.ledger.panics.len();
    for panic in new.iter().filter(|p| p.upgrade_panic) {
        let Some(node) = &panic.node else { continue };
        let entrant_of = observed.deployments.iter().find(|(key, d)| {
            key.namespace == panic.namespace
                && d.status
                    .as_ref()
                    .and_then(|s| s.rollout.as_ref())
                    .is_some_and(|r| r.strategy == Strategy::HardFork && r.entrant_nodes.iter().any(|n| n == node))
        });
        if let Some((key, _)) = entrant_of {
            return Err(InvariantViolation::new(
                NO_UPGRADE_PANIC_ON_HARDFORK_ENTRANT,
                format!("entrant {node} of {key} ({}) {}", panic.image, panic.reason),
            ));
        }
    }
    Ok(())
}

/// Invariant 4: `status.currentImage` (and `currentSidecarImage`) never names an image no Ready pod of that node
/// has run. The kubelet records
/// an image in `ready_images` only while its pod is Ready by the kubelet's rules (its probes) and seid itself runs
/// it (`kube::pod_status::report_pods`).
pub fn current_image_was_run(world: &WorldState, observed: &mut ObservedObjects) -> Result<(), InvariantViolation> {
    // Ready images are only ever added, so only a node whose status changed can newly break this.
    for key in std::mem::take(&mut observed.changed_nodes) {
        let Some(node) = observed.nodes.get(&key) else { continue };
        let status = node.status.as_ref();
        if let Some(image) = status.and_then(|s| s.current_image.as_ref())
            && !world.ledger.ready_images.contains(&(key.namespace.clone(), key.name.clone(), image.clone()))
        {
            return Err(InvariantViolation::new(
                CURRENT_IMAGE_WAS_RUN,
                format!("{key} reports currentImage {image}, which no Ready pod of it has run"),
            ));
        }
        if let Some(image) = status.and_then(|s| s.current_sidecar_image.as_ref())
            && !world.ledger.ready_sidecar_images.contains(&(key.namespace.clone(), key.name.clone(), image.clone()))
        {
            return Err(InvariantViolation::new(
                CURRENT_IMAGE_WAS_RUN,
                format!("{key} reports currentSidecarImage {image}, which no Ready pod of it has run"),
            ));
        }
    }
    Ok(())
}

/// docs/design.md §2 (seid waits for nothing: it runs on whatever its volume holds) and §6 (the init plan prepares the
/// volume before mark-ready): seid never starts on a volume its node's init plan — or its bootstrap — has not
/// prepared: `seid init` run, the node's config applied (`config-apply` completed), and a snapshot restored when
/// the SeiNode's spec asks for an S3 snapshot (with a bootstrap image or without: the bootstrap pod's seid needs
/// it as much). Called by the kubelet at the moment seid's process starts in a pod of a SeiNode; pods of no
/// SeiNode are not judged. A fake kubelet that made seid wait on its own would hide exactly this.
pub fn on_seid_start(world: &mut WorldState, key: &ObjectRef) {
    let Some(pod) = world.plane.pods.get(key) else { return };
    let Some(node) = &pod.node else { return };
    let node_key = ObjectRef::new("SeiNode", &key.namespace, node);
    let Some(stored) = world.api.store.get(&node_key, None) else { return };
    let Ok(node) = world.api.store.decoded().decode::<SeiNode>(&node_key, stored) else { return };
    let restore = node.spec.snapshot().is_some_and(|s| s.s3.is_some());
    let volume = pod.volume.as_ref().and_then(|v| world.plane.volumes.get(v)).cloned().unwrap_or_default();
    let missing = volume.unprepared(restore);
    if missing.is_empty() {
        return;
    }
    let claim = pod.volume.as_ref().map_or_else(|| "no volume".to_owned(), |v| format!("claim {}", v.name));
    let message = format!(
        "seid ({}) started in {key} on {claim} (height {}), which lacks {} for SeiNode {}",
        pod.image,
        volume.height,
        missing.join(", "),
        node.metadata.name.as_deref().unwrap_or_default()
    );
    world.ledger.write_violations.push(InvariantViolation::new(SEID_RUNS_ON_PREPARED_VOLUME, message));
}

/// docs/design.md §6 and issue #16 (a config change restarts seid only when the config needs it): a `restart-seid` that
/// stops a seid already running the config on its volume, in a container started after that config was
/// written, restarted a node for nothing. Called by the sidecar
/// model when a `restart-seid` run is about to SIGTERM seid in a SeiNode's pod.
pub fn on_seid_restart(world: &mut WorldState, key: &ObjectRef) {
    // Pods of no stored SeiNode (a test's own) are not judged.
    let Some(pod) = world.plane.pods.get(key) else { return };
    let Some(node) = &pod.node else { return };
    if world.api.store.get(&ObjectRef::new("SeiNode", &key.namespace, node), None).is_none() {
        return;
    }
    let crate::kube::pod::Seid::Running { run, .. } = &pod.seid else { return };
    let volume = pod.volume.as_ref().and_then(|v| world.plane.volumes.get(v));
    let on_volume = volume.and_then(|v| v.config.clone());
    // What the operator can know is when seid's container started (the pod's status), not when the wrapper in it
    // started seid: a container started before the last write, whose seid started after it, is restarted for a
    // reason the operator could not see through.
    let written_at = volume.and_then(|v| v.config_written_at).unwrap_or_default();
    if run.config.as_deref() != on_volume.as_ref() || pod.probe_state.container_started_at <= written_at {
        return;
    }
    let message =
        format!("restart-seid stopped seid in {key}, which already ran the config on its volume: {on_volume:?}");
    world.ledger.write_violations.push(InvariantViolation::new(NO_NEEDLESS_SEID_RESTART, message));
}
