//! The world's trace: one line per API write, event, sidecar call, pod transition and chain milestone, stamped
//! with simulated time. Same seed, same bytes: the determinism test compares traces byte for byte, and a failed
//! invariant prints the tail.

use std::fmt;
use std::time::Duration;

/// What a trace line is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Category {
    /// A write to the API store (create, replace, status, delete, garbage collection).
    Write,
    /// A Kubernetes Event.
    Event,
    /// A request to a sidecar or seid.
    Sidecar,
    /// A pod or container transition.
    Pod,
    /// A chain milestone (an upgrade panic, a halt, a snapshot restore).
    Chain,
    /// An injected fault.
    Fault,
    /// The operator host: starts, crashes, reconciles.
    Operator,
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Category::Write => "write",
            Category::Event => "event",
            Category::Sidecar => "sidecar",
            Category::Pod => "pod",
            Category::Chain => "chain",
            Category::Fault => "fault",
            Category::Operator => "operator",
        };
        f.pad(name)
    }
}

/// The trace of one run.
#[derive(Clone, Debug, Default)]
pub struct Trace {
    lines: Vec<String>,
}

impl Trace {
    /// Appends a line at simulated time `now`.
    pub fn record(&mut self, now: Duration, category: Category, text: impl fmt::Display) {
        self.lines.push(format!("{:>6}.{:03}s {category:<8} {text}", now.as_secs(), now.subsec_millis()));
    }

    pub fn lines(&self) -> &[String] {
        &self.lines
    }

    /// The last `n` lines, joined.
    pub fn tail(&self, n: usize) -> String {
        self.lines[self.lines.len().saturating_sub(n)..].join("\n")
    }

    /// The whole trace as one text.
    pub fn text(&self) -> String {
        self.lines.join("\n")
    }
}
