//! `sei-sim`: the simulator's command line.
//!
//! - `sei-sim run <file-or-dir>... [--seed N] [--trace] [--svg OUT] [-j N]` replays scenario files with the
//!   operator's real reconcilers, as many at once as there are cores (`-j`), and prints a table in file order
//!   (scenario, result, simulated time, wall time, invariant checks); a failure prints its seed, what failed and
//!   the trace tail, and the exit code is non-zero. `--svg` draws each run's timeline (OUT.svg for one scenario,
//!   else OUT is a directory that gets NAME.svg per scenario). On a terminal with `-j 1`, stderr shows a progress
//!   line while a scenario runs.
//! - `sei-sim fuzz [--cases N] [--seed S] [--max-replicas R] [--max-ops K] [--out FILE]` generates whole runs,
//!   judges each by the invariants, liveness and a differential oracle, and on a failure shrinks it and writes a
//!   scenario file that `sei-sim run` replays (docs/fuzzing.md). `-j N` judges N cases at once (default one per
//!   core; the report does not depend on it), `--shard I/N` one of N disjoint parts of the cases, `--keep-going`
//!   every case whatever fails, `--summary FILE` writes the run's summary as JSON; it exits 1 when it found a
//!   failure, 2 on an error.
//! - `sei-sim fuzz-merge <FILE_OR_DIR>... [--out FILE] [--print-scenarios]` merges shard summaries of one
//!   campaign and prints the campaign's report; it refuses summaries of different campaigns.
//! - `sei-sim bench [--replicas 3,16,100,300] [--suite scenarios/ | --without-suite]` times the standard rollout
//!   (an InPlace deployment becomes Ready, then rolls onto a patch release) at each replica count, and the whole
//!   suite: simulated time, wall time, simulated seconds per wall second, wall milliseconds per simulated second
//!   (the growth curve), invariant checks. With `--api-load`
//!   (default replicas 16,100) it counts the operator's API requests per simulated minute instead: the Ready
//!   deployment at rest for 10 minutes, then the rollout, reads and writes, by verb and kind.
//! - `sei-sim serve [--port 6443] [--kubeconfig FILE] [--speed X]` runs the simulated cluster in real time behind
//!   the Kubernetes API on loopback and writes a kubeconfig, for `sei-operator run` and kubectl (`sim/src/serve/`).
//! - `sei-sim trace [replicas]` prints the trace of the standard rollout (default 3 replicas).
//!
//! Build it in release mode: `cargo run --release -p sei-sim -- run scenarios/`.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{CommandFactory, Parser, Subcommand};

use sei_sim::World;
use sei_sim::bench::{self, Measurement};
use sei_sim::scenario::format::Step;
use sei_sim::scenario::{self, Observer};
use sei_sim::timeline::{self, Recorder};

/// mimalloc rather than glibc's malloc: a run allocates and frees small objects (JSON values, typed objects) at a
/// high rate, and glibc's malloc and free were a third of the profile.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The command line, parsed by clap: `--help` on every command, errors that name the argument.
#[derive(Parser)]
#[command(
    name = "sei-sim",
    version,
    about = "The deterministic simulator of the Sei operator: replay scenarios, fuzz rollouts, benchmark",
    after_help = "docs: docs/scenarios.md (the scenario format), docs/fuzzing.md (the fuzzer)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Replay scenario files (a directory: its *.yaml in name order) and print one row per scenario.
    Run {
        /// Scenario files, or directories of them.
        #[arg(required = true, value_name = "FILE_OR_DIR")]
        paths: Vec<PathBuf>,
        /// Replay with this seed instead of each file's own.
        #[arg(long)]
        seed: Option<u64>,
        /// Print each run's whole trace.
        #[arg(long)]
        trace: bool,
        /// Draw each run's timeline: OUT.svg for one scenario, else a directory that gets NAME.svg per scenario.
        #[arg(long, value_name = "OUT")]
        svg: Option<PathBuf>,
        /// How many scenarios run at once, each on its own thread (default: one per core). Rows still print in
        /// file order, and a run's trace does not depend on what runs beside it.
        #[arg(long, short = 'j', value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
        jobs: Option<u16>,
    },
    /// Generate whole runs, judge each by the invariants, liveness and a differential oracle, and write a failure
    /// as a scenario file.
    Fuzz(FuzzArgs),
    /// Merge the JSON summaries of a campaign's shards (`fuzz --summary`) into one and print the campaign's report.
    FuzzMerge {
        /// Summary files, or directories of them (each directory's *.json but the --out file, in name order).
        #[arg(required = true, value_name = "FILE_OR_DIR")]
        paths: Vec<PathBuf>,
        /// Write the merged summary here.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Print each failure's scenario file after the report.
        #[arg(long)]
        print_scenarios: bool,
    },
    /// Time the standard rollout at each replica count and the whole suite (or, with --api-load, count the
    /// operator's API requests per simulated minute at rest and in the rollout).
    Bench {
        /// Replica counts, comma-separated (default 3,16,100,300; 16,100 with --api-load).
        #[arg(long, value_delimiter = ',', value_parser = clap::value_parser!(u32).range(1..))]
        replicas: Option<Vec<u32>>,
        /// The scenario directory whose whole replay is timed.
        #[arg(long, value_name = "DIR", default_value = "scenarios")]
        suite: PathBuf,
        /// Time the standard rollouts only (for a profiler or `perf stat` on one replica count).
        #[arg(long, conflicts_with = "api_load")]
        without_suite: bool,
        /// Count API requests instead of timing.
        #[arg(long)]
        api_load: bool,
    },
    /// Run the simulated cluster in real time behind the Kubernetes API on loopback, for `sei-operator run` and
    /// kubectl; fault commands on stdin (`help` lists them) or `POST /sim/control`.
    Serve(ServeArgs),
    /// Print a completion script for a shell to standard output (e.g. `sei-sim completions bash >
    /// /etc/bash_completion.d/sei-sim`).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the trace of the benchmark's standard rollout.
    Trace {
        /// Replicas of the standard rollout.
        #[arg(default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
        replicas: u32,
    },
}

/// `sei-sim serve`'s options.
#[derive(clap::Args)]
struct ServeArgs {
    /// Loopback port of the API (0: any free port).
    #[arg(long, default_value_t = 6443)]
    port: u16,
    /// Where the kubeconfig is written.
    #[arg(long, value_name = "FILE", default_value = "sei-sim.kubeconfig")]
    kubeconfig: PathBuf,
    /// Worker nodes.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    workers: u32,
    /// Simulated seconds per wall second.
    #[arg(long, default_value_t = 1.0)]
    speed: f64,
    /// The world's seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// `sei-sim fuzz`'s options; each left unset keeps the fuzzer's default.
#[derive(clap::Args)]
struct FuzzArgs {
    /// Generated cases.
    #[arg(long, default_value_t = 100)]
    cases: u32,
    /// The first case's seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Most replicas a generated deployment has (1 to 100).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100))]
    max_replicas: Option<u32>,
    /// Most operations in a generated run.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    max_ops: Option<u64>,
    /// Most shrink iterations of a failure.
    #[arg(long)]
    max_shrink_iters: Option<u32>,
    /// Most seconds spent shrinking a failure.
    #[arg(long, value_name = "SECS")]
    max_shrink_time: Option<u64>,
    /// Never delete a deployment with Retain and apply it again.
    #[arg(long)]
    without_retain_reapply: bool,
    /// Never generate HardFork rollouts.
    #[arg(long)]
    without_hard_fork: bool,
    /// Judge shard I of N only: the cases whose index (from 0, in generation order) is I modulo N.
    #[arg(long, value_name = "I/N")]
    shard: Option<sei_sim::fuzz::Shard>,
    /// Judge every case whatever fails, each failure shrunk and written (without it the run stops at the first
    /// failure).
    #[arg(long)]
    keep_going: bool,
    /// How many cases are judged at once, each on its own thread (default: one per core). The report does not
    /// depend on it: the same cases judged, the same failures shrunk to the same scenario files.
    #[arg(long, short = 'j', value_name = "N")]
    jobs: Option<std::num::NonZeroU32>,
    /// Write the run's summary as JSON here: cases, simulated hours, invariant checks, failures with their files.
    #[arg(long, value_name = "FILE")]
    summary: Option<PathBuf>,
    /// Where failures' scenario files go, each fuzz-failure-seed-SEED-case-K.yaml (default: the current directory).
    #[arg(long, value_name = "DIR")]
    failures_dir: Option<PathBuf>,
    /// Write the failure's scenario file here instead (the run stops at the one failure).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["keep_going", "failures_dir"])]
    out: Option<PathBuf>,
}

/// Prints the completion script for `shell`; a closed standard output is an error, not a panic.
fn completions(shell: clap_complete::Shell) -> ExitCode {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "sei-sim", &mut script);
    match std::io::Write::write_all(&mut std::io::stdout().lock(), &script) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: writing the completion script: {error}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Run { paths, seed, trace, svg, jobs } => run(&paths, seed, trace, svg, jobs.map(usize::from)),
        Command::Fuzz(args) => fuzz(args),
        Command::FuzzMerge { paths, out, print_scenarios } => fuzz_merge(&paths, out.as_deref(), print_scenarios),
        Command::Bench { replicas, suite, without_suite, api_load } => {
            bench(replicas, (!without_suite).then_some(suite.as_path()), api_load)
        }
        Command::Trace { replicas } => trace(replicas),
        Command::Serve(args) => serve(args),
        Command::Completions { shell } => completions(shell),
    }
}

/// Serves until stdin closes or `quit`; each other line is a fault command.
fn serve(args: ServeArgs) -> ExitCode {
    let mut config = sei_sim::serve::ServeConfig::new(args.kubeconfig);
    config.port = args.port;
    config.workers = usize::try_from(args.workers).unwrap_or(3);
    config.speed = args.speed;
    config.seed = args.seed;
    let handle = match sei_sim::serve::start(config) {
        Ok(handle) => handle,
        Err(error) => {
            eprintln!("sei-sim serve: {error}");
            return ExitCode::FAILURE;
        }
    };
    println!("API:        {}", handle.api_url());
    println!("kubeconfig: {}", handle.kubeconfig.display());
    println!(
        "operator:   KUBECONFIG={} sei-operator run --sidecar-proxy {} \\",
        handle.kubeconfig.display(),
        handle.sidecar_proxy_url()
    );
    println!("              --metrics-addr 127.0.0.1:8080 --probe-addr 127.0.0.1:8081");
    println!("faults:     type `help` here, or POST a command to {}/sim/control", handle.api_url());
    let mut line = String::new();
    loop {
        line.clear();
        match std::io::stdin().read_line(&mut line) {
            // Stdin closed (run in the background): serve until killed.
            Ok(0) | Err(_) => loop {
                std::thread::park();
            },
            Ok(_) if matches!(line.trim(), "quit" | "exit") => break,
            Ok(_) => println!("{}", handle.command(line.trim())),
        }
    }
    handle.stop();
    ExitCode::SUCCESS
}

/// Scenario files named on the command line: files as given, directories' `*.yaml` in name order.
fn scenario_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    for path in paths.iter().cloned() {
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

fn run(paths: &[PathBuf], seed: Option<u64>, print_trace: bool, svg: Option<PathBuf>, jobs: Option<usize>) -> ExitCode {
    let files = match scenario_files(paths) {
        Ok(files) => files,
        Err(e) => {
            eprintln!("sei-sim run: {e}");
            return ExitCode::FAILURE;
        }
    };
    let svg = match svg.map(|out| SvgOut::new(out, files.len())).transpose() {
        Ok(svg) => svg,
        Err(e) => {
            eprintln!("sei-sim run: {e}");
            return ExitCode::FAILURE;
        }
    };
    let jobs = jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get))
        .clamp(1, files.len().max(1));
    // The progress line only on a terminal and with one run at a time: CI logs get no carriage returns, and
    // runs side by side would overwrite each other's line.
    let terminal = std::io::stderr().is_terminal();
    let settings = RunSettings {
        seed,
        print_trace,
        svg,
        progress: terminal && jobs == 1,
        announce: !terminal,
        // Scenario names are their file names by convention: the column fits the longest.
        width: files.iter().filter_map(|f| f.file_stem()).map(|s| s.len()).max().unwrap_or(0).max(44),
    };
    println!(
        "{:<width$} {:>6} {:>10} {:>9} {:>10}",
        "scenario",
        "result",
        "simulated",
        "wall",
        "checks",
        width = settings.width
    );
    let (mut passed, mut failed, mut unwritten) = (0, 0, 0);
    let suite_started = Instant::now();
    // Each run is a world of its own on one thread; runs share nothing but the compiled CRD validator, so a
    // run's trace is the same whatever runs beside it. Reports print in file order as they complete.
    // Runs start largest fleet first (stable: file order among equals), so a long run does not start last and
    // leave the other cores idle while it finishes.
    let mut start_order: Vec<usize> = (0..files.len()).collect();
    start_order.sort_by_key(|&index| std::cmp::Reverse(fleet_size(&files[index])));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let (sender, receiver) = std::sync::mpsc::channel::<(usize, RunReport)>();
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            let sender = sender.clone();
            let (next, files, settings, start_order) = (&next, &files, &settings, &start_order);
            scope.spawn(move || {
                loop {
                    let started = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(&index) = start_order.get(started) else { break };
                    let Some(file) = files.get(index) else { break };
                    // A run that panics fails its own row (the panic's message went to stderr), not the table.
                    let report = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_file(file, settings)))
                        .unwrap_or_else(|_| RunReport::panicked(file, settings.width));
                    if sender.send((index, report)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(sender);
        let mut waiting = std::collections::BTreeMap::new();
        let mut printed = 0;
        for (index, report) in receiver {
            waiting.insert(index, report);
            while let Some(report) = waiting.remove(&printed) {
                print!("{}", report.stdout);
                eprint!("{}", report.stderr);
                match report.result {
                    RunResult::Passed => passed += 1,
                    RunResult::Failed => failed += 1,
                }
                if report.unwritten {
                    unwritten += 1;
                }
                printed += 1;
            }
        }
    });
    println!("{passed} passed, {failed} failed ({:.1}s wall)", suite_started.elapsed().as_secs_f64());
    if failed == 0 && unwritten == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

/// The most replicas any `replicas:` in a scenario file asks for (0 if none or unreadable): how long its run
/// will take, roughly, read from the text before the file is loaded.
fn fleet_size(file: &Path) -> u64 {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    text.match_indices("replicas:")
        .filter(|(at, _)| !text[..*at].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_'))
        .filter_map(|(at, key)| {
            let value = text[at + key.len()..].trim_start();
            value[..value.find(|c: char| !c.is_ascii_digit()).unwrap_or(value.len())].parse().ok()
        })
        .max()
        .unwrap_or(0)
}

/// How `sei-sim run` runs and reports each scenario.
struct RunSettings {
    seed: Option<u64>,
    print_trace: bool,
    svg: Option<SvgOut>,
    /// Draw the live progress line on stderr.
    progress: bool,
    /// Say on stderr which scenario starts (a log has no progress line).
    announce: bool,
    /// The width of the scenario column.
    width: usize,
}

enum RunResult {
    Passed,
    Failed,
}

/// What one scenario's run prints, held until the runs before it in file order have printed.
struct RunReport {
    stdout: String,
    stderr: String,
    result: RunResult,
    /// Its `--svg` picture could not be written.
    unwritten: bool,
}

impl RunReport {
    fn panicked(file: &Path, width: usize) -> Self {
        RunReport {
            stdout: format!("{:<width$} {:>6}\n  the run panicked (its message is above)\n", file.display(), "FAILED"),
            stderr: String::new(),
            result: RunResult::Failed,
            unwritten: false,
        }
    }
}

/// Loads and runs one scenario file, and renders its row (and trace, failure and picture) as `sei-sim run`
/// prints them.
fn run_file(file: &Path, settings: &RunSettings) -> RunReport {
    use std::fmt::Write as _;
    let width = settings.width;
    let (mut stdout, mut stderr) = (String::new(), String::new());
    let scenario = match scenario::load(file) {
        Ok(scenario) => scenario,
        Err(e) => {
            let _ = writeln!(stdout, "{:<width$} {:>6}", file.display(), "ERROR");
            let _ = writeln!(stderr, "{e}");
            return RunReport { stdout, stderr, result: RunResult::Failed, unwritten: false };
        }
    };
    if settings.announce {
        eprintln!("running {} ...", scenario.name);
    }
    let mut observer = CliObserver {
        recorder: settings.svg.as_ref().map(|_| Recorder::new(&scenario)),
        progress: settings.progress.then(|| Progress::new(&scenario.name, scenario.timeline.len())),
    };
    // Manifest files named in scenarios are relative to the repository root: the current directory.
    let root = Path::new(".");
    // Wall time is measured around the run only; nothing inside the simulation reads it.
    let started = Instant::now();
    let outcome = scenario::run_observed(&scenario, settings.seed, root, &mut observer);
    let wall = started.elapsed().as_secs_f64();
    if let Some(progress) = &mut observer.progress {
        progress.clear();
    }
    let result = if outcome.passed() { "ok" } else { "FAILED" };
    let _ = writeln!(
        stdout,
        "{:<width$} {result:>6} {:>9.0}s {wall:>8.2}s {:>10}",
        outcome.name,
        outcome.simulated.as_secs_f64(),
        outcome.invariant_checks
    );
    if settings.print_trace {
        let _ = writeln!(stdout, "{}", outcome.trace.text());
    }
    let mut unwritten = false;
    if let (Some(svg), Some(recorder)) = (&settings.svg, observer.recorder) {
        let path = svg.path_for(&outcome.name);
        let picture = timeline::render(&recorder.finish(&outcome));
        match std::fs::write(&path, picture) {
            Ok(()) => {
                let _ = writeln!(stderr, "  timeline: {}", path.display());
            }
            Err(e) => {
                let _ = writeln!(stderr, "sei-sim run: --svg: {}: {e}", path.display());
                unwritten = true;
            }
        }
    }
    let result = match &outcome.failure {
        None => RunResult::Passed,
        Some(failure) => {
            let _ = writeln!(stdout, "  seed {}: {failure}", outcome.seed);
            let _ = writeln!(stdout, "  replay: sei-sim run {} --seed {}", file.display(), outcome.seed);
            let _ = writeln!(stdout, "  --- trace tail ---\n{}", outcome.trace.tail(30));
            RunResult::Failed
        }
    };
    RunReport { stdout, stderr, result, unwritten }
}

/// Where `--svg` writes pictures.
enum SvgOut {
    /// The one scenario's picture.
    File(PathBuf),
    /// `NAME.svg` per scenario.
    Directory(PathBuf),
}

impl SvgOut {
    /// A path ending in `.svg` is a file, for exactly one scenario; anything else is a directory, created if
    /// missing.
    fn new(out: PathBuf, scenarios: usize) -> Result<Self, String> {
        if out.extension().is_some_and(|e| e.eq_ignore_ascii_case("svg")) {
            if scenarios != 1 {
                return Err(format!(
                    "--svg {}: {scenarios} scenario files cannot share one picture; give a directory, which gets NAME.svg per scenario",
                    out.display()
                ));
            }
            return Ok(SvgOut::File(out));
        }
        std::fs::create_dir_all(&out)
            .map_err(|e| format!("--svg {}: cannot make the directory: {e}", out.display()))?;
        Ok(SvgOut::Directory(out))
    }

    fn path_for(&self, scenario: &str) -> PathBuf {
        match self {
            SvgOut::File(path) => path.clone(),
            SvgOut::Directory(directory) => {
                // A scenario name is free text: keep it to characters every file system takes.
                let name: String = scenario
                    .chars()
                    .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '_' })
                    .collect();
                directory.join(Path::new(&format!("{name}.svg")))
            }
        }
    }
}

/// What `sei-sim run` watches a run with: the timeline recorder (`--svg`) and the progress line (a terminal).
struct CliObserver {
    recorder: Option<Recorder>,
    progress: Option<Progress>,
}

impl Observer for CliObserver {
    fn on_step_start(&mut self, index: usize, step: &Step, now: Duration) {
        if let Some(recorder) = &mut self.recorder {
            recorder.on_step_start(index, step, now);
        }
        if let Some(progress) = &mut self.progress {
            progress.on_step_start(index, step, now);
        }
    }

    fn after_tick(&mut self, world: &World) {
        if let Some(recorder) = &mut self.recorder {
            recorder.after_tick(world);
        }
        if let Some(progress) = &mut self.progress {
            progress.after_tick(world);
        }
    }
}

/// The line on stderr that says where a long run is: scenario, step, simulated time. It reads wall time to
/// redraw a few times a second at most; the simulation it watches never does.
struct Progress {
    name: String,
    steps: usize,
    step: usize,
    at: Duration,
    drawn: Option<Instant>,
}

impl Progress {
    const REDRAW: Duration = Duration::from_millis(250);

    fn new(name: &str, steps: usize) -> Self {
        Progress { name: name.to_owned(), steps, step: 0, at: Duration::ZERO, drawn: None }
    }

    fn draw(&mut self) {
        if self.drawn.is_some_and(|at| at.elapsed() < Self::REDRAW) {
            return;
        }
        self.drawn = Some(Instant::now());
        let line = format!("{}  step {}/{}  t={}", self.name, self.step, self.steps, timeline::svg::clock(self.at));
        // \r and erase-line: the next draw overwrites this one.
        let mut stderr = std::io::stderr().lock();
        let _ = write!(stderr, "\r\x1b[2K{line}");
        let _ = stderr.flush();
    }

    /// Erases the line, if one was drawn, so the result row prints on a clean line.
    fn clear(&mut self) {
        if self.drawn.take().is_some() {
            let mut stderr = std::io::stderr().lock();
            let _ = write!(stderr, "\r\x1b[2K");
            let _ = stderr.flush();
        }
    }
}

impl Observer for Progress {
    fn on_step_start(&mut self, index: usize, _step: &Step, now: Duration) {
        (self.step, self.at) = (index + 1, now);
        self.draw();
    }

    fn after_tick(&mut self, world: &World) {
        self.at = world.now();
        self.draw();
    }
}

fn trace(replicas: u32) -> ExitCode {
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

/// `sei-sim bench`: one row per replica count, then the suite's row.
fn bench(replicas: Option<Vec<u32>>, suite_dir: Option<&Path>, api_load: bool) -> ExitCode {
    if api_load {
        return bench_api_load(&replicas.unwrap_or_else(|| bench::API_LOAD_REPLICAS.to_vec()));
    }
    let replicas = replicas.unwrap_or_else(|| bench::DEFAULT_REPLICAS.to_vec());
    // The CRD validator is compiled once per process, before anything is timed: its cost is the process's, not
    // a simulated second's, and it would otherwise fall on whichever run came first.
    if let Err(e) = sei_sim::harness::world::shared_validator() {
        eprintln!("sei-sim bench: {e}");
        return ExitCode::from(2);
    }
    println!("{}", Measurement::header());
    let mut failures = Vec::new();
    for &n in &replicas {
        eprintln!("running the standard rollout at {n} replicas ...");
        let run = bench::rollout(n);
        println!("{}", run.row());
        failures.extend(run.failures);
    }
    if let Some(suite_dir) = suite_dir {
        eprintln!("running every scenario of {} ...", suite_dir.display());
        // Manifest files named in scenarios are relative to the repository root: the current directory.
        match bench::suite(suite_dir, &PathBuf::from(".")) {
            Ok(suite) => {
                println!("{}", suite.row());
                failures.extend(suite.failures);
            }
            Err(e) => failures.push(e),
        }
    }
    for failure in &failures {
        println!("FAILED {failure}");
    }
    if failures.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

/// `sei-sim bench --api-load`: the operator's API requests per simulated minute, at rest and during the
/// standard rollout, per replica count, with each window's breakdown by verb and kind.
fn bench_api_load(replicas: &[u32]) -> ExitCode {
    println!("{}", bench::Window::header());
    let mut failures = Vec::new();
    let mut breakdowns = Vec::new();
    for &n in replicas {
        eprintln!("running the API-load rollout at {n} replicas ...");
        let load = bench::api_load(n);
        for (label, window) in [("at rest", &load.at_rest), ("rollout", &load.rollout)] {
            let name = format!("{n} replicas, {label}");
            println!("{}", window.row(&name));
            breakdowns.push(format!("{name}:"));
            breakdowns.extend(window.breakdown());
        }
        failures.extend(load.failures);
    }
    println!();
    for line in &breakdowns {
        println!("{line}");
    }
    for failure in &failures {
        println!("FAILED {failure}");
    }
    if failures.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

/// `sei-sim fuzz` and `fuzz-merge` exit codes: a failure found, or the command could not do its work.
const FOUND_FAILURES: u8 = 1;
const ERROR: u8 = 2;

fn fuzz(args: FuzzArgs) -> ExitCode {
    let mut config = sei_sim::fuzz::FuzzConfig::new(args.cases, args.seed, &PathBuf::from("."));
    if let Some(max) = args.max_replicas {
        config.bounds.max_replicas = max;
    }
    if let Some(max) = args.max_ops {
        config.bounds.max_ops = usize::try_from(max).unwrap_or(usize::MAX);
    }
    if let Some(max) = args.max_shrink_iters {
        config.max_shrink_iters = max;
    }
    if let Some(seconds) = args.max_shrink_time {
        config.max_shrink_time = Duration::from_secs(seconds);
    }
    if args.without_retain_reapply {
        config.bounds.retain_reapply = false;
    }
    if args.without_hard_fork {
        config.bounds.without_hard_fork = true;
    }
    if let Some(shard) = args.shard {
        config.shard = shard;
    }
    config.keep_going = args.keep_going;
    config.jobs = args.jobs.unwrap_or_else(|| {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        std::num::NonZeroU32::new(u32::try_from(cores).unwrap_or(u32::MAX)).unwrap_or(std::num::NonZeroU32::MIN)
    });
    let failures_dir = args.failures_dir.unwrap_or_else(|| PathBuf::from("."));
    let destination = |failure: &sei_sim::fuzz::Failure| match &args.out {
        Some(out) => out.clone(),
        None => failures_dir.join(format!("fuzz-failure-seed-{}-case-{}.yaml", config.seed, failure.case_index)),
    };
    fuzz_with(&config, destination, args.summary.as_deref())
}

fn fuzz_with(
    config: &sei_sim::fuzz::FuzzConfig,
    destination: impl Fn(&sei_sim::fuzz::Failure) -> PathBuf,
    summary_path: Option<&Path>,
) -> ExitCode {
    let judged = config.shard.share_of(config.cases);
    let shard = if config.shard == sei_sim::fuzz::Shard::WHOLE {
        String::new()
    } else {
        format!(
            ", shard {}: the {judged} whose index is {} modulo {}",
            config.shard, config.shard.index, config.shard.count
        )
    };
    let threads = match config.jobs.get().min(judged) {
        0 | 1 => String::new(),
        jobs => format!(", {jobs} at a time"),
    };
    println!(
        "fuzzing {} cases from seed {}{shard}{threads} (replicas 1..={}, up to {} operations, settle within {:?})",
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
            "case {}/{judged}: {:.2} cases/s, {:.1} simulated hours explored ({:.0}x real time){shrinking}",
            progress.cases,
            f64::from(progress.cases) / wall,
            progress.simulated.as_secs_f64() / 3600.0,
            progress.simulated.as_secs_f64() / wall,
        );
    });
    let wall = started.elapsed();
    let mut summary = sei_sim::fuzz::summary::Summary::of(config, &report, wall);
    let progress = report.progress;
    let per_core = if report.jobs > 1 {
        format!(" on {} threads, {:.2} per core", report.jobs, summary.cases_per_core_second)
    } else {
        String::new()
    };
    println!(
        "{} cases in {:.1}s wall ({:.2} cases/s{per_core}), {:.1} simulated hours explored, {} invariant checks",
        progress.cases,
        wall.as_secs_f64(),
        summary.cases_per_second,
        progress.simulated.as_secs_f64() / 3600.0,
        progress.invariant_checks
    );
    let mut unwritten = 0;
    if report.failures.is_empty() {
        println!("no failure found");
    }
    for (failure, reported) in report.failures.iter().zip(&mut summary.failures) {
        println!(
            "FAILED at case {} ({} cases judged, {} shrinking attempts): {}",
            failure.case_index, progress.cases, progress.shrink_steps, failure.case
        );
        println!("{}", failure.reason);
        let out = destination(failure);
        match std::fs::write(&out, &failure.scenario_yaml) {
            Ok(()) => {
                println!("minimal case written to {}; replay: sei-sim run {}", out.display(), out.display());
                reported.scenario_file = Some(out);
            }
            Err(e) => {
                eprintln!("sei-sim fuzz: cannot write {}: {e}", out.display());
                println!("{}", failure.scenario_yaml);
                unwritten += 1;
            }
        }
    }
    if let Some(path) = summary_path {
        match summary.write(path) {
            Ok(()) => println!("summary written to {}", path.display()),
            Err(e) => {
                eprintln!("sei-sim fuzz: cannot write the summary: {e}");
                unwritten += 1;
            }
        }
    }
    if unwritten > 0 {
        ExitCode::from(ERROR)
    } else if report.failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(FOUND_FAILURES)
    }
}

/// Summary files named on the command line: files as given, directories' `*.json` in name order but `out`.
fn summary_files(paths: &[PathBuf], out: Option<&Path>) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| format!("{}: {e}", path.display()))?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "json"))
                .filter(|p| out.is_none_or(|out| !same_file(p, out)))
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    if files.is_empty() {
        return Err("no summary files found".into());
    }
    Ok(files)
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// `sei-sim fuzz-merge`: one campaign's report from its shards' summaries.
fn fuzz_merge(paths: &[PathBuf], out: Option<&Path>, print_scenarios: bool) -> ExitCode {
    use sei_sim::fuzz::summary::{self, Summary};
    let files = match summary_files(paths, out) {
        Ok(files) => files,
        Err(e) => {
            eprintln!("sei-sim fuzz-merge: {e}");
            return ExitCode::from(ERROR);
        }
    };
    let mut summaries = Vec::new();
    for file in &files {
        match Summary::read(file) {
            Ok(summary) => summaries.push((file.display().to_string(), summary)),
            Err(e) => {
                eprintln!("sei-sim fuzz-merge: {e}");
                return ExitCode::from(ERROR);
            }
        }
    }
    let merged = match summary::merge(&summaries) {
        Ok(merged) => merged,
        Err(e) => {
            eprintln!("sei-sim fuzz-merge: {e}");
            return ExitCode::from(ERROR);
        }
    };
    let campaign = &merged.campaign;
    println!(
        "campaign: {} cases from seed {} (replicas 1..={}, up to {} operations{}), {} shard(s)",
        campaign.cases,
        campaign.seed,
        campaign.max_replicas,
        campaign.max_ops,
        if campaign.keep_going { ", every case judged" } else { ", each shard stopping at its first failure" },
        campaign.shard_count
    );
    let missing = merged.missing_shards();
    let shards: Vec<String> = merged.shards.iter().map(u32::to_string).collect();
    println!("shards merged: {} from {} file(s)", shards.join(", "), files.len());
    if !missing.is_empty() {
        let missing: Vec<String> = missing.iter().map(u32::to_string).collect();
        println!("MISSING shards: {}", missing.join(", "));
    }
    println!(
        "{} cases, {:.1} simulated hours, {} invariant checks, {} shrinking attempts; {:.1} core-seconds \
         ({:.2} cases/s per core)",
        merged.cases_judged,
        merged.simulated_hours,
        merged.invariant_checks,
        merged.shrink_attempts,
        merged.core_seconds,
        merged.cases_per_second
    );
    if merged.failures.is_empty() {
        println!("no failure found");
    }
    for failure in &merged.failures {
        let file = failure.scenario_file.as_ref().map_or("not written".to_owned(), |f| f.display().to_string());
        let reason = failure.reason.lines().next().unwrap_or_default();
        println!("FAILED case {}: {}", failure.case_index, failure.minimal_case);
        println!("  {reason}\n  scenario file: {file}");
    }
    if print_scenarios {
        for failure in &merged.failures {
            println!("--- case {} ---\n{}", failure.case_index, failure.scenario);
        }
    }
    if let Some(out) = out {
        match merged.write(out) {
            Ok(()) => println!("merged summary written to {}", out.display()),
            Err(e) => {
                eprintln!("sei-sim fuzz-merge: cannot write the merged summary: {e}");
                return ExitCode::from(ERROR);
            }
        }
    }
    if merged.failures.is_empty() && missing.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(FOUND_FAILURES) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fleet_is_the_most_replicas_a_file_asks_for() {
        let scratch = tempfile::Builder::new().prefix("sei-sim-fleet-size-").tempdir().expect("a temporary directory");
        let dir = scratch.path();
        let file = dir.join("scenario.yaml");
        let text =
            "world: {operatorReplicas: 7}\nspec:\n  replicas: 16\n---\n{spec: {replicas: 100}}\nmaxReplicas: 900\n";
        std::fs::write(&file, text).expect("written");
        assert_eq!(fleet_size(&file), 100, "operatorReplicas and maxReplicas are other keys");
        std::fs::write(&file, "name: none\n").expect("written");
        assert_eq!(fleet_size(&file), 0);
        assert_eq!(fleet_size(&dir.join("missing.yaml")), 0);
    }
}
