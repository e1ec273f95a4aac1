//! The Kubernetes objects the operator builds, and how it names, labels and owns them.
//!
//! - [`meta`]: labels, owner references, selectors and conditions.
//! - [`names`]: the names of nodes, sets and their children.
//! - [`children`]: the child SeiNodes a deployment makes, with the spec each gets.
//! - [`workload`]: a node's StatefulSet, pod and Services.

pub mod children;
pub mod meta;
pub mod names;
pub mod workload;
