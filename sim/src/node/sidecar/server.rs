//! The hyper HTTP servers of one pod, as tasks on its worker host: the sidecar API on the pod's sidecar port and
//! seid's RPC on its RPC port. Aborting a server task drops its listener and every open connection with it, as
//! a container's exit closes its sockets.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use sei_operator_core::cluster::ObjectRef;
use tokio::task::JoinSet;
use turmoil::net::TcpListener;

use crate::harness::state::{SharedWorld, lock};
use crate::harness::trace::Category;
use crate::node::sidecar::api;
use crate::node::sidecar::client::CALLER_HEADER;

/// Which of a pod's servers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Endpoint {
    Sidecar,
    Rpc,
}

/// Serves `endpoint` of pod `key` (server `incarnation`) on `port` of the current worker host, until aborted.
pub async fn serve(shared: SharedWorld, key: ObjectRef, endpoint: Endpoint, incarnation: u64, port: u16) {
    let mut listener = None;
    // The previous incarnation's listener on this port is released when its aborted task is dropped, which
    // may be a moment after this one starts.
    for _ in 0..50 {
        match TcpListener::bind((IpAddr::V4(Ipv4Addr::UNSPECIFIED), port)).await {
            Ok(bound) => {
                listener = Some(bound);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
    let Some(listener) = listener else {
        lock(&shared).record(Category::Pod, format_args!("{key}: port {port} stayed busy, {endpoint:?} not served"));
        return;
    };
    let mut connections = JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let (shared, key) = (shared.clone(), key.clone());
        connections.spawn_local(async move {
            let service =
                service_fn(move |request| answer(shared.clone(), key.clone(), endpoint, incarnation, request));
            // A connection ends with an error when the client goes away: nothing to report.
            let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
        while connections.try_join_next().is_some() {}
    }
}

async fn answer(
    shared: SharedWorld,
    key: ObjectRef,
    endpoint: Endpoint,
    incarnation: u64,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let caller = request.headers().get(CALLER_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("unknown").to_owned();
    let method = request.method().as_str().to_owned();
    let path = request.uri().path().to_owned();
    let body = request.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let (status, text) = {
        let mut world = lock(&shared);
        let answer = match endpoint {
            Endpoint::Sidecar => api::sidecar(&mut world, &key, incarnation, &caller, &method, &path, &body),
            Endpoint::Rpc => api::rpc(&world, &key, incarnation, &path),
        };
        world.record(
            Category::Sidecar,
            format_args!("{caller} -> {}/{} {method} {path} = {}", key.namespace, key.name, answer.0),
        );
        answer
    };
    let response = Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(text)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())));
    Ok(response)
}
