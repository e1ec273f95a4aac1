//! The simulation's DNS for pods: `<hostname>.<subdomain>.<namespace>.svc` resolves, as cluster DNS does, only
//! when the headless Service `<subdomain>` exists and a pod with that hostname and subdomain does; the answer is
//! the pod's worker host and the worker port that stands in for the pod's own port.

use sei_operator::cluster::ObjectRef;
use sei_operator::sidecar::SEID_RPC_PORT;

use crate::state::WorldState;

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

/// Resolves `host:port` to a worker and port.
pub fn resolve(world: &WorldState, host: &str, port: u16) -> Result<Resolved, ResolveError> {
    let labels: Vec<&str> = host.split('.').collect();
    let (Some(hostname), Some(subdomain), Some(namespace)) = (labels.first(), labels.get(1), labels.get(2)) else {
        return Err(ResolveError::NoSuchHost(host.into()));
    };
    if world.store.get(&ObjectRef::new("Service", *namespace, *subdomain), None).is_none() {
        return Err(ResolveError::NoSuchHost(host.into()));
    }
    let mut candidates = world.pods.values().filter(|p| {
        p.key.namespace == *namespace && p.hostname == *hostname && p.subdomain.as_deref() == Some(*subdomain)
    });
    let pod = candidates.next().ok_or_else(|| ResolveError::NoSuchHost(host.into()))?;
    let worker =
        world.workers.get(pod.worker).map(|w| w.name.clone()).ok_or_else(|| ResolveError::NoSuchHost(host.into()))?;
    let worker_port = if port == SEID_RPC_PORT {
        pod.rpc_worker_port()
    } else if pod.sidecar_port == Some(port) {
        pod.sidecar_worker_port()
    } else {
        return Err(ResolveError::Refused { host: host.into(), port });
    };
    Ok(Resolved { worker, port: worker_port, pod: pod.key.clone() })
}
