//! Shared set-up: replaying a scenario file, and the macro that names one test per file.

use std::path::Path;

/// The repository root (scenario files name fixtures relative to it).
pub fn repo_root() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Replays `scenarios/<file>` (its own seed, or `seed`) and panics with the failure, the seed and the trace tail.
pub fn replay(file: &str, seed: Option<u64>) {
    let path = repo_root().join("scenarios").join(file);
    let scenario = sei_sim::scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let outcome = sei_sim::scenario::run(&scenario, seed, &repo_root());
    if let Some(failure) = &outcome.failure {
        if let Some(trace_file) = std::env::var_os("SIM_TRACE_FILE") {
            let _ = std::fs::write(trace_file, outcome.trace.text());
        }
        panic!(
            "{file} (seed {}): {failure}\n--- trace tail ---\n{}\nreplay: cargo run -p sei-sim -- run scenarios/{file} --seed {}",
            outcome.seed,
            outcome.trace.tail(40),
            outcome.seed
        );
    }
    assert!(outcome.invariant_checks > 0, "{file}: invariants were never checked");
}

/// One named test per scenario file, and `FILES`, the files this module replays (so a test can prove every file
/// under `scenarios/` is replayed by some named test).
#[macro_export]
macro_rules! scenario_tests {
    ($($test:ident => $file:literal),* $(,)?) => {
        #[allow(dead_code)]
        pub const FILES: &[&str] = &[$($file),*];
        $(
            #[test]
            fn $test() {
                $crate::common::replay($file, None);
            }
        )*
    };
}
