//! The deterministic simulator for the Sei operator: a fake Kubernetes cluster (API store, StatefulSet / Pod /
//! Job / PVC controllers), a fake chain and fake sidecars, all on turmoil's simulated clock and one seeded RNG.
//!
//! - [`world`]: the [`World`] facade — build ([`World::builder`]), apply and edit objects, run (`step`,
//!   `run_for`, `run_until`, `run_until_settled`), inject faults (`inject`, `crash_pod`, `partition`, ...), read
//!   the trace; every step checks the invariants and a failure names the invariant, the step, the seed and the
//!   trace tail.
//! - [`store`], [`cluster`]: the fake API server and `SimCluster`, the operator's `Cluster` trait on it.
//! - [`kube`]: the scheduler, the kubelet, and the StatefulSet, Job and PVC controllers.
//! - [`chain`], [`registry`], [`seid`]: the chain, the image registry, and seid's binary rules.
//! - [`sidecar`], [`resolver`], [`worker`]: the pods' HTTP servers on worker hosts, their DNS, and `SimSidecar`.
//! - [`controllers`]: the operator's real reconcilers plugged into the operator host.
//! - [`operator`], [`clock`]: the operator's host, work queue and [`operator::Reconciler`] trait; `SimClock`.
//! - [`faults`], [`invariants`], [`trace`]: what can go wrong, what must never, and what happened.
//! - [`scenario`]: scenario files — the YAML format and its loader.
//! - [`fuzz`]: generated runs judged by the invariants, liveness and a differential oracle.
//! - [`timeline`]: the picture of a scenario run (`sei-sim run --svg`).
//! - [`bench`]: the standard rollout and the suite `sei-sim bench` times.
//! - [`serve`]: `sei-sim serve`, the world in real time behind the Kubernetes API on loopback (the one module
//!   that reads the wall clock and runs threads).
//!
//! Determinism: no wall clock, no OS randomness, no threads; ordered maps only; tokio's `select!` is `biased`
//! (its RNG cannot be seeded under turmoil). The same seed gives the same trace, byte for byte.

pub mod aimed;
pub mod authorization;
pub mod bench;
pub mod chain;
pub mod clock;
pub mod cluster;
pub mod controllers;
pub mod fault_state;
pub mod fuzz;
pub mod invariants;
pub mod kube;
pub mod operator_host;
pub mod registry;
pub mod replicas;
pub mod resolver;
pub mod scenario;
pub mod seid;
pub mod serve;
pub mod sidecar;
pub mod state;
pub mod store;
pub mod timeline;
pub mod trace;
pub mod worker;
pub mod world;

pub use world::{SimError, World, WorldBuilder};
