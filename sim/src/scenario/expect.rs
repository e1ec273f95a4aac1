//! Expectations of a scenario step: which of the checks an `expect` step lists do not hold in the world now,
//! each described so a failure report says what was wanted and what was seen.

use sei_operator::api::{SeiNode, SeiNodeDeployment};
use sei_operator::meta::find_condition;

use super::format::Expectation;
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
}
