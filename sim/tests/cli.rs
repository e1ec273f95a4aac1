//! The `sei-sim` command line as a user meets it: help, bad options, a passing and a failing scenario file, runs
//! side by side.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn sei_sim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sei-sim")).args(args).current_dir(repo_root()).output().expect("sei-sim runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn help_prints_the_usage_and_succeeds() {
    for args in [&["--help"][..], &["-h"], &["help"]] {
        let output = sei_sim(args);
        assert!(output.status.success(), "{args:?}");
        let stdout = text(&output.stdout);
        for command in ["run", "fuzz", "bench", "trace"] {
            assert!(stdout.lines().any(|l| l.trim_start().starts_with(command)), "{command} in {stdout}");
        }
    }
    let output = sei_sim(&["run", "--help"]);
    assert!(output.status.success());
    let stdout = text(&output.stdout);
    assert!(stdout.contains("<FILE_OR_DIR>") && stdout.contains("--seed") && stdout.contains("--svg"), "{stdout}");
}

#[test]
fn an_unknown_command_or_option_fails_naming_it() {
    let output = sei_sim(&["replay"]);
    assert!(!output.status.success());
    assert!(text(&output.stderr).contains("unrecognized subcommand 'replay'"), "{}", text(&output.stderr));
    let output = sei_sim(&["run", "--bogus", "scenarios/"]);
    assert!(!output.status.success());
    assert!(text(&output.stderr).contains("unexpected argument '--bogus'"), "{}", text(&output.stderr));
    let output = sei_sim(&["bench", "--replicas", "3,0"]);
    assert!(!output.status.success());
    assert!(text(&output.stderr).contains("--replicas"), "{}", text(&output.stderr));
    let output = sei_sim(&["run"]);
    assert!(!output.status.success());
    assert!(text(&output.stderr).contains("<FILE_OR_DIR>"), "{}", text(&output.stderr));
}

#[test]
fn a_passing_scenario_prints_its_row_and_exits_zero() {
    let output = sei_sim(&["run", "scenarios/standalone-seinode.yaml"]);
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", text(&output.stderr));
    let row = stdout.lines().find(|l| l.starts_with("standalone-seinode ")).expect("a row for the scenario");
    assert!(row.split_whitespace().nth(1) == Some("ok"), "{row}");
    assert!(stdout.contains("1 passed, 0 failed"), "{stdout}");
}

/// Rows, traces and the summary of runs side by side (`-j`) are those of one run at a time, in file order, but for
/// the wall-time columns. The first file takes longer than the second, so a table printed as runs finish would
/// put it second.
#[test]
fn runs_side_by_side_print_what_one_at_a_time_prints_in_file_order() {
    let files = ["scenarios/sidecar-restart-storm.yaml", "scenarios/standalone-seinode.yaml"];
    let without_wall = |output: &Output| {
        text(&output.stdout)
            .lines()
            .map(|line| match line.split_whitespace().collect::<Vec<_>>()[..] {
                [name, result, simulated, _wall, checks] if result == "ok" || result == "FAILED" => {
                    format!("{name} {result} {simulated} {checks}")
                }
                _ => line.split(" (").next().unwrap_or_default().to_owned(),
            })
            .collect::<Vec<_>>()
    };
    let side_by_side = sei_sim(&["run", files[0], files[1], "--trace", "-j", "2"]);
    let one_at_a_time = sei_sim(&["run", files[0], files[1], "--trace", "-j", "1"]);
    assert!(side_by_side.status.success(), "{}", text(&side_by_side.stderr));
    assert!(one_at_a_time.status.success(), "{}", text(&one_at_a_time.stderr));
    let rows = without_wall(&side_by_side);
    assert_eq!(rows, without_wall(&one_at_a_time));
    let first = rows.iter().position(|l| l.starts_with("sidecar-restart-storm ")).expect("its row");
    let second = rows.iter().position(|l| l.starts_with("standalone-seinode ")).expect("its row");
    assert!(first < second, "rows in file order: {rows:#?}");
    assert!(rows.last().is_some_and(|l| l.starts_with("2 passed, 0 failed")), "{rows:#?}");
    let output = sei_sim(&["run", files[1], "-j", "0"]);
    assert!(!output.status.success());
    assert!(text(&output.stderr).contains("--jobs"), "{}", text(&output.stderr));
}

#[test]
fn a_failing_scenario_prints_the_seed_and_what_failed_and_exits_non_zero() {
    let dir = tempfile::Builder::new().prefix("sei-sim-cli-").tempdir().expect("a scratch directory");
    let file = dir.path().join("never-ready.yaml");
    let scenario = std::fs::read_to_string(repo_root().join("scenarios/standalone-seinode.yaml"))
        .expect("the scenario exists")
        .replace("name: standalone-seinode", "name: never-ready");
    // A node that must report an image nothing runs: the expectation cannot hold.
    let broken =
        format!("{scenario}\n  - expect: {{nodes: [{{names: no-such-node, are: {{status.phase: Running}}}}]}}\n");
    std::fs::write(&file, broken).expect("written");
    let output = sei_sim(&["run", file.to_str().expect("a UTF-8 path"), "--seed", "7"]);
    let stdout = text(&output.stdout);
    assert!(!output.status.success(), "{stdout}");
    assert!(stdout.contains("FAILED"), "{stdout}");
    assert!(stdout.contains("seed 7") && stdout.contains("SeiNode no-such-node does not exist"), "{stdout}");
}

#[test]
fn completions_are_printed_for_each_shell() {
    let output = sei_sim(&["completions", "bash"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let script = text(&output.stdout);
    assert!(script.contains("complete -F _sei__sim"), "a bash completion function registered: {script}");
    for command in ["run", "fuzz", "bench", "trace", "completions"] {
        assert!(script.contains(command), "{command} completes");
    }
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let output = sei_sim(&["completions", shell]);
        assert!(output.status.success() && !output.stdout.is_empty(), "{shell}");
    }
    let output = sei_sim(&["completions", "tcsh"]);
    assert!(!output.status.success());
    assert!(text(&output.stderr).contains("invalid value 'tcsh'"), "{}", text(&output.stderr));
}
