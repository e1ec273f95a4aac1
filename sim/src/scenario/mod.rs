//! Scenarios: YAML files describing a world, a timeline of steps and expectations, replayed by the simulator.

pub mod end_state;
mod expect;
pub mod format;
pub mod runner;

use std::path::Path;

pub use format::Scenario;
pub(crate) use format::optional_duration;
pub(crate) use runner::set_path;
pub use runner::{NoObserver, Observer, Outcome, run, run_observed};

/// A scenario file that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("{path}: {message}")]
    Read { path: String, message: String },
    /// The YAML parser's message names the line, column and field.
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
}

/// Parses scenario text; `origin` names it in errors (a file path).
pub fn parse(origin: &str, text: &str) -> Result<Scenario, ScenarioError> {
    serde_saphyr::from_str(text).map_err(|e| ScenarioError::Parse { path: origin.to_owned(), message: e.to_string() })
}

/// Reads and parses a scenario file.
pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| ScenarioError::Read { path: origin.clone(), message: e.to_string() })?;
    parse(&origin, &text)
}

#[cfg(test)]
mod tests;
