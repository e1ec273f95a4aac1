//! The deterministic simulator for the Sei operator: a fake Kubernetes cluster (API store, StatefulSet / Pod /
//! Job / PVC controllers), a fake chain and fake sidecars, all on turmoil's simulated clock and one seeded RNG.
//!
//! - [`world`]: the [`World`] facade — build, apply objects, run, inject faults, read the trace.
//! - [`store`], [`cluster`]: the fake API server and the `Cluster` trait on it.
//! - [`kube`]: the kubelet and the StatefulSet, Job and PVC controllers.
//! - [`chain`], [`registry`], [`seid`]: the chain, the image registry, and seid's binary rules.
//! - [`sidecar`], [`resolver`], [`worker`]: the pods' HTTP servers on worker hosts, their DNS, and the client.
//! - [`operator`], [`clock`]: the operator's host, work queue and `Reconciler` trait; the simulated clock.
//! - [`faults`], [`invariants`], [`trace`]: what can go wrong, what must never, and what happened.

pub mod bench;
pub mod chain;
pub mod clock;
pub mod cluster;
pub mod faults;
pub mod invariants;
pub mod kube;
pub mod operator;
pub mod registry;
pub mod resolver;
pub mod seid;
pub mod sidecar;
pub mod state;
pub mod store;
pub mod trace;
pub mod worker;
pub mod world;

pub use world::{SimError, World, WorldBuilder};
