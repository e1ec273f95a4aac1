//! A replica's lease loop: the operator's own election code (`sei_operator_core::leader`) run on the simulated
//! clock, and the gate that lets the replica's controller loop start reconciles only while it leads.

use std::cell::Cell;
use std::rc::Rc;

use sei_operator_core::cluster::ClusterError;
use sei_operator_core::leader::{Attempt, Elector, LeaseConfig, LeaseName};
use tokio::sync::Notify;

use super::*;
use crate::harness::state::{SharedWorld, lock};
use crate::harness::trace::Category;
use crate::operator_host::cluster::{ClientKind, SimCluster};

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
        // (`operator/src/backend/run/leader.rs`, `tokio::time::timeout(left, ..)`): a renewal still waiting at
        // the deadline — kube's client sends a refused call again for minutes (`SimCluster::through_refusals`)
        // — is abandoned and the leader stops, and a leader waking past the deadline (a pause) stops without
        // another attempt. Without the bound, a leader whose renewal hung kept reconciling after a standby took
        // the Lease.
        let attempt = if gate.leading.get() {
            let left = elector.deadline().map_or(Duration::ZERO, |deadline| deadline.saturating_sub(local));
            if left.is_zero() {
                Ok(Attempt::Leading)
            } else {
                match tokio::time::timeout(left, elector.try_acquire_or_renew(&cluster, local, wall)).await {
                    Ok(attempt) => attempt,
                    Err(_) => Err(ClusterError::Transient("renewing the leader Lease timed out".into())),
                }
            }
        } else {
            elector.try_acquire_or_renew(&cluster, local, wall).await
        };
        let now = lock(&shared).now;
        let leading = elector.is_leading(now);
        if leading && !gate.leading.get() {
            lock(&shared)
                .record(Category::Operator, format_args!("{identity} leads (Lease {LEASE_NAMESPACE}/{LEASE_NAME})"));
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
                world.record(Category::Operator, format_args!("{identity} lost the Lease ({why}); exiting"));
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
