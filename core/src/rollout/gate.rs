//! The height gate of an InPlace rollout (`updateStrategy.inPlace.upgradeHeight`), as pure functions: where a
//! node stands against the upgrade height H, and which rollout fields it must run there.
//!
//! The chain's rules (Cosmos SDK `x/upgrade/abci.go`, `BeginBlocker`): at H the old binary writes
//! `upgrade-info.json`, logs and panics with `UPGRADE "<name>" NEEDED at height: H`, having committed H-1; a binary
//! that carries the handler of a plan not yet due panics with `BINARY UPDATED BEFORE TRIGGER! UPGRADE "<name>"`.
//! So a node may run the new image only once it has committed H-1, and must run it from H on.
//!
//! Safety rules (each enforced here or in `rules`):
//! 1. Never the new image on a node below H-1: a node is at the gate once seid reported a height >= H-1, or its
//!    old binary stopped with the upgrade panic due at H or later (the height seid no longer serves).
//! 2. A node at the gate on the old binary gets the new image at once (its panic is expected and short).
//! 3. A node that runs the new image below H-1 (remade from a snapshot below the gate, say) and panics with
//!    "binary updated before trigger" goes back to the image it ran before, until it reaches the gate.
//! 4. A gate the fleet has passed (a node already above H on a binary it did not get from this gate) is refused
//!    when the rollout is planned (`rules::refuse_gate_behind_the_chain`).
//! 5. An edit before H supersedes the rollout and replaces the staged image; removing the gate supersedes it with
//!    today's InPlace, which applies at once.
//! 6. An edit back to the binary without the upgrade is refused once a node shows the chain reached H (it
//!    committed H, or its old binary stopped there): every node on it would stop for good
//!    (`rules::refuse_the_binary_without_a_passed_upgrade`). Where the rollout was planned before that showed, a
//!    node that committed H on a binary with the upgrade is never moved back to it ([`would_go_back`]).

use k8s_openapi::api::core::v1::{ContainerState, Pod};

use crate::api::{NodeGate, RolloutFields, SeiNode, UpgradePanic, UpgradePanicReason};
use crate::objects::workload;

/// The upgrade height at which `node`'s binary last stopped with the upgrade panic, while seid does not answer.
fn stopped_at(node: &SeiNode) -> Option<i64> {
    let panic = node.status.as_ref()?.upgrade_panic.as_ref()?;
    (panic.reason == UpgradePanicReason::UpgradeNeeded).then_some(panic.height?)
}

/// Whether `node` runs the binary the fleet ran before the rollout (`previous`; when unknown, any image but the
/// target is taken for it): the one without the upgrade's handler. A node on neither runs a staged image of an
/// earlier gated rollout, which the gate switched at the upgrade: a binary that knows it.
pub fn on_previous_binary(node: &SeiNode, target: &RolloutFields, previous: Option<&RolloutFields>) -> bool {
    match previous {
        Some(previous) => previous.matches(&node.spec),
        None => !target.matches(&node.spec),
    }
}

/// Whether `node` has reached the gate at `upgrade_height` (rule 1). On the binary before the upgrade: it committed
/// H-1 — never more: a binary without the upgrade's handler cannot commit H — or stopped at H with the panic. On
/// an earlier staged binary (one that knows the upgrade): it committed H-1 or more.
pub fn at_gate(node: &SeiNode, upgrade_height: i64, old_binary: bool) -> bool {
    let height = node.status.as_ref().and_then(|s| s.latest_height);
    let stopped = stopped_at(node);
    if old_binary {
        height == Some(upgrade_height - 1) || stopped == Some(upgrade_height)
    } else {
        height.is_some_and(|h| h >= upgrade_height - 1) || stopped.is_some_and(|due| due >= upgrade_height)
    }
}

/// Whether `node` shows the chain has reached the upgrade at `upgrade_height`: it committed that block (on a binary
/// that knows the upgrade), or its binary without the upgrade stopped there with the upgrade panic, which it
/// raises only on being given that block.
pub fn saw_the_upgrade(node: &SeiNode, upgrade_height: i64) -> bool {
    let height = node.status.as_ref().and_then(|s| s.latest_height);
    height.is_some_and(|h| h >= upgrade_height) || stopped_at(node) == Some(upgrade_height)
}

/// Why the gate cannot be right for `node` on the binary it ran before the rollout: it committed a block past H-1
/// (its binary processed H, so the chain has no upgrade it lacks there), or it stopped for an upgrade due at another
/// height. Such a node is never switched by this gate; the rollout says why.
pub fn off_gate(node: &SeiNode, upgrade_height: i64) -> Option<String> {
    let name = node.metadata.name.as_deref().unwrap_or_default();
    if let Some(due) = stopped_at(node).filter(|due| *due != upgrade_height) {
        return Some(format!(
            "{name} stopped for the chain's upgrade due at height {due}, not at upgradeHeight {upgrade_height}"
        ));
    }
    // No live height in the text: it would change the status at every height written.
    node.status.as_ref().and_then(|s| s.latest_height).filter(|h| *h >= upgrade_height)?;
    Some(format!(
        "{name} committed blocks past upgradeHeight {upgrade_height} on the binary it ran before: the chain has \
         no upgrade there that its binary lacks"
    ))
}

/// Whether `node`'s seid refused its blocks as too new a binary, below the gate (rule 3).
pub fn ahead_of_its_height(node: &SeiNode, upgrade_height: i64) -> bool {
    let Some(status) = node.status.as_ref() else { return false };
    status.upgrade_panic.as_ref().is_some_and(|p| p.reason == UpgradePanicReason::BinaryUpdatedBeforeTrigger)
        && status.latest_height.is_none_or(|height| height < upgrade_height - 1)
}

/// Whether a rollout to `target` would move `node` back onto the binary without the upgrade after it processed
/// the upgrade (gate rule 6): the target is that binary (`previous`'s image), and the node runs another one —
/// staged by an earlier rollout at this gate, so a binary with the upgrade — and has committed the upgrade's
/// block. On the old binary it could only stop there for good. Such a node keeps what it runs. (Below the
/// upgrade the revert is an ordinary one: the old binary runs to the block before it, and stops at it only if
/// the chain gets there.)
pub fn would_go_back(
    node: &SeiNode,
    upgrade_height: i64,
    target: &RolloutFields,
    previous: Option<&RolloutFields>,
) -> bool {
    let height = node.status.as_ref().and_then(|s| s.latest_height);
    previous.is_some_and(|p| p.image == target.image)
        && !target.matches(&node.spec)
        && height.is_some_and(|h| h >= upgrade_height)
}

/// Why `node` is held off the gate of a rollout from `previous` to `target` ([`NodeGate::Mismatch`]), in words.
pub fn mismatch(
    node: &SeiNode,
    upgrade_height: i64,
    target: &RolloutFields,
    previous: Option<&RolloutFields>,
) -> Option<String> {
    if would_go_back(node, upgrade_height, target, previous) {
        let name = node.metadata.name.as_deref().unwrap_or_default();
        return Some(format!(
            "{name} committed upgradeHeight {upgrade_height} on {}, and {} is the binary without that upgrade: \
             moved back to it the node would stop for good; stage an image that carries the upgrade",
            node.spec.image, target.image
        ));
    }
    off_gate(node, upgrade_height)
}

/// Where `node` stands against the gate of a rollout from `previous` to `target`.
pub fn node_gate(
    node: &SeiNode,
    upgrade_height: i64,
    target: &RolloutFields,
    previous: Option<&RolloutFields>,
) -> NodeGate {
    let old_binary = on_previous_binary(node, target, previous);
    let runs_target = target.matches(&node.spec)
        && node.status.as_ref().and_then(|s| s.current_image.as_deref()) == Some(target.image.as_str());
    if runs_target && !ahead_of_its_height(node, upgrade_height) {
        NodeGate::Upgraded
    } else if target.matches(&node.spec) && !ahead_of_its_height(node, upgrade_height) {
        // Written, its pod not yet on it.
        NodeGate::AtHeight
    } else if would_go_back(node, upgrade_height, target, previous) {
        NodeGate::Mismatch
    } else if at_gate(node, upgrade_height, old_binary) {
        NodeGate::AtHeight
    } else if old_binary && off_gate(node, upgrade_height).is_some() {
        NodeGate::Mismatch
    } else {
        NodeGate::Waiting
    }
}

/// The fields `node` must carry now under the gate, when they differ from its spec's: the target once it is at
/// the gate; the fields it ran before (`previous`) when it runs the target too early (rule 3); else none.
pub fn fields_to_write<'a>(
    node: &SeiNode,
    upgrade_height: i64,
    target: &'a RolloutFields,
    previous: Option<&'a RolloutFields>,
) -> Option<&'a RolloutFields> {
    if target.matches(&node.spec) {
        return previous.filter(|p| !p.matches(&node.spec) && ahead_of_its_height(node, upgrade_height));
    }
    if would_go_back(node, upgrade_height, target, previous) {
        return None;
    }
    at_gate(node, upgrade_height, on_previous_binary(node, target, previous)).then_some(target)
}

/// The x/upgrade panic seid's container last exited with, from the pod's status: the termination message of the
/// exit it is in (terminated, or waiting in back-off) or of the one before its current run (`lastState`). The
/// message is what the node's script captured (`workload::UPGRADE_PANIC_CAPTURE`).
pub fn upgrade_panic_in(pod: &Pod) -> Option<UpgradePanic> {
    let seid = pod.status.as_ref()?.container_statuses.as_ref()?.iter().find(|c| c.name == workload::SEID_CONTAINER)?;
    let message = |state: Option<&ContainerState>| state?.terminated.as_ref()?.message.clone();
    message(seid.state.as_ref()).or_else(|| message(seid.last_state.as_ref())).as_deref().and_then(parse_upgrade_panic)
}

/// Reads an x/upgrade panic from seid's output (a container's termination message): the first line that names
/// one. Formats from Cosmos SDK `x/upgrade/abci.go` (`BuildUpgradeNeededMsg`: `UPGRADE "%s" NEEDED at %s: %s`
/// with `Plan.DueAt()` = `height: %d`; the downgrade message), as cosmovisor scans for them
/// (`cosmovisor/scanner.go`). A logger may have escaped the quotes.
pub fn parse_upgrade_panic(message: &str) -> Option<UpgradePanic> {
    let text = message.replace("\\\"", "\"");
    text.lines().find_map(|line| {
        let reason = if line.contains("BINARY UPDATED BEFORE TRIGGER") {
            UpgradePanicReason::BinaryUpdatedBeforeTrigger
        } else if line.contains("NEEDED at height: ") {
            UpgradePanicReason::UpgradeNeeded
        } else {
            return None;
        };
        let after = line.split_once("UPGRADE \"")?.1;
        let (upgrade, rest) = after.split_once('"')?;
        let height = match reason {
            UpgradePanicReason::UpgradeNeeded => {
                let digits: String =
                    rest.split_once("NEEDED at height: ")?.1.chars().take_while(char::is_ascii_digit).collect();
                Some(digits.parse().ok()?)
            }
            UpgradePanicReason::BinaryUpdatedBeforeTrigger => None,
        };
        Some(UpgradePanic { reason, upgrade: upgrade.to_owned(), height })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{SeiNodeSpec, SeiNodeStatus};

    fn node(image: &str, height: Option<i64>, panic: Option<&str>) -> SeiNode {
        let spec: SeiNodeSpec = serde_json::from_value(serde_json::json!({
            "chainId": "pacific-1", "image": image, "fullNode": {}
        }))
        .expect("spec");
        let mut node = SeiNode::new("rpc-0", spec);
        node.status = Some(SeiNodeStatus {
            current_image: Some(image.into()),
            latest_height: height,
            upgrade_panic: panic.and_then(parse_upgrade_panic),
            ..Default::default()
        });
        node
    }

    fn fields(image: &str) -> RolloutFields {
        RolloutFields::of(&node(image, None, None).spec)
    }

    #[test]
    fn the_panics_are_read_as_seid_prints_and_logs_them() {
        let needed = parse_upgrade_panic("goroutine noise\npanic: UPGRADE \"v6.0.0\" NEEDED at height: 1000: {}\n");
        assert_eq!(
            needed,
            Some(UpgradePanic {
                reason: UpgradePanicReason::UpgradeNeeded,
                upgrade: "v6.0.0".into(),
                height: Some(1000)
            })
        );
        let logged = parse_upgrade_panic(r#"{"level":"error","msg":"UPGRADE \"v6\" NEEDED at height: 77: "}"#);
        assert_eq!(logged.and_then(|p| p.height), Some(77));
        let early = parse_upgrade_panic(
            "panic: BINARY UPDATED BEFORE TRIGGER! UPGRADE \"v6\" - in binary but not executed on chain",
        );
        assert_eq!(early.map(|p| p.reason), Some(UpgradePanicReason::BinaryUpdatedBeforeTrigger));
        assert_eq!(parse_upgrade_panic("panic: runtime error: nil pointer"), None);
        assert_eq!(parse_upgrade_panic(""), None);
    }

    #[test]
    fn a_node_gets_the_new_image_only_at_the_block_before_the_gate_or_stopped_at_it() {
        let (old, new) = (fields("sei:v5"), fields("sei:v6"));
        let below = node("sei:v5", Some(998), None);
        assert_eq!(fields_to_write(&below, 1000, &new, Some(&old)), None);
        assert_eq!(node_gate(&below, 1000, &new, Some(&old)), NodeGate::Waiting);
        let at = node("sei:v5", Some(999), None);
        assert_eq!(fields_to_write(&at, 1000, &new, Some(&old)), Some(&new));
        assert_eq!(node_gate(&at, 1000, &new, Some(&old)), NodeGate::AtHeight);
        // Past H-1 on the old binary: the chain has no upgrade at 1000 that it lacks; the gate is wrong.
        let past = node("sei:v5", Some(1070), None);
        assert_eq!(fields_to_write(&past, 1000, &new, Some(&old)), None);
        assert_eq!(node_gate(&past, 1000, &new, Some(&old)), NodeGate::Mismatch);
        assert!(off_gate(&past, 1000).is_some_and(|why| why.contains("past upgradeHeight 1000")));
        // seid last answered at 990, then ran to 999 and stopped with the upgrade panic due at 1000.
        let stopped = node("sei:v5", Some(990), Some("panic: UPGRADE \"v6\" NEEDED at height: 1000: "));
        assert_eq!(fields_to_write(&stopped, 1000, &new, Some(&old)), Some(&new));
        // A panic for another, earlier upgrade is not this gate.
        let other = node("sei:v5", Some(500), Some("panic: UPGRADE \"v5.5\" NEEDED at height: 600: "));
        assert_eq!(fields_to_write(&other, 1000, &new, Some(&old)), None);
        assert_eq!(node_gate(&other, 1000, &new, Some(&old)), NodeGate::Mismatch);
    }

    #[test]
    fn a_rollout_back_to_the_binary_without_the_upgrade_never_moves_a_node_that_committed_it_onto_it() {
        // Staged v6 switched the node at the gate; the user reverts to v5, the binary without the upgrade.
        let old = fields("sei:v5");
        // At 999 the chain may never reach the upgrade (its validators decide): going back is an ordinary revert.
        let waiting = node("sei:v6", Some(999), None);
        assert!(!would_go_back(&waiting, 1000, &old, Some(&old)));
        assert_eq!(fields_to_write(&waiting, 1000, &old, Some(&old)), Some(&old));
        for height in [1000, 1021] {
            let switched = node("sei:v6", Some(height), None);
            assert!(would_go_back(&switched, 1000, &old, Some(&old)));
            assert_eq!(fields_to_write(&switched, 1000, &old, Some(&old)), None);
            assert_eq!(node_gate(&switched, 1000, &old, Some(&old)), NodeGate::Mismatch);
            let why = mismatch(&switched, 1000, &old, Some(&old)).expect("said why");
            assert!(
                why.contains("rpc-0 committed upgradeHeight 1000 on sei:v6") && why.contains("sei:v5 is the binary")
            );
        }
        // Below the gate the revert is an ordinary one (rule 5): the node goes back to v5.
        let early = node("sei:v6", Some(990), Some("panic: BINARY UPDATED BEFORE TRIGGER! UPGRADE \"v6\""));
        assert!(!would_go_back(&early, 1000, &old, Some(&old)));
        // A rollout to another binary moves on as before.
        let new = fields("sei:v6.1");
        assert!(!would_go_back(&node("sei:v6", Some(1021), None), 1000, &new, Some(&old)));
        assert_eq!(fields_to_write(&node("sei:v6", Some(1021), None), 1000, &new, Some(&old)), Some(&new));
    }

    #[test]
    fn a_node_on_the_new_image_below_the_gate_goes_back_until_it_reaches_it() {
        let (old, new) = (fields("sei:v5"), fields("sei:v6"));
        let early = node("sei:v6", Some(400), Some("panic: BINARY UPDATED BEFORE TRIGGER! UPGRADE \"v6\" - in binary"));
        assert_eq!(fields_to_write(&early, 1000, &new, Some(&old)), Some(&old));
        assert_eq!(node_gate(&early, 1000, &new, Some(&old)), NodeGate::Waiting);
        // Superseded after the upgrade: a node on the first staged image (it knows the upgrade) past the gate gets
        // the newer one at once; the gate is not wrong for it.
        let newer = fields("sei:v6.1");
        let staged_before = node("sei:v6", Some(1070), None);
        assert_eq!(fields_to_write(&staged_before, 1000, &newer, Some(&old)), Some(&newer));
        assert_eq!(node_gate(&staged_before, 1000, &newer, Some(&old)), NodeGate::AtHeight);
        let upgraded = node("sei:v6", Some(1200), None);
        assert_eq!(fields_to_write(&upgraded, 1000, &new, Some(&old)), None);
        assert_eq!(node_gate(&upgraded, 1000, &new, Some(&old)), NodeGate::Upgraded);
    }
}
