//! Transforms: what is done to records between sources and sinks.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::Duration;

/// A window over event time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub struct WindowSpec {
    /// Tumbling windows of this size, aligned to the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tumble: Option<Duration>,
    /// Sliding (hopping) windows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hop: Option<HopSpec>,
    /// Session windows per key, closed after this gap without records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<Duration>,
    /// Keep a window this long after it fires (tumble and hop): a record that arrives late
    /// but within it updates the window, which fires again with the updated result (one more
    /// row per such record, as Flink's `allowedLateness`). Default 0: a window fires once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_lateness: Option<Duration>,
    /// Name of a stream of the records too late for every window they belong to (with the
    /// window's input columns); later steps and sinks use it as their `input`. Without it,
    /// late records are dropped — and always counted in the `late_records` metric.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub late_output: Option<String>,
}

/// Sliding windows: `size` long, starting every `slide`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]

pub struct HopSpec {
    /// Window length.
    pub size: Duration,
    /// Distance between window starts.
    pub slide: Duration,
}

/// Keep the first row per key by event time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]

pub struct DeduplicateSpec {
    /// Key columns.
    pub key: Vec<String>,
    /// How long a key is remembered after its first row, in event time (the watermark must
    /// pass the first row's time plus this); a later row of the key is then a first row
    /// again. Unset: forever (state grows with the number of keys).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<Duration>,
}

/// Keep the best rows of each window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub struct TopNSpec {
    /// How many rows per window. (Not called `n`: YAML 1.1 readers such as kubectl's read a
    /// bare `n` as `false`.)
    pub limit: u32,
    /// SQL ordering, e.g. `cnt DESC, k ASC`.
    pub order_by: String,
    /// Keep every row tied with the n-th (RANK) instead of exactly n (ROW_NUMBER).
    #[serde(default)]
    pub with_ties: bool,
    /// Add a column with this name holding the row's number (1 = best).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number_as: Option<String>,
}

/// Join two keyed streams on event-time intervals: `right.ts BETWEEN left.ts + lower AND
/// left.ts + upper`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub struct IntervalJoinSpec {
    /// The other input.
    pub right: String,
    /// Equality conditions, `left_column = right_column`. (Not called `on`: YAML 1.1
    /// readers such as kubectl's read a bare `on` as `true`.)
    pub keys: Vec<String>,
    /// Lower bound of `right.ts - left.ts` (may be negative, e.g. `-5m`... written as text).
    pub lower: String,
    /// Upper bound of `right.ts - left.ts`.
    pub upper: String,
}

/// A transform. Which fields are set decides what it does:
/// - `where` and/or `select` alone: filter and projection (stateless);
/// - `window` (with `key_by` and aggregate `select`): windowed aggregation;
/// - `deduplicate`: the first row per key by event time;
/// - `top_n`: the best rows of each window of its input;
/// - `interval_join`: an event-time interval join of `input` with `interval_join.right`;
/// - `union`: all rows of several inputs;
/// - `throttle`: rows passed on at a bounded rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub struct TransformSpec {
    /// Name other steps use as `input`.
    pub name: String,
    /// The input (a source or transform name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
    /// A SQL condition; rows where it is not true are dropped.
    #[serde(default, rename = "where", skip_serializing_if = "Option::is_none")]
    pub where_: Option<String>,
    /// SQL select items (`a + b AS total`); with a window, aggregates such as `COUNT(*) AS n`
    /// and `window_start`, `window_end`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub select: Vec<String>,
    /// Key columns for windows.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key_by: Vec<String>,
    /// Event-time window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<WindowSpec>,
    /// Deduplication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deduplicate: Option<DeduplicateSpec>,
    /// Top-N per window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_n: Option<TopNSpec>,
    /// Interval join.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_join: Option<IntervalJoinSpec>,
    /// Union of these inputs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub union: Vec<String>,
    /// Pass rows on at most this many per second per subtask (a predictable workload for
    /// autoscaler tests). Runs as its own task, so a slow throttle backpressures its input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttle: Option<u64>,
    /// Parallelism of this step (default: the job's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallelism: Option<u32>,
}
