//! The rollout rules of docs/design.md §5 and the SeiNode image rule of docs/design.md §6, as pure functions over values.

pub mod current_image;
pub mod gate;
pub mod phase;
pub mod rules;
pub mod strays;
pub mod vocabulary;

pub use current_image::{observed_current_image, observed_current_sidecar_image};
pub use rules::{Decision, Observed, RolloutConfig, evaluate, is_superseded};
pub use strays::stray_nodes;

#[cfg(test)]
mod tests;
