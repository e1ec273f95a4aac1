//! Expectations of a scenario step: which of the checks an `expect` step lists do not hold in the world now,
//! each described so a failure report says what was wanted and what was seen.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::Service;
use sei_operator::api::{PlanPhase, SeiNode, SeiNodeDeployment, TaskStatus};
use sei_operator::cluster::Event;
use sei_operator::meta::{LABEL_DEPLOYMENT, LABEL_REVISION, find_condition};
use serde::Serialize;
use serde_json::Value;

use super::format::{Expectation, NodeExpectation, ObjectKind, ObjectPath};
use crate::world::World;

/// Every check of the expectation that does not hold now, described.
pub(super) fn unmet(world: &World, namespace: &str, expectation: &Expectation) -> Vec<String> {
    let mut unmet = Vec::new();
    // Only the reasons of the events about the deployment are copied out, not every event's.
    let about = |regarding: &str| expectation.deployment.as_ref().is_none_or(|d| regarding == d);
    let events: Vec<String> = world.inspect(|s| {
        s.events.iter().filter(|(_, e)| about(&e.regarding.name)).map(|(_, e)| e.reason.clone()).collect()
    });
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
    let reasons: Vec<&str> = events.iter().map(String::as_str).collect();
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
            Ok(node) => {
                let status = node.status.unwrap_or_default();
                let phase = status.phase.map(|p| format!("{p:?}"));
                let checks = [
                    ("phase", wanted.phase.clone(), phase),
                    ("image", wanted.image.clone(), Some(node.spec.image.clone())),
                    ("currentImage", wanted.current_image.clone(), status.current_image.clone()),
                    (
                        "sidecarReady",
                        wanted.sidecar_ready.map(|b| b.to_string()),
                        status.sidecar_ready.map(|b| b.to_string()),
                    ),
                ];
                for (field, want, actual) in checks {
                    if let Some(want) = want
                        && actual.as_ref() != Some(&want)
                    {
                        unmet.push(format!("SeiNode {name} {field} is {actual:?}, not {want:?}"));
                    }
                }
            }
        }
    }
    if let Some(expected) = expectation.upgrade_panics {
        let actual = world.inspect(|s| s.panics.iter().filter(|p| p.upgrade_panic).count());
        if u32::try_from(actual).ok() != Some(expected) {
            unmet.push(format!("{actual} upgrade panics, not {expected}"));
        }
    }
    if !expectation.end_state.is_empty() {
        let actual = super::end_state::end_state(world);
        if actual != expectation.end_state {
            let missing: Vec<&String> = expectation.end_state.iter().filter(|l| !actual.contains(l)).collect();
            let extra: Vec<&String> = actual.iter().filter(|l| !expectation.end_state.contains(l)).collect();
            unmet.push(format!(
                "end state differs: expected but absent {missing:?}; present but not expected {extra:?}"
            ));
        }
    }
    unmet
}

/// The outcome of checking an expectation with its nested `and` expectations: what does not hold, and the
/// revision names it would bind if it passed.
pub(super) struct Checked {
    pub unmet: Vec<String>,
    pub bound: BTreeMap<String, String>,
}

/// Every check of `expectation` and of its `and` expectations that does not hold now; `known` are the revision
/// names earlier steps bound.
pub(super) fn check(
    world: &World,
    namespace: &str,
    expectation: &Expectation,
    known: &BTreeMap<String, String>,
) -> Checked {
    let mut checked = Checked { unmet: Vec::new(), bound: BTreeMap::new() };
    check_into(world, namespace, expectation, known, &mut checked);
    checked
}

fn check_into(
    world: &World,
    namespace: &str,
    expectation: &Expectation,
    known: &BTreeMap<String, String>,
    checked: &mut Checked,
) {
    checked.unmet.extend(unmet(world, namespace, expectation));
    checked.unmet.extend(unmet_about_the_deployment(world, namespace, expectation));
    checked.unmet.extend(unmet_about_events(world, expectation));
    checked.unmet.extend(unmet_about_nodes(world, namespace, expectation));
    checked.unmet.extend(unmet_about_the_world(world, namespace, expectation));
    unmet_revisions(world, namespace, expectation, known, checked);
    if let Some(every) = &expectation.every_node {
        checked.unmet.extend(unmet_every_node(world, namespace, expectation.deployment.as_deref(), every));
    }
    for nested in &expectation.and {
        check_into(world, namespace, nested, known, checked);
    }
}

/// The deployment's conditions' messages, fields, plan and Service.
fn unmet_about_the_deployment(world: &World, namespace: &str, expectation: &Expectation) -> Vec<String> {
    let mut unmet = Vec::new();
    let Some(name) = &expectation.deployment else {
        let needs_deployment = !expectation.fields.is_empty()
            || expectation.plan_tasks.is_some()
            || expectation.current_task.is_some()
            || expectation.service_selects.is_some();
        if needs_deployment {
            unmet.push("fields, planTasks, currentTask and serviceSelects need a `deployment`".to_owned());
        }
        return unmet;
    };
    let wants_deployment = expectation.conditions.iter().any(|c| c.message_contains.is_some())
        || !expectation.fields.is_empty()
        || expectation.plan_tasks.is_some()
        || expectation.current_task.is_some()
        || expectation.service_selects.is_some();
    // Nothing below to check: not reading (and decoding) the deployment on every step is what keeps waiting
    // on an expectation cheap. A harness read has no side effects, so skipping it changes nothing.
    if !wants_deployment {
        return unmet;
    }
    // A missing deployment is reported by `unmet`.
    let Ok(deployment) = world.get::<SeiNodeDeployment>(namespace, name) else { return unmet };
    let status = deployment.status.clone().unwrap_or_default();
    for wanted in &expectation.conditions {
        let Some(text) = &wanted.message_contains else { continue };
        let message = find_condition(&status.conditions, &wanted.type_).map(|c| c.message.as_str());
        if !message.is_some_and(|m| m.contains(text.as_str())) {
            unmet.push(format!(
                "{name} condition {} message is {message:?}, which does not contain {text:?}",
                wanted.type_
            ));
        }
    }
    unmet.extend(unmet_fields(&format!("SeiNodeDeployment {name}"), &deployment, &expectation.fields));
    if let Some(wanted) = &expectation.plan_tasks {
        let tasks: Vec<&str> = status.plan.iter().flat_map(|p| &p.tasks).map(|t| t.type_.as_str()).collect();
        if tasks != *wanted {
            unmet.push(format!("{name} plan tasks are {tasks:?}, not {wanted:?}"));
        }
    }
    if let Some(wanted) = &expectation.current_task {
        let current = status
            .plan
            .as_ref()
            .filter(|p| p.phase == PlanPhase::Active)
            .and_then(|p| p.tasks.iter().find(|t| t.status != TaskStatus::Complete))
            .map(|t| t.type_.as_str());
        if current != Some(wanted.as_str()) {
            let seen = current.map_or("no active plan".to_owned(), |t| format!("{t:?}"));
            unmet.push(format!("{name} plan is at {seen}, not {wanted:?}"));
        }
    }
    if let Some(wanted) = &expectation.service_selects {
        match world.get::<Service>(namespace, name) {
            Err(_) => unmet.push(format!("Service {name} does not exist (wanted it to select {wanted:?})")),
            Ok(service) => {
                let selector = service.spec.and_then(|s| s.selector).unwrap_or_default();
                let selected: BTreeSet<String> = live_nodes(world, namespace)
                    .into_iter()
                    .filter(|node| {
                        let labels = node.metadata.labels.clone().unwrap_or_default();
                        !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
                    })
                    .filter_map(|node| node.metadata.name)
                    .collect();
                let wanted_set: BTreeSet<String> = wanted.iter().cloned().collect();
                if selected != wanted_set {
                    unmet.push(format!("Service {name} selects {selected:?}, not {wanted_set:?}"));
                }
            }
        }
    }
    unmet
}

/// Exact event sequences, counts and matchers, about the deployment (or every object without one).
fn unmet_about_events(world: &World, expectation: &Expectation) -> Vec<String> {
    let mut unmet = Vec::new();
    let events: Vec<Event> = world.inspect(|s| {
        s.events
            .iter()
            .filter(|(_, e)| expectation.deployment.as_ref().is_none_or(|d| &e.regarding.name == d))
            .map(|(_, e)| e.clone())
            .collect()
    });
    let about = expectation.deployment.as_deref().unwrap_or("any object");
    let reasons: Vec<&str> = events.iter().map(|e| e.reason.as_str()).collect();
    if let Some(wanted) = &expectation.only_events
        && reasons != *wanted
    {
        unmet.push(format!("events about {about} are {reasons:?}, not exactly {wanted:?}"));
    }
    for (reason, wanted) in &expectation.event_counts {
        let count = reasons.iter().filter(|r| *r == reason).count();
        if u32::try_from(count).ok() != Some(*wanted) {
            unmet.push(format!("{count} {reason} events about {about}, not {wanted}"));
        }
    }
    for matcher in &expectation.events_matching {
        let matching: Vec<&Event> = events
            .iter()
            .filter(|e| matcher.type_.as_ref().is_none_or(|t| format!("{:?}", e.type_) == *t))
            .filter(|e| matcher.reason.as_ref().is_none_or(|r| &e.reason == r))
            .filter(|e| matcher.message_contains.as_ref().is_none_or(|m| e.message.contains(m.as_str())))
            .collect();
        let count = u32::try_from(matching.len()).unwrap_or(u32::MAX);
        let holds = matcher.count.map_or(count > 0, |wanted| count == wanted);
        if !holds {
            let wanted = matcher.count.map_or("at least one".to_owned(), |c| format!("exactly {c}"));
            let seen: Vec<String> =
                events.iter().map(|e| format!("{:?} {}: {}", e.type_, e.reason, e.message)).collect();
            unmet.push(format!("{count} events about {about} match {matcher:?}, wanted {wanted}; seen {seen:?}"));
        }
    }
    unmet
}

/// Per-node checks beyond `unmet`'s: catching up, pod readiness, deletion, height, panics and fields.
fn unmet_about_nodes(world: &World, namespace: &str, expectation: &Expectation) -> Vec<String> {
    let mut unmet = Vec::new();
    for (name, wanted) in &expectation.nodes {
        // A missing node, or one that must be absent, is reported by `unmet`.
        let Ok(node) = world.get::<SeiNode>(namespace, name) else { continue };
        let status = node.status.clone().unwrap_or_default();
        if let Some(want) = wanted.catching_up
            && status.catching_up != Some(want)
        {
            unmet.push(format!("SeiNode {name} catchingUp is {:?}, not {want}", status.catching_up));
        }
        if let Some(want) = wanted.pod_ready {
            let ready = world.pod(namespace, &format!("{name}-0")).is_some_and(|p| p.is_ready());
            if ready != want {
                unmet.push(format!("SeiNode {name}'s pod is {}, not {}", ready_word(ready), ready_word(want)));
            }
        }
        if let Some(want) = wanted.deleting {
            let deleting = node.metadata.deletion_timestamp.is_some();
            if deleting != want {
                unmet.push(format!("SeiNode {name} deleting is {deleting}, not {want}"));
            }
        }
        if let Some(floor) = wanted.height_above
            && status.latest_height.is_none_or(|h| h <= floor)
        {
            unmet.push(format!("SeiNode {name} latestHeight is {:?}, not above {floor}", status.latest_height));
        }
        if let Some(want) = wanted.upgrade_panics {
            let count = world.inspect(|s| {
                s.panics
                    .iter()
                    .filter(|p| p.upgrade_panic && p.namespace == namespace && p.node.as_deref() == Some(name))
                    .count()
            });
            if u32::try_from(count).ok() != Some(want) {
                unmet.push(format!("SeiNode {name} had {count} upgrade panics, not {want}"));
            }
        }
        unmet.extend(unmet_fields(&format!("SeiNode {name}"), &node, &wanted.fields));
        if let Some(want) = wanted.marked_ready {
            let sidecar = world.pod(namespace, &format!("{name}-0")).and_then(|p| p.sidecar);
            let marked = sidecar.as_ref().is_some_and(|s| s.ready);
            if marked != want {
                let seen = if sidecar.is_none() {
                    "has no running sidecar"
                } else if marked {
                    "is"
                } else {
                    "is not"
                };
                unmet.push(format!("SeiNode {name}'s sidecar {seen} marked ready; wanted marked ready: {want}"));
            }
        }
    }
    unmet
}

/// `everyNode`: the same node checks for each live SeiNode of the deployment (or namespace).
fn unmet_every_node(world: &World, namespace: &str, deployment: Option<&str>, wanted: &NodeExpectation) -> Vec<String> {
    let names: Vec<String> = live_nodes(world, namespace)
        .into_iter()
        .filter(|n| {
            deployment.is_none_or(|d| {
                n.metadata.labels.as_ref().and_then(|l| l.get(LABEL_DEPLOYMENT)).is_some_and(|l| l == d)
            })
        })
        .filter_map(|n| n.metadata.name)
        .collect();
    if names.is_empty() {
        return vec![format!(
            "everyNode: there are no live SeiNodes{}",
            deployment.map(|d| format!(" of {d}")).unwrap_or_default()
        )];
    }
    let each =
        Expectation { nodes: names.into_iter().map(|name| (name, wanted.clone())).collect(), ..Expectation::default() };
    let mut unmet = unmet(world, namespace, &each);
    unmet.extend(unmet_about_nodes(world, namespace, &each));
    unmet
}

fn ready_word(ready: bool) -> &'static str {
    if ready { "Ready" } else { "not Ready" }
}

/// Which objects exist, whether everything settled, and panics by image.
fn unmet_about_the_world(world: &World, namespace: &str, expectation: &Expectation) -> Vec<String> {
    let mut unmet = Vec::new();
    if let Some(wanted) = &expectation.only_nodes {
        let live: BTreeSet<String> = live_nodes(world, namespace).into_iter().filter_map(|n| n.metadata.name).collect();
        let wanted: BTreeSet<String> = wanted.iter().cloned().collect();
        if live != wanted {
            unmet.push(format!("the live SeiNodes are {live:?}, not {wanted:?}"));
        }
    }
    for object in &expectation.present {
        if !exists(world, namespace, object) {
            unmet.push(format!("{:?}/{} does not exist", object.kind, object.name));
        }
    }
    for object in &expectation.absent {
        if exists(world, namespace, object) {
            unmet.push(format!("{:?}/{} still exists", object.kind, object.name));
        }
    }
    if expectation.settled {
        let unsettled = world.unsettled_deployments();
        if !unsettled.is_empty() {
            unmet.push(format!("not settled: {unsettled:?}"));
        }
    }
    for (image, wanted) in &expectation.panics_by_image {
        let count = world.inspect(|s| s.panics.iter().filter(|p| &p.image == image).count());
        if u32::try_from(count).ok() != Some(*wanted) {
            unmet.push(format!("seid on {image} panicked {count} times, not {wanted}"));
        }
    }
    unmet
}

/// Checks `revisions`: each name's places agree, match the name's binding or bind it to a revision no other
/// name holds. Bindings are proposed in `checked.bound`; the runner keeps them once the step passes.
fn unmet_revisions(
    world: &World,
    namespace: &str,
    expectation: &Expectation,
    known: &BTreeMap<String, String>,
    checked: &mut Checked,
) {
    for (name, places) in &expectation.revisions {
        let mut seen: Vec<(&str, String)> = Vec::new();
        for place in places {
            match revision_at(world, namespace, expectation.deployment.as_deref(), place) {
                Ok(revision) => seen.push((place, revision)),
                Err(missing) => checked.unmet.push(format!("revision {name}: {missing}")),
            }
        }
        let distinct: BTreeSet<&String> = seen.iter().map(|(_, r)| r).collect();
        if distinct.len() > 1 {
            checked.unmet.push(format!("revision {name}: the places disagree: {seen:?}"));
            continue;
        }
        let Some((_, revision)) = seen.first() else { continue };
        match known.get(name).or_else(|| checked.bound.get(name)) {
            Some(bound) if bound != revision => {
                checked.unmet.push(format!("revision {name} is {bound:?}, but {places:?} carry {revision:?}"));
            }
            Some(_) => {}
            None => {
                let taken = known.iter().chain(&checked.bound).find(|(_, r)| *r == revision);
                match taken {
                    Some((other, _)) => checked.unmet.push(format!(
                        "revision {name}: {places:?} carry {revision:?}, which is revision {other}, not a new one"
                    )),
                    None => {
                        checked.bound.insert(name.clone(), revision.clone());
                    }
                }
            }
        }
    }
}

/// The revision a place carries: the deployment's Service selector, active set or template hash, or a SeiNode's
/// revision label.
fn revision_at(world: &World, namespace: &str, deployment: Option<&str>, place: &str) -> Result<String, String> {
    let of_deployment = matches!(place, "service" | "activeSet" | "templateHash");
    if of_deployment {
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
        let revision = if place == "activeSet" { status.active_set.map(|s| s.revision) } else { status.template_hash };
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

/// SeiNodes of the namespace that are not being deleted.
fn live_nodes(world: &World, namespace: &str) -> Vec<SeiNode> {
    let nodes: Vec<SeiNode> = world.list(namespace, &Default::default()).unwrap_or_default();
    nodes.into_iter().filter(|n| n.metadata.deletion_timestamp.is_none()).collect()
}

fn exists(world: &World, namespace: &str, object: &ObjectPath) -> bool {
    match object.kind {
        ObjectKind::SeiNodeDeployment => world.get::<SeiNodeDeployment>(namespace, &object.name).is_ok(),
        ObjectKind::SeiNode => world.get::<SeiNode>(namespace, &object.name).is_ok(),
        ObjectKind::Service => world.get::<Service>(namespace, &object.name).is_ok(),
    }
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

/// Whether `wanted` appears in `seen` in order (others may come between).
fn is_subsequence(wanted: &[String], seen: &[&str]) -> bool {
    let mut seen = seen.iter();
    wanted.iter().all(|w| seen.any(|s| s == w))
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
}
