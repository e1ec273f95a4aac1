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

impl Category {
    fn name(self) -> &'static str {
        match self {
            Category::Write => "write",
            Category::Event => "event",
            Category::Sidecar => "sidecar",
            Category::Pod => "pod",
            Category::Chain => "chain",
            Category::Fault => "fault",
            Category::Operator => "operator",
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
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
        use fmt::Write;
        // `format!("{:>6}.{:03}s {category:<8} {text}")`, its padded fields written by hand: a trace line is
        // recorded for every write, request and transition, and the formatter's padding was most of its cost.
        let mut line = String::with_capacity(80);
        let mut digits = itoa::Buffer::new();
        let seconds = digits.format(now.as_secs());
        line.extend(std::iter::repeat_n(' ', 6usize.saturating_sub(seconds.len())));
        line.push_str(seconds);
        line.push('.');
        let millis = digits.format(now.subsec_millis());
        line.extend(std::iter::repeat_n('0', 3usize.saturating_sub(millis.len())));
        line.push_str(millis);
        line.push_str("s ");
        let name = category.name();
        line.push_str(name);
        line.extend(std::iter::repeat_n(' ', 8usize.saturating_sub(name.len())));
        line.push(' ');
        // Writing to a String cannot fail.
        let _ = write!(line, "{text}");
        self.lines.push(line);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_what_the_format_string_writes() {
        let categories = [
            Category::Write,
            Category::Event,
            Category::Sidecar,
            Category::Pod,
            Category::Chain,
            Category::Fault,
            Category::Operator,
        ];
        let times = [0, 1, 10, 999, 1_000, 5_250, 100_007, 999_999_999, 1_234_567_890, u64::from(u32::MAX) * 1_000];
        for (index, millis) in times.into_iter().enumerate() {
            let now = Duration::from_millis(millis);
            let category = categories[index % categories.len()];
            let mut trace = Trace::default();
            trace.record(now, category, format_args!("create Pod sei/{index}"));
            let expected =
                format!("{:>6}.{:03}s {category:<8} create Pod sei/{index}", now.as_secs(), now.subsec_millis());
            assert_eq!(trace.lines(), [expected]);
        }
    }
}
