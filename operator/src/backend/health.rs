//! What `/readyz` and `/healthz` answer, decided from what the process has seen: its role (starting, standing by,
//! leading, stopping), a preflight read of every kind it needs, and the state of each watch its controllers run.
//!
//! - **Ready** once the preflight read succeeded and the process either stands by or leads with every watch's
//!   initial list done; never while stopping. A process that cannot read its kinds (CRDs not installed, RBAC
//!   missing) is not ready, so a rolling update of the operator stops at it instead of replacing a working one.
//! - **Live** unless a watch (or the preflight) has been failing without a break for longer than
//!   [`HealthConfig::failing_limit`], or a controller's stream ended while the process was not stopping. A kubelet
//!   restart then makes the failure visible (CrashLoopBackOff, with the reason in the log) instead of a pod that
//!   looks healthy and reconciles nothing.
//!
//! kube-runtime's watchers retry a failed list or watch with a back-off of at most 30 s and yield each failure, so
//! a watch that keeps failing reports an error at least that often; an error streak ends with any successful
//! event, or when no error came for [`HealthConfig::streak_gap`] (a watch re-established after a blip yields no
//! event until something changes, and must not count as failing forever).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use kube::runtime::watcher;

/// The preflight's entry among the watches.
pub const PREFLIGHT: &str = "preflight";

/// Bounds of the health rules.
#[derive(Clone, Copy, Debug)]
pub struct HealthConfig {
    /// How long a watch may fail without a break before the process reports itself not live.
    pub failing_limit: Duration,
    /// A pause in errors this long ends a streak.
    pub streak_gap: Duration,
}

/// The process's part in leader election.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Role {
    #[default]
    Starting,
    StandingBy,
    Leading,
    Stopping,
}

#[derive(Clone, Debug, Default)]
struct WatchState {
    synced: bool,
    /// When the current error streak began, and the last error in it.
    failing_since: Option<Instant>,
    last_error_at: Option<Instant>,
    last_error: Option<String>,
}

#[derive(Debug, Default)]
struct State {
    role: Role,
    watches: BTreeMap<String, WatchState>,
    ended: Option<String>,
}

/// The health state, shared by the controllers (which report into it) and the probe endpoint (which reads it).
#[derive(Debug)]
pub struct Health {
    config: HealthConfig,
    state: Mutex<State>,
}

impl Health {
    pub fn new(config: HealthConfig) -> Self {
        Health { config, state: Mutex::new(State::default()) }
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The process's role changed. Leaving leadership forgets the controllers' watches (the next term registers
    /// its own); the preflight's record stays.
    pub fn set_role(&self, role: Role) {
        self.with(|state| {
            if state.role == Role::Leading && role != Role::Leading {
                state.watches.retain(|name, _| name == PREFLIGHT);
            }
            state.role = role;
        });
    }

    /// A watch that readiness waits for until its initial list is done.
    pub fn register(&self, watch: &str) {
        self.with(|state| {
            state.watches.insert(watch.to_owned(), WatchState::default());
        });
    }

    /// `watch` delivered its initial list (or the preflight read succeeded): synced, and its error streak over.
    pub fn synced(&self, watch: &str) {
        self.with(|state| {
            let entry = state.watches.entry(watch.to_owned()).or_default();
            entry.synced = true;
            entry.failing_since = None;
        });
    }

    /// `watch` delivered an event: its error streak is over.
    pub fn progressed(&self, watch: &str) {
        self.with(|state| {
            if let Some(entry) = state.watches.get_mut(watch) {
                entry.failing_since = None;
            }
        });
    }

    /// `watch` failed at `now` with `error`.
    pub fn failed(&self, watch: &str, error: String, now: Instant) {
        let streak_gap = self.config.streak_gap;
        self.with(|state| {
            let entry = state.watches.entry(watch.to_owned()).or_default();
            let streak_over = entry.last_error_at.is_none_or(|last| now.saturating_duration_since(last) > streak_gap);
            if entry.failing_since.is_none() || streak_over {
                entry.failing_since = Some(now);
            }
            entry.last_error_at = Some(now);
            entry.last_error = Some(error);
        });
    }

    /// Whether SIGTERM (or SIGINT) has been received.
    pub fn is_stopping(&self) -> bool {
        self.with(|state| state.role == Role::Stopping)
    }

    /// A controller's stream ended for `reason` (while the process was not stopping).
    pub fn ended(&self, reason: String) {
        self.with(|state| state.ended = Some(reason));
    }

    /// Ok when the process should receive traffic (and count as available); else why not.
    pub fn readiness(&self) -> Result<(), String> {
        self.with(|state| {
            let preflight = state.watches.get(PREFLIGHT);
            if state.role == Role::Stopping {
                return Err("shutting down".to_owned());
            }
            if !preflight.is_some_and(|p| p.synced) {
                let error = preflight.and_then(|p| p.last_error.clone());
                return Err(match error {
                    Some(error) => format!("cannot read the kinds it needs: {error}"),
                    None => "has not read the kinds it needs yet".to_owned(),
                });
            }
            match state.role {
                Role::Starting => Err("waiting for leader election".to_owned()),
                Role::StandingBy | Role::Stopping => Ok(()),
                Role::Leading => {
                    let waiting: Vec<&str> =
                        state.watches.iter().filter(|(_, w)| !w.synced).map(|(name, _)| name.as_str()).collect();
                    // The preflight is always there; no other entry yet means the controllers have not started.
                    if state.watches.len() <= 1 {
                        Err("leading; the controllers are starting".to_owned())
                    } else if waiting.is_empty() {
                        Ok(())
                    } else {
                        Err(format!("leading; initial list not done for: {}", waiting.join(", ")))
                    }
                }
            }
        })
    }

    /// Ok while the process makes progress; else why it should be restarted.
    pub fn liveness(&self, now: Instant) -> Result<(), String> {
        let config = self.config;
        self.with(|state| {
            if let Some(reason) = &state.ended {
                return Err(reason.clone());
            }
            for (name, watch) in &state.watches {
                let (Some(since), Some(last)) = (watch.failing_since, watch.last_error_at) else { continue };
                let still_failing = now.saturating_duration_since(last) <= config.streak_gap;
                if still_failing && now.saturating_duration_since(since) > config.failing_limit {
                    return Err(format!(
                        "watch {name} has failed for {}s without a break: {}",
                        now.saturating_duration_since(since).as_secs(),
                        watch.last_error.as_deref().unwrap_or("unknown error")
                    ));
                }
            }
            Ok(())
        })
    }
}

/// A watch's events, reporting into `health` as they pass: registered now (readiness waits for it), synced at
/// its `InitDone`, failing at each error (logged).
pub fn track<K, S>(
    health: Arc<Health>,
    name: &'static str,
    events: S,
) -> impl futures::Stream<Item = watcher::Result<watcher::Event<K>>> + Send + 'static
where
    K: Send + 'static,
    S: futures::Stream<Item = watcher::Result<watcher::Event<K>>> + Send + 'static,
{
    health.register(name);
    events.inspect(move |event| match event {
        Ok(watcher::Event::InitDone) => health.synced(name),
        Ok(_) => health.progressed(name),
        Err(error) => {
            let error = crate::backend::run::one_line(error);
            tracing::warn!(watch = name, %error, "watch failed; retrying with back-off");
            health.failed(name, error, Instant::now());
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: HealthConfig =
        HealthConfig { failing_limit: Duration::from_secs(60), streak_gap: Duration::from_secs(45) };

    fn after(start: Instant, seconds: u64) -> Instant {
        start + Duration::from_secs(seconds)
    }

    #[test]
    fn not_ready_until_the_kinds_are_read_then_ready_standing_by() {
        let health = Health::new(CONFIG);
        let start = Instant::now();
        assert!(health.readiness().is_err());
        health.failed(PREFLIGHT, "seinodes.sei.io is forbidden".into(), start);
        health.set_role(Role::StandingBy);
        let why = health.readiness().expect_err("the preflight failed");
        assert!(why.contains("forbidden"), "{why}");
        health.synced(PREFLIGHT);
        assert_eq!(health.readiness(), Ok(()));
        health.set_role(Role::Stopping);
        assert_eq!(health.readiness(), Err("shutting down".to_owned()));
    }

    #[test]
    fn a_leader_is_ready_only_once_every_watch_listed() {
        let health = Health::new(CONFIG);
        health.synced(PREFLIGHT);
        health.set_role(Role::Leading);
        assert_eq!(health.readiness(), Err("leading; the controllers are starting".to_owned()));
        health.register("seinodes");
        health.register("statefulsets");
        health.synced("seinodes");
        let why = health.readiness().expect_err("statefulsets not listed");
        assert!(why.contains("statefulsets") && !why.contains("seinodes"), "{why}");
        health.synced("statefulsets");
        assert_eq!(health.readiness(), Ok(()));
        // A new term registers its own watches again.
        health.set_role(Role::StandingBy);
        health.set_role(Role::Leading);
        health.register("seinodes");
        assert!(health.readiness().is_err());
    }

    #[test]
    fn a_watch_failing_without_a_break_past_the_limit_is_not_live() {
        let health = Health::new(CONFIG);
        let start = Instant::now();
        health.register("seinodes");
        for second in (0..=90).step_by(30) {
            health.failed("seinodes", "404 Not Found".into(), after(start, second));
            let live = health.liveness(after(start, second));
            assert_eq!(live.is_ok(), second <= 60, "at {second}s: {live:?}");
        }
        assert!(health.liveness(after(start, 90)).expect_err("failing").contains("404"));
        // An event ends the streak.
        health.progressed("seinodes");
        assert_eq!(health.liveness(after(start, 95)), Ok(()));
    }

    #[test]
    fn errors_with_gaps_are_separate_streaks_and_a_quiet_watch_is_live() {
        let health = Health::new(CONFIG);
        let start = Instant::now();
        health.register("jobs");
        health.failed("jobs", "connection refused".into(), start);
        // Re-established with no event since: quiet, not failing.
        assert_eq!(health.liveness(after(start, 600)), Ok(()));
        // A new error long after starts a new streak rather than continuing the old one.
        health.failed("jobs", "connection refused".into(), after(start, 600));
        assert_eq!(health.liveness(after(start, 601)), Ok(()));
    }

    #[test]
    fn an_ended_controller_is_not_live() {
        let health = Health::new(CONFIG);
        health.ended("the seinode controller's stream ended".into());
        assert!(health.liveness(Instant::now()).is_err());
    }
}
