//! Per-task time accounting as Flink defines it: milliseconds per second busy (processing),
//! idle (waiting for input) and backpressured (blocked on a full output channel), plus
//! records in and out.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Instant;

/// Counters of one task (one subtask of one vertex).
#[derive(Debug, Default)]
pub struct TaskMetrics {
    /// Vertex name.
    pub vertex: String,
    /// Vertex id (`source:x`, `sink:y` or its heading step's name).
    pub vertex_id: String,
    /// Ids of the vertices it reads from.
    pub inputs: Vec<String>,
    /// Whether the vertex's parallelism can be set (`--vertex-parallelism`).
    pub scalable: bool,
    /// Subtask index.
    pub subtask: usize,
    /// Nanoseconds spent processing.
    pub busy_ns: AtomicU64,
    /// Nanoseconds spent waiting for input.
    pub idle_ns: AtomicU64,
    /// Nanoseconds spent blocked on a full output channel.
    pub backpressured_ns: AtomicU64,
    /// Rows received.
    pub records_in: AtomicU64,
    /// Rows sent.
    pub records_out: AtomicU64,
    /// Rows dropped as late.
    pub late_records: AtomicU64,
    /// The task's current watermark.
    pub watermark: AtomicI64,
    /// For sources: records still to read, or -1 where unknown (unbounded, or a file).
    pub pending_records: AtomicI64,
    /// Whether the task is idle as far as watermarks go (a source without records for its
    /// idle timeout, or a task all of whose inputs are idle).
    pub watermark_idle: std::sync::atomic::AtomicBool,
    /// How long the last checkpoint barrier alignment took, in microseconds.
    pub last_alignment_us: AtomicU64,
    /// For sources: records left out as undecodable (`bad_records: skip`).
    pub skipped_records: AtomicU64,
    /// For sources: records written to the dead-letter topic (`bad_records: dead-letter`).
    pub dead_letter_records: AtomicU64,
    /// What the task is waiting for, said for people (a source retrying an unreachable
    /// broker or a missing topic); None while it runs normally.
    pub waiting: std::sync::Mutex<Option<String>>,
    /// For a Kafka source: its partitions' lag.
    pub partitions: std::sync::Mutex<Vec<strom_protocol::PartitionLag>>,
    /// For a Kafka source: how many partitions its topics have (0: not a partitioned
    /// source, or not known yet).
    pub source_partitions: AtomicU64,
}

impl TaskMetrics {
    /// Says what the task waits for (None: nothing).
    pub fn set_waiting(&self, why: Option<String>) {
        *self.waiting.lock().expect("waiting") = why;
    }

    /// A partitioned source's lag: per partition, and in total once every partition's is
    /// known.
    pub fn set_lag(&self, partitions: Vec<strom_protocol::PartitionLag>) {
        let total: Option<u64> = partitions.iter().map(|p| p.pending_records).sum();
        self.pending_records
            .store(total.map_or(-1, |t| t as i64), Ordering::Relaxed);
        *self.partitions.lock().expect("partitions") = partitions;
    }
}

impl TaskMetrics {
    /// New counters for a subtask.
    pub fn new(vertex: &str, subtask: usize) -> Arc<Self> {
        Arc::new(TaskMetrics {
            vertex: vertex.into(),
            subtask,
            watermark: AtomicI64::new(i64::MIN),
            pending_records: AtomicI64::new(-1),
            ..Default::default()
        })
    }

    /// New counters for subtask `subtask` of the vertex `name` (id `id`, reading from
    /// `inputs`).
    pub fn of_vertex(
        name: &str,
        id: &str,
        inputs: Vec<String>,
        scalable: bool,
        subtask: usize,
    ) -> Arc<Self> {
        Arc::new(TaskMetrics {
            vertex: name.into(),
            vertex_id: id.into(),
            inputs,
            scalable,
            subtask,
            watermark: AtomicI64::new(i64::MIN),
            pending_records: AtomicI64::new(-1),
            ..Default::default()
        })
    }
}

/// Splits a task's wall time into busy, idle and backpressured.
pub struct Clock {
    metrics: Arc<TaskMetrics>,
    since: Instant,
}

/// What the task is doing from now on.
#[derive(Debug, Clone, Copy)]
pub enum Phase {
    /// Processing.
    Busy,
    /// Waiting for input.
    Idle,
    /// Blocked on output.
    Backpressured,
}

impl Clock {
    /// Starts accounting (as busy).
    pub fn new(metrics: Arc<TaskMetrics>) -> Self {
        Clock {
            metrics,
            since: Instant::now(),
        }
    }

    /// Charges the time since the last switch to `was`, and starts the next phase.
    pub fn switch(&mut self, was: Phase) {
        let now = Instant::now();
        let ns = (now - self.since).as_nanos() as u64;
        self.since = now;
        let counter = match was {
            Phase::Busy => &self.metrics.busy_ns,
            Phase::Idle => &self.metrics.idle_ns,
            Phase::Backpressured => &self.metrics.backpressured_ns,
        };
        counter.fetch_add(ns, Ordering::Relaxed);
    }

    /// The task's counters.
    pub fn metrics(&self) -> &Arc<TaskMetrics> {
        &self.metrics
    }
}
