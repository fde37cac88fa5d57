//! A Kafka source subtask's watermarks, per partition and combined as Flink combines split
//! watermarks: the minimum over partitions that are neither idle nor finished.

use std::time::Duration;

use arrow::array::Int64Array;
use arrow::error::ArrowError;

use super::{KafkaReader, Polled};
use crate::batch::{Batch, MIN_WATERMARK};

impl KafkaReader {
    /// Stamps `polled` with event time and per-row watermarks (each row's the combined
    /// watermark before it), raising each partition's high mark as rows pass.
    pub fn stamp(
        &mut self,
        polled: Polled,
        column: usize,
        delay: i64,
        idle_timeout: Option<Duration>,
    ) -> Result<Batch, ArrowError> {
        let ts = crate::io::source::event_times(&polled.batch, column)?;
        let mut wm = Vec::with_capacity(ts.len());
        // A partition that reached its end in this poll still counts until its rows are
        // stamped: its split finishes after its last record, as in Flink.
        let mut current = self
            .combined(delay, idle_timeout, true)
            .unwrap_or(MIN_WATERMARK);
        for (t, &q) in ts.values().iter().zip(&polled.partition_of) {
            wm.push(current);
            let p = &mut self.partitions[q as usize].at;
            if p.max_seen.is_none_or(|m| *t > m) {
                p.max_seen = Some(*t);
                current = self.combined(delay, idle_timeout, true).unwrap_or(current);
            }
        }
        Ok(Batch {
            data: polled.batch,
            rowtime: Some(ts),
            wm: Some(Int64Array::from(wm)),
        })
    }

    /// The combined watermark: the lowest over partitions that are neither finished nor
    /// idle (a partition with no record yet holds it at the minimum). None when no
    /// partition counts (all idle or finished).
    pub fn watermark(&self, delay: i64, idle_timeout: Option<Duration>) -> Option<i64> {
        self.combined(delay, idle_timeout, false)
    }

    fn combined(
        &self,
        delay: i64,
        idle_timeout: Option<Duration>,
        with_finished: bool,
    ) -> Option<i64> {
        self.partitions
            .iter()
            .filter(|p| {
                (with_finished || !p.finished)
                    && idle_timeout.is_none_or(|t| p.last_data.elapsed() < t)
            })
            .map(|p| {
                p.at.max_seen
                    .map_or(MIN_WATERMARK, |m| m.saturating_sub(delay))
            })
            .min()
    }

    /// The highest event time over all partitions minus the delay: the watermark once
    /// every partition is idle or finished.
    pub fn highest(&self, delay: i64) -> Option<i64> {
        self.partitions
            .iter()
            .filter_map(|p| p.at.max_seen)
            .max()
            .map(|m| m.saturating_sub(delay))
    }
}
