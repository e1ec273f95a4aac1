//! The host's work queue (kube-runtime's scheduler, deterministically) and its trigger filters.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use sei_operator_core::cluster::ObjectRef;
use sei_operator_core::controller::triggers::TriggerFilter;

use crate::apiserver::store::{ChangeType, TriggerFingerprints};

/// A watch event to deliver: the object, its controller owner (kind, name), and what to judge it by (`None`: an
/// object delivered on heal, with no event).
pub(super) type Delivery = (ObjectRef, Option<(String, String)>, Option<(ChangeType, TriggerFingerprints)>);

/// The last fingerprints the host's watch saw, per object: one filter for waking the object's own controller,
/// one for waking its owner's (two kube-runtime controllers, each with its own trigger stream). In the host's
/// memory: a restarted operator starts with none, and every first event wakes, as after production's relist.
#[derive(Default)]
pub(super) struct Triggers {
    itself: TriggerFilter<ObjectRef>,
    owner: TriggerFilter<ObjectRef>,
}

impl Triggers {
    /// Whether a delivered event wakes the object's own controller and its owner's. `None`: no event to judge
    /// (an object delivered on heal, as a relist would), which wakes both.
    pub(super) fn judge(
        &mut self,
        object: &ObjectRef,
        change: Option<(ChangeType, TriggerFingerprints)>,
    ) -> (bool, bool) {
        match change {
            None => (true, true),
            Some((ChangeType::Deleted, _)) => {
                self.itself.forget(object);
                self.owner.forget(object);
                (true, true)
            }
            Some((_, fingerprints)) => (
                self.itself.admit(object.clone(), fingerprints.itself),
                self.owner.admit(object.clone(), fingerprints.owner),
            ),
        }
    }
}

/// kube-runtime's scheduler, deterministically: each key at most once in the queue, at its earliest due time;
/// ties in due time go in insertion order.
#[derive(Default)]
pub struct WorkQueue {
    due: BTreeMap<ObjectRef, (Duration, u64)>,
    order: BTreeSet<(Duration, u64, ObjectRef)>,
    sequence: u64,
}

impl WorkQueue {
    /// Schedules `key` at `at`, unless it is already due earlier.
    pub fn schedule(&mut self, key: ObjectRef, at: Duration) {
        if let Some((existing, sequence)) = self.due.get(&key).copied() {
            if existing <= at {
                return;
            }
            self.order.remove(&(existing, sequence, key.clone()));
        }
        self.sequence += 1;
        self.due.insert(key.clone(), (at, self.sequence));
        self.order.insert((at, self.sequence, key));
    }

    /// The first key due at or before `now`.
    pub fn pop_due(&mut self, now: Duration) -> Option<ObjectRef> {
        let first = self.order.first().filter(|(at, _, _)| *at <= now)?.clone();
        self.order.remove(&first);
        self.due.remove(&first.2);
        Some(first.2)
    }

    pub fn next_due(&self) -> Option<Duration> {
        self.order.first().map(|(at, _, _)| *at)
    }

    pub fn len(&self) -> usize {
        self.due.len()
    }

    pub fn is_empty(&self) -> bool {
        self.due.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> ObjectRef {
        ObjectRef::new("SeiNode", "ns", name)
    }

    #[test]
    fn a_key_is_queued_once_at_its_earliest_time() {
        let mut queue = WorkQueue::default();
        queue.schedule(key("a"), Duration::from_secs(10));
        queue.schedule(key("a"), Duration::from_secs(20));
        queue.schedule(key("b"), Duration::from_secs(5));
        queue.schedule(key("a"), Duration::from_secs(1));
        assert_eq!(queue.len(), 2);
        assert_eq!(queue.pop_due(Duration::from_secs(0)), None);
        assert_eq!(queue.pop_due(Duration::from_secs(30)), Some(key("a")));
        assert_eq!(queue.pop_due(Duration::from_secs(30)), Some(key("b")));
        assert!(queue.is_empty());
    }
}
