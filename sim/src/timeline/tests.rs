//! A real run drawn: the same seed gives the same picture byte for byte, and the picture is well-formed XML with
//! a lane per node and a marker per fault.

use std::path::Path;

use super::record::{Recorder, RunResult, Timeline};
use super::render;
use crate::scenario::{self, run_observed};

const SCENARIO: &str = r#"
name: two-nodes-and-a-crash
description: two nodes come up; one pod crashes and comes back
seed: 5
namespace: sei
world: {workers: 2}
chain: {id: pacific-1, initialHeight: 1000, blockTime: 1s, snapshotInterval: 100}
registry:
  "sei:v6.3.0": {version: v6.3.0}
  "seictl:v0.9.0": {}
timeline:
  - apply:
      objects:
        - apiVersion: sei.io/v1alpha1
          kind: SeiNodeDeployment
          metadata: {name: rpc, namespace: sei}
          spec:
            replicas: 2
            updateStrategy: {type: InPlace}
            template:
              spec:
                chainId: pacific-1
                image: "sei:v6.3.0"
                sidecar: {image: "seictl:v0.9.0"}
                fullNode: {snapshot: {s3: {targetHeight: 0}}}
  - expect: {within: 5m, deployment: rpc, is: {status.phase: Ready}}
  - fault: {podCrash: {node: rpc-1}}
  - wait: 5s
  - heal: all
  - expect: {within: 5m, nodes: [{names: rpc-1, are: {status.phase: Running, status.sidecarReady: true}}]}
"#;

fn record() -> Timeline {
    let scenario = scenario::parse("two-nodes.yaml", SCENARIO).expect("valid scenario");
    let mut recorder = Recorder::new(&scenario);
    let outcome = run_observed(&scenario, None, Path::new(env!("CARGO_MANIFEST_DIR")), &mut recorder);
    assert!(outcome.passed(), "{:?}", outcome.failure);
    recorder.finish(&outcome)
}

/// Checks that every tag is closed in order and every `&` starts an entity: enough of XML to catch a renderer
/// that forgets to close or escape.
fn assert_well_formed(svg: &str) {
    let mut open: Vec<&str> = Vec::new();
    let mut rest = svg;
    while let Some(start) = rest.find(['<', '&']) {
        let tail = &rest[start..];
        if let Some(after) = tail.strip_prefix('&') {
            let entity = ["amp;", "lt;", "gt;", "quot;", "apos;"].iter().any(|e| after.starts_with(e));
            assert!(entity, "a bare & before {:?}", after.chars().take(40).collect::<String>());
            rest = after;
            continue;
        }
        let end = tail.find('>').expect("a tag ends");
        let tag = &tail[1..end];
        assert!(!tag.contains('<'), "a < inside the tag {tag:?}");
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(open.pop(), Some(name), "closing {name} out of order");
        } else if !tag.ends_with('/') {
            let name = tag.split_whitespace().next().expect("a tag name");
            open.push(name);
        }
        rest = &tail[end + 1..];
    }
    assert!(open.is_empty(), "unclosed: {open:?}");
}

#[test]
fn the_same_seed_draws_the_same_picture() {
    let (first, second) = (render(&record()), render(&record()));
    assert!(first == second, "two runs with one seed drew different pictures");
}

#[test]
fn the_picture_has_a_lane_per_node_and_a_marker_per_fault() {
    let timeline = record();
    assert_eq!(timeline.result, RunResult::Passed);
    assert_eq!(timeline.nodes.keys().collect::<Vec<_>>(), ["rpc-0", "rpc-1"]);
    let crashed: Vec<&str> = timeline.nodes["rpc-1"].pod.segments().iter().map(|s| s.value.state.as_str()).collect();
    assert!(crashed.iter().filter(|s| **s == "Ready").count() >= 2, "rpc-1 is Ready, crashes, is Ready: {crashed:?}");
    assert!(timeline.chains["pacific-1"].tip.lines()[0].len() < 10, "the tip is simplified");
    let svg = render(&timeline);
    assert_well_formed(&svg);
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    for lane in ["rpc-0", "rpc-1"] {
        assert!(svg.contains(&format!(">{lane}</text>")), "no lane for {lane}");
    }
    assert!(svg.contains(">3 fault podCrash node: rpc-1</text>"), "no fault marker");
    assert!(svg.contains(">5 heal all</text>"), "no heal marker");
    assert!(svg.contains("two-nodes-and-a-crash"));
}

#[test]
fn the_well_formedness_check_catches_what_it_should() {
    assert_well_formed("<svg><g><rect/></g><text>a &amp; b</text></svg>");
    for broken in ["<svg><g></svg>", "<svg><text>a & b</text></svg>", "<svg>"] {
        let caught = std::panic::catch_unwind(|| assert_well_formed(broken)).is_err();
        assert!(caught, "{broken} passed");
    }
}
