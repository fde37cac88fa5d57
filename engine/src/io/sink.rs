//! Sinks: a CSV or JSON-lines file (CSV with a header line), stdout, and a blackhole that
//! only counts.

use std::fs::File;
use std::io::{BufWriter, Write};

use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;

use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use super::format;
use crate::spec::FileFormat;

/// Where a sink writes.
pub enum SinkWriter {
    /// A file.
    File {
        /// The open file.
        out: BufWriter<File>,
        /// Its format.
        format: FileFormat,
        /// Whether the header is written.
        header_done: bool,
    },
    /// A Parquet file (the writer opens once the first batch gives the schema).
    Parquet {
        /// The path.
        path: String,
        /// The file until the writer takes it.
        file: Option<File>,
        /// The writer.
        writer: Option<Box<ArrowWriter<File>>>,
    },
    /// Standard output, as CSV.
    Stdout,
    /// Nothing (rows are counted by the task).
    Blackhole,
    /// A function of each batch.
    Collect(crate::plan::Collector),
}

impl SinkWriter {
    /// Creates (truncates) `path`.
    pub fn file(path: &str, format: FileFormat) -> Result<SinkWriter, ArrowError> {
        let file = File::create(path)
            .map_err(|e| ArrowError::IoError(format!("cannot create {path}: {e}"), e))?;
        if format == FileFormat::Parquet {
            return Ok(SinkWriter::Parquet {
                path: path.to_owned(),
                file: Some(file),
                writer: None,
            });
        }
        Ok(SinkWriter::File {
            out: BufWriter::new(file),
            format,
            header_done: false,
        })
    }

    /// Writes a batch.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), ArrowError> {
        let io = |e: std::io::Error| ArrowError::IoError(e.to_string(), e);
        match self {
            SinkWriter::File {
                out,
                format: FileFormat::Csv,
                header_done,
            } => {
                let mut text = String::new();
                if !*header_done {
                    text.push_str(&format::csv_header(&batch.schema()));
                    *header_done = true;
                }
                format::csv_rows(batch, &mut text);
                out.write_all(text.as_bytes()).map_err(io)
            }
            SinkWriter::File {
                out,
                format: FileFormat::Jsonl,
                ..
            } => {
                let mut w = arrow::json::LineDelimitedWriter::new(Vec::new());
                w.write(batch)?;
                w.finish()?;
                out.write_all(&w.into_inner()).map_err(io)
            }
            SinkWriter::File {
                format: FileFormat::Parquet,
                ..
            } => Err(ArrowError::InvalidArgumentError(
                "Parquet files are written by SinkWriter::Parquet".into(),
            )),
            SinkWriter::Parquet { path, file, writer } => {
                let w = match writer {
                    Some(w) => w,
                    None => writer.insert(Box::new(parquet_writer(path, file, &batch.schema())?)),
                };
                w.write(batch)
                    .map_err(|e| ArrowError::ExternalError(Box::new(e)))
            }
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

    /// Flushes; an empty CSV result still gets its header.
    pub fn finish(&mut self, schema: &arrow::datatypes::Schema) -> Result<(), ArrowError> {
        let io = |e: std::io::Error| ArrowError::IoError(e.to_string(), e);
        if let SinkWriter::File {
            out,
            format: FileFormat::Csv,
            header_done,
        } = self
            && !*header_done
        {
            out.write_all(format::csv_header(schema).as_bytes())
                .map_err(io)?;
            *header_done = true;
        }
        match self {
            SinkWriter::File { out, .. } => out.flush().map_err(io)?,
            SinkWriter::Parquet { path, file, writer } => {
                // An empty result is still a valid Parquet file with the columns.
                let w = match writer.take() {
                    Some(w) => *w,
                    None => parquet_writer(path, file, &std::sync::Arc::new(schema.clone()))?,
                };
                w.close()
                    .map_err(|e| ArrowError::ExternalError(Box::new(e)))?;
            }
            SinkWriter::Stdout => std::io::stdout().flush().map_err(io)?,
            SinkWriter::Blackhole | SinkWriter::Collect(_) => {}
        }
        Ok(())
    }
}

fn parquet_writer(
    path: &str,
    file: &mut Option<File>,
    schema: &arrow::datatypes::SchemaRef,
) -> Result<ArrowWriter<File>, ArrowError> {
    let file = file.take().ok_or_else(|| {
        ArrowError::IoError(
            format!("{path} was closed"),
            std::io::Error::other("closed"),
        )
    })?;
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build();
    ArrowWriter::try_new(file, schema.clone(), Some(props))
        .map_err(|e| ArrowError::ExternalError(Box::new(e)))
}
