//! `sei-sim`: the simulator's command line.
//!
//! - `sei-sim run <file-or-dir>... [--seed N] [--trace]` replays scenario files with the operator's real
//!   reconcilers and prints a table (scenario, result, simulated time, wall time, invariant checks); a failure
//!   prints its seed, what failed and the trace tail, and the exit code is non-zero.
//! - `sei-sim bench [--replicas 3,16,100] [--suite scenarios/]` times the standard rollout (an InPlace
//!   deployment becomes Ready, then rolls onto a patch release) at each replica count, and the whole suite:
//!   simulated time, wall time, simulated seconds per wall second, invariant checks.
//! - `sei-sim trace [replicas]` prints the trace of the standard rollout (default 3 replicas).
//!
//! Build it in release mode: `cargo run --release -p sei-sim -- run scenarios/`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use sei_sim::bench::{self, Measurement};
use sei_sim::scenario;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("bench") => bench(&args[1..]),
        Some("run") => run(&args[1..]),
        Some("trace") => trace(&args[1..]),
        _ => {
            eprintln!("usage: sei-sim run <file-or-dir>... [--seed N] [--trace]   replay scenario files");
            eprintln!("       sei-sim bench [--replicas 3,16,100] [--suite scenarios/]   time rollouts and the suite");
            eprintln!("       sei-sim trace [replicas]           the trace of the benchmark's standard rollout");
            ExitCode::FAILURE
        }
    }
}

/// Scenario files named on the command line: files as given, directories' `*.yaml` in name order.
fn scenario_files(paths: &[String]) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    for path in paths.iter().map(PathBuf::from) {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(&path)
                .map_err(|e| format!("{}: {e}", path.display()))?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(path);
        }
    }
    if files.is_empty() {
        return Err("no scenario files found".into());
    }
    Ok(files)
}

fn run(args: &[String]) -> ExitCode {
    let mut paths = Vec::new();
    let mut seed = None;
    let mut print_trace = false;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--seed" => match rest.next().map(|s| s.parse::<u64>()) {
                Some(Ok(value)) => seed = Some(value),
                _ => {
                    eprintln!("sei-sim run: --seed takes a number");
                    return ExitCode::FAILURE;
                }
            },
            "--trace" => print_trace = true,
            other => paths.push(other.to_owned()),
        }
    }
    let files = match scenario_files(&paths) {
        Ok(files) => files,
        Err(e) => {
            eprintln!("sei-sim run: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Manifest files named in scenarios are relative to the repository root: the current directory.
    let root = PathBuf::from(".");
    println!("{:<44} {:>6} {:>10} {:>9} {:>10}", "scenario", "result", "simulated", "wall", "checks");
    let (mut passed, mut failed) = (0, 0);
    let suite_started = Instant::now();
    for file in &files {
        let scenario = match scenario::load(file) {
            Ok(scenario) => scenario,
            Err(e) => {
                failed += 1;
                println!("{:<44} {:>6}", file.display(), "ERROR");
                eprintln!("{e}");
                continue;
            }
        };
        eprintln!("running {} ...", scenario.name);
        // Wall time is measured around the run only; nothing inside the simulation reads it.
        let started = Instant::now();
        let outcome = scenario::run(&scenario, seed, &root);
        let wall = started.elapsed().as_secs_f64();
        let result = if outcome.passed() { "ok" } else { "FAILED" };
        println!(
            "{:<44} {result:>6} {:>9.0}s {wall:>8.2}s {:>10}",
            outcome.name,
            outcome.simulated.as_secs_f64(),
            outcome.invariant_checks
        );
        if print_trace {
            println!("{}", outcome.trace.text());
        }
        match &outcome.failure {
            None => passed += 1,
            Some(failure) => {
                failed += 1;
                println!("  seed {}: {failure}", outcome.seed);
                println!("  replay: sei-sim run {} --seed {}", file.display(), outcome.seed);
                println!("  --- trace tail ---\n{}", outcome.trace.tail(30));
            }
        }
    }
    println!("{passed} passed, {failed} failed ({:.1}s wall)", suite_started.elapsed().as_secs_f64());
    if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

fn trace(args: &[String]) -> ExitCode {
    let replicas = match args.first().map(|a| a.parse::<u32>()) {
        None => 3,
        Some(Ok(replicas)) => replicas,
        Some(Err(e)) => {
            eprintln!("sei-sim trace: the replica count must be a number: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = scenario::run(&bench::standard_rollout(replicas), None, &PathBuf::from("."));
    println!("{}", outcome.trace.text());
    match outcome.failure {
        None => ExitCode::SUCCESS,
        Some(failure) => {
            eprintln!("sei-sim trace: seed {}: {failure}", outcome.seed);
            ExitCode::FAILURE
        }
    }
}

/// `sei-sim bench [--replicas 3,16,100] [--suite DIR]`: one row per replica count, then the suite's row.
fn bench(args: &[String]) -> ExitCode {
    let mut replicas: Vec<u32> = bench::DEFAULT_REPLICAS.to_vec();
    let mut suite_dir = PathBuf::from("scenarios");
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match (arg.as_str(), rest.next()) {
            ("--replicas", Some(list)) => {
                match list.split(',').map(|n| n.trim().parse::<u32>()).collect::<Result<Vec<_>, _>>() {
                    Ok(list) if !list.is_empty() && !list.contains(&0) => replicas = list,
                    _ => {
                        eprintln!("sei-sim bench: --replicas takes replica counts like 3,16,100");
                        return ExitCode::FAILURE;
                    }
                }
            }
            ("--suite", Some(dir)) => suite_dir = PathBuf::from(dir),
            (other, _) => {
                eprintln!("sei-sim bench: unknown or incomplete argument {other:?}");
                eprintln!("usage: sei-sim bench [--replicas 3,16,100] [--suite scenarios/]");
                return ExitCode::FAILURE;
            }
        }
    }
    println!("{}", Measurement::header());
    let mut failures = Vec::new();
    for &n in &replicas {
        eprintln!("running the standard rollout at {n} replicas ...");
        let run = bench::rollout(n);
        println!("{}", run.row());
        failures.extend(run.failures);
    }
    eprintln!("running every scenario of {} ...", suite_dir.display());
    // Manifest files named in scenarios are relative to the repository root: the current directory.
    match bench::suite(&suite_dir, &PathBuf::from(".")) {
        Ok(suite) => {
            println!("{}", suite.row());
            failures.extend(suite.failures);
        }
        Err(e) => failures.push(e),
    }
    for failure in &failures {
        println!("FAILED {failure}");
    }
    if failures.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
