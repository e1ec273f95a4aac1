//! The leader-election invariants fail on the states they forbid (`sei_sim::operator_host::replicas`): a sidecar task started
//! by two replicas, two plans stored by two replicas for one rollout, an object deleted by a replica after its
//! term ended or by two replicas.

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use sei_operator_core::api::{Plan, PlanPhase, RolloutStatus, SeiNodeDeployment, Strategy, Time};
use sei_operator_core::cluster::{Cluster, ClusterError};
use sei_operator_core::manifest::{Manifest, ManifestValidator};
use sei_operator_core::sidecar::wire::TaskRequest;
use sei_operator_core::sidecar::{PodAddress, Sidecar};
use sei_sim::harness::invariants::{NO_WORK_STARTED_TWICE, SINGLE_WRITER};
use sei_sim::harness::world::poll_ready;
use sei_sim::operator_host::cluster::SimCluster;
use sei_sim::operator_host::replicas::{LEASE_NAME, LEASE_NAMESPACE, NO_PLAN_FORKED, NOTHING_DELETED_TWICE};
use sei_sim::{SimError, World};
use uuid::Uuid;

use crate::common::*;

/// A world whose operator runs as two replicas (their hosts not started: the tests call as them).
fn two_replicas(seed: u64) -> World {
    let world = world(seed);
    world.modify(|state| state.replicas.list = vec![Default::default(); 2]);
    world
}

fn replica(world: &World, index: usize) -> SimCluster {
    world.operator_cluster().for_replica(index)
}

fn call<T>(future: impl std::future::Future<Output = Result<T, ClusterError>>) -> Result<T, ClusterError> {
    poll_ready(future).expect("a store call with no latency completes")
}

fn violated(world: &mut World) -> &'static str {
    match world.run_for(secs(5)) {
        Err(SimError::Invariant { violation, .. }) => violation.invariant,
        other => panic!("expected a violation, got {other:?}"),
    }
}

/// Replica `index` takes the Lease (creating it if need be).
fn take_lease(world: &World, index: usize) {
    let client = replica(world, index);
    let holder = Some(sei_sim::operator_host::replicas::host_name(index));
    match call(client.get::<Lease>(LEASE_NAMESPACE, LEASE_NAME)) {
        Ok(mut lease) => {
            lease.spec = Some(LeaseSpec { holder_identity: holder, ..LeaseSpec::default() });
            call(client.replace(&lease)).unwrap();
        }
        Err(_) => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(LEASE_NAME.into()),
                    namespace: Some(LEASE_NAMESPACE.into()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec { holder_identity: holder, ..LeaseSpec::default() }),
            };
            call(client.create(&lease)).unwrap();
        }
    }
}

/// A Service (a kind the operator may delete), held by a finalizer if asked.
fn service(name: &str, finalizer: bool) -> Service {
    Service {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(NS.into()),
            finalizers: finalizer.then(|| vec!["example.com/hold".into()]),
            ..ObjectMeta::default()
        },
        ..Service::default()
    }
}

#[test]
fn a_deposed_replica_must_not_delete_what_was_made_after_its_term() {
    let mut world = two_replicas(60);
    take_lease(&world, 0);
    world.run_for(secs(1)).unwrap();
    take_lease(&world, 1);
    // Made after replica 0 lost the Lease: it cannot have been replica 0's to delete.
    world.create(&service("made-later", false)).unwrap();
    call(replica(&world, 0).delete::<Service>(NS, "made-later")).ok();
    assert_eq!(violated(&mut world), NOTHING_DELETED_TWICE);
}

#[test]
fn two_replicas_must_not_both_delete_one_object() {
    let mut world = two_replicas(61);
    take_lease(&world, 0);
    // Held by a finalizer, the object outlives the first delete.
    world.create(&service("held", true)).unwrap();
    call(replica(&world, 0).delete::<Service>(NS, "held")).ok();
    world.run_for(secs(1)).unwrap();
    take_lease(&world, 1);
    call(replica(&world, 1).delete::<Service>(NS, "held")).ok();
    assert_eq!(violated(&mut world), NOTHING_DELETED_TWICE);

    // The leader deleting what it made, in its own term, is what leaders do.
    let mut fine = two_replicas(62);
    take_lease(&fine, 0);
    fine.create(&service("mine", false)).unwrap();
    call(replica(&fine, 0).delete::<Service>(NS, "mine")).ok();
    fine.run_for(secs(5)).unwrap();
}

fn fixture(name: &str) -> SeiNodeDeployment {
    let text = std::fs::read_to_string(format!("{}/../fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    match ManifestValidator::new().unwrap().admit_yaml(&text).unwrap().remove(0) {
        Manifest::SeiNodeDeployment(deployment) => *deployment,
        other => panic!("not a deployment: {other:?}"),
    }
}

/// Replica `index` stores a rollout to `r2` with plan `plan` on deployment `name`.
fn store_plan(world: &World, index: usize, name: &str, plan: &str) {
    let client = replica(world, index);
    let mut deployment: SeiNodeDeployment = call(client.get(NS, name)).unwrap();
    let now = world.inspect(|w| w.timestamp());
    let status = deployment.status.get_or_insert_default();
    status.rollout = Some(RolloutStatus::new(Strategy::BlueGreen, "r2", Time(now), 2));
    status.plan = Some(Plan {
        id: plan.into(),
        phase: PlanPhase::Active,
        tasks: Vec::new(),
        failed_task_index: None,
        failed_task_detail: None,
    });
    call(client.replace_status(&deployment)).unwrap();
}

#[test]
fn two_replicas_must_not_store_two_plans_for_one_rollout() {
    let mut world = two_replicas(63);
    let name = world.create(&fixture("bluegreen.yaml")).unwrap().metadata.name.unwrap();
    store_plan(&world, 0, &name, "plan-a");
    store_plan(&world, 1, &name, "plan-b");
    assert_eq!(violated(&mut world), NO_PLAN_FORKED);
}

#[test]
fn two_replicas_must_not_start_the_same_sidecar_work_twice() {
    let mut world = world(64);
    world.create(&headless_service("n")).unwrap();
    world.create(&statefulset("n", "sei:v1", true, "OrderedReady")).unwrap();
    world.run_until("sidecar up", secs(60), |w| w.pod(NS, "n-0").is_some_and(|p| p.sidecar.is_some())).unwrap();
    let mut submit = |caller: &str, id: u128| {
        let request = TaskRequest { id: Some(Uuid::from_u128(id)), type_: "config-apply".into(), params: None };
        let address = PodAddress::for_node(NS, "n", 7777);
        world.probe(caller, move |s| async move { s.submit_task(&address, &request).await }).map(|_| ())
    };
    submit("operator:SeiNode", 10).unwrap();
    // The other replica, with no memory of the first's submission, starts the same work under its own id.
    let invariant = match submit("operator-1:SeiNode", 11) {
        Err(SimError::Invariant { violation, .. }) => violation.invariant,
        _ => violated(&mut world),
    };
    assert_eq!(invariant, NO_WORK_STARTED_TWICE);
}

#[test]
fn only_the_sei_node_controller_of_any_replica_may_call_sidecars() {
    let mut world = world(65);
    world.create(&headless_service("n")).unwrap();
    world.create(&statefulset("n", "sei:v1", true, "OrderedReady")).unwrap();
    world.run_until("sidecar up", secs(60), |w| w.pod(NS, "n-0").is_some_and(|p| p.sidecar.is_some())).unwrap();
    let mut status = |caller: &str| {
        let address = PodAddress::for_node(NS, "n", 7777);
        world.probe(caller, move |s| async move { s.status(&address).await.map(|_| ()) })
    };
    // The second replica's node controller is a sidecar writer like the first's ...
    assert!(status("operator-1:SeiNode").is_ok());
    // ... and its deployment controller is not.
    let invariant = match status("operator-1:SeiNodeDeployment") {
        Err(SimError::Invariant { violation, .. }) => violation.invariant,
        _ => violated(&mut world),
    };
    assert_eq!(invariant, SINGLE_WRITER);
}
