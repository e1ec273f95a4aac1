//! The fake chain: per chain id a block time and a tip that advances with simulated time, stalling one block
//! below each governance upgrade until the external validators run the new binary. Heights are computed from
//! time on demand, never block by block, so an idle hour costs nothing.

use std::time::Duration;

/// One governance upgrade: the height it names and when the external validators switch binaries (`None`:
/// never, within the run).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upgrade {
    pub name: String,
    pub height: u64,
    pub validators_switch_at: Option<Duration>,
}

/// A chain: its id, block time, height at the start of the simulation, upgrades and snapshot interval.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chain {
    pub id: String,
    pub block_time: Duration,
    pub initial_height: u64,
    /// Sorted by height.
    pub upgrades: Vec<Upgrade>,
    /// Snapshots exist at every multiple of this height.
    pub snapshot_interval: u64,
}

impl Chain {
    /// A chain with no upgrades, 400 ms blocks (Sei's), snapshots every 10,000 blocks.
    pub fn new(id: impl Into<String>, initial_height: u64) -> Self {
        Chain {
            id: id.into(),
            block_time: Duration::from_millis(400),
            initial_height,
            upgrades: Vec::new(),
            snapshot_interval: 10_000,
        }
    }

    /// Adds an upgrade at `height`; the external validators switch at `validators_switch_at`.
    pub fn with_upgrade(mut self, name: &str, height: u64, validators_switch_at: Option<Duration>) -> Self {
        self.upgrades.push(Upgrade { name: name.into(), height, validators_switch_at });
        self.upgrades.sort_by_key(|u| u.height);
        self
    }

    pub fn with_block_time(mut self, block_time: Duration) -> Self {
        self.block_time = block_time;
        self
    }

    /// The network's tip at time `t`. Under CometBFT a block needs 2/3 of the voting power: at an upgrade height
    /// H the validators' old binaries panic, so the tip stays at H-1 until they run the new binary.
    pub fn tip(&self, t: Duration) -> u64 {
        let mut segment = (Duration::ZERO, self.initial_height);
        for upgrade in self.upgrades.iter().filter(|u| u.height > self.initial_height + 1) {
            let stall = upgrade.height - 1;
            let reach = segment.0 + self.blocks_duration(stall - segment.1);
            if t < reach {
                break;
            }
            let Some(switch) = upgrade.validators_switch_at else { return stall };
            let resume = reach.max(switch);
            if t < resume {
                return stall;
            }
            segment = (resume, stall);
        }
        segment.1 + self.blocks_in(t.saturating_sub(segment.0))
    }

    /// The first time the tip is at or above `height`; `None` when it never gets there (a stalled upgrade).
    pub fn time_of_tip(&self, height: u64) -> Option<Duration> {
        let mut segment = (Duration::ZERO, self.initial_height);
        if height <= segment.1 {
            return Some(Duration::ZERO);
        }
        for upgrade in self.upgrades.iter().filter(|u| u.height > self.initial_height + 1) {
            let stall = upgrade.height - 1;
            if height <= stall {
                break;
            }
            let reach = segment.0 + self.blocks_duration(stall - segment.1);
            segment = (reach.max(upgrade.validators_switch_at?), stall);
        }
        Some(segment.0 + self.blocks_duration(height - segment.1))
    }

    /// The chain's milestones for the trace: the tip stalling below each upgrade, the validators switching, the
    /// upgrade going live. Sorted by time.
    pub fn milestones(&self) -> Vec<(Duration, String)> {
        let mut milestones = Vec::new();
        for upgrade in &self.upgrades {
            let (id, name, height) = (&self.id, &upgrade.name, upgrade.height);
            if let Some(at) = self.time_of_tip(height.saturating_sub(1)) {
                milestones.push((at, format!("{id}: tip at {}, halting for upgrade {name}", height - 1)));
            }
            if let Some(at) = upgrade.validators_switch_at {
                milestones.push((at, format!("{id}: validators switch to the binary of {name}")));
            }
            if let Some(at) = self.time_of_tip(height) {
                milestones.push((at, format!("{id}: upgrade {name} live at height {height}")));
            }
        }
        milestones.sort();
        milestones
    }

    /// The newest snapshot at or below `height` (snapshot-restore restores it, then block-syncs up).
    pub fn snapshot_at_or_below(&self, height: u64) -> u64 {
        if self.snapshot_interval == 0 {
            return self.initial_height.min(height);
        }
        height / self.snapshot_interval * self.snapshot_interval
    }

    fn blocks_duration(&self, blocks: u64) -> Duration {
        let nanos = self.block_time.as_nanos().saturating_mul(u128::from(blocks));
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    fn blocks_in(&self, elapsed: Duration) -> u64 {
        let block = self.block_time.as_nanos().max(1);
        u64::try_from(elapsed.as_nanos() / block).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn tip_advances_one_block_per_block_time() {
        let chain = Chain::new("pacific-1", 100).with_block_time(secs(1));
        assert_eq!(chain.tip(secs(0)), 100);
        assert_eq!(chain.tip(secs(10)), 110);
        assert_eq!(chain.time_of_tip(110), Some(secs(10)));
        assert_eq!(chain.time_of_tip(50), Some(secs(0)));
    }

    #[test]
    fn tip_stalls_below_the_upgrade_until_validators_switch() {
        let chain = Chain::new("c", 0).with_block_time(secs(1)).with_upgrade("v2", 100, Some(secs(200)));
        assert_eq!(chain.tip(secs(99)), 99);
        assert_eq!(chain.tip(secs(150)), 99, "stalled at H-1");
        assert_eq!(chain.tip(secs(200)), 99);
        assert_eq!(chain.tip(secs(201)), 100);
        assert_eq!(chain.time_of_tip(100), Some(secs(201)));
        assert_eq!(chain.time_of_tip(99), Some(secs(99)));
    }

    #[test]
    fn early_validator_switch_does_not_skip_blocks() {
        let chain = Chain::new("c", 0).with_block_time(secs(1)).with_upgrade("v2", 100, Some(secs(5)));
        assert_eq!(chain.tip(secs(150)), 150);
        assert_eq!(chain.time_of_tip(100), Some(secs(100)));
    }

    #[test]
    fn an_upgrade_nobody_switches_to_halts_the_chain_for_good() {
        let chain = Chain::new("c", 0).with_block_time(secs(1)).with_upgrade("v2", 10, None);
        assert_eq!(chain.tip(secs(10_000)), 9);
        assert_eq!(chain.time_of_tip(10), None);
    }

    #[test]
    fn milestones_follow_the_upgrade() {
        let chain = Chain::new("c", 0).with_block_time(secs(1)).with_upgrade("v2", 100, Some(secs(200)));
        let times: Vec<u64> = chain.milestones().iter().map(|(t, _)| t.as_secs()).collect();
        assert_eq!(times, [99, 200, 201]);
    }

    #[test]
    fn snapshots_are_at_multiples_of_the_interval() {
        let chain = Chain::new("c", 0);
        assert_eq!(chain.snapshot_at_or_below(25_123), 20_000);
        assert_eq!(chain.snapshot_at_or_below(20_000), 20_000);
    }
}
