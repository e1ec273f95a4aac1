//! The API types against objects as the API server stores them.

use serde_json::json;

use super::*;

#[test]
fn a_deployment_stored_before_update_strategy_was_required_still_reads() {
    let stored = json!({
        "apiVersion": API_VERSION,
        "kind": "SeiNodeDeployment",
        "metadata": {"name": "legacy", "namespace": "sei"},
        "spec": {"template": {"spec": {"chainId": "pacific-1", "image": "sei:v6.3.0", "fullNode": {}}}}
    });
    let deployment: SeiNodeDeployment = serde_json::from_value(stored).expect("reads");
    assert!(deployment.spec.update_strategy.is_unspecified());
    assert_eq!(deployment.spec.update_strategy.resolve(), Ok(Strategy::InPlace));
    assert_eq!(deployment.spec.replicas, 1, "replicas defaults to 1");
    assert_eq!(deployment.spec.deletion_policy, DeletionPolicy::Delete, "deletionPolicy defaults to Delete");
}

#[test]
fn a_node_bootstraps_only_with_a_bootstrap_image_and_a_positive_s3_target() {
    let spec = |snapshot: serde_json::Value| -> SeiNodeSpec {
        serde_json::from_value(json!({
            "chainId": "pacific-1", "image": "sei:v6.4.0", "fullNode": {"snapshot": snapshot}
        }))
        .expect("reads")
    };
    assert_eq!(
        spec(json!({"s3": {"targetHeight": 99}, "bootstrapImage": "sei:v6.3.0"})).bootstrap(),
        Some(("sei:v6.3.0", 99))
    );
    assert_eq!(spec(json!({"s3": {"targetHeight": 0}, "bootstrapImage": "sei:v6.3.0"})).bootstrap(), None);
    assert_eq!(spec(json!({"s3": {"targetHeight": 99}})).bootstrap(), None);
    assert_eq!(spec(json!({"stateSync": {}, "bootstrapImage": "sei:v6.3.0"})).bootstrap(), None);
}

#[test]
fn mode_is_the_one_mode_set() {
    let spec = |modes: serde_json::Value| -> SeiNodeSpec {
        let mut value = json!({"chainId": "c", "image": "i"});
        if let (Some(target), Some(modes)) = (value.as_object_mut(), modes.as_object()) {
            target.extend(modes.clone());
        }
        serde_json::from_value(value).expect("reads")
    };
    assert_eq!(spec(json!({"archive": {}})).mode().map(|m| m.name()), Some("archive"));
    assert_eq!(spec(json!({"validator": {}})).mode().map(|m| m.name()), Some("validator"));
    assert_eq!(spec(json!({})).mode(), None, "no mode");
    assert_eq!(spec(json!({"archive": {}, "fullNode": {}})).mode(), None, "two modes");
}

#[test]
fn sidecar_port_defaults_to_7777() {
    let spec: SeiNodeSpec =
        serde_json::from_value(json!({"chainId": "c", "image": "i", "fullNode": {}})).expect("reads");
    assert_eq!(spec.sidecar_port(), 7777);
    let spec: SeiNodeSpec =
        serde_json::from_value(json!({"chainId": "c", "image": "i", "fullNode": {}, "sidecar": {"port": 8080}}))
            .expect("reads");
    assert_eq!(spec.sidecar_port(), 8080);
}

#[test]
fn the_crds_name_length_rules_say_the_limits_the_names_module_derives() {
    use kube::CustomResourceExt;
    let node = serde_json::to_string(&SeiNode::crd()).unwrap_or_default();
    let deployment = serde_json::to_string(&SeiNodeDeployment::crd()).unwrap_or_default();
    let node_rule = format!("self.metadata.name.size() <= {}", crate::objects::names::MAX_NODE_NAME);
    let deployment_rule = format!("self.metadata.name.size() <= {}", crate::objects::names::MAX_DEPLOYMENT_NAME);
    assert!(node.contains(&node_rule), "the SeiNode CRD lacks {node_rule}");
    assert!(node.contains(&format!("at most {} characters", crate::objects::names::MAX_NODE_NAME)));
    assert!(deployment.contains(&deployment_rule), "the SeiNodeDeployment CRD lacks {deployment_rule}");
    assert!(deployment.contains(&format!("at most {} characters", crate::objects::names::MAX_DEPLOYMENT_NAME)));
}
