//! The scenario's image registry: which container images exist, and what seid binary each one holds — its
//! version, the upgrades it knows, whether it can be pulled, whether it crashes on start.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::node::chain::Chain;

/// A seid binary inside an image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Binary {
    pub version: String,
    /// Names of the upgrades whose handlers it carries (it is the "new" binary for those).
    pub knows_upgrades: BTreeSet<String>,
    /// False: the image exists in manifests but the registry refuses it (ImagePullBackOff).
    pub pullable: bool,
    /// Exits non-zero at once whenever started (a broken build).
    pub crash_on_start: bool,
    /// A sidecar task type that always fails in a pod running this image (a release whose config validation
    /// rejects the node's configuration): what fails an entrant's init plan, and with it a rollout's plan.
    pub fails_task: Option<String>,
    pub pull_time: Duration,
}

impl Binary {
    pub fn new(version: &str) -> Self {
        Binary {
            version: version.into(),
            knows_upgrades: BTreeSet::new(),
            pullable: true,
            crash_on_start: false,
            fails_task: None,
            pull_time: Duration::from_secs(2),
        }
    }

    /// The binary carries the handler of upgrade `name`.
    pub fn knowing(mut self, name: &str) -> Self {
        self.knows_upgrades.insert(name.into());
        self
    }

    pub fn unpullable(mut self) -> Self {
        self.pullable = false;
        self
    }

    pub fn crashing_on_start(mut self) -> Self {
        self.crash_on_start = true;
        self
    }

    /// Sidecar tasks of `task_type` always fail in pods running this image.
    pub fn failing_task(mut self, task_type: &str) -> Self {
        self.fails_task = Some(task_type.into());
        self
    }

    /// The blocks `[lo, hi)` this binary can process on `chain`: from its newest known upgrade (the new binary
    /// refuses blocks below it) up to, not including, the first upgrade above that it does not know (the old
    /// binary panics there). `hi = None`: no limit.
    pub fn valid_blocks(&self, chain: &Chain) -> (u64, Option<u64>) {
        let lo = chain
            .upgrades
            .iter()
            .filter(|u| self.knows_upgrades.contains(&u.name))
            .map(|u| u.height)
            .max()
            .unwrap_or(0);
        let hi = chain.upgrades.iter().find(|u| u.height > lo && !self.knows_upgrades.contains(&u.name));
        (lo, hi.map(|u| u.height))
    }
}

/// Images by reference (`sei:v6.3.0`).
#[derive(Clone, Debug, Default)]
pub struct ImageRegistry {
    images: BTreeMap<String, Binary>,
}

impl ImageRegistry {
    pub fn with(mut self, image: &str, binary: Binary) -> Self {
        self.images.insert(image.into(), binary);
        self
    }

    /// The binary inside an image, pulled or cached.
    pub fn binary(&self, image: &str) -> Option<&Binary> {
        self.images.get(image)
    }

    /// The binary of a pullable image; `None` for an unknown or unpullable one.
    pub fn pull(&self, image: &str) -> Option<&Binary> {
        self.images.get(image).filter(|b| b.pullable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binaries_process_blocks_between_their_upgrades() {
        let chain = Chain::new("c", 0).with_upgrade("v2", 100, None).with_upgrade("v3", 200, None);
        assert_eq!(Binary::new("v1").valid_blocks(&chain), (0, Some(100)));
        assert_eq!(Binary::new("v2").knowing("v2").valid_blocks(&chain), (100, Some(200)));
        assert_eq!(Binary::new("v3").knowing("v2").knowing("v3").valid_blocks(&chain), (200, None));
    }

    #[test]
    fn unknown_and_unpullable_images_do_not_pull() {
        let registry =
            ImageRegistry::default().with("sei:a", Binary::new("a")).with("sei:b", Binary::new("b").unpullable());
        assert!(registry.pull("sei:a").is_some());
        assert!(registry.pull("sei:b").is_none());
        assert!(registry.pull("sei:c").is_none());
    }
}
