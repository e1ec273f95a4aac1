//! The sample manifests under `fixtures/` against the generated CRDs, admitted as the API server would admit them
//! (OpenAPI schema, unknown fields, CEL rules evaluated by kube-rs' CEL engine, then the Rust types).
//!
//! Data-driven: every `fixtures/*.yaml` must be admitted; every `fixtures/invalid/NAME.yaml` must be rejected
//! with a message containing each line of `fixtures/invalid/NAME.expected`. A new file is a new case.

use std::path::{Path, PathBuf};

use sei_operator_core::manifest::{Manifest, ManifestError, ManifestValidator};

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    files.sort();
    files
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

#[test]
fn every_valid_fixture_is_admitted_and_survives_a_round_trip() {
    let validator = ManifestValidator::new().expect("the generated CRD schemas compile");
    let files = yaml_files(&fixtures_dir());
    assert!(files.len() >= 5, "expected the five sample manifests, found {files:?}");
    for path in files {
        let manifests = validator
            .admit_yaml(&read(&path))
            .unwrap_or_else(|e| panic!("{} should be valid, but: {e}", path.display()));
        assert!(!manifests.is_empty(), "{} holds no object", path.display());
        // What the operator writes back (the Rust types serialized) must be admitted too.
        for manifest in manifests {
            let written = match &manifest {
                Manifest::SeiNode(node) => serde_json::to_value(node),
                Manifest::SeiNodeDeployment(deployment) => serde_json::to_value(deployment),
            }
            .expect("serializes");
            let readmitted = validator
                .admit(&written)
                .unwrap_or_else(|e| panic!("{} re-serialized is rejected: {e}", path.display()));
            assert_eq!(readmitted, manifest, "{} changes on a round trip", path.display());
        }
    }
}

#[test]
fn every_invalid_fixture_is_rejected_for_its_reason() {
    let validator = ManifestValidator::new().expect("the generated CRD schemas compile");
    let files = yaml_files(&fixtures_dir().join("invalid"));
    assert!(files.len() >= 9, "expected one invalid manifest per rule, found {files:?}");
    for path in files {
        let expected_path = path.with_extension("expected");
        let expected = read(&expected_path);
        let lines: Vec<&str> = expected.lines().filter(|l| !l.trim().is_empty()).collect();
        assert!(!lines.is_empty(), "{} is empty", expected_path.display());

        let error = match validator.admit_yaml(&read(&path)) {
            Ok(_) => panic!("{} was admitted, but it is invalid", path.display()),
            Err(error) => error,
        };
        assert!(
            matches!(error, ManifestError::Invalid { .. }),
            "{} was rejected before validation: {error}",
            path.display()
        );
        let message = error.to_string();
        for line in lines {
            assert!(message.contains(line), "{}: the error does not say {line:?}; it says:\n{message}", path.display());
        }
    }
}

#[test]
fn objects_of_other_kinds_are_not_admitted() {
    let validator = ManifestValidator::new().expect("the generated CRD schemas compile");
    let error = validator
        .admit_yaml("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: x\n")
        .expect_err("a Deployment is not a Sei resource");
    assert!(matches!(error, ManifestError::UnsupportedKind { .. }), "{error}");
}

#[test]
fn broken_yaml_is_reported_as_yaml() {
    let validator = ManifestValidator::new().expect("the generated CRD schemas compile");
    let error = validator.admit_yaml("kind: [SeiNode\n").expect_err("unterminated flow sequence");
    assert!(matches!(error, ManifestError::Yaml(_)), "{error}");
}
