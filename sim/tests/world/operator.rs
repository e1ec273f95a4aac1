//! The operator host with trivial reconcilers: the work queue, partitions between the operator and a worker,
//! the single-writer invariant, crashes after the i-th write, and stale reads.

use std::cell::RefCell;
use std::rc::Rc;

use k8s_openapi::api::core::v1::ConfigMap;
use sei_operator_core::api::SeiNode;
use sei_operator_core::cluster::{Cluster, ObjectRef};
use sei_operator_core::sidecar::{PodAddress, Sidecar};
use sei_sim::SimError;
use sei_sim::harness::invariants::{NO_OPERATOR_LIVELOCK, SINGLE_WRITER};
use sei_sim::harness::world::poll_ready;
use sei_sim::operator_host::{OperatorContext, Reconciler, Requeue};
use serde_json::json;

use crate::common::*;

pub fn sei_node(name: &str) -> SeiNode {
    serde_json::from_value(json!({
        "apiVersion": "sei.io/v1alpha1", "kind": "SeiNode",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"chainId": "pacific-1", "image": "sei:v1", "fullNode": {}},
    }))
    .unwrap()
}

/// Polls the sidecar of the node it reconciles every 2 s, recording whether it answered.
pub struct HealthProber {
    pub kind: &'static str,
    pub answers: Rc<RefCell<Vec<bool>>>,
}

impl Reconciler for HealthProber {
    fn kinds(&self) -> Vec<String> {
        vec![self.kind.into()]
    }

    async fn reconcile(&self, ctx: &OperatorContext, key: &ObjectRef) -> Requeue {
        let answered = ctx.sidecar.healthz(&PodAddress::for_node(&key.namespace, &key.name, 7777)).await.is_ok();
        self.answers.borrow_mut().push(answered);
        Requeue::After(secs(2))
    }
}

fn node_world(seed: u64, kind: &'static str) -> (sei_sim::World, Rc<RefCell<Vec<bool>>>) {
    let mut world = world(seed);
    world.create(&sei_node("n")).unwrap();
    world.create(&headless_service("n")).unwrap();
    world.create(&statefulset("n", "sei:v1", true, "OrderedReady")).unwrap();
    let answers = Rc::new(RefCell::new(Vec::new()));
    let shared = answers.clone();
    world.start_operator(move || HealthProber { kind, answers: shared.clone() });
    (world, answers)
}

#[test]
fn a_partition_makes_sidecar_calls_fail_and_healing_restores_them() {
    let (mut world, answers) = node_world(30, "SeiNode");
    world.run_until("sidecar answers", secs(60), |_| answers.borrow().last() == Some(&true)).unwrap();
    let worker = format!("worker-{}", world.pod(NS, "n-0").unwrap().worker);
    world.partition("operator", &worker);
    answers.borrow_mut().clear();
    world.run_for(secs(20)).unwrap();
    assert!(answers.borrow().iter().all(|a| !a), "{:?}", answers.borrow());
    assert!(!answers.borrow().is_empty());
    world.repair("operator", &worker);
    answers.borrow_mut().clear();
    world.run_for(secs(20)).unwrap();
    assert_eq!(answers.borrow().last(), Some(&true), "{:?}", answers.borrow());
}

#[test]
fn a_worker_crash_takes_its_pods_down_until_it_reboots() {
    let (mut world, answers) = node_world(31, "SeiNode");
    world.run_until("sidecar answers", secs(60), |_| answers.borrow().last() == Some(&true)).unwrap();
    let worker = world.pod(NS, "n-0").unwrap().worker;
    world.crash_worker(worker);
    answers.borrow_mut().clear();
    world.run_for(secs(15)).unwrap();
    assert!(answers.borrow().iter().all(|a| !a));
    assert!(!pod_ready(&world, "n-0"));
    world.restart_worker(worker);
    world.run_for(secs(15)).unwrap();
    assert_eq!(answers.borrow().last(), Some(&true));
    assert_eq!(world.pod(NS, "n-0").unwrap().restarts, 1);
}

#[test]
fn only_the_sei_node_controller_may_call_sidecars() {
    let (mut world, _) = node_world(32, "StatefulSet");
    match world.run_for(secs(60)) {
        Err(SimError::Invariant { violation, seed, trace_tail, .. }) => {
            assert_eq!(violation.invariant, SINGLE_WRITER);
            assert!(violation.message.contains("operator:StatefulSet"), "{}", violation.message);
            assert_eq!(seed, 32);
            assert!(!trace_tail.is_empty());
        }
        other => panic!("expected a single-writer violation, got {other:?}"),
    }
}

/// Writes two keys of a ConfigMap in two writes, counting reconciles.
struct TwoWrites {
    reconciles: Rc<RefCell<u32>>,
}

impl Reconciler for TwoWrites {
    fn kinds(&self) -> Vec<String> {
        vec!["SeiNode".into()]
    }

    async fn reconcile(&self, ctx: &OperatorContext, _: &ObjectRef) -> Requeue {
        *self.reconciles.borrow_mut() += 1;
        for step in ["first", "second"] {
            let mut map = match ctx.cluster.get::<ConfigMap>(NS, "marker").await {
                Ok(map) => map,
                Err(error) => return Requeue::Error(error.into()),
            };
            map.data.get_or_insert_default().insert(step.into(), "done".into());
            if let Err(error) = ctx.cluster.replace(&map).await {
                return Requeue::Error(error.into());
            }
        }
        Requeue::Done
    }
}

fn marker() -> ConfigMap {
    serde_json::from_value(
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "marker", "namespace": NS}}),
    )
    .unwrap()
}

#[test]
fn the_operator_crashes_right_after_its_ith_write_and_restarts_with_nothing() {
    let mut world = world(33);
    world.create(&marker()).unwrap();
    world.crash_operator_after_write(1);
    let reconciles = Rc::new(RefCell::new(0));
    let counter = reconciles.clone();
    world.start_operator(move || TwoWrites { reconciles: counter.clone() });
    world.create(&sei_node("n")).unwrap();
    world.run_for(secs(5)).unwrap();
    let trace = world.trace();
    let lines = trace.lines();
    let position =
        |needle: &str| lines.iter().position(|l| l.contains(needle)).unwrap_or_else(|| panic!("no {needle:?}"));
    let crash = position("operator crashes right after this write");
    let restart = position("operator restarted");
    assert!(crash < restart);
    let writes_before_restart = lines[..restart].iter().filter(|l| l.contains("operator replace ConfigMap")).count();
    assert_eq!(writes_before_restart, 1, "nothing after the crash point ran");
    let data = world.get::<ConfigMap>(NS, "marker").unwrap().data.unwrap();
    assert_eq!(data.len(), 2, "the restarted operator finished the job");
    assert_eq!(*reconciles.borrow(), 2);
}

#[test]
fn a_crash_until_healed_fires_after_every_restart_until_disarmed() {
    let mut world = world(37);
    world.create(&marker()).unwrap();
    world.crash_operator_after_write_until_healed(1, None);
    let reconciles = Rc::new(RefCell::new(0));
    let counter = reconciles.clone();
    world.start_operator(move || TwoWrites { reconciles: counter.clone() });
    world.create(&sei_node("n")).unwrap();
    world.run_for(secs(30)).unwrap();
    let crashes = |world: &sei_sim::World| {
        world.trace().lines().iter().filter(|l| l.contains("operator crashes right after this write")).count()
    };
    let looping = crashes(&world);
    assert!(looping >= 3, "the fault outlives the crashes it causes: {looping} crashes");
    let data = world.get::<ConfigMap>(NS, "marker").unwrap().data.unwrap();
    assert!(!data.contains_key("second"), "no incarnation got past its first write");

    world.disarm_operator_crash();
    world.run_for(secs(30)).unwrap();
    assert_eq!(crashes(&world), looping, "healed: no more crashes");
    let data = world.get::<ConfigMap>(NS, "marker").unwrap().data.unwrap();
    assert_eq!(data.len(), 2, "the operator finished the job once healed");
}

#[test]
fn a_lagging_client_reads_old_objects() {
    let world = world(34);
    world.create(&marker()).unwrap();
    world
        .edit::<ConfigMap>(NS, "marker", |m| {
            m.data = Some([("k".to_owned(), "new".to_owned())].into());
        })
        .unwrap();
    world.set_read_lag(1);
    let stale = poll_ready(world.operator_cluster().get::<ConfigMap>(NS, "marker")).unwrap().unwrap();
    assert_eq!(stale.data, None, "the lagging cache still holds the first version");
    let fresh = world.get::<ConfigMap>(NS, "marker").unwrap();
    assert_eq!(fresh.data.unwrap()["k"], "new");
    // Writing what it read is refused: the stale resourceVersion conflicts.
    let conflict = poll_ready(world.operator_cluster().replace(&stale)).unwrap();
    assert!(matches!(conflict, Err(sei_operator_core::cluster::ClusterError::Conflict(_))));
}

#[test]
fn a_lagging_client_catches_up_once_the_store_is_quiet() {
    let mut world = world(36);
    world.create(&marker()).unwrap();
    world.edit::<ConfigMap>(NS, "marker", |m| m.data = Some([("k".to_owned(), "new".to_owned())].into())).unwrap();
    world.set_read_lag(1);
    world.step().unwrap();
    let stale = poll_ready(world.operator_cluster().get::<ConfigMap>(NS, "marker")).unwrap().unwrap();
    assert_eq!(stale.data, None, "just after a write, the cache lags");
    // An informer lags by its event delivery, not forever: with no new writes it ends up on the latest version.
    world.run_for(sei_sim::operator_host::cluster::STALE_CACHE_CATCH_UP).unwrap();
    let caught_up = poll_ready(world.operator_cluster().get::<ConfigMap>(NS, "marker")).unwrap().unwrap();
    assert_eq!(caught_up.data.unwrap()["k"], "new");
}

#[test]
fn injected_conflicts_and_transient_errors_hit_the_operator_only() {
    let world = world(35);
    world.create(&marker()).unwrap();
    world.inject_transient_errors(1);
    world.inject_conflicts(1);
    let cluster = world.operator_cluster();
    let read = poll_ready(cluster.get::<ConfigMap>(NS, "marker")).unwrap();
    assert!(read.as_ref().is_err_and(|e| e.is_transient()));
    let map = world.get::<ConfigMap>(NS, "marker").unwrap();
    let write = poll_ready(cluster.replace(&map)).unwrap();
    assert!(matches!(write, Err(sei_operator_core::cluster::ClusterError::Conflict(_))));
    assert!(poll_ready(cluster.replace(&map)).unwrap().is_ok());
}

/// Counts reconciles of SeiNodes.
struct Counter {
    reconciles: Rc<RefCell<u32>>,
}

impl Reconciler for Counter {
    fn kinds(&self) -> Vec<String> {
        vec!["SeiNode".into()]
    }

    async fn reconcile(&self, _: &OperatorContext, _: &ObjectRef) -> Requeue {
        *self.reconciles.borrow_mut() += 1;
        Requeue::Done
    }
}

#[test]
fn a_dropped_watch_event_goes_unseen_until_a_later_event_supersedes_it() {
    let mut world = world(36);
    world.create(&sei_node("n")).unwrap();
    let reconciles = Rc::new(RefCell::new(0));
    let counter = reconciles.clone();
    world.start_operator(move || Counter { reconciles: counter.clone() });
    world.run_for(secs(2)).unwrap();
    assert_eq!(*reconciles.borrow(), 1, "the initial list");
    world.drop_watch_events(1);
    world.edit::<SeiNode>(NS, "n", |n| n.spec.image = "sei:v1.1".into()).unwrap();
    world.run_for(secs(5)).unwrap();
    assert_eq!(*reconciles.borrow(), 1, "the change went unobserved");
    world.edit::<SeiNode>(NS, "n", |n| n.spec.image = "sei:v2".into()).unwrap();
    world.run_for(secs(2)).unwrap();
    assert_eq!(*reconciles.borrow(), 2, "the later event brings the newest state");
}

/// Records, for each reconcile, whether the reconciled SeiNode could be read.
struct Reader {
    found: Rc<RefCell<Vec<bool>>>,
}

impl Reconciler for Reader {
    fn kinds(&self) -> Vec<String> {
        vec!["SeiNode".into()]
    }

    async fn reconcile(&self, ctx: &OperatorContext, key: &ObjectRef) -> Requeue {
        let read = ctx.cluster.get::<SeiNode>(&key.namespace, &key.name).await;
        self.found.borrow_mut().push(read.is_ok());
        Requeue::Done
    }
}

#[test]
fn a_lagging_operator_is_told_of_an_object_only_once_its_cache_holds_it() {
    let mut world = world(39);
    let found = Rc::new(RefCell::new(Vec::new()));
    let shared = found.clone();
    world.start_operator(move || Reader { found: shared.clone() });
    world.run_for(secs(1)).unwrap();
    world.set_read_lag(3);
    world.create(&sei_node("n")).unwrap();
    world.run_for(secs(5)).unwrap();
    // An informer's event is its cache update: woken by the creation, the reconcile finds the object.
    assert_eq!(*found.borrow(), [true]);
}

#[test]
fn an_operator_crash_loses_its_memory_but_not_the_store() {
    let mut world = world(37);
    world.create(&sei_node("n")).unwrap();
    let reconciles = Rc::new(RefCell::new(0));
    let counter = reconciles.clone();
    world.start_operator(move || Counter { reconciles: counter.clone() });
    world.run_for(secs(2)).unwrap();
    world.crash_operator();
    world.run_for(secs(2)).unwrap();
    assert_eq!(*reconciles.borrow(), 2, "the restarted operator lists everything again");
    assert!(world.get::<SeiNode>(NS, "n").is_ok());
}

#[test]
fn latency_beyond_the_client_timeout_makes_calls_fail() {
    let (mut world, answers) = node_world(38, "SeiNode");
    world.run_until("sidecar answers", secs(60), |_| answers.borrow().last() == Some(&true)).unwrap();
    let worker = format!("worker-{}", world.pod(NS, "n-0").unwrap().worker);
    world.set_latency("operator", &worker, secs(1));
    answers.borrow_mut().clear();
    world.run_for(secs(20)).unwrap();
    assert!(answers.borrow().iter().all(|a| *a), "1 s each way is slow but answers: {:?}", answers.borrow());
    world.set_latency("operator", &worker, secs(3));
    answers.borrow_mut().clear();
    world.run_for(secs(30)).unwrap();
    assert!(!answers.borrow().is_empty() && answers.borrow().iter().all(|a| !a), "{:?}", answers.borrow());
}

#[test]
fn the_clock_reads_simulated_time_from_the_pinned_epoch() {
    use sei_operator_core::clock::Clock;
    let mut world = world(39);
    let clock = world.clock();
    assert_eq!(clock.now().as_second(), sei_sim::harness::world::EPOCH_SECONDS);
    world.run_for(secs(90)).unwrap();
    assert_eq!(clock.now().as_second(), sei_sim::harness::world::EPOCH_SECONDS + 90);
}

#[test]
fn faults_as_data_apply_and_heal() {
    use sei_sim::harness::fault_state::Fault;
    let (mut world, answers) = node_world(40, "SeiNode");
    world.run_until("sidecar answers", secs(60), |_| answers.borrow().last() == Some(&true)).unwrap();
    let worker = world.pod(NS, "n-0").unwrap().worker;
    let faults = [
        Fault::Partition { a: "operator".into(), b: format!("worker-{worker}") },
        Fault::ReadLag { versions: 3 },
        Fault::CrashWorker { worker: 99 },
        Fault::Partition { a: "operator".into(), b: "nowhere".into() },
    ];
    for fault in &faults {
        world.inject(fault);
    }
    answers.borrow_mut().clear();
    world.run_for(secs(15)).unwrap();
    assert!(answers.borrow().iter().all(|a| !a));
    world.heal_all();
    assert_eq!(world.inspect(|w| w.operator.read_lag), 0);
    answers.borrow_mut().clear();
    world.run_for(secs(15)).unwrap();
    assert_eq!(answers.borrow().last(), Some(&true));
    let trace = world.trace().text();
    assert!(trace.contains("ignored: there is no worker-99") && trace.contains("heal all"));
    assert!(trace.contains("ignored: no link between operator and nowhere"));
}

/// Asks to be reconciled again at once, forever: simulated time could never pass.
struct Spinner;

impl Reconciler for Spinner {
    fn kinds(&self) -> Vec<String> {
        vec!["SeiNode".into()]
    }

    async fn reconcile(&self, _: &OperatorContext, _: &ObjectRef) -> Requeue {
        Requeue::After(std::time::Duration::ZERO)
    }
}

#[test]
fn a_reconciler_that_never_lets_time_pass_is_a_livelock_not_a_hang() {
    let mut world = world(38);
    world.create(&sei_node("n")).unwrap();
    world.start_operator(|| Spinner);
    match world.run_for(secs(5)) {
        Err(SimError::Invariant { violation, .. }) => assert_eq!(violation.invariant, NO_OPERATOR_LIVELOCK),
        other => panic!("expected a livelock, got {other:?}"),
    }
}

/// An update that completes a deletion (it removes the last finalizer) answers the object as sent, under the
/// version it read — a version the store held with the finalizer. A client that decoded that version must not
/// hand it out as the answer: the answer is what was sent, and the node is gone.
#[test]
fn an_update_completing_a_deletion_answers_the_object_sent() {
    let world = world(1);
    let mut node = sei_node("n");
    node.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    world.create(&node).unwrap();
    world.delete::<SeiNode>(NS, "n").unwrap();
    let client = world.cluster();
    let marked = poll_ready(client.get::<SeiNode>(NS, "n")).expect("a store read does not wait").unwrap();
    assert!(marked.metadata.deletion_timestamp.is_some(), "held by its finalizer");
    let mut released = marked.clone();
    released.metadata.finalizers = None;
    let answer = poll_ready(client.replace(&released)).expect("a store write does not wait").unwrap();
    assert_eq!(answer.metadata.finalizers, None, "the object as sent, not the version read");
    assert_eq!(answer.metadata.resource_version, marked.metadata.resource_version);
    let gone = poll_ready(client.get::<SeiNode>(NS, "n")).expect("a store read does not wait");
    assert!(matches!(gone, Err(sei_operator_core::cluster::ClusterError::NotFound(_))), "{gone:?}");
}

/// A client keeps the SeiNodes it decoded, from gets and lists alike, only while the stored node is unchanged:
/// after a status edit both read the edit, equal to what a client that never read the node decodes.
#[test]
fn a_client_rereads_a_node_it_decoded_once_the_node_changes() {
    use sei_operator_core::api::{SeiNodePhase, SeiNodeStatus};
    let world = world(1);
    world.create(&sei_node("n")).unwrap();
    let client = world.cluster();
    let get = |client: &sei_sim::operator_host::cluster::SimCluster| {
        poll_ready(client.get::<SeiNode>(NS, "n")).expect("a store read does not wait").unwrap()
    };
    let list = |client: &sei_sim::operator_host::cluster::SimCluster| {
        poll_ready(client.list::<SeiNode>(NS, &Default::default())).expect("a store read does not wait").unwrap()
    };
    let first = get(&client);
    let listed = list(&client);
    assert_eq!(listed, vec![std::sync::Arc::new(first.clone())], "a list hands out the node a get decoded");
    let shared = poll_ready(client.get_shared::<SeiNode>(NS, "n")).expect("a store read does not wait").unwrap();
    assert!(std::sync::Arc::ptr_eq(&listed[0], &shared), "shared, as the world decoded it: not a copy");
    let edited = world
        .edit_status::<SeiNode>(NS, "n", |n| {
            n.status = Some(SeiNodeStatus { phase: Some(SeiNodePhase::Running), ..Default::default() });
        })
        .unwrap();
    let listed = list(&client);
    assert_eq!(listed, vec![std::sync::Arc::new(edited.clone())], "the edit, as stored");
    assert_ne!(listed[0].metadata.resource_version, first.metadata.resource_version);
    assert_eq!(get(&client), edited);
    assert_eq!(get(&world.cluster()), edited, "what a client that never read it decodes");
}

/// A shared read is the same read as a get (the same answer, the edit once there is one), and hands out the
/// object the world decoded instead of a copy of it.
#[test]
fn a_shared_read_answers_as_a_get_without_copying() {
    use sei_operator_core::api::{SeiNodePhase, SeiNodeStatus};
    use std::sync::Arc;
    let world = world(1);
    world.create(&sei_node("n")).unwrap();
    let client = world.cluster();
    let shared = || poll_ready(client.get_shared::<SeiNode>(NS, "n")).expect("a store read does not wait").unwrap();
    let first = shared();
    assert_eq!(*first, poll_ready(client.get::<SeiNode>(NS, "n")).expect("a store read does not wait").unwrap());
    assert!(Arc::ptr_eq(&first, &shared()), "the same decoded object, not a copy");
    let edited = world
        .edit_status::<SeiNode>(NS, "n", |n| {
            n.status = Some(SeiNodeStatus { phase: Some(SeiNodePhase::Running), ..Default::default() });
        })
        .unwrap();
    assert_eq!(*shared(), edited, "the edit, as stored");
    let missing = poll_ready(client.get_shared::<SeiNode>(NS, "absent")).expect("a store read does not wait");
    assert!(matches!(missing, Err(sei_operator_core::cluster::ClusterError::NotFound(_))), "{missing:?}");
}

/// A write answers the object as stored, shared as reads hand it out: the next read of that version is the
/// answer itself, not another decode or a copy of it.
#[test]
fn a_write_answers_the_stored_object_shared_with_the_next_read() {
    use sei_operator_core::api::{SeiNodePhase, SeiNodeStatus};
    use std::sync::Arc;
    let world = world(1);
    let client = world.cluster();
    let created = poll_ready(client.create(&sei_node("n"))).expect("a store write does not wait").unwrap();
    let read = || poll_ready(client.get_shared::<SeiNode>(NS, "n")).expect("a store read does not wait").unwrap();
    assert!(Arc::ptr_eq(&created, &read()), "the created node, as the next read decodes it");
    let mut running = SeiNode::clone(&created);
    running.status = Some(SeiNodeStatus { phase: Some(SeiNodePhase::Running), ..Default::default() });
    let written = poll_ready(client.replace_status(&running)).expect("a store write does not wait").unwrap();
    assert_eq!(written.status, running.status, "the status written");
    assert_ne!(written.metadata.resource_version, created.metadata.resource_version, "a new version");
    assert!(Arc::ptr_eq(&written, &read()), "the stored status write, as the next read decodes it");
}

/// Every kind a client reads is shared at a version, not only the ones read on every reconcile: a Service read
/// twice is one decoded object, and a client reads the edit once the Service changes.
#[test]
fn a_client_shares_any_kind_it_read_at_the_same_version() {
    use k8s_openapi::api::core::v1::Service;
    use std::sync::Arc;
    let world = world(1);
    world.create(&headless_service("n")).unwrap();
    let client = world.cluster();
    let read = || poll_ready(client.get_shared::<Service>(NS, "n")).expect("a store read does not wait").unwrap();
    let first = read();
    assert!(Arc::ptr_eq(&first, &read()), "the same decoded Service, not another decode");
    let edited = world
        .edit::<Service>(NS, "n", |s| {
            s.metadata.labels.get_or_insert_with(Default::default).insert("edited".into(), "yes".into());
        })
        .unwrap();
    let after = read();
    assert_eq!(*after, edited, "the edit, as stored");
    assert!(!Arc::ptr_eq(&first, &after), "a new version is decoded again");
}
