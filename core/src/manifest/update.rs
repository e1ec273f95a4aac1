//! API-server emulation for the simulator: checking an *update* of a stored SeiNode / SeiNodeDeployment with CRD
//! validation ratcheting, as the API server does it since Kubernetes 1.33 (KEP-4008). `sei-operator validate` and
//! the fixture tests admit creates only ([`ManifestValidator::admit`]); the simulated API server checks every write,
//! and a status write of an unchanged spec must cost it no CEL evaluation, as it costs the real one none.

use serde_json::Value;

use super::{
    ManifestError, ManifestValidator, RATCHETED_FIELD, metadata_name, name_violation, schema_violation,
    unknown_fields_except, verdict,
};

impl ManifestValidator {
    /// Checks an update of `old` (the stored object) to `new` as the API server does — the schema and the CEL
    /// rules, never the Rust types (see [`ManifestValidator::check`]) — with CRD validation ratcheting as the API server
    /// does it since Kubernetes 1.33 (KEP-4008): a subtree equal to the stored one is not re-validated, so an
    /// update never fails on a value it did not change. Here the unit is `spec`: when it is unchanged, its
    /// unknown-field walk, its schema and its CEL rules (all of which sit under `spec`, checked when the
    /// validator is built) are skipped — what makes a status write cheap. Anything else (a changed spec, a kind
    /// with rules elsewhere) is checked exactly as [`ManifestValidator::check`] does, with the same violations.
    pub fn check_update(&self, old: &Value, new: &Value) -> Result<(), ManifestError> {
        let (schema, kind, name) = self.schema_of(new)?;
        // `metadata.name` is immutable on the API server; compared all the same, since a root rule reads it.
        let ratchet = schema.rules_only_under_spec
            && old.get("kind") == new.get("kind")
            && metadata_name(old) == metadata_name(new)
            && new.get(RATCHETED_FIELD).is_some_and(|spec| old.get(RATCHETED_FIELD) == Some(spec));
        if !ratchet {
            return self.check(new);
        }
        let mut violations = name_violation(&name);
        unknown_fields_except(&schema.fields, new, "", &[RATCHETED_FIELD], &mut violations);
        violations.extend(schema.root_structural.iter_errors(new).map(|e| schema_violation("", &e)));
        for (property, validator) in schema.property_structural.iter().filter(|(p, _)| p != RATCHETED_FIELD) {
            if let Some(value) = new.get(property) {
                violations.extend(validator.iter_errors(value).map(|e| schema_violation(property, &e)));
            }
        }
        verdict(kind, name, violations)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{node, valid_spec, violations};
    use super::*;
    use serde_json::json;

    #[test]
    fn a_changed_invalid_spec_is_rejected_on_update_as_on_create() {
        let validator = ManifestValidator::new().unwrap();
        let old = node(valid_spec());
        validator.admit(&old).unwrap();
        // Two modes: structurally valid, refused by a CEL rule.
        let mut spec = valid_spec();
        spec["archive"] = json!({});
        let new = node(spec);
        let on_update = violations(validator.check_update(&old, &new));
        assert_eq!(on_update, violations(validator.check(&new)));
        assert_eq!(on_update.len(), 1);
        assert_eq!(on_update[0].field, "spec");
        assert!(on_update[0].message.contains("exactly one mode"), "{}", on_update[0].message);
        // A structural error in a changed spec too.
        let mut spec = valid_spec();
        spec["bogus"] = json!(1);
        let new = node(spec);
        let on_update = violations(validator.check_update(&old, &new));
        assert_eq!(on_update, violations(validator.check(&new)));
        assert_eq!(on_update[0].field, "spec.bogus");
    }

    #[test]
    fn a_status_update_of_an_unchanged_spec_skips_its_rules() {
        let validator = ManifestValidator::new().unwrap();
        // A spec no mode: the CEL rule refuses it on create, so admitting it below shows the rule was not run.
        let mut spec = valid_spec();
        spec.as_object_mut().unwrap().remove("fullNode");
        let old = node(spec);
        assert_eq!(violations(validator.admit(&old))[0].field, "spec");
        let mut new = old.clone();
        new["status"] = json!({"phase": "Running", "latestHeight": 42});
        assert_eq!(validator.check_update(&old, &new).ok(), Some(()));
    }

    #[test]
    fn what_the_schema_allows_is_stored_even_when_the_rust_types_refuse_it() {
        // `format: int32` is not a range the API server's schema validation enforces, and the server never
        // decodes a custom resource into the operator's types: an out-of-range attempt number is stored, and
        // only a reader decoding it (the operator) fails.
        let validator = ManifestValidator::new().unwrap();
        let old = node(valid_spec());
        let mut new = old.clone();
        new["status"] = json!({"initAttempt": 5_000_000_000_i64});
        assert_eq!(validator.check_update(&old, &new).ok(), Some(()));
        assert_eq!(validator.check(&new).ok(), Some(()));
        let refused = violations(validator.admit(&new));
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert!(refused[0].message.contains("5000000000"), "{}", refused[0].message);
    }

    #[test]
    fn a_status_update_is_still_checked_against_the_status_schema() {
        let validator = ManifestValidator::new().unwrap();
        let old = node(valid_spec());
        let mut new = old.clone();
        new["status"] = json!({"phase": "Sleeping", "latestHeight": "high", "extra": true});
        new["metadata"]["name"] = json!("");
        let on_update = violations(validator.check_update(&old, &new));
        let fields: Vec<&str> = on_update.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["metadata.name", "status.extra", "status.latestHeight", "status.phase"]);
        let mut sorted = violations(validator.check(&new));
        sorted.sort_by(|a, b| a.field.cmp(&b.field));
        let mut on_update_sorted = on_update.clone();
        on_update_sorted.sort_by(|a, b| a.field.cmp(&b.field));
        assert_eq!(on_update_sorted, sorted);
    }

    #[test]
    fn an_error_at_a_top_level_property_itself_names_the_property() {
        let validator = ManifestValidator::new().unwrap();
        let old = node(valid_spec());
        let mut new = old.clone();
        new["status"] = json!("Running");
        let on_update = violations(validator.check_update(&old, &new));
        let fields: Vec<&str> = on_update.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["status"], "not `status.`: {on_update:?}");
        assert_eq!(on_update, violations(validator.check(&new)), "as a create names it");
    }
}
