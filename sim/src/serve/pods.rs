//! The pods' ports on loopback: `/sim/pods/<pod-host>/<port>/<path>` reaches the sidecar API or seid's RPC of
//! the pod that `<pod-host>` (`<node>-0.<node>.<namespace>.svc`) resolves to, through the simulation's cluster
//! DNS ([`crate::node::resolver`]), answered by the same handlers the pods' servers on the worker hosts run
//! ([`crate::node::sidecar::api`]).
//!
//! Why a path prefix on the API's port rather than a port per pod: pods come and go while the server runs, and
//! the production client needs only a different base URL (`sei-operator run --sidecar-proxy`), not a different
//! protocol. What cannot be reached — a name that does not resolve, nothing on the port, a worker that is down or
//! partitioned — closes the connection without an answer, as a refused or dropped connection would look to the
//! client: [`Unreachable`].

use bytes::Bytes;
use sei_operator_core::cluster::ObjectRef;
use sei_operator_core::sidecar::SEID_RPC_PORT;

use crate::harness::state::lock;
use crate::harness::trace::Category;
use crate::kube::kubelet::Seid;
use crate::node::sidecar::api;
use crate::serve::Server;

/// Where pods' ports are served.
pub const PREFIX: &str = "/sim/pods";

/// The pod's port cannot be reached: the connection is closed without an answer.
#[derive(Debug, thiserror::Error)]
#[error("{host}:{port} unreachable: {reason}")]
pub struct Unreachable {
    pub host: String,
    pub port: u16,
    pub reason: String,
}

/// Answers one request for `rest` (what follows [`PREFIX`]: `/<host>/<port>/<path>`).
pub fn answer(server: &Server, method: &str, rest: &str, body: &Bytes) -> Result<(u16, String), Unreachable> {
    let mut parts = rest.trim_start_matches('/').splitn(3, '/');
    let host = parts.next().unwrap_or_default().to_owned();
    let port_text = parts.next().unwrap_or_default();
    let path = format!("/{}", parts.next().unwrap_or_default());
    let unreachable = |reason: String| Unreachable { host: host.clone(), port: 0, reason };
    let port: u16 = port_text.parse().map_err(|_| unreachable(format!("{port_text:?} is not a port")))?;
    let unreachable = |reason: String| Unreachable { host: host.clone(), port, reason };
    let partitioned = server.faults().partitioned.clone();
    let mut world = lock(&server.shared);
    let resolved = crate::node::resolver::resolve(&world, &host, port).map_err(|e| unreachable(e.to_string()))?;
    let worker = world.plane.workers.iter().position(|w| w.name == resolved.worker);
    if worker.is_none_or(|w| !world.plane.workers[w].up) {
        return Err(unreachable(format!("{} is down", resolved.worker)));
    }
    if worker.is_some_and(|w| partitioned.contains(&w)) {
        return Err(unreachable(format!("{} is partitioned from the operator", resolved.worker)));
    }
    let key: ObjectRef = resolved.pod;
    let Some(pod) = world.plane.pods.get(&key) else { return Err(unreachable("no such pod".into())) };
    let answer = if port == SEID_RPC_PORT {
        let Seid::Running { rpc_incarnation, .. } = &pod.seid else {
            return Err(unreachable("connection refused: seid is not running".into()));
        };
        api::rpc(&world, &key, *rpc_incarnation, &path)
    } else {
        let Some(incarnation) = pod.sidecar.as_ref().map(|s| s.incarnation) else {
            return Err(unreachable("connection refused: the sidecar is not running".into()));
        };
        api::sidecar(&mut world, &key, incarnation, "operator", method, &path, body)
    };
    world.record(
        Category::Sidecar,
        format!("operator (served) -> {}/{} {method} {path} = {}", key.namespace, key.name, answer.0),
    );
    Ok(answer)
}
