//! Faults of the API server as the operator's client meets them: Conflicts, transient errors, lost responses
//! and refusal windows (429 / 503 / 500).

/// Faults on the operator's API client.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ApiFaults {
    /// The next this many writes fail with Conflict.
    pub conflicts: u32,
    /// The next this many calls (reads or writes) fail with a transient error.
    pub transient: u32,
    /// Each write fails with Conflict with this probability (drawn from the world's RNG).
    pub conflict_rate: f64,
    /// Each call fails transiently with this probability.
    pub transient_rate: f64,
    /// After each step in which a write succeeded, the next write fails with Conflict: about every other write.
    pub conflict_after_success: bool,
    /// Writes that succeeded, and how many of them the last re-arming of `conflict_after_success` had seen.
    pub writes_succeeded: u64,
    pub writes_succeeded_seen: u64,
    /// The next this many writes that the API server applies lose their response on the way back.
    pub lost_responses: u32,
    /// Each applied write loses its response with this probability.
    pub lost_response_rate: f64,
    /// How a lost response reaches the client: as the API server's 504 (its request timeout, the write applied
    /// anyway), which the client's retry layer sends again; otherwise as a client-side timeout (Transient).
    pub lost_as_gateway_timeout: bool,
    /// The API server refuses the operator's calls until a time: a 429 storm, a 503 or a 500 burst.
    pub refusal: Option<Refusal>,
}

/// A window in which the API server refuses every call of the operator with one status.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Refusal {
    /// Simulated time at which the API server answers again.
    pub until: std::time::Duration,
    pub status: RefusalStatus,
}

/// The status of a refusal, which decides what the client does with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RefusalStatus {
    /// 429 with `Retry-After` (API Priority and Fairness rejecting the operator's flow).
    TooManyRequests { retry_after: std::time::Duration },
    /// 503: the API server (or its load balancer) unavailable.
    Unavailable,
    /// 500: an internal error; kube's retry layer does not retry it.
    Internal,
}
