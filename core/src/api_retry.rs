//! How the operator's API client sends a refused call again (429, 503, 504), in one place for production (which
//! configures kube's retry layer with it) and the simulator (whose client sleeps the same delays).
//!
//! kube's default (kube-client `src/client/retry.rs`, `RetryPolicy::server_retry`, on by `Config::default_retry`)
//! retries 15 times from 5 ms, doubling up to 1000 s with a jitter of up to twice the base (tower
//! `src/retry/backoff.rs`, `ExponentialBackoff`): its 15th sleep alone may reach 245 s. A call made during a
//! two-minute API outage then sleeps for minutes after the API server is back, holding its reconcile, and a gated
//! node stopped at its upgrade waited that long for its new binary (found by fuzz seed 9898001, case 1481). The
//! operator keeps kube's first delays and retry count and caps each sleep at [`API_RETRY`]`.max_delay`, so a call
//! goes through within seconds of the server's return; past the retries the error reaches the reconcile, whose own
//! back-off (`ReconcileError::retry_after`) takes over.

use std::time::Duration;

/// An exponential retry policy as kube's `RetryPolicy::new(min_delay, max_delay, max_retries, server_retry)`
/// builds it, with the server's `Retry-After` honoured when it asks for longer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ApiRetry {
    pub min_delay: Duration,
    pub max_delay: Duration,
    pub max_retries: u32,
}

/// The operator's policy: kube's 5 ms and 15 retries, each sleep at most 5 s (kube's own `RetryPolicy::default`
/// caps at 5 s too). Every sleep together is at most about 40 s.
pub const API_RETRY: ApiRetry =
    ApiRetry { min_delay: Duration::from_millis(5), max_delay: Duration::from_secs(5), max_retries: 15 };

/// The ratio of the base delay kube lets tower add at random (`ExponentialBackoffMaker::new(.., 2.0, ..)`).
const JITTER: f64 = 2.0;

impl ApiRetry {
    /// The sleep before retry `attempt` (0 for the first), given a uniform draw in [0, 1): tower's base, the
    /// minimum doubled per attempt and capped at the maximum, plus up to twice the base (`JITTER`), never past the
    /// maximum.
    pub fn delay(&self, attempt: u32, draw: f64) -> Duration {
        let base =
            self.min_delay.checked_mul(2_u32.saturating_pow(attempt)).unwrap_or(self.max_delay).min(self.max_delay);
        let jitter = base.mul_f64((draw * JITTER).clamp(0.0, JITTER));
        base + jitter.min(self.max_delay - base)
    }

    /// The sleep before retry `attempt` when the server asked for `retry_after`: the longer of the two, as
    /// kube's policy sleeps the server's delay when it ends after the backoff's.
    pub fn delay_honouring(&self, attempt: u32, draw: f64, retry_after: Option<Duration>) -> Duration {
        let backoff = self.delay(attempt, draw);
        retry_after.map_or(backoff, |asked| backoff.max(asked))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_from_the_minimum_with_up_to_twice_the_base_added() {
        assert_eq!(API_RETRY.delay(0, 0.0), Duration::from_millis(5));
        assert_eq!(API_RETRY.delay(3, 0.0), Duration::from_millis(40));
        assert_eq!(API_RETRY.delay(3, 0.5), Duration::from_millis(80));
        assert_eq!(API_RETRY.delay(3, 0.999_999), Duration::from_millis(40).mul_f64(1.0 + 2.0 * 0.999_999));
    }

    #[test]
    fn no_sleep_exceeds_the_cap_and_all_of_them_stay_under_a_minute() {
        for draw in [0.0, 0.25, 0.5, 0.75, 0.999_999] {
            let sleeps: Vec<Duration> = (0..API_RETRY.max_retries).map(|n| API_RETRY.delay(n, draw)).collect();
            assert!(sleeps.iter().all(|d| *d <= API_RETRY.max_delay), "{sleeps:?}");
            assert!(sleeps.iter().sum::<Duration>() < Duration::from_secs(60), "{sleeps:?}");
        }
        assert_eq!(API_RETRY.delay(u32::MAX, 0.999_999), API_RETRY.max_delay);
    }

    #[test]
    fn kubes_default_policy_would_sleep_minutes_at_its_last_retries() {
        // What the operator no longer does: kube's `server_retry` parameters through the same arithmetic.
        let kube_default = ApiRetry { max_delay: Duration::from_secs(1000), ..API_RETRY };
        assert_eq!(kube_default.delay(14, 0.0), Duration::from_millis(81_920));
        assert!(kube_default.delay(14, 0.999_999) > Duration::from_secs(240));
    }

    #[test]
    fn a_retry_after_longer_than_the_backoff_is_honoured() {
        assert_eq!(API_RETRY.delay_honouring(0, 0.0, Some(Duration::from_secs(2))), Duration::from_secs(2));
        assert_eq!(API_RETRY.delay_honouring(12, 0.0, Some(Duration::from_secs(1))), API_RETRY.max_delay);
        assert_eq!(API_RETRY.delay_honouring(0, 0.0, None), Duration::from_millis(5));
    }
}
