//! A kind's CEL rules evaluated in two parts, when they split cleanly: the root's rules (ours read only
//! `metadata.name`) over the object's name, and the rules under `spec` over the spec alone — each part's verdict
//! remembered, by name and by spec. A deployment's children share one spec, so admitting the second and later
//! of them asks the same question again, and an update of a node's spec asks its name's again; each full
//! evaluation cost about 340 k instructions (kube-cel converts the object to CEL values at every schema node and
//! compiles every `matches()` regex anew), 4.7% of a simulated 16-replica rollout.
//!
//! kube-cel walks a schema depth first, a node's own rules before its properties'
//! (kube-cel `src/validation/mod.rs`, `walk_compiled`), so the root's violations come first and the spec's
//! after them — the order and the paths of one evaluation over the whole object, which a test pins.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Mutex, PoisonError};

use serde_json::{Map, Value};

use super::{RATCHETED_FIELD, Violation, root_metadata};

/// Specs whose verdict is remembered (the newest replace the oldest).
const REMEMBERED_SPECS: usize = 16;
/// Names whose verdict is remembered: past it the memo starts again empty.
const REMEMBERED_NAMES: usize = 4096;

/// What a root rule may read and still be split off: of `metadata`, a rule at the root sees only these two, as
/// on the API server (see `ManifestValidator::evaluate_cel`).
const ROOT_READS: [&str; 2] = ["self.metadata.name", "self.metadata.generateName"];

/// An object's `metadata.name` and `metadata.generateName`, the root rules' whole input.
type NameKey = (Option<String>, Option<String>);

/// The two halves of a kind's rules, compiled once.
pub(super) struct SplitRules {
    root: kube_cel::CompiledSchema,
    spec: kube_cel::CompiledSchema,
    verdicts: Mutex<VecDeque<(Value, Vec<Violation>)>>,
    /// The root rules' verdict by (name, generateName).
    by_name: Mutex<BTreeMap<NameKey, Vec<Violation>>>,
}

impl SplitRules {
    /// The split of `schema`'s rules, or `None` when a root rule (or its message expression) reads anything
    /// but the object's name — or when a rule sits elsewhere than at the root or under `spec` (`rules_outside`
    /// names those paths).
    pub(super) fn of(schema: &Value, rules_outside_spec: &[String]) -> Option<SplitRules> {
        if rules_outside_spec.iter().any(|path| !path.is_empty()) {
            return None;
        }
        let root_rules = schema.get("x-kubernetes-validations").cloned().unwrap_or(Value::Array(Vec::new()));
        if !reads_only_the_name(&root_rules) {
            return None;
        }
        let mut root = Map::new();
        root.insert("type".into(), "object".into());
        if let Some(metadata) = schema.pointer("/properties/metadata") {
            root.insert("properties".into(), Value::Object(Map::from_iter([("metadata".into(), metadata.clone())])));
        }
        root.insert("x-kubernetes-validations".into(), root_rules);
        let mut spec = schema.clone();
        let spec_object = spec.as_object_mut()?;
        spec_object.remove("x-kubernetes-validations");
        if let Some(properties) = spec_object.get_mut("properties").and_then(Value::as_object_mut) {
            properties.retain(|name, _| name == RATCHETED_FIELD);
        }
        Some(SplitRules {
            root: kube_cel::compile_schema(&Value::Object(root)),
            spec: kube_cel::compile_schema(&spec),
            verdicts: Mutex::new(VecDeque::new()),
            by_name: Mutex::new(BTreeMap::new()),
        })
    }

    /// The violations of every rule, as one evaluation over `object` would give them.
    pub(super) fn violations(&self, cel: &kube_cel::Validator, object: &Value) -> Vec<Violation> {
        let metadata = root_metadata(object);
        // Strings only in the key: a name of another JSON type is evaluated every time (the rules refuse it).
        let as_key = |field: &str| match metadata.get(field) {
            None => Some(None),
            Some(Value::String(value)) => Some(Some(value.clone())),
            Some(_) => None,
        };
        let key = as_key("name").zip(as_key("generateName"));
        let remembered =
            key.as_ref().and_then(|key| self.by_name.lock().unwrap_or_else(PoisonError::into_inner).get(key).cloned());
        let mut violations = match remembered {
            Some(verdict) => verdict,
            None => {
                let named = Value::Object(Map::from_iter([("metadata".to_owned(), Value::Object(metadata))]));
                let verdict = as_violations(cel.validate_compiled(&self.root, &named, None));
                if let Some(key) = key {
                    let mut by_name = self.by_name.lock().unwrap_or_else(PoisonError::into_inner);
                    if by_name.len() >= REMEMBERED_NAMES {
                        by_name.clear();
                    }
                    by_name.insert(key, verdict.clone());
                }
                verdict
            }
        };
        let Some(spec) = object.get(RATCHETED_FIELD) else {
            return violations;
        };
        let remembered = self
            .verdicts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .find(|(seen, _)| seen == spec)
            .map(|(_, verdict)| verdict.clone());
        let verdict = match remembered {
            Some(verdict) => verdict,
            None => {
                let alone = Value::Object(Map::from_iter([(RATCHETED_FIELD.to_owned(), spec.clone())]));
                let verdict = as_violations(cel.validate_compiled(&self.spec, &alone, None));
                let mut verdicts = self.verdicts.lock().unwrap_or_else(PoisonError::into_inner);
                if verdicts.len() >= REMEMBERED_SPECS {
                    verdicts.pop_front();
                }
                verdicts.push_back((spec.clone(), verdict.clone()));
                verdict
            }
        };
        violations.extend(verdict);
        violations
    }
}

/// Whether the rules' expressions read nothing of `self` but [`ROOT_READS`] (and no `oldSelf`).
fn reads_only_the_name(rules: &Value) -> bool {
    let Some(rules) = rules.as_array() else { return false };
    rules.iter().all(|rule| {
        ["rule", "messageExpression"].iter().all(|field| {
            let Some(expression) = rule.get(*field) else { return true };
            let Some(expression) = expression.as_str() else { return false };
            let rest = ROOT_READS.iter().fold(expression.to_owned(), |rest, read| rest.replace(read, ""));
            !rest.contains("self") && !rest.contains("Self")
        })
    })
}

pub(super) fn as_violations(result: Result<(), kube_cel::ValidationErrors>) -> Vec<Violation> {
    match result {
        Ok(()) => Vec::new(),
        Err(errors) => {
            errors.iter().map(|e| Violation { field: e.field_path.clone(), message: e.message.clone() }).collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::ManifestValidator;
    use super::super::tests::{node, valid_spec};
    use super::*;

    #[test]
    fn split_rules_give_what_one_evaluation_over_the_object_gives() {
        let validator = ManifestValidator::new().unwrap();
        for kind in &validator.kinds {
            assert!(kind.split.is_some(), "{}: the operator's rules split", kind.kind);
        }
        let seinode = validator.kinds.iter().find(|k| k.kind == "SeiNode").unwrap();
        let split = seinode.split.as_ref().unwrap();
        let mut two_modes = valid_spec();
        two_modes["archive"] = json!({"snapshot": {"s3": {"bucket": "b"}, "stateSync": {}}});
        two_modes["peers"] = json!({});
        let mut no_mode = valid_spec();
        no_mode.as_object_mut().unwrap().remove("fullNode");
        let mut objects = Vec::new();
        for spec in [valid_spec(), two_modes, no_mode] {
            for name in ["n", "Bad_Name", &"x".repeat(60)] {
                let mut object = node(spec.clone());
                object["metadata"]["name"] = json!(name);
                objects.push(object);
            }
        }
        // Twice over: the second pass answers both parts from what the first remembered.
        let mut failing = 0;
        for object in objects.iter().chain(&objects) {
            let whole = as_violations(validator.cel.validate_compiled(&seinode.cel, object, None));
            failing += usize::from(!whole.is_empty());
            assert_eq!(split.violations(&validator.cel, object), whole, "{object}");
        }
        assert_eq!(failing, 16, "every object but the valid one named `n` breaks a rule, in both passes");
    }

    #[test]
    fn a_root_rule_reading_more_than_the_name_keeps_the_rules_whole() {
        let rules = |rule: &str| json!([{"rule": rule}]);
        assert!(reads_only_the_name(&rules("self.metadata.name.size() <= 52")));
        assert!(reads_only_the_name(&rules("!has(self.metadata.generateName)")));
        assert!(!reads_only_the_name(&rules("self.metadata.name != self.spec.chainId")));
        assert!(!reads_only_the_name(&rules("self.metadata.name == oldSelf.metadata.name")));
        assert!(!reads_only_the_name(&rules("has(self.status)")));
        assert!(!reads_only_the_name(&json!([{"rule": "true", "messageExpression": "self.spec.image"}])));
        let schema = json!({"type": "object", "x-kubernetes-validations": rules("has(self.spec)"), "properties": {}});
        assert!(SplitRules::of(&schema, &[String::new()]).is_none());
        assert!(SplitRules::of(&json!({"type": "object"}), &["status.plan".to_owned()]).is_none());
    }
}
