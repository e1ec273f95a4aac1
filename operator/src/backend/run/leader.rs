//! Leader election for `sei-operator run`, on the operator's own Lease logic (`crate::leader`, the same the
//! simulator's replicas run): stand by until the Lease is taken, run the controllers while holding it, renew it
//! every retry period, stop the controllers at once when a renewal has not succeeded within the renew deadline (or
//! another holder is read), and release it on the way out.

use std::future::Future;
use std::time::Duration;

use kube::runtime::events::Reporter;
use tokio::time::Instant;

use super::controllers::run_controllers_bounded;
use super::{CONTROLLER_NAME, RunContext, RunError};
use crate::backend::clock::SystemClock;
use crate::backend::health::Role;
use crate::backend::kube_cluster::KubeCluster;
use crate::clock::Clock;
use crate::leader::{Attempt, Elector, LeaseConfig, LeaseName};

/// How long releasing the Lease on the way out may take before the process gives up and lets it expire.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(5);

/// Waits for the Lease, runs the controllers while holding it, and releases it on the way out.
pub(super) async fn lead_then_run<S, F>(context: &RunContext<'_>, shutdown: &S) -> Result<(), RunError>
where
    S: Fn() -> F,
    F: Future<Output = ()> + Send + Sync + 'static,
{
    let RunContext { args, client, identity, metrics, health } = *context;
    let namespace = args.lease_namespace.clone().unwrap_or_else(|| client.default_namespace().to_owned());
    let lease = format!("{namespace}/{}", args.lease_name);
    let reporter = Reporter { controller: CONTROLLER_NAME.to_owned(), instance: Some(identity.to_owned()) };
    let cluster = KubeCluster::new(client.clone(), reporter, metrics.clone());
    let name = LeaseName { namespace, name: args.lease_name.clone() };
    let mut elector = Elector::new(name, identity, LeaseConfig::PRODUCTION);
    let config = elector.config;
    // The elector's local clock: monotonic, from an arbitrary origin.
    let origin = Instant::now();
    let local = move || origin.elapsed();

    tracing::info!(%lease, %identity, "waiting for the leader Lease");
    health.set_role(Role::StandingBy);
    let acquire = async {
        loop {
            match elector.try_acquire_or_renew(&cluster, local(), SystemClock.now()).await {
                Ok(Attempt::Leading) => return,
                Ok(Attempt::StandingBy { holder }) => tracing::debug!(%lease, %holder, "standing by"),
                Err(error) => tracing::debug!(%lease, %error, "leader election attempt failed"),
            }
            tokio::time::sleep(config.retry_period).await;
        }
    };
    let acquired = tokio::select! {
        () = shutdown() => false,
        () = acquire => true,
    };
    if !acquired {
        return Ok(());
    }
    tracing::info!(%lease, "leading");
    health.set_role(Role::Leading);
    metrics.set_leader(true);
    let outcome = {
        let renewals = async {
            loop {
                tokio::time::sleep(config.retry_period).await;
                let Some(deadline) = elector.deadline() else { return };
                // A renewal that hangs past the deadline is as good as failed.
                let left = deadline.saturating_sub(local());
                match tokio::time::timeout(left, elector.try_acquire_or_renew(&cluster, local(), SystemClock.now()))
                    .await
                {
                    Ok(Ok(Attempt::Leading)) => {}
                    Ok(Ok(Attempt::StandingBy { holder })) => {
                        tracing::warn!(%lease, %holder, "another replica holds the leader Lease");
                    }
                    Ok(Err(error)) => tracing::warn!(%lease, %error, "renewing the leader Lease failed"),
                    Err(_) => tracing::warn!(%lease, "renewing the leader Lease timed out"),
                }
                if !elector.is_leading(local()) {
                    return;
                }
            }
        };
        // Losing the Lease drops the controllers at once (`biased`: checked first whenever both are ready):
        // another replica may soon be reconciling. Requests already sent still land; see docs/leader-election.md.
        tokio::select! {
            biased;
            () = renewals => Err(RunError::LostLeadership(lease.clone())),
            result = run_controllers_bounded(context, shutdown) => result,
        }
    };
    metrics.set_leader(false);

    // Released on the way out, so a standby takes over without waiting for it to expire.
    match tokio::time::timeout(RELEASE_TIMEOUT, elector.release(&cluster, SystemClock.now())).await {
        Ok(Ok(())) => tracing::info!(%lease, "released the leader Lease"),
        Ok(Err(error)) => tracing::warn!(%lease, %error, "releasing the leader Lease failed; it will expire"),
        Err(_) => tracing::warn!(%lease, "releasing the leader Lease timed out; it will expire"),
    }
    outcome
}
