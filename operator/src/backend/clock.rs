//! The production [`Clock`]: the system's wall clock.

use crate::clock::{Clock, Timestamp};

/// Reads the system clock.
///
/// This is the one place in production code allowed to read wall time: every controller decision that depends on
/// "now" (stall threshold, retry backoff, condition timestamps) goes through [`Clock`], so the simulator can replace
/// it with simulated time.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}
