//! The production side of the operator: the kube-rs backend of [`Cluster`](crate::cluster::Cluster), the reqwest
//! backend of [`Sidecar`](crate::sidecar::Sidecar), the system clock, and the `sei-operator run` command that
//! drives the reconcilers from kube-runtime watches with leader election, metrics and health endpoints.
//!
//! Nothing here decides anything about rollouts: the controllers in [`crate::controller`] do, through the traits.

pub mod caches;
pub mod clock;
pub mod health;
pub mod http_sidecar;
pub mod kube_cluster;
pub mod kube_error;
pub mod logging;
pub mod metrics;
pub mod plan_timing;
pub mod run;
pub mod serve;

pub use clock::SystemClock;
pub use http_sidecar::{HttpSidecar, HttpSidecarConfig};
pub use kube_cluster::KubeCluster;
pub use metrics::Metrics;
