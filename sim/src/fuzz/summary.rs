//! What a fuzz run reports as JSON (`sei-sim fuzz --summary FILE`), and the merge of a campaign's shard summaries
//! into one (`sei-sim fuzz-merge`). Every figure but wall time is a pure function of the cases judged, so the merge
//! of all N shards of a `keep_going` campaign equals the summary of one process over the same cases, wall time
//! aside; summaries of different campaigns (any setting, or the simulator's version) are refused.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{FuzzConfig, Report};

/// The `format` every summary carries.
pub const FORMAT: &str = "sei-sim-fuzz-summary/1";

/// What makes two runs parts of one campaign: every setting that changes which cases are drawn or how they are
/// judged, and the shard count. Merged summaries must agree on all of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Campaign {
    pub sei_sim_version: String,
    pub seed: u64,
    pub cases: u32,
    pub max_replicas: u32,
    pub max_ops: usize,
    pub retain_reapply: bool,
    pub without_hard_fork: bool,
    pub settle_within_secs: u64,
    pub max_shrink_iters: u32,
    pub max_shrink_time_secs: u64,
    pub keep_going: bool,
    pub shard_count: u32,
}

impl Campaign {
    pub fn of(config: &FuzzConfig) -> Self {
        Campaign {
            sei_sim_version: env!("CARGO_PKG_VERSION").to_owned(),
            seed: config.seed,
            cases: config.cases,
            max_replicas: config.bounds.max_replicas,
            max_ops: config.bounds.max_ops,
            retain_reapply: config.bounds.retain_reapply,
            without_hard_fork: config.bounds.without_hard_fork,
            settle_within_secs: config.settle_within.as_secs(),
            max_shrink_iters: config.max_shrink_iters,
            max_shrink_time_secs: config.max_shrink_time.as_secs(),
            keep_going: config.keep_going,
            shard_count: config.shard.count,
        }
    }
}

/// One run's report, or the merge of several shards' reports.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub format: String,
    pub campaign: Campaign,
    /// The shards this summary covers, ascending: one for a run, several for a merge.
    pub shards: Vec<u32>,
    /// Generated cases judged (shrinking attempts not included).
    pub cases_judged: u32,
    /// Simulated time of those cases' runs (each case runs twice: with its faults and without), in milliseconds:
    /// an integer, so merged sums are exact.
    pub simulated_millis: u64,
    /// The same, in hours, for reading.
    pub simulated_hours: f64,
    /// Invariant checks of those runs.
    pub invariant_checks: u64,
    /// Shrinking attempts (their number depends on wall time when `maxShrinkTimeSecs` cuts shrinking short).
    pub shrink_attempts: u32,
    /// Wall time of the run; of a merge, the sum over its shards.
    pub wall_seconds: f64,
    /// Threads the run judged cases on (`fuzz --jobs`); of a merge, the most any shard used.
    #[serde(default = "one_job")]
    pub jobs: u32,
    /// Wall time times threads: what the run cost in cores; of a merge, the sum over its shards.
    #[serde(default)]
    pub core_seconds: f64,
    /// Cases judged per wall second of the run; of a merge, per core second.
    pub cases_per_second: f64,
    /// Cases judged per core second: the figure that compares runs on different numbers of cores.
    #[serde(default)]
    pub cases_per_core_second: f64,
    /// In case order.
    pub failures: Vec<FailureReport>,
}

/// A failure as a summary reports it: enough to replay it without the file it was written to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FailureReport {
    /// Which case of the campaign failed (0-based, in generation order).
    pub case_index: u32,
    /// The minimal case's simulation seed.
    pub case_seed: u64,
    /// The minimal case, described.
    pub minimal_case: String,
    pub reason: String,
    /// Whether the run with faults fails (false: the same operations fail without them).
    pub perturbed: bool,
    /// Where the run wrote the scenario file, if it did.
    pub scenario_file: Option<PathBuf>,
    /// The scenario file's text.
    pub scenario: String,
}

/// A summary that cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum SummaryError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: not a fuzz summary: {source}")]
    Json { path: PathBuf, source: serde_json::Error },
}

/// Why summaries do not merge.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MergeError {
    #[error("no summaries to merge")]
    Nothing,
    #[error("{source_name}: format {found:?}, this sei-sim reads {FORMAT:?}")]
    Format { source_name: String, found: String },
    #[error(
        "the summaries are of different campaigns: campaign.{field} is {value} in {source_name} but {first_value} in {first_source}"
    )]
    DifferentCampaigns { field: String, first_source: String, first_value: String, source_name: String, value: String },
    #[error("shard {shard} is in both {first_source} and {source_name}")]
    ShardTwice { shard: u32, first_source: String, source_name: String },
}

impl Summary {
    /// The summary of a run of `config` that took `wall`. Scenario files are not known here: the caller writes
    /// them and fills in `scenario_file`.
    pub fn of(config: &FuzzConfig, report: &Report, wall: Duration) -> Self {
        let progress = &report.progress;
        let simulated_millis = u64::try_from(progress.cases_simulated.as_millis()).unwrap_or(u64::MAX);
        let wall_seconds = wall.as_secs_f64();
        Summary {
            format: FORMAT.to_owned(),
            campaign: Campaign::of(config),
            shards: vec![config.shard.index],
            cases_judged: progress.cases,
            simulated_millis,
            simulated_hours: hours(simulated_millis),
            invariant_checks: progress.cases_invariant_checks,
            shrink_attempts: progress.shrink_steps,
            wall_seconds,
            jobs: report.jobs,
            core_seconds: wall_seconds * f64::from(report.jobs),
            cases_per_second: per_second(progress.cases, wall_seconds),
            cases_per_core_second: per_second(progress.cases, wall_seconds * f64::from(report.jobs)),
            failures: report
                .failures
                .iter()
                .map(|failure| FailureReport {
                    case_index: failure.case_index,
                    case_seed: failure.case.seed,
                    minimal_case: failure.case.to_string(),
                    reason: failure.reason.clone(),
                    perturbed: failure.perturbed,
                    scenario_file: None,
                    scenario: failure.scenario_yaml.clone(),
                })
                .collect(),
        }
    }

    /// The campaign's shards no summary here covers.
    pub fn missing_shards(&self) -> Vec<u32> {
        (0..self.campaign.shard_count).filter(|shard| !self.shards.contains(shard)).collect()
    }

    pub fn read(path: &Path) -> Result<Self, SummaryError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| SummaryError::Io { path: path.to_owned(), source })?;
        serde_json::from_str(&text).map_err(|source| SummaryError::Json { path: path.to_owned(), source })
    }

    pub fn write(&self, path: &Path) -> Result<(), SummaryError> {
        let json = serde_json::to_string_pretty(self)
            .map_err(|source| SummaryError::Json { path: path.to_owned(), source })?;
        std::fs::write(path, json + "\n").map_err(|source| SummaryError::Io { path: path.to_owned(), source })
    }
}

/// Merges shard summaries, each named by where it came from (for errors): one campaign, each shard at most once.
/// Figures add up; failures are put in case order.
pub fn merge(summaries: &[(String, Summary)]) -> Result<Summary, MergeError> {
    let Some((first_source, first)) = summaries.first() else {
        return Err(MergeError::Nothing);
    };
    let mut merged = Summary { shards: Vec::new(), failures: Vec::new(), ..first.clone() };
    (merged.cases_judged, merged.simulated_millis, merged.invariant_checks) = (0, 0, 0);
    (merged.shrink_attempts, merged.wall_seconds, merged.core_seconds, merged.jobs) = (0, 0.0, 0.0, 0);
    let mut seen: Vec<(u32, &str)> = Vec::new();
    for (source, summary) in summaries {
        if summary.format != FORMAT {
            return Err(MergeError::Format { source_name: source.clone(), found: summary.format.clone() });
        }
        if let Some((field, first_value, value)) = first_difference(&first.campaign, &summary.campaign) {
            return Err(MergeError::DifferentCampaigns {
                field,
                first_source: first_source.clone(),
                first_value,
                source_name: source.clone(),
                value,
            });
        }
        for &shard in &summary.shards {
            if let Some((_, earlier)) = seen.iter().find(|(seen_shard, _)| *seen_shard == shard) {
                return Err(MergeError::ShardTwice {
                    shard,
                    first_source: (*earlier).to_owned(),
                    source_name: source.clone(),
                });
            }
            seen.push((shard, source));
        }
        merged.shards.extend(&summary.shards);
        merged.cases_judged += summary.cases_judged;
        merged.simulated_millis = merged.simulated_millis.saturating_add(summary.simulated_millis);
        merged.invariant_checks = merged.invariant_checks.saturating_add(summary.invariant_checks);
        merged.shrink_attempts += summary.shrink_attempts;
        merged.wall_seconds += summary.wall_seconds;
        merged.jobs = merged.jobs.max(summary.jobs);
        // A summary written before `jobs` was recorded judged on one thread.
        merged.core_seconds += if summary.core_seconds > 0.0 {
            summary.core_seconds
        } else {
            summary.wall_seconds * f64::from(summary.jobs.max(1))
        };
        merged.failures.extend(summary.failures.iter().cloned());
    }
    merged.shards.sort_unstable();
    merged.failures.sort_by_key(|failure| failure.case_index);
    merged.simulated_hours = hours(merged.simulated_millis);
    merged.cases_per_second = per_second(merged.cases_judged, merged.core_seconds);
    merged.cases_per_core_second = merged.cases_per_second;
    Ok(merged)
}

/// The first campaign field (by its JSON name) on which two campaigns differ, with the two values.
fn first_difference(first: &Campaign, other: &Campaign) -> Option<(String, String, String)> {
    let (serde_json::Value::Object(first), serde_json::Value::Object(other)) =
        (serde_json::to_value(first).ok()?, serde_json::to_value(other).ok()?)
    else {
        return None;
    };
    first.iter().find_map(|(field, value)| {
        let theirs = other.get(field).unwrap_or(&serde_json::Value::Null);
        (theirs != value).then(|| (field.clone(), value.to_string(), theirs.to_string()))
    })
}

fn hours(millis: u64) -> f64 {
    millis as f64 / 3_600_000.0
}

/// What a summary without `jobs` (written before runs had threads) judged on.
fn one_job() -> u32 {
    1
}

fn per_second(cases: u32, wall_seconds: f64) -> f64 {
    if wall_seconds > 0.0 { f64::from(cases) / wall_seconds } else { 0.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(index: u32, count: u32, cases: u32) -> Summary {
        Summary {
            format: FORMAT.to_owned(),
            campaign: Campaign {
                sei_sim_version: "0.1.0".into(),
                seed: 1,
                cases: 10,
                max_replicas: 4,
                max_ops: 8,
                retain_reapply: true,
                without_hard_fork: false,
                settle_within_secs: 1800,
                max_shrink_iters: 200,
                max_shrink_time_secs: 60,
                keep_going: true,
                shard_count: count,
            },
            shards: vec![index],
            cases_judged: cases,
            simulated_millis: 1000 * u64::from(cases),
            simulated_hours: 0.0,
            invariant_checks: 7,
            shrink_attempts: 0,
            wall_seconds: 2.0,
            jobs: 1,
            core_seconds: 2.0,
            cases_per_second: 0.0,
            cases_per_core_second: 0.0,
            failures: Vec::new(),
        }
    }

    #[test]
    fn summaries_of_one_campaign_add_up_and_say_which_shards_are_missing() {
        let merged =
            merge(&[("b".into(), shard(2, 3, 3)), ("a".into(), shard(0, 3, 4))]).expect("one campaign, two shards");
        assert_eq!(merged.shards, [0, 2]);
        assert_eq!(merged.missing_shards(), [1]);
        assert_eq!((merged.cases_judged, merged.simulated_millis, merged.invariant_checks), (7, 7000, 14));
        assert_eq!(merged.wall_seconds, 4.0);
        assert_eq!(merged.cases_per_second, 1.75);
    }

    #[test]
    fn a_merge_counts_each_shards_threads_in_core_seconds() {
        // Shard 0 judged on 2 threads for 2 s of wall time; shard 2's summary predates `jobs` (one thread).
        let mut threaded = shard(0, 3, 8);
        (threaded.jobs, threaded.core_seconds) = (2, 4.0);
        let text = serde_json::to_string(&shard(2, 3, 2)).expect("serializes");
        let mut old: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        for field in ["jobs", "coreSeconds", "casesPerCoreSecond"] {
            old.as_object_mut().expect("an object").remove(field);
        }
        let old: Summary = serde_json::from_value(old).expect("a summary without the thread fields reads");
        assert_eq!((old.jobs, old.core_seconds), (1, 0.0));
        let merged = merge(&[("threaded".into(), threaded), ("old".into(), old)]).expect("one campaign");
        assert_eq!((merged.wall_seconds, merged.core_seconds, merged.jobs), (4.0, 6.0, 2));
        assert_eq!((merged.cases_per_second, merged.cases_per_core_second), (10.0 / 6.0, 10.0 / 6.0));
    }

    #[test]
    fn summaries_of_different_campaigns_or_one_shard_twice_are_refused_naming_why() {
        let mut other = shard(1, 3, 3);
        other.campaign.max_replicas = 16;
        let error = merge(&[("a.json".into(), shard(0, 3, 4)), ("b.json".into(), other)]).expect_err("differs");
        assert_eq!(
            error.to_string(),
            "the summaries are of different campaigns: campaign.maxReplicas is 16 in b.json but 4 in a.json"
        );
        let error = merge(&[("a.json".into(), shard(0, 3, 4)), ("b.json".into(), shard(0, 4, 4))]).expect_err("N");
        assert!(error.to_string().contains("campaign.shardCount is 4 in b.json but 3 in a.json"), "{error}");
        let error = merge(&[("a.json".into(), shard(0, 3, 4)), ("c.json".into(), shard(0, 3, 4))]).expect_err("twice");
        assert_eq!(
            error,
            MergeError::ShardTwice { shard: 0, first_source: "a.json".into(), source_name: "c.json".into() }
        );
        let mut old = shard(1, 3, 3);
        old.format = "sei-sim-fuzz-summary/0".into();
        assert!(matches!(merge(&[("a".into(), old)]), Err(MergeError::Format { .. })));
        assert_eq!(merge(&[]), Err(MergeError::Nothing));
    }
}
