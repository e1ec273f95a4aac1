//! Label and field selectors as list and watch requests carry them (`labelSelector=a=b,c!=d,e in (f,g),!h`,
//! `fieldSelector=metadata.name=x`). Grammar: kubernetes/kubernetes
//! `staging/src/k8s.io/apimachinery/pkg/labels/selector.go` (`Parse`) and `.../pkg/fields/selector.go`.

use crate::apiserver::json::Fields;
use serde_json::Value;

/// One requirement of a label selector.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed label selector; empty selects everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelSelector(Vec<Requirement>);

/// A selector the server cannot parse: a 400.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unable to parse requirement: {0:?}")]
pub struct SelectorError(pub String);

/// Splits on commas outside parentheses.
fn terms(text: &str) -> Vec<&str> {
    let (mut terms, mut depth, mut start) = (Vec::new(), 0usize, 0);
    for (at, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                terms.push(&text[start..at]);
                start = at + 1;
            }
            _ => {}
        }
    }
    terms.push(&text[start..]);
    terms.into_iter().map(str::trim).filter(|t| !t.is_empty()).collect()
}

fn set(text: &str) -> Option<Vec<String>> {
    let inner = text.trim().strip_prefix('(')?.strip_suffix(')')?;
    Some(inner.split(',').map(|v| v.trim().to_owned()).collect())
}

impl LabelSelector {
    pub fn parse(text: &str) -> Result<Self, SelectorError> {
        let mut requirements = Vec::new();
        for term in terms(text) {
            let bad = || SelectorError(term.to_owned());
            let requirement = if let Some(key) = term.strip_prefix('!') {
                Requirement::NotExists(key.trim().to_owned())
            } else if let Some((key, value)) = term.split_once("!=") {
                Requirement::NotEquals(key.trim().to_owned(), value.trim().to_owned())
            } else if let Some((key, value)) = term.split_once("==").or_else(|| term.split_once('=')) {
                Requirement::Equals(key.trim().to_owned(), value.trim().to_owned())
            } else if let Some((key, values)) = term.split_once(" notin ") {
                Requirement::NotIn(key.trim().to_owned(), set(values).ok_or_else(bad)?)
            } else if let Some((key, values)) = term.split_once(" in ") {
                Requirement::In(key.trim().to_owned(), set(values).ok_or_else(bad)?)
            } else if term.chars().all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c)) {
                Requirement::Exists(term.to_owned())
            } else {
                return Err(bad());
            };
            requirements.push(requirement);
        }
        Ok(LabelSelector(requirements))
    }

    /// Whether `object`'s labels satisfy every requirement.
    pub fn matches(&self, object: &Value) -> bool {
        let labels = object.metadata_field("labels").and_then(Value::as_object);
        let label = |key: &str| labels.and_then(|l| l.get(key)).and_then(Value::as_str);
        self.0.iter().all(|requirement| match requirement {
            Requirement::Equals(key, value) => label(key) == Some(value.as_str()),
            Requirement::NotEquals(key, value) => label(key) != Some(value.as_str()),
            Requirement::In(key, values) => label(key).is_some_and(|v| values.iter().any(|w| w == v)),
            Requirement::NotIn(key, values) => label(key).is_none_or(|v| values.iter().all(|w| w != v)),
            Requirement::Exists(key) => label(key).is_some(),
            Requirement::NotExists(key) => label(key).is_none(),
        })
    }
}

/// A parsed field selector: `path=value` and `path!=value` terms on dotted paths of the object
/// (`metadata.name`, `involvedObject.uid`). A missing field reads as the empty string.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSelector(Vec<(String, bool, String)>);

impl FieldSelector {
    pub fn parse(text: &str) -> Result<Self, SelectorError> {
        let mut terms_ = Vec::new();
        for term in terms(text) {
            let (path, equal, value) = if let Some((p, v)) = term.split_once("!=") {
                (p, false, v)
            } else if let Some((p, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
                (p, true, v)
            } else {
                return Err(SelectorError(term.to_owned()));
            };
            terms_.push((format!("/{}", path.trim().replace('.', "/")), equal, value.trim().to_owned()));
        }
        Ok(FieldSelector(terms_))
    }

    pub fn matches(&self, object: &Value) -> bool {
        self.0.iter().all(|(pointer, equal, value)| {
            let found = match object.at(pointer) {
                Some(Value::String(text)) => text.clone(),
                Some(Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            };
            (found == *value) == *equal
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn label_selectors_parse_every_operator() {
        let object = json!({"metadata": {"labels": {"app": "sei", "tier": "rpc"}}});
        for (text, expected) in [
            ("", true),
            ("app=sei", true),
            ("app==sei,tier=rpc", true),
            ("app!=sei", false),
            ("tier in (rpc, archive)", true),
            ("tier notin (rpc)", false),
            ("app", true),
            ("!app", false),
            ("!missing", true),
        ] {
            assert_eq!(LabelSelector::parse(text).unwrap().matches(&object), expected, "{text}");
        }
        assert!(LabelSelector::parse("tier in rpc").is_err());
    }

    #[test]
    fn field_selectors_compare_dotted_paths() {
        let object = json!({"metadata": {"name": "a"}, "involvedObject": {"kind": "SeiNode"}});
        assert!(FieldSelector::parse("metadata.name=a,involvedObject.kind=SeiNode").unwrap().matches(&object));
        assert!(!FieldSelector::parse("metadata.name!=a").unwrap().matches(&object));
        assert!(FieldSelector::parse("involvedObject.uid=").unwrap().matches(&object));
    }
}
