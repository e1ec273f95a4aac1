//! The simulation's DNS for pods: `<hostname>.<subdomain>.<namespace>.svc` resolves as cluster DNS does — from
//! the endpoints of the headless Service `<subdomain>`: the pod must have that hostname and subdomain, match the
//! Service's selector, and be Ready, unless the Service sets `publishNotReadyAddresses` (a sidecar that must be
//! reached before seid is Ready needs exactly that). The answer is the pod's worker host and the worker port
//! that stands in for the pod's own port.

use sei_operator_core::cluster::ObjectRef;
use sei_operator_core::sidecar::SEID_RPC_PORT;
use serde_json::{Map, Value};

use crate::apiserver::json::Fields;
use crate::harness::state::WorldState;

/// Where a pod's port is reached in the simulation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    pub worker: String,
    pub port: u16,
    pub pod: ObjectRef,
}

/// Why a name does not resolve or a port has no listener.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("no such host {0}")]
    NoSuchHost(String),
    #[error("connection refused: {host} has nothing on port {port}")]
    Refused { host: String, port: u16 },
}

/// Whether an equality-based selector selects an object with `labels`, read in place from the stored JSON: every
/// pair of the selector is among the labels (an empty selector selects everything). A value that is not a string
/// is no label, on either side.
fn selects(selector: &Map<String, Value>, labels: Option<&Map<String, Value>>) -> bool {
    selector
        .iter()
        .filter_map(|(key, value)| Some((key, value.as_str()?)))
        .all(|(key, value)| labels.and_then(|labels| labels.get(key)).and_then(Value::as_str) == Some(value))
}

/// Resolves `host:port` to a worker and port.
pub fn resolve(world: &WorldState, host: &str, port: u16) -> Result<Resolved, ResolveError> {
    let labels: Vec<&str> = host.split('.').collect();
    let (Some(hostname), Some(subdomain), Some(namespace)) = (labels.first(), labels.get(1), labels.get(2)) else {
        return Err(ResolveError::NoSuchHost(host.into()));
    };
    let Some(service) = world.api.store.get(&ObjectRef::new("Service", *namespace, *subdomain), None) else {
        return Err(ResolveError::NoSuchHost(host.into()));
    };
    let spec = service.get("spec");
    let selector = spec.and_then(|spec| spec.get("selector")).and_then(Value::as_object);
    let publish_not_ready =
        spec.and_then(|spec| spec.get("publishNotReadyAddresses")).and_then(Value::as_bool).unwrap_or(false);
    let is_endpoint = |pod: &&crate::kube::kubelet::PodRuntime| {
        let labels =
            world.api.store.get(&pod.key, None).and_then(|v| v.metadata_field("labels")).and_then(Value::as_object);
        // A finished pod (Succeeded or Failed: a Job's pods stay after they end) is never an endpoint, even
        // under publishNotReadyAddresses (kubernetes/kubernetes
        // `staging/src/k8s.io/endpointslice/util/controller_utils.go`, `ShouldPodBeInEndpoints`: terminal pods are
        // skipped) — and a Job's replacement pod shares the finished one's hostname.
        let phase = pod.reported.phase.as_deref();
        let terminal = matches!(phase, Some("Succeeded" | "Failed"));
        // A pod with no IP yet — not scheduled, or held back before its sandbox (a volume still attached
        // elsewhere) — is no endpoint either, publishNotReadyAddresses or not (same function: "no IP ->
        // exclude"). Unscheduled, the simulated pod has no worker port of its own to answer on.
        let has_ip = pod.seid != crate::kube::pod::Seid::Unscheduled;
        // A Service without a selector has no managed endpoints.
        has_ip && !terminal && selector.is_some_and(|s| selects(s, labels)) && (publish_not_ready || pod.is_ready())
    };
    let named = |p: &&crate::kube::kubelet::PodRuntime| {
        p.key.namespace == *namespace && p.hostname == *hostname && p.subdomain.as_deref() == Some(*subdomain)
    };
    // A StatefulSet pod's hostname is its name: look it up directly before scanning every pod.
    let direct = world.plane.pods.get(&ObjectRef::new("Pod", *namespace, *hostname)).filter(named).filter(is_endpoint);
    let pod = direct
        .or_else(|| world.plane.pods.values().filter(named).find(is_endpoint))
        .ok_or_else(|| ResolveError::NoSuchHost(host.into()))?;
    let worker = world
        .plane
        .workers
        .get(pod.worker)
        .map(|w| w.name.clone())
        .ok_or_else(|| ResolveError::NoSuchHost(host.into()))?;
    let worker_port = if port == SEID_RPC_PORT {
        pod.rpc_worker_port()
    } else if pod.sidecar_port == Some(port) {
        pod.sidecar_worker_port()
    } else {
        return Err(ResolveError::Refused { host: host.into(), port });
    };
    Ok(Resolved { worker, port: worker_port, pod: pod.key.clone() })
}
