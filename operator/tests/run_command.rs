//! `sei-operator run` as a process: with no reachable cluster it exits non-zero with a one-line reason on stderr
//! (no panic, no stack trace), and `--help` documents every flag with its environment variable. `sei-operator
//! validate` as a process: every invalid, unreadable or empty file is named and makes the exit code non-zero.
//! `sei-operator completions` prints a completion script per shell.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BINARY: &str = env!("CARGO_BIN_EXE_sei-operator");
const TEST_BOUND: Duration = Duration::from_secs(60);

/// A scratch directory of this test, removed when dropped (also when the test panics).
fn scratch(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(&format!("sei-operator-run-{name}-")).tempdir().unwrap()
}

/// Runs the binary with a clean environment (no in-cluster variables, HOME in a scratch directory), killing it
/// if it outlives the test bound.
fn run_operator(args: &[&str], env: &[(&str, String)], home: &Path) -> Output {
    let mut command = Command::new(BINARY);
    command.args(args).env_clear().env("HOME", home).env("RUST_BACKTRACE", "1");
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > TEST_BOUND {
            child.kill().unwrap();
            panic!("sei-operator run did not exit within {TEST_BOUND:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// Exited non-zero, and stderr is exactly one `error: ...` line containing `expected`.
fn assert_one_line_failure(output: &Output, expected: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "exited successfully; stderr: {stderr}");
    assert_eq!(output.status.code(), Some(1), "stderr: {stderr}");
    let lines: Vec<_> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "expected one line on stderr, got:\n{stderr}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    assert!(lines[0].contains(expected), "{stderr}");
    for symptom in ["panicked", "backtrace", "RUST_BACKTRACE"] {
        assert!(!stderr.contains(symptom), "{stderr}");
    }
}

const LOCAL_LISTENERS: [&str; 4] = ["--metrics-addr", "127.0.0.1:0", "--probe-addr", "127.0.0.1:0"];

#[test]
fn an_unreachable_api_server_fails_in_one_line() {
    let home = scratch("unreachable");
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let kubeconfig = home.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: test\n\
             clusters:\n- name: test\n  cluster:\n    server: http://127.0.0.1:{closed_port}\n\
             contexts:\n- name: test\n  context:\n    cluster: test\n    user: test\n\
             users:\n- name: test\n  user: {{}}\n"
        ),
    )
    .unwrap();
    let mut args = vec!["run", "--startup-timeout", "5s"];
    args.extend(LOCAL_LISTENERS);
    let output = run_operator(&args, &[("KUBECONFIG", kubeconfig.display().to_string())], home.path());
    assert_one_line_failure(&output, "is unreachable");
}

#[test]
fn no_cluster_configuration_fails_in_one_line() {
    let home = scratch("unconfigured");
    let mut args = vec!["run"];
    args.extend(LOCAL_LISTENERS);
    let missing = home.path().join("no-such-kubeconfig").display().to_string();
    let output = run_operator(&args, &[("KUBECONFIG", missing)], home.path());
    assert_one_line_failure(&output, "no Kubernetes client configuration");
}

#[test]
fn an_invalid_flag_value_is_refused_before_connecting() {
    let home = scratch("invalid");
    let output = run_operator(&["run", "--stall-threshold", "soon"], &[], home.path());
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--stall-threshold"));
}

#[test]
fn help_shows_every_flag_and_its_environment_variable() {
    let home = scratch("help");
    let output = run_operator(&["run", "--help"], &[], home.path());
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for expected in [
        "--namespace",
        "SEI_OPERATOR_NAMESPACE",
        "--stall-threshold",
        "SEI_OPERATOR_STALL_THRESHOLD",
        "--metrics-addr",
        "SEI_OPERATOR_METRICS_ADDR",
        "--probe-addr",
        "SEI_OPERATOR_PROBE_ADDR",
        "--log-format",
        "SEI_OPERATOR_LOG_FORMAT",
        "--leader-elect",
        "POD_NAMESPACE",
    ] {
        assert!(help.contains(expected), "--help lacks {expected}:\n{help}");
    }
}

// --- `sei-operator validate` -------------------------------------------------------------------------------------

/// Runs `sei-operator validate` on files written into a scratch directory; returns the output and the paths.
fn validate(name: &str, files: &[(&str, &str)]) -> (Output, Vec<String>) {
    let dir = scratch(name);
    let paths: Vec<String> = files
        .iter()
        .map(|(file, text)| {
            let path = dir.path().join(file);
            std::fs::write(&path, text).unwrap();
            path.display().to_string()
        })
        .collect();
    let mut args = vec!["validate"];
    args.extend(paths.iter().map(String::as_str));
    let output = run_operator(&args, &[], dir.path());
    (output, paths)
}

const VALID_NODE: &str = "apiVersion: sei.io/v1alpha1\nkind: SeiNode\nmetadata:\n  name: rpc-0\n\
                          spec:\n  chainId: pacific-1\n  image: sei:v6.2.0\n  fullNode: {}\n";

#[test]
fn validate_refuses_a_file_with_no_object_and_names_it() {
    let cases = [
        ("empty.yaml", ""),
        ("blank.yaml", "\n\n"),
        ("comments.yaml", "# a SeiNode goes here\n---\n# and here\n---\n"),
    ];
    for (file, text) in cases {
        let (output, paths) = validate(file, &[(file, text), ("valid.yaml", VALID_NODE)]);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(output.status.code(), Some(1), "{file}: {stdout}");
        assert!(
            stdout.contains(&format!("{}: no SeiNode or SeiNodeDeployment in it", paths[0])),
            "{file}: the empty file is named: {stdout}"
        );
        // The other file is still judged, and the summary counts the empty one as invalid.
        assert!(stdout.contains(&format!("{}: SeiNode rpc-0 is valid", paths[1])), "{stdout}");
        assert_one_line_failure(&output, "1 of 2 files invalid");
    }
}

#[test]
fn validate_accepts_a_valid_file_with_exit_code_zero() {
    let (output, paths) = validate("valid", &[("node.yaml", &format!("# a node\n---\n{VALID_NODE}---\n"))]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(stdout.trim(), format!("{}: SeiNode rpc-0 is valid", paths[0]));
}

#[test]
fn validate_prints_bounds_as_the_schema_states_them() {
    let deployment =
        "apiVersion: sei.io/v1alpha1\nkind: SeiNodeDeployment\nmetadata:\n  name: rpc\nspec:\n  replicas: {}\n";
    for (replicas, expected) in [
        ("0", "spec.replicas: 0 is less than the minimum of 1"),
        ("101", "spec.replicas: 101 is greater than the maximum of 100"),
    ] {
        let (output, _) = validate("bounds", &[("d.yaml", &deployment.replace("{}", replicas))]);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(output.status.code(), Some(1), "{stdout}");
        let line = stdout.lines().find(|l| l.contains("spec.replicas")).unwrap_or_else(|| panic!("{stdout}"));
        // The whole line: `1`, never `1.0`.
        assert_eq!(line.trim(), format!("- {expected}"), "{stdout}");
    }
}

#[test]
fn validate_reports_yaml_errors_in_one_line_with_their_position_and_no_library_hints() {
    let cases = [
        ("unclosed.yaml", "apiVersion: sei.io/v1alpha1\nkind: SeiNode\nmetadata: {name: n\n", "at line 3, column 11"),
        ("duplicate.yaml", "kind: SeiNode\nmetadata:\n  name: a\n  name: b\n", "duplicate mapping key `name`"),
        ("tab.yaml", "kind: SeiNode\nmetadata:\n\tname: a\n", "at line 3"),
    ];
    for (file, text, expected) in cases {
        let (output, paths) = validate(file, &[(file, text)]);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(output.status.code(), Some(1), "{file}: {stdout}");
        let lines: Vec<_> = stdout.lines().collect();
        let [line] = lines.as_slice() else { panic!("{file}: one line expected:\n{stdout}") };
        assert!(line.starts_with(&format!("{}: not valid YAML: ", paths[0])), "{file}: {line}");
        assert!(line.contains(expected), "{file}: {expected:?} missing from {line}");
        // serde-saphyr's developer rendering: an `error:` prefix, a snippet under the placeholder `<input>`.
        for hint in ["error:", "<input>", "-->", " | "] {
            assert!(!line.contains(hint), "{file}: library rendering {hint:?} in {line}");
        }
    }
}

#[test]
fn validate_counts_documents_from_one_and_names_unreadable_files() {
    let (output, paths) = validate("list", &[("list.yaml", "- 1\n- 2\n")]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1));
    assert!(stdout.contains(&format!("{}: document 1 is not a Kubernetes object", paths[0])), "{stdout}");

    let home = scratch("missing");
    let missing = home.path().join("no-such.yaml").display().to_string();
    let output = run_operator(&["validate", &missing], &[], home.path());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(stdout.trim(), format!("{missing}: cannot be read: No such file or directory"));
}

#[test]
fn completions_are_printed_for_each_shell() {
    let home = scratch("completions");
    let output = run_operator(&["completions", "bash"], &[], home.path());
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let script = String::from_utf8_lossy(&output.stdout);
    assert!(script.contains("complete -F _sei__operator"), "a bash completion function registered: {script}");
    for word in ["crds", "validate", "run", "--lease-name", "completions"] {
        assert!(script.contains(word), "{word} completes");
    }
    let output = run_operator(&["completions", "zsh"], &[], home.path());
    assert!(output.status.success() && !output.stdout.is_empty());
}
