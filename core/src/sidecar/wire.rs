//! The sidecar's HTTP API (v0) and seid's RPC status as serde types: defined once, spoken by the production
//! client and served by the simulator's fake sidecar.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Task types the operator submits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SidecarTaskType {
    SnapshotRestore,
    ConfigApply,
    DiscoverPeers,
    ConfigValidate,
    MarkReady,
    AwaitCondition,
    /// SIGTERM seid and wait until its RPC serves again: the kubelet restarts the container and seid reads the
    /// config on the volume (sei-protocol/seictl `sidecar/tasks/restart_seid.go`). It finds seid through `/proc`,
    /// so the pod must share its process namespace.
    RestartSeid,
}

impl SidecarTaskType {
    pub const ALL: [SidecarTaskType; 7] = [
        SidecarTaskType::SnapshotRestore,
        SidecarTaskType::ConfigApply,
        SidecarTaskType::DiscoverPeers,
        SidecarTaskType::ConfigValidate,
        SidecarTaskType::MarkReady,
        SidecarTaskType::AwaitCondition,
        SidecarTaskType::RestartSeid,
    ];

    /// The name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            SidecarTaskType::SnapshotRestore => "snapshot-restore",
            SidecarTaskType::ConfigApply => "config-apply",
            SidecarTaskType::DiscoverPeers => "discover-peers",
            SidecarTaskType::ConfigValidate => "config-validate",
            SidecarTaskType::MarkReady => "mark-ready",
            SidecarTaskType::AwaitCondition => "await-condition",
            SidecarTaskType::RestartSeid => "restart-seid",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

/// `POST /v0/tasks` body.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct TaskRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Uuid>,
    #[serde(rename = "type")]
    pub type_: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<serde_json::Value>,
}

/// `POST /v0/tasks` answer (201, new task or known id alike).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct TaskAccepted {
    pub id: Uuid,
}

/// State of a sidecar task.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum TaskState {
    Running,
    Completed,
    Failed,
}

/// `GET /v0/tasks/{id}` answer.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TaskResult {
    pub id: Uuid,
    #[serde(rename = "type")]
    pub type_: String,
    pub status: TaskState,
    /// Which execution of the id this is: 1 when first submitted, one more each time a `failed` task is
    /// submitted again (seictl `Engine.Submit`; a re-run after a sidecar restart keeps its number).
    #[serde(default)]
    pub run: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<serde_json::Value>,
    /// A handler's structured output, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// RFC 3339.
    pub submitted_at: String,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<String>,
}

/// Whether the sidecar has been marked ready since it started.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReadinessStatus {
    Initializing,
    Ready,
}

/// `GET /v0/status` answer.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct StatusResponse {
    pub status: ReadinessStatus,
}

/// Parameters of an `await-condition` task.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AwaitConditionParams {
    /// Only `"height"` is defined.
    pub condition: String,
    pub target_height: u64,
    /// `"SIGTERM_SEID"` to stop seid once the height is reached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
}

/// seid's `GET /status` answer (CometBFT RPC), reduced to what the operator reads.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct RpcStatusResponse {
    pub result: RpcStatusResult,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct RpcStatusResult {
    pub sync_info: SyncInfo,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct SyncInfo {
    /// A decimal string, as CometBFT encodes 64-bit integers.
    pub latest_block_height: String,
    pub catching_up: bool,
}

/// What seid says of its chain, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChainStatus {
    pub latest_height: u64,
    pub catching_up: bool,
}

impl RpcStatusResponse {
    pub fn new(status: ChainStatus) -> Self {
        RpcStatusResponse {
            result: RpcStatusResult {
                sync_info: SyncInfo {
                    latest_block_height: status.latest_height.to_string(),
                    catching_up: status.catching_up,
                },
            },
        }
    }

    /// Decodes the height; `None` when it is not a decimal number.
    pub fn chain_status(&self) -> Option<ChainStatus> {
        let sync = &self.result.sync_info;
        Some(ChainStatus { latest_height: sync.latest_block_height.parse().ok()?, catching_up: sync.catching_up })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn task_types_round_trip_their_wire_names() {
        for task_type in SidecarTaskType::ALL {
            assert_eq!(SidecarTaskType::parse(task_type.as_str()), Some(task_type));
        }
        assert_eq!(SidecarTaskType::parse("reboot"), None);
    }

    #[test]
    fn a_task_result_reads_the_documented_json() {
        let result: TaskResult = serde_json::from_value(json!({
            "id": "6a2f41a3-c54c-5b6e-a0f5-3f2d8a3b7b11",
            "type": "mark-ready",
            "status": "completed",
            "submittedAt": "2026-01-01T00:00:00Z",
            "completedAt": "2026-01-01T00:00:01Z"
        }))
        .expect("documented shape");
        assert_eq!(result.status, TaskState::Completed);
        assert_eq!(result.error, None);
    }

    #[test]
    fn rpc_status_heights_are_decimal_strings() {
        let body = RpcStatusResponse::new(ChainStatus { latest_height: 1_199_999, catching_up: true });
        let json = serde_json::to_value(&body).expect("serializes");
        assert_eq!(json["result"]["sync_info"]["latest_block_height"], json!("1199999"));
        assert_eq!(body.chain_status(), Some(ChainStatus { latest_height: 1_199_999, catching_up: true }));
        let garbage: RpcStatusResponse = serde_json::from_value(
            json!({"result": {"sync_info": {"latest_block_height": "x", "catching_up": false}}}),
        )
        .expect("shape");
        assert_eq!(garbage.chain_status(), None);
    }
}
