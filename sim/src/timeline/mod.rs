//! The picture of a scenario run: [`record`] watches the run (a scenario [`Observer`](crate::scenario::Observer))
//! and keeps what changed, as plain data.

pub mod record;

pub use record::{Recorder, Timeline};
