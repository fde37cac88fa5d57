//! Rows as they flow through the engine: Arrow batches with their event time and the
//! watermark each row saw.
//!
//! Records travel in Arrow `RecordBatch`es. Each batch may carry two hidden columns beside
//! its data: `rowtime`, the event time of each row, and `wm`, the watermark each row saw at
//! its source (the highest event time before it, minus the out-of-orderness). Carrying the
//! watermark per row keeps Flink's exact per-record lateness rules while processing whole
//! batches, at any parallelism: a keyed subtask that receives a subset of the rows still knows
//! what the watermark was when each of them was read. Watermarks also travel in-band between
//! batches (and, later, checkpoint barriers), so an operator with no rows still sees time
//! advance.

use std::sync::Arc;

use arrow::array::{Array, Int64Array, UInt32Array};
use arrow::compute::take;
use arrow::record_batch::RecordBatch;

/// Rows with their event time and the watermark each saw.
#[derive(Debug, Clone)]
pub struct Batch {
    /// The columns.
    pub data: RecordBatch,
    /// Event time of each row (epoch ms), for event-time inputs.
    pub rowtime: Option<Int64Array>,
    /// The watermark in force when each row was read at its source.
    pub wm: Option<Int64Array>,
}

impl Batch {
    /// A batch without event time.
    pub fn plain(data: RecordBatch) -> Self {
        Batch {
            data,
            rowtime: None,
            wm: None,
        }
    }

    /// Rows picked by `indices`, hidden columns included.
    pub fn take(&self, indices: &UInt32Array) -> arrow::error::Result<Batch> {
        let columns = self
            .data
            .columns()
            .iter()
            .map(|c| take(c.as_ref(), indices, None))
            .collect::<Result<Vec<_>, _>>()?;
        let pick = |a: &Option<Int64Array>| -> arrow::error::Result<Option<Int64Array>> {
            a.as_ref()
                .map(|a| {
                    take(a, indices, None).map(|t| {
                        t.as_any()
                            .downcast_ref::<Int64Array>()
                            .expect("int64")
                            .clone()
                    })
                })
                .transpose()
        };
        Ok(Batch {
            data: RecordBatch::try_new(self.data.schema(), columns)?,
            rowtime: pick(&self.rowtime)?,
            wm: pick(&self.wm)?,
        })
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.data.num_rows()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.data.num_rows() == 0
    }
}

/// The watermark before any record: nothing is late yet.
pub const MIN_WATERMARK: i64 = i64::MIN;
/// The watermark at the end of a bounded input: everything fires.
pub const MAX_WATERMARK: i64 = i64::MAX;

/// An empty batch of `schema`.
pub fn empty(schema: arrow::datatypes::SchemaRef) -> RecordBatch {
    RecordBatch::new_empty(schema)
}

/// Shared handle type for schemas.
pub type SchemaRef = Arc<arrow::datatypes::Schema>;
