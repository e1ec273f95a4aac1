//! The Kubernetes objects the operator builds, and how it names, labels and owns them.
//!
//! - [`meta`]: labels, owner references, selectors and conditions.
//! - [`names`]: the names of nodes, sets and their children.
//! - [`children`]: the child SeiNodes a deployment makes, with the spec each gets.
//! - [`workload`]: a node's StatefulSet, pod and Services.
//! - [`desired`]: each node's desired StatefulSet, kept until what it is built from changes.

pub mod children;
pub mod desired;
pub mod meta;
pub mod names;
pub mod workload;
