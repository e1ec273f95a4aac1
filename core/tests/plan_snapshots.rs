//! Reviewed snapshots of plan shape: the plan every strategy builds for every valid fixture, each SeiNode
//! fixture's init plan, and a superseded rollout's replacement plan. A change here is a change in what the
//! operator does to a cluster; review the diff like code.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sei_operator_core::api::template_hash;
use sei_operator_core::api::{
    HardForkStrategy, SeiNode, SeiNodeDeployment, SeiNodePhase, SeiNodeStatus, UpdateStrategyType,
};
use sei_operator_core::clock::Timestamp;
use sei_operator_core::manifest::{Manifest, ManifestValidator};
use sei_operator_core::objects::meta::LABEL_REVISION;
use sei_operator_core::plan::init_plan;
use sei_operator_core::rollout::{Observed, RolloutConfig, evaluate};

const NEW_IMAGE: &str = "sei:v6.4.0";

fn fixtures() -> Vec<(String, Manifest)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("fixtures/ exists")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    let validator = ManifestValidator::new().expect("schemas compile");
    files
        .into_iter()
        .flat_map(|path| {
            let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_owned();
            let text = std::fs::read_to_string(&path).expect("readable");
            validator.admit_yaml(&text).expect("valid fixture").into_iter().map(move |m| (stem.clone(), m))
        })
        .collect()
}

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + seconds).expect("in range")
}

/// The active set of a deployment at its baseline, all Running its template image (shared, as a list hands
/// them out).
fn running_nodes(deployment: &SeiNodeDeployment) -> Vec<Arc<SeiNode>> {
    let revision = template_hash(&deployment.spec.template.spec);
    let name = deployment.metadata.name.clone().unwrap_or_default();
    (0..deployment.spec.replicas)
        .map(|i| {
            let mut node = SeiNode::new(&format!("{name}-{i}"), deployment.spec.template.spec.clone());
            node.metadata.namespace = deployment.metadata.namespace.clone();
            node.metadata.labels = Some([(LABEL_REVISION.to_owned(), revision.clone())].into());
            node.status = Some(SeiNodeStatus {
                phase: Some(SeiNodePhase::Running),
                current_image: Some(deployment.spec.template.spec.image.clone()),
                ..Default::default()
            });
            Arc::new(node)
        })
        .collect()
}

/// Baseline, then `edit`, then one evaluation: the rollout's status (plan or refusal).
fn rollout_after(mut deployment: SeiNodeDeployment, edit: impl Fn(&mut SeiNodeDeployment)) -> SeiNodeDeployment {
    let name = deployment.metadata.name.clone().unwrap_or_default();
    deployment.metadata.uid = Some(format!("uid-{name}"));
    deployment.metadata.generation = Some(1);
    let nodes = running_nodes(&deployment);
    let revision = template_hash(&deployment.spec.template.spec);
    let observe = |now| Observed { nodes: &nodes, service_revision: Some(&revision), now: at(now) };
    deployment.status = Some(evaluate(&deployment, &observe(0), &RolloutConfig::default()).status);
    edit(&mut deployment);
    deployment.metadata.generation = deployment.metadata.generation.map(|g| g + 1);
    deployment.status = Some(evaluate(&deployment, &observe(60), &RolloutConfig::default()).status);
    deployment
}

fn with_strategy(deployment: &SeiNodeDeployment, strategy: UpdateStrategyType) -> SeiNodeDeployment {
    let mut d = deployment.clone();
    if strategy == UpdateStrategyType::HardFork && d.spec.update_strategy.halt_height().is_none() {
        d.spec.update_strategy.hard_fork = Some(HardForkStrategy { halt_height: Some(1_200_000) });
    }
    d.spec.update_strategy.type_ = strategy;
    d
}

#[test]
fn every_strategy_plans_every_deployment_fixture() {
    for (fixture, manifest) in fixtures() {
        let Manifest::SeiNodeDeployment(deployment) = manifest else { continue };
        for strategy in [UpdateStrategyType::InPlace, UpdateStrategyType::BlueGreen, UpdateStrategyType::HardFork] {
            let name = format!("{fixture}__{}", strategy.as_str());
            let rolled =
                rollout_after(with_strategy(&deployment, strategy), |d| d.spec.template.spec.image = NEW_IMAGE.into());
            let status = rolled.status.expect("status");
            match status.plan {
                Some(plan) => insta::assert_yaml_snapshot!(name, plan),
                // A fixture the strategy cannot roll out (HardFork without an S3 source): the refusal is the record.
                None => insta::assert_yaml_snapshot!(
                    name,
                    status.conditions.iter().map(|c| (&c.type_, &c.reason, &c.message)).collect::<Vec<_>>()
                ),
            }
        }
    }
}

#[test]
fn every_node_fixture_has_its_init_plan() {
    for (fixture, manifest) in fixtures() {
        let Manifest::SeiNode(mut node) = manifest else { continue };
        node.metadata.uid = Some(format!("uid-{fixture}"));
        let plan = init_plan(&node).expect("a stored node gets a plan");
        insta::assert_yaml_snapshot!(format!("{fixture}__init"), plan);
    }
}

#[test]
fn a_superseded_blue_green_rollout_is_replaced_by_a_plan_for_the_newest_spec() {
    let deployment = fixtures()
        .into_iter()
        .find_map(|(name, m)| match m {
            Manifest::SeiNodeDeployment(d) if name == "bluegreen" => Some(*d),
            _ => None,
        })
        .expect("the bluegreen fixture");
    let mut rolled = rollout_after(deployment, |d| d.spec.template.spec.image = NEW_IMAGE.into());
    rolled.spec.template.spec.image = "sei:v6.4.1".into();
    rolled.metadata.generation = Some(3);
    let nodes = running_nodes(&rolled);
    let incumbent_revision = rolled.status.as_ref().and_then(|s| s.active_set.as_ref()).map(|s| s.revision.clone());
    let observed = Observed { nodes: &nodes, service_revision: incumbent_revision.as_deref(), now: at(120) };
    let replacement = evaluate(&rolled, &observed, &RolloutConfig::default());
    let reasons: Vec<&str> = replacement.events.iter().map(|e| e.reason.as_str()).collect();
    assert_eq!(reasons, ["RolloutSuperseded"]);
    insta::assert_yaml_snapshot!("bluegreen__superseded", replacement.status.plan);
}
