//! Sources: files, Kafka topics and generated records, their columns and their event time.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::Duration;

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
    /// For a Kafka source: the column comes from the record's metadata, not its value (as
    /// Flink's `METADATA FROM`): `key` (STRING: the key as text), `topic` (STRING),
    /// `partition` (INT or BIGINT), `offset` (BIGINT), `timestamp` (BIGINT: the record's
    /// timestamp, epoch milliseconds), or `header:<name>` (STRING: that header's value as
    /// text). A record without the key or header a column reads is a bad record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub metadata: Option<crate::KafkaMetadata>,
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
    /// Read Kafka topics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kafka: Option<crate::KafkaSource>,
    /// The columns (of a file or a Kafka source).
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
