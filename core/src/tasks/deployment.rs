//! Tasks of SeiNodeDeployment rollout plans: they write SeiNodes and the deployment's Service, never a sidecar.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Service;

use super::{all_done, api_error, params};
use crate::api::{SeiNode, SeiNodeDeployment, SeiNodePhase, Task};
use crate::cluster::{Cluster, ClusterError, OptionalExt};
use crate::objects::children::child_node;
use crate::objects::meta::{LABEL_REVISION, controller_of, is_controlled_by};
use crate::objects::workload::{deployment_service, selected_revision};
use crate::plan::TaskType;
use crate::plan::executor::{Progress, TaskError, TaskRunner};
use crate::plan::params::{
    AwaitNodes, CreateEntrantNodes, RolloutFields, SwitchTraffic, TeardownNodes, UpdateNodeSpecs,
    UpdateNodeSpecsAtHeight,
};
use crate::rollout::gate;

/// Runs a deployment's plan tasks.
pub struct DeploymentTasks<'a, C> {
    pub cluster: &'a C,
    pub deployment: &'a SeiNodeDeployment,
}

impl<C: Cluster> TaskRunner for DeploymentTasks<'_, C> {
    async fn run(&self, task: &Task, task_type: TaskType) -> Result<Progress, TaskError> {
        match task_type {
            TaskType::UpdateNodeSpecs => self.update_node_specs(params(task)?).await,
            TaskType::UpdateNodeSpecsAtHeight => self.update_node_specs_at_height(params(task)?).await,
            TaskType::AwaitSpecUpdate => self.await_nodes(params(task)?, spec_updated).await,
            TaskType::MarkNodesReady => self.await_nodes(params(task)?, marked_ready).await,
            TaskType::CreateEntrantNodes => self.create_entrant_nodes(params(task)?).await,
            TaskType::AwaitNodesRunning => self.await_entrants(params(task)?, |_| true).await,
            TaskType::AwaitNodesCaughtUp => self.await_entrants(params(task)?, caught_up_and_serving).await,
            TaskType::SwitchTraffic => self.switch_traffic(params(task)?).await,
            TaskType::TeardownNodes => self.teardown_nodes(params(task)?).await,
            other => Err(TaskError::Terminal(format!("{} is not a SeiNodeDeployment task", other.as_str()))),
        }
    }
}

/// The node's spec names the target image and its pod runs it — and runs the spec's sidecar image (a rollout
/// field too: a rollout that changes only the sidecar finds every `currentImage` already on target).
fn spec_updated(node: &SeiNode, image: Option<&str>) -> bool {
    let status = node.status.as_ref();
    let current = status.and_then(|s| s.current_image.as_deref());
    let current_sidecar = status.and_then(|s| s.current_sidecar_image.as_deref());
    image.is_none_or(|image| {
        node.spec.image == image
            && current == Some(image)
            && current_sidecar == Some(node.spec.effective_sidecar_image())
    })
}

/// Serving: its pod has run the spec's image while Ready in Kubernetes' sense — `status.currentImage` is set only
/// then — so a Service that selects it has an endpoint for it. A node is Running once its init plan is done,
/// seconds before seid's wrapper starts seid and a readiness probe period or more before its pod is Ready: a
/// traffic switch in that gap (HardFork switches right after this wait) selects pods with no endpoint.
fn serving(node: &SeiNode) -> bool {
    node.status.as_ref().and_then(|s| s.current_image.as_deref()) == Some(node.spec.image.as_str())
}

/// Caught up (seid says it is not catching up) and serving. seid's RPC answers `catching_up: false` before the
/// kubelet's readiness probe on `/lag_status` has passed, so caught up alone is not yet an endpoint.
fn caught_up_and_serving(node: &SeiNode) -> bool {
    node.status.as_ref().and_then(|s| s.catching_up) == Some(false) && serving(node)
}

fn marked_ready(node: &SeiNode, image: Option<&str>) -> bool {
    let status = node.status.as_ref();
    spec_updated(node, image)
        && status.and_then(|s| s.phase) == Some(SeiNodePhase::Running)
        && status.and_then(|s| s.sidecar_ready) == Some(true)
}

/// Whether entrant `name` is done waiting for, as read: Running and `ready`. Failed is terminal. Not found is
/// transient, not a failure: `create-entrant-nodes` created it, often in this very reconcile, and a read from
/// a lagging cache (an API server's watch cache, an informer) may not show it yet. An entrant that was really
/// deleted is made again by the deployment controller (`children::missing_plan_children`) and waited for.
fn entrant_done(name: &str, node: Option<&SeiNode>, ready: fn(&SeiNode) -> bool) -> Result<bool, TaskError> {
    let Some(node) = node else {
        return Err(TaskError::Transient(format!("entrant SeiNode {name} is not visible yet")));
    };
    let status = node.status.as_ref();
    // A node retrying its init plan failed once already: it fails the plan as a Failed one does.
    if status.is_some_and(|s| s.init_failed()) {
        let plan_failure = status
            .and_then(|s| s.plan.as_ref())
            .and_then(|p| p.failed_task_detail.as_ref())
            .map(|f| format!(": task {} failed: {}", f.type_, f.error));
        let condition = status
            .and_then(|s| crate::objects::meta::find_condition(&s.conditions, "Initialized"))
            .filter(|c| c.status == "False")
            .map(|c| format!(": {}", c.message));
        let why = plan_failure.or(condition).unwrap_or_default();
        return Err(TaskError::Terminal(format!("entrant SeiNode {name} failed{why}")));
    }
    match status.and_then(|s| s.phase) {
        Some(SeiNodePhase::Running) => Ok(ready(node)),
        _ => Ok(false),
    }
}

/// Why `node` is not this deployment's: what holds it.
fn held_by_another(node: &SeiNode) -> String {
    let name = node.metadata.name.as_deref().unwrap_or_default();
    let holder = controller_of(&node.metadata)
        .map_or_else(|| "no controller".to_owned(), |owner| format!("{} {}", owner.kind, owner.name));
    format!("SeiNode {name} is held by {holder}, not by this deployment: a name collision; it is never changed")
}

impl<C: Cluster> DeploymentTasks<'_, C> {
    fn namespace(&self) -> &str {
        self.deployment.metadata.namespace.as_deref().unwrap_or_default()
    }

    fn owner_uid(&self) -> &str {
        self.deployment.metadata.uid.as_deref().unwrap_or_default()
    }

    /// SeiNode `name` as stored, whoever holds it.
    async fn stored_node(&self, name: &str) -> Result<Option<Arc<SeiNode>>, TaskError> {
        // Shared: the tasks mostly only look (a copy is made for the one that writes).
        self.cluster.get_shared::<SeiNode>(self.namespace(), name).await.optional().map_err(api_error)
    }

    /// SeiNode `name`, if it exists, as this deployment's node. A node of that name held by another object is a
    /// name collision: never read as ours nor written — waited for (it may be on its way out), the task's error
    /// saying why.
    async fn node(&self, name: &str) -> Result<Option<Arc<SeiNode>>, TaskError> {
        match self.stored_node(name).await? {
            Some(node) if !is_controlled_by(&node.metadata, self.owner_uid()) => {
                Err(TaskError::Transient(format!("{}; waiting for it to go", held_by_another(&node))))
            }
            node => Ok(node),
        }
    }

    /// Writes the rollout fields onto every node at once (a chain upgrade is a coordinated halt; staging it buys
    /// no safety). A node that already carries them is left alone; a missing one is waited for.
    async fn update_node_specs(&self, params: UpdateNodeSpecs) -> Result<Progress, TaskError> {
        let fields = &params.fields;
        self.write_fields(&params.nodes, fields, |node| (!fields.matches(&node.spec)).then_some(fields)).await
    }

    /// The gated `update-node-specs`: each node gets the rollout fields once it has reached the gate, and the
    /// fields it ran before back when it runs the new ones below it (`rollout::gate`). Complete once every node
    /// carries the target.
    async fn update_node_specs_at_height(&self, params: UpdateNodeSpecsAtHeight) -> Result<Progress, TaskError> {
        let (target, previous) = (&params.fields, params.previous.as_ref());
        let write = |node: &SeiNode| gate::fields_to_write(node, params.upgrade_height, target, previous);
        self.write_fields(&params.nodes, target, write).await
    }

    /// Writes onto each of `nodes` the fields `write` picks for it (none: left alone); done once every node
    /// carries `target`. A missing node is waited for.
    async fn write_fields<'f>(
        &self,
        nodes: &[String],
        target: &RolloutFields,
        write: impl Fn(&SeiNode) -> Option<&'f RolloutFields>,
    ) -> Result<Progress, TaskError> {
        let mut done = Vec::new();
        for name in nodes {
            let Some(node) = self.node(name).await? else {
                done.push(false);
                continue;
            };
            match write(&node) {
                Some(fields) => {
                    let mut written = Arc::unwrap_or_clone(node);
                    fields.apply_to(&mut written.spec);
                    self.cluster.replace(&written).await.map_err(api_error)?;
                    done.push(target.matches(&written.spec));
                }
                None => done.push(target.matches(&node.spec)),
            }
        }
        Ok(all_done(done))
    }

    async fn await_nodes(
        &self,
        params: AwaitNodes,
        ready: fn(&SeiNode, Option<&str>) -> bool,
    ) -> Result<Progress, TaskError> {
        let mut done = Vec::new();
        for name in &params.nodes {
            done.push(self.node(name).await?.is_some_and(|node| ready(&node, params.image.as_deref())));
        }
        Ok(all_done(done))
    }

    /// Waits until every entrant runs and `ready` holds for it. An entrant that failed fails the plan at once:
    /// the incumbents are untouched and keep serving.
    async fn await_entrants(&self, params: AwaitNodes, ready: fn(&SeiNode) -> bool) -> Result<Progress, TaskError> {
        let mut done = Vec::new();
        for name in &params.nodes {
            done.push(entrant_done(name, self.node(name).await?.as_deref(), ready)?);
        }
        Ok(all_done(done))
    }

    async fn create_entrant_nodes(&self, params: CreateEntrantNodes) -> Result<Progress, TaskError> {
        let mut done = Vec::new();
        for entrant in &params.nodes {
            let node = child_node(
                self.deployment,
                &entrant.name,
                entrant.ordinal,
                &params.revision,
                (&params.labels, &params.annotations),
                params.spec.clone(),
            );
            match self.cluster.create(&node).await {
                Ok(_) => done.push(true),
                // The API server says it exists; a read that does not show it is older than that answer (a
                // lagging cache, or a create of ours whose response was lost): wait and read again.
                Err(ClusterError::AlreadyExists(_)) => match self.stored_node(&entrant.name).await? {
                    None => done.push(false),
                    // Ours, but of another set (an adopted set named as this rollout names its entrants): not an
                    // entrant, and never to be torn down as one.
                    Some(existing) if is_controlled_by(&existing.metadata, self.owner_uid()) => {
                        let revision = existing.metadata.labels.as_ref().and_then(|l| l.get(LABEL_REVISION));
                        if revision != Some(&params.revision) {
                            return Err(TaskError::Terminal(format!(
                                "SeiNode {} exists as this deployment's node of revision {}, not an entrant of \
                                 revision {}: the entrant's name is taken",
                                entrant.name,
                                revision.map_or("-", String::as_str),
                                params.revision
                            )));
                        }
                        done.push(true);
                    }
                    // Going: its name is free once it is gone.
                    Some(existing) if existing.metadata.deletion_timestamp.is_some() => done.push(false),
                    Some(existing) => return Err(TaskError::Terminal(held_by_another(&existing))),
                },
                Err(other) => return Err(api_error(other)),
            }
        }
        Ok(all_done(done))
    }

    /// Points the deployment's Service at the entrants — now, in this task, not deferred to the plan's end.
    /// Points the Service at the entrants — once every node it would select serves (its pod Ready on its image):
    /// a Service whose selected pods are not Ready has no endpoints, a black hole however brief. A node is Running
    /// when its init plan is done, before seid has started and a readiness probe period before its pod is Ready,
    /// and HardFork switches right after waiting for Running.
    async fn switch_traffic(&self, params: SwitchTraffic) -> Result<Progress, TaskError> {
        let existing = self.cluster.get::<Service>(self.namespace(), &params.service).await.optional();
        let existing = existing.map_err(api_error)?;
        let switched = existing
            .as_ref()
            .and_then(|s| s.spec.as_ref())
            .is_some_and(|spec| spec.selector.as_ref() == Some(&params.selector));
        if !switched {
            let targets = self.cluster.list::<SeiNode>(self.namespace(), &params.selector).await.map_err(api_error)?;
            if targets.is_empty() || !targets.iter().all(|node| serving(node)) {
                return Ok(Progress::Running);
            }
        }
        match existing {
            None => {
                let revision = params.selector.get(LABEL_REVISION).cloned().unwrap_or_default();
                let service = deployment_service(self.deployment, &revision);
                match self.cluster.create(&service).await {
                    Ok(_) => {}
                    // The read found none, the API server has one: a read older than the Service's creation (a
                    // lagging cache, often this very task's create of a reconcile ago). Read again, as the
                    // teardown does when it reads a Service older than the switch — failing here would fail a
                    // rollout over a stale read.
                    Err(ClusterError::AlreadyExists(_)) => {
                        return Err(TaskError::Transient(format!(
                            "Service {} exists though the read found none: reading it again",
                            params.service
                        )));
                    }
                    Err(other) => return Err(api_error(other)),
                }
            }
            Some(mut service) => {
                let spec = service.spec.get_or_insert_with(Default::default);
                if spec.selector.as_ref() != Some(&params.selector) {
                    spec.selector = Some(params.selector.clone());
                    self.cluster.replace(&service).await.map_err(api_error)?;
                }
            }
        }
        Ok(Progress::Complete)
    }

    /// Deletes nodes of `revision` — never while the Service still selects that revision, so traffic is never
    /// left with nowhere to go. Complete once they are gone.
    ///
    /// This task runs right after `switch-traffic` moved the Service off `revision`, often in the same reconcile,
    /// so a Service that still selects it is, as a rule, a read older than that write (a lagging cache): a
    /// reason to wait and read again, not to fail. Failing here would end the rollout after the switch, with
    /// traffic on the entrants a failed rollout then deletes. Should the Service really have been moved back
    /// (by someone else), the teardown keeps waiting and the rollout reports Stalled: the incumbents stay.
    async fn teardown_nodes(&self, params: TeardownNodes) -> Result<Progress, TaskError> {
        let service = self.cluster.get::<Service>(self.namespace(), &params.service).await.optional();
        if let Some(service) = service.map_err(api_error)?
            && selected_revision(&service) == Some(params.revision.as_str())
        {
            return Err(TaskError::Transient(format!(
                "not deleting nodes of revision {} yet: Service {} still selects it as read (rv {})",
                params.revision,
                params.service,
                service.metadata.resource_version.as_deref().unwrap_or("-")
            )));
        }
        let mut gone = Vec::new();
        for name in &params.nodes {
            // A node of that name held by another object is not this deployment's to delete: gone, for it.
            if self.stored_node(name).await?.is_some_and(|n| !is_controlled_by(&n.metadata, self.owner_uid())) {
                gone.push(true);
                continue;
            }
            match self.cluster.delete::<SeiNode>(self.namespace(), name).await {
                Ok(()) => gone.push(self.node(name).await?.is_none()),
                Err(ClusterError::NotFound(_)) => gone.push(true),
                Err(other) => return Err(api_error(other)),
            }
        }
        Ok(all_done(gone))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::SeiNodeStatus;

    fn entrant(phase: Option<SeiNodePhase>) -> SeiNode {
        let mut node: SeiNode = serde_json::from_value(serde_json::json!({
            "apiVersion": "sei.io/v1alpha1",
            "kind": "SeiNode",
            "metadata": {"name": "rpc-g2-0", "namespace": "sei"},
            "spec": {"chainId": "pacific-1", "image": "sei:v6.3.1", "fullNode": {}},
        }))
        .expect("a valid SeiNode");
        node.status = Some(SeiNodeStatus { phase, ..Default::default() });
        node
    }

    #[test]
    fn an_entrant_not_found_is_waited_for_not_failed() {
        // Right after create-entrant-nodes, a lagging read may not show the entrant yet: retry, spend nothing.
        let result = entrant_done("rpc-g2-0", None, |_| true);
        assert!(matches!(result, Err(TaskError::Transient(ref m)) if m.contains("rpc-g2-0")), "{result:?}");
    }

    #[test]
    fn a_failed_entrant_fails_the_plan_and_a_running_one_is_judged_by_ready() {
        let failed = entrant_done("rpc-g2-0", Some(&entrant(Some(SeiNodePhase::Failed))), |_| true);
        assert!(matches!(failed, Err(TaskError::Terminal(_))), "{failed:?}");
        let running = entrant(Some(SeiNodePhase::Running));
        assert_eq!(entrant_done("rpc-g2-0", Some(&running), |_| true), Ok(true));
        assert_eq!(entrant_done("rpc-g2-0", Some(&running), |_| false), Ok(false));
        assert_eq!(entrant_done("rpc-g2-0", Some(&entrant(Some(SeiNodePhase::Initializing))), |_| true), Ok(false));
    }

    #[test]
    fn an_entrant_retrying_its_init_plan_after_a_failure_fails_the_plan_at_once() {
        // Seen only after its back-off ran out and its retry began, the failure still counts.
        let mut retrying = entrant(Some(SeiNodePhase::Initializing));
        retrying.status.as_mut().expect("status").init_attempt = Some(2);
        let result = entrant_done("rpc-g2-0", Some(&retrying), |_| true);
        assert!(matches!(result, Err(TaskError::Terminal(_))), "{result:?}");
    }

    #[test]
    fn an_entrant_serves_only_once_its_pod_ran_its_image_ready_and_is_caught_up_only_when_it_also_serves() {
        let mut node = entrant(Some(SeiNodePhase::Running));
        assert!(!serving(&node), "Running, but no pod has run its image while Ready");
        node.status.as_mut().expect("status").catching_up = Some(false);
        assert!(!caught_up_and_serving(&node), "seid says caught up before the pod is an endpoint");
        node.status.as_mut().expect("status").current_image = Some("sei:v6.3.0".into());
        assert!(!serving(&node), "a Ready pod of the previous image does not serve this spec");
        node.status.as_mut().expect("status").current_image = Some("sei:v6.3.1".into());
        assert!(serving(&node) && caught_up_and_serving(&node));
        node.status.as_mut().expect("status").catching_up = Some(true);
        assert!(serving(&node) && !caught_up_and_serving(&node));
    }

    #[test]
    fn a_node_is_updated_only_once_its_pod_runs_the_specs_sidecar_as_well_as_its_image() {
        let mut node = entrant(Some(SeiNodePhase::Running));
        node.spec.sidecar = Some(crate::api::SidecarSpec { image: Some("seictl:v0.9.1".into()), ..Default::default() });
        let status = node.status.as_mut().expect("status");
        status.current_image = Some("sei:v6.3.1".into());
        status.current_sidecar_image = Some("seictl:v0.9.0".into());
        assert!(!spec_updated(&node, Some("sei:v6.3.1")), "its pod still runs the previous sidecar");
        assert!(spec_updated(&node, None), "no target image: nothing to wait for");
        node.status.as_mut().expect("status").current_sidecar_image = Some("seictl:v0.9.1".into());
        assert!(spec_updated(&node, Some("sei:v6.3.1")));
        assert!(!spec_updated(&node, Some("sei:v6.3.2")), "another target image");
    }
}
