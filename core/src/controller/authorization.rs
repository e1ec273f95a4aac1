//! A 403 is not transient: the operator's ServiceAccount lacks a permission, and only an RBAC edit helps. Every
//! reconcile's API calls go through [`Watched`], which remembers the first 403 any of them got, whatever the code
//! that made the call did with it (a plan task waits it out, a reconcile step returns it). After the reconcile,
//! [`report`] puts it on the reconciled object: an `Authorized=False` condition (reason `Forbidden`) and one
//! Warning event, both quoting the API server's message, which names the user, verb, resource and namespace
//! (kubernetes/kubernetes `staging/src/k8s.io/apiserver/pkg/endpoints/handlers/responsewriters/errors.go`,
//! `ForbiddenStatusError`). The condition is present only while it holds: a reconcile that runs through without a
//! 403 removes it.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

use super::{Action, ReconcileError};
use crate::api::{SeiNode, SeiNodeDeployment};
use crate::clock::Timestamp;
use crate::cluster::{Cluster, ClusterError, ClusterObject, Event, LabelSelector, ObjectRef};
use crate::objects::meta::{ConditionUpdate, find_condition, set_condition};

/// Condition on a SeiNode or SeiNodeDeployment, present (False) only while a reconcile of it gets 403.
pub const AUTHORIZED: &str = "Authorized";
/// Authorized reason, and the reason of its Warning event.
pub const REASON_FORBIDDEN: &str = "Forbidden";

/// A successful reconcile that met a 403 (a plan task that waits it out) is looked at again no later than this,
/// the first delay [`ReconcileError::retry_after`] gives a Forbidden error.
const FORBIDDEN_RECHECK: Duration = Duration::from_secs(30);

/// A [`Cluster`] that remembers the API server's message of the first 403 a call through it got.
pub struct Watched<'a, C> {
    inner: &'a C,
    forbidden: Mutex<Option<String>>,
}

impl<'a, C: Cluster> Watched<'a, C> {
    pub fn new(inner: &'a C) -> Self {
        Watched { inner, forbidden: Mutex::new(None) }
    }

    /// The message of the first 403, if a call got one.
    pub fn forbidden(&self) -> Option<String> {
        self.forbidden.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn note<T>(&self, result: Result<T, ClusterError>) -> Result<T, ClusterError> {
        if let Err(ClusterError::Forbidden { message, .. }) = &result {
            self.forbidden.lock().unwrap_or_else(PoisonError::into_inner).get_or_insert_with(|| message.clone());
        }
        result
    }
}

impl<C: Cluster> Cluster for Watched<'_, C> {
    async fn get<K: ClusterObject>(&self, namespace: &str, name: &str) -> Result<K, ClusterError> {
        self.note(self.inner.get(namespace, name).await)
    }

    async fn get_shared<K: ClusterObject>(&self, namespace: &str, name: &str) -> Result<Arc<K>, ClusterError> {
        self.note(self.inner.get_shared(namespace, name).await)
    }

    async fn list<K: ClusterObject>(
        &self,
        namespace: &str,
        selector: &LabelSelector,
    ) -> Result<Vec<Arc<K>>, ClusterError> {
        self.note(self.inner.list(namespace, selector).await)
    }

    async fn get_fresh<K: ClusterObject>(&self, namespace: &str, name: &str) -> Result<K, ClusterError> {
        self.note(self.inner.get_fresh(namespace, name).await)
    }

    async fn create<K: ClusterObject>(&self, object: &K) -> Result<Arc<K>, ClusterError> {
        self.note(self.inner.create(object).await)
    }

    async fn replace<K: ClusterObject>(&self, object: &K) -> Result<Arc<K>, ClusterError> {
        self.note(self.inner.replace(object).await)
    }

    async fn replace_status<K: ClusterObject>(&self, object: &K) -> Result<Arc<K>, ClusterError> {
        self.note(self.inner.replace_status(object).await)
    }

    async fn delete<K: ClusterObject>(&self, namespace: &str, name: &str) -> Result<(), ClusterError> {
        self.note(self.inner.delete::<K>(namespace, name).await)
    }

    async fn emit_event(&self, event: &Event) -> Result<(), ClusterError> {
        self.note(self.inner.emit_event(event).await)
    }
}

/// An object whose status carries conditions: what [`report`] writes to.
pub trait WithConditions: ClusterObject {
    fn conditions(&self) -> &[Condition];
    fn conditions_mut(&mut self) -> &mut Vec<Condition>;
}

impl WithConditions for SeiNode {
    fn conditions(&self) -> &[Condition] {
        self.status.as_ref().map_or(&[], |s| &s.conditions)
    }

    fn conditions_mut(&mut self) -> &mut Vec<Condition> {
        &mut self.status.get_or_insert_with(Default::default).conditions
    }
}

impl WithConditions for SeiNodeDeployment {
    fn conditions(&self) -> &[Condition] {
        self.status.as_ref().map_or(&[], |s| &s.conditions)
    }

    fn conditions_mut(&mut self) -> &mut Vec<Condition> {
        &mut self.status.get_or_insert_with(Default::default).conditions
    }
}

/// What the Authorized condition of an object read with `conditions` must become after a reconcile that got the
/// 403 `forbidden` (or none) and ended `succeeded` or not: `None` when it stays as it is, `Some(None)` to remove
/// it, `Some(Some(message))` to set it False with that message. A pure decision.
pub fn authorized_change(conditions: &[Condition], forbidden: Option<&str>, succeeded: bool) -> Option<Option<String>> {
    let stored = find_condition(conditions, AUTHORIZED);
    match forbidden {
        Some(message) if !stored.is_some_and(|c| c.status == "False" && c.message == message) => {
            Some(Some(message.to_owned()))
        }
        Some(_) => None,
        // A failed reconcile may have stopped before the call that was refused: nothing is known of it.
        None if succeeded && stored.is_some() => Some(None),
        None => None,
    }
}

/// Reports what [`Watched`] saw of the reconcile of `read` (the object as the reconcile read it) that ended with
/// `outcome`: sets or removes the Authorized condition on the stored object and, when it becomes False, records
/// a Warning event quoting the 403. A reconcile that succeeded despite a 403 is looked at again within
/// `FORBIDDEN_RECHECK`. Failing to write the report changes nothing of the outcome: the next reconcile
/// decides again.
pub async fn report<C: Cluster, K: WithConditions>(
    cluster: &C,
    read: &K,
    forbidden: Option<String>,
    outcome: Result<Action, ReconcileError>,
    now: Timestamp,
) -> Result<Action, ReconcileError> {
    let change = authorized_change(read.conditions(), forbidden.as_deref(), outcome.is_ok());
    if let Some(message) = change {
        let meta = read.meta();
        let (namespace, name) = (meta.namespace.clone().unwrap_or_default(), meta.name.clone().unwrap_or_default());
        // Re-read: the reconcile may have written the status since — fresh, as a cache would not hold that
        // write yet, and the status write below would be refused as stale.
        if let Ok(mut stored) = cluster.get_fresh::<K>(&namespace, &name).await {
            let generation = stored.meta().generation;
            match &message {
                Some(message) => {
                    let update = ConditionUpdate {
                        type_: AUTHORIZED,
                        status: false,
                        reason: REASON_FORBIDDEN,
                        message: message.clone(),
                        observed_generation: generation,
                    };
                    set_condition(stored.conditions_mut(), update, now);
                }
                None => stored.conditions_mut().retain(|c| c.type_ != AUTHORIZED),
            }
            let written = cluster.replace_status(&stored).await.is_ok();
            if let (true, Some(message)) = (written, message) {
                let text =
                    format!("the operator's ServiceAccount lacks a permission (grant it in its RBAC): {message}");
                // A report, not state: the condition carries it if the event is lost.
                let _ = cluster.emit_event(&Event::warning(ObjectRef::to(read), REASON_FORBIDDEN, text)).await;
            }
        }
    }
    match (forbidden, outcome) {
        (Some(_), Ok(action)) => Ok(action.min(Action::Requeue(FORBIDDEN_RECHECK))),
        (_, outcome) => outcome,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn condition(status: &str, message: &str) -> Vec<Condition> {
        let mut conditions = Vec::new();
        let update = ConditionUpdate {
            type_: AUTHORIZED,
            status: status == "True",
            reason: REASON_FORBIDDEN,
            message: message.into(),
            observed_generation: None,
        };
        set_condition(&mut conditions, update, Timestamp::UNIX_EPOCH);
        conditions
    }

    #[test]
    fn a_403_sets_the_condition_once_and_a_clean_successful_reconcile_removes_it() {
        let denied = "cannot update resource \"persistentvolumeclaims\"";
        assert_eq!(authorized_change(&[], Some(denied), true), Some(Some(denied.into())));
        assert_eq!(authorized_change(&[], Some(denied), false), Some(Some(denied.into())));
        assert_eq!(authorized_change(&condition("False", denied), Some(denied), false), None, "already reported");
        assert_eq!(
            authorized_change(&condition("False", denied), Some("cannot delete"), true),
            Some(Some("cannot delete".into())),
            "another permission is reported anew"
        );
        assert_eq!(authorized_change(&condition("False", denied), None, true), Some(None));
        assert_eq!(
            authorized_change(&condition("False", denied), None, false),
            None,
            "a reconcile that failed may not have reached the refused call"
        );
        assert_eq!(authorized_change(&[], None, true), None, "nothing to report, nothing to write");
    }
}
