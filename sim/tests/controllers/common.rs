//! Shared set-up: a chain with one upgrade, the images of its binaries, the fixtures, and the operator.

use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::core::v1::Service;
use sei_operator::api::{DeploymentPhase, PlanPhase, SeiNode, SeiNodeDeployment};
use sei_operator::cluster::Event;
use sei_operator::manifest::{Manifest, ManifestValidator};
use sei_operator::meta::find_condition;
use sei_sim::World;
use sei_sim::chain::Chain;
use sei_sim::controllers::SeiOperator;
use sei_sim::registry::{Binary, ImageRegistry};

pub const NS: &str = "sei";
pub const OLD: &str = "sei:v6.3.0";
/// A patch release: processes the same blocks as OLD.
pub const PATCH: &str = "sei:v6.3.1";
/// A second patch release: also processes the same blocks as OLD (for a rollout superseded by another).
pub const PATCH2: &str = "sei:v6.3.2";
/// An image the registry does not have.
pub const UNPULLABLE: &str = "sei:v9.9.9";
/// The upgrade's binary: refuses blocks below the upgrade height.
pub const NEW: &str = "sei:v6.4.0";
/// The chain's upgrade `v6.4.0`.
pub const UPGRADE_HEIGHT: u64 = 5_000;

pub fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

pub fn mins(m: u64) -> Duration {
    Duration::from_secs(60 * m)
}

/// `pacific-1`: 1 s blocks from height 1000, upgrade v6.4.0 at 5000; the external validators switch at
/// `switch_at` (never when `None`: the tip stalls at 4999).
pub fn chain(switch_at: Option<Duration>) -> Chain {
    chain_from(1_000, switch_at)
}

/// The same chain, starting at `initial_height`.
pub fn chain_from(initial_height: u64, switch_at: Option<Duration>) -> Chain {
    Chain::new("pacific-1", initial_height).with_block_time(secs(1)).with_upgrade("v6.4.0", UPGRADE_HEIGHT, switch_at)
}

pub fn registry() -> ImageRegistry {
    ImageRegistry::default()
        .with(OLD, Binary::new("v6.3.0"))
        .with(PATCH, Binary::new("v6.3.1"))
        .with(PATCH2, Binary::new("v6.3.2"))
        .with(UNPULLABLE, Binary::new("v9.9.9").unpullable())
        .with(NEW, Binary::new("v6.4.0").knowing("v6.4.0"))
        .with("sei:v6.4.1", Binary::new("v6.4.1").knowing("v6.4.0"))
        .with("seictl:v0.9.0", Binary::new("seictl"))
        .with("seictl:latest", Binary::new("seictl"))
}

/// A world with the operator started.
pub fn world(seed: u64, chain: Chain) -> World {
    world_with(World::builder(seed).chain(chain))
}

/// A world whose API server skips CRD validation, as for objects stored before a rule existed or written past
/// a broken webhook: the operator must cope with whatever it reads.
pub fn world_without_admission(seed: u64, chain: Chain) -> World {
    world_with(World::builder(seed).chain(chain).admission(false))
}

fn world_with(builder: sei_sim::WorldBuilder) -> World {
    let mut world = builder.workers(2).registry(registry()).build().expect("world builds");
    world.start_operator(SeiOperator::default);
    world
}

/// The objects of `fixtures/<name>.yaml`, admitted.
pub fn fixture(name: &str) -> Vec<Manifest> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures").join(format!("{name}.yaml"));
    let text = std::fs::read_to_string(&path).expect("fixture readable");
    ManifestValidator::new().expect("schemas").admit_yaml(&text).expect("valid fixture")
}

pub fn apply_fixture(world: &World, name: &str) {
    for manifest in fixture(name) {
        match manifest {
            Manifest::SeiNode(node) => world.create(&*node).map(|_| ()),
            Manifest::SeiNodeDeployment(deployment) => world.create(&*deployment).map(|_| ()),
        }
        .expect("created");
    }
}

pub fn deployment(world: &World, name: &str) -> SeiNodeDeployment {
    world.get::<SeiNodeDeployment>(NS, name).expect("deployment exists")
}

pub fn phase(world: &World, name: &str) -> Option<DeploymentPhase> {
    world.get::<SeiNodeDeployment>(NS, name).ok()?.status?.phase
}

pub fn node(world: &World, name: &str) -> Option<SeiNode> {
    world.get::<SeiNode>(NS, name).ok()
}

/// The `status.currentImage` of each node.
pub fn current_images(world: &World, names: &[&str]) -> Vec<Option<String>> {
    names.iter().map(|n| node(world, n).and_then(|n| n.status?.current_image)).collect()
}

/// Sets the deployment's template image (a user's edit).
pub fn set_image(world: &World, deployment_name: &str, image: &str) {
    world
        .edit::<SeiNodeDeployment>(NS, deployment_name, |d| d.spec.template.spec.image = image.into())
        .expect("edited");
}

/// Whether the deployment's RolloutInProgress condition has this (status, reason).
pub fn rollout_is(world: &World, deployment_name: &str, status: &str, reason: &str) -> bool {
    condition(world, deployment_name, "RolloutInProgress") == Some((status.into(), reason.into()))
}

/// (status, reason) of a deployment condition.
pub fn condition(world: &World, deployment_name: &str, type_: &str) -> Option<(String, String)> {
    let status = deployment(world, deployment_name).status?;
    find_condition(&status.conditions, type_).map(|c| (c.status.clone(), c.reason.clone()))
}

/// The message of a deployment condition.
pub fn condition_message(world: &World, deployment_name: &str, type_: &str) -> String {
    let status = deployment(world, deployment_name).status.unwrap_or_default();
    find_condition(&status.conditions, type_).map(|c| c.message.clone()).unwrap_or_default()
}

/// Reasons of the events emitted about an object, in order.
pub fn event_reasons(world: &World, name: &str) -> Vec<String> {
    world
        .inspect(|s| s.events.iter().filter(|(_, e)| e.regarding.name == name).map(|(_, e)| e.reason.clone()).collect())
}

/// The deployment of `fixtures/<name>.yaml`, to adjust before creating it.
pub fn fixture_deployment(name: &str) -> SeiNodeDeployment {
    fixture(name)
        .into_iter()
        .find_map(|m| match m {
            Manifest::SeiNodeDeployment(d) => Some(*d),
            Manifest::SeiNode(_) => None,
        })
        .expect("the fixture holds a SeiNodeDeployment")
}

/// The events emitted about an object with this reason.
pub fn events(world: &World, name: &str, reason: &str) -> Vec<Event> {
    world.inspect(|s| {
        s.events
            .iter()
            .filter(|(_, e)| e.regarding.name == name && e.reason == reason)
            .map(|(_, e)| e.clone())
            .collect()
    })
}

/// Runs until the deployment is Ready with every node Running its template image.
pub fn until_ready(world: &mut World, name: &str, within: Duration) {
    run_until(world, &format!("{name} Ready"), within, |w| phase(w, name) == Some(DeploymentPhase::Ready));
}

pub fn run_until(world: &mut World, what: &str, within: Duration, done: impl FnMut(&World) -> bool) {
    if let Err(error) = world.run_until(what, within, done) {
        // For debugging: SIM_TRACE_FILE=/tmp/trace.txt keeps the whole trace of a failed run.
        if let Some(path) = std::env::var_os("SIM_TRACE_FILE") {
            let _ = std::fs::write(path, world.trace().text());
        }
        panic!("{error}\n--- trace tail ---\n{}\n--- deployments ---\n{}", world.trace().tail(60), dump(world));
    }
}

/// Every deployment and node as YAML-ish JSON, for failure messages.
pub fn dump(world: &World) -> String {
    let deployments: Vec<SeiNodeDeployment> = world.list(NS, &Default::default()).unwrap_or_default();
    let nodes: Vec<SeiNode> = world.list(NS, &Default::default()).unwrap_or_default();
    let mut out = String::new();
    for d in deployments {
        out += &format!("{}\n", serde_json::to_string_pretty(&d.status).unwrap_or_default());
    }
    for n in nodes {
        out += &format!(
            "{} spec.image={} status={}\n",
            n.metadata.name.unwrap_or_default(),
            n.spec.image,
            serde_json::to_string(&n.status.map(|s| (
                s.phase,
                s.current_image,
                s.sidecar_ready,
                s.latest_height,
                s.catching_up
            )))
            .unwrap_or_default()
        );
    }
    out
}

/// The revision the deployment's Service selects (`sei.io/revision`), if the Service exists.
pub fn service_revision(world: &World, deployment_name: &str) -> Option<String> {
    let service = world.get::<Service>(NS, deployment_name).ok()?;
    service.spec?.selector?.get("sei.io/revision").cloned()
}

/// Names of the live (not deleting) SeiNodes in the namespace, sorted.
pub fn live_node_names(world: &World) -> Vec<String> {
    let nodes: Vec<SeiNode> = world.list(NS, &Default::default()).unwrap_or_default();
    let mut names: Vec<String> =
        nodes.into_iter().filter(|n| n.metadata.deletion_timestamp.is_none()).filter_map(|n| n.metadata.name).collect();
    names.sort();
    names
}

/// The type of the first task of the deployment's active plan that is not Complete.
pub fn current_task(world: &World, deployment_name: &str) -> Option<String> {
    let plan = deployment(world, deployment_name).status?.plan?;
    if plan.phase != PlanPhase::Active {
        return None;
    }
    plan.tasks.into_iter().find(|t| t.status != sei_operator::api::TaskStatus::Complete).map(|t| t.type_)
}

/// `prefix-0 .. prefix-(n-1)`.
pub fn names(prefix: &str, n: u32) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

/// The repository root (scenario files name fixtures relative to it).
pub fn repo_root() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Replays `scenarios/<file>` (its own seed, or `seed`) and panics with the failure, the seed and the trace tail.
pub fn replay(file: &str, seed: Option<u64>) {
    let path = repo_root().join("scenarios").join(file);
    let scenario = sei_sim::scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let outcome = sei_sim::scenario::run(&scenario, seed, &repo_root());
    if let Some(failure) = &outcome.failure {
        if let Some(trace_file) = std::env::var_os("SIM_TRACE_FILE") {
            let _ = std::fs::write(trace_file, outcome.trace.text());
        }
        panic!(
            "{file} (seed {}): {failure}\n--- trace tail ---\n{}\nreplay: cargo run -p sei-sim -- run scenarios/{file} --seed {}",
            outcome.seed,
            outcome.trace.tail(40),
            outcome.seed
        );
    }
    assert!(outcome.invariant_checks > 0, "{file}: invariants were never checked");
}

/// One named test per scenario file, and `FILES`, the files this module replays (so a test can prove every file
/// under `scenarios/` is replayed by some named test).
#[macro_export]
macro_rules! scenario_tests {
    ($($test:ident => $file:literal),* $(,)?) => {
        #[allow(dead_code)]
        pub const FILES: &[&str] = &[$($file),*];
        $(
            #[test]
            fn $test() {
                $crate::common::replay($file, None);
            }
        )*
    };
}
