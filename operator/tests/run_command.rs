//! `sei-operator run` as a process: with no reachable cluster it exits non-zero with a one-line reason on stderr
//! (no panic, no stack trace), and `--help` documents every flag with its environment variable.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BINARY: &str = env!("CARGO_BIN_EXE_sei-operator");
const TEST_BOUND: Duration = Duration::from_secs(60);

/// A scratch directory of this test process.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sei-operator-run-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs the binary with a clean environment (no in-cluster variables, HOME in a scratch directory), killing it
/// if it outlives the test bound.
fn run_operator(args: &[&str], env: &[(&str, String)], home: &PathBuf) -> Output {
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
    let kubeconfig = home.join("kubeconfig");
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
    let output = run_operator(&args, &[("KUBECONFIG", kubeconfig.display().to_string())], &home);
    assert_one_line_failure(&output, "is unreachable");
    let _ = std::fs::remove_dir_all(&home);
}

#[test]
fn no_cluster_configuration_fails_in_one_line() {
    let home = scratch("unconfigured");
    let mut args = vec!["run"];
    args.extend(LOCAL_LISTENERS);
    let missing = home.join("no-such-kubeconfig").display().to_string();
    let output = run_operator(&args, &[("KUBECONFIG", missing)], &home);
    assert_one_line_failure(&output, "no Kubernetes client configuration");
    let _ = std::fs::remove_dir_all(&home);
}

#[test]
fn an_invalid_flag_value_is_refused_before_connecting() {
    let home = scratch("invalid");
    let output = run_operator(&["run", "--stall-threshold", "soon"], &[], &home);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--stall-threshold"));
}

#[test]
fn help_shows_every_flag_and_its_environment_variable() {
    let home = scratch("help");
    let output = run_operator(&["run", "--help"], &[], &home);
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
