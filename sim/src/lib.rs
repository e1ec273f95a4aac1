//! The deterministic simulator for the Sei operator: a fake Kubernetes cluster (API store, StatefulSet / Pod /
//! Job / PVC controllers), a fake chain and fake sidecars, all on turmoil's simulated clock and one seeded RNG.
//!
//! The folders are its layers, lowest first:
//!
//! - [`apiserver`]: the API server — the store, admission of the built-in kinds, RBAC.
//! - [`kube`]: the Kubernetes controllers — the scheduler, the kubelet, and the StatefulSet, Job and PVC
//!   controllers.
//! - [`node`]: the node's processes and what they run against — the chain, the image registry, seid's rules, the
//!   sidecar (process, server, client), the worker hosts and their DNS.
//! - [`operator_host`]: the operator's host — its work queue and watch, `SimCluster`, `SimClock`, replicas and the
//!   operator's real reconcilers plugged in.
//! - [`harness`]: the [`World`] facade and its state, faults, invariants and trace.
//! - The products: [`scenario`] files (format, loader, runner), [`fuzz`] (generated runs judged by the
//!   invariants, liveness and a differential oracle), [`timeline`] (the picture of a run, `sei-sim run --svg`) and
//!   [`bench`](mod@bench) (`sei-sim bench`), and [`serve`] (`sei-sim serve`: the world in real time behind the
//!   Kubernetes API on loopback — the one module that reads the wall clock and runs threads).
//!
//! Determinism: no wall clock, no OS randomness, no threads inside a world (`sei-sim run -j` runs whole worlds
//! side by side, one per thread, sharing only the compiled CRD validator); ordered maps wherever a map is iterated
//! (the two hashed ones, the store's index and the decoded objects, have a fixed seed and are only looked up in);
//! tokio's `select!` is `biased` (its RNG cannot be seeded under turmoil). The same seed gives the same trace, byte
//! for byte.

pub mod apiserver;
pub mod bench;
pub mod fuzz;
pub mod harness;
pub mod kube;
pub mod node;
pub mod operator_host;
pub mod scenario;
pub mod serve;
pub mod timeline;

pub use harness::world::{SimError, World, WorldBuilder};
