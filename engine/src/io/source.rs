//! Sources: CSV and JSON-lines files read in order, and generated records. Each produces
//! batches with their event time and, per row, the watermark before it (the highest event
//! time so far minus the out-of-orderness): Flink's SQL watermark rule re-evaluated after
//! every record.

use std::fs::File;
use std::io::BufReader;
use std::sync::Arc;

use arrow::array::{Array, Int64Array};
use arrow::datatypes::{Field, Schema};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;

use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};

use super::generate::Generator;
use crate::batch::{Batch, MIN_WATERMARK, SchemaRef};
use crate::expr::Ty;
use crate::spec::FileFormat;

/// Rows per batch a source produces.
pub const BATCH_ROWS: usize = 8192;

/// The Arrow schema of a source's declared columns.
pub fn schema(fields: &[crate::spec::FieldSpec]) -> SchemaRef {
    Arc::new(Schema::new(
        fields
            .iter()
            .map(|f| Field::new(&f.name, crate::expr::arrow_type(f.type_.into()), false))
            .collect::<Vec<_>>(),
    ))
}

/// Tracks the watermark of one source subtask.
#[derive(Debug, Clone)]
pub struct Watermarker {
    /// Index of the event-time column.
    pub column: usize,
    /// Out-of-orderness in ms.
    pub delay: i64,
    max_seen: Option<i64>,
}

/// The event-time column `column` of `data` (BIGINT epoch milliseconds).
pub fn event_times(data: &RecordBatch, column: usize) -> Result<Int64Array, ArrowError> {
    data.column(column)
        .as_any()
        .downcast_ref::<Int64Array>()
        .cloned()
        .ok_or_else(|| {
            ArrowError::CastError("the event-time column must be BIGINT epoch milliseconds".into())
        })
}

impl Watermarker {
    /// A watermark generator over `column`.
    pub fn new(column: usize, delay: i64) -> Self {
        Watermarker {
            column,
            delay,
            max_seen: None,
        }
    }

    /// Event time and per-row watermark of a batch.
    pub fn stamp(&mut self, data: RecordBatch) -> Result<Batch, ArrowError> {
        let ts = event_times(&data, self.column)?;
        let mut wm = Vec::with_capacity(ts.len());
        for t in ts.values() {
            wm.push(self.current());
            self.max_seen = Some(self.max_seen.map_or(*t, |m| m.max(*t)));
        }
        Ok(Batch {
            data,
            rowtime: Some(ts),
            wm: Some(Int64Array::from(wm)),
        })
    }

    /// The highest event time seen (for a snapshot).
    pub fn max_seen(&self) -> Option<i64> {
        self.max_seen
    }

    /// Carries on from a snapshot's highest event time.
    pub fn resume(&mut self, max_seen: Option<i64>) {
        self.max_seen = max_seen;
    }

    /// The watermark now.
    pub fn current(&self) -> i64 {
        self.max_seen
            .map_or(MIN_WATERMARK, |m| m.saturating_sub(self.delay))
    }
}

/// A bounded file, read in order, with rows put back by [`FileReader::skip_rows`].
pub struct FileReader {
    format: FileFormatReader,
    leftover: Option<RecordBatch>,
}

/// The reader of one format.
pub enum FileFormatReader {
    /// CSV without header.
    Csv(Box<arrow::csv::reader::BufReader<BufReader<File>>>),
    /// JSON lines.
    Json(arrow::json::reader::Reader<BufReader<File>>),
    /// Parquet: this subtask's row groups, and the declared columns' positions and types.
    Parquet(Box<ParquetRecordBatchReader>, Vec<usize>, SchemaRef),
}

impl FileReader {
    /// Opens `path` for subtask `subtask` of `parallelism` (a Parquet file's row groups
    /// are dealt out round-robin; other formats are read whole by one subtask).
    pub fn open(
        path: &str,
        format: FileFormat,
        schema: SchemaRef,
        subtask: usize,
        parallelism: usize,
        batch_rows: usize,
    ) -> Result<FileReader, ArrowError> {
        let batch_rows = batch_rows.clamp(1, BATCH_ROWS);
        let file = File::open(path)
            .map_err(|e| ArrowError::IoError(format!("cannot open {path}: {e}"), e))?;
        let format = match format {
            FileFormat::Parquet => {
                let bad = |e: parquet::errors::ParquetError| {
                    ArrowError::ParseError(format!("{path} is not a readable Parquet file: {e}"))
                };
                let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(bad)?;
                let groups: Vec<usize> = (0..builder.metadata().num_row_groups())
                    .filter(|g| g % parallelism.max(1) == subtask)
                    .collect();
                let found = builder.schema().clone();
                let mut positions = Vec::new();
                for f in schema.fields() {
                    let Some((i, _)) = found.column_with_name(f.name()) else {
                        let names: Vec<&str> =
                            found.fields().iter().map(|f| f.name().as_str()).collect();
                        return Err(ArrowError::SchemaError(format!(
                            "{path} has no column {:?} (it has {})",
                            f.name(),
                            names.join(", ")
                        )));
                    };
                    positions.push(i);
                }
                let reader = builder
                    .with_row_groups(groups)
                    .with_batch_size(batch_rows)
                    .build()
                    .map_err(bad)?;
                FileFormatReader::Parquet(Box::new(reader), positions, schema)
            }
            FileFormat::Csv => FileFormatReader::Csv(Box::new(
                arrow::csv::ReaderBuilder::new(schema)
                    .with_header(false)
                    .with_batch_size(batch_rows)
                    .build(file)?,
            )),
            FileFormat::Jsonl => FileFormatReader::Json(
                arrow::json::ReaderBuilder::new(schema)
                    .with_batch_size(batch_rows)
                    .build(BufReader::new(file))?,
            ),
        };
        Ok(FileReader {
            format,
            leftover: None,
        })
    }

    /// Skips the first `n` rows (resuming from a snapshot).
    pub fn skip_rows(&mut self, mut n: u64) -> Result<(), ArrowError> {
        while n > 0 {
            let Some(batch) = self.next_batch() else {
                return Ok(());
            };
            let batch = batch?;
            let rows = batch.num_rows() as u64;
            if rows > n {
                self.leftover = Some(batch.slice(n as usize, (rows - n) as usize));
                return Ok(());
            }
            n -= rows;
        }
        Ok(())
    }

    /// The next batch, or None at the end.
    pub fn next_batch(&mut self) -> Option<Result<RecordBatch, ArrowError>> {
        if let Some(b) = self.leftover.take() {
            return Some(Ok(b));
        }
        match &mut self.format {
            FileFormatReader::Csv(r) => r.next(),
            FileFormatReader::Json(r) => r.next(),
            FileFormatReader::Parquet(r, positions, schema) => {
                let batch = match r.next()? {
                    Ok(b) => b,
                    Err(e) => return Some(Err(e)),
                };
                // The declared columns, in the declared order and types.
                let columns = positions
                    .iter()
                    .zip(schema.fields())
                    .map(|(i, f)| {
                        arrow::compute::cast(batch.column(*i), f.data_type()).map_err(|e| {
                            ArrowError::CastError(format!("column {:?}: {e}", f.name()))
                        })
                    })
                    .collect::<Result<Vec<_>, _>>();
                Some(columns.and_then(|c| RecordBatch::try_new(schema.clone(), c)))
            }
        }
    }
}

/// Generated records: sequence numbers `id`, split between subtasks in blocks of
/// [`BATCH_ROWS`] (subtask `s` of `p` generates blocks `s, s + p, s + 2p, …`), turned into
/// rows by a [`Generator`]. After a restore at another parallelism a subtask may carry on
/// several such streams; it generates them in id order (the lowest next id first).
pub struct Datagen {
    generator: Arc<Generator>,
    seed: u64,
    schema: SchemaRef,
    /// (first id of the current block, next id) of each stream.
    streams: Vec<(u64, u64)>,
    end: u64,
    stride: u64,
}

impl Datagen {
    /// Subtask `subtask` of `parallelism`, up to `count` ids in all.
    pub fn new(
        generator: Arc<Generator>,
        seed: u64,
        schema: SchemaRef,
        count: Option<u64>,
        subtask: usize,
        parallelism: usize,
    ) -> Self {
        let first = subtask as u64 * BATCH_ROWS as u64;
        Datagen {
            generator,
            seed,
            schema,
            streams: vec![(first, first)],
            end: count.unwrap_or(u64::MAX),
            stride: parallelism as u64 * BATCH_ROWS as u64,
        }
    }

    /// The schema the column expressions are compiled against: one BIGINT column `id`.
    pub fn id_schema() -> SchemaRef {
        Arc::new(Schema::new(vec![Field::new(
            "id",
            crate::expr::arrow_type(Ty::Int),
            false,
        )]))
    }

    /// Where each stream is (for a snapshot), and the stride between a stream's blocks.
    pub fn position(&self) -> (Vec<(u64, u64)>, u64) {
        (self.streams.clone(), self.stride)
    }

    /// Carries on `streams` (with blocks `stride` ids apart) instead of its own.
    pub fn resume(&mut self, streams: Vec<(u64, u64)>, stride: u64) {
        self.streams = streams;
        self.stride = stride;
    }

    /// How many records this subtask has still to generate (None: unbounded).
    pub fn pending(&self) -> Option<u64> {
        if self.end == u64::MAX {
            return None;
        }
        let block = BATCH_ROWS as u64;
        // Blocks of a stream from `from` on: full ones, then a partial last one.
        let from_block = |from: u64| -> u64 {
            if from >= self.end {
                return 0;
            }
            let blocks = (self.end - 1 - from) / self.stride + 1;
            let last = from + (blocks - 1) * self.stride;
            (blocks - 1) * block + block.min(self.end - last)
        };
        Some(
            self.streams
                .iter()
                .map(|(start, next)| {
                    (start + block).min(self.end).saturating_sub(*next)
                        + from_block(start + self.stride)
                })
                .sum(),
        )
    }

    /// The next batch of at most `limit` rows, or None when `count` is reached.
    pub fn next_batch(&mut self, limit: usize) -> Option<Result<RecordBatch, ArrowError>> {
        // The stream with the lowest next id: a subtask carrying several streams (after a
        // restore at a lower parallelism) generates its ids in order, so a stream that is
        // ahead does not raise the subtask's watermark above the rows another stream has
        // still to make (they would be late, and dropped).
        let (i, &(block, next)) = self
            .streams
            .iter()
            .enumerate()
            .filter(|(_, (_, next))| *next < self.end)
            .min_by_key(|(_, (_, next))| *next)?;
        let block_end = block + BATCH_ROWS as u64;
        let to = (next + limit.max(1) as u64).min(block_end).min(self.end);
        let ids = Int64Array::from_iter_values((next..to).map(|i| i as i64));
        self.streams[i] = if to == block_end {
            (block + self.stride, block + self.stride)
        } else {
            (block, to)
        };
        Some(self.generator.batch(self.seed, &ids, &self.schema))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_the_same_whatever_the_batch_sizes_and_pending_counts_down() {
        let generator = Arc::new(Generator::Columns(vec![
            super::super::generate::Column::Expr(crate::expr::Expr::Column(0, Ty::Int)),
        ]));
        let ids = |limit: usize, subtask: usize| -> Vec<i64> {
            let mut g = Datagen::new(
                generator.clone(),
                0,
                Datagen::id_schema(),
                Some(20_000),
                subtask,
                2,
            );
            let mut out = Vec::new();
            let mut expected_pending = g.pending().unwrap();
            while let Some(b) = g.next_batch(limit) {
                let b = b.unwrap();
                expected_pending -= b.num_rows() as u64;
                assert_eq!(g.pending(), Some(expected_pending));
                let a = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
                out.extend(a.values().iter().copied());
            }
            assert_eq!(g.pending(), Some(0));
            out
        };
        let (a, b) = (ids(BATCH_ROWS, 0), ids(BATCH_ROWS, 1));
        assert_eq!(ids(7, 0), a);
        assert_eq!(ids(1000, 1), b);
        let mut all: Vec<i64> = a.into_iter().chain(b).collect();
        all.sort_unstable();
        assert_eq!(all, (0..20_000).collect::<Vec<i64>>());
    }
}
