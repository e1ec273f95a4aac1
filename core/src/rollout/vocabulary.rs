//! The condition types, reasons and event reasons of a SeiNodeDeployment, exactly as docs/design.md §5 names them. The
//! vocabulary stays small: the strategy lives in `status.rollout.strategy`, not in new condition types.

/// Condition: how many of the active set's nodes run.
pub const NODES_READY: &str = "NodesReady";
/// Condition: a plan is Active.
pub const PLAN_IN_PROGRESS: &str = "PlanInProgress";
/// Condition: True exactly while `status.rollout` is set.
pub const ROLLOUT_IN_PROGRESS: &str = "RolloutInProgress";

/// RolloutInProgress reason: a rollout started because the template hash moved.
pub const REASON_TEMPLATE_CHANGED: &str = "TemplateChanged";
/// RolloutInProgress reason: the rollout is older than the stall threshold with nodes not ready.
pub const REASON_STALLED: &str = "Stalled";
/// RolloutInProgress reason: a height-gated InPlace rollout holds its image back for nodes still below the block
/// before the upgrade height — waiting as asked, not stalled.
pub const REASON_AWAITING_UPGRADE_HEIGHT: &str = "AwaitingUpgradeHeight";
/// RolloutInProgress reason: a height-gated InPlace rollout has nodes the gate cannot be right for (past it on
/// their old binary, or stopped for an upgrade at another height): they are never switched by it.
pub const REASON_UPGRADE_HEIGHT_MISMATCH: &str = "UpgradeHeightMismatch";
/// RolloutInProgress reason: the last rollout completed.
pub const REASON_ROLLOUT_COMPLETE: &str = "RolloutComplete";
/// RolloutInProgress reason: the last rollout failed.
pub const REASON_ROLLOUT_FAILED: &str = "RolloutFailed";
/// RolloutInProgress reason: the template went back to the incumbents' before the traffic switch; the rollout
/// ended with its entrants deleted (event RolloutSuperseded).
pub const REASON_ROLLOUT_CANCELED: &str = "RolloutCanceled";
/// RolloutInProgress reason: no rollout has run since the baseline was recorded.
pub const REASON_NO_ROLLOUT: &str = "NoRollout";
/// RolloutInProgress reason: the spec names no strategy the operator can run.
pub const REASON_INVALID_UPDATE_STRATEGY: &str = "InvalidUpdateStrategy";

/// PlanInProgress / NodesReady reasons.
pub const REASON_PLAN_ACTIVE: &str = "PlanActive";
pub const REASON_NO_ACTIVE_PLAN: &str = "NoActivePlan";
pub const REASON_ALL_NODES_READY: &str = "AllNodesReady";
pub const REASON_NODES_NOT_READY: &str = "NodesNotReady";
/// NodesReady reason: a node name the deployment wants is held by an object it does not control (event
/// NodeNameCollision).
pub const REASON_NODE_NAME_COLLISION: &str = "NodeNameCollision";

/// Event: a rollout started.
pub const EVENT_ROLLOUT_STARTED: &str = "RolloutStarted";
/// Event: an active rollout was replaced by one for a newer spec.
pub const EVENT_ROLLOUT_SUPERSEDED: &str = "RolloutSuperseded";
/// Event: a rollout completed.
pub const EVENT_ROLLOUT_COMPLETE: &str = "RolloutComplete";
/// Warning event: a rollout failed.
pub const EVENT_ROLLOUT_FAILED: &str = "RolloutFailed";
/// Warning event: a rollout stalled (emitted once per rollout).
pub const EVENT_ROLLOUT_STALLED: &str = "RolloutStalled";
/// Warning event: an empty `updateStrategy.type` was treated as InPlace.
pub const EVENT_UPDATE_STRATEGY_DEFAULTED: &str = "UpdateStrategyDefaulted";
/// Warning event: the spec names no strategy the operator can run.
pub const EVENT_INVALID_UPDATE_STRATEGY: &str = "InvalidUpdateStrategy";
/// Warning event: a node name the deployment wants is held by an object it does not control.
pub const EVENT_NODE_NAME_COLLISION: &str = "NodeNameCollision";
/// Event: orphaned nodes labelled with the deployment's name (left by a `Retain` delete) were adopted.
pub const EVENT_NODES_ADOPTED: &str = "NodesAdopted";
