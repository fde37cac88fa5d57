//! The Strom engine's HTTP control endpoint, shared by the engine (which serves it) and the
//! operator, the control plane and `strom-engine savepoint` (which call it): the
//! request/response types, the routes ([`routes`]) and one blocking client
//! ([`EngineClient`]).

mod client;
pub mod routes;

use serde::{Deserialize, Serialize};

pub use client::{ClientError, EngineClient};

/// `GET /v1/job`: the job and every subtask's counters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobStatus {
    /// Where the job is.
    pub state: JobState,
    /// The default parallelism it was started with.
    pub parallelism: u32,
    /// Milliseconds since it started.
    pub uptime_ms: u64,
    /// How often it was restarted (from a checkpoint) in this process.
    pub restarts: u64,
    /// The failure, when `state` is `Failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The dataflow's vertices.
    pub vertices: Vec<VertexStatus>,
}

/// The state of a job in the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobState {
    /// Running.
    Running,
    /// A bounded job that finished.
    Finished,
    /// Failed.
    Failed,
    /// Stopped on request.
    Canceled,
}

/// One vertex (a source, an operator chain or a sink).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VertexStatus {
    /// Name (fused steps joined with `->`).
    pub name: String,
    /// Stable identity: `source:<name>`, `sink:<name>`, or the name of the step that heads
    /// the vertex. `--vertex-parallelism <id>=<n>` sets a scalable vertex's parallelism.
    #[serde(default)]
    pub id: String,
    /// The ids of the vertices it reads from.
    #[serde(default)]
    pub inputs: Vec<String>,
    /// Whether its parallelism can be set (`false`: the engine fixes it, e.g. a file sink
    /// or a CSV source is always one subtask, a blackhole sink follows its input).
    #[serde(default)]
    pub scalable: bool,
    /// For sources: how many partitions (splits) it reads, where that is fixed; a
    /// parallelism that divides it spreads them evenly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partitions: Option<u32>,
    /// Subtasks.
    pub parallelism: u32,
    /// Each subtask's counters.
    pub subtasks: Vec<SubtaskMetrics>,
}

/// Counters of one subtask. Time fractions are milliseconds per second over the last
/// second (busy + idle + backpressured ≈ 1000), as Flink defines them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubtaskMetrics {
    /// Index.
    pub subtask: u32,
    /// Processing.
    pub busy_ms_per_second: f64,
    /// Milliseconds spent processing since the subtask started (a counter: rates over any
    /// window come from two readings).
    #[serde(default)]
    pub busy_ms_total: u64,
    /// Waiting for input.
    pub idle_ms_per_second: f64,
    /// Blocked on a full output.
    pub backpressured_ms_per_second: f64,
    /// Rows received (for sources: read).
    pub records_in: u64,
    /// Rows sent.
    pub records_out: u64,
    /// Rows dropped as late.
    pub late_records: u64,
    /// The current watermark (epoch ms), once there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watermark: Option<i64>,
    /// Whether the subtask is idle as far as watermarks go (a source without records for its
    /// idle timeout, or a task all of whose inputs are idle): it does not hold back the
    /// watermark downstream.
    #[serde(default)]
    pub watermark_idle: bool,
    /// For sources: records still to read, where known: the rest of a bounded generator, or
    /// how far a rate-limited generator is behind its schedule (its lag, as a consumer's
    /// lag behind a topic).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_records: Option<u64>,
    /// For sources: records left out because they could not be decoded (a Kafka source
    /// with `bad_records: skip`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub skipped_records: u64,
    /// For sources: records that could not be decoded, written to the dead-letter topic
    /// (a Kafka source with `bad_records: dead-letter`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub dead_letter_records: u64,
    /// What the subtask is waiting for, said for people: a source retrying an unreachable
    /// broker or a topic that does not exist yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<String>,
    /// For a Kafka source: each partition the subtask reads and how far behind its end it
    /// is (`pending_records` is their sum, once every one is known).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub partitions: Vec<PartitionLag>,
}

/// One partition a source subtask reads, and its lag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PartitionLag {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// The next offset the subtask reads.
    pub offset: i64,
    /// Records between it and the partition's end (the stop offset in bounded mode), once
    /// the end is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_records: Option<u64>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// `GET /v1/checkpoints`: the job's checkpoints and savepoints.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckpointsStatus {
    /// Whether periodic checkpoints are on.
    pub enabled: bool,
    /// The newest completed one (0: none yet).
    pub latest_completed: u64,
    /// Checkpoints that failed (could not be written).
    pub failed: u64,
    /// Why the last checkpoint failed, while the latest attempt is a failure (cleared by
    /// the next success). Never carries credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<String>,
    /// This run's attempt number on the checkpoint directory (its fencing token).
    #[serde(default)]
    pub attempt: u64,
    /// Completed checkpoints and savepoints, oldest first (the last 100).
    pub history: Vec<CheckpointInfo>,
}

/// One completed checkpoint or savepoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckpointInfo {
    /// Its number.
    pub id: u64,
    /// A checkpoint or a savepoint.
    pub kind: SnapshotKind,
    /// Where it is (a URL).
    pub location: String,
    /// From trigger to complete, milliseconds.
    pub duration_ms: u64,
    /// Bytes of state.
    pub size_bytes: u64,
    /// When it completed (epoch ms).
    pub completed_ms: i64,
}

/// `POST /v1/savepoints`: take a savepoint (and, with `stop`, stop the job after it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SavepointRequest {
    /// Directory to write it to (`file:///…`).
    pub target: String,
    /// Stop the job once the savepoint is written.
    #[serde(default)]
    pub stop: bool,
}

/// `POST /v1/savepoints` answers with the id to poll; `GET /v1/savepoints/{id}` with this.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SavepointStatus {
    /// The request's id.
    pub id: String,
    /// Where it is.
    pub status: SavepointState,
    /// Where the savepoint is, once completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What a snapshot is (`checkpoint` or `savepoint` on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SnapshotKind {
    /// Taken periodically; the engine owns and retains it.
    Checkpoint,
    /// Taken on request; the user (or the operator) owns it.
    Savepoint,
}

/// Where a requested savepoint is (`in-progress`, `completed`, `failed` on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SavepointState {
    /// Being taken.
    InProgress,
    /// Written; `location` says where.
    Completed,
    /// Not written; `error` says why.
    Failed,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wire_keeps_its_words() {
        let s = SavepointStatus {
            id: "savepoint-1".into(),
            status: SavepointState::InProgress,
            location: None,
            error: None,
        };
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(json, r#"{"id":"savepoint-1","status":"in-progress"}"#);
        let done: SavepointStatus =
            serde_json::from_str(r#"{"id":"s","status":"completed","location":"file:///x"}"#)
                .unwrap();
        assert_eq!(done.status, SavepointState::Completed);
        assert_eq!(
            serde_json::to_value(SnapshotKind::Checkpoint).unwrap(),
            "checkpoint"
        );
        assert!(serde_json::from_str::<SavepointState>(r#""done""#).is_err());
    }
}
