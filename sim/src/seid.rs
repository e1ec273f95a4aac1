//! One run of seid, from start to exit, computed up front from the chain, the binary and the node's local height:
//! when it will exit (halt height reached, upgrade panic, wrong-binary panic) and its height at any moment. The
//! world only wakes up at the exit time; heights in between are computed when asked.

use std::time::Duration;

use crate::chain::Chain;
use crate::registry::Binary;

/// How a run of seid ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SeidExit {
    /// `--halt-height N`: stopped cleanly after committing block N (exit code 0).
    Halted,
    /// The old binary reached an upgrade height it has no handler for (Cosmos SDK x/upgrade: "UPGRADE NEEDED").
    UpgradeNeeded { upgrade_height: u64 },
    /// The new binary was asked to process a block below its upgrade height ("binary updated before trigger").
    UpdatedBeforeTrigger { block: u64 },
    /// The image's binary crashes as soon as it starts.
    CrashOnStart,
    /// Stopped by SIGTERM (an `await-condition` task's action): a clean shutdown, exit code 0.
    Terminated,
}

impl SeidExit {
    /// The container's exit code.
    pub fn exit_code(&self) -> i32 {
        match self {
            SeidExit::Halted | SeidExit::Terminated => 0,
            SeidExit::CrashOnStart => 1,
            // Go panics exit with code 2.
            SeidExit::UpgradeNeeded { .. } | SeidExit::UpdatedBeforeTrigger { .. } => 2,
        }
    }

    /// Whether this is a panic of the binary-versus-height rules.
    pub fn is_upgrade_panic(&self) -> bool {
        matches!(self, SeidExit::UpgradeNeeded { .. } | SeidExit::UpdatedBeforeTrigger { .. })
    }

    pub fn describe(&self) -> String {
        match self {
            SeidExit::Halted => "halted at --halt-height (exit 0)".into(),
            SeidExit::UpgradeNeeded { upgrade_height } => format!("panic: UPGRADE NEEDED at height {upgrade_height}"),
            SeidExit::UpdatedBeforeTrigger { block } => {
                format!("panic: binary updated before trigger (asked to process block {block})")
            }
            SeidExit::CrashOnStart => "crashed on start (exit 1)".into(),
            SeidExit::Terminated => "stopped by SIGTERM (exit 0)".into(),
        }
    }
}

/// A run of seid: where it started, how fast it syncs, and how and when it ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeidRun {
    pub started_at: Duration,
    pub start_height: u64,
    /// Block-sync speed while behind the tip, in blocks per second.
    pub sync_speed: u64,
    /// The last block it will process (halt height or the block before a panic), if any.
    pub last_block: Option<u64>,
    /// When and how it exits; `None`: it runs until stopped.
    pub exit: Option<(Duration, SeidExit)>,
}

impl SeidRun {
    /// Plans a run of `binary` on `chain` from local height `start_height`, started at `now`.
    pub fn start(
        chain: &Chain,
        binary: &Binary,
        now: Duration,
        start_height: u64,
        sync_speed: u64,
        halt_height: Option<u64>,
    ) -> Self {
        let mut run =
            SeidRun { started_at: now, start_height, sync_speed: sync_speed.max(1), last_block: None, exit: None };
        if binary.crash_on_start {
            run.last_block = Some(start_height);
            run.exit = Some((now, SeidExit::CrashOnStart));
            return run;
        }
        if halt_height.is_some_and(|halt| start_height >= halt) {
            // Already at or past the halt height: CometBFT stops at once.
            run.last_block = Some(start_height);
            run.exit = Some((now, SeidExit::Halted));
            return run;
        }
        let (lo, hi) = binary.valid_blocks(chain);
        let next = start_height + 1;
        if next < lo {
            run.last_block = Some(start_height);
            run.exit = chain.time_of_tip(next).map(|t| (t.max(now), SeidExit::UpdatedBeforeTrigger { block: next }));
            return run;
        }
        match (halt_height.filter(|halt| hi.is_none_or(|hi| *halt < hi)), hi) {
            (Some(halt), _) => {
                run.last_block = Some(halt);
                run.exit = run.reach(chain, halt).map(|t| (t, SeidExit::Halted));
            }
            (None, Some(hi)) => {
                run.last_block = Some(hi - 1);
                run.exit = run.reach(chain, hi).map(|t| (t, SeidExit::UpgradeNeeded { upgrade_height: hi }));
            }
            (None, None) => {}
        }
        run
    }

    /// When the node could have block `height`: the network has it and the node synced that far.
    pub fn reach(&self, chain: &Chain, height: u64) -> Option<Duration> {
        let behind = height.saturating_sub(self.start_height);
        let sync = Duration::from_nanos(behind.saturating_mul(1_000_000_000) / self.sync_speed);
        Some(chain.time_of_tip(height)?.max(self.started_at + sync))
    }

    /// The node's local height at `t` (not before it started, not after it exited).
    pub fn height_at(&self, chain: &Chain, t: Duration) -> u64 {
        let elapsed = t.saturating_sub(self.started_at);
        let synced =
            u64::try_from(elapsed.as_nanos() * u128::from(self.sync_speed) / 1_000_000_000).unwrap_or(u64::MAX);
        let height = chain.tip(t).min(self.start_height.saturating_add(synced)).max(self.start_height);
        self.last_block.map_or(height, |last| height.min(last))
    }

    /// Whether it is behind the network's tip (CometBFT's `catching_up`).
    pub fn catching_up(&self, chain: &Chain, t: Duration) -> bool {
        self.height_at(chain, t) < chain.tip(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    fn chain() -> Chain {
        Chain::new("c", 0).with_block_time(secs(1)).with_upgrade("v2", 100, Some(secs(300)))
    }

    #[test]
    fn old_binary_panics_when_it_reaches_the_upgrade_height() {
        let run = SeidRun::start(&chain(), &Binary::new("v1"), secs(0), 0, 1000, None);
        assert_eq!(run.exit, Some((secs(301), SeidExit::UpgradeNeeded { upgrade_height: 100 })));
        assert_eq!(run.height_at(&chain(), secs(250)), 99);
        assert_eq!(run.height_at(&chain(), secs(400)), 99);
    }

    #[test]
    fn new_binary_panics_on_a_block_below_the_upgrade() {
        // At t=60 the network is at 60: block 51 exists, and the new binary refuses it at once.
        let run = SeidRun::start(&chain(), &Binary::new("v2").knowing("v2"), secs(60), 50, 1000, None);
        assert_eq!(run.exit, Some((secs(60), SeidExit::UpdatedBeforeTrigger { block: 51 })));
        // Started ahead of the network, it panics when block 51 appears.
        let ahead = SeidRun::start(&chain(), &Binary::new("v2").knowing("v2"), secs(10), 50, 1000, None);
        assert_eq!(ahead.exit, Some((secs(51), SeidExit::UpdatedBeforeTrigger { block: 51 })));
        assert!(run.exit.as_ref().is_some_and(|(_, exit)| exit.is_upgrade_panic()));
    }

    #[test]
    fn new_binary_started_at_the_block_before_the_upgrade_runs_on() {
        let run = SeidRun::start(&chain(), &Binary::new("v2").knowing("v2"), secs(200), 99, 1000, None);
        assert_eq!(run.exit, None);
        assert_eq!(run.height_at(&chain(), secs(310)), 109);
    }

    #[test]
    fn halt_height_exits_zero_after_that_block() {
        let run = SeidRun::start(&chain(), &Binary::new("v1"), secs(0), 0, 10, Some(99));
        assert_eq!(run.exit, Some((secs(99), SeidExit::Halted)));
        assert_eq!(run.exit.as_ref().map(|(_, e)| e.exit_code()), Some(0));
        let already_there = SeidRun::start(&chain(), &Binary::new("v1"), secs(5), 120, 10, Some(99));
        assert_eq!(already_there.exit, Some((secs(5), SeidExit::Halted)));
    }

    #[test]
    fn a_node_behind_syncs_at_its_speed_and_reports_catching_up() {
        let chain = Chain::new("c", 1000).with_block_time(secs(1));
        let run = SeidRun::start(&chain, &Binary::new("v1"), secs(0), 0, 100, None);
        assert_eq!(run.height_at(&chain, secs(5)), 500);
        assert!(run.catching_up(&chain, secs(5)));
        assert_eq!(run.height_at(&chain, secs(20)), 1020);
        assert!(!run.catching_up(&chain, secs(20)));
    }
}
