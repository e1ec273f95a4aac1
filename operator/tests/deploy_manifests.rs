//! deploy/ as Kubernetes would read it. deploy/base/'s files: every document decodes to its typed object, the
//! ClusterRole grants no wildcard, and the operator's Deployment runs non-root on a read-only root filesystem with
//! no capabilities, bounded resources and probes on the health endpoints `sei-operator run` serves.
//! deploy/nodes-namespace/, applied into each namespace where nodes run, is judged against the pods the operator
//! really builds: its NetworkPolicy selects them, admits their sidecar port from the operator's pods only and
//! seid's ports from anywhere.
//!
//! Then the installs as `kubectl apply -k` renders them (`kubectl kustomize`): the default one (deploy/), the
//! single-namespace overlay and deploy/monitoring. kubectl comes with Debian's `kubectl` (or `kubernetes-client`)
//! package, which ci/check.sh installs; without it these tests say so and pass, unless `SEI_OPERATOR_REQUIRE_TOOLS`
//! or `CI` is set, where a missing kubectl is a failure.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, PodTemplateSpec, Service};
use k8s_openapi::api::networking::v1::{NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPeer};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use sei_operator::api::{SeiNode, SidecarSpec};
use sei_operator::manifest::{Manifest, ManifestValidator, parse_yaml_documents};
use sei_operator::node_defaults::NodeDefaults;
use sei_operator::objects::workload;
use serde_json::Value;

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A kustomization's `resources`, as written.
fn kustomization_resources(dir: &Path) -> Vec<String> {
    let documents = parse_yaml_documents(&read(&dir.join("kustomization.yaml"))).unwrap();
    let [kustomization] = documents.as_slice() else { panic!("{}: one document", dir.display()) };
    kustomization["resources"]
        .as_array()
        .unwrap_or_else(|| panic!("{}: no resources", dir.display()))
        .iter()
        .map(|r| r.as_str().unwrap().to_owned())
        .collect()
}

/// Every document of the files deploy/base/kustomization.yaml lists, in its order (the files as written, before
/// kustomize sets the namespace and image: the same, as the namespace and image there are the files' own).
fn documents() -> Vec<Value> {
    let base = deploy_dir().join("base");
    kustomization_resources(&base)
        .iter()
        .flat_map(|file| parse_yaml_documents(&read(&base.join(file))).unwrap())
        .collect()
}

/// Every document of every YAML file in `dir` (not its subfolders), in file-name order.
fn documents_in(dir: &Path) -> Vec<Value> {
    let mut files: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .flat_map(|p| parse_yaml_documents(&read(p)).unwrap())
        .collect()
}

fn of_kind<T: serde::de::DeserializeOwned>(kind: &str) -> Vec<T> {
    typed(&documents(), kind)
}

fn typed<T: serde::de::DeserializeOwned>(documents: &[Value], kind: &str) -> Vec<T> {
    documents.iter().filter(|d| d["kind"] == kind).map(|d| serde_json::from_value(d.clone()).unwrap()).collect()
}

#[test]
fn the_base_lists_every_file_in_it() {
    let base = deploy_dir().join("base");
    let listed: BTreeSet<String> = kustomization_resources(&base).into_iter().collect();
    let present: BTreeSet<String> = std::fs::read_dir(&base)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".yaml") && name != "kustomization.yaml")
        .collect();
    assert_eq!(listed, present, "deploy/base/kustomization.yaml must list every manifest of deploy/base/");
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

/// The operator's namespace (deploy/base/00-namespace.yaml) and its pods' labels (deploy/base/05-deployment.yaml).
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

// --- The installs as `kubectl apply -k` renders them ------------------------------------------------------------

/// kubectl, or `None` (after saying why) where it may be missing; a failure where it must be there. Its bundled
/// kustomize must be v5 (kubectl 1.27 or later), the version the README's install asks for; the overlay's
/// `replacements` and targeted `patches` need at least v4.
fn kubectl() -> Option<PathBuf> {
    let output = Command::new("kubectl").args(["version", "--client"]).output();
    let version = output.ok().filter(|o| o.status.success()).map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
    let kustomize_major = version.as_deref().and_then(|text| {
        let line = text.lines().find(|l| l.starts_with("Kustomize Version:"))?;
        line.split_once(": v")?.1.split('.').next()?.parse::<u32>().ok()
    });
    let problem = match kustomize_major {
        Some(major) if major >= 5 => return Some(PathBuf::from("kubectl")),
        Some(major) => format!("kubectl bundles kustomize v{major}; deploy/ needs v5 (kubectl 1.27 or later)"),
        None if version.is_some() => {
            "kubectl reports no kustomize version (before 1.24 it bundles kustomize v2 or v3); deploy/ needs v5 \
             (kubectl 1.27 or later)"
                .to_owned()
        }
        None => "kubectl is not installed".to_owned(),
    };
    let required = ["SEI_OPERATOR_REQUIRE_TOOLS", "CI"].iter().any(|var| std::env::var_os(var).is_some());
    assert!(
        !required,
        "{problem}, and this run requires it (SEI_OPERATOR_REQUIRE_TOOLS or CI is set); ci/check.sh installs it"
    );
    eprintln!("skipped: {problem}");
    None
}

/// `kubectl kustomize dir`: every object the install applies.
fn render(kubectl: &Path, dir: &Path) -> Vec<Value> {
    let output = Command::new(kubectl).arg("kustomize").arg(dir).output().unwrap();
    assert!(
        output.status.success(),
        "kubectl kustomize {}:\n{}",
        dir.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    parse_yaml_documents(&String::from_utf8_lossy(&output.stdout)).unwrap()
}

fn kinds(documents: &[Value]) -> BTreeMap<String, usize> {
    let mut kinds = BTreeMap::new();
    for document in documents {
        *kinds.entry(document["kind"].as_str().unwrap().to_owned()).or_default() += 1;
    }
    kinds
}

fn one<T: serde::de::DeserializeOwned + Clone>(documents: &[Value], kind: &str) -> T {
    let objects: Vec<T> = typed(documents, kind);
    let [object] = objects.as_slice() else { panic!("one {kind} expected, found {}", objects.len()) };
    object.clone()
}

fn operator_container(deployment: &Deployment) -> k8s_openapi::api::core::v1::Container {
    let pod = deployment.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
    pod.containers.iter().find(|c| c.name == "operator").expect("the operator container").clone()
}

fn env_value(deployment: &Deployment, name: &str) -> String {
    let container = operator_container(deployment);
    let var = container.env.iter().flatten().find(|e| e.name == name).unwrap_or_else(|| panic!("no {name}"));
    var.value.clone().unwrap_or_default()
}

/// The image deploy/base/kustomization.yaml sets (`images:`), as `name:tag`.
fn image_set_by_the_base() -> String {
    let documents = parse_yaml_documents(&read(&deploy_dir().join("base/kustomization.yaml"))).unwrap();
    let image = &documents[0]["images"][0];
    format!("{}:{}", image["newName"].as_str().unwrap(), image["newTag"].as_str().unwrap())
}

/// The operator's namespace as deploy/base/kustomization.yaml sets it.
fn namespace_set_by_the_base() -> String {
    let documents = parse_yaml_documents(&read(&deploy_dir().join("base/kustomization.yaml"))).unwrap();
    documents[0]["namespace"].as_str().expect("namespace").to_owned()
}

/// Whether a PodDisruptionBudget lets a drain evict one of `replicas` pods when all are ready: it never blocks a
/// drain forever.
fn budget_allows_an_eviction(pdb: &PodDisruptionBudget, replicas: i32) -> bool {
    let spec = pdb.spec.as_ref().unwrap();
    let resolve = |value: &IntOrString| match value {
        IntOrString::Int(n) => *n,
        // Percentages round up for minAvailable and down for maxUnavailable, as the disruption controller does;
        // rounding either way the pessimistic one here is enough.
        IntOrString::String(percent) => {
            let p: i32 = percent.trim_end_matches('%').parse().unwrap();
            (replicas * p + 99) / 100
        }
    };
    match (&spec.min_available, &spec.max_unavailable) {
        (Some(min), None) => replicas - resolve(min) >= 1,
        (None, Some(max)) => match max {
            IntOrString::Int(n) => *n >= 1,
            IntOrString::String(percent) => {
                let p: i32 = percent.trim_end_matches('%').parse().unwrap();
                replicas * p / 100 >= 1
            }
        },
        other => panic!("a budget sets exactly one of minAvailable and maxUnavailable: {other:?}"),
    }
}

#[test]
fn the_default_install_renders_the_crds_and_the_operator_in_its_namespace() {
    let Some(kubectl) = kubectl() else { return };
    let documents = render(&kubectl, &deploy_dir());
    let expected: BTreeMap<String, usize> = [
        ("CustomResourceDefinition", 2),
        ("Namespace", 1),
        ("ServiceAccount", 1),
        ("ClusterRole", 1),
        ("ClusterRoleBinding", 1),
        ("Role", 1),
        ("RoleBinding", 1),
        ("Deployment", 1),
        ("Service", 1),
        ("PodDisruptionBudget", 1),
    ]
    .into_iter()
    .map(|(kind, count)| (kind.to_owned(), count))
    .collect();
    assert_eq!(kinds(&documents), expected);

    // The CRDs are crds/'s, whole.
    let crd_names: BTreeSet<&str> = documents
        .iter()
        .filter(|d| d["kind"] == "CustomResourceDefinition")
        .map(|d| d["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(crd_names, BTreeSet::from(["seinodedeployments.sei.io", "seinodes.sei.io"]));
    // kustomize writes a whole float as an integer (`minimum: 1.0` as `1`), which the API server reads alike.
    fn numbers_as_floats(value: &Value) -> Value {
        match value {
            Value::Number(n) => serde_json::json!(n.as_f64().unwrap()),
            Value::Array(items) => Value::Array(items.iter().map(numbers_as_floats).collect()),
            Value::Object(fields) => {
                Value::Object(fields.iter().map(|(k, v)| (k.clone(), numbers_as_floats(v))).collect())
            }
            other => other.clone(),
        }
    }
    let rendered: Vec<Value> = documents.iter().map(numbers_as_floats).collect();
    for file in ["seinodes.yaml", "seinodedeployments.yaml"] {
        let on_disk = parse_yaml_documents(&read(&deploy_dir().join("../crds").join(file))).unwrap();
        assert!(rendered.contains(&numbers_as_floats(&on_disk[0])), "crds/{file} is not installed as it is");
    }

    // The namespace and image the base sets; every namespaced object in it, the binding's subject too.
    let namespace = namespace_set_by_the_base();
    assert_eq!(one::<Namespace>(&documents, "Namespace").metadata.name.as_deref(), Some(namespace.as_str()));
    for document in &documents {
        let kind = document["kind"].as_str().unwrap();
        if !matches!(kind, "Namespace" | "CustomResourceDefinition" | "ClusterRole" | "ClusterRoleBinding") {
            assert_eq!(document["metadata"]["namespace"], namespace.as_str(), "{kind}");
        }
    }
    let binding: ClusterRoleBinding = one(&documents, "ClusterRoleBinding");
    let subjects = binding.subjects.unwrap_or_default();
    assert!(subjects.iter().all(|s| s.namespace.as_deref() == Some(namespace.as_str())), "{subjects:?}");
    let deployment: Deployment = one(&documents, "Deployment");
    assert_eq!(operator_container(&deployment).image, Some(image_set_by_the_base()));
    // Every namespace is watched.
    assert_eq!(env_value(&deployment, "SEI_OPERATOR_NAMESPACE"), "");
}

#[test]
fn the_metrics_service_and_the_disruption_budget_select_the_operators_pods() {
    let Some(kubectl) = kubectl() else { return };
    let documents = render(&kubectl, &deploy_dir());
    let deployment: Deployment = one(&documents, "Deployment");
    let spec = deployment.spec.as_ref().unwrap();
    let pod_labels = spec.template.metadata.as_ref().unwrap().labels.clone().unwrap();
    let replicas = spec.replicas.unwrap_or(1);

    let service: Service = one(&documents, "Service");
    let service_spec = service.spec.unwrap();
    let selector = service_spec.selector.unwrap();
    assert!(selector.iter().all(|(k, v)| pod_labels.get(k) == Some(v)), "{selector:?} vs {pod_labels:?}");
    // Its port reaches the container's metrics port, the one `--metrics-addr` binds (8080).
    let [port] = service_spec.ports.unwrap_or_default().try_into().expect("one port");
    assert_eq!(port.name.as_deref(), Some("metrics"));
    let container_port = operator_container(&deployment)
        .ports
        .unwrap_or_default()
        .into_iter()
        .find(|p| p.name.as_deref() == Some("metrics"));
    assert_eq!(container_port.map(|p| p.container_port), Some(8080));
    assert_eq!(port.target_port, Some(IntOrString::String("metrics".into())));
    assert!(env_value(&deployment, "SEI_OPERATOR_METRICS_ADDR").ends_with(":8080"));

    let pdb: PodDisruptionBudget = one(&documents, "PodDisruptionBudget");
    let pdb_selector = pdb.spec.as_ref().unwrap().selector.clone().unwrap();
    assert!(selects(&pdb_selector, &pod_labels));
    // Never blocks a drain, at the Deployment's replica count and at two.
    assert!(budget_allows_an_eviction(&pdb, replicas), "{pdb:?} blocks every drain at {replicas} replica(s)");
    assert!(budget_allows_an_eviction(&pdb, 2));
    // The checker itself: `minAvailable: 1` on one replica is the budget that would block.
    let blocking: PodDisruptionBudget = serde_json::from_value(serde_json::json!({
        "spec": {"minAvailable": 1, "selector": {}}
    }))
    .unwrap();
    assert!(!budget_allows_an_eviction(&blocking, 1));
}

#[test]
fn the_single_namespace_overlay_grants_the_watched_kinds_in_that_namespace_only() {
    let Some(kubectl) = kubectl() else { return };
    let documents = render(&kubectl, &deploy_dir().join("overlays/single-namespace"));
    let operator_namespace = namespace_set_by_the_base();
    let deployment: Deployment = one(&documents, "Deployment");
    let watched = env_value(&deployment, "SEI_OPERATOR_NAMESPACE");
    assert!(!watched.is_empty() && watched != operator_namespace, "{watched:?}");
    assert_eq!(operator_container(&deployment).image, Some(image_set_by_the_base()));

    // No cluster-wide rights at all: the only ClusterRole the default install has is the watched kinds'.
    assert_eq!(kinds(&documents).get("ClusterRole"), None);
    assert_eq!(kinds(&documents).get("ClusterRoleBinding"), None);

    // The base's ClusterRole rules, unchanged, in a Role in the watched namespace, bound to the operator's
    // ServiceAccount in its own namespace.
    let base_rules: Vec<PolicyRule> = of_kind::<ClusterRole>("ClusterRole").remove(0).rules.unwrap();
    let roles: Vec<Role> = typed(&documents, "Role");
    let watched_role = roles
        .iter()
        .find(|r| r.metadata.namespace.as_deref() == Some(watched.as_str()))
        .expect("a Role in the watched namespace");
    assert_eq!(watched_role.rules.as_ref(), Some(&base_rules));
    let bindings: Vec<RoleBinding> = typed(&documents, "RoleBinding");
    let binding = bindings
        .iter()
        .find(|b| b.metadata.namespace.as_deref() == Some(watched.as_str()))
        .expect("a RoleBinding in the watched namespace");
    assert_eq!(binding.role_ref.kind, "Role");
    assert_eq!(Some(&binding.role_ref.name), watched_role.metadata.name.as_ref());
    let subjects = binding.subjects.clone().unwrap_or_default();
    assert_eq!(subjects.len(), 1);
    assert_eq!(
        (subjects[0].kind.as_str(), subjects[0].namespace.as_deref()),
        ("ServiceAccount", Some(operator_namespace.as_str()))
    );

    // The leader Lease's Role stays in the operator's namespace.
    assert!(roles.iter().any(|r| {
        r.metadata.namespace.as_deref() == Some(operator_namespace.as_str())
            && r.rules.iter().flatten().any(|rule| rule.resources.iter().flatten().any(|res| res == "leases"))
    }));
    // Nothing else is put in the watched namespace, and it is not created (deleting the install must not delete
    // the nodes' namespace).
    for document in &documents {
        let kind = document["kind"].as_str().unwrap();
        if document["metadata"]["namespace"] == watched.as_str() {
            assert!(matches!(kind, "Role" | "RoleBinding" | "NetworkPolicy"), "{kind} in the watched namespace");
        }
    }
    assert_eq!(kinds(&documents).get("Namespace"), Some(&1));

    // The sidecar policy, in the watched namespace, admitting the operator's namespace.
    let policy: NetworkPolicy = one(&documents, "NetworkPolicy");
    assert_eq!(policy.metadata.namespace.as_deref(), Some(watched.as_str()));
    let namespace: Namespace = one(&documents, "Namespace");
    let from = &policy.spec.unwrap().ingress.unwrap()[0].from.clone().unwrap()[0];
    assert!(selects(from.namespace_selector.as_ref().unwrap(), &namespace_labels(&namespace, &operator_namespace)));
}

/// deploy/ and crds/ copied into a scratch directory (deploy's links to base/ left out: kustomize does not read
/// them), for a test to edit. Removed when dropped (also when the test panics).
fn scratch_copy(name: &str) -> tempfile::TempDir {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let kind = entry.file_type().unwrap();
            if kind.is_dir() {
                copy(&entry.path(), &to.join(entry.file_name()));
            } else if kind.is_file() {
                std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
            }
        }
    }
    let root = tempfile::Builder::new().prefix(&format!("sei-operator-deploy-{name}-")).tempdir().unwrap();
    copy(&deploy_dir(), &root.path().join("deploy"));
    copy(&deploy_dir().join("../crds"), &root.path().join("crds"));
    root
}

#[test]
fn the_namespace_and_image_are_set_in_one_place_and_follow_through_both_installs() {
    let Some(kubectl) = kubectl() else { return };
    let scratch = scratch_copy("retargeted");
    let root = scratch.path();
    let kustomization = root.join("deploy/base/kustomization.yaml");
    let text = read(&kustomization)
        .replace(&format!("namespace: {}", namespace_set_by_the_base()), "namespace: ops")
        .replace("newName: sei-operator", "newName: registry.example/sei/sei-operator");
    std::fs::write(&kustomization, text).unwrap();

    for install in ["deploy", "deploy/overlays/single-namespace"] {
        let documents = render(&kubectl, &root.join(install));
        let namespace: Namespace = one(&documents, "Namespace");
        assert_eq!(namespace.metadata.name.as_deref(), Some("ops"), "{install}");
        let deployment: Deployment = one(&documents, "Deployment");
        assert_eq!(deployment.metadata.namespace.as_deref(), Some("ops"), "{install}");
        let image = operator_container(&deployment).image.unwrap();
        assert!(image.starts_with("registry.example/sei/sei-operator:"), "{install}: {image}");
        // Every binding's subject follows the ServiceAccount.
        for document in documents.iter().filter(|d| d["kind"].as_str().is_some_and(|k| k.ends_with("RoleBinding"))) {
            for subject in document["subjects"].as_array().unwrap() {
                assert_eq!(subject["namespace"], "ops", "{install}: {document}");
            }
        }
        if install.ends_with("single-namespace") {
            // The sidecar policy admits the operator's pods from their new namespace.
            let policy: NetworkPolicy = one(&documents, "NetworkPolicy");
            let from = &policy.spec.unwrap().ingress.unwrap()[0].from.clone().unwrap()[0];
            let selector = from.namespace_selector.as_ref().unwrap();
            assert!(selects(selector, &namespace_labels(&namespace, "ops")), "{selector:?}");
        }
    }
}

#[test]
fn the_monitoring_directory_scrapes_the_metrics_service_and_loads_the_rules() {
    let Some(kubectl) = kubectl() else { return };
    let monitoring = render(&kubectl, &deploy_dir().join("monitoring"));
    let expected: BTreeMap<String, usize> =
        [("PrometheusRule".to_owned(), 1), ("ServiceMonitor".to_owned(), 1)].into_iter().collect();
    assert_eq!(kinds(&monitoring), expected);
    let namespace = namespace_set_by_the_base();
    for document in &monitoring {
        assert_eq!(document["metadata"]["namespace"], namespace.as_str(), "{document}");
    }
    // The default install holds neither kind: clusters without prometheus-operator lack their CRDs.
    let install = render(&kubectl, &deploy_dir());
    assert!(install.iter().all(|d| !matches!(d["kind"].as_str(), Some("ServiceMonitor" | "PrometheusRule"))));

    let service: Service = one(&install, "Service");
    let service_labels = service.metadata.labels.clone().unwrap_or_default();
    let monitor = monitoring.iter().find(|d| d["kind"] == "ServiceMonitor").unwrap();
    let selector: LabelSelector = serde_json::from_value(monitor["spec"]["selector"].clone()).unwrap();
    assert!(selects(&selector, &service_labels), "{selector:?} does not select {service_labels:?}");
    let [endpoint] = monitor["spec"]["endpoints"].as_array().unwrap().as_slice() else { panic!("one endpoint") };
    let service_ports: Vec<_> = service.spec.unwrap().ports.unwrap_or_default();
    assert!(service_ports.iter().any(|p| p.name.as_deref() == endpoint["port"].as_str()), "{endpoint}");
    assert_eq!(endpoint["path"], "/metrics");
    // The series' own `namespace` label (the SeiNode's) must win over the target's (the operator's).
    assert_eq!(endpoint["honorLabels"], true);
}
