//! Sinks: a directory of part files (CSV with a header line, JSON lines or Parquet), a Kafka
//! topic (`io::kafka::sink`), stdout, and a blackhole that only counts.
//!
//! A file sink writes each part under a hidden staged name (`.part-….csv.inprogress`) and
//! never makes it visible itself: at a checkpoint barrier it closes the part and hands its
//! name to the checkpoint, and the coordinator renames it to `part-….csv` once the checkpoint
//! is complete (two-phase commit). A job restored from a checkpoint commits what that
//! checkpoint lists and deletes every other staged part, so each row appears exactly once.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use super::format;
use crate::snapshot::Commit;
use crate::spec::FileFormat;

fn io(e: std::io::Error) -> ArrowError {
    ArrowError::IoError(e.to_string(), e)
}

fn pq(e: parquet::errors::ParquetError) -> ArrowError {
    ArrowError::ExternalError(Box::new(e))
}

/// An open part file.
enum Part {
    Text {
        out: BufWriter<File>,
        header_done: bool,
    },
    Parquet(Box<ArrowWriter<File>>),
}

/// Part files of one sink subtask in one directory.
pub struct PartWriter {
    dir: PathBuf,
    format: FileFormat,
    /// Tells this run's parts from those of earlier runs (restores).
    run: String,
    subtask: usize,
    seq: u64,
    current: Option<(PathBuf, Part, u64)>,
}

impl PartWriter {
    fn extension(&self) -> &'static str {
        match self.format {
            FileFormat::Csv => "csv",
            FileFormat::Jsonl => "jsonl",
            FileFormat::Parquet => "parquet",
        }
    }

    fn open(&mut self, schema: &SchemaRef) -> Result<(), ArrowError> {
        let staged = self.dir.join(format!(
            ".part-{}-{}-{}.{}.inprogress",
            self.run,
            self.subtask,
            self.seq,
            self.extension()
        ));
        self.seq += 1;
        let file = File::create(&staged).map_err(|e| {
            ArrowError::IoError(format!("cannot create {}: {e}", staged.display()), e)
        })?;
        let part = match self.format {
            FileFormat::Parquet => {
                let props = WriterProperties::builder()
                    .set_compression(Compression::SNAPPY)
                    .build();
                Part::Parquet(Box::new(
                    ArrowWriter::try_new(file, schema.clone(), Some(props)).map_err(pq)?,
                ))
            }
            _ => Part::Text {
                out: BufWriter::new(file),
                header_done: false,
            },
        };
        self.current = Some((staged, part, 0));
        Ok(())
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<(), ArrowError> {
        if self.current.is_none() {
            self.open(&batch.schema())?;
        }
        let Some((_, part, rows)) = &mut self.current else {
            return Ok(());
        };
        *rows += batch.num_rows() as u64;
        match part {
            Part::Parquet(w) => w.write(batch).map_err(pq),
            Part::Text { out, header_done } => {
                if self.format == FileFormat::Csv {
                    let mut text = String::new();
                    if !*header_done {
                        text.push_str(&format::csv_header(&batch.schema()));
                        *header_done = true;
                    }
                    format::csv_rows(batch, &mut text);
                    out.write_all(text.as_bytes()).map_err(io)
                } else {
                    let mut w = arrow::json::LineDelimitedWriter::new(Vec::new());
                    w.write(batch)?;
                    w.finish()?;
                    out.write_all(&w.into_inner()).map_err(io)
                }
            }
        }
    }

    /// Closes the open part; its staged path if it holds rows (an empty part is deleted).
    fn close(&mut self) -> Result<Option<String>, ArrowError> {
        let Some((staged, part, rows)) = self.current.take() else {
            return Ok(None);
        };
        match part {
            Part::Parquet(w) => {
                w.close().map_err(pq)?;
            }
            Part::Text { mut out, .. } => {
                out.flush().map_err(io)?;
                out.get_ref().sync_all().map_err(io)?;
            }
        }
        if rows == 0 {
            let _ = std::fs::remove_file(&staged);
            return Ok(None);
        }
        Ok(Some(staged.display().to_string()))
    }
}

/// Where a sink writes.
pub enum SinkWriter {
    /// Part files in a directory.
    Parts(PartWriter),
    /// A Kafka topic.
    Kafka(Box<super::kafka::sink::KafkaWriter>),
    /// Standard output, as CSV (not transactional: rows after the last checkpoint may be
    /// printed again after a restore).
    Stdout,
    /// Nothing (rows are counted by the task).
    Blackhole,
    /// A function of each batch.
    Collect(crate::plan::Collector),
}

impl SinkWriter {
    /// Part files of subtask `subtask` in directory `dir` (created if needed).
    pub fn parts(dir: &str, format: FileFormat, subtask: usize) -> Result<SinkWriter, ArrowError> {
        std::fs::create_dir_all(dir).map_err(|e| {
            ArrowError::IoError(format!("cannot create the sink directory {dir}: {e}"), e)
        })?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Ok(SinkWriter::Parts(PartWriter {
            dir: PathBuf::from(dir),
            format,
            run: format!(
                "{:012x}",
                (nanos ^ u64::from(std::process::id())) & 0xffff_ffff_ffff
            ),
            subtask,
            seq: 0,
            current: None,
        }))
    }

    /// Writes a batch.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), ArrowError> {
        match self {
            SinkWriter::Parts(p) => p.write(batch),
            SinkWriter::Kafka(k) => k.write(batch),
            SinkWriter::Stdout => {
                let mut text = String::new();
                format::csv_rows(batch, &mut text);
                std::io::stdout()
                    .lock()
                    .write_all(text.as_bytes())
                    .map_err(io)
            }
            SinkWriter::Blackhole => Ok(()),
            SinkWriter::Collect(f) => {
                f(batch);
                Ok(())
            }
        }
    }

    /// At checkpoint `id`'s barrier or the end: closes the open part (or flushes the
    /// Kafka producer) and returns what the checkpoint is to commit.
    pub fn stage(&mut self, id: u64) -> Result<Vec<Commit>, ArrowError> {
        match self {
            SinkWriter::Parts(p) => Ok(p.close()?.into_iter().map(Commit::File).collect()),
            SinkWriter::Kafka(k) => k.stage(id),
            SinkWriter::Stdout => {
                std::io::stdout().flush().map_err(io)?;
                Ok(Vec::new())
            }
            SinkWriter::Blackhole | SinkWriter::Collect(_) => Ok(Vec::new()),
        }
    }
}

/// Deletes the staged (uncommitted) part files in a sink directory: after a restore, their
/// rows are produced again.
pub fn discard_staged(dir: &Path) -> std::io::Result<usize> {
    let mut n = 0;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(0);
    };
    for e in entries {
        let e = e?;
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(".part-") && name.ends_with(".inprogress") {
            std::fs::remove_file(e.path())?;
            n += 1;
        }
    }
    Ok(n)
}

/// Whether two CSV lines hold the same values, doubles equal to 1e-9 relative: how a job's
/// rows are compared with Flink's (the golden tests, strom-chaos).
pub fn same_csv_line(got: &str, want: &str) -> bool {
    if got == want {
        return true;
    }
    let (g, w): (Vec<&str>, Vec<&str>) = (got.split(',').collect(), want.split(',').collect());
    g.len() == w.len()
        && g.iter().zip(&w).all(|(a, b)| {
            a == b
                || match (a.parse::<f64>(), b.parse::<f64>()) {
                    (Ok(x), Ok(y)) => x == y || (x - y).abs() <= 1e-9 * y.abs().max(1e-300),
                    _ => false,
                }
        })
}

/// The committed rows of a CSV sink directory: the header and every part's rows, in part
/// name order.
pub fn read_csv_dir(dir: &Path) -> std::io::Result<(Option<String>, Vec<String>)> {
    let mut parts: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("part-"))
        })
        .collect();
    parts.sort();
    let (mut header, mut rows) = (None, Vec::new());
    for p in parts {
        let text = std::fs::read_to_string(&p)?;
        let mut lines = text.lines();
        let first = lines.next().map(str::to_owned);
        if header.is_none() {
            header = first;
        }
        rows.extend(lines.map(str::to_owned));
    }
    Ok((header, rows))
}
