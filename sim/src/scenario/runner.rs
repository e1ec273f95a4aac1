//! Replays a scenario on a fresh world with the operator's real reconcilers: builds the world it describes,
//! runs its timeline step by step, and checks its expectations — with every invariant checked after every
//! simulated step. Nothing here reads wall time; the command line measures that.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Service;
use sei_operator_core::api::{SeiNode, SeiNodeDeployment};
use sei_operator_core::cluster::{ClusterObject, ObjectRef};
use sei_operator_core::manifest::{Manifest, ManifestValidator, parse_yaml_documents};
use sei_operator_core::permissions::Permission;
use serde_json::Value;

use super::expect::{Memory, check};
use super::format::{ChildPick, Edit, Expectation, Fault, Heal, ImageSpec, ObjectKind, ObjectName, Scenario, Step};
use crate::apiserver::faults::RefusalStatus;
use crate::apiserver::json::Fields;
use crate::harness::fault_state::Fault as WorldFault;
use crate::harness::state::Timings;
use crate::harness::trace::{Category, Trace};
use crate::harness::world::{SimError, World};
use crate::node::chain::Chain;
use crate::node::registry::{Binary, ImageRegistry};
use crate::operator_host::reconcilers::SeiOperator;
use crate::operator_host::replicas::OPERATOR_HOST;

/// How one run of a scenario ended.
#[derive(Debug)]
pub struct Outcome {
    pub name: String,
    pub seed: u64,
    /// Simulated time the run covered.
    pub simulated: Duration,
    pub invariant_checks: u64,
    /// Why it failed: the step (1-based) and what went wrong.
    pub failure: Option<String>,
    pub trace: Trace,
    /// The objects the run ended with ([`super::end_state::end_state`]).
    pub end_state: Vec<String>,
    /// Every RBAC permission a call of the operator was granted under.
    pub permissions_used: std::collections::BTreeSet<sei_operator_core::permissions::Permission>,
}

impl Outcome {
    pub fn passed(&self) -> bool {
        self.failure.is_none()
    }
}

/// Watches a run as it goes: the timeline picture records from it, the command line's progress line reads it.
/// Called between simulated ticks, so an observer sees every state the invariants saw and changes none.
pub trait Observer {
    /// Step `index` (0-based) of the timeline starts at simulated time `now`.
    fn on_step_start(&mut self, _index: usize, _step: &Step, _now: Duration) {}
    /// A simulated tick has run (also the tick whose invariant check failed the run).
    fn after_tick(&mut self, _world: &World) {}
}

/// Observes nothing: what [`run`] uses.
pub struct NoObserver;

impl Observer for NoObserver {}

/// Runs `scenario` (its seed, or `seed` when given). Manifest files are read relative to `root`.
pub fn run(scenario: &Scenario, seed: Option<u64>, root: &Path) -> Outcome {
    run_observed(scenario, seed, root, &mut NoObserver)
}

/// [`run`], telling `observer` of every step and every tick.
pub fn run_observed(scenario: &Scenario, seed: Option<u64>, root: &Path, observer: &mut dyn Observer) -> Outcome {
    let seed = seed.unwrap_or(scenario.seed);
    let mut runner = match Runner::new(scenario, seed, root, observer) {
        Ok(runner) => runner,
        Err(message) => {
            return Outcome {
                name: scenario.name.clone(),
                seed,
                simulated: Duration::ZERO,
                invariant_checks: 0,
                failure: Some(format!("setup: {message}")),
                trace: Trace::default(),
                end_state: Vec::new(),
                permissions_used: Default::default(),
            };
        }
    };
    let mut failure = None;
    for (index, step) in scenario.timeline.iter().enumerate() {
        runner.observer.on_step_start(index, step, runner.world.now());
        if let Err(message) = runner.step(step) {
            failure = Some(format!("step {} ({}): {message}", index + 1, step_name(step)));
            break;
        }
    }
    Outcome {
        name: scenario.name.clone(),
        seed,
        simulated: runner.world.now(),
        invariant_checks: runner.world.invariant_checks(),
        failure,
        trace: runner.world.trace(),
        end_state: super::end_state::end_state(&runner.world),
        permissions_used: runner.world.inspect(|state| state.api.authorization.used.clone()),
    }
}

/// The step's kind, as the scenario file spells it.
pub(crate) fn step_name(step: &Step) -> &'static str {
    match step {
        Step::Apply(_) => "apply",
        Step::Edit(_) => "edit",
        Step::Delete(_) => "delete",
        Step::DeleteChild(_) => "deleteChild",
        Step::Wait(_) => "wait",
        Step::Fault(_) => "fault",
        Step::Heal(_) => "heal",
        Step::Expect(_) => "expect",
        Step::Settle(_) => "settle",
        Step::WaitUntil(_) => "waitUntil",
        Step::Mark(_) => "mark",
        Step::Push(_) => "push",
    }
}

struct Runner<'a> {
    scenario: &'a Scenario,
    root: &'a Path,
    world: World,
    validator: Arc<ManifestValidator>,
    /// Workers to boot again, and when.
    restarts: Vec<(Duration, usize)>,
    observer: &'a mut dyn Observer,
    /// What expectations remembered and which moments were marked.
    memory: Memory,
}

impl<'a> Runner<'a> {
    fn new(scenario: &'a Scenario, seed: u64, root: &'a Path, observer: &'a mut dyn Observer) -> Result<Self, String> {
        let spec = &scenario.chain;
        let mut chain = Chain::new(spec.id.clone(), spec.initial_height);
        if let Some(block_time) = spec.block_time {
            chain = chain.with_block_time(block_time);
        }
        if let Some(interval) = spec.snapshot_interval {
            chain.snapshot_interval = interval.max(1);
        }
        for upgrade in &spec.upgrades {
            chain = chain.with_upgrade(&upgrade.name, upgrade.height, upgrade.validators_switch_at);
        }
        let mut registry = ImageRegistry::default();
        for (image, spec) in &scenario.registry {
            registry = registry.with(image, binary(image, spec));
        }
        let mut timings = Timings::default();
        timings.task_durations.extend(scenario.world.task_durations.clone());
        timings.sync_speed_by_node.extend(scenario.world.sync_speeds.clone());
        let workers = usize::try_from(scenario.world.workers.max(1)).unwrap_or(1);
        let mut builder = World::builder(seed).workers(workers).chain(chain).registry(registry).timings(timings);
        if let Some(tick) = scenario.world.tick {
            builder = builder.tick(tick);
        }
        builder = builder.admission(scenario.world.admission);
        let mut world = builder.build().map_err(|e| e.to_string())?;
        let replicas = usize::try_from(scenario.world.operator_replicas).unwrap_or(1);
        world.start_operator_replicas(replicas, SeiOperator::default);
        // Compiled once per process and shared with the worlds (compiling the CRD schemas per run cost more than a
        // 3-replica rollout's simulation).
        let validator = crate::harness::world::shared_validator()?;
        Ok(Runner { scenario, root, world, validator, restarts: Vec::new(), observer, memory: Memory::default() })
    }

    fn namespace<'n>(&'n self, given: &'n Option<String>) -> &'n str {
        given.as_deref().unwrap_or(&self.scenario.namespace)
    }

    /// One simulated tick, booting workers whose outage ended.
    fn tick(&mut self) -> Result<(), String> {
        let now = self.world.now();
        let due: Vec<usize> = self.restarts.iter().filter(|(at, _)| *at <= now).map(|(_, w)| *w).collect();
        self.restarts.retain(|(at, _)| *at > now);
        for worker in due {
            self.world.restart_worker(worker);
        }
        let stepped = self.world.step();
        self.observer.after_tick(&self.world);
        stepped.map_err(|e| render(&e))
    }

    fn step(&mut self, step: &Step) -> Result<(), String> {
        match step {
            Step::Apply(manifests) => {
                let mut objects = manifests.objects.clone();
                if let Some(file) = &manifests.file {
                    let path = self.root.join(file);
                    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
                    objects.extend(parse_yaml_documents(&text).map_err(|e| format!("{}: {e}", path.display()))?);
                }
                for mut object in objects {
                    for (path, value) in &manifests.set {
                        set_path(&mut object, path, value.clone());
                    }
                    if let Some(expected) = &manifests.rejected_with {
                        match self.admit(&object) {
                            Err(error) if error.contains(expected.as_str()) => continue,
                            Err(error) => return Err(format!("apply refused, but not with {expected:?}: {error}")),
                            Ok(_) => return Err(format!("apply admitted, but must be refused with {expected:?}")),
                        }
                    }
                    match self.admit(&object)? {
                        Manifest::SeiNode(node) => self.world.apply(&*node).map(|_| ()),
                        Manifest::SeiNodeDeployment(deployment) => self.world.apply(&*deployment).map(|_| ()),
                    }
                    .map_err(|e| render(&e))?;
                }
                Ok(())
            }
            Step::Edit(edit) if edit.after.is_some() => self.aimed_edit(edit),
            Step::Edit(edit) => match edit.kind {
                ObjectKind::SeiNodeDeployment => self.edit::<SeiNodeDeployment>(edit),
                ObjectKind::SeiNode => self.edit::<SeiNode>(edit),
                ObjectKind::Service => self.edit::<Service>(edit),
            },
            Step::Delete(ObjectName { kind, name, namespace }) => {
                let namespace = self.namespace(namespace).to_owned();
                match kind {
                    ObjectKind::SeiNodeDeployment => self.world.delete::<SeiNodeDeployment>(&namespace, name),
                    ObjectKind::SeiNode => self.world.delete::<SeiNode>(&namespace, name),
                    ObjectKind::Service => self.world.delete::<Service>(&namespace, name),
                }
                .map_err(|e| render(&e))
            }
            Step::DeleteChild(pick) => self.delete_child(pick),
            Step::Wait(duration) => {
                let end = self.world.now() + *duration;
                while self.world.now() < end {
                    self.tick()?;
                }
                Ok(())
            }
            Step::Fault(fault) => self.fault(fault),
            Step::Heal(heal) => {
                self.heal(*heal);
                Ok(())
            }
            Step::Expect(expectation) => self.expect(expectation),
            Step::Settle(within) => self.settle(*within),
            Step::WaitUntil(at) => {
                while self.world.now() < *at {
                    self.tick()?;
                }
                Ok(())
            }
            Step::Mark(name) => {
                self.memory.mark(&self.world, name);
                Ok(())
            }
            Step::Push(images) => {
                for (image, spec) in images {
                    self.world.push_image(image, binary(image, spec));
                }
                Ok(())
            }
        }
    }

    /// Deletes the child `pick` names, if the deployment has one (see [`Step::DeleteChild`]).
    fn delete_child(&mut self, pick: &ChildPick) -> Result<(), String> {
        use sei_operator_core::api::SeiNodePhase;
        use sei_operator_core::objects::meta::LABEL_DEPLOYMENT;
        let namespace = self.namespace(&pick.namespace).to_owned();
        let children: Vec<(String, bool)> = self.world.inspect(|state| {
            state
                .api
                .store
                .all_of_kind("SeiNode")
                .filter(|(key, value)| {
                    key.namespace == namespace && value.metadata_field("deletionTimestamp").is_none()
                })
                .filter_map(|(key, value)| {
                    let node = <SeiNode as serde::Deserialize>::deserialize(value).ok()?;
                    let labels = node.metadata.labels.unwrap_or_default();
                    (labels.get(LABEL_DEPLOYMENT) == Some(&pick.deployment)).then(|| {
                        let failed = node.status.and_then(|s| s.phase) == Some(SeiNodePhase::Failed);
                        (key.name.clone(), failed)
                    })
                })
                .collect()
        });
        let failed: Vec<&String> = children.iter().filter(|(_, failed)| *failed).map(|(name, _)| name).collect();
        let candidates: Vec<&String> =
            if pick.failed && !failed.is_empty() { failed } else { children.iter().map(|(name, _)| name).collect() };
        let Some(index) = usize::try_from(pick.index).ok().filter(|_| !candidates.is_empty()) else {
            return Ok(());
        };
        let name = candidates[index % candidates.len()].clone();
        self.world.delete::<SeiNode>(&namespace, &name).map_err(|e| render(&e))
    }

    /// Arms an edit to land right after its moment, and steps until it has (or, at its deadline, makes it).
    fn aimed_edit(&mut self, edit: &Edit) -> Result<(), String> {
        let Some(moment) = edit.after.clone() else { return Ok(()) };
        if edit.kind != ObjectKind::SeiNodeDeployment {
            return Err("an aimed edit (`after`) edits a SeiNodeDeployment".into());
        }
        let deployment = ObjectRef::new("SeiNodeDeployment", self.namespace(&edit.namespace), &edit.name);
        let end = self.world.now() + moment.deadline();
        let armed = self.world.modify(|w| {
            let armed = crate::harness::aimed::AimedEdit::arm(
                w.api.store.get(&deployment, None),
                deployment,
                moment,
                edit.set.clone(),
            );
            w.aimed_edits.push(armed);
            w.aimed_edits.len() - 1
        });
        let fired = |world: &World| world.inspect(|w| w.aimed_edits.get(armed).is_none_or(|e| e.fired));
        while !fired(&self.world) && self.world.now() < end {
            self.tick()?;
        }
        self.world.modify(|w| {
            if let Some(edit) = w.aimed_edits.get_mut(armed).filter(|e| !e.fired) {
                edit.fired = true;
                let edit = edit.clone();
                crate::harness::aimed::apply(w, &edit, "its moment did not come: at the deadline");
            }
        });
        Ok(())
    }

    fn edit<K: ClusterObject>(&mut self, edit: &Edit) -> Result<(), String> {
        let namespace = self.namespace(&edit.namespace).to_owned();
        let stored = self.world.get::<K>(&namespace, &edit.name).map_err(|e| render(&e))?;
        let mut value = serde_json::to_value(&stored).map_err(|e| e.to_string())?;
        for (path, new) in &edit.set {
            set_path(&mut value, path, new.clone());
        }
        let edited: K = serde_json::from_value(value).map_err(|e| format!("the edit leaves an invalid object: {e}"))?;
        self.world.apply(&edited).map(|_| ()).map_err(|e| render(&e))
    }

    fn fault(&mut self, fault: &Fault) -> Result<(), String> {
        let namespace = self.scenario.namespace.clone();
        let worker = |w: &u32| usize::try_from(*w).unwrap_or(usize::MAX);
        let world_fault = match fault {
            Fault::RevokePermission(revoked) => {
                let permission = Permission::new(&revoked.group, &revoked.resource, &revoked.verb);
                let text = format!("RBAC: the operator may no longer {permission}");
                self.world.modify(|s| {
                    s.record(Category::Fault, text);
                    s.api.authorization.revoked.insert(permission)
                });
                return Ok(());
            }
            Fault::PodCrash { node } => WorldFault::CrashPod { namespace, pod: format!("{node}-0") },
            Fault::PodDelete { node, bootstrap } => {
                WorldFault::DeletePod { pod: self.pod_of(&namespace, node, *bootstrap)?, namespace }
            }
            Fault::SidecarRestart { node } => WorldFault::RestartSidecar { namespace, pod: format!("{node}-0") },
            Fault::WorkerCrash { worker: w, hosting, bootstrap, down_for } => {
                let index = match (w, hosting) {
                    (Some(w), None) => worker(w),
                    (None, Some(node)) => self.worker_hosting(&namespace, node, *bootstrap)?,
                    _ => return Err("workerCrash names its worker by `worker` or by `hosting`, one of them".into()),
                };
                if let Some(down_for) = down_for {
                    self.restarts.push((self.world.now() + *down_for, index));
                }
                WorldFault::CrashWorker { worker: index }
            }
            Fault::OperatorCrash { after_write: None, reconciling: Some(_), .. } => {
                return Err("operatorCrash: `reconciling` needs `afterWrite`".into());
            }
            Fault::OperatorCrash { after_write: None, until_healed: true, .. } => {
                return Err("operatorCrash: `untilHealed` needs `afterWrite`".into());
            }
            Fault::OperatorCrash { after_write: None, reconciling: None, until_healed: false } => {
                WorldFault::CrashOperator
            }
            Fault::OperatorCrash { after_write: Some(write), reconciling, until_healed: false } => {
                WorldFault::CrashOperatorAfterWrite { write: *write, reconciling: reconciling.clone() }
            }
            Fault::OperatorCrash { after_write: Some(write), reconciling, until_healed: true } => {
                WorldFault::CrashOperatorAfterWriteUntilHealed { write: *write, reconciling: reconciling.clone() }
            }
            Fault::Partition { worker: w } => {
                WorldFault::Partition { a: OPERATOR_HOST.into(), b: format!("worker-{}", worker(w)) }
            }
            Fault::Latency { worker: w, delay } => {
                WorldFault::Latency { a: OPERATOR_HOST.into(), b: format!("worker-{}", worker(w)), latency: *delay }
            }
            // Each rate is set on its own: a storm of conflicts and one of errors can overlap.
            Fault::ApiConflicts { count, rate, every_other } => {
                let transient = self.world.inspect(|s| s.api.faults.transient_rate);
                self.world.set_api_fault_rates(*rate, transient);
                if *every_other {
                    self.world.conflict_after_each_success(true);
                }
                WorldFault::Conflicts { count: *count }
            }
            Fault::ApiErrors { count, rate } => {
                let conflict = self.world.inspect(|s| s.api.faults.conflict_rate);
                self.world.set_api_fault_rates(conflict, *rate);
                WorldFault::TransientErrors { count: *count }
            }
            Fault::LostResponses { count, rate, gateway_timeout } => {
                self.world.modify(|s| s.api.faults.lost_response_rate = *rate);
                WorldFault::LoseResponses { count: *count, gateway_timeout: *gateway_timeout }
            }
            Fault::ApiRefusals { duration, status, retry_after } => {
                let status = match (status, retry_after) {
                    (429, retry_after) => {
                        RefusalStatus::TooManyRequests { retry_after: retry_after.unwrap_or_default() }
                    }
                    (503, None) => RefusalStatus::Unavailable,
                    (500, None) => RefusalStatus::Internal,
                    (other, _) => {
                        return Err(format!(
                            "apiRefusals.status {other}{}: use 429 (with retryAfter), 503 or 500",
                            if retry_after.is_some() { " with retryAfter" } else { "" }
                        ));
                    }
                };
                WorldFault::RefuseCalls { duration: *duration, status }
            }
            Fault::StaleReads { versions } => WorldFault::ReadLag { versions: *versions },
            Fault::DropWatchEvents { count } => WorldFault::DropWatchEvents { count: *count },
            Fault::TaskFailure { task, node, times } => WorldFault::FailTask {
                node: node.clone(),
                task_type: task.clone(),
                times: *times,
                error: format!("scripted failure of {task}"),
            },
            Fault::ReplicaCrash { replica, down_for } => {
                WorldFault::CrashReplica { replica: replica.map(|r| worker(&r)), down_for: *down_for }
            }
            Fault::ReplicaApiPartition { replica, duration } => {
                WorldFault::ApiUnreachable { replica: replica.map(|r| worker(&r)), duration: *duration }
            }
            Fault::ReplicaPause { replica, duration } => {
                WorldFault::PauseReplica { replica: replica.map(|r| worker(&r)), duration: *duration }
            }
        };
        self.world.inject(&world_fault);
        Ok(())
    }

    /// The worker the pod of SeiNode `node` is scheduled on.
    /// A SeiNode's pod, or the live (not finished, not being deleted) pod of its bootstrap Job.
    fn pod_of(&self, namespace: &str, node: &str, bootstrap: bool) -> Result<String, String> {
        if !bootstrap {
            return Ok(format!("{node}-0"));
        }
        let job = sei_operator_core::objects::names::bootstrap(node);
        let live = self.world.inspect(|s| {
            s.api
                .store
                .all_of_kind("Pod")
                .filter(|(key, value)| {
                    key.namespace == namespace
                        && value.at("/metadata/labels/job-name").and_then(Value::as_str) == Some(job.as_str())
                        && !crate::apiserver::store::is_deleting(value)
                        && !matches!(value.at("/status/phase").and_then(Value::as_str), Some("Succeeded" | "Failed"))
                })
                .map(|(key, _)| key.name.clone())
                .next()
        });
        live.ok_or_else(|| format!("the bootstrap Job {job} has no live pod"))
    }

    fn worker_hosting(&self, namespace: &str, node: &str, bootstrap: bool) -> Result<usize, String> {
        let pod = self.pod_of(namespace, node, bootstrap)?;
        self.world.pod(namespace, &pod).map(|p| p.worker).ok_or_else(|| format!("SeiNode {node} has no pod {pod}"))
    }

    /// An object to apply, admitted against the CRDs — or, in a world without admission, only decoded, as an API
    /// server that skips validation would store it.
    fn admit(&self, object: &Value) -> Result<Manifest, String> {
        if self.scenario.world.admission {
            return self.validator.admit(object).map_err(|e| e.to_string());
        }
        let kind = object.get("kind").and_then(Value::as_str).unwrap_or_default();
        let decoded = match kind {
            "SeiNode" => serde_json::from_value(object.clone()).map(|n| Manifest::SeiNode(Box::new(n))),
            "SeiNodeDeployment" => {
                serde_json::from_value(object.clone()).map(|d| Manifest::SeiNodeDeployment(Box::new(d)))
            }
            other => return Err(format!("cannot apply kind {other:?}: only SeiNode and SeiNodeDeployment")),
        };
        decoded.map_err(|e| format!("{kind} does not decode: {e}"))
    }

    fn heal(&mut self, heal: Heal) {
        let workers = self.world.inspect(|s| s.plane.workers.len());
        match heal {
            Heal::All => {
                self.restarts.clear();
                self.world.heal_all();
            }
            Heal::Rbac => self.world.modify(|s| s.api.authorization.revoked.clear()),
            Heal::Partitions | Heal::Latency => {
                for index in 0..workers {
                    let worker = format!("worker-{index}");
                    self.world.repair(OPERATOR_HOST, &worker);
                }
            }
            Heal::Api => {
                self.world.set_api_fault_rates(0.0, 0.0);
                self.world.modify(|s| {
                    let faults = &mut s.api.faults;
                    (faults.lost_responses, faults.lost_response_rate, faults.refusal) = (0, 0.0, None);
                });
                if self.world.inspect(|s| s.api.faults.conflict_after_success) {
                    self.world.conflict_after_each_success(false);
                }
            }
            Heal::StaleReads => self.world.set_read_lag(0),
            Heal::OperatorCrashes => self.world.disarm_operator_crash(),
            Heal::Workers => {
                self.restarts.clear();
                let down: Vec<usize> = self.world.inspect(|s| {
                    s.plane.workers.iter().enumerate().filter(|(_, w)| !w.up).map(|(index, _)| index).collect()
                });
                for index in down {
                    self.world.restart_worker(index);
                }
            }
        }
    }

    /// Runs until the world is at rest — every deployment settled, no node or deployment in a transitional
    /// phase — booting workers whose outage ends on the way; fails with the liveness invariant after `within`.
    fn settle(&mut self, within: Duration) -> Result<(), String> {
        let end = self.world.now() + within;
        while self.world.now() < end {
            if self.world.at_rest() {
                return self.world.check_at_rest().map_err(|e| render(&e));
            }
            self.tick()?;
        }
        if self.world.at_rest() {
            return self.world.check_at_rest().map_err(|e| render(&e));
        }
        Err(format!(
            "invariant liveness violated: the world did not come to rest within {within:?} (a deployment still \
             rolling out, or a node or deployment in a transitional phase)\n{}",
            super::end_state::end_state(&self.world).join("\n")
        ))
    }

    /// Steps until every check of `expectation` holds, up to its deadline (`within` from now, `before` a time
    /// of the run, the earlier of both), then keeps what it remembers; its `meanwhile` checks must hold at
    /// every step before that.
    fn expect(&mut self, expectation: &Expectation) -> Result<(), String> {
        let nested = expectation.and.iter().chain(expectation.meanwhile.as_deref());
        if nested.clone().any(|n| n.within.is_some() || n.before.is_some() || n.meanwhile.is_some()) {
            return Err(
                "`and` and `meanwhile` expectations take the step's deadline: no within, before or meanwhile".into()
            );
        }
        let start = self.world.now();
        let mut end = start + expectation.within.unwrap_or(Duration::ZERO);
        if let Some(before) = expectation.before {
            if start >= before {
                return Err(format!("began at t={start:?}, not before its deadline t={before:?}"));
            }
            end = if expectation.within.is_some() { end.min(before) } else { before };
        }
        loop {
            let checked = check(&self.world, &self.scenario.namespace, expectation, &self.memory);
            let late = expectation.before.is_some_and(|before| self.world.now() >= before);
            if checked.unmet.is_empty() && !late {
                self.memory.remember(checked.remembered);
                return Ok(());
            }
            if let Some(before) = expectation.before.filter(|_| late) {
                let unmet =
                    if checked.unmet.is_empty() { "it held only then".into() } else { checked.unmet.join("; ") };
                return Err(format!("not met before t={before:?} (now t={:?}): {unmet}", self.world.now()));
            }
            if let Some(meanwhile) = &expectation.meanwhile {
                let broken = check(&self.world, &self.scenario.namespace, meanwhile, &self.memory).unmet;
                if !broken.is_empty() {
                    return Err(format!(
                        "meanwhile broken at t={:?}: {} (while waiting for: {})",
                        self.world.now(),
                        broken.join("; "),
                        checked.unmet.join("; ")
                    ));
                }
            }
            if self.world.now() >= end {
                return Err(format!("not met by t={:?}: {}", self.world.now(), checked.unmet.join("; ")));
            }
            self.tick()?;
        }
    }
}

/// The binary an image of the scenario's registry runs.
fn binary(image: &str, spec: &ImageSpec) -> Binary {
    let mut binary = Binary::new(spec.version.as_deref().unwrap_or(image));
    for upgrade in &spec.knows {
        binary = binary.knowing(upgrade);
    }
    if !spec.pullable {
        binary = binary.unpullable();
    }
    if spec.crash_on_start {
        binary = binary.crashing_on_start();
    }
    if let Some(task_type) = &spec.fails_task {
        binary = binary.failing_task(task_type);
    }
    binary
}

fn render(error: &SimError) -> String {
    error.to_string()
}

/// Sets `path` (dotted) in a JSON object, creating objects on the way; `null` removes the field.
pub(crate) fn set_path(value: &mut Value, path: &str, new: Value) {
    let mut segments: Vec<&str> = path.split('.').collect();
    let Some(last) = segments.pop() else { return };
    let mut cursor = value;
    for segment in segments {
        if !cursor.get(segment).is_some_and(Value::is_object)
            && let Some(object) = cursor.as_object_mut()
        {
            object.insert(segment.to_owned(), Value::Object(Default::default()));
        }
        let Some(next) = cursor.get_mut(segment) else { return };
        cursor = next;
    }
    if let Some(object) = cursor.as_object_mut() {
        if new.is_null() {
            object.remove(last);
        } else {
            object.insert(last.to_owned(), new);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn dotted_paths_set_and_remove_nested_fields() {
        let mut value = json!({"spec": {"template": {"spec": {"image": "a"}}}});
        set_path(&mut value, "spec.template.spec.image", json!("b"));
        set_path(&mut value, "spec.replicas", json!(4));
        set_path(&mut value, "spec.template.metadata.labels", json!({"x": "y"}));
        assert_eq!(value["spec"]["template"]["spec"]["image"], json!("b"));
        assert_eq!(value["spec"]["replicas"], json!(4));
        assert_eq!(value["spec"]["template"]["metadata"]["labels"]["x"], json!("y"));
        set_path(&mut value, "spec.replicas", Value::Null);
        assert!(value["spec"].get("replicas").is_none());
    }
}
