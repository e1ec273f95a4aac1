//! `sei-sim serve`'s API over real loopback HTTP, as kube-rs and kubectl use it: optimistic concurrency and the
//! Status objects of refusals, the status subresource, merge patches, and watches — an object relabelled out of a
//! selector is DELETED from it, a resumed watch delivers what happened since its resourceVersion, and a watch from
//! before an expiry gets 410 Gone. A plain HTTP/1.1 client on std's TcpStream: no client library between the test
//! and the wire.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use sei_sim::serve::{ServeConfig, ServeHandle};
use serde_json::{Value, json};

const NODES: &str = "/apis/sei.io/v1alpha1/namespaces/sei/seinodes";

/// A served API and the directory of its kubeconfig, removed when dropped (also when the test panics). Bind both,
/// the directory first, so the server stops before it goes.
fn serve(name: &str) -> (tempfile::TempDir, ServeHandle) {
    let dir = tempfile::Builder::new().prefix(&format!("sei-sim-serve-{name}-")).tempdir().unwrap();
    let handle = sei_sim::serve::start(ServeConfig::new(dir.path().join("kubeconfig"))).unwrap();
    (dir, handle)
}

/// One request; (status, body as JSON or as a string).
fn request(addr: SocketAddr, method: &str, path: &str, content_type: &str, body: &str) -> (u16, Value) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Type: {content_type}\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap();
    let status: u16 = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, serde_json::from_str(rest).unwrap_or(Value::String(rest.to_owned())))
}

fn node(name: &str, labels: Value) -> Value {
    json!({
        "apiVersion": "sei.io/v1alpha1", "kind": "SeiNode",
        "metadata": {"name": name, "namespace": "sei", "labels": labels},
        "spec": {"chainId": "pacific-1", "image": "sei:v6.3.0", "fullNode": {}},
    })
}

/// A watch's events, read line by line (chunked transfer: size lines and data lines alternate).
struct WatchStream(BufReader<TcpStream>);

impl WatchStream {
    fn open(addr: SocketAddr, path: &str) -> Self {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        write!(stream, "GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").unwrap();
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        // The status line and headers.
        loop {
            line.clear();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
        }
        WatchStream(reader)
    }

    /// The next event (type, object).
    fn next(&mut self) -> (String, Value) {
        let started = Instant::now();
        let mut line = String::new();
        while started.elapsed() < Duration::from_secs(20) {
            line.clear();
            if self.0.read_line(&mut line).unwrap() == 0 {
                panic!("the watch ended");
            }
            // A chunk's size line may read as a JSON number: only an object with a type is an event.
            if let Ok(event) = serde_json::from_str::<Value>(line.trim())
                && let Some(event_type) = event["type"].as_str()
            {
                return (event_type.to_owned(), event["object"].clone());
            }
        }
        panic!("no event within 20 s");
    }
}

#[test]
fn writes_conflict_on_a_stale_version_and_the_status_subresource_and_merge_patch_work() {
    let (_dir, handle) = serve("writes");
    let (status, created) = request(handle.addr, "POST", NODES, "application/json", &node("a", json!({})).to_string());
    assert_eq!(status, 201, "{created}");
    let version = created["metadata"]["resourceVersion"].as_str().unwrap().to_owned();

    let mut changed = created.clone();
    changed["spec"]["image"] = json!("sei:v6.3.1");
    let (status, updated) =
        request(handle.addr, "PUT", &format!("{NODES}/a"), "application/json", &changed.to_string());
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["metadata"]["generation"], 2);

    // The same resourceVersion again: the object has moved on.
    let (status, refused) =
        request(handle.addr, "PUT", &format!("{NODES}/a"), "application/json", &changed.to_string());
    assert_eq!(status, 409);
    assert_eq!(refused["kind"], "Status");
    assert_eq!(refused["reason"], "Conflict");
    assert!(refused["message"].as_str().unwrap().contains("the object has been modified"), "{refused}");
    assert_ne!(updated["metadata"]["resourceVersion"], json!(version));

    // A status write leaves the spec and generation alone; a spec write through the main resource keeps status.
    let mut with_status = updated.clone();
    with_status["status"] = json!({"phase": "Running"});
    with_status["spec"]["image"] = json!("ignored:v0");
    let (status, written) =
        request(handle.addr, "PUT", &format!("{NODES}/a/status"), "application/json", &with_status.to_string());
    assert_eq!(status, 200, "{written}");
    assert_eq!(written["status"]["phase"], "Running");
    assert_eq!(written["spec"]["image"], "sei:v6.3.1");
    assert_eq!(written["metadata"]["generation"], 2);

    let (status, patched) = request(
        handle.addr,
        "PATCH",
        &format!("{NODES}/a"),
        "application/merge-patch+json",
        r#"{"metadata":{"labels":{"team":"rpc"}},"status":{"phase":"Failed"}}"#,
    );
    assert_eq!(status, 200, "{patched}");
    assert_eq!(patched["metadata"]["labels"]["team"], "rpc");
    assert_eq!(patched["status"]["phase"], "Running", "the main resource ignores status");

    // Admission: the CRD's schema refuses a SeiNode without a chain.
    let mut invalid = node("b", json!({}));
    invalid["spec"].as_object_mut().unwrap().remove("chainId");
    let (status, refused) = request(handle.addr, "POST", NODES, "application/json", &invalid.to_string());
    assert_eq!((status, refused["reason"].clone()), (422, json!("Invalid")), "{refused}");
    let (status, missing) = request(handle.addr, "GET", &format!("{NODES}/nope"), "application/json", "");
    assert_eq!((status, missing["reason"].clone()), (404, json!("NotFound")));
}

#[test]
fn watches_follow_selectors_resume_from_a_version_and_expire_with_410() {
    let (_dir, handle) = serve("watches");
    let (status, _) =
        request(handle.addr, "POST", NODES, "application/json", &node("a", json!({"team": "rpc"})).to_string());
    assert_eq!(status, 201);
    let (_, list) = request(handle.addr, "GET", &format!("{NODES}?labelSelector=team%3Drpc"), "", "");
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    let listed_at = list["metadata"]["resourceVersion"].as_str().unwrap().to_owned();

    let mut watch = WatchStream::open(
        handle.addr,
        &format!("{NODES}?watch=true&labelSelector=team%3Drpc&resourceVersion={listed_at}"),
    );
    // Relabelled out of the selector: DELETED for this watch.
    let (status, _) = request(
        handle.addr,
        "PATCH",
        &format!("{NODES}/a"),
        "application/merge-patch+json",
        r#"{"metadata":{"labels":{"team":"archive"}}}"#,
    );
    assert_eq!(status, 200);
    let (event, object) = watch.next();
    assert_eq!(event, "DELETED");
    assert_eq!(object["metadata"]["labels"]["team"], "archive");
    // Back in: ADDED.
    request(
        handle.addr,
        "PATCH",
        &format!("{NODES}/a"),
        "application/merge-patch+json",
        r#"{"metadata":{"labels":{"team":"rpc"}}}"#,
    );
    assert_eq!(watch.next().0, "ADDED");

    // A watch resumed from the list's version gets every change since, in order.
    let mut resumed = WatchStream::open(handle.addr, &format!("{NODES}?watch=1&resourceVersion={listed_at}"));
    assert_eq!(resumed.next().0, "MODIFIED");
    assert_eq!(resumed.next().0, "MODIFIED");

    // Expired: the open watch ends with 410, and none may resume from before.
    assert!(handle.command("expire-watches").contains("expired"));
    let (event, status) = watch.next();
    assert_eq!(
        (event.as_str(), status["code"].clone(), status["reason"].clone()),
        ("ERROR", json!(410), json!("Expired"))
    );
    let mut stale = WatchStream::open(handle.addr, &format!("{NODES}?watch=true&resourceVersion={listed_at}"));
    assert_eq!(stale.next().1["code"], 410);
}
