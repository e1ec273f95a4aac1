//! The rollout rules of SPEC §5 and the SeiNode image rule of SPEC §6, as pure functions over values.

pub mod hash;
