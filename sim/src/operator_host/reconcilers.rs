//! The operator's two reconcilers on the simulated operator host: the same `reconcile_deployment` and
//! `reconcile_node` that production runs under kube-runtime, here on the simulator's `Cluster`, `Sidecar` and
//! `Clock`. Nothing about rollouts is decided here.

use std::sync::{Arc, LazyLock};

use sei_operator_core::cluster::ObjectRef;
use sei_operator_core::controller::{
    Action, DeploymentContext, NodeContext, ReconcileError, reconcile_deployment, reconcile_node,
};
use sei_operator_core::node_defaults::NodeDefaults;
use sei_operator_core::objects::desired::DesiredStatefulSets;
use sei_operator_core::rollout::RolloutConfig;

use crate::operator_host::{OperatorContext, Reconciler, Requeue};

/// The simulated operator runs with the built-in node defaults, as `sei-operator run` without `--node-defaults`.
pub(crate) static NODE_DEFAULTS: LazyLock<Arc<NodeDefaults>> = LazyLock::new(|| Arc::new(NodeDefaults::built_in()));

/// Both controllers of the operator, as one reconciler of both kinds. Made anew at each start of the operator's
/// process, as production's in-memory state is.
#[derive(Clone, Debug, Default)]
pub struct SeiOperator {
    pub config: RolloutConfig,
    /// The process's memo of desired StatefulSets (production's `NodeContext` holds one too).
    pub desired: Arc<DesiredStatefulSets>,
}

impl Reconciler for SeiOperator {
    fn kinds(&self) -> Vec<String> {
        vec!["SeiNodeDeployment".into(), "SeiNode".into()]
    }

    fn filters_triggers(&self) -> bool {
        true
    }

    async fn reconcile(&self, ctx: &OperatorContext, key: &ObjectRef) -> Requeue {
        // Each controller's reconcile boxed: held inline, both (23 KB and 19 KB) took room side by side in this
        // future, and the host copied all 47 KB of it into every spawned task.
        let result = match key.kind.as_str() {
            "SeiNodeDeployment" => {
                // The deployment controller gets no sidecar client: it never calls one.
                let deployment =
                    DeploymentContext { cluster: ctx.cluster.clone(), clock: ctx.clock.clone(), config: self.config };
                Box::pin(reconcile_deployment(&deployment, &key.namespace, &key.name)).await
            }
            "SeiNode" => {
                let node = NodeContext {
                    cluster: ctx.cluster.clone(),
                    sidecar: ctx.sidecar.clone(),
                    clock: ctx.clock.clone(),
                    defaults: Arc::clone(&NODE_DEFAULTS),
                    desired: Arc::clone(&self.desired),
                };
                Box::pin(reconcile_node(&node, &key.namespace, &key.name)).await
            }
            _ => return Requeue::Done,
        };
        requeue(result)
    }
}

fn requeue(result: Result<Action, ReconcileError>) -> Requeue {
    match result {
        Ok(Action::Requeue(after)) => Requeue::After(after),
        Ok(Action::AwaitChange) => Requeue::Done,
        Err(error) => Requeue::Error(error),
    }
}
