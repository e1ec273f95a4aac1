//! Expectations of a scenario step: which of the checks an `expect` step lists do not hold in the world now,
//! each described so a failure report says what was wanted and what was seen.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Service;
use sei_operator::api::{Plan, PlanPhase, SeiNode, SeiNodeDeployment, TaskStatus};
use sei_operator::meta::{LABEL_REVISION, find_condition, is_controlled_by};
use sei_operator::rollout::template_hash;

use super::format::{
    Expectation, NodeExpectation, PlanExpectation, SubmissionsExpectation, TraceExpectation, ValueExpectation,
};
use crate::world::World;

/// Every check of the expectation that does not hold now, described.
pub(super) fn unmet(world: &World, namespace: &str, expectation: &Expectation) -> Vec<String> {
    let mut unmet = Vec::new();
    let events: Vec<(String, String)> =
        world.inspect(|s| s.events.iter().map(|(_, e)| (e.regarding.name.clone(), e.reason.clone())).collect());
    if let Some(name) = &expectation.deployment {
        match world.get::<SeiNodeDeployment>(namespace, name) {
            Err(_) => unmet.push(format!("SeiNodeDeployment {name} does not exist")),
            Ok(deployment) => {
                let status = deployment.status.unwrap_or_default();
                if let Some(phase) = &expectation.phase {
                    let actual = status.phase.map(|p| format!("{p:?}")).unwrap_or_default();
                    if &actual != phase {
                        unmet.push(format!("{name} phase is {actual:?}, not {phase:?}"));
                    }
                }
                for wanted in &expectation.conditions {
                    let actual = find_condition(&status.conditions, &wanted.type_);
                    let status_ok = wanted.status.as_ref().is_none_or(|s| actual.is_some_and(|c| &c.status == s));
                    let reason_ok = wanted.reason.as_ref().is_none_or(|r| actual.is_some_and(|c| &c.reason == r));
                    if !(status_ok && reason_ok) {
                        let seen = actual.map(|c| format!("{} {}", c.status, c.reason)).unwrap_or("absent".into());
                        unmet.push(format!("{name} condition {} is {seen}", wanted.type_));
                    }
                }
            }
        }
    }
    let about = |reason: &&(String, String)| expectation.deployment.as_ref().is_none_or(|d| &reason.0 == d);
    let reasons: Vec<&str> = events.iter().filter(about).map(|(_, r)| r.as_str()).collect();
    if !is_subsequence(&expectation.events, &reasons) {
        unmet.push(format!("events {:?} not seen in order; seen {reasons:?}", expectation.events));
    }
    for forbidden in &expectation.no_events {
        if reasons.contains(&forbidden.as_str()) {
            unmet.push(format!("event {forbidden} was emitted"));
        }
    }
    for (name, wanted) in &expectation.nodes {
        match world.get::<SeiNode>(namespace, name) {
            Err(_) if wanted.absent => {}
            Err(_) => unmet.push(format!("SeiNode {name} does not exist")),
            Ok(_) if wanted.absent => unmet.push(format!("SeiNode {name} still exists")),
            Ok(node) => unmet.extend(node_unmet(world, namespace, name, &node, wanted)),
        }
    }
    if let Some(expected) = expectation.upgrade_panics {
        let actual = world.inspect(|s| s.panics.iter().filter(|p| p.upgrade_panic).count());
        if u32::try_from(actual).ok() != Some(expected) {
            unmet.push(format!("{actual} upgrade panics, not {expected}"));
        }
    }
    unmet
}

/// The checks of `wanted` that `node` (named `name`) fails, described; all of them, the original fields and
/// those added since (so a count of nodes matching a description uses the same checks).
fn node_unmet(world: &World, namespace: &str, name: &str, node: &SeiNode, wanted: &NodeExpectation) -> Vec<String> {
    let mut unmet = Vec::new();
    let status = node.status.clone().unwrap_or_default();
    let phase = status.phase.map(|p| format!("{p:?}"));
    let checks = [
        ("phase", wanted.phase.clone(), phase),
        ("image", wanted.image.clone(), Some(node.spec.image.clone())),
        ("currentImage", wanted.current_image.clone(), status.current_image.clone()),
        ("sidecarReady", wanted.sidecar_ready.map(|b| b.to_string()), status.sidecar_ready.map(|b| b.to_string())),
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
            unmet.push(format!("SeiNode {name} {field} is {actual:?}, not {want:?}"));
        }
    }
    if let Some(floor) = wanted.latest_height_above {
        let height = status.latest_height;
        if !height.is_some_and(|h| u64::try_from(h).is_ok_and(|h| h > floor)) {
            unmet.push(format!("SeiNode {name} latestHeight is {height:?}, not above {floor}"));
        }
    }
    if let Some(pod_wanted) = &wanted.pod {
        let pod_name = format!("{name}-0");
        match world.pod(namespace, &pod_name) {
            None => unmet.push(format!("pod {pod_name} of SeiNode {name} does not exist")),
            Some(pod) => {
                let checks = [
                    ("ready", pod_wanted.ready, Some(pod.is_ready())),
                    ("sidecarReady", pod_wanted.sidecar_ready, pod.sidecar.as_ref().map(|s| s.ready)),
                ];
                for (field, want, actual) in checks {
                    if let Some(want) = want
                        && actual != Some(want)
                    {
                        unmet.push(format!("pod {pod_name} {field} is {actual:?}, not {want}"));
                    }
                }
            }
        }
    }
    unmet
}

/// What earlier steps of a run remembered: values under names (`remember:`), and moments (`mark` steps).
#[derive(Debug, Default)]
pub(super) struct Memory {
    values: BTreeMap<String, String>,
    /// Mark → how many sidecar submissions had been answered by then.
    marks: BTreeMap<String, usize>,
}

impl Memory {
    /// Remembers the present moment as `name`.
    pub(super) fn mark(&mut self, world: &World, name: &str) {
        let submissions = world.inspect(|s| s.sidecar_submissions.len());
        self.marks.insert(name.to_owned(), submissions);
    }

    /// Keeps the values an expectation remembered once it held.
    pub(super) fn remember(&mut self, values: Vec<(String, String)>) {
        self.values.extend(values);
    }
}

/// The result of checking one expectation: what does not hold, and what it remembers if everything does.
#[derive(Debug, Default)]
pub(super) struct Verdict {
    pub unmet: Vec<String>,
    pub remembered: Vec<(String, String)>,
}

/// Every check of the expectation — those of [`unmet`] and those that need the run's memory or more of the
/// world — that does not hold now. The trace is read only once everything else holds: it is long, and an
/// expectation is polled every tick.
pub(super) fn judge(world: &World, namespace: &str, expectation: &Expectation, memory: &Memory) -> Verdict {
    let mut judge = Judge { world, namespace, memory, verdict: Verdict::default() };
    judge.verdict.unmet = unmet(world, namespace, expectation);
    judge.deployment(expectation);
    for (name, wanted) in &expectation.nodes {
        if let (Some(plan), Ok(node)) = (&wanted.init_plan, world.get::<SeiNode>(namespace, name)) {
            let stored = node.status.and_then(|s| s.plan);
            judge.plan(&format!("SeiNode {name} init plan"), stored.as_ref(), plan);
        }
    }
    judge.namespace_wide(expectation);
    if let Some(submissions) = &expectation.sidecar_submissions {
        judge.submissions(submissions);
    }
    if expectation.settled {
        judge.verdict.unmet.extend(world.unsettled_deployments());
    }
    if judge.verdict.unmet.is_empty() {
        for wanted in &expectation.trace {
            judge.trace(wanted);
        }
    }
    judge.verdict
}

struct Judge<'a> {
    world: &'a World,
    namespace: &'a str,
    memory: &'a Memory,
    verdict: Verdict,
}

impl Judge<'_> {
    fn fail(&mut self, message: String) {
        self.verdict.unmet.push(message);
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
                Some(value) => self.verdict.remembered.push((name.clone(), value.to_owned())),
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
                .map(|t| t.type_.clone());
            if current.as_ref() != Some(task) {
                self.fail(format!("{what} current task is {current:?}, not {task:?}"));
            }
        }
    }

    /// The checks about the named deployment's status, Service, children and events.
    fn deployment(&mut self, expectation: &Expectation) {
        let wants_deployment = expectation.plan.is_some()
            || expectation.rollout.is_some()
            || expectation.failed_target_hash.is_some()
            || expectation.latest_spec_rolled_out.is_some()
            || expectation.incumbent_nodes.is_some()
            || expectation.service.is_some()
            || expectation.children.is_some();
        let Some(name) = &expectation.deployment else {
            if wants_deployment {
                self.fail("the expectation names no `deployment` for its deployment checks".into());
            }
            self.events(None, expectation);
            return;
        };
        self.events(Some(name), expectation);
        let Ok(deployment) = self.world.get::<SeiNodeDeployment>(self.namespace, name) else {
            // `unmet` already says so.
            return;
        };
        let status = deployment.status.clone().unwrap_or_default();
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
    }

    /// Exact event lists and counts, about the deployment (or any object when none is named).
    fn events(&mut self, deployment: Option<&String>, expectation: &Expectation) {
        if expectation.events_exactly.is_none() && expectation.event_counts.is_empty() {
            return;
        }
        let reasons: Vec<String> = self.world.inspect(|s| {
            s.events
                .iter()
                .filter(|(_, e)| deployment.is_none_or(|d| &e.regarding.name == d))
                .map(|(_, e)| e.reason.clone())
                .collect()
        });
        if let Some(exactly) = &expectation.events_exactly
            && &reasons != exactly
        {
            self.fail(format!("events are {reasons:?}, not exactly {exactly:?}"));
        }
        for (reason, count) in &expectation.event_counts {
            let actual = reasons.iter().filter(|r| *r == reason).count();
            if u32::try_from(actual).ok() != Some(*count) {
                self.fail(format!("event {reason} was emitted {actual} times, not {count}"));
            }
        }
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

    /// The checks about the namespace's nodes, Jobs and upgrade panics.
    fn namespace_wide(&mut self, expectation: &Expectation) {
        if let Some(wanted) = &expectation.live_nodes {
            let live = self.node_names(|_| true);
            if sorted(wanted) != live {
                self.fail(format!("live SeiNodes are {live:?}, not {:?}", sorted(wanted)));
            }
        }
        if let Some(some) = &expectation.some_nodes {
            let nodes: Vec<SeiNode> = self.world.list(self.namespace, &Default::default()).unwrap_or_default();
            let (mut matching, mut others) = (Vec::new(), Vec::new());
            for node in nodes.iter().filter(|n| n.metadata.deletion_timestamp.is_none()) {
                let name = node.metadata.name.clone().unwrap_or_default();
                // A scratch judge: what a node's checks would remember is not this expectation's to keep.
                let mut scratch = Judge { verdict: Verdict::default(), ..*self };
                scratch.verdict.unmet = node_unmet(self.world, self.namespace, &name, node, &some.are);
                if let Some(plan) = &some.are.init_plan {
                    let stored = node.status.as_ref().and_then(|s| s.plan.as_ref());
                    scratch.plan(&format!("SeiNode {name} init plan"), stored, plan);
                }
                match scratch.verdict.unmet.into_iter().next() {
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

    fn submissions(&mut self, wanted: &SubmissionsExpectation) {
        let since = match &wanted.since {
            None => 0,
            Some(mark) => match self.memory.marks.get(mark) {
                Some(index) => *index,
                None => return self.fail(format!("sidecarSubmissions: no `mark: {mark}` step came before")),
            },
        };
        let pod_of = |node: &str| format!("{node}-0");
        let seen: Vec<(String, String, u16)> = self.world.inspect(|s| {
            s.sidecar_submissions
                .get(since..)
                .unwrap_or(&[])
                .iter()
                .filter(|s| wanted.task.as_ref().is_none_or(|t| &s.task_type == t))
                .map(|s| (s.pod.name.clone(), s.task_type.clone(), s.status))
                .collect()
        });
        let after = wanted.since.as_ref().map(|m| format!(" since {m}")).unwrap_or_default();
        if let Some(at_least) = wanted.at_least
            && u32::try_from(seen.len()).unwrap_or(u32::MAX) < at_least
        {
            self.fail(format!("{} sidecar submissions{after}, not at least {at_least}: {seen:?}", seen.len()));
        }
        if let Some(first) = &wanted.first {
            let matches = seen.first().is_some_and(|(pod, task, status)| {
                first.node.as_ref().is_none_or(|n| &pod_of(n) == pod)
                    && first.task.as_ref().is_none_or(|t| t == task)
                    && first.status.is_none_or(|s| s == *status)
            });
            if !matches {
                self.fail(format!("the first sidecar submission{after} is {:?}, not {first:?}", seen.first()));
            }
        }
        if let Some(nodes) = &wanted.only_nodes {
            let pods: Vec<String> = nodes.iter().map(|n| pod_of(n)).collect();
            let elsewhere: Vec<&(String, String, u16)> =
                seen.iter().filter(|(pod, _, _)| !pods.contains(pod)).collect();
            if !elsewhere.is_empty() {
                self.fail(format!("sidecar submissions{after} went to pods other than {pods:?}: {elsewhere:?}"));
            }
        }
    }

    fn trace(&mut self, wanted: &TraceExpectation) {
        let count = self.world.inspect(|s| s.trace.lines().iter().filter(|l| line_matches(l, &wanted.line)).count());
        let count = u32::try_from(count).unwrap_or(u32::MAX);
        let ok = match (wanted.count, wanted.at_least) {
            (Some(exactly), _) => count == exactly && wanted.at_least.is_none_or(|a| count >= a),
            (None, Some(at_least)) => count >= at_least,
            (None, None) => count >= 1,
        };
        if !ok {
            let want = match (wanted.count, wanted.at_least) {
                (Some(exactly), _) => format!("{exactly} times"),
                (None, Some(at_least)) => format!("at least {at_least} times"),
                (None, None) => "at least once".into(),
            };
            self.fail(format!("the trace has {count} lines like {:?}, not {want}", wanted.line));
        }
    }
}

fn set_word(set: bool) -> &'static str {
    if set { "set" } else { "unset" }
}

fn sorted(names: &[String]) -> Vec<String> {
    let mut names = names.to_vec();
    names.sort();
    names
}

/// Whether `line` contains `pattern`, where `*` in the pattern stands for any run of characters.
fn line_matches(line: &str, pattern: &str) -> bool {
    let mut rest = line;
    for part in pattern.split('*') {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
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
    }
}
