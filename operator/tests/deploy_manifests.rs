//! deploy/ as Kubernetes would read it: every document decodes to its typed object, the ClusterRole grants no
//! wildcard, and the operator's Deployment runs non-root on a read-only root filesystem with no capabilities,
//! bounded resources and probes on the health endpoints `sei-operator run` serves. deploy/nodes-namespace/, applied
//! into each namespace where nodes run, is judged against the pods the operator really builds: its NetworkPolicy
//! selects them, admits their sidecar port from the operator's pods only and seid's ports from anywhere.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, PodTemplateSpec};
use k8s_openapi::api::networking::v1::{NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPeer};
use k8s_openapi::api::rbac::v1::{ClusterRole, Role};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use sei_operator::api::{SeiNode, SidecarSpec};
use sei_operator::manifest::{Manifest, ManifestValidator, parse_yaml_documents};
use sei_operator::node_defaults::NodeDefaults;
use sei_operator::workload;
use serde_json::Value;

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

/// Every document of every YAML file in `dir` (not its subfolders), in file-name order: apply order.
fn documents_in(dir: &Path) -> Vec<Value> {
    let mut files: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .flat_map(|p| parse_yaml_documents(&std::fs::read_to_string(p).unwrap()).unwrap())
        .collect()
}

/// Every document of every file in deploy/, in apply order.
fn documents() -> Vec<Value> {
    documents_in(&deploy_dir())
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

// --- deploy/nodes-namespace/: the sidecar's NetworkPolicy -------------------------------------------------------

type Labels = BTreeMap<String, String>;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

/// Every document of every file in deploy/nodes-namespace/.
fn nodes_namespace_documents() -> Vec<Value> {
    documents_in(&deploy_dir().join("nodes-namespace"))
}

fn sidecar_policy() -> NetworkPolicy {
    let policies: Vec<NetworkPolicy> = nodes_namespace_documents()
        .into_iter()
        .filter(|d| d["kind"] == "NetworkPolicy")
        .map(|d| serde_json::from_value(d).unwrap())
        .collect();
    let [policy] = policies.as_slice() else { panic!("one NetworkPolicy expected in deploy/nodes-namespace/") };
    policy.clone()
}

/// Whether a label selector selects an object with `labels`, as Kubernetes judges it (`metav1.LabelSelector`):
/// every `matchLabels` pair and every `matchExpressions` requirement must hold; an empty selector selects all.
fn selects(selector: &LabelSelector, labels: &Labels) -> bool {
    let pairs = selector.match_labels.iter().flatten().all(|(key, value)| labels.get(key) == Some(value));
    let expressions = selector.match_expressions.iter().flatten().all(|requirement| {
        let value = labels.get(&requirement.key);
        let values = requirement.values.as_deref().unwrap_or_default();
        match requirement.operator.as_str() {
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => value.is_none_or(|v| !values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            other => panic!("{other} is no label selector operator"),
        }
    });
    pairs && expressions
}

#[test]
fn the_label_selector_matcher_judges_as_kubernetes_does() {
    let requirement = |key: &str, operator: &str, values: &[&str]| LabelSelector {
        match_expressions: Some(vec![LabelSelectorRequirement {
            key: key.into(),
            operator: operator.into(),
            values: (!values.is_empty()).then(|| values.iter().map(|v| (*v).to_owned()).collect()),
        }]),
        ..Default::default()
    };
    let pod = labels(&[("a", "1"), ("b", "2")]);
    assert!(selects(&LabelSelector::default(), &pod));
    assert!(selects(&LabelSelector { match_labels: Some(labels(&[("a", "1")])), ..Default::default() }, &pod));
    assert!(!selects(&LabelSelector { match_labels: Some(labels(&[("a", "2")])), ..Default::default() }, &pod));
    assert!(selects(&requirement("a", "In", &["0", "1"]), &pod));
    assert!(!selects(&requirement("a", "In", &["0"]), &pod));
    assert!(!selects(&requirement("c", "In", &["1"]), &pod));
    assert!(selects(&requirement("a", "NotIn", &["0"]), &pod));
    assert!(!selects(&requirement("a", "NotIn", &["1"]), &pod));
    assert!(selects(&requirement("c", "NotIn", &["1"]), &pod));
    assert!(selects(&requirement("a", "Exists", &[]), &pod));
    assert!(!selects(&requirement("c", "Exists", &[]), &pod));
    assert!(selects(&requirement("c", "DoesNotExist", &[]), &pod));
    assert!(!selects(&requirement("a", "DoesNotExist", &[]), &pod));
}

fn fixture_node(file: &str) -> SeiNode {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures").join(file);
    let validator = ManifestValidator::new().expect("schemas compile");
    let manifests = validator.admit_yaml(&std::fs::read_to_string(path).unwrap()).expect("valid fixture");
    let Some(Manifest::SeiNode(node)) = manifests.into_iter().next() else { panic!("{file}: a SeiNode expected") };
    let mut node = *node;
    node.metadata.uid = Some("uid-node".into());
    node
}

/// The pod templates the operator builds for nodes, with the built-in defaults: a StatefulSet's and a bootstrap
/// Job's, at the default sidecar port and at a custom one (`spec.sidecar.port`).
fn node_pod_templates() -> Vec<(String, PodTemplateSpec)> {
    let mut templates = Vec::new();
    for (file, custom_port) in [("standalone-seinode.yaml", None), ("validator-seinode.yaml", Some(8777))] {
        let mut node = fixture_node(file);
        if let Some(port) = custom_port {
            node.spec.sidecar.get_or_insert_with(SidecarSpec::default).port = Some(port);
        }
        let settings = NodeDefaults::built_in().for_node(&node.spec);
        let statefulset = workload::stateful_set(&node, &settings);
        templates.push((format!("{file} StatefulSet"), statefulset.spec.unwrap().template));
        let job = workload::bootstrap_job(&node, &settings, "sei:v6.2.0", 1_000_000);
        templates.push((format!("{file} bootstrap Job"), job.spec.unwrap().template));
    }
    templates
}

/// The TCP port numbers a rule admits on a pod, or `None` for every port (a rule without ports). A named port is
/// resolved against the pod's own container ports, init containers' included: the API defines it as a port "on a
/// pod", and the sidecar is a native sidecar — an init container.
fn admitted_ports(rule: &NetworkPolicyIngressRule, pod: &PodTemplateSpec) -> Option<BTreeSet<i32>> {
    let ports = rule.ports.as_ref().filter(|p| !p.is_empty())?;
    let spec = pod.spec.as_ref().unwrap();
    let container_ports: Vec<_> =
        spec.init_containers.iter().flatten().chain(&spec.containers).flat_map(|c| c.ports.iter().flatten()).collect();
    Some(
        ports
            .iter()
            .filter(|p| p.protocol.as_deref().unwrap_or("TCP") == "TCP")
            .flat_map(|p| match p.port.as_ref().expect("a port") {
                IntOrString::Int(number) => vec![*number],
                IntOrString::String(name) => container_ports
                    .iter()
                    .filter(|c| c.name.as_deref() == Some(name.as_str()))
                    .map(|c| c.container_port)
                    .collect(),
            })
            .collect(),
    )
}

fn admits(rule: &NetworkPolicyIngressRule, pod: &PodTemplateSpec, port: i32) -> bool {
    admitted_ports(rule, pod).is_none_or(|ports| ports.contains(&port))
}

/// Whether a rule admits every source (no `from`, or an empty one).
fn from_anywhere(rule: &NetworkPolicyIngressRule) -> bool {
    rule.from.as_ref().is_none_or(Vec::is_empty)
}

/// The operator's namespace (deploy/00-namespace.yaml) and its pods' labels (deploy/05-deployment.yaml).
fn operator_namespace_and_pod_labels() -> (Namespace, Labels) {
    let namespaces = of_kind::<Namespace>("Namespace");
    let [namespace] = namespaces.as_slice() else { panic!("one Namespace expected") };
    let deployments = of_kind::<Deployment>("Deployment");
    let [deployment] = deployments.as_slice() else { panic!("one Deployment expected") };
    let template = &deployment.spec.as_ref().unwrap().template;
    (namespace.clone(), template.metadata.as_ref().unwrap().labels.clone().unwrap())
}

/// The labels a namespace carries: its own, and `kubernetes.io/metadata.name`, which the control plane sets to its
/// name on every namespace.
fn namespace_labels(namespace: &Namespace, name: &str) -> Labels {
    let mut result = namespace.metadata.labels.clone().unwrap_or_default();
    result.insert("kubernetes.io/metadata.name".into(), name.into());
    result
}

/// Whether a peer admits the operator's pods and nothing else: the operator's namespace by its name (another
/// namespace with the same labels is not selected) and, in it, the Deployment's pods only.
fn is_the_operator_only(peer: &NetworkPolicyPeer) -> bool {
    let (namespace, pod_labels) = operator_namespace_and_pod_labels();
    let name = namespace.metadata.name.clone().unwrap();
    let (Some(namespaces), Some(pods), None) = (&peer.namespace_selector, &peer.pod_selector, &peer.ip_block) else {
        return false;
    };
    selects(namespaces, &namespace_labels(&namespace, &name))
        && !selects(namespaces, &namespace_labels(&namespace, "sei"))
        && selects(pods, &pod_labels)
        && !selects(pods, &Labels::new())
}

#[test]
fn the_sidecar_policy_is_applied_where_the_nodes_are_and_names_no_namespace() {
    let documents = nodes_namespace_documents();
    assert!(!documents.is_empty());
    for document in &documents {
        assert!(document["metadata"].get("namespace").is_none(), "{document}");
    }
    let policy = sidecar_policy();
    assert_eq!(policy.metadata.namespace, None);
    // Ingress only: an Egress policy type without egress rules would cut the nodes' own traffic (peers, snapshots).
    let spec = policy.spec.unwrap();
    assert_eq!(spec.policy_types.as_deref(), Some(&["Ingress".to_owned()][..]));
}

#[test]
fn the_sidecar_policy_selects_every_pod_the_operator_builds_for_a_node_and_no_other() {
    let spec = sidecar_policy().spec.unwrap();
    let selector = spec.pod_selector.expect("a pod selector");
    for (what, template) in node_pod_templates() {
        let pod_labels = template.metadata.and_then(|m| m.labels).unwrap_or_default();
        assert!(selects(&selector, &pod_labels), "{what}: {pod_labels:?} not selected");
    }
    assert!(!selects(&selector, &labels(&[("app.kubernetes.io/name", "explorer")])), "selects pods that are no node's");
}

#[test]
fn the_sidecar_port_is_admitted_from_the_operators_pods_only_and_seids_ports_from_anywhere() {
    let rules = sidecar_policy().spec.unwrap().ingress.unwrap_or_default();
    for (what, template) in node_pod_templates() {
        let spec = template.spec.as_ref().unwrap();
        let sidecar = spec
            .init_containers
            .iter()
            .flatten()
            .find(|c| c.name == workload::SIDECAR_CONTAINER)
            .unwrap_or_else(|| panic!("{what}: no sidecar"));
        let [sidecar_port] = sidecar.ports.as_deref().unwrap_or_default() else { panic!("{what}: one sidecar port") };
        let number = sidecar_port.container_port;

        // Some rule lets the operator reach the sidecar, and every rule that admits its port admits the operator only.
        let admitting: Vec<_> = rules.iter().filter(|rule| admits(rule, &template, number)).collect();
        assert!(!admitting.is_empty(), "{what}: sidecar port {number} admitted by no rule");
        for rule in admitting {
            let peers = rule.from.as_deref().unwrap_or_default();
            assert!(!peers.is_empty(), "{what}: sidecar port {number} admitted from anywhere by {rule:?}");
            assert!(peers.iter().all(is_the_operator_only), "{what}: sidecar port {number} admitted by {rule:?}");
        }

        // Every other port of the pod (seid's p2p and RPC) is open to every source.
        let others = spec
            .init_containers
            .iter()
            .flatten()
            .chain(&spec.containers)
            .filter(|c| c.name != workload::SIDECAR_CONTAINER)
            .flat_map(|c| c.ports.iter().flatten());
        let mut seen = 0;
        for port in others {
            seen += 1;
            assert!(
                rules.iter().any(|rule| from_anywhere(rule) && admits(rule, &template, port.container_port)),
                "{what}: {port:?} is not open to every source"
            );
        }
        assert!(seen >= 2, "{what}: seid's p2p and RPC ports expected");
    }
}
