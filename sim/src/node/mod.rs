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

use std::collections::BTreeMap;
use std::time::Duration;

use crate::node::chain::Chain;
use crate::node::registry::ImageRegistry;

/// The chains' part of the world: every chain by id, the image registry, and chain milestones to trace.
#[derive(Debug, Default)]
pub struct Chains {
    pub by_id: BTreeMap<String, Chain>,
    /// The chain of pods whose node names none.
    pub default_id: String,
    pub registry: ImageRegistry,
    /// Chain milestones not yet reached, soonest last (popped as time passes).
    pub milestones: Vec<(Duration, String)>,
}

impl Chains {
    /// The chain `chain_id` names, or the default chain.
    pub fn chain_for(&self, chain_id: Option<&str>) -> Option<&Chain> {
        chain_id.and_then(|id| self.by_id.get(id)).or_else(|| self.by_id.get(&self.default_id))
    }
}
