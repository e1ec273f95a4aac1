//! Expectations of a scenario step: which of the checks an `expect` step lists do not hold in the world now,
//! each described so a failure report says what was wanted and what was seen, and what the step remembers for
//! later steps once it holds.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use sei_operator_core::api::template_hash;
use sei_operator_core::api::{Plan, PlanPhase, SeiNode, SeiNodeDeployment, TaskStatus};
use sei_operator_core::cluster::Event;
use sei_operator_core::objects::meta::{LABEL_DEPLOYMENT, LABEL_REVISION, find_condition, is_controlled_by};
use serde::Serialize;
use serde_json::Value;

use super::format::{
    ConditionExpectation, Expectation, NodeExpectation, ObjectKind, ObjectPath, PlanExpectation,
    SubmissionsExpectation, TraceExpectation, ValueExpectation,
};
use crate::kube::pod::Seid;
use crate::world::World;

/// What earlier steps of a run remembered: values under names (`remember:`, and revision names bound by
/// `revisions`), and moments (`mark` steps).
#[derive(Debug, Default)]
pub(super) struct Memory {
    values: BTreeMap<String, String>,
    /// Mark → how many sidecar submissions had been answered by then.
    marks: BTreeMap<String, usize>,
    /// Mark → how many trace lines had been recorded by then.
    trace_marks: BTreeMap<String, usize>,
}

impl Memory {
    /// Remembers the present moment as `name`.
    pub(super) fn mark(&mut self, world: &World, name: &str) {
        let (submissions, lines) = world.inspect(|s| (s.sidecar_submissions.len(), s.trace.lines().len()));
        self.marks.insert(name.to_owned(), submissions);
        self.trace_marks.insert(name.to_owned(), lines);
    }

    /// Keeps the values an expectation remembered once it held.
    pub(super) fn remember(&mut self, values: BTreeMap<String, String>) {
        self.values.extend(values);
    }
}

/// The result of checking one expectation (with its `and` expectations): what does not hold, and what it
/// remembers if everything does.
#[derive(Debug, Default)]
pub(super) struct Checked {
    pub unmet: Vec<String>,
    pub remembered: BTreeMap<String, String>,
}

/// Every check of `expectation` and of its `and` expectations that does not hold now. The trace is read only
/// once everything else holds: it is long, and an expectation is polled every tick.
pub(super) fn check(world: &World, namespace: &str, expectation: &Expectation, memory: &Memory) -> Checked {
    let mut judge = Judge { world, namespace, memory, checked: Checked::default() };
    judge.all(expectation);
    if judge.checked.unmet.is_empty() {
        for nested in std::iter::once(expectation).chain(&expectation.and) {
            for wanted in &nested.trace {
                judge.trace(wanted, nested.deployment.as_deref());
            }
        }
    }
    judge.checked
}

/// Checks one expectation against the world, collecting what fails and what it would remember.
struct Judge<'a> {
    world: &'a World,
    namespace: &'a str,
    memory: &'a Memory,
    checked: Checked,
}

impl Judge<'_> {
    fn fail(&mut self, message: String) {
        self.checked.unmet.push(message);
    }

    fn all(&mut self, expectation: &Expectation) {
        self.deployment(expectation);
        self.events(expectation);
        self.nodes(expectation);
        self.namespace_wide(expectation);
        self.revisions(expectation);
        if let Some(submissions) = &expectation.sidecar_submissions {
            self.submissions(submissions);
        }
        if expectation.settled {
            let unsettled = self.world.unsettled_deployments();
            if !unsettled.is_empty() {
                self.fail(format!("not settled: {unsettled:?}"));
            }
        }
        if !expectation.end_state.is_empty() {
            let actual = super::end_state::end_state(self.world);
            if actual != expectation.end_state {
                let missing: Vec<&String> = expectation.end_state.iter().filter(|l| !actual.contains(l)).collect();
                let extra: Vec<&String> = actual.iter().filter(|l| !expectation.end_state.contains(l)).collect();
                self.fail(format!(
                    "end state differs: expected but absent {missing:?}; present but not expected {extra:?}"
                ));
            }
        }
        for nested in &expectation.and {
            self.all(nested);
        }
    }

    /// A value not known in advance: set or not, remembered, the same as or other than one remembered.
    fn value(&mut self, what: &str, actual: Option<&str>, wanted: &ValueExpectation) {
        match (wanted.set, actual) {
            (Some(true), None) => self.fail(format!("{what} is not set")),
            (Some(false), Some(value)) => self.fail(format!("{what} is {value:?}, not unset")),
            _ => {}
        }
        if let Some(name) = &wanted.remember {
            match actual {
                Some(value) => {
                    self.checked.remembered.insert(name.clone(), value.to_owned());
                }
                None => self.fail(format!("{what} is not set, so there is nothing to remember as {name:?}")),
            }
        }
        let recalled = |name: &String| self.memory.values.get(name).map(String::as_str);
        if let Some(name) = &wanted.same_as {
            match recalled(name) {
                None => self.fail(format!("{what}: no earlier expectation remembered {name:?}")),
                Some(value) if actual != Some(value) => {
                    self.fail(format!("{what} is {actual:?}, not {value:?} (remembered as {name:?})"))
                }
                Some(_) => {}
            }
        }
        if let Some(name) = &wanted.different_from {
            match recalled(name) {
                None => self.fail(format!("{what}: no earlier expectation remembered {name:?}")),
                Some(value) if actual == Some(value) => {
                    self.fail(format!("{what} is still {value:?} (remembered as {name:?})"))
                }
                Some(_) => {}
            }
        }
    }

    fn plan(&mut self, what: &str, plan: Option<&Plan>, wanted: &PlanExpectation) {
        if let Some(phase) = &wanted.phase {
            let actual = plan.map(|p| format!("{:?}", p.phase));
            if actual.as_ref() != Some(phase) {
                self.fail(format!("{what} phase is {actual:?}, not {phase:?}"));
            }
        }
        if let Some(id) = &wanted.id {
            self.value(&format!("{what} id"), plan.map(|p| p.id.as_str()), id);
        }
        if let Some(task) = &wanted.current_task {
            let current = plan
                .filter(|p| p.phase == PlanPhase::Active)
                .and_then(|p| p.tasks.iter().find(|t| t.status != TaskStatus::Complete))
                .map(|t| t.type_.as_str());
            if current != Some(task.as_str()) {
                let seen = current.map_or("no active plan".to_owned(), |t| format!("{t:?}"));
                self.fail(format!("{what} is at {seen}, not {task:?}"));
            }
        }
        if let Some(wanted) = &wanted.tasks {
            let tasks: Vec<&str> = plan.iter().flat_map(|p| &p.tasks).map(|t| t.type_.as_str()).collect();
            if tasks != *wanted {
                self.fail(format!("{what} tasks are {tasks:?}, not {wanted:?}"));
            }
        }
    }

    /// The checks about the named deployment: phase, conditions, fields, plan, rollout, Service and children.
    fn deployment(&mut self, expectation: &Expectation) {
        let Some(name) = &expectation.deployment else {
            let wants_deployment = expectation.phase.is_some()
                || !expectation.conditions.is_empty()
                || !expectation.fields.is_empty()
                || expectation.plan.is_some()
                || expectation.rollout.is_some()
                || expectation.failed_target_hash.is_some()
                || expectation.latest_spec_rolled_out.is_some()
                || expectation.incumbent_nodes.is_some()
                || expectation.service.is_some()
                || expectation.children.is_some()
                || expectation.adopted_all.is_some();
            if wants_deployment {
                self.fail("the expectation names no `deployment` for its deployment checks".into());
            }
            return;
        };
        let deployment = match self.world.get::<SeiNodeDeployment>(self.namespace, name) {
            Ok(deployment) => deployment,
            Err(_) => return self.fail(format!("SeiNodeDeployment {name} does not exist")),
        };
        let status = deployment.status.clone().unwrap_or_default();
        if let Some(phase) = &expectation.phase {
            let actual = status.phase.map(|p| format!("{p:?}")).unwrap_or_default();
            if &actual != phase {
                self.fail(format!("{name} phase is {actual:?}, not {phase:?}"));
            }
        }
        for failure in condition_failures(name, &status.conditions, &expectation.conditions) {
            self.fail(failure);
        }
        self.checked.unmet.extend(unmet_fields(&format!("SeiNodeDeployment {name}"), &deployment, &expectation.fields));
        if let Some(plan) = &expectation.plan {
            self.plan(&format!("{name} plan"), status.plan.as_ref(), plan);
        }
        if let Some(rollout) = &expectation.rollout {
            if let Some(set) = rollout.set
                && status.rollout.is_some() != set
            {
                let seen = status.rollout.as_ref().map(|r| format!("to {}", r.target_hash));
                self.fail(format!("{name} rollout is {}, not {}", seen.unwrap_or("unset".into()), set_word(set)));
            }
            if let Some(entrants) = &rollout.entrant_nodes {
                let actual = status.rollout.as_ref().map(|r| &r.entrant_nodes);
                if actual != Some(entrants) {
                    self.fail(format!("{name} rollout entrants are {actual:?}, not {entrants:?}"));
                }
            }
        }
        if let Some(failed) = &expectation.failed_target_hash {
            self.value(&format!("{name} failedTargetHash"), status.failed_target_hash.as_deref(), failed);
        }
        if let Some(rolled_out) = expectation.latest_spec_rolled_out {
            let latest = template_hash(&deployment.spec.template.spec);
            if (status.template_hash.as_deref() == Some(latest.as_str())) != rolled_out {
                self.fail(format!(
                    "{name} templateHash is {:?} and the current template's is {latest:?}: the latest spec is {}",
                    status.template_hash,
                    if rolled_out { "not rolled out" } else { "rolled out" }
                ));
            }
        }
        if let Some(incumbents) = &expectation.incumbent_nodes
            && &status.incumbent_nodes != incumbents
        {
            self.fail(format!("{name} incumbentNodes are {:?}, not {incumbents:?}", status.incumbent_nodes));
        }
        if let Some(service) = &expectation.service {
            let selector =
                self.world.get::<Service>(self.namespace, name).ok().and_then(|s| s.spec?.selector).unwrap_or_default();
            if let Some(revision) = &service.revision {
                let actual = selector.get(LABEL_REVISION).map(String::as_str);
                self.value(&format!("Service {name} revision"), actual, revision);
            }
            if let Some(wanted) = &service.selects {
                // An empty selector selects nothing here: the operator's Service always names its deployment.
                let selected = if selector.is_empty() {
                    Vec::new()
                } else {
                    self.node_names_with_deleting(|n| {
                        n.metadata.labels.as_ref().is_some_and(|l| selector.iter().all(|(k, v)| l.get(k) == Some(v)))
                    })
                };
                if sorted(wanted) != selected {
                    self.fail(format!("Service {name} selects {selected:?}, not {:?}", sorted(wanted)));
                }
            }
        }
        if let Some(wanted) = &expectation.children {
            let uid = deployment.metadata.uid.clone().unwrap_or_default();
            let children = self.node_names_with_deleting(|n| is_controlled_by(&n.metadata, &uid));
            if sorted(wanted) != children {
                self.fail(format!("{name} controls SeiNodes {children:?}, not {:?}", sorted(wanted)));
            }
        }
        if let Some(wanted) = expectation.adopted_all {
            let uid = deployment.metadata.uid.clone().unwrap_or_default();
            let orphans = self.node_names_with_deleting(|n| {
                n.metadata.deletion_timestamp.is_none()
                    && n.metadata.labels.as_ref().and_then(|l| l.get(LABEL_DEPLOYMENT)) == Some(name)
                    && !is_controlled_by(&n.metadata, &uid)
            });
            if orphans.is_empty() != wanted {
                self.fail(format!("{name} has labelled SeiNodes it does not control: {orphans:?}"));
            }
        }
    }

    /// Event sequences, exact lists, counts and matchers, about the deployment (or every object without one).
    fn events(&mut self, expectation: &Expectation) {
        let checks_events = !expectation.events.is_empty()
            || !expectation.no_events.is_empty()
            || expectation.only_events.is_some()
            || !expectation.event_counts.is_empty()
            || !expectation.events_matching.is_empty();
        // An expectation is polled every tick: copying every event out when none is checked is waste.
        if !checks_events {
            return;
        }
        let deployment = expectation.deployment.as_ref();
        let events: Vec<Event> = self.world.inspect(|s| {
            s.events
                .iter()
                .filter(|(_, e)| deployment.is_none_or(|d| &e.regarding.name == d))
                .map(|(_, e)| e.clone())
                .collect()
        });
        let about = deployment.map_or("any object", String::as_str);
        let reasons: Vec<&str> = events.iter().map(|e| e.reason.as_str()).collect();
        if !is_subsequence(&expectation.events, &reasons) {
            self.fail(format!("events {:?} not seen in order; seen {reasons:?}", expectation.events));
        }
        for forbidden in &expectation.no_events {
            if reasons.contains(&forbidden.as_str()) {
                self.fail(format!("event {forbidden} was emitted"));
            }
        }
        if let Some(wanted) = &expectation.only_events
            && reasons != *wanted
        {
            self.fail(format!("events about {about} are {reasons:?}, not exactly {wanted:?}"));
        }
        for (reason, wanted) in &expectation.event_counts {
            let count = reasons.iter().filter(|r| *r == reason).count();
            if u32::try_from(count).ok() != Some(*wanted) {
                self.fail(format!("{count} {reason} events about {about}, not {wanted}"));
            }
        }
        for matcher in &expectation.events_matching {
            let matching = events
                .iter()
                .filter(|e| matcher.type_.as_ref().is_none_or(|t| format!("{:?}", e.type_) == *t))
                .filter(|e| matcher.reason.as_ref().is_none_or(|r| &e.reason == r))
                .filter(|e| matcher.message_contains.as_ref().is_none_or(|m| e.message.contains(m.as_str())))
                .count();
            let count = u32::try_from(matching).unwrap_or(u32::MAX);
            if !matcher.count.map_or(count > 0, |wanted| count == wanted) {
                let wanted = matcher.count.map_or("at least one".to_owned(), |c| format!("exactly {c}"));
                let seen: Vec<String> =
                    events.iter().map(|e| format!("{:?} {}: {}", e.type_, e.reason, e.message)).collect();
                self.fail(format!("{count} events about {about} match {matcher:?}, wanted {wanted}; seen {seen:?}"));
            }
        }
    }

    /// `nodes` (each named node), `everyNode` (each live node of the deployment or namespace) and the upgrade
    /// panic total.
    fn nodes(&mut self, expectation: &Expectation) {
        for (name, wanted) in &expectation.nodes {
            match self.world.get::<SeiNode>(self.namespace, name) {
                Err(_) if wanted.absent => {}
                Err(_) => self.fail(format!("SeiNode {name} does not exist")),
                Ok(_) if wanted.absent => self.fail(format!("SeiNode {name} still exists")),
                Ok(node) => self.node(name, &node, wanted),
            }
        }
        if let Some(wanted) = &expectation.every_node {
            let deployment = expectation.deployment.as_deref();
            let nodes: Vec<SeiNode> = self
                .live_nodes()
                .into_iter()
                .filter(|n| {
                    deployment.is_none_or(|d| {
                        n.metadata.labels.as_ref().and_then(|l| l.get(LABEL_DEPLOYMENT)).is_some_and(|l| l == d)
                    })
                })
                .collect();
            if nodes.is_empty() {
                let of = deployment.map(|d| format!(" of {d}")).unwrap_or_default();
                self.fail(format!("everyNode: there are no live SeiNodes{of}"));
            }
            for node in &nodes {
                self.node(node.metadata.name.as_deref().unwrap_or_default(), node, wanted);
            }
        }
        if let Some(expected) = expectation.upgrade_panics {
            let actual = self.world.inspect(|s| s.panics.iter().filter(|p| p.upgrade_panic).count());
            if u32::try_from(actual).ok() != Some(expected) {
                self.fail(format!("{actual} upgrade panics, not {expected}"));
            }
        }
    }

    /// Every check of `wanted` that `node` (named `name`) fails: its spec, status, init plan, pod and sidecar.
    fn node(&mut self, name: &str, node: &SeiNode, wanted: &NodeExpectation) {
        let status = node.status.clone().unwrap_or_default();
        let checks = [
            ("phase", wanted.phase.clone(), status.phase.map(|p| format!("{p:?}"))),
            ("image", wanted.image.clone(), Some(node.spec.image.clone())),
            ("currentImage", wanted.current_image.clone(), status.current_image.clone()),
            ("sidecarReady", wanted.sidecar_ready.map(|b| b.to_string()), status.sidecar_ready.map(|b| b.to_string())),
            ("catchingUp", wanted.catching_up.map(|b| b.to_string()), status.catching_up.map(|b| b.to_string())),
            (
                "deleting",
                wanted.deleting.map(|b| b.to_string()),
                Some(node.metadata.deletion_timestamp.is_some().to_string()),
            ),
            (
                "bootstrapImage",
                wanted.bootstrap_image.clone(),
                node.spec.snapshot().and_then(|s| s.bootstrap_image.clone()),
            ),
        ];
        for (field, want, actual) in checks {
            if let Some(want) = want
                && actual.as_ref() != Some(&want)
            {
                self.fail(format!("SeiNode {name} {field} is {actual:?}, not {want:?}"));
            }
        }
        if let Some(floor) = wanted.height_above
            && status.latest_height.is_none_or(|h| h <= floor)
        {
            self.fail(format!("SeiNode {name} latestHeight is {:?}, not above {floor}", status.latest_height));
        }
        if let Some(want) = wanted.upgrade_panics {
            let count = self.world.inspect(|s| {
                s.panics
                    .iter()
                    .filter(|p| p.upgrade_panic && p.namespace == self.namespace && p.node.as_deref() == Some(name))
                    .count()
            });
            if u32::try_from(count).ok() != Some(want) {
                self.fail(format!("SeiNode {name} had {count} upgrade panics, not {want}"));
            }
        }
        for failure in condition_failures(&format!("SeiNode {name}"), &status.conditions, &wanted.conditions) {
            self.fail(failure);
        }
        self.checked.unmet.extend(unmet_fields(&format!("SeiNode {name}"), node, &wanted.fields));
        if let Some(plan) = &wanted.init_plan {
            self.plan(&format!("SeiNode {name} init plan"), status.plan.as_ref(), plan);
        }
        if wanted.pod_ready.is_some()
            || wanted.marked_ready.is_some()
            || wanted.seid_config.is_some()
            || wanted.seid_restarts.is_some()
        {
            let pod = self.world.pod(self.namespace, &format!("{name}-0"));
            if let Some(want) = &wanted.seid_config {
                match pod.as_ref().map(|p| &p.seid) {
                    Some(Seid::Running { run, .. }) => {
                        let read = serde_json::to_value(&run.config).unwrap_or_default();
                        if read != *want {
                            self.fail(format!("SeiNode {name}'s seid runs with config {read}, not {want}"));
                        }
                    }
                    _ => self.fail(format!("SeiNode {name}'s seid does not run; wanted it with config {want}")),
                }
            }
            if let Some(want) = wanted.seid_restarts {
                let restarts = pod.as_ref().map(|p| p.restarts);
                if restarts != Some(want) {
                    self.fail(format!("SeiNode {name}'s pod restarted seid {restarts:?} times, not {want}"));
                }
            }
            if let Some(want) = wanted.pod_ready {
                let ready = pod.as_ref().is_some_and(|p| p.is_ready());
                if ready != want {
                    self.fail(format!("SeiNode {name}'s pod is {}, not {}", ready_word(ready), ready_word(want)));
                }
            }
            if let Some(want) = wanted.marked_ready {
                let sidecar = pod.and_then(|p| p.sidecar);
                let marked = sidecar.as_ref().is_some_and(|s| s.ready);
                if marked != want {
                    let seen = match (&sidecar, marked) {
                        (None, _) => "has no running sidecar",
                        (Some(_), true) => "is",
                        (Some(_), false) => "is not",
                    };
                    self.fail(format!("SeiNode {name}'s sidecar {seen} marked ready; wanted marked ready: {want}"));
                }
            }
        }
    }

    /// The checks about the namespace: which nodes and objects exist, Jobs, and panics.
    fn namespace_wide(&mut self, expectation: &Expectation) {
        if let Some(wanted) = &expectation.only_nodes {
            let live = self.node_names(|_| true);
            if sorted(wanted) != live {
                self.fail(format!("the live SeiNodes are {live:?}, not {:?}", sorted(wanted)));
            }
        }
        if let Some(some) = &expectation.some_nodes {
            let (mut matching, mut others) = (Vec::new(), Vec::new());
            for node in self.live_nodes() {
                let name = node.metadata.name.clone().unwrap_or_default();
                // A scratch judge: what a node's checks would remember is not this expectation's to keep.
                let mut scratch = Judge { checked: Checked::default(), ..*self };
                scratch.node(&name, &node, &some.are);
                match scratch.checked.unmet.into_iter().next() {
                    None => matching.push(name),
                    Some(why_not) => others.push(why_not),
                }
            }
            if u32::try_from(matching.len()).unwrap_or(u32::MAX) < some.at_least {
                self.fail(format!(
                    "{} live SeiNodes are as wanted ({matching:?}), not at least {}: {}",
                    matching.len(),
                    some.at_least,
                    others.join("; ")
                ));
            }
        }
        for object in &expectation.present {
            if !self.exists(object) {
                self.fail(format!("{:?}/{} does not exist", object.kind, object.name));
            }
        }
        for object in &expectation.absent {
            if self.exists(object) {
                self.fail(format!("{:?}/{} still exists", object.kind, object.name));
            }
        }
        for (name, wanted) in &expectation.jobs {
            match self.world.get::<Job>(self.namespace, name) {
                Err(_) if wanted.absent => {}
                Err(_) => self.fail(format!("Job {name} does not exist")),
                Ok(_) if wanted.absent => self.fail(format!("Job {name} still exists")),
                Ok(job) => {
                    let conditions = job.status.and_then(|s| s.conditions).unwrap_or_default();
                    let complete = conditions.iter().any(|c| c.type_ == "Complete" && c.status == "True");
                    if let Some(want) = wanted.complete
                        && complete != want
                    {
                        self.fail(format!("Job {name} complete is {complete}, not {want}"));
                    }
                }
            }
        }
        for (name, wanted) in &expectation.claims {
            match self.world.get::<k8s_openapi::api::core::v1::PersistentVolumeClaim>(self.namespace, name) {
                Err(_) => self.fail(format!("PersistentVolumeClaim {name} does not exist")),
                Ok(claim) => {
                    let size = claim
                        .spec
                        .and_then(|s| s.resources)
                        .and_then(|r| r.requests)
                        .and_then(|r| r.get("storage").map(|q| q.0.clone()))
                        .unwrap_or_default();
                    if size != wanted.size {
                        self.fail(format!("PersistentVolumeClaim {name} requests {size}, not {}", wanted.size));
                    }
                }
            }
        }
        for (image, wanted) in &expectation.panics_by_image {
            let count = self.world.inspect(|s| s.panics.iter().filter(|p| &p.image == image).count());
            if u32::try_from(count).ok() != Some(*wanted) {
                self.fail(format!("seid on {image} panicked {count} times, not {wanted}"));
            }
        }
        if expectation.upgrade_panics_by_node_prefix.is_empty() && expectation.upgrade_panics_by_image.is_empty() {
            return;
        }
        let panics: Vec<(String, String, String)> = self.world.inspect(|s| {
            s.panics
                .iter()
                .filter(|p| p.upgrade_panic)
                .map(|p| (p.node.clone().unwrap_or_default(), p.image.clone(), format!("{}: {}", p.pod, p.reason)))
                .collect()
        });
        for (prefix, count) in &expectation.upgrade_panics_by_node_prefix {
            let of: Vec<&String> =
                panics.iter().filter(|(n, _, _)| n.starts_with(prefix.as_str())).map(|p| &p.2).collect();
            if u32::try_from(of.len()).ok() != Some(*count) {
                self.fail(format!("{} upgrade panics of nodes {prefix}*, not {count}: {of:?}", of.len()));
            }
        }
        for (image, count) in &expectation.upgrade_panics_by_image {
            let of: Vec<&String> = panics.iter().filter(|(_, i, _)| i == image).map(|p| &p.2).collect();
            if u32::try_from(of.len()).ok() != Some(*count) {
                self.fail(format!("{} upgrade panics of {image}, not {count}: {of:?}", of.len()));
            }
        }
    }

    /// Checks `revisions`: each name's places agree, and match what the name stands for, or bind it to a
    /// revision no other remembered name stands for. Bindings are remembered once the step passes.
    fn revisions(&mut self, expectation: &Expectation) {
        for (name, places) in &expectation.revisions {
            let mut seen: Vec<(&str, String)> = Vec::new();
            for place in places {
                match self.revision_at(expectation.deployment.as_deref(), place) {
                    Ok(revision) => seen.push((place, revision)),
                    Err(missing) => self.fail(format!("revision {name}: {missing}")),
                }
            }
            let distinct: BTreeSet<&String> = seen.iter().map(|(_, r)| r).collect();
            if distinct.len() > 1 {
                self.fail(format!("revision {name}: the places disagree: {seen:?}"));
                continue;
            }
            let Some((_, revision)) = seen.first() else { continue };
            match self.memory.values.get(name).or_else(|| self.checked.remembered.get(name)) {
                Some(bound) if bound != revision => {
                    self.fail(format!("revision {name} is {bound:?}, but {places:?} carry {revision:?}"));
                }
                Some(_) => {}
                None => {
                    let taken = self.memory.values.iter().chain(&self.checked.remembered).find(|(_, r)| *r == revision);
                    match taken {
                        Some((other, _)) => self.fail(format!(
                            "revision {name}: {places:?} carry {revision:?}, which is {other}, not a new one"
                        )),
                        None => {
                            self.checked.remembered.insert(name.clone(), revision.clone());
                        }
                    }
                }
            }
        }
    }

    /// The revision a place carries: the deployment's Service selector, active set or template hash, or a
    /// SeiNode's revision label.
    fn revision_at(&self, deployment: Option<&str>, place: &str) -> Result<String, String> {
        let (world, namespace) = (self.world, self.namespace);
        if matches!(place, "service" | "activeSet" | "templateHash") {
            let Some(name) = deployment else { return Err(format!("{place} needs a `deployment`")) };
            if place == "service" {
                let service =
                    world.get::<Service>(namespace, name).map_err(|_| format!("Service {name} does not exist"))?;
                let selector = service.spec.and_then(|s| s.selector).unwrap_or_default();
                return selector
                    .get(LABEL_REVISION)
                    .cloned()
                    .ok_or_else(|| format!("Service {name} selects no {LABEL_REVISION}"));
            }
            let deployment = world
                .get::<SeiNodeDeployment>(namespace, name)
                .map_err(|_| format!("SeiNodeDeployment {name} does not exist"))?;
            let status = deployment.status.unwrap_or_default();
            let revision =
                if place == "activeSet" { status.active_set.map(|s| s.revision) } else { status.template_hash };
            return revision.ok_or_else(|| format!("{name} has no {place}"));
        }
        let node = world.get::<SeiNode>(namespace, place).map_err(|_| format!("SeiNode {place} does not exist"))?;
        node.metadata
            .labels
            .unwrap_or_default()
            .get(LABEL_REVISION)
            .cloned()
            .ok_or_else(|| format!("SeiNode {place} has no {LABEL_REVISION} label"))
    }

    fn submissions(&mut self, wanted: &SubmissionsExpectation) {
        let since = match &wanted.since {
            None => 0,
            Some(mark) => match self.memory.marks.get(mark) {
                Some(index) => *index,
                None => return self.fail(format!("sidecarSubmissions: no `mark: {mark}` step came before")),
            },
        };
        let pod_of = |node: &str| format!("{node}-0");
        let seen: Vec<(String, String, bool)> = self.world.inspect(|s| {
            s.sidecar_submissions
                .get(since..)
                .unwrap_or(&[])
                .iter()
                .filter(|s| wanted.task.as_ref().is_none_or(|t| &s.task_type == t))
                .map(|s| (s.pod.name.clone(), s.task_type.clone(), s.started))
                .collect()
        });
        let after = wanted.since.as_ref().map(|m| format!(" since {m}")).unwrap_or_default();
        if let Some(at_least) = wanted.at_least
            && u32::try_from(seen.len()).unwrap_or(u32::MAX) < at_least
        {
            self.fail(format!("{} sidecar submissions{after}, not at least {at_least}: {seen:?}", seen.len()));
        }
        if let Some(first) = &wanted.first {
            let matches = seen.first().is_some_and(|(pod, task, started)| {
                first.node.as_ref().is_none_or(|n| &pod_of(n) == pod)
                    && first.task.as_ref().is_none_or(|t| t == task)
                    && first.started.is_none_or(|s| s == *started)
            });
            if !matches {
                self.fail(format!("the first sidecar submission{after} is {:?}, not {first:?}", seen.first()));
            }
        }
        if let Some(nodes) = &wanted.only_nodes {
            let pods: Vec<String> = nodes.iter().map(|n| pod_of(n)).collect();
            let elsewhere: Vec<&(String, String, bool)> =
                seen.iter().filter(|(pod, _, _)| !pods.contains(pod)).collect();
            if !elsewhere.is_empty() {
                self.fail(format!("sidecar submissions{after} went to pods other than {pods:?}: {elsewhere:?}"));
            }
        }
    }

    fn trace(&mut self, wanted: &TraceExpectation, deployment: Option<&str>) {
        let since = match &wanted.since {
            None => 0,
            Some(mark) => match self.memory.trace_marks.get(mark) {
                Some(index) => *index,
                None => return self.fail(format!("trace: no `mark: {mark}` step came before")),
            },
        };
        let patterns: Vec<(Option<String>, String)> = if wanted.per_node {
            let nodes = self.live_nodes().into_iter().filter(|n| {
                deployment.is_none_or(|d| {
                    n.metadata.labels.as_ref().and_then(|l| l.get(LABEL_DEPLOYMENT)) == Some(&d.to_owned())
                })
            });
            let names: Vec<String> = nodes.filter_map(|n| n.metadata.name).collect();
            if names.is_empty() {
                return self.fail(format!("trace: perNode, but there is no live SeiNode for {:?}", wanted.line));
            }
            names.into_iter().map(|name| (Some(name.clone()), wanted.line.replace("{node}", &name))).collect()
        } else {
            vec![(None, wanted.line.clone())]
        };
        let counts: Vec<usize> = self.world.inspect(|s| {
            let lines = s.trace.lines().get(since..).unwrap_or(&[]);
            patterns.iter().map(|(_, pattern)| lines.iter().filter(|l| line_matches(l, pattern)).count()).collect()
        });
        let after = wanted.since.as_ref().map(|m| format!(" since {m}")).unwrap_or_default();
        for ((node, pattern), count) in patterns.iter().zip(counts) {
            let count = u32::try_from(count).unwrap_or(u32::MAX);
            let ok = match (wanted.count, wanted.at_least, wanted.at_most) {
                (Some(exactly), _, _) => count == exactly,
                (None, at_least, at_most) => {
                    count >= at_least.unwrap_or(u32::from(at_most.is_none())) && at_most.is_none_or(|m| count <= m)
                }
            };
            if !ok {
                let want = match (wanted.count, wanted.at_least, wanted.at_most) {
                    (Some(exactly), _, _) => format!("{exactly} times"),
                    (None, Some(at_least), Some(at_most)) => format!("{at_least} to {at_most} times"),
                    (None, Some(at_least), None) => format!("at least {at_least} times"),
                    (None, None, Some(at_most)) => format!("at most {at_most} times"),
                    (None, None, None) => "at least once".into(),
                };
                let whose = node.as_ref().map(|n| format!(" (node {n})")).unwrap_or_default();
                self.fail(format!("the trace has {count} lines like {pattern:?}{after}{whose}, not {want}"));
            }
        }
    }

    /// SeiNodes of the namespace that are not being deleted.
    fn live_nodes(&self) -> Vec<SeiNode> {
        let nodes: Vec<SeiNode> = self.world.list(self.namespace, &Default::default()).unwrap_or_default();
        nodes.into_iter().filter(|n| n.metadata.deletion_timestamp.is_none()).collect()
    }

    /// Names of the namespace's SeiNodes that are not being deleted and satisfy `keep`, sorted.
    fn node_names(&self, keep: impl Fn(&SeiNode) -> bool) -> Vec<String> {
        self.node_names_with_deleting(|n| n.metadata.deletion_timestamp.is_none() && keep(n))
    }

    /// Names of the namespace's SeiNodes (those being deleted too) that satisfy `keep`, sorted.
    fn node_names_with_deleting(&self, keep: impl Fn(&SeiNode) -> bool) -> Vec<String> {
        let nodes: Vec<SeiNode> = self.world.list(self.namespace, &Default::default()).unwrap_or_default();
        let mut names: Vec<String> = nodes.into_iter().filter(|n| keep(n)).filter_map(|n| n.metadata.name).collect();
        names.sort();
        names
    }

    fn exists(&self, object: &ObjectPath) -> bool {
        let (world, namespace) = (self.world, self.namespace);
        match object.kind {
            ObjectKind::SeiNodeDeployment => world.get::<SeiNodeDeployment>(namespace, &object.name).is_ok(),
            ObjectKind::SeiNode => world.get::<SeiNode>(namespace, &object.name).is_ok(),
            ObjectKind::Service => world.get::<Service>(namespace, &object.name).is_ok(),
        }
    }
}

fn set_word(set: bool) -> &'static str {
    if set { "set" } else { "unset" }
}

fn ready_word(ready: bool) -> &'static str {
    if ready { "Ready" } else { "not Ready" }
}

fn sorted(names: &[String]) -> Vec<String> {
    let mut names = names.to_vec();
    names.sort();
    names
}

/// Each dotted path of `wanted` in `object` (as stored, serialized), compared with its value.
fn unmet_fields<T: Serialize>(what: &str, object: &T, wanted: &BTreeMap<String, Value>) -> Vec<String> {
    if wanted.is_empty() {
        return Vec::new();
    }
    let value = serde_json::to_value(object).unwrap_or(Value::Null);
    wanted
        .iter()
        .filter_map(|(path, want)| {
            let actual = field_at(&value, path).unwrap_or(&Value::Null);
            (actual != want).then(|| format!("{what} {path} is {actual}, not {want}"))
        })
        .collect()
}

/// The value at a dotted path; numeric segments index lists.
fn field_at<'v>(value: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.').try_fold(value, |cursor, segment| match cursor {
        Value::Array(items) => items.get(segment.parse::<usize>().ok()?),
        other => other.get(segment),
    })
}

/// Whether `line` contains `pattern`, where `*` in the pattern stands for any run of characters.
fn line_matches(line: &str, pattern: &str) -> bool {
    // A final `$` anchors the pattern at the end of the line: `sei/rpc-1$` is not `sei/rpc-10`.
    let (pattern, anchored) = match pattern.strip_suffix('$') {
        Some(pattern) => (pattern, true),
        None => (pattern, false),
    };
    let mut parts: Vec<&str> = pattern.split('*').collect();
    let last = if anchored { parts.pop() } else { None };
    let mut rest = line;
    for part in parts {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    last.is_none_or(|last| rest.ends_with(last))
}

/// Whether `wanted` appears in `seen` in order (others may come between).
fn is_subsequence(wanted: &[String], seen: &[&str]) -> bool {
    let mut seen = seen.iter();
    wanted.iter().all(|w| seen.any(|s| s == w))
}

/// What fails of the `wanted` conditions against an object's `conditions` (`what` names the object).
fn condition_failures(what: &str, conditions: &[Condition], wanted: &[ConditionExpectation]) -> Vec<String> {
    let mut failures = Vec::new();
    for wanted in wanted {
        let actual = find_condition(conditions, &wanted.type_);
        if wanted.absent {
            if let Some(c) = actual {
                failures.push(format!("{what} condition {} is {} {}, not absent", wanted.type_, c.status, c.reason));
            }
            continue;
        }
        let status_ok = wanted.status.as_ref().is_none_or(|s| actual.is_some_and(|c| &c.status == s));
        let reason_ok = wanted.reason.as_ref().is_none_or(|r| actual.is_some_and(|c| &c.reason == r));
        if !(status_ok && reason_ok) {
            let seen = actual.map(|c| format!("{} {}", c.status, c.reason)).unwrap_or("absent".into());
            failures.push(format!("{what} condition {} is {seen}", wanted.type_));
        }
        let message = actual.map(|c| c.message.as_str());
        for text in &wanted.message_contains {
            if !message.is_some_and(|m| m.contains(text.as_str())) {
                failures.push(format!(
                    "{what} condition {} message is {message:?}, which does not contain {text:?}",
                    wanted.type_
                ));
            }
        }
    }
    failures
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_paths_read_nested_fields_and_list_items() {
        let value = serde_json::json!({"status": {"plan": {"tasks": [{"type": "a"}, {"type": "b"}]}}});
        assert_eq!(field_at(&value, "status.plan.tasks.1.type"), Some(&serde_json::json!("b")));
        assert_eq!(field_at(&value, "status.plan.tasks.2.type"), None);
        assert_eq!(field_at(&value, "status.rollout"), None);
    }

    #[test]
    fn events_match_in_order_with_others_between() {
        let wanted = vec!["RolloutStarted".to_owned(), "RolloutComplete".to_owned()];
        assert!(is_subsequence(&wanted, &["RolloutStarted", "RolloutStalled", "RolloutComplete"]));
        assert!(!is_subsequence(&wanted, &["RolloutComplete", "RolloutStarted"]));
    }

    #[test]
    fn a_star_in_a_trace_pattern_stands_for_any_text() {
        let line = "   99.100s pod      sei/upgrade-g2-0-bootstrap-x7 sei:v6.3.0 at height 4999: halted (exit 0)";
        assert!(line_matches(line, "upgrade-g2-0-bootstrap-* sei:v6.3.0 at height 4999: halted"));
        assert!(line_matches(line, "sei:v6.3.0"));
        assert!(!line_matches(line, "upgrade-g2-1-bootstrap-* sei:v6.3.0"));
        assert!(!line_matches(line, "halted*sei:v6.3.0"), "the parts match in order");
        assert!(line_matches(line, "halted (exit 0)$"));
        assert!(line_matches(line, "pod*(exit 0)$"));
        assert!(!line_matches(line, "halted$"), "`$` anchors at the end of the line");
        assert!(!line_matches("operator reconcile SeiNode sei/rpc-10", "reconcile SeiNode sei/rpc-1$"));
    }
}
