//! Every scenario file under `scenarios/` replays green: its expectations met, no invariant violated. A new file
//! is a new case.

use std::path::{Path, PathBuf};

use sei_sim::scenario;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn every_scenario_file_replays_green() {
    let dir = root().join("scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("scenarios/ exists")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no scenario files in {}", dir.display());
    let mut failures = Vec::new();
    for file in files {
        let scenario = scenario::load(&file).unwrap_or_else(|e| panic!("{e}"));
        let outcome = scenario::run(&scenario, None, &root());
        if let Some(failure) = outcome.failure {
            failures.push(format!(
                "{} (seed {}): {failure}\n--- trace tail ---\n{}",
                file.display(),
                outcome.seed,
                outcome.trace.tail(30)
            ));
        }
        assert!(outcome.invariant_checks > 0, "{}: invariants were never checked", file.display());
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn the_same_seed_replays_the_same_trace_byte_for_byte() {
    let file = root().join("scenarios/inplace-happy-path.yaml");
    let scenario = scenario::load(&file).expect("loads");
    let first = scenario::run(&scenario, None, &root());
    let second = scenario::run(&scenario, None, &root());
    assert!(first.passed() && second.passed());
    assert_eq!(first.trace.text(), second.trace.text());
    let other = scenario::run(&scenario, Some(scenario.seed + 1), &root());
    assert_ne!(first.trace.text(), other.trace.text(), "another seed explores another interleaving");
}
