//! Leader election for `sei-operator run`: wait for the Lease (kube-lease-manager), run the controllers while
//! holding it, stop them at once if it is lost, and release it on the way out.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use kube::Client;
use kube_lease_manager::LeaseManagerBuilder;

use super::controllers::run_controllers;
use super::{RunArgs, RunError};
use crate::backend::metrics::Metrics;

/// Waits for the Lease, runs the controllers while holding it, and releases it on the way out.
pub(super) async fn lead_then_run<S, F>(
    args: &RunArgs,
    client: &Client,
    identity: &str,
    metrics: &Arc<Metrics>,
    shutdown: &S,
) -> Result<(), RunError>
where
    S: Fn() -> F,
    F: Future<Output = ()> + Send + Sync + 'static,
{
    let namespace = args.lease_namespace.clone().unwrap_or_else(|| client.default_namespace().to_owned());
    let lease = format!("{namespace}/{}", args.lease_name);
    let election_error = |error: kube_lease_manager::LeaseManagerError| RunError::LeaderElection {
        lease: lease.clone(),
        reason: error.to_string(),
    };
    let manager = LeaseManagerBuilder::new(client.clone(), &args.lease_name)
        .with_namespace(&namespace)
        .with_identity(identity)
        .build()
        .await
        .map_err(election_error)?;
    let (mut leading, lease_task) = manager.watch().await;

    tracing::info!(%lease, %identity, "waiting for the leader Lease");
    // None: asked to stop while standing by. Some(false): the lease task stopped, which it does only when the
    // channel fails.
    let acquired = tokio::select! {
        () = shutdown() => None,
        changed = leading.wait_for(|is_leader| *is_leader) => Some(changed.is_ok()),
    };
    let outcome = match acquired {
        None => Ok(()),
        Some(false) => {
            Err(RunError::LeaderElection { lease: lease.clone(), reason: "the Lease manager stopped".into() })
        }
        Some(true) => {
            tracing::info!(%lease, "leading");
            let lost = async {
                // Err: the lease task ended (it logs why); treat it as leadership lost.
                let _ = leading.wait_for(|is_leader| !*is_leader).await;
            };
            // Losing the Lease drops the controllers at once: another replica may already be reconciling.
            tokio::select! {
                result = run_controllers(args, client, identity, metrics, shutdown()) => result,
                () = lost => Err(RunError::LostLeadership(lease.clone())),
            }
        }
    };

    // Closing the channel makes the lease task release the Lease, so a standby takes over without waiting for
    // it to expire.
    drop(leading);
    match tokio::time::timeout(Duration::from_secs(5), lease_task).await {
        Ok(Ok(Ok(_))) => tracing::info!(%lease, "released the leader Lease"),
        Ok(Ok(Err(error))) => tracing::warn!(%lease, %error, "releasing the leader Lease failed; it will expire"),
        Ok(Err(error)) => tracing::warn!(%lease, %error, "the Lease task ended abnormally; the Lease will expire"),
        Err(_) => tracing::warn!(%lease, "releasing the leader Lease timed out; it will expire"),
    }
    outcome
}
