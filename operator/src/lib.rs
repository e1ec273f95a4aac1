//! The Sei operator: custom resources for Sei nodes and node fleets, and the controllers that run them and roll
//! new node binaries out safely.
//!
//! - [`api`]: the `SeiNode` and `SeiNodeDeployment` types (the wire format and the CRD schema's source).
//! - [`crd`]: the CustomResourceDefinitions generated from those types.
//! - [`manifest`]: reading manifests and validating them as the API server would (schema and CEL rules).

pub mod api;
pub mod crd;
pub mod manifest;
