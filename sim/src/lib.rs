//! The deterministic simulator for the Sei operator: a fake Kubernetes cluster (API store, StatefulSet / Pod /
//! Job controllers), a fake chain and fake sidecars, all on turmoil's simulated clock and one seeded RNG.

pub mod scenario;
