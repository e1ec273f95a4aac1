//! Reading SeiNode / SeiNodeDeployment manifests and admitting them as the API server would, without one: the
//! generated CRD's OpenAPI schema (types, ranges, enums, required fields, unknown fields rejected as under
//! `kubectl`'s strict field validation), then its `x-kubernetes-validations` CEL rules evaluated by kube-rs' CEL
//! engine, then decoding into the Rust types.
//!
//! The same checks serve `sei-operator validate`, the fixture tests, and the simulator's fake API server, so a
//! manifest is judged by one set of rules everywhere — the rules the generated CRD carries.

use std::fmt;

use kube::CustomResourceExt;
use serde_json::Value;

use crate::api::{API_VERSION, SeiNode, SeiNodeDeployment};

/// An object admitted by [`ManifestValidator::admit`].
#[derive(Clone, Debug, PartialEq)]
pub enum Manifest {
    SeiNode(Box<SeiNode>),
    SeiNodeDeployment(Box<SeiNodeDeployment>),
}

/// One reason an object is invalid: the field (dotted path from the object's root) and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub field: String,
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() { f.write_str(&self.message) } else { write!(f, "{}: {}", self.field, self.message) }
    }
}

/// Why a manifest was not admitted.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("not valid YAML: {0}")]
    Yaml(String),
    #[error("document {index} is not a Kubernetes object (a mapping with apiVersion and kind)")]
    NotAnObject { index: usize },
    #[error(
        "{api_version} {kind} is not served by this operator (expected {API_VERSION} SeiNode or SeiNodeDeployment)"
    )]
    UnsupportedKind { api_version: String, kind: String },
    #[error("{kind} {name:?} is invalid:\n{}", render_violations(.violations))]
    Invalid { kind: String, name: String, violations: Vec<Violation> },
    #[error("the generated {kind} CRD schema cannot be compiled: {message}")]
    Schema { kind: String, message: String },
}

fn render_violations(violations: &[Violation]) -> String {
    violations.iter().map(|v| format!("  - {v}")).collect::<Vec<_>>().join("\n")
}

/// The admission checks of one kind, compiled once from its generated CRD.
struct KindSchema {
    kind: String,
    schema: Value,
    structural: jsonschema::Validator,
    cel: kube_cel::CompiledSchema,
}

/// Admits manifests against the generated CRDs.
pub struct ManifestValidator {
    kinds: Vec<KindSchema>,
    cel: kube_cel::Validator,
}

impl ManifestValidator {
    /// Compiles the schemas of both CRDs.
    pub fn new() -> Result<Self, ManifestError> {
        let kinds = [SeiNode::crd(), SeiNodeDeployment::crd()]
            .into_iter()
            .map(|crd| {
                let kind = crd.spec.names.kind.clone();
                let schema = crd
                    .spec
                    .versions
                    .first()
                    .and_then(|v| v.schema.as_ref())
                    .and_then(|s| s.open_api_v3_schema.as_ref())
                    .map(serde_json::to_value)
                    .transpose()
                    .map_err(|e| ManifestError::Schema { kind: kind.clone(), message: e.to_string() })?
                    .ok_or_else(|| ManifestError::Schema {
                        kind: kind.clone(),
                        message: "no openAPIV3Schema".into(),
                    })?;
                // The API server's OpenAPI v3 schemas follow JSON Schema draft 4 semantics.
                let structural = jsonschema::options()
                    .with_draft(jsonschema::Draft::Draft4)
                    .build(&schema)
                    .map_err(|e| ManifestError::Schema { kind: kind.clone(), message: e.to_string() })?;
                let cel = kube_cel::compile_schema(&schema);
                Ok(KindSchema { kind, schema, structural, cel })
            })
            .collect::<Result<Vec<_>, ManifestError>>()?;
        Ok(ManifestValidator { kinds, cel: kube_cel::Validator::new() })
    }

    /// Admits one object: right kind, a name, no unknown fields, the schema, the CEL rules, and finally the
    /// Rust types. Every violation found is reported, not only the first.
    pub fn admit(&self, object: &Value) -> Result<Manifest, ManifestError> {
        let api_version = object.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
        let kind = object.get("kind").and_then(Value::as_str).unwrap_or_default();
        let schema =
            self.kinds.iter().find(|k| k.kind == kind).filter(|_| api_version == API_VERSION).ok_or_else(|| {
                ManifestError::UnsupportedKind { api_version: api_version.to_owned(), kind: kind.to_owned() }
            })?;
        let name = object.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_owned();

        let mut violations = Vec::new();
        if name.is_empty() {
            violations.push(Violation { field: "metadata.name".into(), message: "Required value".into() });
        }
        unknown_fields(&schema.schema, object, "", &mut violations);
        violations.extend(
            schema
                .structural
                .iter_errors(object)
                .map(|e| Violation { field: pointer_to_path(&e.instance_path().to_string()), message: e.to_string() }),
        );
        // CEL rules assume a structurally valid object, as on the API server.
        if violations.is_empty()
            && let Err(errors) = self.cel.validate_compiled(&schema.cel, object, None)
        {
            violations
                .extend(errors.iter().map(|e| Violation { field: e.field_path.clone(), message: e.message.clone() }));
        }
        if violations.is_empty() {
            match decode(kind, object) {
                Ok(manifest) => return Ok(manifest),
                Err(e) => violations.push(Violation { field: String::new(), message: e.to_string() }),
            }
        }
        Err(ManifestError::Invalid { kind: kind.to_owned(), name, violations })
    }

    /// Parses a YAML stream (one or more `---`-separated documents) and admits every object in it.
    pub fn admit_yaml(&self, text: &str) -> Result<Vec<Manifest>, ManifestError> {
        parse_yaml_documents(text)?.iter().map(|doc| self.admit(doc)).collect()
    }
}

fn decode(kind: &str, object: &Value) -> Result<Manifest, serde_json::Error> {
    // Defaults (replicas, deletionPolicy) come from the Rust types, which mirror the schema's defaults.
    Ok(if kind == "SeiNode" {
        Manifest::SeiNode(Box::new(serde_json::from_value(object.clone())?))
    } else {
        Manifest::SeiNodeDeployment(Box::new(serde_json::from_value(object.clone())?))
    })
}

/// Parses a YAML stream into its documents, skipping empty ones. Each must be a mapping.
pub fn parse_yaml_documents(text: &str) -> Result<Vec<Value>, ManifestError> {
    let documents: Vec<Value> = serde_saphyr::from_multiple(text).map_err(|e| ManifestError::Yaml(e.to_string()))?;
    documents
        .into_iter()
        .filter(|doc| !doc.is_null())
        .enumerate()
        .map(|(index, doc)| if doc.is_object() { Ok(doc) } else { Err(ManifestError::NotAnObject { index }) })
        .collect()
}

/// `/spec/template/spec/image` → `spec.template.spec.image`.
fn pointer_to_path(pointer: &str) -> String {
    pointer
        .trim_start_matches('/')
        .split('/')
        .map(|segment| segment.replace("~1", "/").replace("~0", "~"))
        .collect::<Vec<_>>()
        .join(".")
}

fn join_path(base: &str, key: &str) -> String {
    if base.is_empty() { key.to_owned() } else { format!("{base}.{key}") }
}

/// Reports fields the schema does not declare, as the API server does under strict field validation (the
/// default of `kubectl apply`): a misspelt field is an error, not silently pruned.
fn unknown_fields(schema: &Value, value: &Value, path: &str, out: &mut Vec<Violation>) {
    if schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true)) {
        return;
    }
    match value {
        Value::Object(fields) => {
            // apiVersion, kind and metadata are the API server's own (it validates ObjectMeta itself); a CRD
            // schema need not declare them.
            let implicit: &[&str] = if path.is_empty() { &["apiVersion", "kind", "metadata"] } else { &[] };
            let properties = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            for (key, field_value) in fields.iter().filter(|(key, _)| !implicit.contains(&key.as_str())) {
                let field_path = join_path(path, key);
                match (properties.and_then(|p| p.get(key)), additional) {
                    (Some(field_schema), _) | (None, Some(field_schema)) => {
                        unknown_fields(field_schema, field_value, &field_path, out);
                    }
                    (None, None) => {
                        out.push(Violation { field: field_path, message: "unknown field".into() });
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (index, item) in items.iter().enumerate() {
                    unknown_fields(item_schema, item, &format!("{path}[{index}]"), out);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointer_becomes_dotted_path() {
        assert_eq!(pointer_to_path("/spec/template/spec/image"), "spec.template.spec.image");
        assert_eq!(pointer_to_path(""), "");
        assert_eq!(pointer_to_path("/metadata/labels/sei.io~1node"), "metadata.labels.sei.io/node");
    }
}
