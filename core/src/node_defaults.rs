//! The operator-wide defaults of the pod settings a SeiNode leaves unset, per mode (full node, archive,
//! validator, replayer): built in, and overridable field by field from a YAML file read at start
//! (`sei-operator run --node-defaults FILE`). The pods, Jobs and claims the operator builds carry the merged
//! result, so `kubectl get -o yaml` of them shows what applies.
//!
//! The built-in seid resources are the upstream operator's per-mode profiles (sei-protocol/sei-k8s-controller
//! `internal/noderesource/noderesource.go`, `defaultNodeResourceProfiles`: a CPU request and no CPU limit, which
//! would only throttle seid's bursts; memory request = limit). Its storage sizes come from its platform
//! configuration (`internal/platform/platformtest/config.go`: 2000Gi, archive 40Ti) and its security contexts
//! from `noderesource.go` (non-root UID/GID 65532, fsGroup 65532 with `OnRootMismatch`, no privilege
//! escalation, every capability dropped, the RuntimeDefault seccomp profile; a read-only root filesystem for the
//! sidecar only — seid writes outside its volume).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{
    Capabilities, PodSecurityContext, ResourceRequirements, SeccompProfile, SecurityContext,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use serde::{Deserialize, Serialize};

use crate::api::{NodeMode, PodSettings, SeiNodeSpec, StorageSpec};

/// The UID and GID the stock images' non-root user has (distroless `nonroot`), as upstream runs them.
pub const NON_ROOT_ID: i64 = 65532;

/// Pod settings per mode, for what a spec leaves unset.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodeDefaults {
    #[serde(default)]
    pub full_node: PodSettings,
    #[serde(default)]
    pub archive: PodSettings,
    #[serde(default)]
    pub validator: PodSettings,
    #[serde(default)]
    pub replayer: PodSettings,
}

/// Why a defaults file was refused; each names the file and, when it is the content, the field.
#[derive(Debug, thiserror::Error)]
pub enum NodeDefaultsError {
    #[error("cannot read the node defaults file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("node defaults file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("node defaults file {path}: {field}: {message}")]
    Invalid { path: PathBuf, field: String, message: String },
}

impl Default for NodeDefaults {
    fn default() -> Self {
        NodeDefaults::built_in()
    }
}

impl NodeDefaults {
    /// The built-in defaults (see the module's documentation for their sources).
    pub fn built_in() -> NodeDefaults {
        let mode = |cpu: &str, memory: &str, size: &str| PodSettings {
            resources: Some(ResourceRequirements {
                requests: Some(BTreeMap::from([
                    ("cpu".to_owned(), Quantity(cpu.to_owned())),
                    ("memory".to_owned(), Quantity(memory.to_owned())),
                ])),
                limits: Some(BTreeMap::from([("memory".to_owned(), Quantity(memory.to_owned()))])),
                ..Default::default()
            }),
            storage: Some(StorageSpec { storage_class_name: None, size: Some(size.to_owned()) }),
            scheduling: None,
            service_account_name: None,
            image_pull_secrets: Vec::new(),
            pod_security_context: Some(PodSecurityContext {
                run_as_non_root: Some(true),
                run_as_user: Some(NON_ROOT_ID),
                run_as_group: Some(NON_ROOT_ID),
                fs_group: Some(NON_ROOT_ID),
                fs_group_change_policy: Some("OnRootMismatch".to_owned()),
                seccomp_profile: Some(SeccompProfile { type_: "RuntimeDefault".to_owned(), ..Default::default() }),
                ..Default::default()
            }),
            container_security_context: Some(SecurityContext {
                allow_privilege_escalation: Some(false),
                capabilities: Some(Capabilities { drop: Some(vec!["ALL".to_owned()]), ..Default::default() }),
                ..Default::default()
            }),
        };
        NodeDefaults {
            full_node: mode("32", "256Gi", "2000Gi"),
            archive: mode("64", "512Gi", "40Ti"),
            validator: mode("16", "128Gi", "2000Gi"),
            replayer: mode("32", "256Gi", "2000Gi"),
        }
    }

    /// The built-in defaults with a YAML document's fields over them, mode by mode and field by field.
    pub fn from_yaml(path: &Path, text: &str) -> Result<NodeDefaults, NodeDefaultsError> {
        let given: Option<NodeDefaults> = serde_saphyr::from_str(text)
            .map_err(|e| NodeDefaultsError::Parse { path: path.to_owned(), message: e.to_string() })?;
        let built_in = NodeDefaults::built_in();
        let Some(given) = given else { return Ok(built_in) };
        let defaults = NodeDefaults {
            full_node: given.full_node.or(&built_in.full_node),
            archive: given.archive.or(&built_in.archive),
            validator: given.validator.or(&built_in.validator),
            replayer: given.replayer.or(&built_in.replayer),
        };
        for (mode, settings) in defaults.modes() {
            if let Some(size) = settings.storage.as_ref().and_then(|s| s.size.as_deref())
                && !is_positive_quantity(size)
            {
                return Err(NodeDefaultsError::Invalid {
                    path: path.to_owned(),
                    field: format!("{mode}.storage.size"),
                    message: format!("{size:?} is not a positive Kubernetes quantity (such as 2000Gi)"),
                });
            }
        }
        Ok(defaults)
    }

    /// Reads the defaults file at `path` (see [`NodeDefaults::from_yaml`]).
    pub fn load(path: &Path) -> Result<NodeDefaults, NodeDefaultsError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| NodeDefaultsError::Read { path: path.to_owned(), source })?;
        NodeDefaults::from_yaml(path, &text)
    }

    fn modes(&self) -> [(&'static str, &PodSettings); 4] {
        [
            ("fullNode", &self.full_node),
            ("archive", &self.archive),
            ("validator", &self.validator),
            ("replayer", &self.replayer),
        ]
    }

    /// The defaults of the spec's mode (a full node's for a spec without exactly one mode, which the CRD
    /// refuses).
    pub fn of_mode(&self, spec: &SeiNodeSpec) -> &PodSettings {
        match spec.mode() {
            Some(NodeMode::Archive(_)) => &self.archive,
            Some(NodeMode::Validator(_)) => &self.validator,
            Some(NodeMode::Replayer(_)) => &self.replayer,
            Some(NodeMode::FullNode(_)) | None => &self.full_node,
        }
    }

    /// The settings a node's pods get: the spec's, with what it leaves unset from its mode's defaults.
    pub fn for_node(&self, spec: &SeiNodeSpec) -> PodSettings {
        spec.pod_settings().or(self.of_mode(spec))
    }
}

/// Whether `text` is a Kubernetes quantity above zero (see [`quantity_value`]).
pub fn is_positive_quantity(text: &str) -> bool {
    quantity_value(text).is_some_and(|value| value > 0.0)
}

/// The value of a non-negative Kubernetes quantity: a decimal number, then nothing, a binary suffix (`Ki` …
/// `Ei`), a decimal one (`m`, `k`, `M` … `E`) or an exponent (`e3`) — the grammar of kubernetes
/// `staging/src/k8s.io/apimachinery/pkg/api/resource/quantity.go` (`ParseQuantity`). Precise enough to order
/// volume sizes.
pub fn quantity_value(text: &str) -> Option<f64> {
    let text = text.strip_prefix('+').unwrap_or(text);
    let number_end = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, suffix) = text.split_at(number_end);
    if number.is_empty() || number == "." || number.matches('.').count() > 1 {
        return None;
    }
    let value: f64 = number.parse().ok()?;
    let multiplier = match suffix {
        "" => 1.0,
        "Ki" => 1024f64,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        exponent => {
            let digits = exponent.strip_prefix(['e', 'E'])?;
            let unsigned = digits.strip_prefix(['+', '-']).unwrap_or(digits);
            if unsigned.is_empty() || !unsigned.chars().all(|c| c.is_ascii_digit()) {
                return None;
            }
            10f64.powi(digits.parse().ok()?)
        }
    };
    Some(value * multiplier)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(mode: &str) -> SeiNodeSpec {
        serde_json::from_value(serde_json::json!({"chainId": "pacific-1", "image": "sei:v1", mode: {}}))
            .unwrap_or_else(|e| panic!("spec: {e}"))
    }

    #[test]
    fn an_archive_node_gets_more_storage_than_a_full_node_and_each_mode_its_own_resources() {
        let defaults = NodeDefaults::built_in();
        let size = |mode: &str| defaults.for_node(&spec(mode)).storage.and_then(|s| s.size);
        assert_eq!(size("fullNode").as_deref(), Some("2000Gi"));
        assert_eq!(size("archive").as_deref(), Some("40Ti"));
        let cpu = |mode: &str| {
            defaults.for_node(&spec(mode)).resources.and_then(|r| r.requests).and_then(|r| r.get("cpu").cloned())
        };
        assert_eq!(cpu("validator"), Some(Quantity("16".into())));
        assert_eq!(cpu("archive"), Some(Quantity("64".into())));
    }

    #[test]
    fn a_file_overrides_field_by_field_and_keeps_the_rest_built_in() {
        let text = "archive:\n  storage:\n    storageClassName: gp3-archive\n  serviceAccountName: sei-archive\n";
        let defaults = NodeDefaults::from_yaml(Path::new("defaults.yaml"), text).unwrap_or_else(|e| panic!("{e}"));
        let archive = defaults.for_node(&spec("archive"));
        let storage = archive.storage.unwrap_or_default();
        assert_eq!(storage.storage_class_name.as_deref(), Some("gp3-archive"));
        assert_eq!(storage.size.as_deref(), Some("40Ti"), "the built-in size stays");
        assert_eq!(archive.service_account_name.as_deref(), Some("sei-archive"));
        assert_eq!(defaults.full_node, NodeDefaults::built_in().full_node, "other modes untouched");
    }

    #[test]
    fn a_file_with_an_unknown_field_or_a_bad_size_is_refused_naming_it() {
        let unknown = NodeDefaults::from_yaml(Path::new("d.yaml"), "fullNode:\n  storageSize: 1Ti\n");
        assert!(unknown.as_ref().is_err_and(|e| e.to_string().contains("storageSize")), "{unknown:?}");
        let bad = NodeDefaults::from_yaml(Path::new("d.yaml"), "validator:\n  storage:\n    size: lots\n");
        let message = bad.map(|_| ()).unwrap_err().to_string();
        assert!(message.contains("validator.storage.size") && message.contains("lots"), "{message}");
    }

    #[test]
    fn a_spec_value_wins_over_the_defaults() {
        let mut node = spec("fullNode");
        node.service_account_name = Some("rpc-irsa".into());
        assert_eq!(NodeDefaults::built_in().for_node(&node).service_account_name.as_deref(), Some("rpc-irsa"));
    }

    #[test]
    fn quantities_order_by_value_across_suffixes() {
        let value = |text: &str| quantity_value(text).unwrap_or(f64::NAN);
        assert_eq!(value("2Ti"), value("2048Gi"));
        assert!(value("3000Gi") > value("2000Gi") && value("2Ti") > value("2000Gi") && value("2T") < value("2000Gi"));
        assert_eq!(value("1e3"), 1000.0);
    }

    #[test]
    fn quantities_parse_as_kubernetes_parses_them() {
        for good in ["2000Gi", "40Ti", "1", "1.5Ti", "500G", "1e3", "+10Mi"] {
            assert!(is_positive_quantity(good), "{good}");
        }
        for bad in ["", "0", "0Gi", "Gi", "lots", "1GB", "1.2.3Gi", "-5Gi", "1e"] {
            assert!(!is_positive_quantity(bad), "{bad}");
        }
    }
}
