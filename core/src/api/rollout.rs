//! `status.rollout`: the rollout state machine of a SeiNodeDeployment, one type for every strategy.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{SeiNodePhase, Strategy, Time};

/// A rollout in progress. `RolloutInProgress` is True exactly while this is set.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutStatus {
    pub strategy: Strategy,
    /// The template hash this rollout moves the deployment to.
    pub target_hash: String,
    #[serde(serialize_with = "super::timestamp::time")]
    pub started_at: Time,
    /// Deployment generation the rollout targets; BlueGreen / HardFork entrants are named after it. Above the
    /// deployment's generation when a set of that number exists already (nodes adopted from a deployment of the
    /// same name, re-created after a `Retain` delete, whose generation started again at 1).
    #[serde(default)]
    pub generation: i64,
    /// Per-node convergence.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<RolloutNodeStatus>,
    /// BlueGreen / HardFork: the nodes serving before the rollout.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub incumbent_nodes: Vec<String>,
    /// BlueGreen / HardFork: the nodes the rollout creates.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entrant_nodes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incumbent_revision: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrant_revision: Option<String>,
    /// HardFork: the image the incumbents run; entrants bootstrap with it to haltHeight-1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incumbent_image: Option<String>,
    /// HardFork: the upgrade height the plan bakes in (entrants bootstrap to the block before it). Part of the
    /// rollout's target: a spec that names another height supersedes the rollout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub halt_height: Option<i64>,
    /// InPlace with a height gate: the upgrade height H. Each node gets the target image once it has committed
    /// H-1 (or stopped at H with the old binary's upgrade panic), not before. Part of the rollout's target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade_height: Option<i64>,
    /// Gated: when the operator first saw every node at or past the gate. A rollout waiting for its chain is not
    /// stalled; its stall threshold counts from here.
    #[serde(default, skip_serializing_if = "Option::is_none", serialize_with = "super::timestamp::optional_time")]
    pub gate_reached_at: Option<Time>,
}

impl RolloutStatus {
    /// A rollout just detected: no node sets yet (the strategy fills in what it needs).
    pub fn new(strategy: Strategy, target_hash: impl Into<String>, started_at: Time, generation: i64) -> Self {
        RolloutStatus {
            strategy,
            target_hash: target_hash.into(),
            started_at,
            generation,
            nodes: Vec::new(),
            incumbent_nodes: Vec::new(),
            entrant_nodes: Vec::new(),
            incumbent_revision: None,
            entrant_revision: None,
            incumbent_image: None,
            halt_height: None,
            upgrade_height: None,
            gate_reached_at: None,
        }
    }

    /// What the rollout's plan id is derived from besides its owner and strategy: the target hash, and for a
    /// HardFork the halt height its plan bakes in — two plans for one template at two heights are two plans.
    pub fn plan_target(&self) -> String {
        match (self.strategy, self.halt_height, self.upgrade_height) {
            (Strategy::HardFork, Some(height), _) => format!("{}@{height}", self.target_hash),
            (Strategy::InPlace, _, Some(height)) => format!("{}@{height}", self.target_hash),
            _ => self.target_hash.clone(),
        }
    }
}

/// One node's progress in a rollout.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutNodeStatus {
    pub name: String,
    pub ready: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<SeiNodePhase>,
    /// InPlace with a height gate: where the node stands against the gate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate: Option<NodeGate>,
}

/// A node's place against an InPlace rollout's height gate.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum NodeGate {
    /// Below H-1 on the binary it ran before: the new image stays staged.
    Waiting,
    /// Committed H-1, or stopped at H with the old binary's upgrade panic: its spec gets the new image now.
    AtHeight,
    /// Runs the new image.
    Upgraded,
    /// On the binary it ran before, past H-1, or stopped for an upgrade at another height: the gate does not
    /// match the chain, and this node is never switched by it.
    Mismatch,
}
