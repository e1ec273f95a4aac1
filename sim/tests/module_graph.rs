//! The simulator's modules import each other without a circle: the world's state is a composition of the
//! layers' data (the API server's, the control plane's, the chains', the ledger), and the layers' steps import
//! the state, never the other way round. A circle is how a data type starts to depend on a behaviour that takes
//! the whole world, which is how the state grew into one struct every module took `&mut`.
//!
//! A module's imports are the `crate::…` paths its code names (comments and `#[cfg(test)]` code aside), resolved
//! to the longest path that is a module file, and the `super::<sibling>` paths. A module and its parent may refer
//! to each other (a folder's `mod.rs` declares and re-exports its files, which use its types): that is the tree,
//! not a circle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn source_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `dir`, as its module path (`kube/pod`, `harness/world` for `harness/world/mod.rs`).
fn modules(root: &Path, dir: &Path, out: &mut BTreeMap<String, PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).expect("read sim/src").map(|e| e.expect("entry").path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            modules(root, &path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let relative = path.strip_prefix(root).expect("under root").with_extension("");
            let name = relative.to_string_lossy().replace('\\', "/");
            let name = name.strip_suffix("/mod").unwrap_or(&name).to_owned();
            if name == "lib" || name == "main" || name.ends_with("tests") {
                continue;
            }
            out.insert(name, path);
        }
    }
}

/// The code of a file without comments and without its `#[cfg(test)]` tail.
fn code(text: &str) -> String {
    let text = text.split("#[cfg(test)]").next().unwrap_or_default();
    text.lines().map(|line| line.split("//").next().unwrap_or_default()).collect::<Vec<_>>().join("\n")
}

fn is_path_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// The modules `module`'s code names.
fn imports(module: &str, text: &str, known: &BTreeMap<String, PathBuf>) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let parent = module.rsplit_once('/').map_or("", |(parent, _)| parent);
    for (prefix, base) in [("crate::", String::new()), ("super::", parent.to_owned())] {
        for (start, _) in text.match_indices(prefix) {
            if text[..start].ends_with(is_path_char) {
                continue;
            }
            let rest: String = text[start + prefix.len()..].chars().take_while(|c| is_path_char(*c)).collect();
            let segments: Vec<&str> = rest.split("::").filter(|s| !s.is_empty()).collect();
            for len in (1..=segments.len()).rev() {
                let path = segments[..len].join("/");
                let candidate = if base.is_empty() { path } else { format!("{base}/{path}") };
                if known.contains_key(&candidate) {
                    found.insert(candidate);
                    break;
                }
            }
        }
    }
    found.remove(module);
    // A module and its ancestors are the tree, not an import.
    found.retain(|other| !module.starts_with(&format!("{other}/")) && !other.starts_with(&format!("{module}/")));
    found
}

/// A circle in `graph`, if there is one: the modules along it, the first repeated at the end.
fn find_circle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut circle = path[at..].to_vec();
            circle.push(node.to_owned());
            return Some(circle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(circle) = visit(next, graph, path, done) {
                return Some(circle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph.keys().find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let root = source_root();
    let mut known = BTreeMap::new();
    modules(&root, &root, &mut known);
    known
        .iter()
        .map(|(module, path)| {
            let text = std::fs::read_to_string(path).expect("read a module");
            (module.clone(), imports(module, &code(&text), &known))
        })
        .collect()
}

#[test]
fn the_simulator_has_no_import_circle() {
    let graph = graph();
    assert!(graph.len() > 40, "the walk found the modules: {:?}", graph.keys().collect::<Vec<_>>());
    if let Some(circle) = find_circle(&graph) {
        panic!("an import circle: {}", circle.join(" -> "));
    }
}

#[test]
fn the_state_is_composed_of_data_only() {
    // What the state may import: the parts' data, never a layer's steps.
    let graph = graph();
    let state = &graph["harness/state"];
    for step in ["kube", "kube/kubelet", "kube/statefulset", "harness/invariants", "harness/world", "operator_host"] {
        assert!(!state.contains(step), "harness/state imports {step}: {state:?}");
    }
    assert!(
        state.contains("kube/plane") && state.contains("apiserver") && state.contains("harness/ledger"),
        "{state:?}"
    );
}

#[test]
fn the_check_finds_a_circle() {
    let edges = [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")];
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (from, to) in edges {
        graph.entry(from.to_owned()).or_default().insert(to.to_owned());
    }
    assert_eq!(find_circle(&graph), Some(vec!["a".into(), "b".into(), "c".into(), "a".into()]));
    graph.get_mut("c").expect("c").remove("a");
    assert_eq!(find_circle(&graph), None);
}
