//! Plain request/response types of the Strom engine's HTTP control endpoint, shared by the
//! engine (which serves them) and the operator and control plane (which call it).
//!
//! Types only: no logic, no configuration, no errors.

use serde::{Deserialize, Serialize};

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
    /// For sources: records still to read, where known (a bounded generator).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_records: Option<u64>,
}
