//! `GET /metrics`: the job's counters in Prometheus' text format.

use std::sync::atomic::Ordering;

use prometheus::{Encoder, GaugeVec, IntGaugeVec, Opts, Registry, TextEncoder};

use super::JobView;

impl JobView {
    /// The Prometheus text exposition of the job's metrics.
    pub fn prometheus(&self) -> String {
        let registry = Registry::new();
        let labels = &["vertex", "subtask"];
        let gauge = |name: &str, help: &str| {
            GaugeVec::new(Opts::new(name, help), labels).expect("valid metric")
        };
        let counter = |name: &str, help: &str| {
            IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric")
        };
        let busy = gauge(
            "strom_engine_task_busy_ms_per_second",
            "Milliseconds per second the subtask spent processing.",
        );
        let idle = gauge(
            "strom_engine_task_idle_ms_per_second",
            "Milliseconds per second the subtask spent waiting for input.",
        );
        let back = gauge(
            "strom_engine_task_backpressured_ms_per_second",
            "Milliseconds per second the subtask spent blocked on a full output.",
        );
        let rin = counter(
            "strom_engine_task_records_in_total",
            "Rows received (for sources: read).",
        );
        let rout = counter("strom_engine_task_records_out_total", "Rows sent.");
        let late = counter(
            "strom_engine_task_late_records_total",
            "Rows dropped because they arrived after their window.",
        );
        let wm = counter(
            "strom_engine_task_watermark_ms",
            "The subtask's current watermark, epoch milliseconds.",
        );
        let lag = counter(
            "strom_engine_task_watermark_lag_ms",
            "Wall-clock time minus the watermark, milliseconds.",
        );
        let pending = counter(
            "strom_engine_source_pending_records",
            "Records a source subtask has still to read (only where known).",
        );
        let partition_pending = IntGaugeVec::new(
            Opts::new(
                "strom_engine_source_partition_pending_records",
                "Records between a Kafka source subtask's position in a partition and the partition's end (where known).",
            ),
            &["vertex", "subtask", "topic", "partition"],
        )
        .expect("valid metric");
        let skipped = counter(
            "strom_engine_source_skipped_records_total",
            "Records a source left out because they could not be decoded (bad_records: skip).",
        );
        let dead_letters = counter(
            "strom_engine_source_dead_letter_records_total",
            "Records a source could not decode and wrote to its dead-letter topic (bad_records: dead-letter).",
        );
        let waiting = counter(
            "strom_engine_source_waiting",
            "1 while a source subtask waits for its brokers or topics (see /v1/job), else 0.",
        );
        let wm_idle = counter(
            "strom_engine_task_watermark_idle",
            "1 while the subtask is idle for watermarks (does not hold them back), else 0.",
        );
        let alignment = counter(
            "strom_engine_task_checkpoint_alignment_us",
            "How long the subtask's last checkpoint barrier alignment took, microseconds.",
        );
        for m in &self.metrics {
            alignment
                .with_label_values(&[m.vertex.as_str(), &m.subtask.to_string()])
                .set(m.last_alignment_us.load(Ordering::Relaxed) as i64);
        }
        let checkpoints = self.checkpoints();
        let job_gauge = |name: &str, help: &str, value: f64| {
            let g = prometheus::Gauge::new(name, help).expect("valid metric");
            g.set(value);
            g
        };
        let last = checkpoints
            .history
            .iter()
            .rev()
            .find(|h| h.kind == strom_protocol::SnapshotKind::Checkpoint);
        let checkpoint_metrics = [
            job_gauge(
                "strom_engine_checkpoints_completed",
                "Number of the newest completed checkpoint.",
                checkpoints.latest_completed as f64,
            ),
            job_gauge(
                "strom_engine_checkpoints_failed_total",
                "Checkpoints that could not be written.",
                checkpoints.failed as f64,
            ),
            job_gauge(
                "strom_engine_checkpoint_last_duration_seconds",
                "From trigger to complete, of the newest checkpoint.",
                last.map_or(0.0, |h| h.duration_ms as f64 / 1000.0),
            ),
            job_gauge(
                "strom_engine_checkpoint_last_size_bytes",
                "State bytes of the newest checkpoint.",
                last.map_or(0.0, |h| h.size_bytes as f64),
            ),
        ];
        let status = self.status();
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        for v in &status.vertices {
            for s in &v.subtasks {
                let l = [v.name.as_str(), &s.subtask.to_string()];
                busy.with_label_values(&l).set(s.busy_ms_per_second);
                idle.with_label_values(&l).set(s.idle_ms_per_second);
                back.with_label_values(&l)
                    .set(s.backpressured_ms_per_second);
                rin.with_label_values(&l).set(s.records_in as i64);
                rout.with_label_values(&l).set(s.records_out as i64);
                late.with_label_values(&l).set(s.late_records as i64);
                wm_idle
                    .with_label_values(&l)
                    .set(i64::from(s.watermark_idle));
                skipped.with_label_values(&l).set(s.skipped_records as i64);
                dead_letters
                    .with_label_values(&l)
                    .set(s.dead_letter_records as i64);
                waiting
                    .with_label_values(&l)
                    .set(i64::from(s.waiting.is_some()));
                if let Some(p) = s.pending_records {
                    pending.with_label_values(&l).set(p as i64);
                }
                for p in &s.partitions {
                    if let Some(n) = p.pending_records {
                        partition_pending
                            .with_label_values(&[l[0], l[1], &p.topic, &p.partition.to_string()])
                            .set(n as i64);
                    }
                }
                if let Some(w) = s.watermark.filter(|w| *w != i64::MAX) {
                    wm.with_label_values(&l).set(w);
                    lag.with_label_values(&l).set(now_ms - w);
                }
            }
        }
        let uptime = prometheus::Gauge::new(
            "strom_engine_job_uptime_seconds",
            "Seconds since the job started.",
        )
        .expect("valid metric");
        uptime.set(status.uptime_ms as f64 / 1000.0);
        let restarts = prometheus::IntGauge::new(
            "strom_engine_job_restarts_total",
            "Restarts of the job in this process.",
        )
        .expect("valid metric");
        restarts.set(status.restarts as i64);
        for c in [
            Box::new(busy) as Box<dyn prometheus::core::Collector>,
            Box::new(idle),
            Box::new(back),
            Box::new(rin),
            Box::new(rout),
            Box::new(late),
            Box::new(wm_idle),
            Box::new(pending),
            Box::new(partition_pending),
            Box::new(skipped),
            Box::new(dead_letters),
            Box::new(waiting),
            Box::new(wm),
            Box::new(lag),
            Box::new(uptime),
            Box::new(alignment),
            Box::new(restarts),
        ] {
            registry.register(c).expect("unique metric names");
        }
        for g in checkpoint_metrics {
            registry.register(Box::new(g)).expect("unique metric names");
        }
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&registry.gather(), &mut out)
            .expect("text encoding");
        String::from_utf8(out).unwrap_or_default()
    }
}
