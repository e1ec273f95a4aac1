//! `SimClock`: the [`Clock`] trait on simulated time — the pinned epoch plus the world's elapsed time.

use sei_operator_core::clock::{Clock, Timestamp};

use crate::state::{Shared, lock};

#[derive(Clone)]
pub struct SimClock {
    shared: Shared,
}

impl SimClock {
    pub fn new(shared: Shared) -> Self {
        SimClock { shared }
    }
}

impl Clock for SimClock {
    fn now(&self) -> Timestamp {
        lock(&self.shared).timestamp()
    }
}
