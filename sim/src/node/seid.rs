//! One run of seid, from start to exit, computed up front from the chain, the binary and the node's local height:
//! when it will exit (halt height reached, upgrade panic, wrong-binary panic) and its height at any moment. The
//! world only wakes up at the exit time; heights in between are computed when asked.

use std::time::Duration;

use crate::node::chain::Chain;
use crate::node::registry::Binary;
use serde_json::Value;

/// The exit code of `seid start --halt-height N` once it has committed block N: 128 + SIGINT.
pub const HALT_EXIT_CODE: i32 = sei_operator_core::objects::workload::HALT_EXIT_CODE;

/// How a run of seid ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SeidExit {
    /// `--halt-height N`: stopped after committing block N, with exit code 130. Cosmos SDK's `BaseApp.Commit`
    /// calls `halt()`, which sends SIGINT to its own process (sei-protocol/sei-chain
    /// `sei-cosmos/baseapp/abci.go`, `halt`); the server ends with 128 + SIGINT (docs/design.md §2; upstream's bootstrap
    /// wrapper maps 130 to success: sei-protocol/sei-k8s-controller `internal/task/bootstrap_resources.go`,
    /// `bootstrapWaitCommand`). Only a wrapper that maps it makes a Job's pod succeed.
    Halted,
    /// The old binary reached an upgrade height it has no handler for (Cosmos SDK x/upgrade: "UPGRADE NEEDED").
    UpgradeNeeded { upgrade_height: u64 },
    /// The new binary was asked to process a block below its upgrade height ("binary updated before trigger").
    UpdatedBeforeTrigger { block: u64 },
    /// The image's binary crashes as soon as it starts.
    CrashOnStart,
    /// Stopped by SIGTERM (an `await-condition` task's action): a clean shutdown, exit code 0.
    Terminated,
    /// `seid start` on a home with no `config/genesis.json` (a volume nobody ran `seid init` on): the start
    /// command reads the genesis file ignoring the error and dereferences the nil result
    /// (sei-protocol/sei-chain `sei-cosmos/server/start.go`, `GenesisDocFromFile`), a Go panic: exit code 2.
    NoGenesis,
    /// The kubelet killed the container: its startup probe failed `failureThreshold` times
    /// (kubernetes/kubernetes `pkg/kubelet/kuberuntime/kuberuntime_manager.go`, `computePodActions`). PID 1 of
    /// the wrapper is a shell that ignores SIGTERM, so the grace period ends in SIGKILL: exit code 137.
    KilledByStartupProbe,
}

impl SeidExit {
    /// The container's exit code.
    pub fn exit_code(&self) -> i32 {
        match self {
            SeidExit::Halted => HALT_EXIT_CODE,
            SeidExit::Terminated => 0,
            SeidExit::CrashOnStart => 1,
            // Go panics exit with code 2.
            SeidExit::UpgradeNeeded { .. } | SeidExit::UpdatedBeforeTrigger { .. } | SeidExit::NoGenesis => 2,
            SeidExit::KilledByStartupProbe => 137,
        }
    }

    /// Whether seid crashed (a panic or a failed start), as opposed to stopping as asked (halt, SIGTERM) or
    /// being killed.
    pub fn is_crash(&self) -> bool {
        matches!(
            self,
            SeidExit::CrashOnStart
                | SeidExit::UpgradeNeeded { .. }
                | SeidExit::UpdatedBeforeTrigger { .. }
                | SeidExit::NoGenesis
        )
    }

    /// Whether this is a panic of the binary-versus-height rules.
    pub fn is_upgrade_panic(&self) -> bool {
        matches!(self, SeidExit::UpgradeNeeded { .. } | SeidExit::UpdatedBeforeTrigger { .. })
    }

    pub fn describe(&self) -> String {
        match self {
            SeidExit::Halted => "halted after committing its --halt-height block (exit 130: SIGINT)".into(),
            SeidExit::UpgradeNeeded { upgrade_height } => format!("panic: UPGRADE NEEDED at height {upgrade_height}"),
            SeidExit::UpdatedBeforeTrigger { block } => {
                format!("panic: binary updated before trigger (asked to process block {block})")
            }
            SeidExit::CrashOnStart => "crashed on start (exit 1)".into(),
            SeidExit::Terminated => "stopped by SIGTERM (exit 0)".into(),
            SeidExit::NoGenesis => "panic at start: no config/genesis.json in its home (exit 2)".into(),
            SeidExit::KilledByStartupProbe => "killed: startup probe failed (exit 137)".into(),
        }
    }
}

/// The part of a node's config (`config/config.toml`, `config/app.toml` in seid's home) the operator decides.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SeidConfig {
    /// `config-apply`'s `overrides`. sei-protocol/seictl `sidecar/tasks/config_apply.go` (`applyFull`) resolves
    /// the whole config from the mode's defaults and these, and writes it over what was there.
    pub overrides: Value,
    /// `discover-peers`' parameters, since the last `config-apply` (which resets the peers to the defaults').
    pub peers: Value,
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
    /// The config it read from its home when it started; it never reads it again.
    pub config: Option<Box<SeidConfig>>,
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
        let mut run = SeidRun {
            started_at: now,
            start_height,
            sync_speed: sync_speed.max(1),
            last_block: None,
            exit: None,
            config: None,
        };
        if binary.crash_on_start {
            run.last_block = Some(start_height);
            run.exit = Some((now, SeidExit::CrashOnStart));
            return run;
        }
        // The halt is checked in `Commit`, after a block is processed (`header.Height >= haltHeight`,
        // sei-protocol/sei-chain `sei-cosmos/baseapp/abci.go`): a node already at or past the halt height
        // processes one more block, then halts.
        let halt_height = halt_height.map(|halt| halt.max(start_height + 1));
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
    fn halt_height_exits_130_after_that_block() {
        let run = SeidRun::start(&chain(), &Binary::new("v1"), secs(0), 0, 10, Some(99));
        assert_eq!(run.exit, Some((secs(99), SeidExit::Halted)));
        assert_eq!(run.exit.as_ref().map(|(_, e)| e.exit_code()), Some(130));
        assert!(!SeidExit::Halted.is_crash());
    }

    #[test]
    fn a_node_restarted_at_or_past_its_halt_height_processes_one_more_block() {
        // At 50 with --halt-height 50: block 51 is processed (at t=51, when the network has it), then it halts.
        let at_halt = SeidRun::start(&chain(), &Binary::new("v1"), secs(5), 50, 10, Some(50));
        assert_eq!(at_halt.exit, Some((secs(51), SeidExit::Halted)));
        assert_eq!(at_halt.last_block, Some(51));
        assert_eq!(at_halt.height_at(&chain(), secs(60)), 51);
        let past = SeidRun::start(&chain(), &Binary::new("v1"), secs(70), 60, 10, Some(50));
        let ms = Duration::from_millis;
        assert_eq!(past.exit, Some((ms(70_100), SeidExit::Halted)), "block 61 exists: one block at 10 per second");
        assert_eq!(past.last_block, Some(61));
        // At H-1 with --halt-height H-1, the next block is the upgrade height: the old binary panics instead.
        let at_fork = SeidRun::start(&chain(), &Binary::new("v1"), secs(400), 99, 10, Some(99));
        assert_eq!(at_fork.exit, Some((ms(400_100), SeidExit::UpgradeNeeded { upgrade_height: 100 })));
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
