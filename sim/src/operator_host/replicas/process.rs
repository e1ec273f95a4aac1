//! What the world knows of a replica's process as its calls meet it: whether it is dead or paused, and the
//! election invariants judged at each of its writes.

use super::*;
use crate::apiserver::json::Fields;
use crate::harness::state::{SharedWorld, WorldState, lock};

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
            let holder = value.at("/spec/holderIdentity").and_then(serde_json::Value::as_str).map(str::to_owned);
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
            let text = |p: &str| value.at(p).and_then(serde_json::Value::as_str).map(str::to_owned);
            let rollout = value
                .at("/status/rollout")
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
