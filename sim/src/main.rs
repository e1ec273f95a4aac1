//! `sei-sim`: the simulator's command line (scenario runs, fuzzing, benchmarks). Not built yet.

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!("sei-sim: the simulator is not built yet; `cargo run -p sei-operator -- crds` is today's main job");
    ExitCode::FAILURE
}
