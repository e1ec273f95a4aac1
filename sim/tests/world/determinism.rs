//! The same seed gives the same trace, byte for byte; another seed gives another.

use std::cell::RefCell;
use std::rc::Rc;

use crate::common::*;

fn run(seed: u64) -> String {
    let mut world = world(seed);
    world.create(&headless_service("n")).unwrap();
    world.create(&statefulset("n", "sei:v1", true, "OrderedReady")).unwrap();
    world.create(&claim("data-b-0")).unwrap();
    world.create(&bootstrap_job("b", "sei:v1", 1_020, "data-b-0")).unwrap();
    // An operator polling every node concurrently, so reconciles, connections and timers interleave.
    for name in ["a", "b", "c"] {
        world.create(&headless_service(name)).unwrap();
        world.create(&statefulset(name, "sei:v1", true, "OrderedReady")).unwrap();
        world.create(&crate::operator::sei_node(name)).unwrap();
    }
    let answers = Rc::new(RefCell::new(Vec::new()));
    let shared = answers.clone();
    world.start_operator(move || crate::operator::HealthProber { kind: "SeiNode", answers: shared.clone() });
    world.run_for(secs(10)).unwrap();
    world
        .probe("test", |s| async move {
            use sei_operator_core::sidecar::Sidecar;
            let request =
                sei_operator_core::sidecar::wire::TaskRequest { id: None, type_: "mark-ready".into(), params: None };
            s.submit_task(&sei_operator_core::sidecar::PodAddress::for_node(NS, "n", 7777), &request).await
        })
        .unwrap()
        .unwrap();
    world.run_for(secs(60)).unwrap();
    world.crash_pod(NS, "n-0");
    world.partition("operator", "worker-0");
    world.run_for(secs(15)).unwrap();
    world.repair("operator", "worker-0");
    world.crash_operator();
    world.run_for(secs(30)).unwrap();
    assert!(!answers.borrow().is_empty());
    world.trace().text()
}

#[test]
fn the_same_seed_replays_byte_for_byte_and_another_seed_differs() {
    let first = run(7);
    let second = run(7);
    assert!(first.lines().count() > 20, "a trace worth comparing:\n{first}");
    assert_eq!(first, second);
    assert_ne!(first, run(8));
}
