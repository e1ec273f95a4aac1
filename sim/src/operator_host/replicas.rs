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

use std::cell::Cell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use sei_operator_core::leader::{Attempt, Elector, LeaseConfig, LeaseName};
use tokio::sync::Notify;

use crate::harness::state::{SharedWorld, WorldState, lock};
use crate::harness::trace::Category;
use crate::operator_host::cluster::{ClientKind, SimCluster};

/// Where the Lease lives: the operator's namespace in `deploy/` (its Role grants leases there) and its default
/// name (`sei-operator run --lease-name`).
pub const LEASE_NAMESPACE: &str = "sei-operator";
pub const LEASE_NAME: &str = "sei-operator";

/// The host (and Lease identity) of replica `index`.
pub fn host_name(index: usize) -> String {
    if index == 0 {
        crate::harness::world::OPERATOR_HOST.to_owned()
    } else {
        format!("{}-{index}", crate::harness::world::OPERATOR_HOST)
    }
}

/// The replica a sidecar caller tag (`operator:SeiNode`, `operator-1:SeiNode`) belongs to.
pub fn replica_of_caller(caller: &str) -> Option<usize> {
    let host = caller.split(':').next()?;
    if host == crate::harness::world::OPERATOR_HOST {
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

/// Whether replica `index`'s process is dead or leaving: none of its tasks gets another call through.
pub fn dead(world: &WorldState, index: usize) -> bool {
    (index == 0 && world.operator.crash_requested)
        || world.replicas.get(index).is_some_and(|r| r.crash_requested || r.deposed)
}

/// Waits while replica `index` is paused (no-op in a world of one replica).
pub async fn wait_while_paused(shared: &SharedWorld, index: usize) {
    loop {
        let left = {
            let world = lock(shared);
            let until = world.replicas.get(index).and_then(|r| r.paused_until);
            until.map(|until| until.saturating_sub(world.now)).filter(|left| !left.is_zero())
        };
        match left {
            Some(left) => tokio::time::sleep(left).await,
            None => return,
        }
    }
}

/// The sequence number of a uid the store assigned (`00000000-0000-4000-8000-<12 hex digits>`).
pub fn uid_sequence(uid: &str) -> Option<u64> {
    u64::from_str_radix(uid.rsplit('-').next()?, 16).ok()
}

/// A replica's leadership as its reconcile loop sees it: set by its lease loop, read before every reconcile
/// starts. In the host's memory: stale while the host is paused.
#[derive(Clone)]
pub struct Gate {
    pub index: usize,
    pub leading: Rc<Cell<bool>>,
    pub changed: Rc<Notify>,
}

/// The replica's lease loop, production's (`backend/run/leader.rs`) on the simulated clock: try every retry
/// period; once leading, renew every retry period and, when the renewal has not succeeded within the renew
/// deadline or another holder is read, stop: the process exits (the world restarts it as a standby).
pub async fn lease_loop(shared: SharedWorld, gate: Gate) {
    let index = gate.index;
    let identity = host_name(index);
    let cluster = SimCluster::new(shared.clone(), ClientKind::Operator).for_replica(index).for_elector();
    let name = LeaseName { namespace: LEASE_NAMESPACE.into(), name: LEASE_NAME.into() };
    let mut elector = Elector::new(name, identity.clone(), LeaseConfig::PRODUCTION);
    let config = elector.config;
    // What the last failed attempt met, for the trace line that ends a term.
    let mut last_error: Option<String> = None;
    loop {
        wait_while_paused(&shared, index).await;
        let (local, wall) = {
            let world = lock(&shared);
            (world.now, world.timestamp())
        };
        // Production's renewal loop gives the attempt only the time left before the renew deadline
        // (`backend/run/leader.rs`, `tokio::time::timeout(left, ..)`): a leader waking past it (a pause) stops
        // leading without another attempt.
        let attempt = if gate.leading.get() && !elector.is_leading(local) {
            Ok(Attempt::Leading)
        } else {
            elector.try_acquire_or_renew(&cluster, local, wall).await
        };
        let now = lock(&shared).now;
        let leading = elector.is_leading(now);
        if leading && !gate.leading.get() {
            lock(&shared)
                .record(Category::Operator, format!("{identity} leads (Lease {LEASE_NAMESPACE}/{LEASE_NAME})"));
            gate.leading.set(true);
            gate.changed.notify_one();
        } else if !leading && gate.leading.get() {
            let why = match (&attempt, &last_error) {
                (Ok(Attempt::StandingBy { holder }), _) => format!("{holder} holds the Lease"),
                (Err(error), _) => format!("no renewal within the renew deadline: {error}"),
                (Ok(Attempt::Leading), Some(error)) => {
                    format!("no renewal within the renew deadline: {error}")
                }
                (Ok(Attempt::Leading), None) => "the renew deadline passed".to_owned(),
            };
            {
                let mut world = lock(&shared);
                world.record(Category::Operator, format!("{identity} lost the Lease ({why}); exiting"));
                if let Some(replica) = world.replicas.get_mut(index) {
                    replica.deposed = true;
                }
            }
            std::future::pending::<()>().await;
        }
        last_error = attempt.err().map(|error| error.to_string());
        tokio::time::sleep(config.retry_period).await;
    }
}

/// Leader election's invariant: no replica's writes undo another term's work — the deposed leader's calls that
/// land after it lost the Lease included. Judged at the moment of each write of a world with replicas:
/// - a delete by a replica whose term has ended must not remove an object made after it ended (it cannot have
///   meant that one: it lost the Lease before the object existed);
/// - no uid is deleted by two replicas (each believing it was its work to do).
pub const NOTHING_DELETED_TWICE: &str = "nothing-deleted-twice";
/// No two replicas store different plans for one rollout (deployment uid, target, strategy): the plan id derives
/// from them, so the standby that takes over carries the deposed leader's plan on.
pub const NO_PLAN_FORKED: &str = "no-plan-forked";

/// A write of replica `index` landed (`value`: the object stored, `Null` for a delete; `before`: the uid of the
/// object a delete removed). Checks the invariants above and follows the Lease's holder.
pub fn on_write(
    world: &mut WorldState,
    index: usize,
    key: &sei_operator_core::cluster::ObjectRef,
    verb: &str,
    value: &serde_json::Value,
    before: Option<&str>,
) {
    use crate::harness::ledger::InvariantViolation;
    let violation = match (key.kind.as_str(), verb) {
        ("Lease", _) => {
            let holder = value.pointer("/spec/holderIdentity").and_then(serde_json::Value::as_str).map(str::to_owned);
            if world.replicas.holder != holder {
                if let Some(previous) = world.replicas.holder.as_deref().and_then(replica_of_caller) {
                    let last = world.api.store.last_uid();
                    world.replicas.term_ended.insert(previous, last);
                }
                if let Some(next) = holder.as_deref().and_then(replica_of_caller) {
                    world.replicas.term_ended.remove(&next);
                }
                world.replicas.holder = holder;
            }
            None
        }
        (_, "delete") => before
            .and_then(|uid| {
                let late = world
                    .replicas
                    .term_ended
                    .get(&index)
                    .is_some_and(|ended| uid_sequence(uid).is_some_and(|s| s > *ended));
                let first = *world.replicas.deleted.entry(uid.to_owned()).or_insert(index);
                if late {
                    Some(format!("{} deleted {key} (uid {uid}), made after its term ended", host_name(index)))
                } else if first != index {
                    Some(format!(
                        "{} deleted {key} (uid {uid}), which {} had deleted",
                        host_name(index),
                        host_name(first)
                    ))
                } else {
                    None
                }
            })
            .map(|text| InvariantViolation::new(NOTHING_DELETED_TWICE, text)),
        ("SeiNodeDeployment", "replace-status") => {
            let text = |p: &str| value.pointer(p).and_then(serde_json::Value::as_str).map(str::to_owned);
            let rollout = value
                .pointer("/status/rollout")
                .and_then(|r| <sei_operator_core::api::RolloutStatus as serde::Deserialize>::deserialize(r).ok());
            match (text("/metadata/uid"), rollout, text("/status/plan/id")) {
                (Some(uid), Some(rollout), Some(plan)) => {
                    let rollout_key = (uid, rollout.plan_target(), rollout.strategy.to_string());
                    let (first, by) = world.replicas.plans.entry(rollout_key).or_insert((plan.clone(), index)).clone();
                    (first != plan && by != index).then(|| {
                        InvariantViolation::new(
                            NO_PLAN_FORKED,
                            format!(
                                "{} stored plan {plan} for {key}'s rollout, whose plan {} stored as {first}",
                                host_name(index),
                                host_name(by)
                            ),
                        )
                    })
                }
                _ => None,
            }
        }
        _ => None,
    };
    if let Some(violation) = violation {
        world.ledger.write_violations.push(violation);
    }
}
