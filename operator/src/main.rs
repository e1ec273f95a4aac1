//! `sei-operator`: the operator's command line.
//!
//! - `crds` prints the CustomResourceDefinitions (or writes them into a directory, as kept in `crds/`).
//! - `validate` admits manifests as the API server would, without a cluster.
//! - `run` runs the operator against a cluster (see [`sei_operator::backend::run`]).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use sei_operator::backend::run::{RunArgs, run};
use sei_operator::crd::crd_files;
use sei_operator::manifest::{Manifest, ManifestValidator};

#[derive(Parser)]
#[command(name = "sei-operator", version, about = "Kubernetes operator for fleets of Sei nodes")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the CustomResourceDefinitions as YAML, or write one file per CRD into a directory.
    Crds {
        /// Directory to write `seinodes.yaml` and `seinodedeployments.yaml` into.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// Check SeiNode / SeiNodeDeployment manifests against the CRDs' schema and CEL rules.
    Validate {
        /// YAML files, each holding one or more documents.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Run the operator: watch SeiNodeDeployments and SeiNodes and reconcile them, with leader election, metrics
    /// and health endpoints.
    Run(Box<RunArgs>),
    /// Print a completion script for a shell to standard output (e.g. `sei-operator completions zsh >
    /// ~/.zfunc/_sei-operator`).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// Prints the completion script for `shell`; a closed standard output is an error, not a panic.
fn completions(shell: clap_complete::Shell) -> Result<(), String> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "sei-operator", &mut script);
    std::io::Write::write_all(&mut std::io::stdout().lock(), &script)
        .map_err(|error| format!("writing the completion script: {error}"))
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Crds { out } => write_crds(out.as_deref()),
        Command::Validate { files } => validate(&files),
        Command::Run(args) => run_operator(*args),
        Command::Completions { shell } => completions(shell),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the operator on a multi-threaded runtime; any failure becomes the one-line reason `main` prints.
fn run_operator(args: RunArgs) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting the async runtime: {e}"))?;
    let outcome = runtime.block_on(run(args)).map_err(|e| e.to_string());
    // Tasks still parked (a watcher in its back-off, an HTTP connection) must not hold the exit up.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    outcome
}

fn write_crds(out: Option<&Path>) -> Result<(), String> {
    let mut printed = Vec::new();
    for file in crd_files() {
        let yaml = file.render().map_err(|e| e.to_string())?;
        match out {
            Some(dir) => {
                let path = dir.join(file.file_name);
                std::fs::write(&path, yaml).map_err(|e| format!("writing {}: {e}", path.display()))?;
            }
            None => printed.push(yaml),
        }
    }
    if !printed.is_empty() {
        print!("{}", printed.join("---\n"));
    }
    Ok(())
}

/// Admits every file, printing one line per object admitted and every file's reasons for refusal; an error when
/// any file is unreadable, invalid, or holds no object at all (an empty file, or only comments and `---`, is a
/// mistake — a wrong path, a truncated template — not a manifest with nothing in it to check).
fn validate(files: &[PathBuf]) -> Result<(), String> {
    let validator = ManifestValidator::new().map_err(|e| e.to_string())?;
    let mut failures = 0;
    for path in files {
        let outcome = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot be read: {}", io_reason(&e)))
            .and_then(|text| validator.admit_yaml(&text).map_err(|e| e.to_string()))
            .and_then(|manifests| {
                if manifests.is_empty() {
                    Err("no SeiNode or SeiNodeDeployment in it (the file is empty or holds only comments)".to_owned())
                } else {
                    Ok(manifests)
                }
            });
        match outcome {
            Ok(manifests) => {
                for manifest in manifests {
                    let (kind, name) = match &manifest {
                        Manifest::SeiNode(n) => ("SeiNode", n.metadata.name.clone()),
                        Manifest::SeiNodeDeployment(d) => ("SeiNodeDeployment", d.metadata.name.clone()),
                    };
                    println!("{}: {kind} {} is valid", path.display(), name.unwrap_or_default());
                }
            }
            Err(message) => {
                failures += 1;
                println!("{}: {message}", path.display());
            }
        }
    }
    match failures {
        0 => Ok(()),
        n => Err(format!("{n} of {} files invalid", files.len())),
    }
}

/// An I/O error's reason without the OS's numeric suffix (`No such file or directory (os error 2)`).
fn io_reason(error: &std::io::Error) -> String {
    let text = error.to_string();
    match text.rfind(" (os error ") {
        Some(at) if text.ends_with(')') => text[..at].to_owned(),
        _ => text,
    }
}
