//! The scenario format: a full example parses; mistakes are errors naming the file, the line and the field.

use std::time::Duration;

use super::format::*;
use super::*;

const EXAMPLE: &str = r#"
name: inplace-upgrade
description: the chain halts at 1300; the InPlace rollout gets every node through
seed: 7
namespace: sei
world:
  workers: 2
  taskDurations:
    snapshot-restore: 2m
chain:
  id: pacific-1
  initialHeight: 1000
  blockTime: 400ms
  upgrades:
    - name: v6.4.0
      height: 1300
      validatorsSwitchAt: 10m
registry:
  sei:v6.3.0: {version: v6.3.0}
  sei:v6.4.0: {version: v6.4.0, knows: [v6.4.0]}
  sei:v9.9.9: {pullable: false}
  seictl:v0.9.0: {}
timeline:
  - apply: {file: fixtures/inplace-fullnode.yaml}
  - expect: {within: 10m, deployment: rpc, is: {status.phase: Ready}}
  - edit: {kind: SeiNodeDeployment, name: rpc, set: {spec.template.spec.image: "sei:v6.4.0"}}
  - fault: {podCrash: {node: rpc-0}}
  - fault: {workerCrash: {worker: 1, for: 30s}}
  - wait: 90s
  - heal: all
  - expect:
      within: 15m
      deployment: rpc
      is:
        status.phase: Ready
        status.conditions.RolloutInProgress.status: "False"
        status.conditions.RolloutInProgress.reason: RolloutComplete
      events: [{inOrder: [RolloutStarted, RolloutComplete]}]
      nodes:
        - {names: rpc-0, are: {spec.image: "sei:v6.4.0", status.currentImage: "sei:v6.4.0", status.phase: Running}}
        - {names: rpc-g2-0, are: {exists: false}}
"#;

#[test]
fn the_annotated_example_parses_into_its_steps() {
    let scenario = parse("example.yaml", EXAMPLE).expect("valid");
    assert_eq!(scenario.seed, 7);
    assert_eq!(scenario.world.task_durations.get("snapshot-restore"), Some(&Duration::from_secs(120)));
    assert_eq!(scenario.chain.upgrades[0].validators_switch_at, Some(Duration::from_secs(600)));
    assert!(!scenario.registry["sei:v9.9.9"].pullable);
    assert_eq!(scenario.timeline.len(), 8);
    assert_eq!(scenario.timeline[3], Step::Fault(Fault::PodCrash { node: "rpc-0".into() }));
    assert_eq!(
        scenario.timeline[4],
        Step::Fault(Fault::WorkerCrash {
            worker: Some(1),
            hosting: None,
            bootstrap: false,
            down_for: Some(Duration::from_secs(30))
        })
    );
    assert_eq!(scenario.timeline[5], Step::Wait(Duration::from_secs(90)));
    let Step::Expect(expect) = &scenario.timeline[7] else { panic!("step 8 is an expectation") };
    assert_eq!(expect.nodes[1].names, ["rpc-g2-0"]);
    assert_eq!(expect.nodes[1].are.as_ref().and_then(|c| c.exists), Some(false));
    let is = expect.is.as_ref().expect("the deployment's checks");
    assert_eq!(is.field("status.phase").expect("checked").equals, Some(serde_json::json!("Ready")));
}

#[test]
fn an_unknown_key_names_the_file_the_line_and_the_field() {
    let text = EXAMPLE.replace("  - wait: 90s", "  - wiat: 90s");
    let error = parse("scenarios/x.yaml", &text).expect_err("misspelt step").to_string();
    assert!(error.starts_with("scenarios/x.yaml: "), "{error}");
    assert!(error.contains("line 29"), "{error}");
    assert!(error.contains("wiat"), "{error}");
}

#[test]
fn a_bad_value_names_the_file_the_line_and_the_field() {
    let text = EXAMPLE.replace("blockTime: 400ms", "blockTime: soon");
    let error = parse("scenarios/x.yaml", &text).expect_err("bad duration").to_string();
    assert!(error.contains("line 13"), "{error}");
    assert!(error.contains("\"soon\" is not a duration"), "{error}");
}

#[test]
fn durations_read_the_friendly_way() {
    assert_eq!(parse_duration("400ms"), Ok(Duration::from_millis(400)));
    assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
    assert!(parse_duration("-5s").is_err());
}

#[test]
fn the_documented_example_parses() {
    let doc = include_str!("../../../docs/scenarios.md");
    let example = doc
        .split("```yaml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("docs/scenarios.md has a yaml example");
    let scenario = parse("docs/scenarios.md", example).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(scenario.name, "inplace-happy-path");
    assert_eq!(scenario.timeline.len(), 7);
}

#[test]
fn fault_fields_are_camel_case_like_every_other_key() {
    let text = "name: x\nchain: {id: c, initialHeight: 1}\nregistry: {}\ntimeline:\n  - fault: {operatorCrash: {afterWrite: 2}}\n";
    let scenario = parse("x.yaml", text).expect("afterWrite is the documented spelling");
    assert_eq!(
        scenario.timeline,
        vec![Step::Fault(Fault::OperatorCrash { after_write: Some(2), reconciling: None, until_healed: false })]
    );
    let snake = text.replace("afterWrite", "after_write");
    let error = parse("x.yaml", &snake).expect_err("the Rust field name is not a key").to_string();
    assert!(error.contains("after_write") && error.contains("line 5"), "{error}");
}

/// Every part of an expectation, and every matcher, in one step.
const RICH_EXPECTATION: &str = r#"
name: rich
chain: {id: pacific-1, initialHeight: 1000}
world: {admission: false, syncSpeeds: {archive-rpc-g2-0: 5}}
registry: {}
timeline:
  - apply: {file: fixtures/bluegreen.yaml, set: {spec.replicas: 2}}
  - fault: {workerCrash: {hosting: archive-rpc-1}}
  - heal: workers
  - expect:
      within: 5m
      before: 1h
      deployment: archive-rpc
      is:
        status.conditions.RolloutInProgress.message: {contains: archive-rpc-1}
        status.activeSet.generation: 2
        status.rollout: null
        status.plan.id: {present: true, remember: plan}
        status.failedTargetHash: {differentFrom: old, not: x, oneOf: [a, b]}
        status.latestHeight: {above: 4999}
        status.labels: {equals: {a: b}}
        currentTask: await-nodes-caught-up
        latestSpecRolledOut: false
        adoptedAll: true
      nodes:
        - names: archive-rpc-0
          are:
            status.catchingUp: false
            metadata.ownerReferences: null
            pod: {ready: true, markedReady: true, seidRestarts: 0}
            panics: [{upgrade: true, count: 0}]
        - {names: [archive-rpc-8, archive-rpc-9], are: {exists: false}}
        - {of: namespace, exactly: [archive-rpc-0]}
        - {of: service, exactly: [archive-rpc-0]}
        - {of: deployment, atLeast: 1, are: {status.phase: Running}}
      objects:
        Service/archive-rpc: {spec.selector.sei.io/revision: {sameAs: blue}}
        SeiNodeDeployment/gone: {exists: false}
        Job/archive-rpc-0-bootstrap: {status.conditions.Complete.status: "True"}
        PersistentVolumeClaim/data-archive-rpc-0-0: {spec.resources.requests.storage: 3000Gi}
      events:
        - {exactly: [RolloutStarted]}
        - {reason: RolloutStalled, count: 1}
        - {type: Warning, messageContains: not ready, atMost: 1}
      panics: [{image: "sei:v6.4.0", count: 0}, {upgrade: true, nodePrefix: archive-rpc-g2, atMost: 0}]
      revisions: {blue: [service, activeSet, archive-rpc-0]}
      settled: true
      meanwhile: {deployment: archive-rpc, revisions: {blue: [service]}}
      and: [{deployment: other, is: {status.phase: Ready}}]
"#;

#[test]
fn every_expectation_part_parses() {
    use serde_json::json;
    let scenario = parse("rich.yaml", RICH_EXPECTATION).unwrap_or_else(|e| panic!("{e}"));
    assert!(!scenario.world.admission);
    assert_eq!(scenario.world.sync_speeds.get("archive-rpc-g2-0"), Some(&5));
    let Step::Apply(apply) = &scenario.timeline[0] else { panic!("step 1 applies") };
    assert_eq!(apply.set.get("spec.replicas"), Some(&json!(2)));
    assert_eq!(
        scenario.timeline[1],
        Step::Fault(Fault::WorkerCrash {
            worker: None,
            hosting: Some("archive-rpc-1".into()),
            bootstrap: false,
            down_for: None
        })
    );
    assert_eq!(scenario.timeline[2], Step::Heal(Heal::Workers));
    let Step::Expect(expect) = &scenario.timeline[3] else { panic!("step 4 is an expectation") };
    let is = expect.is.as_ref().expect("the deployment's checks");
    assert_eq!(
        is.field("status.conditions.RolloutInProgress.message").expect("checked").contains,
        [json!("archive-rpc-1")]
    );
    assert_eq!(is.field("status.rollout").expect("checked").equals, Some(serde_json::Value::Null));
    assert_eq!(is.field("status.plan.id").expect("checked").present, Some(true));
    assert_eq!(is.field("status.plan.id").expect("checked").remember.as_deref(), Some("plan"));
    assert_eq!(is.field("status.failedTargetHash").expect("checked").one_of, Some(vec![json!("a"), json!("b")]));
    assert_eq!(is.field("status.latestHeight").expect("checked").above, Some(4999));
    assert_eq!(is.field("status.labels").expect("checked").equals, Some(json!({"a": "b"})));
    assert_eq!(is.current_task.as_deref(), Some("await-nodes-caught-up"));
    assert_eq!((is.latest_spec_rolled_out, is.adopted_all), (Some(false), Some(true)));
    let node = expect.nodes[0].are.as_ref().expect("a node check");
    assert_eq!(node.pod.as_ref().and_then(|p| p.marked_ready), Some(true));
    assert_eq!(node.panics[0].count, Some(0));
    assert_eq!(expect.nodes[1].names, ["archive-rpc-8", "archive-rpc-9"]);
    assert_eq!(expect.nodes[2].of, Some(NodeSetKind::Namespace));
    assert_eq!(expect.nodes[4].at_least, Some(1));
    let gone = ObjectPath { kind: CheckedKind::SeiNodeDeployment, name: "gone".into() };
    assert_eq!(expect.objects[&gone].exists, Some(false));
    assert_eq!(expect.events[1].count, Some(1));
    assert_eq!(expect.events[2].at_most, Some(1));
    assert_eq!(expect.panics[1].node_prefix.as_deref(), Some("archive-rpc-g2"));
    assert_eq!(expect.revisions["blue"], ["service", "activeSet", "archive-rpc-0"]);
    assert!(expect.settled);
    assert!(expect.meanwhile.as_ref().is_some_and(|m| m.revisions.contains_key("blue")));
    assert_eq!(expect.and[0].deployment.as_deref(), Some("other"));
}

#[test]
fn an_object_that_is_not_kind_slash_name_is_an_error_naming_it() {
    let text = RICH_EXPECTATION.replace("SeiNodeDeployment/gone:", "Pod/archive-rpc-0-0:");
    let error = parse("rich.yaml", &text).expect_err("Pod is no kind a scenario names").to_string();
    assert!(error.contains("\"Pod/archive-rpc-0-0\" is not Kind/name"), "{error}");
}

#[test]
fn a_key_that_is_neither_a_path_nor_a_typed_key_is_an_error_naming_it() {
    let text = RICH_EXPECTATION.replace("currentTask:", "curentTask:");
    let error = parse("rich.yaml", &text).expect_err("a misspelt typed key").to_string();
    assert!(error.contains("\"curentTask\" is neither a path"), "{error}");
    let text = RICH_EXPECTATION.replace("{differentFrom: old,", "{diferentFrom: old,");
    let error = parse("rich.yaml", &text).expect_err("a misspelt matcher").to_string();
    assert!(error.contains("diferentFrom"), "{error}");
}

#[test]
fn the_documented_expectations_parse() {
    let doc = include_str!("../../../docs/scenarios.md");
    let example = doc
        .split("```yaml\n")
        .find(|block| block.starts_with("name: hardfork-bootstrap-fails"))
        .and_then(|rest| rest.split("```").next())
        .expect("docs/scenarios.md has the example of more expectations");
    let scenario = parse("docs/scenarios.md", example).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(scenario.timeline[2], Step::Mark("before-rollout".into()));
    assert_eq!(scenario.timeline[5], Step::WaitUntil(Duration::from_secs(300)));
    assert_eq!(
        scenario.timeline[8],
        Step::Fault(Fault::OperatorCrash { after_write: Some(2), reconciling: None, until_healed: false })
    );
    assert_eq!(scenario.timeline[9], Step::Fault(Fault::ApiConflicts { count: 0, rate: 0.0, every_other: true }));
    let Step::Push(images) = &scenario.timeline[3] else { panic!("step 4 pushes an image") };
    assert!(images["sei:v6.3.0"].crash_on_start);
    let Step::Expect(first) = &scenario.timeline[1] else { panic!("step 2 is an expectation") };
    assert_eq!(first.before, Some(Duration::from_secs(1200)));
    let service = ObjectPath { kind: CheckedKind::Service, name: "upgrade".into() };
    let revision = &first.objects[&service].field("spec.selector.sei.io/revision").expect("checked");
    assert_eq!(revision.remember.as_deref(), Some("incumbents"));
    let Step::Expect(failed) = &scenario.timeline[7] else { panic!("step 8 is an expectation") };
    assert_eq!(
        failed.trace[1],
        TraceExpectation {
            line: "crash operator".into(),
            count: Some(0),
            at_least: None,
            at_most: None,
            since: None,
            per_node: false
        }
    );
    let submissions = failed.sidecar_submissions.as_ref().expect("a submissions check");
    assert_eq!(submissions.since.as_deref(), Some("before-rollout"));
    assert_eq!(failed.nodes.iter().find_map(|set| set.at_least), Some(2));
    let Step::Expect(last) = &scenario.timeline[10] else { panic!("step 11 is an expectation") };
    assert!(last.settled);
}

#[test]
fn a_misspelt_expectation_field_is_an_error() {
    let text = "name: x\nchain: {id: c, initialHeight: 1}\nregistry: {}\ntimeline:\n  - expect: {setled: true}\n";
    let error = parse("scenarios/x.yaml", text).expect_err("misspelt field").to_string();
    assert!(error.contains("setled"), "{error}");
}

#[test]
fn keys_that_do_not_go_together_are_an_error_naming_the_line() {
    // The line is the list's (`nodes:`, `events:`, `panics:`): the item is checked once the list is read.
    let text = RICH_EXPECTATION.replace("{of: namespace, exactly: [archive-rpc-0]}", "{names: x, of: namespace}");
    let error = parse("rich.yaml", &text).expect_err("names and of").to_string();
    assert!(error.contains("`names` or `of`") && error.contains("line 26"), "{error}");
    let text = RICH_EXPECTATION.replace("{exactly: [RolloutStarted]}", "{exactly: [RolloutStarted], count: 1}");
    let error = parse("rich.yaml", &text).expect_err("two modes").to_string();
    assert!(error.contains("one of inOrder, exactly, none, count, atMost"), "{error}");
    let text = RICH_EXPECTATION.replace("[{upgrade: true, count: 0}]", "[{upgrade: true, count: 0, atMost: 1}]");
    let error = parse("rich.yaml", &text).expect_err("count and atMost").to_string();
    assert!(error.contains("count or atMost, not both"), "{error}");
}
