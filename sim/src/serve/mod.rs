//! `sei-sim serve`: the simulated cluster in real time, its API served on loopback over the Kubernetes wire
//! protocol, so the production `sei-operator run` binary and `kubectl` can use it.
//!
//! Two threads: one steps the [`World`] (store, control plane, kubelets, chain, sidecars), pacing simulated time
//! to the wall clock times `speed`; one runs a tokio runtime with the HTTP server, which locks the shared world
//! per request (never across an await). The server answers:
//! - the Kubernetes API ([`http`]): discovery, get / list / create / update / patch / delete, status
//!   subresources, label and field selectors, `watch=true` streams ([`watch`]) with bookmarks and 410 Gone;
//! - the pods' sidecar and seid RPC ports under `/sim/pods/<pod-host>/<port>/...` ([`pods`]), which
//!   `sei-operator run --sidecar-proxy` points its sidecar client at;
//! - fault injection while it runs: `POST /sim/control` with a command line, or the same on stdin ([`control`]).
//!
//! The wall clock is read here only (pacing, the epoch of object timestamps): the rest of the simulator stays
//! deterministic. What the served API does not implement is listed in `docs/reality.md`.

pub mod control;
pub mod http;
pub mod pods;
pub mod resources;
pub mod selector;
pub mod watch;

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sei_operator_core::clock::Timestamp;

use crate::World;
use crate::harness::state::SharedWorld;
use crate::node::chain::Chain;
use crate::node::registry::{Binary, ImageRegistry};

/// How `sei-sim serve` runs.
#[derive(Clone, Debug)]
pub struct ServeConfig {
    /// Loopback port of the API (0: one the OS picks).
    pub port: u16,
    /// Worker nodes.
    pub workers: usize,
    pub seed: u64,
    /// Simulated seconds per wall second.
    pub speed: f64,
    /// Where the kubeconfig is written.
    pub kubeconfig: PathBuf,
    /// How many resourceVersions back a watch may resume from before it gets 410 Gone.
    pub watch_window: u64,
}

impl ServeConfig {
    pub fn new(kubeconfig: PathBuf) -> Self {
        ServeConfig { port: 0, workers: 3, seed: 1, speed: 1.0, kubeconfig, watch_window: 10_000 }
    }
}

/// Why serving could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("building the simulated world: {0}")]
    World(String),
    #[error("listening on 127.0.0.1:{port}: {reason}")]
    Listen { port: u16, reason: String },
    #[error("writing the kubeconfig {path}: {reason}")]
    Kubeconfig { path: PathBuf, reason: String },
    #[error("starting a thread: {0}")]
    Thread(String),
    #[error("the simulation thread has stopped")]
    Stopped,
}

/// The faults the server itself injects (the world's own go through [`control`] to the stepping thread).
#[derive(Debug, Default)]
pub struct ServerFaults {
    /// Writes still to be refused with 409 Conflict.
    pub conflicts: u32,
    /// Requests still to be refused with 503.
    pub unavailable: u32,
    /// Workers whose pods the operator cannot reach (their sidecar and RPC ports).
    pub partitioned: BTreeSet<usize>,
    /// Watches may not resume from a resourceVersion below this (set by `expire-watches`).
    pub compacted_below: u64,
    /// Bumped by `expire-watches`: every open watch ends with 410 Gone.
    pub expiry: u64,
}

/// A command for the stepping thread, and where its one-line answer goes.
pub struct WorldCommand {
    pub run: Box<dyn FnOnce(&mut World) -> String + Send>,
    pub reply: tokio::sync::oneshot::Sender<String>,
}

/// What the HTTP handlers share.
pub struct Server {
    pub shared: SharedWorld,
    pub faults: Mutex<ServerFaults>,
    /// The store's resourceVersion after the latest step or write: wakes the watches.
    pub versions: tokio::sync::watch::Sender<u64>,
    pub commands: Mutex<mpsc::Sender<WorldCommand>>,
    pub addr: SocketAddr,
    pub watch_window: u64,
}

impl Server {
    /// The server's own faults, under their lock (poisoning is survived: the state is plain counters).
    pub fn faults(&self) -> MutexGuard<'_, ServerFaults> {
        self.faults.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Tells the watches the store moved.
    pub fn store_changed(&self, version: u64) {
        self.versions.send_if_modified(|seen| {
            let moved = *seen != version;
            *seen = version;
            moved
        });
    }
}

/// A running serve: stops on [`ServeHandle::stop`] or drop.
pub struct ServeHandle {
    pub addr: SocketAddr,
    pub kubeconfig: PathBuf,
    server: Arc<Server>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl ServeHandle {
    /// The API's base URL (`http://127.0.0.1:PORT`).
    pub fn api_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// What `sei-operator run --sidecar-proxy` takes: pods' ports are reached under it.
    pub fn sidecar_proxy_url(&self) -> String {
        format!("http://{}{}", self.addr, pods::PREFIX)
    }

    /// The world's shared state (tests read it directly).
    pub fn shared(&self) -> SharedWorld {
        self.server.shared.clone()
    }

    /// Runs one fault command (see [`control`]) and returns its answer.
    pub fn command(&self, line: &str) -> String {
        control::execute_blocking(&self.server, line)
    }

    /// Stops both threads and waits for them.
    pub fn stop(mut self) {
        self.shut_down();
    }

    fn shut_down(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the server's accept loop and every watch.
        self.server.versions.send_modify(|_| {});
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

impl Drop for ServeHandle {
    fn drop(&mut self) {
        self.shut_down();
    }
}

/// The images of `fixtures/` and the README, pullable; sidecar images carry no seid version.
fn registry() -> ImageRegistry {
    let mut registry = ImageRegistry::default();
    for prefix in ["", "ghcr.io/sei-protocol/"] {
        for version in ["v6.3.0", "v6.3.1", "v6.4.0"] {
            registry = registry.with(&format!("{prefix}sei:{version}"), Binary::new(version));
        }
        let sidecar = format!("{prefix}seictl:v0.9.0");
        registry = registry.with(&sidecar, Binary::new(&sidecar));
    }
    registry
}

/// Starts serving: builds the world on its stepping thread, binds the API, writes the kubeconfig.
pub fn start(config: ServeConfig) -> Result<ServeHandle, ServeError> {
    let stop = Arc::new(AtomicBool::new(false));
    let (commands_tx, commands_rx) = mpsc::channel::<WorldCommand>();
    let (versions, _) = tokio::sync::watch::channel(0u64);
    let (built_tx, built_rx) = mpsc::channel::<Result<SharedWorld, String>>();
    let stepping = {
        let (stop, config, versions) = (stop.clone(), config.clone(), versions.clone());
        std::thread::Builder::new()
            .name("sim-world".into())
            .spawn(move || step_in_real_time(&config, &stop, &commands_rx, &versions, &built_tx))
            .map_err(|e| ServeError::Thread(e.to_string()))?
    };
    let shared = built_rx.recv().map_err(|_| ServeError::Stopped)?.map_err(ServeError::World)?;

    let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, config.port))
        .map_err(|e| ServeError::Listen { port: config.port, reason: e.to_string() })?;
    let addr = listener.local_addr().map_err(|e| ServeError::Listen { port: config.port, reason: e.to_string() })?;
    listener.set_nonblocking(true).map_err(|e| ServeError::Listen { port: config.port, reason: e.to_string() })?;
    let server = Arc::new(Server {
        shared,
        faults: Mutex::new(ServerFaults::default()),
        versions,
        commands: Mutex::new(commands_tx),
        addr,
        watch_window: config.watch_window,
    });
    write_kubeconfig(&config.kubeconfig, addr)?;
    let serving = {
        let (server, stop) = (server.clone(), stop.clone());
        std::thread::Builder::new()
            .name("sim-api".into())
            .spawn(move || http::serve_until_stopped(listener, server, stop))
            .map_err(|e| ServeError::Thread(e.to_string()))?
    };
    Ok(ServeHandle { addr, kubeconfig: config.kubeconfig.clone(), server, stop, threads: vec![stepping, serving] })
}

/// The stepping thread: builds the world, then steps it so that simulated time keeps up with the wall clock
/// times `speed`, running commands between steps. An invariant violation is reported once per invariant and
/// does not stop the world (the real operator's writes are not the simulated operator's, and a person at a
/// playground wants to see what happens next).
fn step_in_real_time(
    config: &ServeConfig,
    stop: &AtomicBool,
    commands: &mpsc::Receiver<WorldCommand>,
    versions: &tokio::sync::watch::Sender<u64>,
    built: &mpsc::Sender<Result<SharedWorld, String>>,
) {
    let chain = Chain::new("pacific-1", 1000).with_block_time(Duration::from_secs(1));
    let world = World::builder(config.seed)
        .workers(config.workers.max(1))
        .chain(chain)
        .registry(registry())
        // Object timestamps from now on, so kubectl's ages read right.
        .epoch(Timestamp::now())
        // History kept for watches resuming from a past resourceVersion (and their DELETED events' last state).
        .max_read_lag(config.watch_window)
        .build();
    let mut world = match world {
        Ok(world) => world,
        Err(error) => {
            let _ = built.send(Err(error.to_string()));
            return;
        }
    };
    if built.send(Ok(world.shared())).is_err() {
        return;
    }
    let speed = if config.speed.is_finite() && config.speed > 0.0 { config.speed } else { 1.0 };
    let started = Instant::now();
    let mut reported = BTreeSet::new();
    while !stop.load(Ordering::SeqCst) {
        while let Ok(command) = commands.try_recv() {
            let answer = (command.run)(&mut world);
            let _ = command.reply.send(answer);
        }
        let target = started.elapsed().mul_f64(speed);
        // Bounded, so commands are not starved when the simulation falls behind.
        let slice_end = Instant::now() + Duration::from_millis(200);
        while world.now() < target && Instant::now() < slice_end {
            if let Err(error) = world.step() {
                report_once(&error, &mut reported);
            }
        }
        let version = world.inspect(|state| state.api.store.version());
        versions.send_if_modified(|seen| std::mem::replace(seen, version) != version);
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn report_once(error: &crate::SimError, reported: &mut BTreeSet<String>) {
    let text = error.to_string();
    let first = text.lines().next().unwrap_or_default();
    let key = match error {
        crate::SimError::Invariant { violation, .. } => violation.invariant.to_string(),
        _ => first.to_owned(),
    };
    if reported.insert(key) {
        eprintln!("sei-sim serve: {first}");
    }
}

/// Writes a kubeconfig for the API at `addr`: one cluster, one user without credentials, context namespace
/// `default`.
pub fn write_kubeconfig(path: &Path, addr: SocketAddr) -> Result<(), ServeError> {
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: sei-sim\n  cluster:\n    server: http://{addr}\n\
         users:\n- name: sei-sim\n  user: {{}}\ncontexts:\n- name: sei-sim\n  context:\n    cluster: sei-sim\n    \
         user: sei-sim\n    namespace: default\ncurrent-context: sei-sim\n"
    );
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| ServeError::Kubeconfig { path: path.to_owned(), reason: e.to_string() })?;
    }
    std::fs::write(path, text).map_err(|e| ServeError::Kubeconfig { path: path.to_owned(), reason: e.to_string() })
}
