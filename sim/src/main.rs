//! `sei-sim`: the simulator's command line. Today: `sei-sim bench [pods...]` times one simulated hour of a fleet
//! (default 3, 16 and 100 pods) and prints wall seconds per simulated hour; `sei-sim trace [pods] [seconds]`
//! prints the trace of that fleet. Build it in release mode:
//! `cargo run --release -p sei-sim -- bench`.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use sei_sim::bench::{fleet, ready_pods, workers_for};

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
        Some("trace") => {
            let number = |i: usize, default: u64| args.get(i).and_then(|a| a.parse::<u64>().ok()).unwrap_or(default);
            trace(usize::try_from(number(1, 3)).unwrap_or(3), Duration::from_secs(number(2, 60)))
        }
        _ => {
            eprintln!("usage: sei-sim bench [pods...]            wall seconds per simulated hour of a fleet");
            eprintln!("       sei-sim trace [pods] [seconds]     the trace of the benchmark fleet");
            ExitCode::FAILURE
        }
    }
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
