//! The production [`Sidecar`]: HTTP/1 over reqwest to `<node>-0.<node>.<namespace>.svc` — the sidecar's API on
//! its port, seid's RPC on 26657.
//!
//! Every answer is read through a size cap and handed, as (status, body), to [`protocol`], which alone decides
//! what it means — the simulator's client calls the same functions. Every failure (no answer, an undefined
//! status, a body that is not the documented JSON) is a typed [`SidecarError`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use reqwest::header::CONTENT_TYPE;
use reqwest::redirect;
use uuid::Uuid;

use crate::sidecar::protocol::{self, Method, Request};
use crate::sidecar::wire::{ChainStatus, ReadinessStatus, TaskRequest, TaskResult};
use crate::sidecar::{PodAddress, Sidecar, SidecarError};

/// Maps a pod and one of its ports to the base URL requests go to (`http://host:port`, no trailing slash).
/// Tests point it at a loopback server.
pub type BaseUrlResolver = Arc<dyn Fn(&PodAddress, u16) -> String + Send + Sync>;

/// Timeouts and limits of the sidecar client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpSidecarConfig {
    /// TCP connect; a pod that is not scheduled or a partitioned node fails fast.
    pub connect_timeout: Duration,
    /// The whole request, body included: a sidecar that accepts and never answers cannot stall a reconcile.
    pub request_timeout: Duration,
    /// Largest answer read. The documented answers are a few hundred bytes; a task result with params stays far
    /// below this.
    pub max_body_bytes: usize,
}

impl Default for HttpSidecarConfig {
    fn default() -> Self {
        HttpSidecarConfig {
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(5),
            max_body_bytes: 1024 * 1024,
        }
    }
}

/// The sidecar client could not be built (the TLS-free reqwest builder fails only on a broken system setup).
#[derive(Debug, thiserror::Error)]
#[error("building the sidecar HTTP client: {0}")]
pub struct HttpSidecarBuildError(#[source] reqwest::Error);

/// A [`Sidecar`] over reqwest. Cheap to clone (one connection pool).
#[derive(Clone)]
pub struct HttpSidecar {
    client: reqwest::Client,
    resolve: BaseUrlResolver,
    max_body_bytes: usize,
}

impl fmt::Debug for HttpSidecar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpSidecar").field("max_body_bytes", &self.max_body_bytes).finish_non_exhaustive()
    }
}

/// `http://<host>:<port>`: the pod's DNS name through its node's headless Service.
pub fn pod_dns_url(pod: &PodAddress, port: u16) -> String {
    format!("http://{}:{port}", pod.host)
}

impl HttpSidecar {
    /// A client that reaches pods by their cluster DNS names.
    pub fn new(config: HttpSidecarConfig) -> Result<Self, HttpSidecarBuildError> {
        Self::with_resolver(config, Arc::new(pod_dns_url))
    }

    /// A client that sends each pod's requests to the base URL `resolve` names.
    pub fn with_resolver(config: HttpSidecarConfig, resolve: BaseUrlResolver) -> Result<Self, HttpSidecarBuildError> {
        let client = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            // The API defines no redirects; following one could send a task to another pod.
            .redirect(redirect::Policy::none())
            // Pod-to-pod traffic: an HTTP_PROXY meant for egress must not capture it.
            .no_proxy()
            .build()
            .map_err(HttpSidecarBuildError)?;
        Ok(HttpSidecar { client, resolve, max_body_bytes: config.max_body_bytes })
    }

    /// Sends `request` to the pod and reads at most `max_body_bytes` of the answer.
    async fn exchange(&self, pod: &PodAddress, request: Request) -> Result<(u16, Bytes), SidecarError> {
        let unreachable = |error: reqwest::Error| SidecarError::Unreachable {
            host: pod.host.clone(),
            reason: describe_transport_error(&error),
        };
        let url = format!("{}{}", (self.resolve)(pod, request.port), request.path);
        let mut builder = match request.method {
            Method::Get => self.client.get(url),
            Method::Post => self.client.post(url),
        };
        if let Some(body) = request.body {
            builder = builder.header(CONTENT_TYPE, protocol::JSON).body(body);
        }
        let mut response = builder.send().await.map_err(unreachable)?;
        let status = response.status().as_u16();
        let too_large = || SidecarError::Malformed {
            host: pod.host.clone(),
            message: format!("answer larger than {} bytes", self.max_body_bytes),
        };
        if response.content_length().is_some_and(|length| length > self.max_body_bytes as u64) {
            return Err(too_large());
        }
        let mut body = BytesMut::new();
        while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
            if body.len() + chunk.len() > self.max_body_bytes {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok((status, body.freeze()))
    }
}

/// Names the failure without the URL (the host is in the error already) and with its cause.
fn describe_transport_error(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let mut reason = kind.to_owned();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        reason.push_str(": ");
        reason.push_str(&cause.to_string());
        source = cause.source();
    }
    reason
}

impl Sidecar for HttpSidecar {
    async fn healthz(&self, pod: &PodAddress) -> Result<bool, SidecarError> {
        let (status, body) = self.exchange(pod, protocol::healthz_request(pod)).await?;
        protocol::healthz(&pod.host, status, &body)
    }

    async fn status(&self, pod: &PodAddress) -> Result<ReadinessStatus, SidecarError> {
        let (status, body) = self.exchange(pod, protocol::status_request(pod)).await?;
        protocol::status(&pod.host, status, &body)
    }

    async fn submit_task(&self, pod: &PodAddress, request: &TaskRequest) -> Result<Uuid, SidecarError> {
        let (status, body) = self.exchange(pod, protocol::submit_request(pod, request)?).await?;
        protocol::submitted(&pod.host, request, status, &body)
    }

    async fn get_task(&self, pod: &PodAddress, id: Uuid) -> Result<Option<TaskResult>, SidecarError> {
        let (status, body) = self.exchange(pod, protocol::get_task_request(pod, id)).await?;
        protocol::task(&pod.host, status, &body)
    }

    async fn list_tasks(&self, pod: &PodAddress) -> Result<Vec<TaskResult>, SidecarError> {
        let (status, body) = self.exchange(pod, protocol::list_tasks_request(pod)).await?;
        protocol::tasks(&pod.host, status, &body)
    }

    async fn chain_status(&self, pod: &PodAddress) -> Result<ChainStatus, SidecarError> {
        let (status, body) = self.exchange(pod, protocol::chain_status_request()).await?;
        protocol::chain_status(&pod.host, status, &body)
    }
}
