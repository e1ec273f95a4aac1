//! Reading a JSON object's fields by JSON pointer without allocating. `serde_json::Value::pointer` unescapes
//! every segment into two new `String`s, and the simulator reads stored objects by pointer hundreds of thousands
//! of times a run (3% of a fuzz run's instructions went to those strings).

use serde_json::Value;

/// [`Value::pointer`] (RFC 6901), borrowing the segments of a pointer that has no escapes.
pub trait Fields {
    /// The value `pointer` names, as [`Value::pointer`] finds it.
    fn at(&self, pointer: &str) -> Option<&Value>;

    /// `metadata.<name>` of an object: what `at("/metadata/<name>")` finds, without reading a pointer (the
    /// store and its readers look an object's metadata up more than anything else).
    fn metadata_field(&self, name: &str) -> Option<&Value>;
}

impl Fields for Value {
    fn metadata_field(&self, name: &str) -> Option<&Value> {
        match field(self.as_object()?, "metadata")? {
            Value::Object(metadata) => field(metadata, name),
            _ => None,
        }
    }

    fn at(&self, pointer: &str) -> Option<&Value> {
        if pointer.is_empty() {
            return Some(self);
        }
        let Some(path) = pointer.strip_prefix('/') else {
            return self.pointer(pointer);
        };
        // Each token found by a scan for the next '/' (`str::split` set up a searcher per call, more than the
        // lookups cost for pointers this short). An escape ('~') hands the whole pointer to serde_json.
        let mut target = self;
        let mut rest = path;
        loop {
            let end = rest.bytes().position(|byte| byte == b'/' || byte == b'~').unwrap_or(rest.len());
            // An ASCII byte's index is a char boundary.
            let (token, after) = rest.split_at(end);
            if after.starts_with('~') {
                return self.pointer(pointer);
            }
            target = match target {
                Value::Object(fields) => field(fields, token)?,
                Value::Array(items) => items.get(array_index(token)?)?,
                _ => return None,
            };
            match after.strip_prefix('/') {
                Some(remaining) => rest = remaining,
                None => break,
            }
        }
        Some(target)
    }
}

/// The field `name` of an object. A small object (an object's metadata, most of what the simulator reads) is
/// scanned comparing lengths first, so only a key of the same length is compared byte for byte: a search of the
/// sorted map compares every key on its way in order (a call to `memcmp` each).
fn field<'v>(fields: &'v serde_json::Map<String, Value>, name: &str) -> Option<&'v Value> {
    const SCANNED: usize = 16;
    if fields.len() > SCANNED {
        return fields.get(name);
    }
    fields.iter().find(|(key, _)| key.len() == name.len() && key.as_bytes() == name.as_bytes()).map(|(_, value)| value)
}

/// An array index as RFC 6901 writes it: decimal digits, no sign, no leading zero (serde_json's rule).
fn array_index(token: &str) -> Option<usize> {
    if token.starts_with('+') || (token.starts_with('0') && token.len() != 1) {
        return None;
    }
    token.parse().ok()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn finds_what_value_pointer_finds() {
        let value = json!({
            "metadata": {"labels": {"sei.io/revision": "abc", "a~b": "tilde"}, "generation": 3},
            "list": [{"name": "zero"}, {"name": "one"}],
            "": {"": "empty keys"},
        });
        let pointers = [
            "",
            "/",
            "//",
            "/metadata",
            "/metadata/generation",
            "/metadata/labels/sei.io~1revision",
            "/metadata/labels/a~0b",
            "/metadata/missing",
            "/list/0/name",
            "/list/1/name",
            "/list/2/name",
            "/list/01/name",
            "/list/+1/name",
            "/list/-1/name",
            "/list/name",
            "/metadata/generation/deeper",
            "metadata",
            "/metadata/",
            "/metadata/labels/",
            "/list/0/",
            "/~",
            "/list/1/name~",
        ];
        for pointer in pointers {
            assert_eq!(value.at(pointer), value.pointer(pointer), "{pointer:?}");
        }
        for name in ["generation", "labels", "missing", ""] {
            assert_eq!(value.metadata_field(name), value.pointer(&format!("/metadata/{name}")), "{name:?}");
        }
        // An object with more fields than the scan takes is searched instead: the same answers.
        let wide: serde_json::Map<String, Value> = (0..40).map(|i| (format!("field-{i}"), json!(i))).collect();
        let wide = json!({"metadata": wide});
        for name in ["field-0", "field-17", "field-39", "field-40", "field-"] {
            assert_eq!(wide.metadata_field(name), wide.pointer(&format!("/metadata/{name}")), "{name:?}");
            assert_eq!(wide.at(&format!("/metadata/{name}")), wide.pointer(&format!("/metadata/{name}")), "{name:?}");
        }
        assert_eq!(json!({"metadata": 1}).metadata_field("name"), None);
        assert_eq!(json!([1]).metadata_field("name"), None);
        assert_eq!(value.at("/list/1/name"), Some(&json!("one")));
        assert_eq!(value.at("//"), Some(&json!("empty keys")));
    }
}
