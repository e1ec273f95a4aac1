//! Which of the operator's reads its watch caches answer, and which go to the API server: the one policy that
//! production's `KubeCluster` follows and the simulator's request counter applies, so the simulator counts exactly
//! the requests production sends.
//!
//! A cache here is a kube-runtime reflector store fed by one of the operator's watches (one connection each,
//! against a request per read): SeiNodeDeployments and SeiNodes, all of them; StatefulSets, Jobs, Services,
//! PersistentVolumeClaims and Pods, only those carrying the operator's labels (their watches are label-filtered).
//! A cache lags the API server by its event delivery, which the reconcilers tolerate on every get and list — the
//! simulator reads every operator get and list from a lagging copy of its store under the `staleReads` fault.
//! Kept direct:
//!
//! - the Lease and Events: no watch of them runs, and the Lease must be fresh;
//! - lists of Pods (a bootstrap Job's pods): only SeiNodes are listed from a cache;
//! - a miss in a label-filtered cache: the object may exist without the label (a user's Service of the name
//!   the operator wants), which only the API server can say;
//! - every read made through [`crate::cluster::Cluster::get_fresh`]: reads whose staleness would do harm (the
//!   adoption's re-check of the owner, `RecheckDeletionTimestamp`) or is certain (a re-read right after the
//!   reconcile's own write, to modify and write back);
//! - any read before a kind's cache has its initial list (`KubeCluster` checks; the simulator's cache is always
//!   listed);
//! - read-your-writes: a read of an object whose cached version is older than the operator's own last write of
//!   it ([`cache_holds_own_write`]) — a reconcile requeued at once after its write runs before the write's watch
//!   event, and would act on the state before it. The simulator's cache at rest holds every write at once, so
//!   this never fires there; under `staleReads` it would, and the simulator answers from the lagging cache
//!   all the same (harsher) and does not count it.

use std::collections::BTreeMap;

use crate::objects::meta::{LABEL_DEPLOYMENT, LABEL_NODE};

/// What a read asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Read {
    Get,
    List,
}

/// Where a read of a kind can be answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadSource {
    /// The API server, always.
    Api,
    /// The kind's cache, which holds every object of the kind in the watched namespaces: it answers hits and
    /// misses alike.
    Cache,
    /// Caches of objects carrying one of these label keys: an object found there answers; a miss goes to the API
    /// server, as an object without the label would be missed.
    LabelledCache(&'static [&'static str]),
}

/// Where the operator's `read` of `kind` is answered (given its cache is listed).
pub fn read_source(kind: &str, read: Read) -> ReadSource {
    match (kind, read) {
        // The two controllers' own watches: every object of the kind.
        ("SeiNodeDeployment", Read::Get) | ("SeiNode", Read::Get | Read::List) => ReadSource::Cache,
        // Owned by SeiNodes; watched by the `sei.io/node` label the operator puts on them. A node's data claim
        // carries it too: the operator labels the one it makes ahead of a bootstrap, and the StatefulSet
        // controller gives the one it makes the set's selector labels (kubernetes
        // `pkg/controller/statefulset/stateful_set_utils.go`, `getPersistentVolumeClaims`).
        // A node's pod has the template's labels, a bootstrap Job's pod its template's (`sei.io/node` both).
        ("StatefulSet" | "Job" | "PersistentVolumeClaim" | "Pod", Read::Get) => {
            ReadSource::LabelledCache(&[LABEL_NODE])
        }
        // A deployment's Service (`sei.io/nodedeployment`) and a node's headless one (`sei.io/node`).
        ("Service", Read::Get) => ReadSource::LabelledCache(&[LABEL_DEPLOYMENT, LABEL_NODE]),
        // Lists of owned kinds are not made from a cache; the Lease is not watched.
        _ => ReadSource::Api,
    }
}

/// Whether the cache answers a get of `kind`, given what the cache holds under the name: `found` is the labels
/// of the object it holds (`Some(None)`: an object with no labels), `None` when it holds none.
pub fn cache_answers_get(kind: &str, found: Option<Option<&BTreeMap<String, String>>>) -> bool {
    match read_source(kind, Read::Get) {
        ReadSource::Api => false,
        ReadSource::Cache => true,
        ReadSource::LabelledCache(keys) => {
            found.flatten().is_some_and(|labels| keys.iter().any(|key| labels.contains_key(*key)))
        }
    }
}

/// Whether the cache answers a list of `kind`.
pub fn cache_answers_list(kind: &str) -> bool {
    read_source(kind, Read::List) == ReadSource::Cache
}

/// Whether a cached object (its `resourceVersion`) holds the operator's own write of it (the version the API
/// server answered the write with). resourceVersions are etcd revisions, compared as numbers (Kubernetes 1.34
/// documents that they may be: KEP-5504, comparable resource versions); one that is not a number proves it only
/// by being the same.
pub fn cache_holds_own_write(cached: Option<&str>, written: &str) -> bool {
    match (cached.and_then(|rv| rv.parse::<u64>().ok()), written.parse::<u64>().ok()) {
        (Some(cached), Some(written)) => cached >= written,
        _ => cached == Some(written),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(key: &str) -> BTreeMap<String, String> {
        [(key.to_owned(), "x".to_owned())].into()
    }

    #[test]
    fn the_controllers_own_kinds_are_read_from_their_caches_hit_or_miss() {
        assert!(cache_answers_get("SeiNodeDeployment", None));
        assert!(cache_answers_get("SeiNode", Some(None)));
        assert!(cache_answers_list("SeiNode"));
        assert!(!cache_answers_list("SeiNodeDeployment"));
    }

    #[test]
    fn a_label_filtered_cache_answers_only_objects_carrying_its_label() {
        assert!(cache_answers_get("StatefulSet", Some(Some(&labels(LABEL_NODE)))));
        assert!(cache_answers_get("Service", Some(Some(&labels(LABEL_DEPLOYMENT)))));
        assert!(cache_answers_get("Job", Some(Some(&labels(LABEL_NODE)))));
        assert!(cache_answers_get("PersistentVolumeClaim", Some(Some(&labels(LABEL_NODE)))));
        assert!(!cache_answers_get("PersistentVolumeClaim", Some(Some(&labels("app")))), "a user's claim");
        assert!(cache_answers_get("Pod", Some(Some(&labels(LABEL_NODE)))));
        assert!(!cache_answers_list("Pod"), "a bootstrap Job's pods are listed from the API server");
        assert!(!cache_answers_get("Service", Some(Some(&labels("app")))), "a user's Service of the same name");
        assert!(!cache_answers_get("Service", Some(None)));
        assert!(!cache_answers_get("StatefulSet", None), "a miss asks the API server");
        assert!(!cache_answers_list("Service"));
    }

    #[test]
    fn a_cache_holds_a_write_once_it_has_that_version_or_a_later_one() {
        assert!(cache_holds_own_write(Some("12"), "12"));
        assert!(cache_holds_own_write(Some("13"), "12"));
        assert!(!cache_holds_own_write(Some("11"), "12"));
        assert!(!cache_holds_own_write(None, "12"), "not in the cache yet");
        assert!(cache_holds_own_write(Some("abc"), "abc"));
        assert!(!cache_holds_own_write(Some("abd"), "abc"));
    }

    #[test]
    fn unwatched_kinds_and_the_lease_go_to_the_api_server() {
        for kind in ["Lease", "Event"] {
            assert!(!cache_answers_get(kind, Some(Some(&labels(LABEL_NODE)))), "{kind}");
            assert!(!cache_answers_list(kind), "{kind}");
        }
    }
}
