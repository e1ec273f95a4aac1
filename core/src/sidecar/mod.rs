//! The `Sidecar` trait: how the SeiNode controller — and only it — reaches the sidecar (seictl) beside seid in a
//! node's pod, and seid's own RPC status. Production backs it with reqwest; the simulator with hyper over
//! turmoil streams. Both speak the wire types of [`wire`] and build requests and read answers only through
//! [`protocol`].

pub mod protocol;
pub mod wire;

use std::future::Future;

use uuid::Uuid;

use wire::{ChainStatus, ReadinessStatus, TaskRequest, TaskResult};

/// seid's CometBFT RPC port.
pub const SEID_RPC_PORT: u16 = 26657;

/// Where a node's pod answers: `<node>-0.<node>.<namespace>.svc` (the StatefulSet's only pod, through the node's
/// headless Service).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PodAddress {
    pub host: String,
    pub sidecar_port: u16,
}

impl PodAddress {
    /// The address of SeiNode `node`'s pod.
    pub fn for_node(namespace: &str, node: &str, sidecar_port: u16) -> Self {
        PodAddress { host: format!("{node}-0.{node}.{namespace}.svc"), sidecar_port }
    }
}

/// The sidecar's API (v0) and seid's RPC status, for one pod at a time.
pub trait Sidecar: Send + Sync {
    /// `GET /v0/healthz`: true (200) once a `mark-ready` task completed in this sidecar process, false (503)
    /// before.
    fn healthz(&self, pod: &PodAddress) -> impl Future<Output = Result<bool, SidecarError>> + Send;

    /// `GET /v0/status`.
    fn status(&self, pod: &PodAddress) -> impl Future<Output = Result<ReadinessStatus, SidecarError>> + Send;

    /// `POST /v0/tasks` with a caller-chosen id; answers the task's id. The sidecar (sei-protocol/seictl
    /// `sidecar/engine/engine.go`, `Engine.Submit`) starts an unknown id, re-runs a `failed` one, and answers a
    /// `running` or `completed` one without doing anything — the same 201 in every case, so the caller cannot
    /// tell which. Its task table is on the node's volume and outlives sidecar and pod restarts: work meant for
    /// one sidecar process (`mark-ready`) needs an id of its own per process.
    fn submit_task(
        &self,
        pod: &PodAddress,
        request: &TaskRequest,
    ) -> impl Future<Output = Result<Uuid, SidecarError>> + Send;

    /// `GET /v0/tasks/{id}`; `None` when the sidecar does not know the task (404): never submitted, deleted, or
    /// its volume replaced.
    fn get_task(
        &self,
        pod: &PodAddress,
        id: Uuid,
    ) -> impl Future<Output = Result<Option<TaskResult>, SidecarError>> + Send;

    /// `GET /v0/tasks`: the sidecar's newest task results (seictl lists up to 100), whatever their state.
    fn list_tasks(&self, pod: &PodAddress) -> impl Future<Output = Result<Vec<TaskResult>, SidecarError>> + Send;

    /// seid's `GET /status` on port 26657: latest height and whether it is catching up. Fails while seid does
    /// not run.
    fn chain_status(&self, pod: &PodAddress) -> impl Future<Output = Result<ChainStatus, SidecarError>> + Send;
}

impl<T: Sidecar> Sidecar for &T {
    fn healthz(&self, pod: &PodAddress) -> impl Future<Output = Result<bool, SidecarError>> + Send {
        (**self).healthz(pod)
    }

    fn status(&self, pod: &PodAddress) -> impl Future<Output = Result<ReadinessStatus, SidecarError>> + Send {
        (**self).status(pod)
    }

    fn submit_task(
        &self,
        pod: &PodAddress,
        request: &TaskRequest,
    ) -> impl Future<Output = Result<Uuid, SidecarError>> + Send {
        (**self).submit_task(pod, request)
    }

    fn get_task(
        &self,
        pod: &PodAddress,
        id: Uuid,
    ) -> impl Future<Output = Result<Option<TaskResult>, SidecarError>> + Send {
        (**self).get_task(pod, id)
    }

    fn list_tasks(&self, pod: &PodAddress) -> impl Future<Output = Result<Vec<TaskResult>, SidecarError>> + Send {
        (**self).list_tasks(pod)
    }

    fn chain_status(&self, pod: &PodAddress) -> impl Future<Output = Result<ChainStatus, SidecarError>> + Send {
        (**self).chain_status(pod)
    }
}

/// What can go wrong reaching a sidecar or seid.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SidecarError {
    /// No answer: connection refused or reset, timeout, partition, unknown host.
    #[error("{host}: unreachable: {reason}")]
    Unreachable { host: String, reason: String },
    /// The request was refused as invalid (400); sending it again will not help.
    #[error("{host}: request rejected: {message}")]
    Rejected { host: String, message: String },
    /// An HTTP status the API does not define for this call.
    #[error("{host}: unexpected HTTP status {status}: {body}")]
    UnexpectedStatus { host: String, status: u16, body: String },
    /// An answer that is not the documented JSON.
    #[error("{host}: malformed answer: {message}")]
    Malformed { host: String, message: String },
}

impl SidecarError {
    /// Whether asking again later may succeed.
    pub fn is_transient(&self) -> bool {
        !matches!(self, SidecarError::Rejected { .. })
    }
}
