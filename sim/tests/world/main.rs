//! Tests of the simulated world alone (no operator controllers yet): the fake control plane, the chain, the
//! pods' servers, the operator host with trivial reconcilers, faults, invariants and determinism.

mod api_responses;
mod api_rules;
mod blind_spots;
mod chain;
mod common;
mod determinism;
mod invariants;
mod kubelet;
mod operator;
mod replicas;
mod sidecar;
mod statefulset;
mod toy;
