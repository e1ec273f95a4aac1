//! The HTTP side of `sei-sim serve`: the accept loop, routing, and the Kubernetes API's verbs on the store —
//! discovery, get, list, create, update (PUT), patch (merge, strategic merge as merge, apply as create-or-merge),
//! delete, the status subresource, and watches ([`super::watch`]). Errors are `Status` objects with the API
//! server's reasons and wording (kubernetes/kubernetes `staging/src/k8s.io/apimachinery/pkg/api/errors/
//! errors.go`). Every request locks the world once and never across an await.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;
use sei_operator_core::cluster::{ClusterError, ObjectRef};
use serde_json::{Map, Value, json};

use crate::apiserver::json::Fields;
use crate::harness::state::{WorldState, lock};
use crate::harness::trace::Category;
use crate::serve::resources::{self, Resource};
use crate::serve::selector::{FieldSelector, LabelSelector};
use crate::serve::watch::{self, WatchRequest};
use crate::serve::{Server, control, pods};

/// A response body: a whole buffer, or a watch's stream.
pub type Body = UnsyncBoxBody<Bytes, Infallible>;

/// The largest request body read (the API server's limit is 3 MiB).
const MAX_BODY: usize = 3 * 1024 * 1024;

/// Suffixes for `generateName` (the API server appends 5 random characters).
static GENERATED: AtomicU64 = AtomicU64::new(0);

/// Serves until `stop` is set: one tokio runtime on this thread, a task per connection.
pub fn serve_until_stopped(listener: std::net::TcpListener, server: Arc<Server>, stop: Arc<AtomicBool>) {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("sei-sim serve: starting the HTTP runtime: {error}");
            return;
        }
    };
    runtime.block_on(async {
        let listener = match tokio::net::TcpListener::from_std(listener) {
            Ok(listener) => listener,
            Err(error) => {
                eprintln!("sei-sim serve: listening: {error}");
                return;
            }
        };
        let mut woken = server.versions.subscribe();
        while !stop.load(Ordering::SeqCst) {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((stream, _)) = accepted else { continue };
                    let server = server.clone();
                    tokio::spawn(async move {
                        let service = service_fn(move |request| handle(server.clone(), request));
                        // A connection ends with an error when the client goes away: nothing to report.
                        let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
                    });
                }
                changed = woken.changed() => if changed.is_err() { return },
            }
        }
    });
    // Open watches and connections end with the runtime.
    runtime.shutdown_timeout(Duration::from_millis(200));
}

fn full(status: u16, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(Full::new(body.into()).boxed_unsync());
    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(value) = hyper::header::HeaderValue::from_str(content_type) {
        response.headers_mut().insert(hyper::header::CONTENT_TYPE, value);
    }
    response
}

fn json_response(status: u16, value: &Value) -> Response<Body> {
    full(status, "application/json", value.to_string())
}

/// A `Status` failure.
fn failure(code: u16, reason: &str, message: String, details: Value) -> Response<Body> {
    json_response(
        code,
        &json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "details": details, "code": code,
        }),
    )
}

/// A request refused with 400 Bad Request, for the message.
struct Refusal(String);

impl Refusal {
    fn response(self) -> Response<Body> {
        bad_request(self.0)
    }
}

fn bad_request(message: String) -> Response<Body> {
    failure(400, "BadRequest", message, json!({}))
}

fn not_found_path(path: &str) -> Response<Body> {
    failure(404, "NotFound", format!("the server could not find the requested resource ({path})"), json!({}))
}

fn method_not_allowed(method: &Method, resource: &Resource) -> Response<Body> {
    failure(405, "MethodNotAllowed", format!("{method} is not supported on {}", resource.qualified()), json!({}))
}

/// A store error as the API server words it.
fn cluster_error(resource: &Resource, name: &str, error: &ClusterError) -> Response<Body> {
    let qualified = resource.qualified();
    let details = json!({"name": name, "group": resource.group, "kind": resource.plural});
    match error {
        ClusterError::NotFound(_) => failure(404, "NotFound", format!("{qualified} \"{name}\" not found"), details),
        ClusterError::AlreadyExists(_) => {
            failure(409, "AlreadyExists", format!("{qualified} \"{name}\" already exists"), details)
        }
        ClusterError::Conflict(_) => failure(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {qualified} \"{name}\": the object has been modified; please apply \
                 your changes to the latest version and try again"
            ),
            details,
        ),
        ClusterError::Invalid { message, .. } => {
            let kind = if resource.group.is_empty() {
                resource.kind.to_owned()
            } else {
                format!("{}.{}", resource.kind, resource.group)
            };
            let details = json!({"name": name, "group": resource.group, "kind": resource.kind});
            failure(422, "Invalid", format!("{kind} \"{name}\" is invalid: {message}"), details)
        }
        ClusterError::Forbidden { message, .. } => failure(403, "Forbidden", message.clone(), details),
        ClusterError::Transient(message) => failure(503, "ServiceUnavailable", message.clone(), json!({})),
    }
}

/// The query string's parameters, percent-decoded (`+` as a space, as Go's `url.ParseQuery` reads it).
fn query_params(query: Option<&str>) -> Vec<(String, String)> {
    fn decode(text: &str) -> String {
        let bytes = text.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut at = 0;
        while at < bytes.len() {
            match bytes[at] {
                b'+' => out.push(b' '),
                b'%' if at + 2 < bytes.len() => {
                    let hex = std::str::from_utf8(&bytes[at + 1..at + 3]).unwrap_or("");
                    match u8::from_str_radix(hex, 16) {
                        Ok(byte) => {
                            out.push(byte);
                            at += 2;
                        }
                        Err(_) => out.push(b'%'),
                    }
                }
                other => out.push(other),
            }
            at += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    query
        .unwrap_or_default()
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((key, value)) => (decode(key), decode(value)),
            None => (decode(pair), String::new()),
        })
        .collect()
}

/// One request, as the handlers need it.
struct Call {
    method: Method,
    path: String,
    query: Vec<(String, String)>,
    accept: String,
    content_type: String,
    body: Bytes,
}

impl Call {
    fn param(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }

    fn flag(&self, name: &str) -> bool {
        matches!(self.param(name), Some("true" | "1"))
    }

    /// `Accept: application/json;as=Table;g=meta.k8s.io;v=v1` (kubectl get).
    fn wants_table(&self) -> bool {
        self.accept.split(',').next().is_some_and(|first| first.contains("as=Table"))
    }

    /// `Accept: ...;as=PartialObjectMetadataList` or `as=PartialObjectMetadata` (kube's `list_metadata`).
    fn wants_metadata(&self) -> bool {
        self.accept.split(',').next().is_some_and(|first| first.contains("as=PartialObjectMetadata"))
    }
}

async fn handle(server: Arc<Server>, request: Request<Incoming>) -> Result<Response<Body>, pods::Unreachable> {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let query = query_params(request.uri().query());
    let header = |name: hyper::header::HeaderName| {
        request.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
    };
    let (accept, content_type) = (header(hyper::header::ACCEPT), header(hyper::header::CONTENT_TYPE));
    let body = match Limited::new(request.into_body(), MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) => {
            return Ok(failure(413, "RequestEntityTooLarge", format!("reading the request: {error}"), json!({})));
        }
    };
    if let Some(rest) = path.strip_prefix(pods::PREFIX) {
        let (status, text) = pods::answer(&server, method.as_str(), rest, &body)?;
        return Ok(full(status, "application/json", text));
    }
    let call = Call { method, path, query, accept, content_type, body };
    Ok(route(&server, call).await)
}

/// Server information (`/version`), as kube's `apiserver_version` and kubectl read it.
fn version_info() -> Value {
    json!({
        "major": "1", "minor": "33", "gitVersion": "v1.33.0-sei-sim", "gitCommit": "", "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z", "goVersion": "none", "compiler": "rustc", "platform": "linux/amd64",
    })
}

async fn route(server: &Arc<Server>, call: Call) -> Response<Body> {
    let segments: Vec<String> = call.path.trim_matches('/').split('/').map(str::to_owned).collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    match (&call.method, segments.as_slice()) {
        (&Method::GET, ["version"]) => return json_response(200, &version_info()),
        (&Method::GET, ["healthz" | "readyz" | "livez"]) => return full(200, "text/plain", "ok"),
        (&Method::GET, ["api"]) => return json_response(200, &resources::core_versions(&server.addr.to_string())),
        (&Method::GET, ["apis"]) => return json_response(200, &resources::group_list()),
        (&Method::GET, ["api", "v1"]) => return discovery("", "v1", &call.path),
        (&Method::GET, ["apis", group, version]) => return discovery(group, version, &call.path),
        (&Method::GET, ["openapi", "v3"]) => return json_response(200, &resources::openapi_index()),
        (&Method::GET, ["openapi", "v3", "api", version]) => return openapi(None, version, &call.path),
        (&Method::GET, ["openapi", "v3", "apis", group, version]) => return openapi(Some(group), version, &call.path),
        (&Method::POST, ["sim", "control"]) => {
            let line = String::from_utf8_lossy(&call.body).into_owned();
            let mut answer = control::execute(server, line.trim()).await;
            answer.push('\n');
            let status = if answer.starts_with("error:") { 400 } else { 200 };
            return full(status, "text/plain", answer);
        }
        _ => {}
    }
    let (group, version, rest): (&str, &str, &[&str]) = match segments.as_slice() {
        ["api", "v1", rest @ ..] => ("", "v1", rest),
        ["apis", group, version, rest @ ..] => (group, version, rest),
        _ => return not_found_path(&call.path),
    };
    let (namespace, plural, name, subresource) = match rest {
        [plural] => (None, *plural, None, None),
        ["namespaces", namespace, plural] => (Some(*namespace), *plural, None, None),
        ["namespaces", namespace, plural, name] => (Some(*namespace), *plural, Some(*name), None),
        ["namespaces", namespace, plural, name, sub] => (Some(*namespace), *plural, Some(*name), Some(*sub)),
        _ => return not_found_path(&call.path),
    };
    let Some(resource) = resources::find(group, version, plural) else { return not_found_path(&call.path) };
    let status = match subresource {
        None => false,
        Some("status") if resource.status => true,
        Some(_) => return not_found_path(&call.path),
    };
    {
        let mut faults = server.faults();
        if faults.unavailable > 0 {
            faults.unavailable -= 1;
            return failure(503, "ServiceUnavailable", "injected: the API server is unavailable".into(), json!({}));
        }
    }
    let mutating = matches!(call.method, Method::POST | Method::PUT | Method::PATCH | Method::DELETE);
    if resource.view && mutating {
        return method_not_allowed(&call.method, resource);
    }
    let response = match (&call.method, namespace, name) {
        (&Method::GET, namespace, None) if call.flag("watch") => watch(server, &call, resource, namespace),
        (&Method::GET, namespace, None) => list(server, &call, resource, namespace),
        (&Method::GET, Some(namespace), Some(name)) => get(server, &call, resource, namespace, name),
        (&Method::POST, Some(namespace), None) => create(server, &call, resource, namespace),
        (&Method::PUT, Some(namespace), Some(name)) => update(server, &call, resource, namespace, name, status),
        (&Method::PATCH, Some(namespace), Some(name)) => patch(server, &call, resource, namespace, name, status),
        (&Method::DELETE, Some(namespace), Some(name)) if !status => delete(server, resource, namespace, name),
        _ => method_not_allowed(&call.method, resource),
    };
    if mutating {
        let version = lock(&server.shared).api.store.version();
        server.store_changed(version);
    }
    response
}

fn openapi(group: Option<&str>, version: &str, path: &str) -> Response<Body> {
    match resources::openapi_document(group.unwrap_or_default(), version) {
        Some(document) => json_response(200, &document),
        None => not_found_path(path),
    }
}

fn discovery(group: &str, version: &str, path: &str) -> Response<Body> {
    match resources::resource_list(group, version) {
        Some(list) => json_response(200, &list),
        None => not_found_path(path),
    }
}

fn selectors(call: &Call) -> Result<(LabelSelector, FieldSelector), Refusal> {
    let labels = LabelSelector::parse(call.param("labelSelector").unwrap_or_default())
        .map_err(|e| Refusal(format!("labelSelector: {e}")))?;
    let fields = FieldSelector::parse(call.param("fieldSelector").unwrap_or_default())
        .map_err(|e| Refusal(format!("fieldSelector: {e}")))?;
    Ok((labels, fields))
}

/// The objects of `resource` in `namespace` (all namespaces when `None`), as the resource serves them.
fn objects_of(world: &WorldState, resource: &Resource, namespace: Option<&str>) -> Vec<Value> {
    let stored: Vec<&Value> = match namespace {
        Some(namespace) => world.api.store.list(resource.kind, namespace, &Default::default(), None),
        None => world.api.store.all_of_kind(resource.kind).map(|(_, value)| value).collect(),
    };
    // The core Events are a view of the stored events.k8s.io ones.
    stored.into_iter().map(|value| if resource.view { resources::core_event(value) } else { value.clone() }).collect()
}

/// An object's metadata only (`PartialObjectMetadata`).
fn metadata_only(object: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
        "metadata": object.get("metadata").cloned().unwrap_or(Value::Null),
    })
}

fn list(server: &Server, call: &Call, resource: &Resource, namespace: Option<&str>) -> Response<Body> {
    let (labels, fields) = match selectors(call) {
        Ok(selectors) => selectors,
        Err(refusal) => return refusal.response(),
    };
    let world = lock(&server.shared);
    let version = world.api.store.version();
    let items: Vec<Value> = objects_of(&world, resource, namespace)
        .into_iter()
        .filter(|object| labels.matches(object) && fields.matches(object))
        .collect();
    if call.wants_table() {
        let objects: Vec<&Value> = items.iter().collect();
        return json_response(200, &resources::table(resource, &objects, version, world.timestamp(), true));
    }
    let metadata = json!({"resourceVersion": version.to_string()});
    if call.wants_metadata() {
        let items: Vec<Value> = items.iter().map(metadata_only).collect();
        let list = json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": metadata, "items": items});
        return json_response(200, &list);
    }
    let list = json!({
        "kind": format!("{}List", resource.kind), "apiVersion": resource.api_version(),
        "metadata": metadata, "items": items,
    });
    json_response(200, &list)
}

fn watch(server: &Arc<Server>, call: &Call, resource: &'static Resource, namespace: Option<&str>) -> Response<Body> {
    if resource.view {
        return method_not_allowed(&call.method, resource);
    }
    let (labels, fields) = match selectors(call) {
        Ok(selectors) => selectors,
        Err(refusal) => return refusal.response(),
    };
    let request = WatchRequest {
        resource,
        namespace: namespace.map(str::to_owned),
        labels,
        fields,
        resource_version: call.param("resourceVersion").map(str::to_owned),
        bookmarks: call.flag("allowWatchBookmarks"),
        timeout: call.param("timeoutSeconds").and_then(|t| t.parse().ok()).map(Duration::from_secs),
        table: call.wants_table(),
    };
    match watch::stream(server.clone(), request) {
        Ok(body) => {
            let mut response = Response::new(body.boxed_unsync());
            response
                .headers_mut()
                .insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("application/json"));
            response
        }
        Err(message) => bad_request(message),
    }
}

fn get(server: &Server, call: &Call, resource: &Resource, namespace: &str, name: &str) -> Response<Body> {
    let world = lock(&server.shared);
    let found = if resource.view {
        objects_of(&world, resource, Some(namespace))
            .into_iter()
            .find(|e| e.metadata_field("name").and_then(Value::as_str) == Some(name))
    } else {
        world.api.store.get(&ObjectRef::new(resource.kind, namespace, name), None).cloned()
    };
    match found {
        Some(object) if call.wants_table() => json_response(
            200,
            &resources::table(resource, &[&object], world.api.store.version(), world.timestamp(), true),
        ),
        Some(object) if call.wants_metadata() => json_response(200, &metadata_only(&object)),
        Some(object) => json_response(200, &object),
        None => cluster_error(resource, name, &ClusterError::NotFound(ObjectRef::new(resource.kind, namespace, name))),
    }
}

/// The request body as a JSON object (JSON, or YAML for apply patches).
fn body_object(call: &Call) -> Result<Value, Refusal> {
    let parsed: Result<Value, String> = if call.content_type.contains("yaml") {
        std::str::from_utf8(&call.body)
            .map_err(|e| e.to_string())
            .and_then(|text| serde_saphyr::from_str(text).map_err(|e| e.to_string()))
    } else {
        serde_json::from_slice(&call.body).map_err(|e| e.to_string())
    };
    match parsed {
        Ok(value @ Value::Object(_)) => Ok(value),
        Ok(_) => Err(Refusal("the request body is not an object".into())),
        Err(error) => Err(Refusal(format!("the request body is not valid: {error}"))),
    }
}

/// Fills the object's kind, apiVersion and namespace from the request path, or refuses a mismatch.
fn place(value: &mut Value, resource: &Resource, namespace: &str, name: Option<&str>) -> Result<(), Refusal> {
    let Some(object) = value.as_object_mut() else { return Err(Refusal("not an object".into())) };
    let kind = object.entry("kind").or_insert_with(|| resource.kind.into());
    if kind.as_str() != Some(resource.kind) {
        return Err(Refusal(format!("the kind {kind} does not match the resource {}", resource.qualified())));
    }
    object.entry("apiVersion").or_insert_with(|| resource.api_version().into());
    let meta = object.entry("metadata").or_insert_with(|| Value::Object(Map::new()));
    let Some(meta) = meta.as_object_mut() else { return Err(Refusal("metadata is not an object".into())) };
    match meta.get("namespace").and_then(Value::as_str) {
        Some(given) if !given.is_empty() && given != namespace => {
            return Err(Refusal(
                "the namespace of the provided object does not match the namespace sent on the request".into(),
            ));
        }
        _ => {
            meta.insert("namespace".into(), namespace.into());
        }
    }
    if let Some(name) = name {
        match meta.get("name").and_then(Value::as_str) {
            Some(given) if given != name => {
                return Err(Refusal(format!(
                    "the name of the object ({given}) does not match the name on the URL ({name})"
                )));
            }
            _ => {
                meta.insert("name".into(), name.into());
            }
        }
    }
    Ok(())
}

fn refuse_dry_run(call: &Call) -> Result<(), Refusal> {
    match call.param("dryRun") {
        Some(_) => Err(Refusal("dryRun is not supported by sei-sim serve".into())),
        None => Ok(()),
    }
}

/// A 409 Conflict injected by `conflicts N`, if one is due.
fn injected_conflict(server: &Server, resource: &Resource, name: &str) -> Option<Response<Body>> {
    let mut faults = server.faults();
    if faults.conflicts == 0 {
        return None;
    }
    faults.conflicts -= 1;
    Some(cluster_error(resource, name, &ClusterError::Conflict(ObjectRef::new(resource.kind, "", name))))
}

fn record(world: &mut WorldState, verb: &str, key: &ObjectRef, result: &Result<std::sync::Arc<Value>, ClusterError>) {
    let text = match result {
        Ok(value) => {
            let version = value.metadata_field("resourceVersion").and_then(Value::as_str).unwrap_or("-");
            format!("api {verb} {key} rv={version}")
        }
        Err(error) => format!("api {verb} {key} failed: {error}"),
    };
    world.record(Category::Write, text);
}

fn create(server: &Server, call: &Call, resource: &Resource, namespace: &str) -> Response<Body> {
    if let Err(refusal) = refuse_dry_run(call) {
        return refusal.response();
    }
    let mut value = match body_object(call) {
        Ok(value) => value,
        Err(refusal) => return refusal.response(),
    };
    if let Err(refusal) = place(&mut value, resource, namespace, None) {
        return refusal.response();
    }
    let meta = value.pointer_mut("/metadata").and_then(Value::as_object_mut);
    if let Some(meta) = meta
        && meta.get("name").and_then(Value::as_str).is_none_or(str::is_empty)
    {
        let Some(prefix) = meta.get("generateName").and_then(Value::as_str).map(str::to_owned) else {
            return bad_request("metadata.name or metadata.generateName is required".into());
        };
        let n = GENERATED.fetch_add(1, Ordering::Relaxed);
        meta.insert("name".into(), format!("{prefix}{:05x}", n % 0x10_0000).into());
    }
    let name = value.metadata_field("name").and_then(Value::as_str).unwrap_or_default().to_owned();
    let mut world = lock(&server.shared);
    let key = ObjectRef::new(resource.kind, namespace, &name);
    let now = world.timestamp();
    let result = world.api.store.create(value, now);
    record(&mut world, "create", &key, &result);
    match result {
        Ok(created) => json_response(201, &created),
        Err(error) => cluster_error(resource, &name, &error),
    }
}

/// Writes `value` over the stored object (or its status): an update without a resourceVersion is unconditional,
/// as the API server allows for these kinds.
fn write(
    world: &mut WorldState,
    resource: &Resource,
    key: &ObjectRef,
    mut value: Value,
    status: bool,
) -> Response<Body> {
    let stored_version = world.api.store.get(key, None).and_then(|v| v.metadata_field("resourceVersion").cloned());
    if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut)
        && meta.get("resourceVersion").is_none_or(|v| v.as_str().is_none_or(str::is_empty))
        && let Some(version) = stored_version
    {
        meta.insert("resourceVersion".into(), version);
    }
    let (verb, result) = if status {
        ("update-status", world.api.store.replace_status(value))
    } else {
        ("update", world.api.store.replace(value))
    };
    record(world, verb, key, &result);
    match result {
        Ok(written) => json_response(200, &written),
        Err(error) => cluster_error(resource, &key.name, &error),
    }
}

fn update(
    server: &Server,
    call: &Call,
    resource: &Resource,
    namespace: &str,
    name: &str,
    status: bool,
) -> Response<Body> {
    if let Err(refusal) = refuse_dry_run(call) {
        return refusal.response();
    }
    let mut value = match body_object(call) {
        Ok(value) => value,
        Err(refusal) => return refusal.response(),
    };
    if let Err(refusal) = place(&mut value, resource, namespace, Some(name)) {
        return refusal.response();
    }
    if let Some(conflict) = injected_conflict(server, resource, name) {
        return conflict;
    }
    let key = ObjectRef::new(resource.kind, namespace, name);
    write(&mut lock(&server.shared), resource, &key, value, status)
}

/// RFC 7386 JSON merge patch: objects merge key by key, `null` removes, anything else replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(target) = target {
        for (key, value) in patch {
            if value.is_null() {
                target.remove(key);
            } else {
                merge_patch(target.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

fn patch(
    server: &Server,
    call: &Call,
    resource: &Resource,
    namespace: &str,
    name: &str,
    status: bool,
) -> Response<Body> {
    if let Err(refusal) = refuse_dry_run(call) {
        return refusal.response();
    }
    let media = call.content_type.split(';').next().unwrap_or_default().trim();
    let apply = match media {
        "application/merge-patch+json" | "application/strategic-merge-patch+json" => false,
        "application/apply-patch+yaml" | "application/apply-patch+json" => true,
        other => {
            return failure(
                415,
                "UnsupportedMediaType",
                format!(
                    "the body of the request was in an unknown format - accepted media types include: application/merge-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml (got {other:?})"
                ),
                json!({}),
            );
        }
    };
    let patch = match body_object(call) {
        Ok(value) => value,
        Err(refusal) => return refusal.response(),
    };
    if let Some(conflict) = injected_conflict(server, resource, name) {
        return conflict;
    }
    let key = ObjectRef::new(resource.kind, namespace, name);
    let mut world = lock(&server.shared);
    let Some(stored) = world.api.store.get(&key, None).cloned() else {
        if apply && !status {
            // Server-side apply of an object that does not exist creates it.
            let mut value = patch;
            if let Err(refusal) = place(&mut value, resource, namespace, Some(name)) {
                return refusal.response();
            }
            let now = world.timestamp();
            let result = world.api.store.create(value, now);
            record(&mut world, "apply", &key, &result);
            return match result {
                Ok(created) => json_response(201, &created),
                Err(error) => cluster_error(resource, name, &error),
            };
        }
        return cluster_error(resource, name, &ClusterError::NotFound(key));
    };
    let mut patched = stored;
    merge_patch(&mut patched, &patch);
    if let Err(refusal) = place(&mut patched, resource, namespace, Some(name)) {
        return refusal.response();
    }
    write(&mut world, resource, &key, patched, status)
}

fn delete(server: &Server, resource: &Resource, namespace: &str, name: &str) -> Response<Body> {
    let key = ObjectRef::new(resource.kind, namespace, name);
    let mut world = lock(&server.shared);
    let before = world.api.store.get(&key, None).cloned();
    let now = world.timestamp();
    let result = world.api.store.delete(&key, now);
    world.record(
        Category::Write,
        match &result {
            Ok(()) => format!("api delete {key}"),
            Err(error) => format!("api delete {key} failed: {error}"),
        },
    );
    match (result, before) {
        // Still there (finalizers, a pod terminating): its state now; gone: its last state.
        (Ok(()), Some(before)) => json_response(200, &world.api.store.get(&key, None).cloned().unwrap_or(before)),
        (Ok(()), None) => json_response(200, &json!({"kind": "Status", "apiVersion": "v1", "status": "Success"})),
        (Err(error), _) => cluster_error(resource, name, &error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_patches_merge_objects_and_replace_the_rest() {
        let mut target = json!({"a": {"b": 1, "c": [1, 2]}, "d": "x"});
        merge_patch(&mut target, &json!({"a": {"b": null, "c": [3]}, "e": true}));
        assert_eq!(target, json!({"a": {"c": [3]}, "d": "x", "e": true}));
    }

    #[test]
    fn query_parameters_are_percent_decoded() {
        let params = query_params(Some("labelSelector=app%3Dsei%2Ctier+in+(a)&watch=1"));
        assert_eq!(params[0], ("labelSelector".to_owned(), "app=sei,tier in (a)".to_owned()));
        assert_eq!(params[1], ("watch".to_owned(), "1".to_owned()));
    }
}
