//! The harness that drives and judges a simulated run: the [`world`] facade (build, apply, step, inject faults),
//! the world's [`state`], faults as data ([`fault_state`]) and user edits aimed at the operator's moments
//! ([`aimed`]), what must never happen ([`invariants`]) and what did ([`ledger`], [`trace`]).

pub mod aimed;
pub mod fault_state;
pub mod invariants;
pub mod ledger;
pub mod state;
pub mod trace;
pub mod world;
