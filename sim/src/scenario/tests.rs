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
  - expect: {within: 10m, deployment: rpc, phase: Ready}
  - edit: {kind: SeiNodeDeployment, name: rpc, set: {spec.template.spec.image: "sei:v6.4.0"}}
  - fault: {podCrash: {node: rpc-0}}
  - fault: {workerCrash: {worker: 1, for: 30s}}
  - wait: 90s
  - heal: all
  - expect:
      within: 15m
      deployment: rpc
      phase: Ready
      conditions: [{type: RolloutInProgress, status: "False", reason: RolloutComplete}]
      events: [RolloutStarted, RolloutComplete]
      nodes:
        rpc-0: {image: "sei:v6.4.0", currentImage: "sei:v6.4.0", phase: Running}
        rpc-g2-0: {absent: true}
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
    assert_eq!(scenario.timeline[4], Step::Fault(Fault::WorkerCrash { worker: 1, down_for: Duration::from_secs(30) }));
    assert_eq!(scenario.timeline[5], Step::Wait(Duration::from_secs(90)));
    let Step::Expect(expect) = &scenario.timeline[7] else { panic!("step 8 is an expectation") };
    assert!(expect.nodes["rpc-g2-0"].absent);
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
fn the_documented_expectations_parse() {
    let doc = include_str!("../../../docs/scenarios.md");
    let example = doc
        .split("```yaml\n")
        .nth(2)
        .and_then(|rest| rest.split("```").next())
        .expect("docs/scenarios.md has a second yaml example");
    let scenario = parse("docs/scenarios.md", example).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(scenario.timeline[2], Step::Mark("before-rollout".into()));
    assert_eq!(scenario.timeline[5], Step::WaitUntil(Duration::from_secs(300)));
    assert_eq!(scenario.timeline[8], Step::Fault(Fault::OperatorCrash { after_write: Some(2) }));
    assert_eq!(scenario.timeline[9], Step::Fault(Fault::ApiConflicts { count: 0, rate: 0.0, every_other: true }));
    let Step::Push(images) = &scenario.timeline[3] else { panic!("step 4 pushes an image") };
    assert!(images["sei:v6.3.0"].crash_on_start);
    let Step::Expect(first) = &scenario.timeline[1] else { panic!("step 2 is an expectation") };
    assert_eq!(first.before, Some(Duration::from_secs(1200)));
    let revision = first.service.as_ref().and_then(|s| s.revision.as_ref()).expect("a revision check");
    assert_eq!(revision.remember.as_deref(), Some("incumbents"));
    let Step::Expect(failed) = &scenario.timeline[7] else { panic!("step 8 is an expectation") };
    assert_eq!(failed.trace[1], TraceExpectation { line: "crash operator".into(), count: Some(0), at_least: None });
    let submissions = failed.sidecar_submissions.as_ref().expect("a submissions check");
    assert_eq!(submissions.since.as_deref(), Some("before-rollout"));
    assert_eq!(failed.some_nodes.as_ref().map(|s| s.at_least), Some(2));
    let Step::Expect(last) = &scenario.timeline[10] else { panic!("step 11 is an expectation") };
    assert!(last.settled);
}

#[test]
fn a_misspelt_expectation_field_is_an_error() {
    let text = "name: x\nchain: {id: c, initialHeight: 1}\nregistry: {}\ntimeline:\n  - expect: {setled: true}\n";
    let error = parse("scenarios/x.yaml", text).expect_err("misspelt field").to_string();
    assert!(error.contains("setled"), "{error}");
}
