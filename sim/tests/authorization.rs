//! The RBAC manifests in `deploy/` grant exactly what the operator uses. Too little: the simulated API server
//! authorizes every call of the operator against them and answers 403 as a cluster would, and the invariant
//! `operator-calls-authorized` fails any scenario whose operator calls something they do not grant. Too much:
//! the test below runs scenarios that between them reach every kind of call the reconcilers make, adds what only
//! the production shell does (`sei_operator_core::permissions::SHELL_PERMISSIONS`), and fails on any granted
//! permission nothing used.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use sei_operator_core::permissions::{Permission, shell_permissions};
use sei_sim::apiserver::authorization::Authorizer;
use sei_sim::scenario;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Between them: a node's whole init plan with a bootstrap Job (HardFork; one still running when polled, whose
/// pod is looked up to keep its sidecar marked ready), InPlace re-templating, a BlueGreen switch and teardown,
/// both deletion policies, and events.
const COVERING: &[&str] = &[
    "hardfork-happy-path.yaml",
    "hardfork-started-before-h-1.yaml",
    "inplace-happy-path.yaml",
    "bluegreen-switch-after-catch-up.yaml",
    "delete-policy-delete.yaml",
    "delete-policy-retain.yaml",
];

#[test]
fn deploy_grants_no_permission_nothing_uses() {
    let authorizer = Authorizer::operator().expect("deploy/ reads as RBAC");
    let mut used: BTreeSet<Permission> = shell_permissions().collect();
    for file in COVERING {
        let path = root().join("scenarios").join(file);
        let scenario = scenario::load(&path).expect("loads");
        let outcome = scenario::run(&scenario, None, &root());
        assert!(outcome.passed(), "{file}: {:?}", outcome.failure);
        used.extend(outcome.permissions_used);
    }
    let unused: Vec<String> = authorizer.granted().difference(&used).map(ToString::to_string).collect();
    assert!(unused.is_empty(), "deploy/ grants what nothing uses (remove it, or name its use): {unused:?}");
    let ungranted: Vec<String> = used.difference(&authorizer.granted()).map(ToString::to_string).collect();
    assert!(ungranted.is_empty(), "the production shell needs what deploy/ does not grant: {ungranted:?}");
}

#[test]
fn a_call_deploy_does_not_grant_is_refused_as_the_api_server_refuses_it() {
    use k8s_openapi::api::core::v1::PersistentVolumeClaim;
    use sei_operator_core::cluster::{Cluster, ClusterError};

    let world = sei_sim::World::builder(1).build().expect("world");
    let operator = world.operator_cluster();
    let refused = poll(operator.delete::<PersistentVolumeClaim>("sei", "data-n-0"));
    let Err(ClusterError::Forbidden { message, .. }) = refused else { panic!("expected 403, got {refused:?}") };
    assert!(message.contains("cannot delete resource \"persistentvolumeclaims\""), "{message}");
    let violations = world.inspect(|state| state.ledger.write_violations.clone());
    assert_eq!(violations.iter().map(|v| v.invariant).collect::<Vec<_>>(), ["operator-calls-authorized"]);
    // The harness is an administrator, as a user with kubectl is: not authorized, not judged.
    assert!(!matches!(
        poll(world.cluster().delete::<PersistentVolumeClaim>("sei", "x")),
        Err(ClusterError::Forbidden { .. })
    ));
}

fn poll<T>(future: impl std::future::Future<Output = T>) -> T {
    let mut future = std::pin::pin!(future);
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    // The operator's client yields once per call (its API round trip); with no latency it is ready after that.
    for _ in 0..10 {
        if let std::task::Poll::Ready(value) = future.as_mut().poll(&mut context) {
            return value;
        }
    }
    panic!("a store call with no latency completes after its round trip's yield")
}

/// The operator adopts orphans only of kinds whose `ownerReferences` it may rewrite: the garbage collector's
/// admission plugin wants delete on the object (and the rewrite is an update). Adopting any other kind would be
/// refused with 403 on a real cluster and the child would wait forever.
#[test]
fn every_kind_the_operator_adopts_is_one_deploy_lets_it_update_and_delete() {
    let authorizer = Authorizer::operator().expect("deploy/ reads as RBAC");
    for (group, resource) in sei_operator_core::cluster::ADOPTABLE {
        for verb in ["update", "delete"] {
            let permission = Permission::new(group, resource, verb);
            assert!(authorizer.allows(&permission, "sei", "any"), "deploy/ does not grant {permission}");
        }
    }
    // And the kinds it does not adopt are exactly those it could not.
    for (group, resource, verb) in [("apps", "statefulsets", "delete"), ("", "persistentvolumeclaims", "delete")] {
        assert!(!authorizer.allows(&Permission::new(group, resource, verb), "sei", "any"));
        assert!(!sei_operator_core::cluster::ADOPTABLE.contains(&(group, resource)));
    }
}

/// An orphaned StatefulSet with a node's labels (`kubectl delete seinode --cascade=orphan` leaves one) is not
/// adopted: the rewrite of its ownerReferences needs delete on it, which deploy/ does not grant, so a real API
/// server answers 403 — and a node retrying that would wait forever. It is reported as a stranger instead.
#[test]
fn an_orphan_of_a_kind_the_operator_may_not_delete_is_a_stranger_not_adopted() {
    use k8s_openapi::api::apps::v1::StatefulSet;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
    use sei_operator_core::cluster::{ChildHolder, Cluster, ensure_child};

    let world = sei_sim::World::builder(1).build().expect("world");
    let labels = std::collections::BTreeMap::from([("sei.io/node".to_owned(), "explorer".to_owned())]);
    let orphan = StatefulSet {
        metadata: ObjectMeta {
            name: Some("explorer".into()),
            namespace: Some("sei".into()),
            labels: Some(labels.clone()),
            ..Default::default()
        },
        ..Default::default()
    };
    poll(world.cluster().create(&orphan)).expect("the harness creates the orphan");
    let mut desired = orphan.clone();
    desired.metadata.owner_references = Some(vec![OwnerReference {
        api_version: "sei.io/v1alpha1".into(),
        kind: "SeiNode".into(),
        name: "explorer".into(),
        uid: "uid-explorer".into(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }]);
    let holder = poll(ensure_child(&world.operator_cluster(), &desired));
    assert!(matches!(holder, Ok(ChildHolder::Stranger { .. })), "{holder:?}");
    let violations = world.inspect(|state| state.ledger.write_violations.clone());
    assert!(violations.is_empty(), "nothing refused: {violations:?}");
    let stored: StatefulSet = poll(world.cluster().get("sei", "explorer")).expect("still there");
    assert_eq!(stored.metadata.owner_references, None, "never touched");
}
