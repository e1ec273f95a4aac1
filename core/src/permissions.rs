//! The API permissions the operator needs, as RBAC names them: one (API group, resource, verb) per kind of call.
//! The simulated API server authorizes every call of the operator's client with [`Permission::of_call`] against the
//! RBAC objects in `deploy/`, and records what it granted; [`SHELL_PERMISSIONS`] lists what only the production
//! shell uses (watches, leader election, the event recorder's repeats), so the two together are what the
//! manifests must grant — no more, no less (`sim/tests/authorization.rs`).

use std::fmt;

use crate::cluster::ClusterObject;

/// One RBAC permission: a verb on a resource (with its subresource, as `seinodes/status`) of an API group.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Permission {
    /// `""` for the core group.
    pub group: String,
    /// The plural resource name, with `/subresource` when there is one.
    pub resource: String,
    pub verb: String,
}

impl Permission {
    pub fn new(group: &str, resource: &str, verb: &str) -> Self {
        Permission { group: group.to_owned(), resource: resource.to_owned(), verb: verb.to_owned() }
    }

    /// The permission a call with `verb` on objects of kind `K` needs; `subresource` as `status`.
    pub fn of_call<K: ClusterObject>(verb: &str, subresource: Option<&str>) -> Self {
        let plural = K::plural(&());
        let resource = match subresource {
            Some(sub) => format!("{plural}/{sub}"),
            None => plural.into_owned(),
        };
        Permission { group: K::group(&()).into_owned(), resource, verb: verb.to_owned() }
    }

    /// The resource without its subresource, and the subresource.
    pub fn split(&self) -> (&str, Option<&str>) {
        match self.resource.split_once('/') {
            Some((resource, sub)) => (resource, Some(sub)),
            None => (&self.resource, None),
        }
    }
}

impl fmt::Display for Permission {
    /// As `kubectl auth can-i` takes it: `update persistentvolumeclaims` or `create events.events.k8s.io`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (resource, sub) = self.split();
        write!(f, "{} {resource}", self.verb)?;
        if !self.group.is_empty() {
            write!(f, ".{}", self.group)?;
        }
        if let Some(sub) = sub {
            write!(f, " --subresource={sub}")?;
        }
        Ok(())
    }
}

/// What `sei-operator run` does beyond the reconcilers' calls: the controllers' watches (kube-runtime lists, then
/// watches, every watched kind: `backend/run/controllers.rs`), leader election (`crate::leader` reads the
/// Lease, creates it when missing, and takes, renews or releases it with an update: `backend/run/leader.rs`), and the event
/// recorder, which patches an Event when the same one repeats (`backend/kube_cluster.rs`).
pub const SHELL_PERMISSIONS: &[(&str, &str, &str)] = &[
    ("sei.io", "seinodedeployments", "list"),
    ("sei.io", "seinodedeployments", "watch"),
    ("sei.io", "seinodes", "list"),
    ("sei.io", "seinodes", "watch"),
    ("apps", "statefulsets", "list"),
    ("apps", "statefulsets", "watch"),
    ("", "services", "list"),
    ("", "services", "watch"),
    ("batch", "jobs", "list"),
    ("batch", "jobs", "watch"),
    ("", "persistentvolumeclaims", "list"),
    ("", "persistentvolumeclaims", "watch"),
    ("", "pods", "list"),
    ("", "pods", "watch"),
    ("coordination.k8s.io", "leases", "get"),
    ("coordination.k8s.io", "leases", "create"),
    ("coordination.k8s.io", "leases", "update"),
    ("events.k8s.io", "events", "patch"),
];

/// [`SHELL_PERMISSIONS`] as values.
pub fn shell_permissions() -> impl Iterator<Item = Permission> {
    SHELL_PERMISSIONS.iter().map(|(group, resource, verb)| Permission::new(group, resource, verb))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::SeiNode;
    use k8s_openapi::api::core::v1::PersistentVolumeClaim;
    use k8s_openapi::api::events::v1::Event;

    #[test]
    fn a_call_names_its_group_plural_and_subresource() {
        assert_eq!(
            Permission::of_call::<SeiNode>("update", Some("status")),
            Permission::new("sei.io", "seinodes/status", "update")
        );
        assert_eq!(
            Permission::of_call::<PersistentVolumeClaim>("get", None),
            Permission::new("", "persistentvolumeclaims", "get")
        );
        assert_eq!(Permission::of_call::<Event>("create", None), Permission::new("events.k8s.io", "events", "create"));
    }

    #[test]
    fn it_reads_as_kubectl_auth_can_i_takes_it() {
        assert_eq!(
            Permission::new("", "persistentvolumeclaims", "update").to_string(),
            "update persistentvolumeclaims"
        );
        assert_eq!(
            Permission::new("sei.io", "seinodes/status", "update").to_string(),
            "update seinodes.sei.io --subresource=status"
        );
    }
}
