//! The simulated Kubernetes API server: the object store with its resourceVersions, conflicts, status
//! subresource, finalizers, garbage collection and watch log ([`store`]); admission of the built-in kinds as the
//! real server validates them ([`validation`]; the custom resources are admitted by the core's schema and CEL
//! rules); and RBAC as `deploy/` grants it ([`authorization`]).

pub mod authorization;
pub mod store;
pub mod validation;
