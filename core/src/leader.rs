//! Leader election over a `coordination.k8s.io/v1` Lease, one implementation for production (`sei-operator run`,
//! `backend/run/leader.rs`) and the simulator (`sei_sim::operator_host::replicas`): a pure decision over values ([`decide`]) and
//! an [`Elector`] that carries a replica's memory between attempts and talks to the API server through the
//! [`Cluster`] trait.
//!
//! Modelled on client-go's `tools/leaderelection/leaderelection.go` (kubernetes/kubernetes,
//! `staging/src/k8s.io/client-go/tools/leaderelection/leaderelection.go`, `tryAcquireOrRenew`, `release`,
//! `isLeaseValid`):
//! - a Lease held by another replica is judged expired by **this replica's own clock**: the local time at which it
//!   last saw the Lease record change, plus the record's `leaseDurationSeconds` — never by the holder's
//!   `renewTime`, so clock skew between replicas cannot shorten a lease;
//! - every write of the Lease carries the resourceVersion it read: of two candidates taking an expired Lease, one
//!   gets Conflict and stands by;
//! - a holder renews every retry period, and stops leading when it has not renewed within the renew deadline
//!   (shorter than the lease duration, so it stops before any other replica may take over — as long as it is not
//!   paused; see `docs/leader-election.md` for what a Lease cannot fence);
//! - release clears the holder (and shortens the duration to one second), so a standby need not wait.
//!
//! One deliberate difference: client-go keeps retrying until the renew deadline even when it reads a record
//! naming another holder; here reading another live holder ends this replica's leadership at once.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};

use crate::clock::Timestamp;
use crate::cluster::{Cluster, ClusterError, OptionalExt};

/// The timing of an election. client-go's `LeaderElectionConfig` names the same three.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseConfig {
    /// How long a standby waits, from its own observation of the last change of the record, before taking it.
    pub duration: Duration,
    /// How long the holder keeps leading without a successful renewal. Shorter than `duration`.
    pub renew_deadline: Duration,
    /// How often the holder renews and a standby tries.
    pub retry_period: Duration,
}

impl LeaseConfig {
    /// What production ran with kube-lease-manager 0.13 (`manager.rs`: `DEFAULT_LEASE_DURATION_SECONDS` 30,
    /// `DEFAULT_LEASE_GRACE_SECONDS` 5: the holder renews 5 s before the 30 s lapse), in client-go's terms: a 30 s
    /// lease, a 25 s renew deadline, a renewal every 5 s.
    pub const PRODUCTION: LeaseConfig = LeaseConfig {
        duration: Duration::from_secs(30),
        renew_deadline: Duration::from_secs(25),
        retry_period: Duration::from_secs(5),
    };
}

/// What a replica remembers of the Lease: the record it last saw and the local time it saw it change (client-go's
/// `observedRecord` and `observedTime`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observation {
    pub record: LeaseSpec,
    /// Local monotonic time (any fixed origin) at which the record was first seen as it is.
    pub at: Duration,
}

/// What to do after reading the Lease.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// No Lease exists: create this one.
    Create(Lease),
    /// Take the Lease (free or expired) or renew it: replace it with this, which carries the resourceVersion read.
    Update(Lease),
    /// Another replica holds it and it has not expired by this replica's clock.
    StandBy { holder: String },
}

/// The Lease a replica means to hold, by name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseName {
    pub namespace: String,
    pub name: String,
}

fn seconds(duration: Duration) -> i32 {
    i32::try_from(duration.as_secs()).unwrap_or(i32::MAX)
}

/// client-go's `tryAcquireOrRenew`, as a decision over values: the Lease as read (`None`: it does not exist),
/// this replica's identity and memory, its local monotonic time and the wall time for the record. Answers what to
/// do and what the replica now remembers (the record read, with the local time it was first seen).
pub fn decide(
    read: Option<&Lease>,
    lease: &LeaseName,
    identity: &str,
    observed: Option<&Observation>,
    local_now: Duration,
    wall_now: Timestamp,
    config: &LeaseConfig,
) -> (Decision, Option<Observation>) {
    let now = MicroTime(wall_now);
    let mine = LeaseSpec {
        holder_identity: Some(identity.to_owned()),
        lease_duration_seconds: Some(seconds(config.duration)),
        acquire_time: Some(now.clone()),
        renew_time: Some(now),
        ..LeaseSpec::default()
    };
    // 1. Obtain or create the record.
    let Some(read) = read else {
        let created = Lease {
            metadata: ObjectMeta {
                name: Some(lease.name.clone()),
                namespace: Some(lease.namespace.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec { lease_transitions: Some(0), ..mine }),
        };
        return (Decision::Create(created), observed.cloned());
    };
    // 2. The record's identity and time, by this replica's clock: a record that changed is seen now.
    let record = read.spec.clone().unwrap_or_default();
    let observation = match observed {
        Some(seen) if seen.record == record => seen.clone(),
        _ => Observation { record: record.clone(), at: local_now },
    };
    let holder = record.holder_identity.clone().filter(|h| !h.is_empty());
    let duration = record.lease_duration_seconds.map_or(config.duration, |s| Duration::from_secs(s.max(0) as u64));
    let valid = observation.at + duration > local_now;
    let is_leader = holder.as_deref() == Some(identity);
    if let Some(holder) = holder.filter(|_| valid && !is_leader) {
        return (Decision::StandBy { holder }, Some(observation));
    }
    // 3. Take or renew: a renewal keeps the acquire time and the transitions; a take counts one more transition.
    let transitions = record.lease_transitions.unwrap_or(0);
    let spec = if is_leader {
        LeaseSpec { acquire_time: record.acquire_time.clone(), lease_transitions: Some(transitions), ..mine }
    } else {
        LeaseSpec { lease_transitions: Some(transitions.saturating_add(1)), ..mine }
    };
    let mut update = read.clone();
    update.spec = Some(spec);
    (Decision::Update(update), Some(observation))
}

/// The outcome of one attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attempt {
    /// This replica holds the Lease (it took or renewed it).
    Leading,
    /// Another replica holds it.
    StandingBy { holder: String },
}

/// One replica's side of the election: its identity, its memory of the Lease, and when it last held it for sure.
#[derive(Clone, Debug)]
pub struct Elector {
    pub lease: LeaseName,
    pub identity: String,
    pub config: LeaseConfig,
    observed: Option<Observation>,
    /// Local time of the last successful take or renewal, while this replica believes it leads.
    renewed_at: Option<Duration>,
}

impl Elector {
    pub fn new(lease: LeaseName, identity: impl Into<String>, config: LeaseConfig) -> Self {
        Elector { lease, identity: identity.into(), config, observed: None, renewed_at: None }
    }

    /// Whether this replica may act as the leader at local time `now`: it took or renewed the Lease less than the
    /// renew deadline ago, and has not since read another holder.
    pub fn is_leading(&self, now: Duration) -> bool {
        self.renewed_at.is_some_and(|at| now < at + self.config.renew_deadline)
    }

    /// When leadership lapses without a renewal (local time), while leading.
    pub fn deadline(&self) -> Option<Duration> {
        self.renewed_at.map(|at| at + self.config.renew_deadline)
    }

    /// Reads the Lease and takes, renews or leaves it ([`decide`]). An error is a failed attempt — a Conflict is a
    /// lost race — which ends nothing by itself: leadership lapses at the renew deadline ([`Elector::is_leading`]).
    pub async fn try_acquire_or_renew<C: Cluster>(
        &mut self,
        cluster: &C,
        local_now: Duration,
        wall_now: Timestamp,
    ) -> Result<Attempt, ClusterError> {
        let read: Option<Lease> = cluster.get(&self.lease.namespace, &self.lease.name).await.optional()?;
        let (decision, observed) = decide(
            read.as_ref(),
            &self.lease,
            &self.identity,
            self.observed.as_ref(),
            local_now,
            wall_now,
            &self.config,
        );
        self.observed = observed;
        let written = match decision {
            Decision::StandBy { holder } => {
                self.renewed_at = None;
                return Ok(Attempt::StandingBy { holder });
            }
            Decision::Create(lease) => cluster.create(&lease).await?,
            Decision::Update(lease) => cluster.replace(&lease).await?,
        };
        self.observed = Some(Observation { record: written.spec.clone().unwrap_or_default(), at: local_now });
        self.renewed_at = Some(local_now);
        Ok(Attempt::Leading)
    }

    /// Gives the Lease up, if this replica holds it: the holder cleared, written with the resourceVersion read
    /// (client-go's `release`). A Conflict or another holder means someone else has it already.
    pub async fn release<C: Cluster>(&mut self, cluster: &C, wall_now: Timestamp) -> Result<(), ClusterError> {
        self.renewed_at = None;
        let Some(mut lease) = cluster.get::<Lease>(&self.lease.namespace, &self.lease.name).await.optional()? else {
            return Ok(());
        };
        let record = lease.spec.clone().unwrap_or_default();
        if record.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return Ok(());
        }
        lease.spec = Some(released(&record, wall_now));
        cluster.replace(&lease).await?;
        Ok(())
    }
}

/// The record of a released Lease: no holder, a one-second duration, the transitions kept.
pub fn released(record: &LeaseSpec, wall_now: Timestamp) -> LeaseSpec {
    LeaseSpec {
        holder_identity: None,
        lease_duration_seconds: Some(1),
        lease_transitions: record.lease_transitions,
        acquire_time: Some(MicroTime(wall_now)),
        renew_time: Some(MicroTime(wall_now)),
        ..LeaseSpec::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: LeaseConfig = LeaseConfig::PRODUCTION;

    fn name() -> LeaseName {
        LeaseName { namespace: "sei-operator".into(), name: "sei-operator".into() }
    }

    fn wall(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_767_225_600 + seconds).unwrap()
    }

    fn held_by(holder: Option<&str>, renewed: i64, version: &str) -> Lease {
        Lease {
            metadata: ObjectMeta {
                name: Some("sei-operator".into()),
                namespace: Some("sei-operator".into()),
                resource_version: Some(version.into()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: holder.map(str::to_owned),
                lease_duration_seconds: Some(30),
                renew_time: Some(MicroTime(wall(renewed))),
                acquire_time: Some(MicroTime(wall(0))),
                lease_transitions: Some(3),
                ..LeaseSpec::default()
            }),
        }
    }

    fn at(seconds: u64) -> Duration {
        Duration::from_secs(seconds)
    }

    #[test]
    fn a_missing_lease_is_created_held_by_this_replica() {
        let (decision, _) = decide(None, &name(), "b", None, at(0), wall(0), &CONFIG);
        let Decision::Create(lease) = decision else { panic!("{decision:?}") };
        let spec = lease.spec.unwrap();
        assert_eq!(spec.holder_identity.as_deref(), Some("b"));
        assert_eq!(spec.lease_duration_seconds, Some(30));
        assert_eq!(lease.metadata.namespace.as_deref(), Some("sei-operator"));
    }

    #[test]
    fn expiry_is_judged_by_the_local_time_the_record_was_seen_to_change_not_by_its_renew_time() {
        // The holder's renewTime says an hour ago (its clock is behind, or ours ahead): no matter.
        let lease = held_by(Some("a"), -3600, "7");
        let (decision, seen) = decide(Some(&lease), &name(), "b", None, at(100), wall(100), &CONFIG);
        assert_eq!(decision, Decision::StandBy { holder: "a".into() });
        let seen = seen.unwrap();
        assert_eq!(seen.at, at(100));
        // The same record, 29 s later by our clock: still valid.
        let (decision, seen) = decide(Some(&lease), &name(), "b", Some(&seen), at(129), wall(129), &CONFIG);
        assert_eq!(decision, Decision::StandBy { holder: "a".into() });
        // 30 s after we first saw it unchanged: expired, taken with the resourceVersion read and one more
        // transition.
        let (decision, _) = decide(Some(&lease), &name(), "b", seen.as_ref(), at(130), wall(130), &CONFIG);
        let Decision::Update(update) = decision else { panic!("{decision:?}") };
        assert_eq!(update.metadata.resource_version.as_deref(), Some("7"));
        let spec = update.spec.unwrap();
        assert_eq!(spec.holder_identity.as_deref(), Some("b"));
        assert_eq!(spec.lease_transitions, Some(4));
        assert_eq!(spec.acquire_time, Some(MicroTime(wall(130))));
    }

    #[test]
    fn a_renewal_seen_resets_the_expiry_even_with_a_renew_time_in_the_future() {
        let first = held_by(Some("a"), 0, "7");
        let (_, seen) = decide(Some(&first), &name(), "b", None, at(0), wall(0), &CONFIG);
        let renewed = held_by(Some("a"), 5, "8");
        let (decision, seen) = decide(Some(&renewed), &name(), "b", seen.as_ref(), at(25), wall(25), &CONFIG);
        assert_eq!(decision, Decision::StandBy { holder: "a".into() });
        assert_eq!(seen.as_ref().unwrap().at, at(25));
        let (decision, _) = decide(Some(&renewed), &name(), "b", seen.as_ref(), at(54), wall(54), &CONFIG);
        assert_eq!(decision, Decision::StandBy { holder: "a".into() });
    }

    #[test]
    fn the_holder_renews_keeping_its_acquire_time_and_transitions() {
        let lease = held_by(Some("a"), 0, "7");
        let (decision, _) = decide(Some(&lease), &name(), "a", None, at(5), wall(5), &CONFIG);
        let Decision::Update(update) = decision else { panic!("{decision:?}") };
        let spec = update.spec.unwrap();
        assert_eq!(spec.renew_time, Some(MicroTime(wall(5))));
        assert_eq!(spec.acquire_time, Some(MicroTime(wall(0))));
        assert_eq!(spec.lease_transitions, Some(3));
        assert_eq!(update.metadata.resource_version.as_deref(), Some("7"));
    }

    #[test]
    fn a_released_lease_is_taken_at_once() {
        let mut lease = held_by(None, 0, "9");
        lease.spec = Some(released(lease.spec.as_ref().unwrap(), wall(0)));
        let (decision, _) = decide(Some(&lease), &name(), "b", None, at(0), wall(0), &CONFIG);
        assert!(matches!(decision, Decision::Update(_)), "{decision:?}");
    }

    /// Two candidates read the same expired Lease; both decide to take it, each with the resourceVersion read. The
    /// API server accepts the first replace; the second's resourceVersion is stale: Conflict, and it stays a
    /// standby — its next attempt reads the winner's fresh record and waits a whole lease for it.
    #[test]
    fn of_two_candidates_for_an_expired_lease_the_second_write_conflicts_and_loses() {
        use crate::cluster::ObjectRef;
        let lease = held_by(Some("a"), 0, "7");
        let store = std::sync::Mutex::new(lease.clone());
        let write = |update: Lease| -> Result<Lease, ClusterError> {
            let mut stored = store.lock().unwrap();
            if update.metadata.resource_version != stored.metadata.resource_version {
                return Err(ClusterError::Conflict(ObjectRef::new("Lease", "sei-operator", "sei-operator")));
            }
            let mut written = update;
            written.metadata.resource_version = Some("8".into());
            *stored = written.clone();
            Ok(written)
        };
        let seen = Observation { record: lease.spec.clone().unwrap(), at: at(0) };
        let (b, _) = decide(Some(&lease), &name(), "b", Some(&seen), at(31), wall(31), &CONFIG);
        let (c, c_seen) = decide(Some(&lease), &name(), "c", Some(&seen), at(31), wall(31), &CONFIG);
        let (Decision::Update(b), Decision::Update(c)) = (b, c) else { panic!("both try") };
        assert!(write(b).is_ok());
        assert!(matches!(write(c), Err(ClusterError::Conflict(_))));
        let now = store.lock().unwrap().clone();
        let (decision, _) = decide(Some(&now), &name(), "c", c_seen.as_ref(), at(32), wall(32), &CONFIG);
        assert_eq!(decision, Decision::StandBy { holder: "b".into() });
    }

    #[test]
    fn the_holder_leads_until_the_renew_deadline_after_its_last_renewal() {
        let mut elector = Elector::new(name(), "a", CONFIG);
        assert!(!elector.is_leading(at(0)));
        elector.renewed_at = Some(at(10));
        assert!(elector.is_leading(at(34)));
        assert!(!elector.is_leading(at(35)));
        assert_eq!(elector.deadline(), Some(at(35)));
    }
}
