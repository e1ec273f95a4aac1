//! Fault injection while `sei-sim serve` runs: one command per line, from stdin or `POST /sim/control`. The
//! server's own faults (conflicts, 503s, expired watches, partitioned workers) act at once; the world's (pods,
//! workers, images) run on the stepping thread between two steps.

use std::time::Duration;

use crate::World;
use crate::node::registry::Binary;
use crate::serve::{Server, WorldCommand};

/// What `help` prints.
pub const HELP: &str = "commands:
  crash-pod NS/POD          every container of the pod restarts (the sidecar forgets its tasks)
  delete-pod NS/POD         delete the pod through the API, as a drain does
  restart-sidecar NS/POD    restart only the pod's sidecar container
  crash-worker N            worker-N goes down with its pods' processes
  restart-worker N          worker-N boots again
  partition-worker N        the operator can no longer reach the pods on worker-N (sidecar and RPC ports)
  heal-worker N             undo partition-worker
  push-image IMAGE VERSION  the registry gains IMAGE carrying seid VERSION (e.g. sei:v6.5.0 v6.5.0)
  conflicts N               the next N updates and patches are refused with 409 Conflict
  unavailable N             the next N API requests are refused with 503
  expire-watches            every open watch ends with 410 Gone, and none may resume from before now
  status                    simulated time, store version, pods";

/// A command parsed: done by the server at once, or to run on the world.
enum Parsed {
    Answer(String),
    OnWorld(Box<dyn FnOnce(&mut World) -> String + Send>),
}

fn pod_of(argument: Option<&str>) -> Result<(String, String), String> {
    let text = argument.ok_or("expected NS/POD")?;
    let (namespace, pod) = text.split_once('/').ok_or_else(|| format!("{text:?}: expected NS/POD"))?;
    Ok((namespace.to_owned(), pod.to_owned()))
}

fn number<T: std::str::FromStr>(argument: Option<&str>) -> Result<T, String> {
    let text = argument.ok_or("expected a number")?;
    text.parse().map_err(|_| format!("{text:?} is not a number"))
}

fn parse(server: &Server, line: &str) -> Result<Parsed, String> {
    let mut words = line.split_whitespace();
    let Some(command) = words.next() else { return Ok(Parsed::Answer(String::new())) };
    let argument = words.next();
    let answer = |text: String| Ok(Parsed::Answer(text));
    let on_world = |run: Box<dyn FnOnce(&mut World) -> String + Send>| Ok(Parsed::OnWorld(run));
    match command {
        "help" => answer(HELP.to_owned()),
        "conflicts" => {
            let n: u32 = number(argument)?;
            server.faults().conflicts += n;
            answer(format!("the next {n} updates and patches get 409 Conflict"))
        }
        "unavailable" => {
            let n: u32 = number(argument)?;
            server.faults().unavailable += n;
            answer(format!("the next {n} API requests get 503"))
        }
        "expire-watches" => {
            let version = crate::harness::state::lock(&server.shared).api.store.version();
            let mut faults = server.faults();
            faults.compacted_below = version;
            faults.expiry += 1;
            drop(faults);
            // Wakes every watch, so each notices at once.
            server.versions.send_modify(|_| {});
            answer(format!("watches expired; none may resume from before resourceVersion {version}"))
        }
        "partition-worker" | "heal-worker" => {
            let worker: usize = number(argument)?;
            let mut faults = server.faults();
            if command == "partition-worker" {
                faults.partitioned.insert(worker);
                answer(format!("pods on worker-{worker} are unreachable from the operator"))
            } else {
                faults.partitioned.remove(&worker);
                answer(format!("pods on worker-{worker} are reachable again"))
            }
        }
        "crash-pod" | "delete-pod" | "restart-sidecar" => {
            let (namespace, pod) = pod_of(argument)?;
            let command = command.to_owned();
            on_world(Box::new(move |world| {
                match command.as_str() {
                    "crash-pod" => world.crash_pod(&namespace, &pod),
                    "delete-pod" => world.delete_pod(&namespace, &pod),
                    _ => world.restart_sidecar(&namespace, &pod),
                }
                format!("{command} {namespace}/{pod}: done")
            }))
        }
        "crash-worker" | "restart-worker" => {
            let worker: usize = number(argument)?;
            let crash = command == "crash-worker";
            on_world(Box::new(move |world| {
                if crash {
                    world.crash_worker(worker);
                    format!("worker-{worker} crashed")
                } else {
                    world.restart_worker(worker);
                    format!("worker-{worker} restarted")
                }
            }))
        }
        "push-image" => {
            let image = argument.ok_or("expected IMAGE VERSION")?.to_owned();
            let version = words.next().ok_or("expected IMAGE VERSION")?.to_owned();
            on_world(Box::new(move |world| {
                world.push_image(&image, Binary::new(&version));
                format!("{image} ({version}) pushed")
            }))
        }
        "status" => on_world(Box::new(|world| {
            world.inspect(|state| {
                format!(
                    "simulated {:?}, store resourceVersion {}, {} pods, workers up: {}",
                    Duration::from_secs(state.now.as_secs()),
                    state.api.store.version(),
                    state.plane.pods.len(),
                    state.plane.workers.iter().filter(|w| w.up).count()
                )
            })
        })),
        other => Err(format!("unknown command {other:?}; try help")),
    }
}

/// Hands `run` to the stepping thread; the receiver gets its answer.
fn send(server: &Server, run: Box<dyn FnOnce(&mut World) -> String + Send>) -> tokio::sync::oneshot::Receiver<String> {
    let (reply, answer) = tokio::sync::oneshot::channel();
    let commands = server.commands.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    // A send error means the stepping thread has gone; the dropped reply then answers for it.
    let _ = commands.send(WorldCommand { run, reply });
    answer
}

const STOPPED: &str = "error: the simulation has stopped";

/// Runs one command line from an async context.
pub async fn execute(server: &Server, line: &str) -> String {
    match parse(server, line) {
        Ok(Parsed::Answer(text)) => text,
        Ok(Parsed::OnWorld(run)) => send(server, run).await.unwrap_or_else(|_| STOPPED.to_owned()),
        Err(message) => format!("error: {message}"),
    }
}

/// Runs one command line from a plain thread (stdin, tests).
pub fn execute_blocking(server: &Server, line: &str) -> String {
    match parse(server, line) {
        Ok(Parsed::Answer(text)) => text,
        Ok(Parsed::OnWorld(run)) => send(server, run).blocking_recv().unwrap_or_else(|_| STOPPED.to_owned()),
        Err(message) => format!("error: {message}"),
    }
}
