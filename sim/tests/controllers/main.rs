//! The operator's real controllers in the simulated world: each test a scenario, every invariant checked after
//! every step, and the outcome asserted.

mod bluegreen;
mod common;
mod hardfork;
mod inplace;
mod misc;
mod recovery;
