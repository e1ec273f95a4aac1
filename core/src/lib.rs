//! The Sei operator's core: custom resources for Sei nodes and node fleets, and the controllers that run them and
//! roll new node binaries out safely — everything but the production I/O, so that nothing here can reach the
//! network (`kube` with `derive` only; no client, runtime, TLS or HTTP). The `sei-operator` binary crate adds the
//! production backends; the simulator (`sei-sim`) depends on this crate alone. docs/design.md §1 maps the tree.
//!
//! - [`api`]: the `SeiNode` and `SeiNodeDeployment` types (the wire format and the CRD schema's source), and the
//!   template fields a rollout moves with their hash.
//! - [`crd`]: the CustomResourceDefinitions generated from those types.
//! - [`manifest`]: reading manifests and admitting them as the API server would (schema and CEL rules).
//! - [`cluster`], [`sidecar`], [`clock`]: the three traits through which all I/O goes.
//! - [`plan`], [`tasks`]: plans, their executor, and every task they run.
//! - [`rollout`]: a deployment's rollout rules; [`readiness`]: the Ready / Reconciling / Stalled summaries.
//! - [`controller`]: the two reconcilers, on the three traits; [`leader`]: the Lease protocol.
//! - [`objects`]: the Kubernetes objects the operator builds — their names, labels and owners, the child
//!   SeiNodes of a deployment, a node's pod.
//! - [`read_policy`]: which reads the watch caches answer and which go to the API server.
//! - [`node_defaults`], [`permissions`]: per-mode pod defaults; the RBAC each call needs.
//! - [`digest`]: the short SHA-256 digests that name a template, a config or an Event.

pub mod api;
pub mod api_retry;
pub mod clock;
pub mod cluster;
pub mod controller;
pub mod crd;
pub mod digest;
pub mod leader;
pub mod manifest;
pub mod node_defaults;
pub mod objects;
pub mod permissions;
pub mod plan;
pub mod read_policy;
pub mod readiness;
pub mod rollout;
pub mod sidecar;
pub mod tasks;
