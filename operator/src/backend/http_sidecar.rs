//! The production [`Sidecar`]: HTTP/1 over reqwest to `<node>-0.<node>.<namespace>.svc` — the sidecar's API on
//! its port, seid's RPC on 26657.
//!
//! Every answer is read through a size cap and decoded with the shared [`wire`](crate::sidecar::wire) types; every
//! failure (no answer, an undefined status, a body that is not the documented JSON) is a typed [`SidecarError`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use reqwest::header::CONTENT_TYPE;
use reqwest::{RequestBuilder, StatusCode, redirect};
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::sidecar::wire::{
    ChainStatus, ReadinessStatus, RpcStatusResponse, StatusResponse, TaskAccepted, TaskRequest, TaskResult,
};
use crate::sidecar::{PodAddress, SEID_RPC_PORT, Sidecar, SidecarError, Submission};

/// Maps a pod and one of its ports to the base URL requests go to (`http://host:port`, no trailing slash).
/// Tests point it at a loopback server.
pub type BaseUrlResolver = Arc<dyn Fn(&PodAddress, u16) -> String + Send + Sync>;

/// The longest error body quoted in an [`SidecarError::UnexpectedStatus`] or `Rejected`.
const QUOTED_BODY_CHARS: usize = 256;

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

    fn sidecar_url(&self, pod: &PodAddress, path: &str) -> String {
        format!("{}{path}", (self.resolve)(pod, pod.sidecar_port))
    }

    /// Sends the request and reads at most `max_body_bytes` of the answer.
    async fn exchange(&self, pod: &PodAddress, request: RequestBuilder) -> Result<(StatusCode, Bytes), SidecarError> {
        let unreachable = |error: reqwest::Error| SidecarError::Unreachable {
            host: pod.host.clone(),
            reason: describe_transport_error(&error),
        };
        let mut response = request.send().await.map_err(unreachable)?;
        let status = response.status();
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

    async fn get(&self, pod: &PodAddress, url: String) -> Result<(StatusCode, Bytes), SidecarError> {
        self.exchange(pod, self.client.get(url)).await
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

fn decode<T: DeserializeOwned>(pod: &PodAddress, body: &[u8]) -> Result<T, SidecarError> {
    serde_json::from_slice(body)
        .map_err(|error| SidecarError::Malformed { host: pod.host.clone(), message: error.to_string() })
}

fn quoted_body(body: &[u8]) -> String {
    String::from_utf8_lossy(body).chars().take(QUOTED_BODY_CHARS).collect()
}

fn unexpected(pod: &PodAddress, status: StatusCode, body: &[u8]) -> SidecarError {
    SidecarError::UnexpectedStatus { host: pod.host.clone(), status: status.as_u16(), body: quoted_body(body) }
}

impl Sidecar for HttpSidecar {
    async fn healthz(&self, pod: &PodAddress) -> Result<bool, SidecarError> {
        let (status, body) = self.get(pod, self.sidecar_url(pod, "/v0/healthz")).await?;
        match status {
            StatusCode::OK => Ok(true),
            StatusCode::SERVICE_UNAVAILABLE => Ok(false),
            other => Err(unexpected(pod, other, &body)),
        }
    }

    async fn status(&self, pod: &PodAddress) -> Result<ReadinessStatus, SidecarError> {
        let (status, body) = self.get(pod, self.sidecar_url(pod, "/v0/status")).await?;
        match status {
            StatusCode::OK => Ok(decode::<StatusResponse>(pod, &body)?.status),
            other => Err(unexpected(pod, other, &body)),
        }
    }

    async fn submit_task(&self, pod: &PodAddress, request: &TaskRequest) -> Result<Submission, SidecarError> {
        let payload = serde_json::to_vec(request)
            .map_err(|error| SidecarError::Rejected { host: pod.host.clone(), message: error.to_string() })?;
        let post =
            self.client.post(self.sidecar_url(pod, "/v0/tasks")).header(CONTENT_TYPE, "application/json").body(payload);
        let (status, body) = self.exchange(pod, post).await?;
        let submission = match status {
            StatusCode::CREATED => Submission::Created,
            StatusCode::ACCEPTED => Submission::AlreadyExists,
            StatusCode::BAD_REQUEST => {
                return Err(SidecarError::Rejected { host: pod.host.clone(), message: quoted_body(&body) });
            }
            other => return Err(unexpected(pod, other, &body)),
        };
        // 201 and 202 answer `{"id"}`; an answer that is not that is not the documented API.
        decode::<TaskAccepted>(pod, &body)?;
        Ok(submission)
    }

    async fn get_task(&self, pod: &PodAddress, id: Uuid) -> Result<Option<TaskResult>, SidecarError> {
        let (status, body) = self.get(pod, self.sidecar_url(pod, &format!("/v0/tasks/{id}"))).await?;
        match status {
            StatusCode::OK => Ok(Some(decode::<TaskResult>(pod, &body)?)),
            StatusCode::NOT_FOUND => Ok(None),
            other => Err(unexpected(pod, other, &body)),
        }
    }

    async fn chain_status(&self, pod: &PodAddress) -> Result<ChainStatus, SidecarError> {
        let url = format!("{}/status", (self.resolve)(pod, SEID_RPC_PORT));
        let (status, body) = self.get(pod, url).await?;
        if status != StatusCode::OK {
            return Err(unexpected(pod, status, &body));
        }
        decode::<RpcStatusResponse>(pod, &body)?.chain_status().ok_or_else(|| SidecarError::Malformed {
            host: pod.host.clone(),
            message: "latest_block_height is not a decimal number".into(),
        })
    }
}
