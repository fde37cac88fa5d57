//! The job spec: a declarative pipeline of named sources, transforms and sinks wired by
//! name, read from YAML or JSON. Expressions are SQL, parsed with `sqlparser`.
//!
//! [`JobSpec::parse`] reads and checks a spec before anything runs and lists every problem
//! by path (`transforms[2].window.tumble: "1x" is not a duration`), unknown fields included.

mod check;
mod duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use check::{Problem, Problems};
pub use duration::Duration;

/// A whole job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]

pub struct JobSpec {
    /// Where records come from.
    pub sources: Vec<SourceSpec>,
    /// What is done to them, in any order (inputs are named).
    #[serde(default)]
    pub transforms: Vec<TransformSpec>,
    /// Where results go.
    pub sinks: Vec<SinkSpec>,
}

/// A column type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum FieldType {
    /// 64-bit integer.
    Bigint,
    /// 32-bit integer (held as 64-bit).
    Int,
    /// 64-bit float.
    Double,
    /// UTF-8 text.
    String,
    /// true/false.
    Boolean,
}

/// One column of a source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]

pub struct FieldSpec {
    /// Column name.
    pub name: String,
    /// Column type.
    #[serde(rename = "type")]
    pub type_: FieldType,
}

/// Event time of a source: which column holds it (epoch milliseconds) and how out of order
/// records may arrive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub struct WatermarkSpec {
    /// BIGINT column with the event time in epoch milliseconds.
    pub field: String,
    /// The watermark trails the highest event time seen by this much.
    pub max_out_of_orderness: Duration,
    /// A source subtask that sends nothing for this long stops holding the watermark back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<Duration>,
}

/// A source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub struct SourceSpec {
    /// Name other steps use as `input`.
    pub name: String,
    /// Read a file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<FileSource>,
    /// Generate records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datagen: Option<DatagenSource>,
    /// The columns (for files and for datagen).
    #[serde(default)]
    pub schema: Vec<FieldSpec>,
    /// Event time and watermarks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watermark: Option<WatermarkSpec>,
}

/// File formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FileFormat {
    /// Comma-separated, no header.
    Csv,
    /// One JSON object per line.
    Jsonl,
    /// Apache Parquet (columns matched by name; a source's row groups are split between its
    /// subtasks; written Snappy-compressed).
    Parquet,
}

/// A bounded file source, read in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub struct FileSource {
    /// Local path.
    pub path: String,
    /// Format.
    pub format: FileFormat,
    /// Rows per batch read (default 8192). Smaller batches mean lower latency and more
    /// places for checkpoint barriers, at some cost in throughput.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_rows: Option<u32>,
}

/// A generated source: records numbered `id` = 0, 1, 2, … whose columns are SQL expressions
/// over `id` or random values from a distribution — or the rows of a Nexmark table. Every
/// value depends only on `seed`, the column and `id`, so runs are repeatable at any
/// parallelism.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub struct DatagenSource {
    /// Seed of the random values (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Generate a Nexmark table instead of `columns`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nexmark: Option<NexmarkSpec>,
    /// How many records (unset: unbounded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// Records per second, all subtasks together (unset: as fast as possible).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<u64>,
    /// Rates that change over time, e.g. 1000/s for 60 s then 5000/s: each phase in turn;
    /// the last phase's rate holds after it ends. Set `rate` or `rate_schedule`, not both.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rate_schedule: Vec<RatePhase>,
    /// The columns, each an `expr` over `id` (BIGINT), e.g. `MOD(id * 7919, 10000)`, or
    /// `random` values.
    #[serde(default)]
    pub columns: Vec<GeneratedColumn>,
}

/// The Nexmark benchmark's tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum NexmarkTable {
    /// `id, name, email_address, credit_card, city, state, date_time, extra`.
    Person,
    /// `id, item_name, description, initial_bid, reserve, date_time, expires, seller,
    /// category, extra`.
    Auction,
    /// `auction, bidder, price, channel, url, date_time, extra`.
    Bid,
}

/// One table of the Nexmark event stream: of every 50 events 1 is a person, 3 are
/// auctions and 46 are bids, with the benchmark's hot auctions, bidders and sellers and
/// log-uniform prices. `date_time` is event time in epoch ms; `count` and `rate` count this
/// table's rows. Sources of the three tables with the same seed and `events_per_second`
/// refer to each other's ids consistently.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub struct NexmarkSpec {
    /// Which table.
    pub table: NexmarkTable,
    /// Events of all three kinds per second of event time (default 10 000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events_per_second: Option<u64>,
}

/// A phase of a rate schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RatePhase {
    /// Records per second during the phase, all subtasks together; 0 pauses the source
    /// (with a watermark `idle_timeout`, a paused source stops holding back the watermark).
    pub rate: u64,
    /// How long the phase lasts (wall-clock time).
    #[serde(rename = "for")]
    pub for_: Duration,
}

/// One generated column: set `expr` or `random`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct GeneratedColumn {
    /// Column name.
    pub name: String,
    /// SQL expression over `id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expr: Option<String>,
    /// Random values from a distribution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub random: Option<RandomSpec>,
}

/// A distribution: set exactly one field. Its type decides the column's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub struct RandomSpec {
    /// DOUBLE, uniform in `[min, max)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uniform: Option<RangeSpec>,
    /// BIGINT, uniform in `[min, max]` (whole numbers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uniform_int: Option<RangeSpec>,
    /// DOUBLE, normal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub normal: Option<NormalSpec>,
    /// BIGINT in `1..=max`, Zipf-distributed: value k has weight `1/k^exponent` (skewed
    /// keys).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zipf: Option<ZipfSpec>,
    /// STRING, one of these, equally likely.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub one_of: Vec<String>,
    /// STRING of lowercase letters with a length uniform in `[min, max]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<RangeSpec>,
}

/// A range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RangeSpec {
    /// Lowest value.
    pub min: f64,
    /// Highest value.
    pub max: f64,
}

/// A normal distribution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct NormalSpec {
    /// Mean.
    pub mean: f64,
    /// Standard deviation (≥ 0).
    pub stddev: f64,
}

/// A Zipf distribution over `1..=max`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ZipfSpec {
    /// Highest value (the number of distinct values). (Not called `n`: YAML 1.1 readers
    /// such as kubectl's read a bare `n` as `false`.)
    pub max: u64,
    /// Skew (> 0; about 1 for typical "hot key" data).
    pub exponent: f64,
}

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

impl JobSpec {
    /// Reads a YAML or JSON spec and checks it; every problem is listed with its path.
    pub fn parse(text: &str) -> Result<JobSpec, Problems> {
        check::parse(text)
    }

    /// The JSON schema of the spec (embedded in the FlinkJob CRD as `spec.job`).
    pub fn json_schema() -> serde_json::Value {
        serde_json::to_value(schemars::schema_for!(JobSpec)).expect("a schema serializes")
    }
}
