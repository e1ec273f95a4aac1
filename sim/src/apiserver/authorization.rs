//! The simulated API server's authorizer: RBAC as kube-apiserver evaluates it, over the very manifests in
//! `deploy/` a platform engineer applies. Every call of the operator's client is authorized as the operator's
//! ServiceAccount (the one its Deployment runs as); a call no bound rule grants gets 403 with the API server's
//! wording, and what was granted is recorded, so a test can tell a rule nothing uses. The harness's client is an
//! administrator, as a user with `kubectl` is.
//!
//! Rule matching follows kubernetes/kubernetes `pkg/apis/rbac/v1/evaluation_helpers.go` (`VerbMatches`,
//! `APIGroupMatches`, `ResourceMatches` with `*/subresource`, `ResourceNameMatches`); which rules apply, and where,
//! follows `plugin/pkg/auth/authorizer/rbac/rbac.go` and `pkg/registry/rbac/validation/rule.go`
//! (`VisitRulesFor`: a ClusterRoleBinding grants cluster-wide, a RoleBinding only in its own namespace, whether it
//! refers to a Role or a ClusterRole). The 403 message is `responsewriters.forbiddenMessage`
//! (staging/src/k8s.io/apiserver/pkg/endpoints/handlers/responsewriters/errors.go).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, OnceLock};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, Subject};
use sei_operator_core::manifest::parse_yaml_documents;
use sei_operator_core::permissions::Permission;
use serde_json::Value;

/// `deploy/`, in apply order, as compiled into the simulator: the manifests a user installs are the rules the
/// simulated API server enforces.
const DEPLOY_MANIFESTS: &[&str] = &[
    include_str!("../../../deploy/base/00-namespace.yaml"),
    include_str!("../../../deploy/base/01-serviceaccount.yaml"),
    include_str!("../../../deploy/base/02-clusterrole.yaml"),
    include_str!("../../../deploy/base/03-clusterrolebinding.yaml"),
    include_str!("../../../deploy/base/04-leader-election.yaml"),
    include_str!("../../../deploy/base/05-deployment.yaml"),
];

/// Why manifests could not be read as RBAC.
#[derive(Debug, thiserror::Error)]
pub enum AuthorizationError {
    #[error("a manifest is not YAML: {0}")]
    Yaml(String),
    #[error("a {kind} does not decode: {message}")]
    Decode { kind: String, message: String },
    #[error("no Deployment names the operator's ServiceAccount")]
    NoOperatorDeployment,
}

/// A rule and where it applies: everywhere (ClusterRoleBinding) or in one namespace (RoleBinding).
#[derive(Clone, Debug)]
struct Grant {
    namespace: Option<String>,
    rule: PolicyRule,
}

/// The rules bound to one ServiceAccount.
#[derive(Clone, Debug)]
pub struct Authorizer {
    /// `system:serviceaccount:<namespace>:<name>`, as the API server names the user.
    pub user: String,
    grants: Vec<Grant>,
}

impl Authorizer {
    /// The operator's authorizer, from the compiled-in `deploy/` (read once).
    pub fn operator() -> Result<Arc<Authorizer>, String> {
        static OPERATOR: OnceLock<Result<Arc<Authorizer>, String>> = OnceLock::new();
        OPERATOR
            .get_or_init(|| Authorizer::for_operator_in(DEPLOY_MANIFESTS).map(Arc::new).map_err(|e| e.to_string()))
            .clone()
    }

    /// The rules bound to the ServiceAccount the operator's Deployment in `manifests` runs as.
    pub fn for_operator_in(manifests: &[&str]) -> Result<Authorizer, AuthorizationError> {
        let mut documents = Vec::new();
        for text in manifests {
            documents.extend(parse_yaml_documents(text).map_err(|e| AuthorizationError::Yaml(e.to_string()))?);
        }
        let deployment: Deployment =
            decode_one(&documents, "Deployment")?.ok_or(AuthorizationError::NoOperatorDeployment)?;
        let namespace = deployment.metadata.namespace.clone().unwrap_or_else(|| "default".into());
        let pod = deployment.spec.and_then(|s| s.template.spec);
        let account = pod.and_then(|p| p.service_account_name).unwrap_or_else(|| "default".into());
        Authorizer::for_service_account(&documents, &namespace, &account)
    }

    /// The rules `documents` bind to ServiceAccount `namespace/name`.
    pub fn for_service_account(
        documents: &[Value],
        namespace: &str,
        name: &str,
    ) -> Result<Authorizer, AuthorizationError> {
        let cluster_roles: BTreeMap<String, Vec<PolicyRule>> = decode_all::<ClusterRole>(documents, "ClusterRole")?
            .into_iter()
            .map(|r| (r.metadata.name.unwrap_or_default(), r.rules.unwrap_or_default()))
            .collect();
        let roles: BTreeMap<(String, String), Vec<PolicyRule>> = decode_all::<Role>(documents, "Role")?
            .into_iter()
            .map(|r| {
                let key = (r.metadata.namespace.unwrap_or_default(), r.metadata.name.unwrap_or_default());
                (key, r.rules.unwrap_or_default())
            })
            .collect();
        let is_us = |subjects: &Option<Vec<Subject>>, binding_namespace: &str| {
            subjects.iter().flatten().any(|s| {
                // A ServiceAccount subject without a namespace means the binding's own (RoleBindings only).
                let subject_namespace = s.namespace.as_deref().unwrap_or(binding_namespace);
                s.kind == "ServiceAccount" && s.name == name && subject_namespace == namespace
            })
        };
        let mut grants = Vec::new();
        for binding in decode_all::<ClusterRoleBinding>(documents, "ClusterRoleBinding")? {
            if is_us(&binding.subjects, "") && binding.role_ref.kind == "ClusterRole" {
                for rule in cluster_roles.get(&binding.role_ref.name).into_iter().flatten() {
                    grants.push(Grant { namespace: None, rule: rule.clone() });
                }
            }
        }
        for binding in decode_all::<RoleBinding>(documents, "RoleBinding")? {
            let binding_namespace = binding.metadata.namespace.clone().unwrap_or_default();
            if !is_us(&binding.subjects, &binding_namespace) {
                continue;
            }
            let rules = match binding.role_ref.kind.as_str() {
                "Role" => roles.get(&(binding_namespace.clone(), binding.role_ref.name.clone())),
                "ClusterRole" => cluster_roles.get(&binding.role_ref.name),
                _ => None,
            };
            for rule in rules.into_iter().flatten() {
                grants.push(Grant { namespace: Some(binding_namespace.clone()), rule: rule.clone() });
            }
        }
        Ok(Authorizer { user: format!("system:serviceaccount:{namespace}:{name}"), grants })
    }

    /// Whether some bound rule grants `permission` on the object `name` in `namespace`.
    pub fn allows(&self, permission: &Permission, namespace: &str, name: &str) -> bool {
        let (resource, subresource) = permission.split();
        self.grants.iter().any(|grant| {
            grant.namespace.as_deref().is_none_or(|n| n == namespace)
                && rule_allows(&grant.rule, permission, resource, subresource, name)
        })
    }

    /// Every (group, resource, verb) the bound rules name, wherever they apply.
    pub fn granted(&self) -> BTreeSet<Permission> {
        let mut granted = BTreeSet::new();
        for grant in &self.grants {
            for group in grant.rule.api_groups.iter().flatten() {
                for resource in grant.rule.resources.iter().flatten() {
                    for verb in &grant.rule.verbs {
                        granted.insert(Permission::new(group, resource, verb));
                    }
                }
            }
        }
        granted
    }

    /// The API server's 403 message for `permission` on `name` in `namespace`.
    pub fn forbidden_message(&self, permission: &Permission, namespace: &str, name: &str) -> String {
        let (resource, subresource) = permission.split();
        let qualified =
            if permission.group.is_empty() { resource.to_owned() } else { format!("{resource}.{}", permission.group) };
        // `apierrors.NewForbidden`: the group-qualified resource and the name, then the authorizer's reason.
        let object = if name.is_empty() { qualified } else { format!("{qualified} \"{name}\"") };
        let combined = subresource.map_or_else(|| resource.to_owned(), |sub| format!("{resource}/{sub}"));
        format!(
            "{object} is forbidden: User \"{}\" cannot {} resource \"{combined}\" in API group \"{}\" in the \
             namespace \"{namespace}\"",
            self.user, permission.verb, permission.group
        )
    }
}

/// kubernetes `evaluation_helpers.go`: a rule allows a request when its verb, API group, resource (exactly,
/// `*`, or `*/<subresource>`) and — when it lists any — resource name all match.
fn rule_allows(
    rule: &PolicyRule,
    permission: &Permission,
    resource: &str,
    subresource: Option<&str>,
    name: &str,
) -> bool {
    let any = |values: &[String], wanted: &str| values.iter().any(|v| v == "*" || v == wanted);
    // `resource/subresource` as a rule names it: the permission's own resource (not re-joined per rule: every
    // call of the operator is checked against every rule).
    let combined = permission.resource.as_str();
    debug_assert_eq!(permission.split(), (resource, subresource));
    let resource_matches = rule
        .resources
        .iter()
        .flatten()
        .any(|r| r == "*" || r == combined || subresource.is_some_and(|sub| r.strip_prefix("*/") == Some(sub)));
    let names = rule.resource_names.as_deref().unwrap_or_default();
    any(&rule.verbs, &permission.verb)
        && any(rule.api_groups.as_deref().unwrap_or_default(), &permission.group)
        && resource_matches
        && (names.is_empty() || names.iter().any(|n| n == name))
}

fn decode_all<T: serde::de::DeserializeOwned>(documents: &[Value], kind: &str) -> Result<Vec<T>, AuthorizationError> {
    documents
        .iter()
        .filter(|d| d.get("kind").and_then(Value::as_str) == Some(kind))
        .map(|d| {
            T::deserialize(d).map_err(|e| AuthorizationError::Decode { kind: kind.to_owned(), message: e.to_string() })
        })
        .collect()
}

fn decode_one<T: serde::de::DeserializeOwned>(
    documents: &[Value],
    kind: &str,
) -> Result<Option<T>, AuthorizationError> {
    Ok(decode_all(documents, kind)?.into_iter().next())
}

/// What the simulated API server knows about authorization during a run.
#[derive(Clone, Debug, Default)]
pub struct AuthorizationState {
    /// The operator's rules; `None` authorizes everything (a world built without `deploy/`).
    pub authorizer: Option<Arc<Authorizer>>,
    /// Permissions a scenario took away (an RBAC edit by a cluster admin), until healed.
    pub revoked: BTreeSet<Permission>,
    /// Every permission a call of the operator was granted under.
    pub used: BTreeSet<Permission>,
}

impl AuthorizationState {
    /// The operator's rules from `deploy/`.
    pub fn for_operator() -> Result<Self, String> {
        Ok(AuthorizationState { authorizer: Some(Authorizer::operator()?), ..AuthorizationState::default() })
    }

    /// Authorizes one call of the operator: `Err` with the API server's 403 message when no rule grants it (or a
    /// scenario revoked it).
    pub fn authorize(&mut self, permission: &Permission, namespace: &str, name: &str) -> Result<(), String> {
        let Some(authorizer) = &self.authorizer else { return Ok(()) };
        if self.revoked.contains(permission) || !authorizer.allows(permission, namespace, name) {
            return Err(authorizer.forbidden_message(permission, namespace, name));
        }
        if !self.used.contains(permission) {
            self.used.insert(permission.clone());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROLES: &str = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: op}
rules:
  - apiGroups: ["sei.io"]
    resources: ["seinodes", "*/status"]
    verbs: ["get", "update"]
  - apiGroups: [""]
    resources: ["configmaps"]
    resourceNames: ["only-this"]
    verbs: ["get"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: op}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: op}
subjects: [{kind: ServiceAccount, name: op, namespace: ops}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: lease, namespace: ops}
rules:
  - apiGroups: ["coordination.k8s.io"]
    resources: ["leases"]
    verbs: ["get"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: lease, namespace: ops}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: lease}
subjects: [{kind: ServiceAccount, name: op}]
"#;

    fn authorizer() -> Authorizer {
        let documents = parse_yaml_documents(ROLES).expect("yaml");
        Authorizer::for_service_account(&documents, "ops", "op").expect("rbac")
    }

    #[test]
    fn rules_match_as_kubernetes_matches_them() {
        let a = authorizer();
        let p = Permission::new;
        assert!(a.allows(&p("sei.io", "seinodes", "get"), "any", "x"));
        assert!(!a.allows(&p("sei.io", "seinodes", "delete"), "any", "x"), "verb");
        assert!(!a.allows(&p("apps", "seinodes", "get"), "any", "x"), "group");
        assert!(a.allows(&p("sei.io", "seinodedeployments/status", "update"), "any", "x"), "*/status");
        assert!(
            !a.allows(&p("sei.io", "seinodes/scale", "update"), "any", "x"),
            "a resource rule is not its subresources"
        );
        assert!(a.allows(&p("", "configmaps", "get"), "any", "only-this"));
        assert!(!a.allows(&p("", "configmaps", "get"), "any", "other"), "resourceNames");
    }

    #[test]
    fn a_role_binding_grants_only_in_its_namespace() {
        let a = authorizer();
        let lease = Permission::new("coordination.k8s.io", "leases", "get");
        assert!(a.allows(&lease, "ops", "l"), "a subject without a namespace is the binding's own");
        assert!(!a.allows(&lease, "sei", "l"));
    }

    #[test]
    fn the_403_reads_as_the_api_server_writes_it() {
        let a = authorizer();
        let message = a.forbidden_message(&Permission::new("", "persistentvolumeclaims", "update"), "sei", "data-n-0");
        assert_eq!(
            message,
            "persistentvolumeclaims \"data-n-0\" is forbidden: User \"system:serviceaccount:ops:op\" cannot update \
             resource \"persistentvolumeclaims\" in API group \"\" in the namespace \"sei\""
        );
    }

    #[test]
    fn the_operator_runs_as_the_service_account_of_its_deployment_in_deploy() {
        let a = Authorizer::operator().expect("deploy/ reads as RBAC");
        assert_eq!(a.user, "system:serviceaccount:sei-operator:sei-operator");
        assert!(a.allows(&Permission::new("", "persistentvolumeclaims", "update"), "sei", "data-n-0"));
        assert!(!a.allows(&Permission::new("", "persistentvolumeclaims", "delete"), "sei", "data-n-0"));
    }
}
