//! The operator's own HTTP endpoints: `/metrics` on the metrics address; `/healthz` and `/readyz` on the probe
//! address. Plain HTTP/1 on hyper, the stack kube and reqwest already bring.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use super::health::Health;
use super::metrics::Metrics;

/// A client that has not sent its request headers by then is dropped, so idle scrapers cannot pile up connections.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Which endpoints a listener serves.
#[derive(Clone)]
pub enum Endpoints {
    Metrics(Arc<Metrics>),
    Probes(Arc<Health>),
}

fn text(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// The answer to one request.
pub fn respond(endpoints: &Endpoints, method: &Method, path: &str) -> Response<Full<Bytes>> {
    const PLAIN: &str = "text/plain; charset=utf-8";
    if method != Method::GET {
        return text(StatusCode::METHOD_NOT_ALLOWED, PLAIN, "method not allowed\n");
    }
    match (endpoints, path) {
        (Endpoints::Metrics(metrics), "/metrics") => match metrics.encode() {
            Ok(body) => text(StatusCode::OK, "application/openmetrics-text; version=1.0.0; charset=utf-8", body),
            Err(_) => text(StatusCode::INTERNAL_SERVER_ERROR, PLAIN, "encoding metrics failed\n"),
        },
        (Endpoints::Probes(health), "/healthz") => probe_answer(health.liveness(Instant::now())),
        (Endpoints::Probes(health), "/readyz") => probe_answer(health.readiness()),
        _ => text(StatusCode::NOT_FOUND, PLAIN, "not found\n"),
    }
}

/// 200 `ok`, or 503 with the reason (what `kubectl describe pod` and a curl show).
fn probe_answer(outcome: Result<(), String>) -> Response<Full<Bytes>> {
    const PLAIN: &str = "text/plain; charset=utf-8";
    match outcome {
        Ok(()) => text(StatusCode::OK, PLAIN, "ok\n"),
        Err(reason) => text(StatusCode::SERVICE_UNAVAILABLE, PLAIN, format!("{reason}\n")),
    }
}

/// Serves `endpoints` on `listener` until `shutdown` resolves.
pub async fn serve(listener: TcpListener, endpoints: Endpoints, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => return,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(error) => {
                // Out of file descriptors and the like: keep serving, the probe will tell if it persists.
                tracing::warn!(%error, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let endpoints = endpoints.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                let response = respond(&endpoints, request.method(), request.uri().path());
                async move { Ok::<_, Infallible>(response) }
            });
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection ended with an error");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::backend::health::{HealthConfig, PREFLIGHT, Role};

    #[test]
    fn probes_follow_the_health_state_and_paths_are_separated() {
        let config = HealthConfig { failing_limit: Duration::from_secs(60), streak_gap: Duration::from_secs(45) };
        let health = Arc::new(Health::new(config));
        let endpoints = Endpoints::Probes(health.clone());
        assert_eq!(respond(&endpoints, &Method::GET, "/readyz").status(), StatusCode::SERVICE_UNAVAILABLE);
        health.synced(PREFLIGHT);
        health.set_role(Role::StandingBy);
        assert_eq!(respond(&endpoints, &Method::GET, "/readyz").status(), StatusCode::OK);
        assert_eq!(respond(&endpoints, &Method::GET, "/healthz").status(), StatusCode::OK);
        assert_eq!(respond(&endpoints, &Method::GET, "/metrics").status(), StatusCode::NOT_FOUND);
        assert_eq!(respond(&endpoints, &Method::POST, "/healthz").status(), StatusCode::METHOD_NOT_ALLOWED);
        let metrics = Endpoints::Metrics(Arc::new(Metrics::new()));
        assert_eq!(respond(&metrics, &Method::GET, "/metrics").status(), StatusCode::OK);
        assert_eq!(respond(&metrics, &Method::GET, "/healthz").status(), StatusCode::NOT_FOUND);
    }
}
