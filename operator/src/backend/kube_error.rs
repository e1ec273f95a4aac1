//! Maps kube-rs client errors onto the [`ClusterError`] kinds the controllers act on.

use crate::cluster::{ClusterError, ObjectRef};

/// What the failed call was doing: a 409 means "exists already" for a create and "stale resourceVersion" for an
/// update.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    Read,
    Create,
    Update,
    Delete,
}

/// Maps a kube-rs error about `object` to the trait's error kinds.
///
/// - 404 → NotFound; 409 → AlreadyExists on create, Conflict otherwise; 400 and 422 → Invalid.
/// - 429, 5xx, timeouts, connection and decoding failures → Transient: retrying later may succeed.
/// - 403 → Forbidden: the ServiceAccount lacks an RBAC permission; the API server's message names it.
/// - Other statuses (401, ...) are Transient: a refreshed token makes the same call succeed without anyone
///   changing the object — the retry (with backoff) and its log line are the right outcome.
pub fn map_kube_error(error: kube::Error, object: ObjectRef, operation: Operation) -> ClusterError {
    match error {
        kube::Error::Api(status) => match status.code {
            404 => ClusterError::NotFound(object),
            409 if operation == Operation::Create || status.reason == "AlreadyExists" => {
                ClusterError::AlreadyExists(object)
            }
            409 => ClusterError::Conflict(object),
            400 | 422 => ClusterError::Invalid { object, message: status.message },
            403 => ClusterError::Forbidden { object, message: status.message },
            code => ClusterError::Transient(format!("{object}: HTTP {code} {}: {}", status.reason, status.message)),
        },
        kube::Error::BuildRequest(build) => ClusterError::Invalid { object, message: build.to_string() },
        other => ClusterError::Transient(format!("{object}: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::Status;

    fn api_error(code: u16, reason: &str) -> kube::Error {
        let mut status = Status::failure("message", reason);
        status.code = code;
        kube::Error::Api(status.boxed())
    }

    fn node() -> ObjectRef {
        ObjectRef::new("SeiNode", "ns", "a")
    }

    #[test]
    fn statuses_map_to_the_trait_kinds() {
        let map = |code, reason, op| map_kube_error(api_error(code, reason), node(), op);
        assert_eq!(map(404, "NotFound", Operation::Read), ClusterError::NotFound(node()));
        assert_eq!(map(409, "Conflict", Operation::Update), ClusterError::Conflict(node()));
        assert_eq!(map(409, "AlreadyExists", Operation::Create), ClusterError::AlreadyExists(node()));
        assert_eq!(map(409, "", Operation::Create), ClusterError::AlreadyExists(node()));
        assert!(matches!(map(422, "Invalid", Operation::Create), ClusterError::Invalid { .. }));
        assert!(matches!(map(400, "BadRequest", Operation::Update), ClusterError::Invalid { .. }));
        assert!(matches!(map(403, "Forbidden", Operation::Update), ClusterError::Forbidden { .. }));
        assert!(!map(403, "Forbidden", Operation::Read).is_transient(), "a missing permission is no outage");
        for code in [429, 500, 503, 504, 401] {
            assert!(map(code, "", Operation::Read).is_transient(), "{code}");
        }
    }
}
