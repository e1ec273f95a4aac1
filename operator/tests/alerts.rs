//! deploy/monitoring/prometheusrule.yaml's alerts, run by Prometheus' own rule engine: `promtool check rules` on
//! its `spec` (the plain rule file a PrometheusRule wraps), then `promtool test rules` on alerts_test.yaml, whose
//! input series have the shape the operator exports. And the metrics those rules read, listed in
//! deploy/monitoring/metrics-used.txt — kept exact here, so a test of what the operator really emits can read it.
//!
//! promtool comes with Debian's `prometheus` package, which ci/check.sh installs. Without it these tests say so
//! and pass, unless `SEI_OPERATOR_REQUIRE_TOOLS` or `CI` is set (ci/check.sh sets the former): there a missing
//! promtool is a failure, never a silent skip.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use sei_operator::manifest::parse_yaml_documents;
use serde_json::Value;

fn monitoring_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/monitoring")
}

/// The PrometheusRule's `spec`: `{groups: [...]}`, a Prometheus rule file as it stands.
fn rule_file() -> Value {
    let path = monitoring_dir().join("prometheusrule.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let documents = parse_yaml_documents(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let [rule] = documents.as_slice() else { panic!("{}: one document expected", path.display()) };
    assert_eq!(rule["kind"], "PrometheusRule");
    assert_eq!(rule["apiVersion"], "monitoring.coreos.com/v1");
    rule["spec"].clone()
}

/// Every rule of the rule file: (alert name, expression, the whole rule).
fn rules() -> Vec<(String, String, Value)> {
    let spec = rule_file();
    let groups = spec["groups"].as_array().expect("spec.groups");
    groups
        .iter()
        .flat_map(|group| group["rules"].as_array().expect("a group's rules").iter())
        .map(|rule| {
            let name = rule["alert"].as_str().or_else(|| rule["record"].as_str()).expect("alert or record");
            (name.to_owned(), rule["expr"].as_str().expect("expr").to_owned(), rule.clone())
        })
        .collect()
}

/// The operator's metric names an expression reads: its identifiers that start `sei_operator_`. A PromQL
/// identifier is `[a-zA-Z_:][a-zA-Z0-9_:]*`; label values inside quotes are skipped, so a matcher such as
/// `{phase="sei_operator_x"}` names no metric.
pub fn metric_names(expression: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut chars = expression.char_indices().peekable();
    let is_start = |c: char| c.is_ascii_alphabetic() || c == '_' || c == ':';
    let is_part = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    while let Some((start, c)) = chars.next() {
        if c == '"' || c == '\'' || c == '`' {
            // A string: up to its closing quote, past escaped ones.
            let mut escaped = false;
            for (_, inner) in chars.by_ref() {
                if escaped {
                    escaped = false;
                } else if inner == '\\' {
                    escaped = true;
                } else if inner == c {
                    break;
                }
            }
        } else if is_start(c) {
            let mut end = start + c.len_utf8();
            while let Some(&(at, next)) = chars.peek() {
                if !is_part(next) {
                    break;
                }
                end = at + next.len_utf8();
                chars.next();
            }
            let word = &expression[start..end];
            if word.starts_with("sei_operator_") {
                names.insert(word.to_owned());
            }
        } else if c.is_ascii_digit() {
            // A number (or a duration such as 5m): its letters are no identifier.
            while chars.peek().is_some_and(|&(_, next)| is_part(next) || next == '.') {
                chars.next();
            }
        }
    }
    names
}

/// Every metric the rules read.
pub fn metrics_used_by_rules() -> BTreeSet<String> {
    rules().iter().flat_map(|(_, expression, _)| metric_names(expression)).collect()
}

#[test]
fn the_tokenizer_finds_metric_names_and_nothing_else() {
    let found = metric_names(
        r#"max by (namespace, name) (sei_operator_node_sidecar_ready{phase="sei_operator_in_a_string"}) == 0
           and on (namespace, name) rate(sei_operator_rollouts_total[5m]) > 1e3 or absent(sei_operator_leader)
           unless up5m_sei_operator_not_this"#,
    );
    let expected: BTreeSet<String> =
        ["sei_operator_leader", "sei_operator_node_sidecar_ready", "sei_operator_rollouts_total"]
            .into_iter()
            .map(String::from)
            .collect();
    assert_eq!(found, expected);
}

/// deploy/monitoring/metrics-used.txt: one metric name a line, sorted; `#` starts a comment.
fn listed_metrics() -> Vec<String> {
    let path = monitoring_dir().join("metrics-used.txt");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .map(|line| line.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

#[test]
fn metrics_used_txt_lists_exactly_the_metrics_the_rules_read() {
    let used: Vec<String> = metrics_used_by_rules().into_iter().collect();
    // Printed for whoever checks them against what the operator exports (`cargo test --test alerts -- --nocapture`).
    println!("metrics read by deploy/monitoring/prometheusrule.yaml:\n{}", used.join("\n"));
    assert!(!used.is_empty());
    assert_eq!(listed_metrics(), used, "update deploy/monitoring/metrics-used.txt to the rules' metrics");
}

#[test]
fn every_alert_has_a_for_a_severity_a_summary_a_description_and_a_runbook() {
    let rules = rules();
    let alerts: Vec<&str> = rules.iter().map(|(name, _, _)| name.as_str()).collect();
    for expected in [
        "SeiRolloutStalled",
        "SeiDeploymentDegraded",
        "SeiNodeFailed",
        "SeiNodeStuckInitializing",
        "SeiNodeSidecarUnreachable",
        "SeiOperatorNoLeader",
    ] {
        assert!(alerts.contains(&expected), "{expected} missing from {alerts:?}");
    }
    let runbook = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/alerts.md"))
        .expect("docs/alerts.md");
    for (name, expression, rule) in &rules {
        assert!(rule["for"].as_str().is_some_and(|f| !f.is_empty()), "{name}: no `for`");
        let severity = rule["labels"]["severity"].as_str().unwrap_or_default();
        assert!(matches!(severity, "warning" | "critical"), "{name}: severity {severity:?}");
        let annotations = &rule["annotations"];
        for key in ["summary", "description"] {
            let text = annotations[key].as_str().unwrap_or_default();
            assert!(!text.is_empty(), "{name}: no {key}");
            // An alert about one object names it; the operator-wide one has no object to name.
            if expression.contains("namespace, name") {
                assert!(text.contains("{{ $labels.namespace }}/{{ $labels.name }}"), "{name}: {key} names no object");
            }
        }
        // The runbook link points at this alert's section of docs/alerts.md (GitHub's heading anchors).
        let url = annotations["runbook_url"].as_str().unwrap_or_default();
        let anchor = format!("docs/alerts.md#{}", name.to_lowercase());
        assert!(url.ends_with(&anchor), "{name}: runbook_url {url:?} does not end in {anchor}");
        assert!(runbook.contains(&format!("\n## {name}\n")), "{name}: no `## {name}` section in docs/alerts.md");
    }
}

/// `promtool`, or `None` (after saying why) where it may be missing; a failure where it must be there.
fn promtool() -> Option<PathBuf> {
    let found = Command::new("promtool").arg("--version").output().is_ok_and(|o| o.status.success());
    if found {
        return Some(PathBuf::from("promtool"));
    }
    let required = ["SEI_OPERATOR_REQUIRE_TOOLS", "CI"].iter().any(|var| std::env::var_os(var).is_some());
    assert!(
        !required,
        "promtool is not installed, and this run requires it (SEI_OPERATOR_REQUIRE_TOOLS or CI is set): install \
         Debian's `prometheus` package (ci/check.sh does: apt-get install --no-install-recommends prometheus)"
    );
    eprintln!("skipped: promtool is not installed (Debian: apt-get install --no-install-recommends prometheus)");
    None
}

/// A scratch directory holding the rule file as `sei-operator.rules.yaml` (JSON, which is YAML) and a copy of
/// alerts_test.yaml, which names it. Removed when dropped (also when the test panics).
fn rules_and_tests_in_scratch(name: &str) -> tempfile::TempDir {
    let dir = tempfile::Builder::new().prefix(&format!("sei-operator-alerts-{name}-")).tempdir().unwrap();
    let rules = serde_json::to_string_pretty(&rule_file()).unwrap();
    std::fs::write(dir.path().join("sei-operator.rules.yaml"), rules).unwrap();
    std::fs::copy(monitoring_dir().join("alerts_test.yaml"), dir.path().join("alerts_test.yaml")).unwrap();
    dir
}

fn run(promtool: &Path, args: &[&str], dir: &Path) -> String {
    let output = Command::new(promtool).args(args).current_dir(dir).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "promtool {}:\n{text}", args.join(" "));
    text
}

#[test]
fn promtool_accepts_the_rules() {
    let Some(promtool) = promtool() else { return };
    let dir = rules_and_tests_in_scratch("check");
    let text = run(&promtool, &["check", "rules", "sei-operator.rules.yaml"], dir.path());
    assert!(text.contains(&format!("SUCCESS: {} rules found", rules().len())), "{text}");
}

#[test]
fn each_alert_fires_when_it_should_and_not_when_it_should_not() {
    let Some(promtool) = promtool() else { return };
    let dir = rules_and_tests_in_scratch("test");
    let text = run(&promtool, &["test", "rules", "alerts_test.yaml"], dir.path());
    assert!(text.contains("SUCCESS"), "{text}");
    // Every alert is exercised by the unit tests, firing at least once.
    let tests = std::fs::read_to_string(dir.path().join("alerts_test.yaml")).unwrap();
    let tests = parse_yaml_documents(&tests).unwrap();
    let cases: Vec<&Value> = tests[0]["tests"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|test| test["alert_rule_test"].as_array().into_iter().flatten())
        .collect();
    let expected = |fires: bool| -> BTreeSet<&str> {
        cases
            .iter()
            .filter(|case| case["exp_alerts"].as_array().is_some_and(|alerts| alerts.is_empty() != fires))
            .filter_map(|case| case["alertname"].as_str())
            .collect()
    };
    let (firing, silent) = (expected(true), expected(false));
    for (name, _, _) in rules() {
        assert!(firing.contains(name.as_str()), "alerts_test.yaml never expects {name} to fire");
        assert!(silent.contains(name.as_str()), "alerts_test.yaml never expects {name} to stay silent");
    }
}
