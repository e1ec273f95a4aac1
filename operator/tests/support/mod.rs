//! A fake Kubernetes API server on loopback TCP for the production backend's tests: the HTTP plumbing (accept,
//! read the request, answer JSON or hold a watch open) shared by every test that points kube-rs at a fake, each
//! test supplying only what its API server answers.

#![allow(dead_code)] // each test binary uses its own part of it

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Either, Full, StreamBody};
use hyper::body::Frame;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// One request the fake received.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub query: String,
    /// Path and query as sent (`/apis/...?`, with the `?` kube sends before an empty query).
    pub target: String,
    /// The JSON body, or `null`.
    pub body: Value,
}

/// What the fake answers.
pub enum Reply {
    /// A status code and a JSON body.
    Json(u16, Value),
    /// 200 and a watch stream that stays open with no event.
    OpenWatch,
}

/// A `Status` object, as the API server sends with an error.
pub fn status(code: u16, reason: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": format!("{reason} (from the fake API server)"), "reason": reason, "code": code})
}

type Body = Either<Full<Bytes>, StreamBody<futures::stream::Pending<Result<Frame<Bytes>, Infallible>>>>;

fn respond(reply: Reply) -> Response<Body> {
    match reply {
        Reply::Json(code, body) => {
            let mut response = Response::new(Either::Left(Full::new(Bytes::from(body.to_string()))));
            *response.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            response.headers_mut().insert("content-type", hyper::header::HeaderValue::from_static("application/json"));
            response
        }
        Reply::OpenWatch => Response::new(Either::Right(StreamBody::new(futures::stream::pending()))),
    }
}

/// Serves `answer` on a free loopback port until the test's runtime ends; answers the address.
pub async fn serve(answer: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
    let addr = listener.local_addr().expect("an address");
    let answer = Arc::new(answer);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            let answer = answer.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                    let answer = answer.clone();
                    async move {
                        let method = request.method().to_string();
                        let path = request.uri().path().to_owned();
                        let query = request.uri().query().unwrap_or_default().to_owned();
                        let target = request.uri().path_and_query().map(|p| p.to_string()).unwrap_or_default();
                        let bytes = request.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                        let request = Request { method, path, query, target, body };
                        Ok::<_, Infallible>(respond(answer(&request)))
                    }
                });
                let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            });
        }
    });
    addr
}
