//! `sei-sim`: the simulator's command line.
//!
//! - `sei-sim run <file-or-dir>... [--seed N] [--trace]` replays scenario files with the operator's real
//!   reconcilers and prints a table (scenario, result, simulated time, wall time, invariant checks); a failure
//!   prints its seed, what failed and the trace tail, and the exit code is non-zero.
//! - `sei-sim fuzz [--cases N] [--seed S] [--max-replicas R] [--max-ops K] [--out FILE]` generates whole runs,
//!   judges each by the invariants, liveness and a differential oracle, and on a failure shrinks it and writes a
//!   scenario file that `sei-sim run` replays (docs/fuzzing.md).
//! - `sei-sim bench [pods...]` times one simulated hour of a fleet (default 3, 16 and 100 pods).
//! - `sei-sim trace [pods] [seconds]` prints the trace of that fleet.
//!
//! Build it in release mode: `cargo run --release -p sei-sim -- run scenarios/`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use sei_sim::bench::{fleet, ready_pods, workers_for};
use sei_sim::scenario;

const HOUR: Duration = Duration::from_secs(3600);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("bench") => {
            let sizes: Result<Vec<usize>, _> = args[1..].iter().map(|a| a.parse::<usize>()).collect();
            match sizes {
                Ok(sizes) if sizes.is_empty() => bench(&[3, 16, 100]),
                Ok(sizes) => bench(&sizes),
                Err(e) => {
                    eprintln!("sei-sim bench: pod counts must be numbers: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Some("run") => run(&args[1..]),
        Some("fuzz") => fuzz(&args[1..]),
        Some("trace") => {
            let number = |i: usize, default: u64| args.get(i).and_then(|a| a.parse::<u64>().ok()).unwrap_or(default);
            trace(usize::try_from(number(1, 3)).unwrap_or(3), Duration::from_secs(number(2, 60)))
        }
        _ => {
            eprintln!("usage: sei-sim run <file-or-dir>... [--seed N] [--trace]   replay scenario files");
            eprintln!("       sei-sim fuzz [--cases N] [--seed S] [--max-replicas R] [--max-ops K] [--out FILE]");
            eprintln!("                                          generated runs judged by the oracles");
            eprintln!("       sei-sim bench [pods...]            wall seconds per simulated hour of a fleet");
            eprintln!("       sei-sim trace [pods] [seconds]     the trace of the benchmark fleet");
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

fn trace(pods: usize, duration: Duration) -> ExitCode {
    let run = fleet(pods, 1).and_then(|mut world| world.run_for(duration).map(|()| world));
    match run {
        Ok(world) => {
            println!("{}", world.trace().text());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("sei-sim trace: {e}");
            ExitCode::FAILURE
        }
    }
}

fn bench(sizes: &[usize]) -> ExitCode {
    println!("{:>5} {:>8} {:>12} {:>10} {:>12}", "pods", "workers", "wall s/hour", "ready", "trace lines");
    for &pods in sizes {
        let mut world = match fleet(pods, 1) {
            Ok(world) => world,
            Err(e) => {
                eprintln!("sei-sim bench: {e}");
                return ExitCode::FAILURE;
            }
        };
        // Wall time is measured around the run only; nothing inside the simulation reads it.
        let started = Instant::now();
        if let Err(e) = world.run_for(HOUR) {
            eprintln!("sei-sim bench: {e}");
            return ExitCode::FAILURE;
        }
        let wall = started.elapsed().as_secs_f64();
        let lines = world.trace().lines().len();
        println!("{pods:>5} {:>8} {wall:>12.2} {:>10} {lines:>12}", workers_for(pods), ready_pods(&world));
    }
    ExitCode::SUCCESS
}

fn fuzz(args: &[String]) -> ExitCode {
    match fuzz_config(args) {
        Ok((config, out)) => fuzz_with(&config, &out),
        Err(message) => {
            eprintln!("sei-sim fuzz: {message}");
            ExitCode::FAILURE
        }
    }
}

fn fuzz_config(args: &[String]) -> Result<(sei_sim::fuzz::FuzzConfig, PathBuf), String> {
    fn number<T: std::str::FromStr>(flag: &str, value: Option<&String>) -> Result<T, String> {
        value.and_then(|v| v.parse().ok()).ok_or_else(|| format!("{flag} takes a number"))
    }
    let mut config = sei_sim::fuzz::FuzzConfig::new(100, 1, &PathBuf::from("."));
    let mut out = None;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--cases" => config.cases = number("--cases", rest.next())?,
            "--seed" => config.seed = number("--seed", rest.next())?,
            "--max-replicas" => {
                config.bounds.max_replicas = number::<u32>("--max-replicas", rest.next())?.clamp(1, 100)
            }
            "--max-ops" => config.bounds.max_ops = number::<usize>("--max-ops", rest.next())?.max(1),
            "--max-shrink-iters" => config.max_shrink_iters = number("--max-shrink-iters", rest.next())?,
            "--out" => out = Some(PathBuf::from(rest.next().ok_or("--out takes a file name")?)),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let out = out.unwrap_or_else(|| PathBuf::from(format!("fuzz-failure-seed-{}.yaml", config.seed)));
    Ok((config, out))
}

fn fuzz_with(config: &sei_sim::fuzz::FuzzConfig, out: &std::path::Path) -> ExitCode {
    println!(
        "fuzzing {} cases from seed {} (replicas 1..={}, up to {} operations, settle within {:?})",
        config.cases, config.seed, config.bounds.max_replicas, config.bounds.max_ops, config.settle_within
    );
    // Wall time is measured around the runs only; nothing inside the simulation reads it.
    let started = Instant::now();
    let mut last_line = Instant::now();
    let report = sei_sim::fuzz::fuzz(config, |progress| {
        // At most one progress line per two seconds of wall time.
        if last_line.elapsed() < Duration::from_secs(2) {
            return;
        }
        last_line = Instant::now();
        let wall = started.elapsed().as_secs_f64().max(1e-9);
        let shrinking = if progress.shrink_steps > 0 {
            format!(", shrinking: {} attempts", progress.shrink_steps)
        } else {
            String::new()
        };
        eprintln!(
            "case {}/{}: {:.2} cases/s, {:.1} simulated hours explored ({:.0}x real time){shrinking}",
            progress.cases,
            config.cases,
            f64::from(progress.cases) / wall,
            progress.simulated.as_secs_f64() / 3600.0,
            progress.simulated.as_secs_f64() / wall,
        );
    });
    let wall = started.elapsed().as_secs_f64().max(1e-9);
    let progress = report.progress;
    println!(
        "{} cases in {wall:.1}s wall ({:.2} cases/s), {:.1} simulated hours explored, {} invariant checks",
        progress.cases,
        f64::from(progress.cases) / wall,
        progress.simulated.as_secs_f64() / 3600.0,
        progress.invariant_checks
    );
    let Some(failure) = report.failure else {
        println!("no failure found");
        return ExitCode::SUCCESS;
    };
    println!("FAILED after {} cases ({} shrinking attempts): {}", progress.cases, progress.shrink_steps, failure.case);
    println!("{}", failure.reason);
    match std::fs::write(out, &failure.scenario_yaml) {
        Ok(()) => println!("minimal case written to {}; replay: sei-sim run {}", out.display(), out.display()),
        Err(e) => {
            eprintln!("sei-sim fuzz: cannot write {}: {e}", out.display());
            println!("{}", failure.scenario_yaml);
        }
    }
    ExitCode::FAILURE
}
