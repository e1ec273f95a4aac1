//! Plans: what they are made of, how they are built for each strategy and for a node's initialization, and how
//! they are executed one step per reconcile.

pub mod builder;
pub mod executor;
pub mod ids;
pub mod init_plan;
pub mod params;
pub mod rollout_plan;
pub mod task_type;

pub use builder::{PlanBuilder, PlanError};
pub use init_plan::init_plan;
pub use rollout_plan::{RolloutPlanInput, rollout_plan};
pub use task_type::TaskType;
