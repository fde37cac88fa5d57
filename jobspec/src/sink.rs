//! Sinks: where results go.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::source::FileFormat;

/// A sink.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub struct SinkSpec {
    /// Name.
    pub name: String,
    /// Input.
    pub input: String,
    /// Write a file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<FileSink>,
    /// Write a Kafka topic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kafka: Option<crate::KafkaSink>,
    /// Print rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stdout: Option<serde_json::Value>,
    /// Count rows and drop them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blackhole: Option<serde_json::Value>,
}

/// A file sink.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]

pub struct FileSink {
    /// Local directory. Rows go into part files (`part-<run>-<subtask>-<n>.csv`, each CSV
    /// part with its header line), made visible only when the checkpoint that covers them
    /// completes — or, without checkpoints, when the job finishes.
    pub path: String,
    /// Format (CSV gets a header line).
    pub format: FileFormat,
}
