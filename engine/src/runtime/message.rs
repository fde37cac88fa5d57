//! What a channel between tasks carries: rows, watermarks, idleness, checkpoint barriers
//! and the end of the stream, each tagged with where it came from.

use crate::batch::Batch;

/// What a channel between tasks carries.
#[derive(Debug, Clone)]
#[allow(
    clippy::large_enum_variant,
    reason = "batches move through channels by value; boxing would add an allocation per batch"
)]
pub enum Message {
    /// Rows.
    Data(Batch),
    /// No row with an event time at or below this will follow from this sender.
    Watermark(i64),
    /// The sender is idle (true: it sends no rows for now and must not hold back the
    /// watermark) or active again (false), as Flink's watermark status.
    Idle(bool),
    /// Checkpoint `n`: everything before this belongs to it, everything after to the next.
    Barrier(u64),
    /// The sender is done.
    End,
}

/// A message with the consumer's input index and the sending subtask.
pub(crate) type Envelope = (usize, usize, Message);
