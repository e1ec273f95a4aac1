//! How a SeiNodeDeployment rolls a new template out: `updateStrategy` as stored, and the strategy it resolves to.
//!
//! The wire type is lenient on purpose. `updateStrategy` became required after objects had already been stored
//! without it (or with `type: ""`), and an object that slipped past validation may carry an unknown type. The
//! Rust type reads all of them, so the controller can treat the first as InPlace (with a warning) and report the
//! second as a clear error, instead of failing to deserialize and never reconciling the object at all. The CRD
//! schema still admits only the three known types.

use std::borrow::Cow;
use std::fmt;

use kube::KubeSchema;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// `spec.updateStrategy`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[x_kube(validation = Rule::new("self.type != 'HardFork' || (has(self.hardFork) && has(self.hardFork.haltHeight) && self.hardFork.haltHeight > 0)")
    .message("updateStrategy.hardFork.haltHeight must be set (>= 1) when updateStrategy.type is HardFork"))]
#[serde(rename_all = "camelCase")]
#[schemars(transform = require_type)]
pub struct UpdateStrategy {
    /// InPlace, BlueGreen or HardFork.
    #[serde(rename = "type", default)]
    pub type_: UpdateStrategyType,
    /// HardFork parameters; required when `type` is HardFork.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hard_fork: Option<HardForkStrategy>,
    /// InPlace parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_place: Option<InPlaceStrategy>,
}

fn require_type(schema: &mut Schema) {
    super::require_fields(schema, &["type"]);
}

/// `spec.updateStrategy.hardFork`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HardForkStrategy {
    /// The chain's upgrade height H: entrants sync with the incumbent binary to H-1, and the new binary takes
    /// over at H.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(required, range(min = 1))]
    pub halt_height: Option<i64>,
}

/// `spec.updateStrategy.inPlace`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InPlaceStrategy {
    /// The chain's upgrade height H. When set, a new image is staged, not applied: each node keeps the binary it
    /// runs until it has committed block H-1 (or stopped at H with the old binary's upgrade panic), then that node
    /// gets the new image. Remove it to apply the image to every node at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 2))]
    pub upgrade_height: Option<i64>,
}

/// `spec.updateStrategy.type` exactly as stored.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum UpdateStrategyType {
    /// Field missing or empty: an object stored before the field was required.
    #[default]
    Unspecified,
    InPlace,
    BlueGreen,
    HardFork,
    /// A value the CRD schema would reject, read from an object that slipped past validation.
    Unknown(String),
}

/// The rollout strategy a deployment uses, once resolved from its spec.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema)]
pub enum Strategy {
    /// Write the new image onto every existing node at once.
    InPlace,
    /// Create a new set of nodes, wait until they caught up, switch traffic, tear the old set down.
    BlueGreen,
    /// Like BlueGreen, but the new nodes bootstrap with the old binary to one block before the upgrade height.
    HardFork,
}

/// A stored `updateStrategy` that names no strategy the operator can run.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StrategyError {
    #[error("spec.updateStrategy.type {0:?} is not one of InPlace, BlueGreen, HardFork")]
    UnknownType(String),
    #[error("spec.updateStrategy.hardFork.haltHeight must be set (>= 1) when updateStrategy.type is HardFork")]
    MissingHaltHeight,
    #[error(
        "spec.updateStrategy.inPlace.upgradeHeight is set but updateStrategy.type is {0}: a height gate applies to \
         InPlace rollouts only (HardFork takes its height from hardFork.haltHeight)"
    )]
    GateWithoutInPlace(Strategy),
}

impl UpdateStrategyType {
    const IN_PLACE: &'static str = "InPlace";
    const BLUE_GREEN: &'static str = "BlueGreen";
    const HARD_FORK: &'static str = "HardFork";

    /// The value as stored (empty for `Unspecified`).
    pub fn as_str(&self) -> &str {
        match self {
            UpdateStrategyType::Unspecified => "",
            UpdateStrategyType::InPlace => Self::IN_PLACE,
            UpdateStrategyType::BlueGreen => Self::BLUE_GREEN,
            UpdateStrategyType::HardFork => Self::HARD_FORK,
            UpdateStrategyType::Unknown(other) => other,
        }
    }

    fn parse(value: &str) -> Self {
        match value {
            "" => UpdateStrategyType::Unspecified,
            Self::IN_PLACE => UpdateStrategyType::InPlace,
            Self::BLUE_GREEN => UpdateStrategyType::BlueGreen,
            Self::HARD_FORK => UpdateStrategyType::HardFork,
            other => UpdateStrategyType::Unknown(other.to_owned()),
        }
    }
}

impl UpdateStrategy {
    /// The strategy to run. `Unspecified` resolves to InPlace; callers that care (the deployment controller
    /// warns about it) check [`UpdateStrategy::is_unspecified`].
    pub fn resolve(&self) -> Result<Strategy, StrategyError> {
        match &self.type_ {
            UpdateStrategyType::Unspecified | UpdateStrategyType::InPlace => Ok(Strategy::InPlace),
            UpdateStrategyType::BlueGreen if self.upgrade_height().is_some() => {
                Err(StrategyError::GateWithoutInPlace(Strategy::BlueGreen))
            }
            UpdateStrategyType::HardFork if self.upgrade_height().is_some() => {
                Err(StrategyError::GateWithoutInPlace(Strategy::HardFork))
            }
            UpdateStrategyType::BlueGreen => Ok(Strategy::BlueGreen),
            UpdateStrategyType::HardFork => match self.halt_height() {
                Some(_) => Ok(Strategy::HardFork),
                None => Err(StrategyError::MissingHaltHeight),
            },
            UpdateStrategyType::Unknown(other) => Err(StrategyError::UnknownType(other.clone())),
        }
    }

    /// Whether the stored type is missing or empty (treated as InPlace).
    pub fn is_unspecified(&self) -> bool {
        self.type_ == UpdateStrategyType::Unspecified
    }

    /// The InPlace height gate, when set to a usable value (>= 2: the gate waits for block H-1 >= 1).
    pub fn upgrade_height(&self) -> Option<i64> {
        self.in_place.as_ref()?.upgrade_height.filter(|height| *height >= 2)
    }

    /// The HardFork halt height, when set to a usable value (>= 1).
    pub fn halt_height(&self) -> Option<i64> {
        self.hard_fork.as_ref()?.halt_height.filter(|height| *height >= 1)
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Strategy::InPlace => UpdateStrategyType::IN_PLACE,
            Strategy::BlueGreen => UpdateStrategyType::BLUE_GREEN,
            Strategy::HardFork => UpdateStrategyType::HARD_FORK,
        };
        f.write_str(name)
    }
}

impl Serialize for UpdateStrategyType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for UpdateStrategyType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // `null` reads like a missing field.
        let value = Option::<String>::deserialize(deserializer)?;
        Ok(value.map_or(UpdateStrategyType::Unspecified, |v| Self::parse(&v)))
    }
}

impl JsonSchema for UpdateStrategyType {
    fn schema_name() -> Cow<'static, str> {
        "UpdateStrategyType".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "InPlace, BlueGreen or HardFork.",
            "type": "string",
            "enum": [
                UpdateStrategyType::IN_PLACE,
                UpdateStrategyType::BLUE_GREEN,
                UpdateStrategyType::HARD_FORK,
            ],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(value: serde_json::Value) -> UpdateStrategy {
        serde_json::from_value(value).expect("any stored updateStrategy deserializes")
    }

    #[test]
    fn a_missing_or_empty_type_reads_as_unspecified_and_resolves_to_in_place() {
        for stored in [json!({}), json!({"type": ""}), json!({"type": null})] {
            let strategy = read(stored.clone());
            assert!(strategy.is_unspecified(), "{stored}");
            assert_eq!(strategy.resolve(), Ok(Strategy::InPlace), "{stored}");
        }
    }

    #[test]
    fn an_unknown_type_is_read_and_reported_by_name() {
        let strategy = read(json!({"type": "Rolling"}));
        assert_eq!(strategy.type_, UpdateStrategyType::Unknown("Rolling".into()));
        let error = strategy.resolve().expect_err("Rolling is no strategy");
        assert!(error.to_string().contains("\"Rolling\""), "{error}");
        assert!(error.to_string().contains("spec.updateStrategy.type"), "{error}");
    }

    #[test]
    fn hard_fork_without_a_usable_halt_height_is_an_error() {
        for stored in [
            json!({"type": "HardFork"}),
            json!({"type": "HardFork", "hardFork": {}}),
            json!({"type": "HardFork", "hardFork": {"haltHeight": 0}}),
        ] {
            assert_eq!(read(stored.clone()).resolve(), Err(StrategyError::MissingHaltHeight), "{stored}");
        }
        let strategy = read(json!({"type": "HardFork", "hardFork": {"haltHeight": 42}}));
        assert_eq!(strategy.resolve(), Ok(Strategy::HardFork));
        assert_eq!(strategy.halt_height(), Some(42));
    }

    #[test]
    fn a_height_gate_belongs_to_in_place_only() {
        let gated = read(json!({"type": "InPlace", "inPlace": {"upgradeHeight": 1000}}));
        assert_eq!(gated.resolve(), Ok(Strategy::InPlace));
        assert_eq!(gated.upgrade_height(), Some(1000));
        let error = read(json!({"type": "BlueGreen", "inPlace": {"upgradeHeight": 1000}})).resolve();
        let error = error.expect_err("a gate on BlueGreen is refused").to_string();
        assert!(error.contains("spec.updateStrategy.inPlace.upgradeHeight"), "{error}");
        assert_eq!(read(json!({"type": "InPlace", "inPlace": {}})).upgrade_height(), None);
    }

    #[test]
    fn the_stored_value_is_written_back_unchanged() {
        for stored in ["", "InPlace", "BlueGreen", "HardFork", "Rolling"] {
            let strategy = read(json!({"type": stored}));
            assert_eq!(serde_json::to_value(&strategy).expect("serializes")["type"], json!(stored));
        }
    }
}
