//! Reading SeiNode / SeiNodeDeployment manifests and admitting them as the API server would, without one: the
//! generated CRD's OpenAPI schema (types, ranges, enums, required fields, unknown fields rejected as under
//! `kubectl`'s strict field validation), then its `x-kubernetes-validations` CEL rules evaluated by kube-rs' CEL
//! engine, then decoding into the Rust types.
//!
//! The same checks serve `sei-operator validate`, the fixture tests, and the simulator's fake API server, so a
//! manifest is judged by one set of rules everywhere — the rules the generated CRD carries. Updates, which only the
//! simulated API server admits, are ratcheted as the API server does it (`update.rs`).

mod spec_rules;
mod update;

use std::collections::HashMap;
use std::fmt;

use kube::CustomResourceExt;
use serde::Deserialize;
use serde_json::Value;

use crate::api::{API_VERSION, SeiNode, SeiNodeDeployment};
use spec_rules::SplitRules;

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
    /// `index` counts the stream's documents from 0; the message counts from 1, as a reader of the file does.
    #[error("document {} is not a Kubernetes object (a mapping with apiVersion and kind)", .index + 1)]
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
    /// The schema's fields as the unknown-field walk reads them.
    fields: FieldShape,
    structural: jsonschema::Validator,
    /// The same schema split at the root for [`ManifestValidator::check_update`]: the root's own keywords (type,
    /// required) and one validator per declared top-level property, so an unchanged `spec` need not be re-walked.
    root_structural: jsonschema::Validator,
    property_structural: Vec<(String, jsonschema::Validator)>,
    cel: kube_cel::CompiledSchema,
    /// The same rules split into the root's and the spec's, when they split cleanly (see [`spec_rules`]).
    split: Option<SplitRules>,
    /// Whether every CEL rule sits under `spec` or at the root, where (as on the API server) a rule sees of
    /// `metadata` only `name` and `generateName` — and ours read no `status`: only then may an update with an
    /// unchanged spec and name skip them.
    rules_only_under_spec: bool,
}

/// The top-level field whose unchanged value lets an update skip its checks.
const RATCHETED_FIELD: &str = "spec";

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
                let compile_error = |e: jsonschema::ValidationError<'_>| ManifestError::Schema {
                    kind: kind.clone(),
                    message: e.to_string(),
                };
                let mut root_only = schema.clone();
                let properties = root_only.as_object_mut().and_then(|root| root.remove("properties"));
                let root_structural = jsonschema::options()
                    .with_draft(jsonschema::Draft::Draft4)
                    .build(&root_only)
                    .map_err(compile_error)?;
                let property_structural = properties
                    .as_ref()
                    .and_then(Value::as_object)
                    .into_iter()
                    .flatten()
                    .map(|(name, sub)| {
                        let validator = jsonschema::options()
                            .with_draft(jsonschema::Draft::Draft4)
                            .build(sub)
                            .map_err(compile_error)?;
                        Ok((name.clone(), validator))
                    })
                    .collect::<Result<Vec<_>, ManifestError>>()?;
                let outside_spec = rules_outside(&schema, RATCHETED_FIELD);
                let rules_only_under_spec = outside_spec.iter().all(String::is_empty);
                let split = SplitRules::of(&schema, &outside_spec);
                let cel = kube_cel::compile_schema(&schema);
                Ok(KindSchema {
                    kind,
                    fields: FieldShape::of(&schema),
                    structural,
                    root_structural,
                    property_structural,
                    cel,
                    split,
                    rules_only_under_spec,
                })
            })
            .collect::<Result<Vec<_>, ManifestError>>()?;
        Ok(ManifestValidator { kinds, cel: kube_cel::Validator::new() })
    }

    /// Admits one object: right kind, a name, no unknown fields, the schema, the CEL rules, and finally the
    /// Rust types. Every violation found is reported, not only the first.
    pub fn admit(&self, object: &Value) -> Result<Manifest, ManifestError> {
        let (schema, kind, name) = self.schema_of(object)?;
        let violations = self.violations(schema, &name, object);
        decoded(kind, name, object, violations)
    }

    /// What the API server checks of a created custom resource, and no more: [`Self::admit`] but the Rust types.
    /// The server validates the unstructured object against the CRD's schema and CEL rules and never decodes it
    /// into a typed one (kubernetes `staging/src/k8s.io/apiextensions-apiserver/pkg/registry/customresource/
    /// validator.go`, `Validate`), so an object the operator's types would refuse is stored all the same.
    pub fn check(&self, object: &Value) -> Result<(), ManifestError> {
        let (schema, kind, name) = self.schema_of(object)?;
        let violations = self.violations(schema, &name, object);
        verdict(kind, name, violations)
    }

    /// Every violation of `object` short of the Rust types: its name, unknown fields, the schema, then (when
    /// those pass) the CEL rules.
    fn violations(&self, schema: &KindSchema, name: &str, object: &Value) -> Vec<Violation> {
        let mut violations = name_violation(name);
        unknown_fields(&schema.fields, object, "", &mut violations);
        violations.extend(schema.structural.iter_errors(object).map(|e| schema_violation("", &e)));
        self.with_cel_violations(schema, object, violations)
    }

    /// The compiled schema for `object`'s apiVersion and kind, the kind and the object's name.
    fn schema_of<'a>(&self, object: &'a Value) -> Result<(&KindSchema, &'a str, String), ManifestError> {
        let api_version = object.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
        let kind = object.get("kind").and_then(Value::as_str).unwrap_or_default();
        let schema =
            self.kinds.iter().find(|k| k.kind == kind).filter(|_| api_version == API_VERSION).ok_or_else(|| {
                ManifestError::UnsupportedKind { api_version: api_version.to_owned(), kind: kind.to_owned() }
            })?;
        let name = metadata_name(object).and_then(Value::as_str).unwrap_or_default().to_owned();
        Ok((schema, kind, name))
    }

    /// Evaluates the kind's CEL rules on `object`. kube-cel converts the value at every schema node it walks
    /// into a CEL value, whether or not rules sit there; with every rule under `spec` or at the root, the rest
    /// of the object (a SeiNode's status carries its whole plan) is left out, which cannot change the outcome
    /// or the paths: of `metadata`, a root rule sees only `name` and `generateName`, as on the API server.
    fn evaluate_cel(&self, schema: &KindSchema, object: &Value) -> Result<(), kube_cel::ValidationErrors> {
        match object.get(RATCHETED_FIELD).filter(|_| schema.rules_only_under_spec) {
            Some(spec) => {
                let seen = Value::Object(
                    [
                        ("metadata".to_owned(), Value::Object(root_metadata(object))),
                        (RATCHETED_FIELD.to_owned(), spec.clone()),
                    ]
                    .into_iter()
                    .collect(),
                );
                self.cel.validate_compiled(&schema.cel, &seen, None)
            }
            None => self.cel.validate_compiled(&schema.cel, object, None),
        }
    }

    /// `violations` found by the structural checks, and those of the CEL rules when there are none: CEL rules
    /// assume a structurally valid object, as on the API server.
    fn with_cel_violations(
        &self,
        schema: &KindSchema,
        object: &Value,
        mut violations: Vec<Violation>,
    ) -> Vec<Violation> {
        if violations.is_empty() {
            violations = match &schema.split {
                Some(split) => split.violations(&self.cel, object),
                None => spec_rules::as_violations(self.evaluate_cel(schema, object)),
            };
        }
        violations
    }

    /// Parses a YAML stream (one or more `---`-separated documents) and admits every object in it.
    pub fn admit_yaml(&self, text: &str) -> Result<Vec<Manifest>, ManifestError> {
        parse_yaml_documents(text)?.iter().map(|doc| self.admit(doc)).collect()
    }
}

/// A schema error as a violation at its field (below `base`, a top-level property validated on its own, or the
/// root when empty).
fn schema_violation(base: &str, error: &jsonschema::ValidationError<'_>) -> Violation {
    Violation {
        field: join_path(base, &pointer_to_path(&error.instance_path().to_string())),
        message: schema_message(error),
    }
}

/// The schema error's message, with numeric bounds written as a person writes them. The generated schema holds
/// every bound as a float (`minimum: 1.0`) and jsonschema prints it so (`less than the minimum of 1.0`), which
/// reads as if `replicas` took fractions; a whole-number bound is printed as an integer. Other messages are
/// jsonschema's own, which name the value and the rule and carry no library internals.
fn schema_message(error: &jsonschema::ValidationError<'_>) -> String {
    use jsonschema::error::ValidationErrorKind as Kind;
    let value = error.instance();
    match error.kind() {
        Kind::Minimum { limit } => format!("{value} is less than the minimum of {}", number(limit)),
        Kind::Maximum { limit } => format!("{value} is greater than the maximum of {}", number(limit)),
        Kind::ExclusiveMinimum { limit } => {
            format!("{value} is less than or equal to the exclusive minimum of {}", number(limit))
        }
        Kind::ExclusiveMaximum { limit } => {
            format!("{value} is greater than or equal to the exclusive maximum of {}", number(limit))
        }
        _ => error.to_string(),
    }
}

/// A JSON number as the schema means it: `1.0` as `1`, `0.5` as `0.5`.
fn number(value: &Value) -> String {
    match value.as_f64() {
        // Whole numbers within f64's exact integer range print without a fraction.
        Some(float) if float.fract() == 0.0 && float.abs() < 9_007_199_254_740_992.0 => format!("{}", float as i64),
        _ => value.to_string(),
    }
}

/// What a CEL rule at the root sees of `object`'s metadata: `name` and `generateName`, as on the API server.
fn root_metadata(object: &Value) -> serde_json::Map<String, Value> {
    ["name", "generateName"]
        .into_iter()
        .filter_map(|key| Some((key.to_owned(), object.get("metadata")?.get(key)?.clone())))
        .collect()
}

/// `metadata.name`, read without `Value::pointer`'s allocation of each token (every admitted write reads it).
fn metadata_name(object: &Value) -> Option<&Value> {
    object.get("metadata")?.get("name")
}

fn name_violation(name: &str) -> Vec<Violation> {
    if name.is_empty() {
        vec![Violation { field: "metadata.name".into(), message: "Required value".into() }]
    } else {
        Vec::new()
    }
}

/// Paths (dotted, through the schema's `properties`, `items` and `additionalProperties`) of every schema node
/// carrying `x-kubernetes-validations`; the root is "".
fn rule_paths(schema: &Value) -> Vec<String> {
    fn walk(schema: &Value, path: &str, out: &mut Vec<String>) {
        let Some(node) = schema.as_object() else { return };
        if node.contains_key("x-kubernetes-validations") {
            out.push(path.to_owned());
        }
        if let Some(properties) = node.get("properties").and_then(Value::as_object) {
            for (name, sub) in properties {
                walk(sub, &join_path(path, name), out);
            }
        }
        for (keyword, sub) in node {
            match keyword.as_str() {
                "items" | "additionalProperties" => walk(sub, &join_path(path, keyword), out),
                "allOf" | "anyOf" | "oneOf" => {
                    for branch in sub.as_array().into_iter().flatten() {
                        walk(branch, path, out);
                    }
                }
                _ => {}
            }
        }
    }
    let mut out = Vec::new();
    walk(schema, "", &mut out);
    out
}

/// The rule paths of `schema` that are not the top-level `field` or below it.
fn rules_outside(schema: &Value, field: &str) -> Vec<String> {
    let below = format!("{field}.");
    rule_paths(schema).into_iter().filter(|path| path != field && !path.starts_with(&below)).collect()
}

/// The object as its Rust type when nothing was violated; else, or when the types refuse it, `Invalid`.
fn decoded(
    kind: &str,
    name: String,
    object: &Value,
    mut violations: Vec<Violation>,
) -> Result<Manifest, ManifestError> {
    if violations.is_empty() {
        match decode(kind, object) {
            Ok(manifest) => return Ok(manifest),
            Err(e) => violations.push(Violation { field: String::new(), message: e.to_string() }),
        }
    }
    Err(ManifestError::Invalid { kind: kind.to_owned(), name, violations })
}

/// `Ok` when nothing was violated, else `Invalid` with every violation.
fn verdict(kind: &str, name: String, violations: Vec<Violation>) -> Result<(), ManifestError> {
    if violations.is_empty() {
        return Ok(());
    }
    Err(ManifestError::Invalid { kind: kind.to_owned(), name, violations })
}

fn decode(kind: &str, object: &Value) -> Result<Manifest, serde_json::Error> {
    // Defaults (replicas, deletionPolicy) come from the Rust types, which mirror the schema's defaults.
    // Decoded by reference: the same result as decoding a copy, without making one.
    Ok(if kind == "SeiNode" {
        Manifest::SeiNode(Box::new(SeiNode::deserialize(object)?))
    } else {
        Manifest::SeiNodeDeployment(Box::new(SeiNodeDeployment::deserialize(object)?))
    })
}

/// Parses a YAML stream into its documents, skipping empty ones. Each must be a mapping.
pub fn parse_yaml_documents(text: &str) -> Result<Vec<Value>, ManifestError> {
    let documents: Vec<Value> = serde_saphyr::from_multiple(text).map_err(|e| ManifestError::Yaml(yaml_message(&e)))?;
    documents
        .into_iter()
        .enumerate()
        .filter(|(_, doc)| !doc.is_null())
        .map(|(index, doc)| if doc.is_object() { Ok(doc) } else { Err(ManifestError::NotAnObject { index }) })
        .collect()
}

/// A YAML error in one line for the person who wrote the file: what is wrong and where (`at line 3, column 11`).
/// serde-saphyr's default rendering is for developers: it prefixes `error:`, may suggest parser options and API
/// calls, and draws a source snippet headed by the placeholder `<input>`; its user formatter without the snippet
/// keeps the message and the position only.
fn yaml_message(error: &serde_saphyr::Error) -> String {
    let options = serde_saphyr::render_options! {
        formatter: &serde_saphyr::UserMessageFormatter,
        snippets: serde_saphyr::SnippetMode::Off,
    };
    let rendered = error.render_with_options(options);
    rendered.lines().map(str::trim).filter(|line| !line.is_empty()).collect::<Vec<_>>().join(" ")
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
    match (base.is_empty(), key.is_empty()) {
        (true, _) => key.to_owned(),
        // An error at the base itself: a top-level property of the wrong type (`status: "x"`).
        (false, true) => base.to_owned(),
        (false, false) => format!("{base}.{key}"),
    }
}

/// Reports fields the schema does not declare, as the API server does under strict field validation (the
/// default of `kubectl apply`): a misspelt field is an error, not silently pruned.
fn unknown_fields(schema: &FieldShape, value: &Value, path: &str, out: &mut Vec<Violation>) {
    unknown_fields_except(schema, value, path, &[], out);
}

/// [`unknown_fields`], not looking into the fields of `value` named in `skip`.
fn unknown_fields_except(schema: &FieldShape, value: &Value, path: &str, skip: &[&str], out: &mut Vec<Violation>) {
    walk_unknown_fields(schema, value, &FieldPath::Root(path), skip, out);
}

/// What the unknown-field walk reads of a schema node, compiled once from the CRD: the walk visits every node
/// of every admitted object, and looking each keyword up in the schema's JSON again was most of its cost.
#[derive(Debug, Default)]
struct FieldShape {
    /// `x-kubernetes-preserve-unknown-fields: true`: anything goes below.
    preserve_unknown: bool,
    /// Hashed (a fixed seed; only looked up, never iterated): the walk looks up every field of every admitted
    /// object here, and a sorted map's search compared the name with each key on its way.
    properties: Option<HashMap<String, FieldShape, foldhash::fast::FixedState>>,
    /// `additionalProperties` when it is a schema (a map's values).
    additional: Option<Box<FieldShape>>,
    items: Option<Box<FieldShape>>,
}

impl FieldShape {
    fn of(schema: &Value) -> Self {
        FieldShape {
            preserve_unknown: schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true)),
            properties: schema.get("properties").and_then(Value::as_object).map(|properties| {
                properties.iter().map(|(name, field)| (name.clone(), FieldShape::of(field))).collect()
            }),
            additional: schema.get("additionalProperties").filter(|a| a.is_object()).map(|a| Box::new(Self::of(a))),
            items: schema.get("items").map(|items| Box::new(Self::of(items))),
        }
    }
}

/// Where the walk is, as a chain of segments rendered only when a violation is reported: the walk visits every
/// node of every admitted object, and building each node's path eagerly was most of its cost.
enum FieldPath<'a> {
    Root(&'a str),
    Key(&'a FieldPath<'a>, &'a str),
    Index(&'a FieldPath<'a>, usize),
}

impl FieldPath<'_> {
    fn render(&self) -> String {
        match self {
            FieldPath::Root(path) => (*path).to_owned(),
            FieldPath::Key(parent, key) => join_path(&parent.render(), key),
            FieldPath::Index(parent, index) => format!("{}[{index}]", parent.render()),
        }
    }

    /// Whether [`FieldPath::render`] would be empty, without rendering.
    fn is_empty(&self) -> bool {
        match self {
            FieldPath::Root(path) => path.is_empty(),
            FieldPath::Key(parent, key) => key.is_empty() && parent.is_empty(),
            FieldPath::Index(..) => false,
        }
    }
}

fn walk_unknown_fields(
    schema: &FieldShape,
    value: &Value,
    path: &FieldPath<'_>,
    skip: &[&str],
    out: &mut Vec<Violation>,
) {
    if schema.preserve_unknown {
        return;
    }
    match value {
        Value::Object(fields) => {
            // apiVersion, kind and metadata are the API server's own (it validates ObjectMeta itself); a CRD
            // schema need not declare them.
            let implicit: &[&str] = if path.is_empty() { &["apiVersion", "kind", "metadata"] } else { &[] };
            let checked = |key: &str| !implicit.contains(&key) && !skip.contains(&key);
            for (key, field_value) in fields.iter().filter(|(key, _)| checked(key)) {
                let field_path = FieldPath::Key(path, key);
                let declared = schema.properties.as_ref().and_then(|p| p.get(key.as_str()));
                match declared.or(schema.additional.as_deref()) {
                    Some(field_schema) => walk_unknown_fields(field_schema, field_value, &field_path, &[], out),
                    None => out.push(Violation { field: field_path.render(), message: "unknown field".into() }),
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = &schema.items {
                for (index, item) in items.iter().enumerate() {
                    walk_unknown_fields(item_schema, item, &FieldPath::Index(path, index), &[], out);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    pub(super) fn node(spec: Value) -> Value {
        json!({
            "apiVersion": API_VERSION, "kind": "SeiNode",
            "metadata": {"name": "n", "namespace": "sei", "resourceVersion": "7"},
            "spec": spec,
        })
    }

    pub(super) fn valid_spec() -> Value {
        json!({"chainId": "pacific-1", "image": "sei:v1", "fullNode": {}})
    }

    pub(super) fn violations<T: std::fmt::Debug>(result: Result<T, ManifestError>) -> Vec<Violation> {
        match result {
            Err(ManifestError::Invalid { violations, .. }) => violations,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    /// Skipping CEL rules on an unchanged spec (and name) is sound only while every rule sits under `spec`, or
    /// at the root reading nothing but `metadata.name` and `spec`. This fails if a rule is ever added elsewhere
    /// (status), or a root rule reads status, so the shortcut cannot silently drop it.
    #[test]
    fn every_cel_rule_sits_under_spec_or_at_the_root_reading_no_status() {
        for crd in [SeiNode::crd(), SeiNodeDeployment::crd()] {
            let schema =
                serde_json::to_value(&crd.spec.versions[0].schema.as_ref().unwrap().open_api_v3_schema).unwrap();
            let rules = rule_paths(&schema);
            assert!(!rules.is_empty(), "{}: the walk finds the CRD's rules", crd.spec.names.kind);
            let outside = rules_outside(&schema, RATCHETED_FIELD);
            assert!(outside.iter().all(String::is_empty), "{}: {outside:?}", crd.spec.names.kind);
            for rule in schema["x-kubernetes-validations"].as_array().into_iter().flatten() {
                let text = rule["rule"].as_str().unwrap_or_default();
                assert!(!text.contains("status"), "{}: a root rule reads status: {text}", crd.spec.names.kind);
            }
        }
        let validator = ManifestValidator::new().unwrap();
        assert!(validator.kinds.iter().all(|k| k.rules_only_under_spec));
    }

    #[test]
    fn rules_outside_spec_are_found() {
        let rule = json!([{"rule": "true"}]);
        let schema = json!({
            "type": "object",
            "properties": {
                "spec": {"type": "object", "x-kubernetes-validations": rule},
                "status": {"type": "object", "properties": {
                    "plan": {"type": "array", "items": {"type": "object", "x-kubernetes-validations": rule}},
                }},
            },
        });
        assert_eq!(rule_paths(&schema), ["spec", "status.plan.items"]);
        assert_eq!(rules_outside(&schema, "spec"), ["status.plan.items"]);
        let mut at_root = schema.clone();
        at_root["x-kubernetes-validations"] = rule;
        assert_eq!(rules_outside(&at_root, "spec"), ["", "status.plan.items"]);
    }

    #[test]
    fn rules_evaluated_on_the_spec_alone_give_what_the_whole_object_gives() {
        let validator = ManifestValidator::new().unwrap();
        let seinode = validator.kinds.iter().find(|k| k.kind == "SeiNode").unwrap();
        let errors = |result: Result<(), kube_cel::ValidationErrors>| -> Vec<(String, String)> {
            result
                .err()
                .map(|e| e.iter().map(|e| (e.field_path.clone(), e.message.clone())).collect())
                .unwrap_or_default()
        };
        let mut spec = valid_spec();
        spec["archive"] = json!({"snapshot": {"s3": {"bucket": "b"}, "stateSync": {}}});
        spec["peers"] = json!({});
        let mut object = node(spec);
        object["status"] = json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]});
        let whole = errors(validator.cel.validate_compiled(&seinode.cel, &object, None));
        assert!(whole.len() >= 2, "{whole:?}");
        assert_eq!(errors(validator.evaluate_cel(seinode, &object)), whole);
        assert_eq!(errors(validator.evaluate_cel(seinode, &node(valid_spec()))), Vec::new());
    }

    #[test]
    fn a_create_is_fully_checked() {
        let validator = ManifestValidator::new().unwrap();
        let mut spec = valid_spec();
        spec.as_object_mut().unwrap().remove("fullNode");
        let missing_mode = node(spec);
        // No stored object to ratchet against: the rules run.
        assert_eq!(violations(validator.admit(&missing_mode))[0].field, "spec");
        // A different kind stored under the same name is no ground for ratcheting either.
        let mut other_kind = missing_mode.clone();
        other_kind["kind"] = json!("SeiNodeDeployment");
        assert!(validator.check_update(&other_kind, &missing_mode).is_err());
    }

    #[test]
    fn unknown_fields_are_named_by_their_path() {
        let validator = ManifestValidator::new().unwrap();
        let mut object = node(valid_spec());
        object["spec"]["peers"] = json!({"static": ["a"], "typo": 1});
        object["status"] = json!({"conditions": [{"type": "Ready", "status": "True", "bogus": 2}]});
        object["extra"] = json!({});
        let fields: Vec<String> = violations(validator.admit(&object)).into_iter().map(|v| v.field).collect();
        assert!(fields.starts_with(&["extra".into(), "spec.peers.typo".into(), "status.conditions[0].bogus".into()]));
    }

    #[test]
    fn bounds_are_printed_as_numbers_are_written() {
        assert_eq!(number(&json!(1.0)), "1");
        assert_eq!(number(&json!(0.0)), "0");
        assert_eq!(number(&json!(65535.0)), "65535");
        assert_eq!(number(&json!(-3.0)), "-3");
        assert_eq!(number(&json!(7)), "7");
        assert_eq!(number(&json!(0.5)), "0.5");
        // Beyond the exact integer range, as JSON writes it.
        assert_eq!(number(&json!(1e300)), "1e+300");
        let schema = json!({"type": "object", "properties": {
            "low": {"type": "integer", "minimum": 1.0},
            "high": {"type": "integer", "maximum": 100.0},
            "above": {"type": "number", "exclusiveMinimum": 0.5},
            "below": {"type": "number", "exclusiveMaximum": 2.0},
        }});
        let validator = jsonschema::options().build(&schema).unwrap();
        let object = json!({"low": 0, "high": 101, "above": 0.5, "below": 2});
        let mut found: Vec<String> =
            validator.iter_errors(&object).map(|e| schema_violation("", &e).to_string()).collect();
        found.sort();
        assert_eq!(
            found,
            [
                "above: 0.5 is less than or equal to the exclusive minimum of 0.5",
                "below: 2 is greater than or equal to the exclusive maximum of 2",
                "high: 101 is greater than the maximum of 100",
                "low: 0 is less than the minimum of 1",
            ]
        );
    }

    #[test]
    fn pointer_becomes_dotted_path() {
        assert_eq!(pointer_to_path("/spec/template/spec/image"), "spec.template.spec.image");
        assert_eq!(pointer_to_path(""), "");
        assert_eq!(pointer_to_path("/metadata/labels/sei.io~1node"), "metadata.labels.sei.io/node");
    }
}
