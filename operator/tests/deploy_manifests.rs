//! deploy/ as Kubernetes would read it: every document decodes to its typed object, the ClusterRole grants no
//! wildcard, and the operator's Deployment runs non-root on a read-only root filesystem with no capabilities,
//! bounded resources and probes on the health endpoints `sei-operator run` serves.

use std::path::{Path, PathBuf};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::rbac::v1::{ClusterRole, Role};
use sei_operator::manifest::parse_yaml_documents;
use serde_json::Value;

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

/// Every document of every file in deploy/, in apply order.
fn documents() -> Vec<Value> {
    let mut files: Vec<_> = std::fs::read_dir(deploy_dir()).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .flat_map(|p| parse_yaml_documents(&std::fs::read_to_string(p).unwrap()).unwrap())
        .collect()
}

fn of_kind<T: serde::de::DeserializeOwned>(kind: &str) -> Vec<T> {
    documents().into_iter().filter(|d| d["kind"] == kind).map(|d| serde_json::from_value(d).unwrap()).collect()
}

#[test]
fn the_namespace_comes_first_and_every_namespaced_object_is_in_it() {
    let documents = documents();
    assert_eq!(documents[0]["kind"], "Namespace");
    let namespace = documents[0]["metadata"]["name"].as_str().unwrap();
    for document in &documents[1..] {
        let kind = document["kind"].as_str().unwrap();
        if !matches!(kind, "ClusterRole" | "ClusterRoleBinding") {
            assert_eq!(document["metadata"]["namespace"], namespace, "{kind}");
        }
    }
}

#[test]
fn rbac_grants_no_wildcard() {
    let cluster_rules = of_kind::<ClusterRole>("ClusterRole").into_iter().flat_map(|r| r.rules.unwrap_or_default());
    let role_rules = of_kind::<Role>("Role").into_iter().flat_map(|r| r.rules.unwrap_or_default());
    let rules: Vec<_> = cluster_rules.chain(role_rules).collect();
    assert!(!rules.is_empty());
    for rule in &rules {
        let fields = [
            rule.api_groups.clone().unwrap_or_default(),
            rule.resources.clone().unwrap_or_default(),
            rule.verbs.clone(),
        ];
        assert!(fields.iter().flatten().all(|v| !v.contains('*')), "{rule:?}");
        assert!(rule.non_resource_urls.is_none(), "{rule:?}");
    }
    // The status subresource is written with update, never through the main resource.
    assert!(
        rules
            .iter()
            .any(|r| { r.resources.iter().flatten().any(|res| res == "seinodes/status") && r.verbs == ["update"] })
    );
}

#[test]
fn the_operator_runs_locked_down_with_probes_and_bounded_resources() {
    let deployments = of_kind::<Deployment>("Deployment");
    let [deployment] = deployments.as_slice() else { panic!("one Deployment expected") };
    let pod = deployment.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
    assert_eq!(pod.security_context.as_ref().unwrap().run_as_non_root, Some(true));
    let [container] = pod.containers.as_slice() else { panic!("one container expected") };
    assert_eq!(container.args.as_deref(), Some(&["run".to_owned()][..]));

    let security = container.security_context.as_ref().unwrap();
    assert_eq!(security.read_only_root_filesystem, Some(true));
    assert_eq!(security.allow_privilege_escalation, Some(false));
    assert_eq!(security.capabilities.as_ref().unwrap().drop.as_deref(), Some(&["ALL".to_owned()][..]));

    let resources = container.resources.as_ref().unwrap();
    for bounds in [&resources.requests, &resources.limits] {
        let bounds = bounds.as_ref().unwrap();
        assert!(bounds.contains_key("cpu") && bounds.contains_key("memory"));
    }

    let probe_path = |probe: &Option<k8s_openapi::api::core::v1::Probe>| {
        probe.as_ref().unwrap().http_get.as_ref().unwrap().path.clone().unwrap()
    };
    assert_eq!(probe_path(&container.liveness_probe), "/healthz");
    assert_eq!(probe_path(&container.readiness_probe), "/readyz");
    let env: Vec<_> = container.env.iter().flatten().map(|e| e.name.as_str()).collect();
    for name in ["POD_NAME", "POD_NAMESPACE", "SEI_OPERATOR_PROBE_ADDR", "SEI_OPERATOR_METRICS_ADDR"] {
        assert!(env.contains(&name), "{name} missing from {env:?}");
    }
}
