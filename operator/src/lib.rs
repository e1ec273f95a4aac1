//! The Sei operator: custom resources for Sei nodes and node fleets, and the controllers that run them and roll
//! new node binaries out safely.
//!
//! - [`api`]: the `SeiNode` and `SeiNodeDeployment` types (the wire format and the CRD schema's source).
//! - [`crd`]: the CustomResourceDefinitions generated from those types.
//! - [`manifest`]: reading manifests and validating them as the API server would (schema and CEL rules).
//! - [`meta`]: labels, owner references, selectors and conditions, shared with the simulator.
//! - [`cluster`], [`sidecar`], [`clock`]: the three traits through which all I/O goes.
//! - [`read_policy`]: which reads the watch caches answer and which go to the API server.
//! - [`backend`]: their production implementations (kube-rs, reqwest, system clock) and `sei-operator run`.

pub mod api;
pub mod backend;
pub mod children;
pub mod clock;
pub mod cluster;
pub mod controller;
pub mod crd;
pub mod leader;
pub mod manifest;
pub mod meta;
pub mod names;
pub mod node_defaults;
pub mod permissions;
pub mod plan;
pub mod read_policy;
pub mod readiness;
pub mod rollout;
pub mod sidecar;
pub mod tasks;
pub mod workload;
