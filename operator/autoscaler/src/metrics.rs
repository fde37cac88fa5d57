//! Metrics readings ([`Sample`]) and the per-vertex rates between two of them.

use serde::{Deserialize, Serialize};
use strom_protocol::JobStatus;

/// One reading of a job's counters, as the operator keeps it in the history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sample {
    /// When it was read (epoch ms).
    pub at_ms: i64,
    /// When the engine run that produced these counters started (epoch ms); counters of
    /// different runs are never compared.
    pub run_started_ms: i64,
    /// Each vertex's counters.
    pub vertices: Vec<VertexSample>,
}

/// A vertex's counters in a [`Sample`], summed over its subtasks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VertexSample {
    /// The vertex id.
    pub id: String,
    /// Subtasks.
    pub parallelism: u32,
    /// Upstream vertex ids.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<String>,
    /// Whether its parallelism can be set.
    pub scalable: bool,
    /// A source's partition count, where fixed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partitions: Option<u32>,
    /// Records received (sources: read).
    pub records_in: u64,
    /// Records sent.
    pub records_out: u64,
    /// Busy milliseconds.
    pub busy_ms: u64,
    /// A source's backlog (records not yet read), where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<u64>,
}

impl Sample {
    /// A sample of the engine's `GET /v1/job` answer read at `at_ms`.
    pub fn from_status(status: &JobStatus, at_ms: i64) -> Sample {
        let vertices = status
            .vertices
            .iter()
            .map(|v| {
                let sum = |f: fn(&strom_protocol::SubtaskMetrics) -> u64| {
                    v.subtasks.iter().map(f).sum::<u64>()
                };
                let pending: Vec<u64> = v
                    .subtasks
                    .iter()
                    .filter_map(|s| s.pending_records)
                    .collect();
                VertexSample {
                    id: if v.id.is_empty() {
                        v.name.clone()
                    } else {
                        v.id.clone()
                    },
                    parallelism: v.parallelism,
                    inputs: v.inputs.clone(),
                    scalable: v.scalable,
                    partitions: v.partitions,
                    records_in: sum(|s| s.records_in),
                    records_out: sum(|s| s.records_out),
                    busy_ms: sum(|s| s.busy_ms_total),
                    pending: (!pending.is_empty()).then(|| pending.iter().sum()),
                }
            })
            .collect();
        Sample {
            at_ms,
            run_started_ms: at_ms - i64::try_from(status.uptime_ms).unwrap_or(i64::MAX),
            vertices,
        }
    }

    /// Whether `self` (read later) continues the run of `earlier`: started at the same time
    /// (within the two readings' jitter) and no counter went back.
    pub fn same_run(&self, earlier: &Sample) -> bool {
        (self.run_started_ms - earlier.run_started_ms).abs() <= 2_000
            && self.vertices.len() == earlier.vertices.len()
            && self.vertices.iter().zip(&earlier.vertices).all(|(a, b)| {
                a.id == b.id
                    && a.parallelism == b.parallelism
                    && a.records_in >= b.records_in
                    && a.records_out >= b.records_out
                    && a.busy_ms >= b.busy_ms
            })
    }
}

/// What one vertex did between two samples.
#[derive(Debug, Clone, PartialEq)]
pub struct VertexRates {
    /// The vertex id.
    pub id: String,
    /// Subtasks.
    pub parallelism: u32,
    /// Upstream vertex ids.
    pub inputs: Vec<String>,
    /// Whether its parallelism can be set.
    pub scalable: bool,
    /// A source's partition count.
    pub partitions: Option<u32>,
    /// Records in per second.
    pub input_rate: f64,
    /// Records out per second.
    pub output_rate: f64,
    /// Fraction of the subtasks' time spent busy (0..=1).
    pub busy: f64,
    /// Records per second the vertex would process if it were busy all the time
    /// (`input_rate / busy`); `None` when it processed nothing or was (almost) never busy.
    pub true_rate: Option<f64>,
    /// A source's backlog at the end, in records.
    pub backlog: Option<f64>,
    /// How fast the backlog grew (records per second; negative: it shrank).
    pub backlog_growth: Option<f64>,
}

/// Busy fractions below this are too small to extrapolate a processing rate from.
const MIN_BUSY: f64 = 0.005;

/// Per-vertex rates from `first` to `last` (same run, `last` later).
pub fn rates(first: &Sample, last: &Sample) -> Vec<VertexRates> {
    let secs = (last.at_ms - first.at_ms) as f64 / 1000.0;
    last.vertices
        .iter()
        .zip(&first.vertices)
        .map(|(b, a)| {
            let per_s = |x: u64, y: u64| x.saturating_sub(y) as f64 / secs;
            let input_rate = per_s(b.records_in, a.records_in);
            let busy = ((b.busy_ms.saturating_sub(a.busy_ms)) as f64
                / (secs * 1000.0 * f64::from(b.parallelism.max(1))))
            .clamp(0.0, 1.0);
            VertexRates {
                id: b.id.clone(),
                parallelism: b.parallelism,
                inputs: b.inputs.clone(),
                scalable: b.scalable,
                partitions: b.partitions,
                input_rate,
                output_rate: per_s(b.records_out, a.records_out),
                busy,
                true_rate: (busy >= MIN_BUSY && input_rate > 0.0).then(|| input_rate / busy),
                backlog: b.pending.map(|p| p as f64),
                backlog_growth: match (a.pending, b.pending) {
                    (Some(x), Some(y)) => Some((y as f64 - x as f64) / secs),
                    _ => None,
                },
            }
        })
        .collect()
}
