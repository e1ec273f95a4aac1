//! What runs on and for a Sei node: the chain and its upgrade rules ([`chain`]), the image registry
//! ([`registry`]), seid's binary rules ([`seid`]), the sidecar (seictl) as a process, an HTTP server on its
//! worker host and the operator's client to it ([`sidecar`]), the worker hosts ([`worker`]) and pod DNS
//! ([`resolver`]).

pub mod chain;
pub mod registry;
pub mod resolver;
pub mod seid;
pub mod sidecar;
pub mod worker;
