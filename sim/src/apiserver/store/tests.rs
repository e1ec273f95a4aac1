use serde_json::json;

use super::*;

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(1_767_225_600 + seconds).unwrap()
}

fn config_map(name: &str, data: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "sei", "labels": {"app": "x"}},
        "spec": {"data": data},
    })
}

fn key(name: &str) -> ObjectRef {
    ObjectRef::new("ConfigMap", "sei", name)
}

fn rv(value: &Value) -> String {
    value["metadata"]["resourceVersion"].as_str().unwrap().to_owned()
}

#[test]
fn create_assigns_identity_and_drops_status() {
    let mut store = Store::new(None);
    let mut object = config_map("a", "1");
    object["status"] = json!({"phase": "forged"});
    let created = store.create(object, at(0)).map(Arc::unwrap_or_clone).unwrap();
    assert_eq!(created["metadata"]["generation"], 1);
    assert_eq!(rv(&created), "1");
    assert!(created["metadata"]["uid"].as_str().is_some_and(|u| !u.is_empty()));
    assert!(created.get("status").is_none(), "status is not writable on create");
    let again = store.create(config_map("a", "2"), at(1));
    assert_eq!(again, Err(ClusterError::AlreadyExists(key("a"))));
    let mut read_back = created.clone();
    read_back["metadata"]["name"] = json!("b");
    assert!(matches!(store.create(read_back, at(1)), Err(ClusterError::Invalid { .. })), "no version on create");
}

#[test]
fn generation_moves_with_spec_changes_only() {
    let mut store = Store::new(None);
    let created = store.create(config_map("a", "1"), at(0)).map(Arc::unwrap_or_clone).unwrap();
    let mut relabelled = created.clone();
    relabelled["metadata"]["labels"]["extra"] = json!("y");
    let relabelled = store.replace(relabelled).map(Arc::unwrap_or_clone).unwrap();
    assert_eq!(relabelled["metadata"]["generation"], 1, "metadata changes leave generation alone");
    assert_ne!(rv(&relabelled), rv(&created));
    let mut respecced = relabelled.clone();
    respecced["spec"]["data"] = json!("2");
    let respecced = store.replace(respecced).map(Arc::unwrap_or_clone).unwrap();
    assert_eq!(respecced["metadata"]["generation"], 2);
    let mut with_status = respecced.clone();
    with_status["status"] = json!({"observed": 2});
    let status_written = store.replace_status(with_status).map(Arc::unwrap_or_clone).unwrap();
    assert_eq!(status_written["metadata"]["generation"], 2, "status writes never bump generation");
}

#[test]
fn a_no_op_update_keeps_the_version_and_sends_no_event() {
    let mut store = Store::new(None);
    let created = store.create(config_map("a", "1"), at(0)).map(Arc::unwrap_or_clone).unwrap();
    let log = store.log_len();
    let same = store.replace(created.clone()).map(Arc::unwrap_or_clone).unwrap();
    assert_eq!(rv(&same), rv(&created));
    assert_eq!(store.log_len(), log);
}

#[test]
fn a_status_write_of_the_stored_status_is_a_no_op_whatever_else_it_sends() {
    let mut store = Store::new(None);
    let created = store.create(config_map("a", "1"), at(0)).map(Arc::unwrap_or_clone).unwrap();
    let log = store.log_len();
    // No status stored, none sent: nothing changes, whatever the request says of the spec.
    let mut respecced = created.clone();
    respecced["spec"]["data"] = json!("2");
    let same = store.replace_status(respecced.clone()).map(Arc::unwrap_or_clone).unwrap();
    assert_eq!((rv(&same), store.log_len()), (rv(&created), log));
    let mut with_status = created.clone();
    with_status["status"] = json!({"observed": 1});
    let written = store.replace_status(with_status).map(Arc::unwrap_or_clone).unwrap();
    assert_ne!(rv(&written), rv(&created));
    let log = store.log_len();
    // The stored status again, beside another spec: a no-op.
    let mut again = written.clone();
    again["spec"]["data"] = json!("3");
    let same = store.replace_status(again).map(Arc::unwrap_or_clone).unwrap();
    assert_eq!((rv(&same), store.log_len()), (rv(&written), log));
    assert_eq!(store.get(&key("a"), None).map(|v| v["spec"]["data"].clone()), Some(json!("1")));
}

#[test]
fn stale_or_missing_resource_versions_are_refused() {
    let mut store = Store::new(None);
    let created = store.create(config_map("a", "1"), at(0)).map(Arc::unwrap_or_clone).unwrap();
    let mut first = created.clone();
    first["spec"]["data"] = json!("2");
    store.replace(first).unwrap();
    // The object exactly as read before the write: stale, so refused, though it would change nothing of what it
    // read (the operator confirms a read this way before acting on it).
    assert_eq!(store.replace(created.clone()), Err(ClusterError::Conflict(key("a"))));
    let mut stale = created.clone();
    stale["spec"]["data"] = json!("3");
    assert_eq!(store.replace(stale.clone()), Err(ClusterError::Conflict(key("a"))));
    assert_eq!(store.replace_status(stale), Err(ClusterError::Conflict(key("a"))));
    let mut blind = created;
    blind["metadata"].as_object_mut().unwrap().remove("resourceVersion");
    assert!(matches!(store.replace(blind), Err(ClusterError::Invalid { .. })));
}

#[test]
fn replace_ignores_status_and_replace_status_ignores_the_rest() {
    let mut store = Store::new(None);
    let created = store.create(config_map("a", "1"), at(0)).map(Arc::unwrap_or_clone).unwrap();
    let mut status_write = created.clone();
    status_write["status"] = json!({"ready": true});
    status_write["spec"]["data"] = json!("ignored");
    status_write["metadata"]["labels"]["ignored"] = json!("yes");
    let written = store.replace_status(status_write).map(Arc::unwrap_or_clone).unwrap();
    assert_eq!(written["status"], json!({"ready": true}));
    assert_eq!(written["spec"]["data"], "1");
    assert!(written["metadata"]["labels"].get("ignored").is_none());
    let mut spec_write = written.clone();
    spec_write["status"] = json!({"ready": false});
    spec_write["spec"]["data"] = json!("2");
    let replaced = store.replace(spec_write).map(Arc::unwrap_or_clone).unwrap();
    assert_eq!(replaced["status"], json!({"ready": true}), "update keeps the stored status");
    assert_eq!(replaced["spec"]["data"], "2");
}

#[test]
fn a_status_write_stores_the_stored_rest_whether_the_request_repeats_it_leaves_it_out_or_adds_to_it() {
    let mut store = Store::new(None);
    let created = store.create(config_map("a", "1"), at(0)).map(Arc::unwrap_or_clone).unwrap();
    let stored_rest = |value: &Value| {
        let mut rest = value.clone();
        rest.as_object_mut().unwrap().remove("status");
        rest["metadata"].as_object_mut().unwrap().remove("resourceVersion");
        rest
    };
    // The whole object read, status changed: what a controller that read the latest version sends.
    let mut repeated = created.clone();
    repeated["status"] = json!({"step": 1});
    let written = store.replace_status(repeated).map(Arc::unwrap_or_clone).unwrap();
    assert_eq!(written["status"], json!({"step": 1}));
    assert_eq!(stored_rest(&written), stored_rest(&created));
    // Only the key, the version and the status: the spec and labels stay.
    let sparse = status_update(&written, json!({"step": 2}));
    assert!(sparse.get("spec").is_none());
    let written = store.replace_status(sparse).map(Arc::unwrap_or_clone).unwrap();
    assert_eq!(written["status"], json!({"step": 2}));
    assert_eq!(stored_rest(&written), stored_rest(&created));
    // Everything stored repeated, plus a field the object does not have: it is not stored.
    let mut added = written.clone();
    added["status"] = json!({"step": 3});
    added["extra"] = json!("dropped");
    let written = store.replace_status(added).map(Arc::unwrap_or_clone).unwrap();
    assert_eq!(written["status"], json!({"step": 3}));
    assert!(written.get("extra").is_none());
    assert_eq!(stored_rest(&written), stored_rest(&created));
    assert_eq!(store.get(&key("a"), None), Some(&written));
}

#[test]
fn finalizers_hold_deletion_until_removed() {
    let mut store = Store::new(None);
    let mut object = config_map("a", "1");
    object["metadata"]["finalizers"] = json!(["sei.io/cleanup"]);
    store.create(object, at(0)).unwrap();
    store.delete(&key("a"), at(5)).unwrap();
    let marked = store.get(&key("a"), None).unwrap().clone();
    assert!(is_deleting(&marked));
    store.delete(&key("a"), at(6)).unwrap();
    let mut more = store.get(&key("a"), None).unwrap().clone();
    more["metadata"]["finalizers"] = json!(["sei.io/cleanup", "sei.io/late"]);
    assert!(matches!(store.replace(more), Err(ClusterError::Invalid { .. })), "no new finalizer while deleting");
    assert_eq!(
        store.get(&key("a"), None).unwrap()["metadata"]["deletionTimestamp"],
        marked["metadata"]["deletionTimestamp"],
        "a second delete does not move the deletionTimestamp"
    );
    let mut released = marked;
    released["metadata"]["finalizers"] = json!([]);
    store.replace(released).unwrap();
    assert!(store.get(&key("a"), None).is_none());
    assert_eq!(store.delete(&key("a"), at(7)), Err(ClusterError::NotFound(key("a"))));
}

#[test]
fn garbage_collection_removes_dependents_of_vanished_owners() {
    let mut store = Store::new(None);
    let owner = store.create(config_map("owner", "1"), at(0)).map(Arc::unwrap_or_clone).unwrap();
    let other = store.create(config_map("other", "1"), at(0)).map(Arc::unwrap_or_clone).unwrap();
    let reference = |o: &Value, name: &str| json!({"apiVersion": "v1", "kind": "ConfigMap", "name": name, "uid": o["metadata"]["uid"], "controller": true});
    let mut child = config_map("child", "1");
    child["metadata"]["ownerReferences"] = json!([reference(&owner, "owner")]);
    store.create(child, at(0)).unwrap();
    let mut shared_child = config_map("shared", "1");
    shared_child["metadata"]["ownerReferences"] = json!([reference(&owner, "owner"), reference(&other, "other")]);
    store.create(shared_child, at(0)).unwrap();
    assert!(store.collect_garbage(at(1)).is_empty(), "nothing to collect while owners exist");
    store.delete(&key("owner"), at(2)).unwrap();
    assert_eq!(store.collect_garbage(at(3)), vec![key("child")]);
    assert!(store.get(&key("shared"), None).is_some(), "a dependent with a remaining owner survives");
}

#[test]
fn lists_match_selectors_and_sort_by_name() {
    let mut store = Store::new(None);
    for name in ["c", "a", "b"] {
        store.create(config_map(name, "1"), at(0)).unwrap();
    }
    let mut other = config_map("d", "1");
    other["metadata"]["labels"] = json!({"app": "y"});
    store.create(other, at(0)).unwrap();
    let selector: LabelSelector = [("app".to_owned(), "x".to_owned())].into();
    let names: Vec<&str> = store
        .list("ConfigMap", "sei", &selector, None)
        .iter()
        .map(|v| v["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "b", "c"]);
    assert!(store.list("ConfigMap", "elsewhere", &selector, None).is_empty());
}

#[test]
fn a_lagging_reader_sees_the_store_as_it_was() {
    let mut store = Store::new(None);
    store.allow_lag(10);
    let created = store.create(config_map("a", "1"), at(0)).map(Arc::unwrap_or_clone).unwrap();
    let mut changed = created.clone();
    changed["spec"]["data"] = json!("2");
    store.replace(changed).unwrap();
    store.create(config_map("b", "1"), at(0)).unwrap();
    assert_eq!(store.get(&key("a"), Some(1)).unwrap()["spec"]["data"], "1");
    assert_eq!(store.get(&key("a"), None).unwrap()["spec"]["data"], "2");
    assert!(store.get(&key("b"), Some(2)).is_none(), "not created yet at version 2");
    assert_eq!(store.list("ConfigMap", "sei", &LabelSelector::new(), Some(2)).len(), 1);
    assert!(store.get(&key("a"), Some(0)).is_none());
}

#[test]
fn the_change_log_records_every_write_in_order() {
    let mut store = Store::new(None);
    let created = store.create(config_map("a", "1"), at(0)).map(Arc::unwrap_or_clone).unwrap();
    let mut changed = created;
    changed["spec"]["data"] = json!("2");
    store.replace(changed).unwrap();
    store.delete(&key("a"), at(1)).unwrap();
    let changes: Vec<(u64, ChangeType)> = store.changes_since(0).iter().map(|c| (c.version, c.change)).collect();
    assert_eq!(changes, [(1, ChangeType::Added), (2, ChangeType::Modified), (3, ChangeType::Deleted)]);
    assert_eq!(store.changes_since(2).len(), 1);
}

#[test]
fn a_watch_sees_each_change_once_in_order() {
    let mut store = Store::new(None);
    store.create(config_map("before", "1"), at(0)).unwrap();
    let mut watch = Watch::from_now(&store);
    assert!(watch.poll(&store).is_empty());
    store.create(config_map("a", "1"), at(0)).unwrap();
    store.delete(&key("a"), at(1)).unwrap();
    let seen: Vec<(ChangeType, String)> =
        watch.poll(&store).iter().map(|c| (c.change, c.object.name.clone())).collect();
    assert_eq!(seen, [(ChangeType::Added, "a".to_owned()), (ChangeType::Deleted, "a".to_owned())]);
    assert!(watch.poll(&store).is_empty());
}

/// A store that admits against the CRDs, holding one valid SeiNode `n` (returned as stored).
fn admitting_store_with_a_node() -> (Store, Value) {
    let validator = Arc::new(ManifestValidator::new().unwrap());
    let mut store = Store::new(Some(validator));
    let node = json!({
        "apiVersion": "sei.io/v1alpha1", "kind": "SeiNode",
        "metadata": {"name": "n", "namespace": "sei"},
        "spec": {"chainId": "pacific-1", "image": "sei:v1", "fullNode": {}},
    });
    let created = store.create(node, at(0)).map(Arc::unwrap_or_clone).unwrap();
    (store, created)
}

#[test]
fn sei_nodes_are_admitted_against_the_crd() {
    let (mut store, created) = admitting_store_with_a_node();
    let mut invalid = created;
    invalid["spec"]["image"] = json!("");
    invalid["spec"]["bogus"] = json!(1);
    match store.replace(invalid) {
        Err(ClusterError::Invalid { message, .. }) => assert!(message.contains("bogus"), "{message}"),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn sei_node_status_writes_are_checked_against_the_status_schema() {
    let (mut store, created) = admitting_store_with_a_node();
    // The spec is unchanged, so its rules are not re-run (ratcheting), but the status is still checked.
    let mut invalid = created.clone();
    invalid["status"] = json!({"phase": "Sleeping"});
    match store.replace_status(invalid) {
        Err(ClusterError::Invalid { message, .. }) => assert!(message.starts_with("status.phase"), "{message}"),
        other => panic!("expected Invalid, got {other:?}"),
    }
    let mut valid = created;
    valid["status"] = json!({"phase": "Running"});
    let written = store.replace_status(valid).map(Arc::unwrap_or_clone).unwrap();
    assert_eq!(written["status"]["phase"], "Running");
}

/// [`admitting_store_with_a_node`] keeping 10 versions of history, after a status write made the node Running:
/// the store, the node's key and the object as written (a copy: the store alone holds the stored one).
fn store_with_a_running_node() -> (Store, ObjectRef, Value) {
    let (mut store, created) = admitting_store_with_a_node();
    store.allow_lag(10);
    let mut running = created;
    running["status"] = json!({"phase": "Running"});
    let written = store.replace_status(running).map(Arc::unwrap_or_clone).unwrap();
    (store, ObjectRef::new("SeiNode", "sei", "n"), written)
}

#[test]
fn a_status_write_changes_no_version_a_reader_holds_and_a_refused_one_changes_nothing() {
    let (mut store, node, written) = store_with_a_running_node();
    assert_eq!(store.get(&node, None).unwrap()["status"]["phase"], "Running");
    // Refused: the stored object, its version and the change log stay as they were.
    let log = store.log_len();
    let mut invalid = written.clone();
    invalid["status"] = json!({"phase": "Sleeping"});
    assert!(matches!(store.replace_status(invalid), Err(ClusterError::Invalid { .. })));
    assert_eq!(store.get(&node, None), Some(&written));
    assert_eq!(store.list("SeiNode", "sei", &LabelSelector::new(), None), [&written]);
    assert_eq!(store.log_len(), log);
    // Unchanged: answered as stored, nothing logged; a status left out removes it.
    assert_eq!(store.replace_status(written.clone()).map(Arc::unwrap_or_clone), Ok(written.clone()));
    assert_eq!(store.log_len(), log);
    let mut cleared = written.clone();
    cleared.as_object_mut().unwrap().remove("status");
    let cleared = store.replace_status(cleared).map(Arc::unwrap_or_clone).unwrap();
    assert!(cleared.get("status").is_none());
    assert_eq!(store.list("SeiNode", "sei", &LabelSelector::new(), None), [&cleared]);
    // Two writes later, a lagging reader still gets the version the status was written at.
    let version: u64 = rv(&written).parse().unwrap();
    assert_eq!(store.get(&node, Some(version)), Some(&written));
}

#[test]
fn what_a_status_write_leaves_decoded_is_what_its_stored_value_decodes_to() {
    use k8s_openapi::api::apps::v1::StatefulSet;
    use k8s_openapi::api::core::v1::Pod;
    use serde::Deserialize;
    let mut store = Store::new(None);
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p-0", "namespace": "sei", "labels": {"app": "p"}},
        "spec": {"containers": [{"name": "seid", "image": "sei:v1", "env": [{"name": "A", "value": "1"}]}]},
    });
    let set = json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "p", "namespace": "sei"},
        "spec": {"selector": {"matchLabels": {"app": "p"}}, "serviceName": "p", "template": {
            "metadata": {"labels": {"app": "p"}}, "spec": {"containers": [{"name": "seid", "image": "sei:v1"}]}}},
    });
    let statuses = [
        json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}),
        json!({"replicas": 1, "readyReplicas": 1, "currentRevision": "p-1"}),
    ];
    for (object, status) in [pod, set].into_iter().zip(statuses) {
        let created = store.create(object, at(0)).unwrap();
        let key = key_of(&created).unwrap();
        let decoded = store.decoded().clone();
        let check = |value: &Value| match key.kind.as_str() {
            "Pod" => assert_eq!(*decoded.decode::<Pod>(&key, value).unwrap(), Pod::deserialize(value).unwrap()),
            _ => assert_eq!(
                *decoded.decode::<StatefulSet>(&key, value).unwrap(),
                StatefulSet::deserialize(value).unwrap()
            ),
        };
        check(&created);
        for written_status in [status, Value::Null] {
            let stored = store.get(&key, None).unwrap();
            let written = store.replace_status(status_update(stored, written_status)).unwrap();
            check(&written);
        }
    }
}

#[test]
fn lagging_readers_see_every_version_that_status_writes_replaced_in_place() {
    let mut store = Store::new(None);
    store.allow_lag(100);
    let key = key("a");
    // Each write's answer copied at once, so that the store alone holds the stored object and writes over it.
    let mut versions = vec![store.create(config_map("a", "1"), at(0)).map(Arc::unwrap_or_clone).unwrap()];
    let status_write = |store: &mut Store, status: Value| {
        let stored = store.get(&key, None).unwrap().clone();
        store.replace_status(status_update(&stored, status)).map(Arc::unwrap_or_clone).unwrap()
    };
    versions.push(status_write(&mut store, json!({"phase": "Pending"})));
    versions.push(status_write(&mut store, json!({"phase": "Running", "ready": 1})));
    let mut spec_write = versions.last().unwrap().clone();
    spec_write["spec"]["data"] = json!("2");
    versions.push(store.replace(spec_write).map(Arc::unwrap_or_clone).unwrap());
    versions.push(status_write(&mut store, Value::Null));
    versions.push(status_write(&mut store, json!({"phase": "Running", "ready": 2})));
    // A reader holding the stored object: the write copies instead, and the history keeps that version whole.
    let held = store.get(&key, None).cloned().unwrap();
    let shared = store.by_key.get(&key).unwrap().clone();
    versions
        .push(store.replace_status(status_update(&held, json!({"phase": "Done"}))).map(Arc::unwrap_or_clone).unwrap());
    drop(shared);
    versions.push(status_write(&mut store, json!({"phase": "Running", "ready": 3})));
    // Refused (not an object): nothing changes, and the history still rebuilds every version.
    let mut refused = versions.last().unwrap().clone();
    refused["status"] = json!({"phase": "Gone"});
    refused["metadata"]["resourceVersion"] = json!("1");
    assert_eq!(store.replace_status(refused), Err(ClusterError::Conflict(key.clone())));
    store.delete(&key, at(1)).unwrap();

    let kinds: Vec<&str> = store.history[&key]
        .iter()
        .map(|(_, kept)| match kept {
            Kept::Whole(_) => "whole",
            Kept::BeforeStatusWrite { .. } => "status",
            Kept::Deleted => "deleted",
        })
        .collect();
    assert_eq!(kinds, ["status", "status", "whole", "status", "status", "whole", "status", "whole", "deleted"]);
    for (index, version) in versions.iter().enumerate() {
        let at: u64 = rv(version).parse().unwrap();
        assert_eq!(store.get(&key, Some(at)), Some(version), "version {index} at {at}");
        // A second read answers the version rebuilt once.
        assert_eq!(store.get(&key, Some(at)), Some(version));
    }
    assert_eq!(store.get(&key, None), None);
    assert_eq!(
        store.list("ConfigMap", "sei", &LabelSelector::new(), Some(rv(&versions[2]).parse().unwrap())),
        [&versions[2]]
    );
}

#[test]
fn a_refused_status_write_over_an_object_only_the_store_holds_leaves_it_and_its_history_as_they_were() {
    let (mut store, node, written) = store_with_a_running_node();
    let mut invalid = written.clone();
    invalid["status"] = json!({"phase": "Sleeping"});
    assert!(matches!(store.replace_status(invalid), Err(ClusterError::Invalid { .. })));
    assert_eq!(store.get(&node, None), Some(&written));
    assert_eq!(store.list("SeiNode", "sei", &LabelSelector::new(), None), [&written]);
    // Written over in place after all, the version refused over is still the one a lagging reader gets.
    let mut done = written.clone();
    done["status"] = json!({"phase": "Failed"});
    store.replace_status(done).unwrap();
    assert_eq!(store.get(&node, Some(rv(&written).parse().unwrap())), Some(&written));
    assert!(matches!(store.history[&node].last(), Some((_, Kept::Whole(_)))));
    assert!(matches!(store.history[&node].iter().rev().nth(1), Some((_, Kept::BeforeStatusWrite { .. }))));
}
