//! The RBAC manifests in `deploy/` grant exactly what the operator uses. Too little: the simulated API server
//! authorizes every call of the operator against them and answers 403 as a cluster would, and the invariant
//! `operator-calls-authorized` fails any scenario whose operator calls something they do not grant. Too much:
//! the test below runs scenarios that between them reach every kind of call the reconcilers make, adds what only
//! the production shell does (`sei_operator::permissions::SHELL_PERMISSIONS`), and fails on any granted
//! permission nothing used.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use sei_operator::permissions::{Permission, shell_permissions};
use sei_sim::authorization::Authorizer;
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
    use sei_operator::cluster::{Cluster, ClusterError};

    let world = sei_sim::World::builder(1).build().expect("world");
    let operator = world.operator_cluster();
    let refused = poll(operator.delete::<PersistentVolumeClaim>("sei", "data-n-0"));
    let Err(ClusterError::Forbidden { message, .. }) = refused else { panic!("expected 403, got {refused:?}") };
    assert!(message.contains("cannot delete resource \"persistentvolumeclaims\""), "{message}");
    let violations = world.inspect(|state| state.write_violations.clone());
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
