//! The API server's validation of the built-in kinds the operator and the fake controllers write, as far as a
//! real cluster would refuse what a kinder fake accepts: object names (DNS-1035 labels for Services, DNS-1123
//! labels for StatefulSets, subdomains for the rest), the label values the API server derives from a name (a
//! Job's `job-name`), the label values on a pod (the StatefulSet controller's `controller-revision-hash`), and
//! the immutable parts of a StatefulSet's and a Job's spec. A refusal is 422 Invalid, worded as the API server
//! words it (`<field>: Invalid value: "<value>": <reason>`).
//!
//! Sources (kubernetes/kubernetes): `staging/src/k8s.io/apimachinery/pkg/util/validation/validation.go`
//! (`IsDNS1123Label`, `IsDNS1035Label`, `IsDNS1123Subdomain`, `IsValidLabelValue`), `pkg/apis/apps/validation/
//! validation.go` (`ValidateStatefulSetName`: a DNS-1123 label; `ValidateStatefulSetUpdate`),
//! `pkg/apis/batch/validation/validation.go` (`ValidateJobSpecUpdate`), `pkg/apis/core/validation/validation.go`
//! (`ValidateServiceName` = `NameIsDNS1035Label`, pod `hostname` a DNS-1123 label), `pkg/registry/batch/job/
//! strategy.go` (`generateSelector` labels the template with the Job's name).

use crate::apiserver::json::Fields;
use serde_json::Value;

/// The longest DNS-1123 / DNS-1035 label, and the longest label value.
pub const LABEL_MAX: usize = 63;
/// The longest DNS-1123 subdomain.
pub const SUBDOMAIN_MAX: usize = 253;

const DNS1123_LABEL_FORMAT: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or \
     '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for \
     validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1035_LABEL_FORMAT: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', \
     start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', \
     regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
const DNS1123_SUBDOMAIN_FORMAT: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric \
     characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used \
     for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_VALUE_FORMAT: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', \
     '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or \
     '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

/// The fields of a StatefulSet's spec an update may change; everything else is immutable.
const STATEFULSET_MUTABLE: [&str; 6] =
    ["replicas", "ordinals", "template", "updateStrategy", "persistentVolumeClaimRetentionPolicy", "minReadySeconds"];

fn lower_alphanumeric(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

fn too_long(max: usize) -> String {
    format!("must be no more than {max} characters")
}

/// `IsDNS1123Label`: the reasons a name is not one (empty: it is).
pub fn dns1123_label(name: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if name.len() > LABEL_MAX {
        errors.push(too_long(LABEL_MAX));
    }
    let shaped = name.chars().next().is_some_and(lower_alphanumeric)
        && name.chars().last().is_some_and(lower_alphanumeric)
        && name.chars().all(|c| lower_alphanumeric(c) || c == '-');
    if !shaped {
        errors.push(DNS1123_LABEL_FORMAT.into());
    }
    errors
}

/// `IsDNS1035Label`: a DNS-1123 label that starts with a letter.
pub fn dns1035_label(name: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if name.len() > LABEL_MAX {
        errors.push(too_long(LABEL_MAX));
    }
    let shaped = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name.chars().last().is_some_and(lower_alphanumeric)
        && name.chars().all(|c| lower_alphanumeric(c) || c == '-');
    if !shaped {
        errors.push(DNS1035_LABEL_FORMAT.into());
    }
    errors
}

/// `IsDNS1123Subdomain`: dot-separated DNS-1123 labels, 253 characters at most.
pub fn dns1123_subdomain(name: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if name.len() > SUBDOMAIN_MAX {
        errors.push(too_long(SUBDOMAIN_MAX));
    }
    let label_shaped = |part: &str| {
        part.chars().next().is_some_and(lower_alphanumeric)
            && part.chars().last().is_some_and(lower_alphanumeric)
            && part.chars().all(|c| lower_alphanumeric(c) || c == '-')
    };
    if !name.split('.').all(label_shaped) {
        errors.push(DNS1123_SUBDOMAIN_FORMAT.into());
    }
    errors
}

/// `IsValidLabelValue`.
pub fn label_value(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if value.len() > LABEL_MAX {
        errors.push(too_long(LABEL_MAX));
    }
    let inner = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    let shaped = value.is_empty()
        || (value.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
            && value.chars().last().is_some_and(|c| c.is_ascii_alphanumeric())
            && value.chars().all(inner));
    if !shaped {
        errors.push(LABEL_VALUE_FORMAT.into());
    }
    errors
}

/// `field: Invalid value: "value": reason; ...`, as the API server lists a field's errors.
fn invalid(field: &str, value: &str, reasons: Vec<String>) -> Result<(), String> {
    if reasons.is_empty() {
        return Ok(());
    }
    Err(reasons.iter().map(|r| format!("{field}: Invalid value: \"{value}\": {r}")).collect::<Vec<_>>().join(", "))
}

/// Validates a create (`stored` is `None`) or an update of a built-in kind; the kinds the operator's CRDs define
/// and kinds not modelled here pass. The error is the message of a 422.
pub fn validate(kind: &str, stored: Option<&Value>, value: &Value) -> Result<(), String> {
    let name = value.metadata_field("name").and_then(Value::as_str).unwrap_or_default();
    // A name never changes on update, and the API server checks it only on create (an update of an object with
    // a name a later release refuses must still pass, to let it be deleted: `ValidateStatefulSetUpdate`).
    if stored.is_none() {
        validate_name(kind, name)?;
        validate_labels(kind, value)?;
    }
    match (kind, stored) {
        ("StatefulSet", Some(old)) => statefulset_update(old, value),
        ("Job", Some(old)) => job_update(old, value),
        ("PersistentVolumeClaim", Some(old)) => claim_update(old, value),
        _ => Ok(()),
    }
}

fn validate_name(kind: &str, name: &str) -> Result<(), String> {
    let reasons = match kind {
        "Service" => dns1035_label(name),
        "StatefulSet" => dns1123_label(name),
        "Pod" | "Job" | "PersistentVolumeClaim" | "ConfigMap" | "Secret" => dns1123_subdomain(name),
        _ => Vec::new(),
    };
    invalid("metadata.name", name, reasons)
}

/// Label values the API server validates on create: an object's own labels; for a Job, the `job-name` labels
/// its strategy adds to the pod template (so a Job's name must be a valid label value, 63 characters at most);
/// for a pod, its `hostname` (a DNS-1123 label).
fn validate_labels(kind: &str, value: &Value) -> Result<(), String> {
    let own = value.metadata_field("labels").and_then(Value::as_object);
    for label in own.into_iter().flat_map(|labels| labels.values()) {
        let text = label.as_str().unwrap_or_default();
        invalid("metadata.labels", text, label_value(text))?;
    }
    match kind {
        "Job" => {
            let name = value.metadata_field("name").and_then(Value::as_str).unwrap_or_default();
            invalid("spec.template.labels", name, label_value(name))
        }
        "Pod" => match value.at("/spec/hostname").and_then(Value::as_str) {
            Some(hostname) => invalid("spec.hostname", hostname, dns1123_label(hostname)),
            None => Ok(()),
        },
        _ => Ok(()),
    }
}

/// A spec without the given fields, absent and `null` alike.
fn spec_without(object: &Value, fields: &[&str]) -> serde_json::Map<String, Value> {
    spec_fields_except(object, fields).map(|(field, v)| (field.clone(), v.clone())).collect()
}

/// The fields of a spec but the given ones, absent and `null` alike, in key order.
fn spec_fields_except<'a>(object: &'a Value, fields: &'a [&str]) -> impl Iterator<Item = (&'a String, &'a Value)> {
    let spec = object.get("spec").and_then(Value::as_object).into_iter().flatten();
    spec.filter(|(field, v)| !fields.contains(&field.as_str()) && !v.is_null())
}

/// `ValidateStatefulSetUpdate`: only `replicas`, `ordinals`, `template`, `updateStrategy`,
/// `persistentVolumeClaimRetentionPolicy` and `minReadySeconds` may change — so not `selector`, `serviceName`,
/// `volumeClaimTemplates` or `podManagementPolicy`.
fn statefulset_update(old: &Value, new: &Value) -> Result<(), String> {
    // Compared field by field in place (both maps are sorted), not copied: every status write of a set lands here.
    if spec_fields_except(old, &STATEFULSET_MUTABLE).eq(spec_fields_except(new, &STATEFULSET_MUTABLE)) {
        return Ok(());
    }
    Err("spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', \
         'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"
        .into())
}

/// `ValidateJobSpecUpdate`: `selector`, `template` (of a Job that is not suspended), `completions`,
/// `completionMode`, `podFailurePolicy` and `backoffLimitPerIndex` are immutable.
fn job_update(old: &Value, new: &Value) -> Result<(), String> {
    let mut errors = Vec::new();
    for field in ["completions", "selector", "template", "completionMode", "podFailurePolicy", "backoffLimitPerIndex"] {
        let pointer = format!("/spec/{field}");
        let (before, after) = (old.at(&pointer).filter(|v| !v.is_null()), new.at(&pointer).filter(|v| !v.is_null()));
        if before != after {
            let shown = if field == "template" {
                "[omitted]".to_owned()
            } else {
                after.map(Value::to_string).unwrap_or_default()
            };
            errors.push(format!("spec.{field}: Invalid value: {shown}: field is immutable"));
        }
    }
    if errors.is_empty() { Ok(()) } else { Err(errors.join(", ")) }
}

/// `ValidatePersistentVolumeClaimUpdate`: of a claim's spec only `resources.requests` (and
/// `volumeAttributesClassName`) may change, and the storage request may not go below what it was ("field can not
/// be less than previous value"; the `RecoverVolumeExpansionFailure` relaxation, for a failed expansion only, is
/// not modelled). Not modelled either: the resize admission plugin's refusal for a StorageClass without
/// `allowVolumeExpansion` — the simulator has no StorageClasses, so every claim may grow.
fn claim_update(old: &Value, new: &Value) -> Result<(), String> {
    let without_requests = |claim: &Value| {
        let mut spec = spec_without(claim, &["volumeAttributesClassName"]);
        if let Some(resources) = spec.get_mut("resources").and_then(Value::as_object_mut) {
            resources.remove("requests");
        }
        spec
    };
    if without_requests(old) != without_requests(new) {
        return Err("spec: Forbidden: spec is immutable after creation except resources.requests and \
                    volumeAttributesClassName for bound claims"
            .into());
    }
    let storage = |claim: &Value| {
        claim
            .at("/spec/resources/requests/storage")
            .and_then(Value::as_str)
            .and_then(sei_operator_core::node_defaults::quantity_value)
    };
    match (storage(old), storage(new)) {
        (Some(before), Some(after)) if after < before => Err(format!(
            "spec.resources.requests.storage: Forbidden: field can not be less than previous value ({})",
            old.at("/spec/resources/requests/storage").and_then(Value::as_str).unwrap_or_default()
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn names_follow_apimachinerys_rules() {
        assert!(dns1123_label("rpc-0").is_empty());
        assert!(dns1123_label("0rpc").is_empty());
        assert!(!dns1123_label("rpc.0").is_empty());
        assert!(!dns1123_label("-rpc").is_empty());
        assert!(!dns1123_label(&"a".repeat(64)).is_empty());
        assert!(dns1123_label(&"a".repeat(63)).is_empty());
        assert!(!dns1035_label("0rpc").is_empty(), "a DNS-1035 label starts with a letter");
        assert!(dns1035_label("rpc-0").is_empty());
        assert!(dns1123_subdomain("a.b-c.d").is_empty());
        assert!(!dns1123_subdomain("a..b").is_empty());
        assert!(!dns1123_subdomain(&"a".repeat(254)).is_empty());
        assert!(label_value("").is_empty());
        assert!(label_value("Rpc_0.x").is_empty());
        assert!(!label_value(&"a".repeat(64)).is_empty());
    }

    #[test]
    fn a_claim_may_grow_but_never_shrink_and_nothing_else_of_its_spec_changes() {
        let claim = |size: &str, class: &str| {
            json!({"metadata": {"name": "data-rpc-0-0"}, "spec": {"accessModes": ["ReadWriteOnce"],
                "storageClassName": class, "resources": {"requests": {"storage": size}}}})
        };
        let old = claim("2000Gi", "gp3");
        assert!(validate("PersistentVolumeClaim", Some(&old), &claim("3Ti", "gp3")).is_ok());
        let shrink = validate("PersistentVolumeClaim", Some(&old), &claim("1000Gi", "gp3")).unwrap_err();
        assert!(shrink.contains("can not be less than previous value"), "{shrink}");
        let class = validate("PersistentVolumeClaim", Some(&old), &claim("2000Gi", "io2")).unwrap_err();
        assert!(class.contains("spec is immutable after creation"), "{class}");
    }

    #[test]
    fn a_statefulset_name_must_be_a_dns_label() {
        let set = |name: &str| json!({"metadata": {"name": name}, "spec": {}});
        assert!(validate("StatefulSet", None, &set("rpc-0")).is_ok());
        let error = validate("StatefulSet", None, &set("rpc.0")).unwrap_err();
        assert!(error.starts_with("metadata.name: Invalid value: \"rpc.0\": a lowercase RFC 1123 label"), "{error}");
        let error = validate("StatefulSet", None, &set(&"a".repeat(64))).unwrap_err();
        assert!(error.contains("must be no more than 63 characters"), "{error}");
        // A Service's name must start with a letter; a StatefulSet's need not.
        assert!(validate("StatefulSet", None, &set("0rpc")).is_ok());
        assert!(validate("Service", None, &set("0rpc")).is_err());
    }

    #[test]
    fn a_jobs_name_becomes_a_label_value_of_63_characters_at_most() {
        let job = |name: &str| json!({"metadata": {"name": name}, "spec": {}});
        assert!(validate("Job", None, &job(&"a".repeat(63))).is_ok());
        let error = validate("Job", None, &job(&"a".repeat(64))).unwrap_err();
        assert!(error.starts_with("spec.template.labels: Invalid value:"), "{error}");
    }

    #[test]
    fn a_pods_label_values_and_hostname_are_checked() {
        let pod = |revision: &str| json!({"metadata": {"name": "p", "labels": {"controller-revision-hash": revision}}, "spec": {"hostname": "p"}});
        assert!(validate("Pod", None, &pod(&"a".repeat(63))).is_ok());
        let error = validate("Pod", None, &pod(&"a".repeat(64))).unwrap_err();
        assert!(error.starts_with("metadata.labels: Invalid value:"), "{error}");
    }

    #[test]
    fn a_statefulset_update_may_change_only_replicas_template_strategy_and_retention() {
        let old = json!({"metadata": {"name": "n"}, "spec": {"replicas": 1, "serviceName": "n",
            "selector": {"matchLabels": {"a": "b"}}, "podManagementPolicy": "Parallel",
            "volumeClaimTemplates": [{"metadata": {"name": "data"}}], "template": {"x": 1}}});
        let mut mutable = old.clone();
        mutable["spec"]["replicas"] = json!(0);
        mutable["spec"]["template"] = json!({"x": 2});
        mutable["spec"]["updateStrategy"] = json!({"type": "OnDelete"});
        mutable["spec"]["persistentVolumeClaimRetentionPolicy"] = json!({"whenDeleted": "Delete"});
        assert!(validate("StatefulSet", Some(&old), &mutable).is_ok());
        for (field, value) in [
            ("selector", json!({"matchLabels": {"a": "c"}})),
            ("serviceName", json!("m")),
            ("volumeClaimTemplates", json!([])),
            ("podManagementPolicy", json!("OrderedReady")),
        ] {
            let mut changed = old.clone();
            changed["spec"][field] = value;
            let error = validate("StatefulSet", Some(&old), &changed).unwrap_err();
            assert!(error.starts_with("spec: Forbidden: updates to statefulset spec"), "{field}: {error}");
        }
    }

    #[test]
    fn a_jobs_template_and_selector_are_immutable() {
        let old = json!({"metadata": {"name": "j"}, "spec": {"backoffLimit": 6, "template": {"x": 1}}});
        let mut limit = old.clone();
        limit["spec"]["backoffLimit"] = json!(3);
        assert!(validate("Job", Some(&old), &limit).is_ok());
        let mut template = old.clone();
        template["spec"]["template"] = json!({"x": 2});
        let error = validate("Job", Some(&old), &template).unwrap_err();
        assert_eq!(error, "spec.template: Invalid value: [omitted]: field is immutable");
    }
}
