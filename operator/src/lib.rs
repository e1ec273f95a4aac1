//! The `sei-operator` binary's library: the production backends of the core's three traits (kube-rs, reqwest, the
//! system clock) and `sei-operator run` ([`backend`]). Everything else is the core crate, `sei_operator_core`,
//! re-exported here so that `sei_operator::api` and the rest read as one crate to the binary and its tests.

pub use sei_operator_core::{
    api, api_retry, clock, cluster, controller, crd, leader, manifest, node_defaults, objects, permissions, plan,
    read_policy, readiness, rollout, sidecar, tasks,
};

pub mod backend;
