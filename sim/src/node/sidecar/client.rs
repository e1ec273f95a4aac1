//! `SimSidecar`: the [`Sidecar`] trait for the simulation — hyper 1 over turmoil TCP streams, one kept-alive
//! connection per pod port, requests tagged with the caller's name so every call's origin is on record (the
//! single-writer invariant reads it). Requests are built and answers read only by the operator's
//! [`protocol`] functions, the same ones the production client calls.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use sei_operator_core::sidecar::protocol::{self, Request as Call};
use sei_operator_core::sidecar::wire::{ChainStatus, ReadinessStatus, TaskRequest, TaskResult};
use sei_operator_core::sidecar::{PodAddress, Sidecar, SidecarError};
use tokio::task::AbortHandle;
use turmoil::net::TcpStream;
use uuid::Uuid;

use crate::harness::ledger::SidecarCall;
use crate::harness::state::{SharedWorld, lock};
use crate::harness::trace::Category;
use crate::node::resolver::resolve;

/// The request header naming the caller.
pub const CALLER_HEADER: &str = "x-sim-caller";

type Pool = Arc<Mutex<BTreeMap<(String, u16), (SendRequest<Full<Bytes>>, AbortHandle)>>>;

/// A sidecar client inside the simulation. Must be used from a turmoil host (it opens turmoil streams).
#[derive(Clone)]
pub struct SimSidecar {
    shared: SharedWorld,
    caller: Arc<str>,
    pool: Pool,
}

impl SimSidecar {
    pub fn new(shared: SharedWorld, caller: &str) -> Self {
        SimSidecar { shared, caller: caller.into(), pool: Pool::default() }
    }

    /// The same client (and connections) calling as `caller`.
    pub fn with_caller(&self, caller: &str) -> Self {
        SimSidecar { shared: self.shared.clone(), caller: caller.into(), pool: self.pool.clone() }
    }

    pub fn caller(&self) -> &str {
        &self.caller
    }

    async fn call(&self, pod: &PodAddress, call: Call) -> Result<(u16, Bytes), SidecarError> {
        let Call { method, port, path, body } = call;
        let method = match method {
            protocol::Method::Get => Method::GET,
            protocol::Method::Post => Method::POST,
        };
        let path = path.as_str();
        let unreachable = |reason: String| SidecarError::Unreachable { host: pod.host.clone(), reason };
        let replica = crate::operator_host::replicas::replica_of_caller(&self.caller);
        if let Some(replica) = replica {
            // A paused replica sends nothing until it resumes (no-op in a world of one replica).
            crate::operator_host::replicas::wait_while_paused(&self.shared, replica).await;
        }
        if replica.is_some_and(|r| crate::operator_host::replicas::dead(&lock(&self.shared), r)) {
            // The operator process died at its crash point (see `SimCluster`): nothing more leaves it.
            std::future::pending::<()>().await;
        }
        let (resolved, timeout) = {
            let mut world = lock(&self.shared);
            let call = SidecarCall {
                at: world.now,
                caller: self.caller.to_string(),
                host: pod.host.clone(),
                method: method.to_string(),
                path: path.into(),
            };
            world.ledger.sidecar_calls.push(call);
            (resolve(&world, &pod.host, port), world.timings.sidecar_timeout)
        };
        let resolved = match resolved {
            Ok(resolved) => resolved,
            Err(e) => {
                let error = unreachable(e.to_string());
                lock(&self.shared).record(Category::Sidecar, format_args!("{} -> {path} failed: {error}", self.caller));
                return Err(error);
            }
        };
        let address = (resolved.worker, resolved.port);
        let mut request = Request::builder().method(method).uri(path).header("host", &pod.host);
        if body.is_some() {
            request = request.header("content-type", protocol::JSON);
        }
        let request = request
            .header(CALLER_HEADER, &*self.caller)
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| unreachable(e.to_string()))?;
        let exchange = async {
            let pooled = self.pool.lock().unwrap_or_else(|p| p.into_inner()).remove(&address);
            let (mut sender, driver) = match pooled {
                Some((sender, driver)) if !sender.is_closed() => (sender, driver),
                stale => {
                    if let Some((_, driver)) = stale {
                        driver.abort();
                    }
                    connect(&address).await?
                }
            };
            sender.ready().await.map_err(|e| e.to_string())?;
            let response = sender.send_request(request).await.map_err(|e| e.to_string())?;
            let status = response.status().as_u16();
            let bytes = response.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
            self.pool.lock().unwrap_or_else(|p| p.into_inner()).insert(address.clone(), (sender, driver));
            Ok::<_, String>((status, bytes))
        };
        let outcome = match tokio::time::timeout(timeout, exchange).await {
            Ok(result) => result.map_err(unreachable),
            Err(_) => {
                if let Some((_, driver)) = self.pool.lock().unwrap_or_else(|p| p.into_inner()).remove(&address) {
                    driver.abort();
                }
                Err(unreachable(format!("no answer within {timeout:?}")))
            }
        };
        if let Some(replica) = replica {
            // A paused replica handles the answer (the task the sidecar started) only once it resumes.
            crate::operator_host::replicas::wait_while_paused(&self.shared, replica).await;
        }
        if let Err(error) = &outcome {
            // Answered calls are traced by the server; failed ones only the caller knows of.
            lock(&self.shared).record(Category::Sidecar, format_args!("{} -> {path} failed: {error}", self.caller));
        }
        outcome
    }
}

async fn connect(address: &(String, u16)) -> Result<(SendRequest<Full<Bytes>>, AbortHandle), String> {
    let stream = TcpStream::connect((address.0.as_str(), address.1)).await.map_err(|e| e.to_string())?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream)).await.map_err(|e| e.to_string())?;
    let driver = tokio::task::spawn_local(async move {
        // Ends when either side closes; the pool notices through `is_closed`.
        let _ = connection.await;
    });
    Ok((sender, driver.abort_handle()))
}

impl Sidecar for SimSidecar {
    async fn healthz(&self, pod: &PodAddress) -> Result<bool, SidecarError> {
        let (status, body) = self.call(pod, protocol::healthz_request(pod)).await?;
        protocol::healthz(&pod.host, status, &body)
    }

    async fn status(&self, pod: &PodAddress) -> Result<ReadinessStatus, SidecarError> {
        let (status, body) = self.call(pod, protocol::status_request(pod)).await?;
        protocol::status(&pod.host, status, &body)
    }

    async fn submit_task(&self, pod: &PodAddress, request: &TaskRequest) -> Result<Uuid, SidecarError> {
        let (status, body) = self.call(pod, protocol::submit_request(pod, request)?).await?;
        protocol::submitted(&pod.host, request, status, &body)
    }

    async fn get_task(&self, pod: &PodAddress, id: Uuid) -> Result<Option<TaskResult>, SidecarError> {
        let (status, body) = self.call(pod, protocol::get_task_request(pod, id)).await?;
        protocol::task(&pod.host, status, &body)
    }

    async fn list_tasks(&self, pod: &PodAddress) -> Result<Vec<TaskResult>, SidecarError> {
        let (status, body) = self.call(pod, protocol::list_tasks_request(pod)).await?;
        protocol::tasks(&pod.host, status, &body)
    }

    async fn chain_status(&self, pod: &PodAddress) -> Result<ChainStatus, SidecarError> {
        let (status, body) = self.call(pod, protocol::chain_status_request()).await?;
        protocol::chain_status(&pod.host, status, &body)
    }
}
