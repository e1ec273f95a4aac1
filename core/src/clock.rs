//! The `Clock` trait: the only way controller code learns the time. Production reads the system clock; the
//! simulator reads turmoil's simulated clock from a pinned epoch, so runs replay byte for byte.

pub use k8s_openapi::jiff::{SignedDuration, Timestamp};

/// Where "now" comes from.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

impl<T: Clock> Clock for &T {
    fn now(&self) -> Timestamp {
        (**self).now()
    }
}
