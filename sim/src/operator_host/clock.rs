//! `SimClock`: the [`Clock`] trait on simulated time — the pinned epoch plus the world's elapsed time.

use sei_operator_core::clock::{Clock, Timestamp};

use crate::harness::state::{SharedWorld, lock};

#[derive(Clone)]
pub struct SimClock {
    shared: SharedWorld,
}

impl SimClock {
    pub fn new(shared: SharedWorld) -> Self {
        SimClock { shared }
    }
}

impl Clock for SimClock {
    fn now(&self) -> Timestamp {
        lock(&self.shared).timestamp()
    }
}
