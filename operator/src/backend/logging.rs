//! Log output of `sei-operator run`: human-readable lines or JSON lines on stdout, filtered by target and level.
//! stdout keeps stderr free for the one-line reason a failed start prints.

use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Why logging could not start.
#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    #[error("invalid log filter {filter:?}: {reason} (expected e.g. `info` or `info,sei_operator=debug`)")]
    Filter { filter: String, reason: String },
    #[error("a global logger is installed already: {0}")]
    Install(String),
}

/// Installs the global subscriber. `filter` is a comma-separated list of `level` or `target=level`.
pub fn init(format: LogFormat, filter: &str) -> Result<(), LoggingError> {
    let targets: Targets = filter.parse().map_err(|error: tracing_subscriber::filter::ParseError| {
        LoggingError::Filter { filter: filter.to_owned(), reason: error.to_string() }
    })?;
    let registry = tracing_subscriber::registry().with(targets);
    let installed = match format {
        LogFormat::Text => {
            registry.with(tracing_subscriber::fmt::layer().with_writer(std::io::stdout).with_ansi(false)).try_init()
        }
        LogFormat::Json => registry
            .with(tracing_subscriber::fmt::layer().json().flatten_event(true).with_writer(std::io::stdout))
            .try_init(),
    };
    installed.map_err(|error| LoggingError::Install(error.to_string()))
}
