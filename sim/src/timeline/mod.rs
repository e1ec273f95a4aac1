//! The picture of a scenario run: [`record`] watches the run (a scenario [`Observer`](crate::scenario::Observer))
//! and keeps what changed, as plain data; [`svg`] draws that data as a self-contained SVG timeline — a lane per
//! SeiNode and per SeiNodeDeployment, the chain's height, and the steps and faults of the scenario.

pub mod record;
pub mod svg;

pub use record::{Recorder, Timeline};
pub use svg::render;

#[cfg(test)]
mod tests;
