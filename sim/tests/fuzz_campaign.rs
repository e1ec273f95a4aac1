//! Fuzz campaigns beyond one process: N shards of a campaign, merged, report exactly what one process over the
//! same cases reports — the same cases judged, the same simulated time and checks, the same failures with the
//! same scenario files — and deploy/fuzz-campaign/, the Indexed Job that runs the shards on Kubernetes, renders
//! with `kubectl kustomize` into what `sei-sim fuzz` accepts.

use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use sei_sim::fuzz::summary::{self, Campaign, Summary};
use sei_sim::fuzz::{self, Bounds, FuzzConfig, Shard};
use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A small campaign whose liveness bound some cases miss: deployments of one replica that settle within 40 s or
/// not, depending on their operations, so there are passing and failing cases, each failure shrunk by attempts
/// alone (a wall-time budget would make the shrunk case depend on the machine's load).
fn campaign() -> FuzzConfig {
    let mut config = FuzzConfig::new(6, 14, &root());
    config.bounds = Bounds::new(1, 2);
    config.settle_within = Duration::from_secs(40);
    config.max_shrink_iters = 2;
    config.max_shrink_time = Duration::from_secs(3600);
    config.keep_going = true;
    config
}

fn summary_of(config: &FuzzConfig) -> Summary {
    let report = fuzz::fuzz(config, |_| {});
    Summary::of(config, &report, Duration::from_secs(1))
}

#[test]
fn three_shards_merged_report_what_one_process_reports() {
    let whole = campaign();
    let single = summary_of(&whole);
    assert_eq!(single.cases_judged, 6);
    assert!(!single.failures.is_empty() && single.failures.len() < 6, "some cases pass, some fail: {single:#?}");

    let shards: Vec<(String, Summary)> = (0..3)
        .map(|index| {
            let mut config = whole.clone();
            config.shard = Shard::new(index, 3).expect("a shard");
            (format!("shard {index}"), summary_of(&config))
        })
        .collect();
    assert_eq!(shards.iter().map(|(_, s)| s.cases_judged).collect::<Vec<_>>(), [2, 2, 2]);
    let merged = summary::merge(&shards).expect("one campaign");
    assert!(merged.missing_shards().is_empty());

    assert_eq!(merged.cases_judged, single.cases_judged);
    assert_eq!(merged.simulated_millis, single.simulated_millis);
    assert_eq!(merged.invariant_checks, single.invariant_checks);
    assert_eq!(merged.shrink_attempts, single.shrink_attempts);
    assert_eq!(merged.failures, single.failures, "the same failures, shrunk to the same scenario files");
    assert_eq!(merged.campaign, Campaign { shard_count: 3, ..single.campaign.clone() }, "one campaign, in 3 shards");

    // A shard of a different campaign is refused, naming the setting.
    let mut stranger = shards[1].1.clone();
    stranger.campaign.seed = 15;
    let error = summary::merge(&[shards[0].clone(), ("other.json".to_owned(), stranger)]).expect_err("two campaigns");
    assert_eq!(
        error.to_string(),
        "the summaries are of different campaigns: campaign.seed is 15 in other.json but 14 in shard 0"
    );
}

#[test]
fn threads_report_what_one_thread_reports_whether_or_not_the_run_stops_at_a_failure() {
    // Seed 17 fails at cases 0, 1 and 5: three threads judge cases 0, 1 and 2 side by side, so without
    // keep_going the failure of case 1 is found while case 0's stops the run.
    for keep_going in [true, false] {
        let one = FuzzConfig { seed: 17, keep_going, ..campaign() };
        let single = summary_of(&one);
        let threaded_config = FuzzConfig { jobs: NonZeroU32::new(3).expect("non-zero"), ..one.clone() };
        let threaded = summary_of(&threaded_config);
        assert_eq!(threaded.jobs, 3, "keep_going {keep_going}");
        assert!(!single.failures.is_empty(), "the campaign has failures: {single:#?}");
        if !keep_going {
            // Stopped at the first failure: the cases after it, judged meanwhile by other threads, do not count.
            assert_eq!(single.failures.len(), 1);
            assert_eq!(single.cases_judged, single.failures[0].case_index + 1);
        }
        assert_eq!(
            (threaded.cases_judged, threaded.simulated_millis, threaded.invariant_checks, threaded.shrink_attempts),
            (single.cases_judged, single.simulated_millis, single.invariant_checks, single.shrink_attempts),
            "keep_going {keep_going}"
        );
        assert_eq!(threaded.failures, single.failures, "keep_going {keep_going}: the same failures, shrunk alike");
        assert_eq!(threaded.campaign, single.campaign, "threads are not a campaign setting");
    }
}

// --- deploy/fuzz-campaign/ -----------------------------------------------------------------------------------

/// kubectl with kustomize v5, or `None` (after saying why) where it may be missing; required under CI or
/// `SEI_OPERATOR_REQUIRE_TOOLS`, as in operator/tests/deploy_manifests.rs.
fn kubectl() -> Option<PathBuf> {
    let output = Command::new("kubectl").args(["version", "--client"]).output();
    let version = output.ok().filter(|o| o.status.success()).map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
    let kustomize_major = version.as_deref().and_then(|text| {
        let line = text.lines().find(|l| l.starts_with("Kustomize Version:"))?;
        line.split_once(": v")?.1.split('.').next()?.parse::<u32>().ok()
    });
    if kustomize_major.is_some_and(|major| major >= 5) {
        return Some(PathBuf::from("kubectl"));
    }
    let required = ["SEI_OPERATOR_REQUIRE_TOOLS", "CI"].iter().any(|var| std::env::var_os(var).is_some());
    assert!(!required, "kubectl with kustomize v5 is required in this run (SEI_OPERATOR_REQUIRE_TOOLS or CI is set)");
    eprintln!("skipped: no kubectl with kustomize v5");
    None
}

fn render(kubectl: &Path, dir: &str) -> Vec<Value> {
    let output = Command::new(kubectl).arg("kustomize").arg(root().join(dir)).output().expect("kubectl runs");
    assert!(output.status.success(), "kubectl kustomize {dir}:\n{}", String::from_utf8_lossy(&output.stderr));
    let text = String::from_utf8_lossy(&output.stdout);
    serde_saphyr::from_multiple::<Value>(&text).expect("kustomize's output is YAML")
}

fn one<'a>(documents: &'a [Value], kind: &str) -> &'a Value {
    let found: Vec<&Value> = documents.iter().filter(|d| d["kind"] == kind).collect();
    let [object] = found.as_slice() else { panic!("one {kind} expected, found {}", found.len()) };
    object
}

fn args_of(job: &Value) -> Vec<String> {
    let container = &job["spec"]["template"]["spec"]["containers"][0];
    container["args"].as_array().expect("args").iter().map(|a| a.as_str().expect("a string").to_owned()).collect()
}

fn sei_sim(args: &[String], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sei-sim")).args(args).current_dir(dir).output().expect("sei-sim runs")
}

#[test]
fn the_campaign_job_runs_every_shard_of_one_campaign_onto_the_results_volume() {
    let Some(kubectl) = kubectl() else { return };
    let documents = render(&kubectl, "deploy/fuzz-campaign");
    let kinds: Vec<&str> = documents.iter().filter_map(|d| d["kind"].as_str()).collect();
    assert_eq!(kinds, ["Namespace", "PersistentVolumeClaim", "Job"]);
    let job = one(&documents, "Job");
    let spec = &job["spec"];
    assert_eq!(spec["completionMode"], "Indexed");
    let shards = spec["completions"].as_u64().expect("completions");
    assert_eq!(spec["parallelism"], spec["completions"], "every shard runs at once");
    assert_eq!(job["metadata"]["namespace"], "sei-fuzz");

    let args = args_of(job);
    let value_of = |flag: &str| {
        let at = args.iter().position(|a| a == flag).unwrap_or_else(|| panic!("{flag} in {args:?}"));
        args[at + 1].clone()
    };
    assert_eq!(value_of("--shard"), format!("$(JOB_COMPLETION_INDEX)/{shards}"), "N is the Job's completions");
    assert!(args.contains(&"--keep-going".to_owned()), "a shard judges all of its cases: {args:?}");
    let mount = &spec["template"]["spec"]["containers"][0]["volumeMounts"][0];
    let results = mount["mountPath"].as_str().expect("a mount");
    assert!(value_of("--summary").starts_with(&format!("{results}/")), "{args:?}");
    assert_eq!(value_of("--failures-dir"), results);
    let volume = &spec["template"]["spec"]["volumes"][0];
    assert_eq!(volume["name"], mount["name"]);
    let claim = one(&documents, "PersistentVolumeClaim");
    assert_eq!(volume["persistentVolumeClaim"]["claimName"], claim["metadata"]["name"]);
    // An index that found a failure (exit 1) is not run again; the others run on.
    let rule = &spec["podFailurePolicy"]["rules"][0];
    assert_eq!((&rule["action"], &rule["onExitCodes"]["values"][0]), (&Value::from("FailIndex"), &Value::from(1)));

    // sei-sim takes these args, as Kubernetes expands them for a shard, with a tiny budget and a local directory.
    let scratch_dir = tempfile::Builder::new().prefix("sei-sim-campaign-").tempdir().expect("a scratch directory");
    let scratch = scratch_dir.path();
    let shard_args: Vec<String> = args
        .iter()
        .zip(std::iter::once("").chain(args.iter().map(String::as_str)))
        .map(|(arg, flag)| match flag {
            "--cases" => shards.to_string(),
            "--max-replicas" => "1".to_owned(),
            _ => arg.replace("$(JOB_COMPLETION_INDEX)", "1").replace(results, &scratch.display().to_string()),
        })
        .chain(["--max-ops".to_owned(), "1".to_owned()])
        .collect();
    let output = sei_sim(&shard_args, &root());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{shard_args:?}\n{stdout}{}", String::from_utf8_lossy(&output.stderr));
    let written = Summary::read(&scratch.join("summary-1.json")).expect("the shard's summary");
    assert_eq!((written.shards.as_slice(), written.cases_judged), (&[1][..], 1));
    assert_eq!(u64::from(written.campaign.shard_count), shards);

    // The merge Job reads the same volume.
    let merge = render(&kubectl, "deploy/fuzz-campaign/merge");
    let merge_job = one(&merge, "Job");
    assert_eq!(merge_job["metadata"]["namespace"], "sei-fuzz");
    let merge_args = args_of(merge_job);
    assert_eq!(merge_args[..2], ["fuzz-merge".to_owned(), results.to_owned()]);
    let merge_volume = &merge_job["spec"]["template"]["spec"]["volumes"][0];
    assert_eq!(merge_volume["persistentVolumeClaim"]["claimName"], claim["metadata"]["name"]);
    let local_merge: Vec<String> =
        merge_args.iter().map(|a| a.replace(results, &scratch.display().to_string())).collect();
    let output = sei_sim(&local_merge, &root());
    let stdout = String::from_utf8_lossy(&output.stdout);
    // One shard of N merged: the others are missing, which the report says and the exit code shows.
    assert_eq!(output.status.code(), Some(1), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    let missing: Vec<String> = (0..shards).filter(|&shard| shard != 1).map(|shard| shard.to_string()).collect();
    assert!(stdout.contains(&format!("MISSING shards: {}", missing.join(", "))), "{stdout}");
    assert!(scratch.join("merged.json").exists());
}
