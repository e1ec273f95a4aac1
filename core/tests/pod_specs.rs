//! The pods the operator builds, as a cluster would receive them: reviewed snapshots of a node's StatefulSet and
//! of a bootstrap Job, and the seid wrappers run for real — bash runs the exact command the operator writes
//! against a loopback server that answers the sidecar's `/v0/healthz` with 503 and then 200, with a stand-in
//! `seid` on `PATH` that records its arguments and exits with a chosen code.

use std::path::Path;

use sei_operator_core::api::{S3Snapshot, SeiNode, SnapshotSource};
use sei_operator_core::manifest::{Manifest, ManifestValidator};
use sei_operator_core::node_defaults::NodeDefaults;
use sei_operator_core::objects::workload;

fn fixture_node(file: &str) -> SeiNode {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures").join(file);
    let text = std::fs::read_to_string(&path).expect("fixture is readable");
    let validator = ManifestValidator::new().expect("schemas compile");
    let manifests = validator.admit_yaml(&text).expect("valid fixture");
    let mut node = manifests
        .into_iter()
        .map(|m| match m {
            Manifest::SeiNode(node) => *node,
            Manifest::SeiNodeDeployment(deployment) => {
                let mut node = SeiNode::new("rpc-0", deployment.spec.template.spec.clone());
                node.metadata.namespace = deployment.metadata.namespace.clone();
                node
            }
        })
        .next()
        .expect("a node or a deployment");
    node.metadata.uid = Some("uid-node".into());
    node
}

/// The node's StatefulSet with the built-in defaults for what its spec leaves unset.
fn built_in_statefulset(node: &SeiNode) -> k8s_openapi::api::apps::v1::StatefulSet {
    workload::stateful_set(node, &NodeDefaults::built_in().for_node(&node.spec))
}

fn yaml<T: serde::Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).expect("serializes")
}

#[test]
fn a_full_node_statefulset() {
    insta::assert_yaml_snapshot!(
        "full-node-statefulset",
        yaml(&built_in_statefulset(&fixture_node("inplace-fullnode.yaml")))
    );
}

#[test]
fn an_entrypoint_replaces_what_the_wrapper_starts_not_the_wait() {
    let node = fixture_node("standalone-seinode.yaml");
    let sts = built_in_statefulset(&node);
    let pod = sts.spec.and_then(|s| s.template.spec).expect("a pod template");
    let seid = pod.containers.iter().find(|c| c.name == workload::SEID_CONTAINER).expect("seid");
    let script = seid.args.as_ref().and_then(|a| a.first()).expect("the wrapper script");
    assert!(script.starts_with(&workload::sidecar_wait_loop(node.spec.sidecar_port())), "{script}");
    let start = format!("exec seid start --home /sei{}", workload::UPGRADE_PANIC_CAPTURE);
    assert!(script.ends_with(&start), "{script}");
}

#[test]
fn a_bootstrap_job() {
    let mut node = fixture_node("hardfork.yaml");
    let snapshot = SnapshotSource {
        s3: Some(S3Snapshot { target_height: 1_199_999 }),
        bootstrap_image: Some("sei:v6.3.0".into()),
        ..Default::default()
    };
    if let Some(full) = node.spec.full_node.as_mut() {
        full.snapshot = Some(snapshot);
    }
    insta::assert_yaml_snapshot!(
        "bootstrap-job",
        yaml(&workload::bootstrap_job(&node, &NodeDefaults::built_in().for_node(&node.spec), "sei:v6.3.0", 1_199_999))
    );
}

#[test]
fn shell_quoting_keeps_words_whole() {
    assert_eq!(workload::shell_quote("seid"), "seid");
    assert_eq!(workload::shell_quote("--home=/sei"), "--home=/sei");
    assert_eq!(workload::shell_quote("two words"), "'two words'");
    assert_eq!(workload::shell_quote("it's"), r"'it'\''s'");
    assert_eq!(workload::shell_quote(""), "''");
    assert_eq!(workload::shell_quote("$(reboot)"), "'$(reboot)'");
}

#[cfg(unix)]
mod wrappers {
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;
    use std::os::unix::fs::PermissionsExt;
    use std::path::{Path, PathBuf};
    use std::process::Command;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use sei_operator_core::objects::workload;

    /// A loopback stand-in for the sidecar's healthz: 503 (empty body, as seictl's `handleHealthz`) for the
    /// first `not_ready` requests, then 200. Each answer checks that seid has not started yet while not ready.
    fn healthz_server(not_ready: usize, started_marker: PathBuf) -> (u16, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binds loopback");
        let port = listener.local_addr().expect("has an address").port();
        let served = Arc::new(AtomicUsize::new(0));
        let counter = served.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut request_line = String::new();
                let mut reader = BufReader::new(stream.try_clone().expect("clones"));
                if reader.read_line(&mut request_line).is_err() {
                    continue;
                }
                // Read the rest of the head.
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).map_or(true, |n| n == 0) || line == "\r\n" {
                        break;
                    }
                }
                let n = counter.fetch_add(1, Ordering::SeqCst);
                let ok = request_line.starts_with("GET /v0/healthz ") && n >= not_ready;
                if !ok {
                    assert!(!started_marker.exists(), "seid started while the sidecar answered 503");
                }
                let answer = if ok {
                    "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"
                } else {
                    "HTTP/1.0 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"
                };
                let _ = stream.write_all(answer.as_bytes());
            }
        });
        (port, served)
    }

    fn executable(path: &Path, body: &str) {
        std::fs::write(path, body).expect("writes the stand-in");
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }

    struct Run {
        exit_code: Option<i32>,
        seid_args: Option<String>,
        healthz_requests: usize,
    }

    /// Runs the container's command as the kubelet would (`command` + `args`), with stand-ins for `seid` (records
    /// its arguments, exits `seid_exit`) and `sleep` (returns at once, so the test does not wait 5 s a poll).
    fn run_wrapper(script_for: impl Fn(i32) -> String, seid_exit: i32, not_ready: usize) -> Run {
        let scratch = tempdir();
        let dir = scratch.path();
        let record = dir.join("seid-args");
        let (port, served) = healthz_server(not_ready, record.clone());
        let bin = dir.join("bin");
        std::fs::create_dir_all(&bin).expect("mkdir");
        executable(
            &bin.join("seid"),
            &format!("#!/bin/sh\nprintf '%s\\n' \"$@\" > '{}'\nexit {seid_exit}\n", record.display()),
        );
        executable(&bin.join("sleep"), "#!/bin/sh\nexit 0\n");
        let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
        let status = Command::new(workload::SHELL)
            .arg("-c")
            .arg(script_for(i32::from(port)))
            .env("PATH", path)
            .stdout(std::process::Stdio::null())
            .status()
            .expect("bash runs");
        Run {
            exit_code: status.code(),
            seid_args: std::fs::read_to_string(&record).ok(),
            healthz_requests: served.load(Ordering::SeqCst),
        }
    }

    /// A fresh scratch directory, removed when dropped (also when the test panics).
    fn tempdir() -> tempfile::TempDir {
        tempfile::Builder::new().prefix("sei-operator-wrapper-").tempdir().expect("mkdir")
    }

    #[test]
    fn the_node_wrapper_waits_for_healthz_then_execs_seid_start() {
        let run = run_wrapper(|port| workload::node_start_script(port, &workload::default_seid_start()), 0, 3);
        assert_eq!(run.exit_code, Some(0));
        assert_eq!(run.seid_args.as_deref(), Some("start\n--home\n/sei\n"));
        assert_eq!(run.healthz_requests, 4, "three 503s, then the 200 that lets seid start");
    }

    #[test]
    fn the_node_wrapper_passes_seid_exit_codes_through() {
        let run = run_wrapper(|port| workload::node_start_script(port, &workload::default_seid_start()), 2, 0);
        assert_eq!(run.exit_code, Some(2), "a panicking seid must crash the container");
    }

    #[test]
    fn the_node_wrapper_keeps_entrypoint_words_whole() {
        let words: Vec<String> = ["seid", "start", "--home", "/sei", "--log level"].map(str::to_owned).to_vec();
        let run = run_wrapper(|port| workload::node_start_script(port, &words), 0, 1);
        assert_eq!(run.seid_args.as_deref(), Some("start\n--home\n/sei\n--log level\n"));
    }

    #[test]
    fn the_bootstrap_wrapper_maps_the_halt_exit_130_to_success() {
        let run = run_wrapper(|port| workload::bootstrap_start_script(port, 1_199_999), 130, 2);
        assert_eq!(run.exit_code, Some(0));
        assert_eq!(run.seid_args.as_deref(), Some("start\n--home\n/sei\n--halt-height\n1199999\n"));
        assert_eq!(run.healthz_requests, 3);
    }

    #[test]
    fn the_bootstrap_wrapper_passes_other_exit_codes_through() {
        for code in [0, 1, 2, 137] {
            let run = run_wrapper(|port| workload::bootstrap_start_script(port, 100), code, 0);
            assert_eq!(run.exit_code, Some(code), "seid exit {code}");
        }
    }
}

/// What the pod settings put on a StatefulSet: the pod's own fields, seid's resources and security context, and
/// the data volume's claim — the part of the object the settings decide.
fn pod_settings_view(sts: &k8s_openapi::api::apps::v1::StatefulSet) -> serde_json::Value {
    let spec = sts.spec.as_ref().expect("a spec");
    let pod = spec.template.spec.as_ref().expect("a pod template");
    let seid = pod.containers.iter().find(|c| c.name == workload::SEID_CONTAINER).expect("seid");
    let claim = spec.volume_claim_templates.as_ref().and_then(|c| c.first()).and_then(|c| c.spec.as_ref());
    serde_json::json!({
        "nodeSelector": pod.node_selector,
        "tolerations": pod.tolerations,
        "affinity": pod.affinity,
        "topologySpreadConstraints": pod.topology_spread_constraints,
        "priorityClassName": pod.priority_class_name,
        "serviceAccountName": pod.service_account_name,
        "imagePullSecrets": pod.image_pull_secrets,
        "podSecurityContext": pod.security_context,
        "seidResources": seid.resources,
        "seidSecurityContext": seid.security_context,
        "shareProcessNamespace": pod.share_process_namespace,
        "podSettingsDigest": spec.template.metadata.as_ref().and_then(|m| m.annotations.as_ref())
            .and_then(|a| a.get(sei_operator_core::objects::meta::ANNOTATION_POD_SETTINGS)),
        "claim": claim,
    })
}

#[test]
fn each_mode_gets_its_built_in_defaults() {
    for (mode, file) in [
        ("fullNode", "inplace-fullnode.yaml"),
        ("validator", "validator-seinode.yaml"),
        ("archive", "archive-node-large-volume.yaml"),
    ] {
        let mut node = fixture_node(file);
        // The settings the fixture gives are dropped: this is what the mode alone gets.
        let bare = serde_json::json!({"chainId": "pacific-1", "image": "sei:v6.3.0", mode: {}});
        node.spec = serde_json::from_value(bare).expect("a spec");
        if mode == "validator" {
            node.spec.validator = Some(Default::default());
        }
        insta::assert_yaml_snapshot!(format!("defaults-{mode}"), pod_settings_view(&built_in_statefulset(&node)));
    }
}

#[test]
fn a_specs_settings_win_over_the_defaults() {
    for (name, file) in
        [("rpc-fleet", "rpc-fleet-on-a-dedicated-pool.yaml"), ("archive", "archive-node-large-volume.yaml")]
    {
        insta::assert_yaml_snapshot!(
            format!("overrides-{name}"),
            pod_settings_view(&built_in_statefulset(&fixture_node(file)))
        );
    }
}

#[test]
fn an_operator_defaults_file_reaches_the_built_objects_where_the_spec_is_silent() {
    let text = "fullNode:\n  storage:\n    storageClassName: gp3-10k-750\n  serviceAccountName: sei-default\n  \
                imagePullSecrets:\n    - name: registry\n";
    let defaults = NodeDefaults::from_yaml(Path::new("defaults.yaml"), text).expect("valid defaults");
    let node = fixture_node("inplace-fullnode.yaml");
    let settings = defaults.for_node(&node.spec);
    let claim = workload::data_volume(&node, &settings).spec.expect("a claim spec");
    assert_eq!(claim.storage_class_name.as_deref(), Some("gp3-10k-750"));
    let sts = workload::stateful_set(&node, &settings);
    let pod = sts.spec.and_then(|s| s.template.spec).expect("a pod template");
    assert_eq!(pod.service_account_name.as_deref(), Some("sei-default"));
    assert_eq!(pod.image_pull_secrets.map(|s| s.len()), Some(1));
    let job = workload::bootstrap_job(&node, &settings, "sei:v6.2.0", 10);
    let job_pod = job.spec.and_then(|s| s.template.spec).expect("a Job pod");
    assert_eq!(job_pod.service_account_name.as_deref(), Some("sei-default"), "the bootstrap pod runs as the node");
}

/// The node script's panic capture, run by a real bash on a stand-in seid that prints what x/upgrade prints: the
/// panic lines reach the termination message file, the rest only the log, and seid's exit code is the script's.
#[test]
fn the_node_script_reports_upgrade_panics_in_its_termination_message() {
    use sei_operator_core::objects::workload::UPGRADE_PANIC_CAPTURE;
    use sei_operator_core::rollout::gate::parse_upgrade_panic;
    if !std::path::Path::new(sei_operator_core::objects::workload::SHELL).exists() {
        eprintln!("skipped: no {} on this machine", sei_operator_core::objects::workload::SHELL);
        return;
    }
    let scratch = tempfile::Builder::new().prefix("sei-capture-").tempdir().expect("temp dir");
    let dir = scratch.path();
    let seid = dir.join("seid");
    let message_file = dir.join("termination-log");
    std::fs::write(
        &seid,
        "#!/bin/bash\necho 'INF committed block height=999'\n\
         echo 'panic: UPGRADE \"v6.0.0\" NEEDED at height: 1000: ' >&2\n\
         for i in $(seq 1 40); do echo \"goroutine frame $i\" >&2; done\nexit 2\n",
    )
    .expect("stand-in seid");
    std::process::Command::new("chmod").arg("+x").arg(&seid).status().expect("chmod");
    let capture = UPGRADE_PANIC_CAPTURE.replace("/dev/termination-log", &message_file.display().to_string());
    let script = format!("exec {}{capture}", seid.display());
    let output = std::process::Command::new(sei_operator_core::objects::workload::SHELL)
        .args(["-c", &script])
        .output()
        .expect("bash runs");
    assert_eq!(output.status.code(), Some(2), "seid's exit code passes through");
    assert!(String::from_utf8_lossy(&output.stdout).contains("goroutine frame 40"), "the log keeps everything");
    // grep writes as it reads; it may still be writing when the script returns.
    let mut message = String::new();
    for _ in 0..50 {
        message = std::fs::read_to_string(&message_file).unwrap_or_default();
        if !message.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(message.lines().count(), 1, "{message}");
    let panic = parse_upgrade_panic(&message).expect("the panic line");
    assert_eq!((panic.upgrade.as_str(), panic.height), ("v6.0.0", Some(1000)));
}
