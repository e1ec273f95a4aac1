//! The simulated Kubernetes API server: the object store with its resourceVersions, conflicts, status
//! subresource, finalizers, garbage collection and watch log ([`store`]); admission of the built-in kinds as the
//! real server validates them ([`validation`]; the custom resources are admitted by the core's schema and CEL
//! rules); and RBAC as `deploy/` grants it ([`authorization`]).

pub mod authorization;
pub mod decoded;
pub mod faults;
pub mod json;
pub mod store;
pub mod validation;

use std::sync::Arc;
use std::time::Duration;

use std::collections::BTreeMap;
use tokio::sync::Notify;

use crate::apiserver::authorization::AuthorizationState;
use crate::apiserver::faults::ApiFaults;
use crate::apiserver::store::Store;

/// The API server's part of the world.
pub struct ApiServer {
    pub store: Store,
    /// Faults on the operator's calls: Conflicts, transient errors, lost responses, refusals.
    pub faults: ApiFaults,
    /// RBAC from `deploy/`, permissions revoked by a scenario, and what the operator was granted.
    pub authorization: AuthorizationState,
    /// Every request the operator's client sent the API server (`sei-sim bench --api-load`).
    pub requests: ApiRequests,
    /// When the store last changed (as seen at the start of a step): a lagging cache catches up once the
    /// store has been quiet for a while (see `SimCluster`).
    pub changed_at: Duration,
    /// Signalled on every store write: wakes the operator's watch.
    pub changed: Arc<Notify>,
}

/// The requests the operator's clients (every replica, their lease electors included) sent the API server, by
/// verb and kind: what a cached design is measured by. A read answered from the operator's cache is no request.
/// Counted when the call reaches the API server's handling (a call refused at every retry by a throttling API
/// server counts once, as the one call the reconcile made).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ApiRequests {
    /// (verb, kind) → requests. Verbs: get, list, create, update, update-status, delete, event.
    pub by_call: BTreeMap<(&'static str, String), u64>,
}

impl ApiRequests {
    pub fn count(&mut self, verb: &'static str, kind: &str) {
        *self.by_call.entry((verb, kind.to_owned())).or_default() += 1;
    }

    /// Reads (get, list) and writes (everything else, events included).
    pub fn reads_and_writes(&self) -> (u64, u64) {
        self.by_call.iter().fold((0, 0), |(reads, writes), ((verb, _), n)| {
            if matches!(*verb, "get" | "list") { (reads + n, writes) } else { (reads, writes + n) }
        })
    }

    /// What was sent since `earlier` (a snapshot of the same counter).
    pub fn since(&self, earlier: &ApiRequests) -> ApiRequests {
        let by_call = self
            .by_call
            .iter()
            .map(|(call, n)| (call.clone(), n - earlier.by_call.get(call).copied().unwrap_or(0)))
            .filter(|(_, n)| *n > 0)
            .collect();
        ApiRequests { by_call }
    }
}
