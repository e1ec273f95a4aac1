//! Expectations of a scenario step: which of the checks an `expect` step lists do not hold in the world now,
//! each described so a failure report says what was wanted and what was seen, and what the step remembers for
//! later steps once it holds. Every check only reads the world: when a check runs, or in which order, changes
//! nothing a run does.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::rc::Rc;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Service};
use sei_operator_core::api::template_hash;
use sei_operator_core::api::{PlanPhase, SeiNode, SeiNodeDeployment, SeiNodeDeploymentStatus, TaskStatus};
use sei_operator_core::cluster::{Event, ObjectRef};
use sei_operator_core::objects::meta::{LABEL_DEPLOYMENT, LABEL_REVISION, is_controlled_by};
use serde_json::Value;

use super::format::{
    CheckedKind, EventsMatcher, Expectation, Matcher, NodeSet, NodeSetKind, ObjectCheck, ObjectPath, PanicsMatcher,
    PodCheck, SubmissionsExpectation, TraceExpectation,
};
use crate::apiserver::json::Fields;
use crate::harness::world::World;
use crate::kube::pod::Seid;

/// What earlier steps of a run remembered: values under names (`remember:`, and revision names bound by
/// `revisions`), and moments (`mark` steps).
#[derive(Debug, Default)]
pub(super) struct Memory {
    values: BTreeMap<String, String>,
    /// Mark → how many sidecar submissions had been answered by then.
    marks: BTreeMap<String, usize>,
    /// Mark → how many trace lines had been recorded by then.
    trace_marks: BTreeMap<String, usize>,
    /// The deployments expectations read, by namespace and name, decoded and as JSON, with the resourceVersion
    /// they were read at. An expectation is polled every tick and a deployment's status grows with its nodes; at
    /// the same resourceVersion the stored object is the same, so it is not decoded and encoded again.
    deployments: RefCell<BTreeMap<(String, String), ReadDeployment>>,
}

/// A deployment as an expectation reads it: the typed object and its JSON, at a resourceVersion — and what its
/// `is` field checks found there, which a deployment at the same resourceVersion answers the same way.
#[derive(Debug)]
struct ReadDeployment {
    version: String,
    object: Rc<SeiNodeDeployment>,
    value: Rc<Value>,
    verdicts: FieldVerdicts,
}

/// What each `is` check (by identity: the scenario holds every check for the whole run) found of the fields of
/// one stored version, while the remembered values it may compare with stay the same. An expectation is polled
/// every tick of its wait, and the deployment it reads changes far less often than that.
type FieldVerdicts = Rc<RefCell<Vec<(*const ObjectCheck, Checked)>>>;

impl Memory {
    /// Remembers the present moment as `name`.
    pub(super) fn mark(&mut self, world: &World, name: &str) {
        let (submissions, lines) = world.inspect(|s| (s.ledger.sidecar_submissions.len(), s.trace.lines().len()));
        self.marks.insert(name.to_owned(), submissions);
        self.trace_marks.insert(name.to_owned(), lines);
    }

    /// Keeps the values an expectation remembered once it held.
    pub(super) fn remember(&mut self, values: BTreeMap<String, String>) {
        self.values.extend(values);
        // A field check may compare with a remembered value (`sameAs`, `differentFrom`).
        for read in self.deployments.get_mut().values() {
            read.verdicts.borrow_mut().clear();
        }
    }
}

/// The result of checking one expectation (with its `and` expectations): what does not hold, and what it
/// remembers if everything does.
#[derive(Clone, Debug, Default)]
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

/// The deployment an expectation names, as read when it is checked.
struct Deployment {
    name: String,
    object: Rc<SeiNodeDeployment>,
}

impl Judge<'_> {
    fn fail(&mut self, message: String) {
        self.checked.unmet.push(message);
    }

    fn all(&mut self, expectation: &Expectation) {
        let deployment = self.deployment(expectation);
        self.node_sets(expectation, deployment.as_ref());
        self.objects(expectation);
        self.events(expectation);
        for matcher in &expectation.panics {
            self.panics("", matcher);
        }
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

    /// The named deployment, which must exist, and its `is` checks. `None` when none is named or it is missing
    /// (reported), so the checks of its node sets are skipped.
    fn deployment(&mut self, expectation: &Expectation) -> Option<Deployment> {
        let Some(name) = &expectation.deployment else {
            let of_deployment = expectation
                .nodes
                .iter()
                .any(|set| matches!(set.of, Some(NodeSetKind::Children | NodeSetKind::Service)));
            if expectation.is.is_some() || of_deployment {
                self.fail(
                    "the expectation names no `deployment` for its `is` or its node sets of children or service".into(),
                );
            }
            return None;
        };
        let Some((object, value, verdicts)) = self.read_deployment(name) else {
            self.fail(format!("SeiNodeDeployment {name} does not exist"));
            return None;
        };
        let deployment = Deployment { name: name.clone(), object };
        if let Some(check) = &expectation.is {
            let what = format!("SeiNodeDeployment {name}");
            if check.exists == Some(false) {
                self.fail(format!("{what} still exists"));
            }
            self.fields_of_version(&what, &value, check, &verdicts);
            self.deployment_facts(&deployment, check);
            if check.pod.is_some() || !check.panics.is_empty() {
                self.fail(format!("{what}: `pod` and `panics` are checks of a SeiNode"));
            }
        }
        Some(deployment)
    }

    /// The deployment `name` as the harness reads it, typed and as JSON: from the memory when it is still at the
    /// resourceVersion it was read at there (the harness reads the store as it is, without faults).
    fn read_deployment(&self, name: &str) -> Option<(Rc<SeiNodeDeployment>, Rc<Value>, FieldVerdicts)> {
        let key = ObjectRef::new("SeiNodeDeployment", self.namespace, name);
        let version = self.world.inspect(|s| {
            let stored = s.api.store.get(&key, None)?;
            stored.metadata_field("resourceVersion").and_then(Value::as_str).map(str::to_owned)
        });
        let slot = (self.namespace.to_owned(), name.to_owned());
        let mut read = self.memory.deployments.borrow_mut();
        if let (Some(version), Some(known)) = (&version, read.get(&slot))
            && known.version == *version
        {
            return Some((Rc::clone(&known.object), Rc::clone(&known.value), Rc::clone(&known.verdicts)));
        }
        let object = Rc::new(self.world.get::<SeiNodeDeployment>(self.namespace, name).ok()?);
        let value = Rc::new(serde_json::to_value(&*object).unwrap_or(Value::Null));
        let verdicts = FieldVerdicts::default();
        if let Some(version) = version {
            let read_now = ReadDeployment {
                version,
                object: Rc::clone(&object),
                value: Rc::clone(&value),
                verdicts: Rc::clone(&verdicts),
            };
            read.insert(slot, read_now);
        }
        Some((object, value, verdicts))
    }

    /// [`Judge::fields`] of a deployment as stored at one version: what the same check found there before, else
    /// found now and kept.
    fn fields_of_version(&mut self, what: &str, value: &Value, check: &ObjectCheck, verdicts: &FieldVerdicts) {
        let found = verdicts.borrow().iter().find(|(seen, _)| std::ptr::eq(*seen, check)).map(|(_, c)| c.clone());
        let found = found.unwrap_or_else(|| {
            let before = std::mem::take(&mut self.checked);
            self.fields(what, value, check);
            let found = std::mem::replace(&mut self.checked, before);
            verdicts.borrow_mut().push((std::ptr::from_ref(check), found.clone()));
            found
        });
        self.checked.unmet.extend(found.unmet);
        self.checked.remembered.extend(found.remembered);
    }

    /// The derived facts about a deployment an object check asks for: its plan's current task, whether its
    /// latest spec is rolled out, whether it adopted every node labelled with its name.
    fn deployment_facts(&mut self, deployment: &Deployment, check: &ObjectCheck) {
        let (name, object) = (&deployment.name, &deployment.object);
        let unset = SeiNodeDeploymentStatus::default();
        let status = object.status.as_ref().unwrap_or(&unset);
        if let Some(task) = &check.current_task {
            let current = status
                .plan
                .as_ref()
                .filter(|p| p.phase == PlanPhase::Active)
                .and_then(|p| p.tasks.iter().find(|t| t.status != TaskStatus::Complete))
                .map(|t| t.type_.as_str());
            if current != Some(task.as_str()) {
                let seen = current.map_or("no active plan".to_owned(), |t| format!("{t:?}"));
                self.fail(format!("SeiNodeDeployment {name} plan is at {seen}, not {task:?}"));
            }
        }
        if let Some(rolled_out) = check.latest_spec_rolled_out {
            let latest = template_hash(&object.spec.template.spec);
            if (status.template_hash.as_deref() == Some(latest.as_str())) != rolled_out {
                self.fail(format!(
                    "SeiNodeDeployment {name} templateHash is {:?} and the current template's is {latest:?}: the \
                     latest spec is {}",
                    status.template_hash,
                    if rolled_out { "not rolled out" } else { "rolled out" }
                ));
            }
        }
        if let Some(wanted) = check.adopted_all {
            let uid = object.metadata.uid.clone().unwrap_or_default();
            let orphans = self.node_names_with_deleting(|n| {
                n.metadata.deletion_timestamp.is_none()
                    && n.metadata.labels.as_ref().and_then(|l| l.get(LABEL_DEPLOYMENT)) == Some(name)
                    && !is_controlled_by(&n.metadata, &uid)
            });
            if orphans.is_empty() != wanted {
                self.fail(format!("SeiNodeDeployment {name} has labelled SeiNodes it does not control: {orphans:?}"));
            }
        }
    }

    /// Every field matcher of `check` against `object` (`what` names it).
    fn fields(&mut self, what: &str, object: &Value, check: &ObjectCheck) {
        for (path, matcher) in &check.fields {
            let actual = field_at(object, path);
            // Named only if it fails: an expectation is polled every tick while it waits.
            self.matcher(&FieldLabel(what, path), actual.unwrap_or(&Value::Null), matcher);
        }
    }

    /// One matcher against the value it reads (`null` for a missing field), `what` naming it in a failure.
    fn matcher(&mut self, what: &dyn fmt::Display, actual: &Value, wanted: &Matcher) {
        if let Some(want) = &wanted.equals
            && actual != want
        {
            self.fail(format!("{what} is {actual}, not {want}"));
        }
        if let Some(other) = &wanted.not
            && actual == other
        {
            self.fail(format!("{what} is {actual}, wanted anything else"));
        }
        match (wanted.present, actual.is_null()) {
            (Some(true), true) => self.fail(format!("{what} is not set")),
            (Some(false), false) => self.fail(format!("{what} is {actual}, not unset")),
            _ => {}
        }
        for part in &wanted.contains {
            let holds = match (actual, part) {
                (Value::String(text), Value::String(part)) => text.contains(part.as_str()),
                (Value::Array(items), part) => items.contains(part),
                _ => false,
            };
            if !holds {
                self.fail(format!("{what} is {actual}, which does not contain {part}"));
            }
        }
        if let Some(options) = &wanted.one_of
            && !options.contains(actual)
        {
            self.fail(format!("{what} is {actual}, not one of {options:?}"));
        }
        if let Some(floor) = wanted.above
            && actual.as_i64().is_none_or(|n| n <= floor)
        {
            self.fail(format!("{what} is {actual}, not above {floor}"));
        }
        let text = remembered_text(actual);
        if let Some(name) = &wanted.remember {
            match &text {
                Some(value) => {
                    self.checked.remembered.insert(name.clone(), value.clone());
                }
                None => self.fail(format!("{what} is not set, so there is nothing to remember as {name:?}")),
            }
        }
        let recalled = |name: &String| self.memory.values.get(name).cloned();
        if let Some(name) = &wanted.same_as {
            match recalled(name) {
                None => self.fail(format!("{what}: no earlier expectation remembered {name:?}")),
                Some(value) if text.as_ref() != Some(&value) => {
                    self.fail(format!("{what} is {text:?}, not {value:?} (remembered as {name:?})"))
                }
                Some(_) => {}
            }
        }
        if let Some(name) = &wanted.different_from {
            match recalled(name) {
                None => self.fail(format!("{what}: no earlier expectation remembered {name:?}")),
                Some(value) if text.as_ref() == Some(&value) => {
                    self.fail(format!("{what} is still {value:?} (remembered as {name:?})"))
                }
                Some(_) => {}
            }
        }
    }

    /// Each node set: who is in it, and what holds of its nodes.
    fn node_sets(&mut self, expectation: &Expectation, deployment: Option<&Deployment>) {
        for set in &expectation.nodes {
            if let Err(wrong) = set.validate() {
                self.fail(wrong);
                continue;
            }
            let Some(kind) = set.of else {
                for name in &set.names {
                    let check = set.are.clone().unwrap_or_default();
                    match self.world.get::<SeiNode>(self.namespace, name) {
                        Err(_) if check.exists == Some(false) => {}
                        Err(_) => self.fail(format!("SeiNode {name} does not exist")),
                        Ok(_) if check.exists == Some(false) => self.fail(format!("SeiNode {name} still exists")),
                        Ok(node) => self.node(name, &node, &check),
                    }
                }
                continue;
            };
            self.node_set(expectation.deployment.as_deref(), deployment, kind, set);
        }
    }

    /// A set `of` something: its members, `exactly` who they are, and what holds of each (or of `atLeast`).
    fn node_set(&mut self, named: Option<&str>, deployment: Option<&Deployment>, kind: NodeSetKind, set: &NodeSet) {
        let members: Vec<SeiNode> = match kind {
            NodeSetKind::Namespace => self.live_nodes(),
            NodeSetKind::Deployment => self
                .live_nodes()
                .into_iter()
                .filter(|n| {
                    named.is_none_or(|d| {
                        n.metadata.labels.as_ref().and_then(|l| l.get(LABEL_DEPLOYMENT)).is_some_and(|l| l == d)
                    })
                })
                .collect(),
            // The deployment is missing (reported) or unnamed (reported): nothing more to say of its sets.
            NodeSetKind::Children | NodeSetKind::Service if deployment.is_none() => return,
            NodeSetKind::Children => {
                let uid = deployment.and_then(|d| d.object.metadata.uid.clone()).unwrap_or_default();
                self.nodes_with_deleting(|n| is_controlled_by(&n.metadata, &uid))
            }
            NodeSetKind::Service => {
                let name = deployment.map(|d| d.name.as_str()).unwrap_or_default();
                let selector = self
                    .world
                    .get::<Service>(self.namespace, name)
                    .ok()
                    .and_then(|s| s.spec?.selector)
                    .unwrap_or_default();
                // An empty selector selects nothing here: the operator's Service always names its deployment.
                if selector.is_empty() {
                    Vec::new()
                } else {
                    self.nodes_with_deleting(|n| {
                        n.metadata.labels.as_ref().is_some_and(|l| selector.iter().all(|(k, v)| l.get(k) == Some(v)))
                    })
                }
            }
        };
        let what = match kind {
            NodeSetKind::Namespace => "the live SeiNodes".to_owned(),
            NodeSetKind::Deployment => {
                format!("the live SeiNodes{}", named.map(|d| format!(" of {d}")).unwrap_or_default())
            }
            NodeSetKind::Children => format!("the SeiNodes {} controls", named.unwrap_or_default()),
            NodeSetKind::Service => format!("the SeiNodes Service {} selects", named.unwrap_or_default()),
        };
        let mut names: Vec<String> = members.iter().filter_map(|n| n.metadata.name.clone()).collect();
        names.sort();
        if let Some(wanted) = &set.exactly
            && sorted(wanted) != names
        {
            self.fail(format!("{what} are {names:?}, not {:?}", sorted(wanted)));
        }
        let Some(check) = &set.are else { return };
        match set.at_least {
            None => {
                if members.is_empty() {
                    self.fail(format!("{what}: there are none"));
                }
                for node in &members {
                    self.node(node.metadata.name.as_deref().unwrap_or_default(), node, check);
                }
            }
            Some(at_least) => {
                let (mut matching, mut others) = (Vec::new(), Vec::new());
                for node in &members {
                    let name = node.metadata.name.clone().unwrap_or_default();
                    // A scratch judge: what a node's checks would remember is not this expectation's to keep.
                    let mut scratch = Judge { checked: Checked::default(), ..*self };
                    scratch.node(&name, node, check);
                    match scratch.checked.unmet.into_iter().next() {
                        None => matching.push(name),
                        Some(why_not) => others.push(why_not),
                    }
                }
                if u32::try_from(matching.len()).unwrap_or(u32::MAX) < at_least {
                    self.fail(format!(
                        "{} of {what} are as wanted ({matching:?}), not at least {at_least}: {}",
                        matching.len(),
                        others.join("; ")
                    ));
                }
            }
        }
    }

    /// Every check of `check` that `node` (named `name`) fails: its stored fields, its pod, its panics.
    fn node(&mut self, name: &str, node: &SeiNode, check: &ObjectCheck) {
        let what = format!("SeiNode {name}");
        let value = serde_json::to_value(node).unwrap_or(Value::Null);
        self.fields(&what, &value, check);
        if check.current_task.is_some() || check.latest_spec_rolled_out.is_some() || check.adopted_all.is_some() {
            self.fail(format!("{what}: currentTask, latestSpecRolledOut and adoptedAll are checks of a deployment"));
        }
        for matcher in &check.panics {
            let mut matcher = matcher.clone();
            matcher.node = Some(name.to_owned());
            self.panics(&format!("{what}: "), &matcher);
        }
        if let Some(pod) = &check.pod {
            self.pod(name, pod);
        }
    }

    /// What the pod of SeiNode `name` runs.
    fn pod(&mut self, name: &str, wanted: &PodCheck) {
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
        if let Some(want) = wanted.ready {
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

    /// `objects`: each exists (or not), and its field matchers hold.
    fn objects(&mut self, expectation: &Expectation) {
        for (object, check) in &expectation.objects {
            let what = format!("{:?} {}", object.kind, object.name);
            let Some(value) = self.read(object) else {
                if check.exists != Some(false) {
                    self.fail(format!("{what} does not exist"));
                }
                continue;
            };
            if check.exists == Some(false) {
                self.fail(format!("{what} still exists"));
                continue;
            }
            if object.kind == CheckedKind::SeiNode {
                match serde_json::from_value::<SeiNode>(value) {
                    Ok(node) => self.node(&object.name, &node, check),
                    Err(e) => self.fail(format!("{what} does not decode: {e}")),
                }
                continue;
            }
            self.fields(&what, &value, check);
            if object.kind == CheckedKind::SeiNodeDeployment {
                match serde_json::from_value::<SeiNodeDeployment>(value) {
                    Ok(deployment) => {
                        let deployment = Deployment { name: object.name.clone(), object: Rc::new(deployment) };
                        self.deployment_facts(&deployment, check);
                    }
                    Err(e) => self.fail(format!("{what} does not decode: {e}")),
                }
            } else if check.current_task.is_some()
                || check.latest_spec_rolled_out.is_some()
                || check.adopted_all.is_some()
                || check.pod.is_some()
                || !check.panics.is_empty()
            {
                self.fail(format!("{what}: only paths and `exists` are checks of a {:?}", object.kind));
            }
        }
    }

    /// The object `object` names, as stored (serialized), if it exists.
    fn read(&self, object: &ObjectPath) -> Option<Value> {
        let (world, namespace, name) = (self.world, self.namespace, object.name.as_str());
        let value = match object.kind {
            CheckedKind::SeiNodeDeployment => {
                serde_json::to_value(world.get::<SeiNodeDeployment>(namespace, name).ok()?)
            }
            CheckedKind::SeiNode => serde_json::to_value(world.get::<SeiNode>(namespace, name).ok()?),
            CheckedKind::Service => serde_json::to_value(world.get::<Service>(namespace, name).ok()?),
            CheckedKind::Job => serde_json::to_value(world.get::<Job>(namespace, name).ok()?),
            CheckedKind::PersistentVolumeClaim => {
                serde_json::to_value(world.get::<PersistentVolumeClaim>(namespace, name).ok()?)
            }
        };
        value.ok()
    }

    /// The events matchers, about the deployment (or every object without one).
    fn events(&mut self, expectation: &Expectation) {
        // An expectation is polled every tick: copying every event out when none is checked is waste.
        if expectation.events.is_empty() {
            return;
        }
        let deployment = expectation.deployment.as_ref();
        let events: Vec<Event> = self.world.inspect(|s| {
            s.ledger
                .events
                .iter()
                .filter(|(_, e)| deployment.is_none_or(|d| &e.regarding.name == d))
                .map(|(_, e)| e.clone())
                .collect()
        });
        let about = deployment.map_or("any object", String::as_str);
        for matcher in &expectation.events {
            let picked: Vec<&Event> = events
                .iter()
                .filter(|e| matcher.type_.as_ref().is_none_or(|t| format!("{:?}", e.type_) == *t))
                .filter(|e| matcher.reason.as_ref().is_none_or(|r| &e.reason == r))
                .filter(|e| matcher.message_contains.as_ref().is_none_or(|m| e.message.contains(m.as_str())))
                .collect();
            let reasons: Vec<&str> = picked.iter().map(|e| e.reason.as_str()).collect();
            let which = event_filter(matcher);
            let count = u32::try_from(picked.len()).unwrap_or(u32::MAX);
            if let Err(wrong) = matcher.validate() {
                self.fail(wrong);
                continue;
            }
            let has_mode = matcher.in_order.is_some()
                || matcher.exactly.is_some()
                || matcher.none.is_some()
                || matcher.count.is_some()
                || matcher.at_most.is_some();
            if let Some(wanted) = &matcher.in_order
                && !is_subsequence(wanted, &reasons)
            {
                self.fail(format!("events{which} {wanted:?} not seen in order about {about}; seen {reasons:?}"));
            }
            if let Some(wanted) = &matcher.exactly
                && reasons != *wanted
            {
                self.fail(format!("events{which} about {about} are {reasons:?}, not exactly {wanted:?}"));
            }
            for forbidden in matcher.none.iter().flatten() {
                if reasons.contains(&forbidden.as_str()) {
                    self.fail(format!("event{which} {forbidden} was emitted about {about}"));
                }
            }
            let wrong_count = match (matcher.count, matcher.at_most) {
                (Some(exactly), _) => (count != exactly).then(|| format!("exactly {exactly}")),
                (None, Some(at_most)) => (count > at_most).then(|| format!("at most {at_most}")),
                (None, None) if !has_mode => (count == 0).then(|| "at least one".to_owned()),
                (None, None) => None,
            };
            if let Some(wanted) = wrong_count {
                let seen: Vec<String> =
                    events.iter().map(|e| format!("{:?} {}: {}", e.type_, e.reason, e.message)).collect();
                self.fail(format!("{count} events{which} about {about}, wanted {wanted}; seen {seen:?}"));
            }
        }
    }

    /// One panics matcher (`prefix` names the node check it sits in, if any).
    fn panics(&mut self, prefix: &str, matcher: &PanicsMatcher) {
        let namespace = self.namespace;
        let panics: Vec<String> = self.world.inspect(|s| {
            s.ledger
                .panics
                .iter()
                .filter(|p| !matcher.upgrade || p.upgrade_panic)
                .filter(|p| {
                    matcher.node.as_ref().is_none_or(|n| p.namespace == namespace && p.node.as_ref() == Some(n))
                })
                .filter(|p| {
                    matcher
                        .node_prefix
                        .as_ref()
                        .is_none_or(|prefix| p.node.clone().unwrap_or_default().starts_with(prefix.as_str()))
                })
                .filter(|p| matcher.image.as_ref().is_none_or(|i| &p.image == i))
                .map(|p| format!("{}: {}", p.pod, p.reason))
                .collect()
        });
        let count = u32::try_from(panics.len()).unwrap_or(u32::MAX);
        if let Err(wrong) = matcher.validate() {
            return self.fail(format!("{prefix}{wrong}"));
        }
        let wrong = match (matcher.count, matcher.at_most) {
            (Some(_), Some(_)) => None,
            (Some(exactly), None) => (count != exactly).then(|| format!("exactly {exactly}")),
            (None, Some(at_most)) => (count > at_most).then(|| format!("at most {at_most}")),
            (None, None) => (count == 0).then(|| "at least one".to_owned()),
        };
        if let Some(wanted) = wrong {
            let kind = if matcher.upgrade { "upgrade panics" } else { "panics" };
            let mut of = Vec::new();
            if let Some(node) = &matcher.node {
                of.push(format!("of SeiNode {node}"));
            }
            if let Some(node_prefix) = &matcher.node_prefix {
                of.push(format!("of nodes {node_prefix}*"));
            }
            if let Some(image) = &matcher.image {
                of.push(format!("of {image}"));
            }
            self.fail(format!("{prefix}{count} {kind} {}, wanted {wanted}: {panics:?}", of.join(" ")));
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
            s.ledger
                .sidecar_submissions
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
            // Per node, only the lines that match with any name in place of `{node}` can match one node's
            // pattern (`*` matches the name too): the lines are scanned once, not once per node.
            let candidates: Vec<&String> = if wanted.per_node {
                let any_node = wanted.line.replace("{node}", "*");
                lines.iter().filter(|l| line_matches(l, &any_node)).collect()
            } else {
                lines.iter().collect()
            };
            patterns.iter().map(|(_, pattern)| candidates.iter().filter(|l| line_matches(l, pattern)).count()).collect()
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

    /// Names of the namespace's SeiNodes (those being deleted too) that satisfy `keep`, sorted.
    fn node_names_with_deleting(&self, keep: impl Fn(&SeiNode) -> bool) -> Vec<String> {
        let nodes: Vec<SeiNode> = self.world.list(self.namespace, &Default::default()).unwrap_or_default();
        let mut names: Vec<String> = nodes.into_iter().filter(|n| keep(n)).filter_map(|n| n.metadata.name).collect();
        names.sort();
        names
    }

    /// The namespace's SeiNodes (those being deleted too) that satisfy `keep`, sorted by name.
    fn nodes_with_deleting(&self, keep: impl Fn(&SeiNode) -> bool) -> Vec<SeiNode> {
        let nodes: Vec<SeiNode> = self.world.list(self.namespace, &Default::default()).unwrap_or_default();
        let mut nodes: Vec<SeiNode> = nodes.into_iter().filter(|n| keep(n)).collect();
        nodes.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        nodes
    }
}

/// How an events matcher's filters read in a message (` Warning RolloutStalled "not ready"`).
fn event_filter(matcher: &EventsMatcher) -> String {
    let mut parts = Vec::new();
    parts.extend(matcher.type_.clone());
    parts.extend(matcher.reason.clone());
    parts.extend(matcher.message_contains.as_ref().map(|m| format!("saying {m:?}")));
    if parts.is_empty() { String::new() } else { format!(" ({})", parts.join(" ")) }
}

/// A value as `remember` keeps it and `sameAs` compares it: a text as itself, anything else as JSON; `None`
/// when it is missing.
fn remembered_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(text) => Some(text.clone()),
        other => Some(other.to_string()),
    }
}

fn ready_word(ready: bool) -> &'static str {
    if ready { "Ready" } else { "not Ready" }
}

fn sorted(names: &[String]) -> Vec<String> {
    let mut names = names.to_vec();
    names.sort();
    names
}

/// An object's field as a failure names it: `<object> <path>`.
struct FieldLabel<'a>(&'a str, &'a str);

impl fmt::Display for FieldLabel<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.0, self.1)
    }
}

/// The value at a dotted path: a number indexes a list; another segment into a list picks its first item whose
/// `type` is that segment (conditions, plan tasks). A key with dots in it (a label such as `sei.io/revision`) is
/// read as the segments it spans: where the next segment is no key, the next two joined with `.` are tried,
/// then three, and so on.
fn field_at<'v>(value: &'v Value, path: &str) -> Option<&'v Value> {
    let segments: Vec<&str> = path.split('.').collect();
    let mut cursor = value;
    let mut at = 0;
    while at < segments.len() {
        let segment = segments[at];
        match cursor {
            Value::Array(items) => {
                cursor = match segment.parse::<usize>() {
                    Ok(index) => items.get(index)?,
                    Err(_) => items.iter().find(|item| item.get("type").and_then(Value::as_str) == Some(segment))?,
                };
                at += 1;
            }
            Value::Object(fields) => {
                // The shortest key first (a key may hold dots: a label's name): one segment needs no joining.
                let single = fields.get(segment).map(|next| (next, at + 1));
                let (next, end) = single.or_else(|| {
                    (at + 2..=segments.len())
                        .find_map(|end| fields.get(&segments[at..end].join(".")).map(|next| (next, end)))
                })?;
                cursor = next;
                at = end;
            }
            _ => return None,
        }
    }
    Some(cursor)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_paths_read_nested_fields_list_items_and_typed_items() {
        let value = serde_json::json!({
            "status": {"plan": {"tasks": [{"type": "a"}, {"type": "b", "status": "Running"}]}},
            "spec": {"selector": {"sei.io/revision": "r1"}},
        });
        assert_eq!(field_at(&value, "status.plan.tasks.1.type"), Some(&serde_json::json!("b")));
        assert_eq!(field_at(&value, "status.plan.tasks.2.type"), None);
        assert_eq!(field_at(&value, "status.plan.tasks.b.status"), Some(&serde_json::json!("Running")));
        assert_eq!(field_at(&value, "status.plan.tasks.c"), None);
        assert_eq!(field_at(&value, "status.rollout"), None);
        assert_eq!(field_at(&value, "spec.selector.sei.io/revision"), Some(&serde_json::json!("r1")));
        assert_eq!(field_at(&value, "spec.selector.sei.io"), None);
    }

    /// A deployment's `is` checks are answered once per stored version — until a step remembers values, which a
    /// check may compare with: then the same check at the same version is asked again.
    #[test]
    fn a_field_verdict_kept_for_a_version_is_dropped_once_a_step_remembers_values() {
        let world = World::builder(1).build().expect("a world");
        let deployment: SeiNodeDeployment = serde_json::from_value(serde_json::json!({
            "apiVersion": "sei.io/v1alpha1", "kind": "SeiNodeDeployment",
            "metadata": {"name": "rpc", "namespace": "sei"},
            "spec": {"replicas": 2, "updateStrategy": {"type": "InPlace"},
                     "template": {"spec": {"chainId": "pacific-1", "image": "sei:v1", "fullNode": {}}}},
        }))
        .expect("a deployment");
        world.create(&deployment).expect("admitted");
        let same_as = |name: &str| Matcher { same_as: Some(name.into()), ..Matcher::default() };
        let expectation = Expectation {
            deployment: Some("rpc".into()),
            is: Some(ObjectCheck { fields: vec![("spec.replicas".into(), same_as("n"))], ..ObjectCheck::default() }),
            ..Expectation::default()
        };
        let mut memory = Memory::default();
        let unmet = |memory: &Memory| check(&world, "sei", &expectation, memory).unmet;
        assert_eq!(unmet(&memory).len(), 1, "nothing remembered as n yet");
        assert_eq!(unmet(&memory).len(), 1, "the same answer, kept for the version");
        memory.remember([("n".to_owned(), "2".to_owned())].into());
        assert_eq!(unmet(&memory), Vec::<String>::new(), "asked again: n is 2 now");
        memory.remember([("n".to_owned(), "3".to_owned())].into());
        let unmet = unmet(&memory);
        assert!(unmet.len() == 1 && unmet[0].contains("(remembered as \"n\")"), "{unmet:?}");
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
