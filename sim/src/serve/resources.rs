//! The resources `sei-sim serve` serves: their REST names, the store kind behind each, discovery documents
//! (`/api`, `/apis`, `/api/v1`, `/apis/<group>/<version>`) and the server-side printing (`as=Table`) `kubectl
//! get` asks for. Shapes follow kubernetes/kubernetes `staging/src/k8s.io/apimachinery/pkg/apis/meta/v1/types.go`
//! (`APIVersions`, `APIGroupList`, `APIResourceList`) and `.../meta/v1/table_types.go` (`Table`).

use crate::apiserver::json::Fields;
use sei_operator_core::clock::Timestamp;
use serde_json::{Value, json};

/// One served resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resource {
    /// API group; `""` for the core group.
    pub group: &'static str,
    pub version: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    /// The kind the resource's objects have, and the store keeps them under.
    pub kind: &'static str,
    pub short_names: &'static [&'static str],
    /// Whether it has a `status` subresource.
    pub status: bool,
    /// A read-only view of another resource's objects (core v1 Events of the stored events.k8s.io Events).
    pub view: bool,
}

impl Resource {
    /// `apiVersion` of its objects.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() { self.version.to_owned() } else { format!("{}/{}", self.group, self.version) }
    }

    /// `plural.group`, as errors name a resource (`seinodes.sei.io`, `pods`).
    pub fn qualified(&self) -> String {
        if self.group.is_empty() { self.plural.to_owned() } else { format!("{}.{}", self.plural, self.group) }
    }
}

const fn resource(
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    singular: &'static str,
    kind: &'static str,
    short_names: &'static [&'static str],
    status: bool,
) -> Resource {
    Resource { group, version, plural, singular, kind, short_names, status, view: false }
}

/// Everything served: the kinds the operator reads and writes, the sim's controllers keep (Pods, PVCs), and the
/// CRDs' two kinds (names as `crds/` defines them; a test checks them against the generated CRDs).
pub const RESOURCES: &[Resource] = &[
    resource("", "v1", "pods", "pod", "Pod", &["po"], true),
    resource("", "v1", "services", "service", "Service", &["svc"], true),
    resource("", "v1", "persistentvolumeclaims", "persistentvolumeclaim", "PersistentVolumeClaim", &["pvc"], true),
    Resource { view: true, ..resource("", "v1", "events", "event", "Event", &["ev"], false) },
    resource("apps", "v1", "statefulsets", "statefulset", "StatefulSet", &["sts"], true),
    resource("batch", "v1", "jobs", "job", "Job", &[], true),
    resource("coordination.k8s.io", "v1", "leases", "lease", "Lease", &[], false),
    resource("events.k8s.io", "v1", "events", "event", "Event", &["ev"], false),
    resource("sei.io", "v1alpha1", "seinodedeployments", "seinodedeployment", "SeiNodeDeployment", &["snd"], true),
    resource("sei.io", "v1alpha1", "seinodes", "seinode", "SeiNode", &["snode"], true),
];

/// The resource at `group`/`version`/`plural`.
pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static Resource> {
    RESOURCES.iter().find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// `GET /api`.
pub fn core_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

/// The named groups, in first-served order, each with its one version.
fn groups() -> Vec<(&'static str, &'static str)> {
    let mut groups: Vec<(&str, &str)> = Vec::new();
    for r in RESOURCES.iter().filter(|r| !r.group.is_empty()) {
        if !groups.iter().any(|(g, _)| *g == r.group) {
            groups.push((r.group, r.version));
        }
    }
    groups
}

/// `GET /apis`.
pub fn group_list() -> Value {
    let groups: Vec<Value> = groups()
        .into_iter()
        .map(|(group, version)| {
            let gv = json!({"groupVersion": format!("{group}/{version}"), "version": version});
            json!({"name": group, "versions": [gv.clone()], "preferredVersion": gv})
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `GET /api/v1` or `/apis/<group>/<version>`; `None` for a group version not served.
pub fn resource_list(group: &str, version: &str) -> Option<Value> {
    let mut resources = Vec::new();
    for r in RESOURCES.iter().filter(|r| r.group == group && r.version == version) {
        let verbs: &[&str] =
            if r.view { &["get", "list"] } else { &["create", "delete", "get", "list", "patch", "update", "watch"] };
        resources.push(json!({
            "name": r.plural, "singularName": r.singular, "namespaced": true, "kind": r.kind,
            "verbs": verbs, "shortNames": r.short_names,
        }));
        if r.status {
            resources.push(json!({
                "name": format!("{}/status", r.plural), "singularName": "", "namespaced": true, "kind": r.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
    }
    if resources.is_empty() {
        return None;
    }
    let group_version = if group.is_empty() { version.to_owned() } else { format!("{group}/{version}") };
    Some(json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources}))
}

/// `GET /openapi/v3`: where each group version's document is. Only as much OpenAPI as kubectl needs to learn that
/// the server validates fields itself (`fieldValidation`), so it sends its objects without validating them
/// against schemas client-side (kubernetes/kubernetes `staging/src/k8s.io/cli-runtime/pkg/resource/
/// query_param_verifier_v3.go`: a PATCH operation tagged with the kind's `x-kubernetes-group-version-kind` that
/// lists the `fieldValidation` parameter). No schemas: `kubectl explain` finds nothing.
pub fn openapi_index() -> Value {
    let mut paths = serde_json::Map::new();
    let mut versions: Vec<(&str, &str)> = vec![("", "v1")];
    versions.extend(groups());
    for (group, version) in versions {
        let path = if group.is_empty() { format!("api/{version}") } else { format!("apis/{group}/{version}") };
        paths.insert(path.clone(), json!({"serverRelativeURL": format!("/openapi/v3/{path}?hash=sei-sim")}));
    }
    json!({"paths": paths})
}

/// `GET /openapi/v3/api/v1` or `/openapi/v3/apis/<group>/<version>`: see [`openapi_index`].
pub fn openapi_document(group: &str, version: &str) -> Option<Value> {
    let mut paths = serde_json::Map::new();
    for r in RESOURCES.iter().filter(|r| r.group == group && r.version == version && !r.view) {
        let prefix = if group.is_empty() { format!("/api/{version}") } else { format!("/apis/{group}/{version}") };
        let operation = json!({
            "x-kubernetes-group-version-kind": {"group": group, "version": version, "kind": r.kind},
            "parameters": [{"name": "fieldValidation", "in": "query", "schema": {"type": "string"}}],
            "responses": {"200": {"description": "OK"}},
        });
        paths.insert(format!("{prefix}/namespaces/{{namespace}}/{}/{{name}}", r.plural), json!({"patch": operation}));
    }
    if paths.is_empty() {
        return None;
    }
    Some(json!({"openapi": "3.0.0", "info": {"title": "sei-sim", "version": "v1.33.0"}, "paths": paths}))
}

/// One column of a printed table: header, type, and where its value is in the object.
struct Column {
    name: &'static str,
    type_: &'static str,
    /// A JSON pointer into the object (`/status/phase`), or a computed column.
    source: Source,
}

enum Source {
    Pointer(&'static str),
    /// A pod's ready containers out of all (`1/2`).
    PodReady,
}

/// The columns of `resource` after Name: the CRDs' `additionalPrinterColumns` (as `crds/` declares them; a test
/// checks them against the generated CRDs), a few of the built-in printers' (kubernetes/kubernetes
/// `pkg/printers/internalversion/printers.go`), and Age for the rest.
fn columns(resource: &Resource) -> Vec<Column> {
    let pointer = |name, type_, path| Column { name, type_, source: Source::Pointer(path) };
    let age = pointer("Age", "date", "/metadata/creationTimestamp");
    match resource.kind {
        "SeiNodeDeployment" => vec![
            pointer("Ready", "integer", "/status/readyReplicas"),
            pointer("Replicas", "integer", "/status/replicas"),
            pointer("Phase", "string", "/status/phase"),
            pointer("Revision", "string", "/status/templateHash"),
            pointer("Gate", "integer", "/status/rollout/upgradeHeight"),
            age,
        ],
        "SeiNode" => vec![
            pointer("Phase", "string", "/status/phase"),
            pointer("Image", "string", "/spec/image"),
            pointer("Current", "string", "/status/currentImage"),
            pointer("Height", "integer", "/status/latestHeight"),
            age,
        ],
        "Pod" => vec![
            Column { name: "Ready", type_: "string", source: Source::PodReady },
            pointer("Status", "string", "/status/phase"),
            pointer("Node", "string", "/spec/nodeName"),
            age,
        ],
        "StatefulSet" => vec![
            pointer("Replicas", "integer", "/spec/replicas"),
            pointer("Ready", "integer", "/status/readyReplicas"),
            age,
        ],
        "Lease" => vec![pointer("Holder", "string", "/spec/holderIdentity"), age],
        _ => vec![age],
    }
}

/// The printer columns of `resource`, as the column definitions of a Table.
fn column_definitions(resource: &Resource) -> Vec<Value> {
    let name = json!({"name": "Name", "type": "string", "format": "name", "description": "Name", "priority": 0});
    std::iter::once(name)
        .chain(
            columns(resource)
                .into_iter()
                .map(|c| json!({"name": c.name, "type": c.type_, "format": "", "description": c.name, "priority": 0})),
        )
        .collect()
}

/// One row of `object` (the object itself rides along, as with `includeObject=Object`).
fn row(resource: &Resource, object: &Value, now: Timestamp) -> Value {
    let name = object.metadata_field("name").cloned().unwrap_or(Value::Null);
    let mut cells = vec![name];
    for column in columns(resource) {
        let cell = match column.source {
            Source::PodReady => {
                let statuses = object.at("/status/containerStatuses").and_then(Value::as_array);
                let total = object.at("/spec/containers").and_then(Value::as_array).map_or(0, Vec::len);
                let ready = statuses
                    .map(|s| s.iter().filter(|c| c.get("ready").and_then(Value::as_bool) == Some(true)).count())
                    .unwrap_or(0);
                Value::String(format!("{ready}/{total}"))
            }
            Source::Pointer(path) => match (column.type_, object.at(path)) {
                ("date", Some(Value::String(text))) => match text.parse::<Timestamp>() {
                    Ok(at) => Value::String(human_duration(now.duration_since(at).as_secs())),
                    Err(_) => Value::Null,
                },
                (_, Some(value)) => value.clone(),
                (_, None) => Value::Null,
            },
        };
        cells.push(cell);
    }
    json!({"cells": cells, "object": object})
}

/// `objects` as a `meta.k8s.io/v1` Table; without column definitions for a watch event after the first (the
/// API server sends headers once per watch: kubernetes/kubernetes
/// `staging/src/k8s.io/apiserver/pkg/endpoints/handlers/watch.go`, `tableOptions.NoHeaders = true`).
pub fn table(resource: &Resource, objects: &[&Value], version: u64, now: Timestamp, headers: bool) -> Value {
    let definitions = if headers { column_definitions(resource) } else { Vec::new() };
    let rows: Vec<Value> = objects.iter().map(|object| row(resource, object, now)).collect();
    json!({
        "kind": "Table", "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": version.to_string()},
        "columnDefinitions": definitions, "rows": rows,
    })
}

/// A duration as kubectl prints ages (apimachinery `pkg/util/duration/duration.go`, `HumanDuration`).
pub fn human_duration(seconds: i64) -> String {
    let seconds = seconds.max(0);
    let (minutes, hours, days) = (seconds / 60, seconds / 3600, seconds / 86_400);
    if seconds < 120 {
        format!("{seconds}s")
    } else if minutes < 10 {
        match seconds % 60 {
            0 => format!("{minutes}m"),
            s => format!("{minutes}m{s}s"),
        }
    } else if minutes < 180 {
        format!("{minutes}m")
    } else if hours < 8 {
        match minutes % 60 {
            0 => format!("{hours}h"),
            m => format!("{hours}h{m}m"),
        }
    } else if hours < 48 {
        format!("{hours}h")
    } else if hours < 24 * 8 {
        match hours % 24 {
            0 => format!("{days}d"),
            h => format!("{days}d{h}h"),
        }
    } else {
        format!("{days}d")
    }
}

/// A stored events.k8s.io/v1 Event as the core v1 Event `kubectl describe` lists (the API server converts
/// between the two: kubernetes/kubernetes `pkg/apis/events/v1/conversion.go`).
pub fn core_event(event: &Value) -> Value {
    let field = |path: &str| event.at(path).cloned().unwrap_or(Value::Null);
    let mut metadata = field("/metadata");
    if let Some(meta) = metadata.as_object_mut() {
        meta.remove("managedFields");
    }
    let time = event.at("/eventTime").cloned().unwrap_or_else(|| field("/metadata/creationTimestamp"));
    // Seconds precision, as the core type's timestamps have.
    let seconds = time.as_str().map(|t| match t.split_once('.') {
        Some((whole, _)) => format!("{whole}Z"),
        None => t.to_owned(),
    });
    json!({
        "apiVersion": "v1", "kind": "Event", "metadata": metadata,
        "involvedObject": field("/regarding"), "reason": field("/reason"), "message": field("/note"),
        "type": field("/type"), "action": field("/action"), "count": 1,
        "firstTimestamp": seconds, "lastTimestamp": seconds,
        "source": {"component": field("/reportingController")},
        "reportingComponent": field("/reportingController"), "reportingInstance": field("/reportingInstance"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sei_operator_core::crd::crd_files;

    #[test]
    fn the_crd_resources_are_served_as_the_generated_crds_name_them() {
        for file in crd_files() {
            let names = &file.crd.spec.names;
            let served = RESOURCES.iter().find(|r| r.kind == names.kind).expect("a served CRD kind");
            assert_eq!(served.group, file.crd.spec.group);
            assert_eq!(served.plural, names.plural);
            assert_eq!(Some(served.singular), names.singular.as_deref());
            let short: Vec<String> = served.short_names.iter().map(|s| (*s).to_owned()).collect();
            assert_eq!(Some(short), names.short_names.clone());
            let version = &file.crd.spec.versions[0];
            assert_eq!(served.version, version.name);
            let printed: Vec<(String, String)> = version
                .additional_printer_columns
                .iter()
                .flatten()
                .map(|c| (c.name.clone(), c.json_path.replace('.', "/")))
                .collect();
            let ours: Vec<(String, String)> = columns(served)
                .into_iter()
                .filter_map(|c| match c.source {
                    Source::Pointer(path) => Some((c.name.to_owned(), path.to_owned())),
                    Source::PodReady => None,
                })
                .collect();
            assert_eq!(printed, ours, "{}", names.kind);
        }
    }

    #[test]
    fn ages_print_as_kubectl_prints_them() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(150), "2m30s");
        assert_eq!(human_duration(3600 * 5 + 60 * 7), "5h7m");
        assert_eq!(human_duration(86_400 * 3), "3d");
    }
}
