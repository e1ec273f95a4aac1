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
