//! Two (or more) operator replicas, as production deploys them: each a turmoil host with its own identity, API
//! client and memory, electing a leader through the Lease with the operator's own election code
//! (`sei_operator_core::leader`, the same `Elector` `sei-operator run` uses) on the simulated clock, and reconciling
//! only while it leads. Losing the Lease makes a replica exit and restart as a standby, as production's
//! `RunError::LostLeadership` does; the calls it had already sent still land (a Lease is not a fence).
//!
//! Replica 0 is the host `operator`; replica `i > 0` is `operator-<i>`. With one replica (the default) none of
//! this runs: the operator host is started as before, with no election, and runs byte for byte as it always did.
//!
//! Faults of one replica: a crash, its API calls failing for a while (a partition from the API server, which the
//! simulation reaches in-process rather than over a turmoil link), and a process pause: it runs nothing, its
//! calls in flight land, and it resumes with its stale memory, believing it leads until its lease loop runs.

use std::collections::BTreeMap;
use std::time::Duration;

mod election;
mod process;

pub use election::{Gate, lease_loop};
pub use process::{NO_PLAN_FORKED, NOTHING_DELETED_TWICE, dead, on_write, wait_while_paused};

/// The host name of the operator (of its first replica).
pub const OPERATOR_HOST: &str = "operator";

/// Where the Lease lives: the operator's namespace in `deploy/` (its Role grants leases there) and its default
/// name (`sei-operator run --lease-name`).
pub const LEASE_NAMESPACE: &str = "sei-operator";
pub const LEASE_NAME: &str = "sei-operator";

/// The host (and Lease identity) of replica `index`.
pub fn host_name(index: usize) -> String {
    if index == 0 { OPERATOR_HOST.to_owned() } else { format!("{}-{index}", OPERATOR_HOST) }
}

/// The replica a sidecar caller tag (`operator:SeiNode`, `operator-1:SeiNode`) belongs to.
pub fn replica_of_caller(caller: &str) -> Option<usize> {
    let host = caller.split(':').next()?;
    if host == OPERATOR_HOST {
        return Some(0);
    }
    host.strip_prefix("operator-")?.parse().ok()
}

/// What the world knows of one replica's process (not its memory, which lives on its host).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReplicaState {
    /// It runs nothing until then (simulated time).
    pub paused_until: Option<Duration>,
    /// Its API calls fail (Transient) until then: cut off from the API server.
    pub api_unreachable_until: Option<Duration>,
    /// It lost the Lease and is exiting: nothing more leaves it.
    pub deposed: bool,
    /// It reached an armed crash point (replicas other than 0; replica 0 uses `OperatorFaults::crash_requested`).
    pub crash_requested: bool,
    /// Crashed or exiting: restarted at the next step (not before `down_until`).
    pub down: bool,
    pub down_until: Option<Duration>,
}

/// The replicas of a world with more than one (empty otherwise), and what the leader-election invariants
/// remember.
#[derive(Clone, Debug, Default)]
pub struct Replicas {
    pub list: Vec<ReplicaState>,
    /// The Lease holder as last written.
    pub holder: Option<String>,
    /// Per replica whose term ended: the highest object uid sequence stored when it ended. An object with a
    /// higher one was created after that replica lost the Lease.
    pub term_ended: BTreeMap<usize, u64>,
    /// The replica that first deleted each uid successfully.
    pub deleted: BTreeMap<String, usize>,
    /// Per (deployment uid, rollout target, strategy): the plan id first stored beside it and the replica that
    /// stored it.
    pub plans: BTreeMap<(String, String, String), (String, usize)>,
}

impl Replicas {
    pub fn get(&self, index: usize) -> Option<&ReplicaState> {
        self.list.get(index)
    }

    pub fn get_mut(&mut self, index: usize) -> Option<&mut ReplicaState> {
        self.list.get_mut(index)
    }
}

/// The sequence number of a uid the store assigned (`00000000-0000-4000-8000-<12 hex digits>`).
pub fn uid_sequence(uid: &str) -> Option<u64> {
    u64::from_str_radix(uid.rsplit('-').next()?, 16).ok()
}
