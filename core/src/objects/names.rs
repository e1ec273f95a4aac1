//! Names of the objects the operator creates, derived from their owners' names: one definition, used by the
//! controllers, the tasks and the simulator's checks alike.

/// Child SeiNode `ordinal` of a deployment's original set: `<deployment>-<ordinal>`.
pub fn child_node(deployment: &str, ordinal: u32) -> String {
    format!("{deployment}-{ordinal}")
}

/// Entrant SeiNode `ordinal` created by the rollout started at deployment generation `generation`:
/// `<deployment>-g<generation>-<ordinal>`.
pub fn entrant_node(deployment: &str, generation: i64, ordinal: u32) -> String {
    format!("{deployment}-g{generation}-{ordinal}")
}

/// Node `ordinal` of the set created at `set_generation` (0: the deployment's first set).
pub fn set_node(deployment: &str, set_generation: i64, ordinal: u32) -> String {
    if set_generation == 0 {
        child_node(deployment, ordinal)
    } else {
        entrant_node(deployment, set_generation, ordinal)
    }
}

/// The set generation a node named `node` would have among `deployment`'s sets: 0 for `<deployment>-<ordinal>`,
/// `N` for `<deployment>-g<N>-<ordinal>`; `None` for a name no set of `deployment` gives. The inverse of
/// [`set_node`]: unambiguous because a deployment name cannot end in `-g<digits>` (the CRD refuses it, see
/// [`is_reserved_deployment_name`]).
pub fn set_generation_of(deployment: &str, node: &str) -> Option<i64> {
    let rest = node.strip_prefix(deployment)?.strip_prefix('-')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match rest.split_once('-') {
        None => digits(rest).then_some(0),
        Some((set, ordinal)) => {
            let generation = set.strip_prefix('g').filter(|g| digits(g))?;
            digits(ordinal).then(|| generation.parse().ok()).flatten().filter(|g| *g > 0)
        }
    }
}

/// Whether a deployment of this name would give a node a name that another deployment's entrants take: the
/// first node of a deployment `rpc-g2` is `rpc-g2-0`, which is also the first entrant of `rpc`'s rollout at
/// generation 2. Such names end in `-g<digits>`; the CRD refuses them (see `SeiNodeDeployment`'s CEL rule).
pub fn is_reserved_deployment_name(name: &str) -> bool {
    name.rsplit_once("-g").is_some_and(|(_, tail)| !tail.is_empty() && tail.bytes().all(|b| b.is_ascii_digit()))
}

/// The CEL form of [`is_reserved_deployment_name`], for the CRD's rule on `metadata.name`.
pub const RESERVED_DEPLOYMENT_NAME_PATTERN: &str = "-g[0-9]+$";

/// The longest SeiNode name whose children the API server accepts and whose pods the StatefulSet controller can
/// create: the pods' `controller-revision-hash` label is `<node>-<hash>`, the hash up to 10 characters
/// (kubernetes `pkg/controller/history/controller_history.go`, `ControllerRevisionName`, a label value of 63
/// characters at most); `<node>-bootstrap` (Job, Service) fits too. The SeiNode CRD refuses longer names.
pub const MAX_NODE_NAME: usize = 52;

/// The longest SeiNodeDeployment name: its entrants `<deployment>-g<generation>-<ordinal>` must fit
/// [`MAX_NODE_NAME`] up to a generation of 7 digits and an ordinal of 2 (replicas are at most 100). The
/// SeiNodeDeployment CRD refuses longer names.
pub const MAX_DEPLOYMENT_NAME: usize = MAX_NODE_NAME - "-g".len() - 7 - "-".len() - 2;

/// The Service in front of a deployment's active nodes.
pub fn deployment_service(deployment: &str) -> String {
    deployment.to_owned()
}

/// A node's StatefulSet and its headless Service share the node's name.
pub fn node_workload(node: &str) -> String {
    node.to_owned()
}

/// A node's pod: its StatefulSet's only ordinal.
pub fn node_pod(node: &str) -> String {
    format!("{}-0", node_workload(node))
}

/// A node's data volume: the claim the StatefulSet's `data` volumeClaimTemplate names for ordinal 0, created
/// ahead of the StatefulSet when a bootstrap Job must fill it first (the StatefulSet then adopts it).
pub fn node_volume(node: &str) -> String {
    format!("data-{node}-0")
}

/// A node's bootstrap Job and its Service.
pub fn bootstrap(node: &str) -> String {
    format!("{node}-bootstrap")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_generation_of_inverts_set_node() {
        for generation in [0, 1, 2, 17] {
            for ordinal in [0, 3, 10] {
                let node = set_node("rpc", generation, ordinal);
                assert_eq!(set_generation_of("rpc", &node), Some(generation), "{node}");
            }
        }
        for foreign in
            ["rpc", "rpc-", "rpc-x", "rpc-g2", "rpc-g-0", "rpc-g0-0", "rpc-g2-x", "rpcx-0", "other-0", "rpc-0-0"]
        {
            assert_eq!(set_generation_of("rpc", foreign), None, "{foreign}");
        }
    }

    #[test]
    fn the_longest_names_leave_room_for_every_child() {
        assert_eq!(MAX_DEPLOYMENT_NAME, 40);
        let deployment = "d".repeat(MAX_DEPLOYMENT_NAME);
        assert_eq!(entrant_node(&deployment, 9_999_999, 99).len(), MAX_NODE_NAME);
        let node = "n".repeat(MAX_NODE_NAME);
        // The revision label `<node>-<hash>`, its hash up to 10 characters, and the bootstrap Job's name.
        assert_eq!(node.len() + 1 + 10, 63);
        assert!(bootstrap(&node).len() <= 63);
    }

    #[test]
    fn names_ending_in_a_set_generation_are_reserved_and_only_they_could_collide() {
        assert!(is_reserved_deployment_name("rpc-g2"));
        assert!(is_reserved_deployment_name("a-b-g10"));
        for allowed in ["rpc", "rpc-2", "rpc-g", "rpc-gx", "rpc-g2x", "pacific-1", "g2", "rpcg2"] {
            assert!(!is_reserved_deployment_name(allowed), "{allowed}");
        }
        // The collision the rule exists for: `rpc`'s entrant and the first node of `rpc-g2`.
        assert_eq!(entrant_node("rpc", 2, 0), child_node("rpc-g2", 0));
        // Names that are allowed never collide: a node name parses back to one deployment only.
        let names = ["rpc", "rpc-2", "rpc-g", "rpc-gx"];
        for a in names {
            for b in names.iter().filter(|b| **b != a) {
                for (generation, ordinal) in [(0, 0), (0, 2), (2, 0), (3, 1)] {
                    let node = set_node(a, generation, ordinal);
                    assert_eq!(set_generation_of(b, &node), None, "{a}'s {node} parses as {b}'s");
                }
            }
        }
    }
}
