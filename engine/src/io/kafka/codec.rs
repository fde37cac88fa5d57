//! Record values to rows (a source's decoding) and rows to record values and keys (a
//! sink's encoding), in the formats a spec names: JSON objects, CSV lines, raw text.

use std::io::Cursor;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Float64Array, Int64Array, StringArray};
use arrow::datatypes::SchemaRef;
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;

use crate::io::format;
use crate::spec::KafkaFormat;

/// Decodes record values into rows of a schema.
#[derive(Debug, Clone)]
pub struct Decoder {
    format: KafkaFormat,
    schema: SchemaRef,
}

impl Decoder {
    /// A decoder of `format` into `schema`.
    pub fn new(format: KafkaFormat, schema: SchemaRef) -> Self {
        Decoder { format, schema }
    }

    /// The rows of `values`, one per value; an error if any value does not decode into
    /// exactly one row (the caller then finds which, with [`Decoder::decode_one`]).
    pub fn decode(&self, values: &[&[u8]]) -> Result<RecordBatch, ArrowError> {
        let batch = match self.format {
            KafkaFormat::Raw => {
                let text = values
                    .iter()
                    .map(|v| {
                        std::str::from_utf8(v).map_err(|e| {
                            ArrowError::ParseError(format!("the value is not UTF-8 text: {e}"))
                        })
                    })
                    .collect::<Result<Vec<&str>, _>>()?;
                RecordBatch::try_new(
                    self.schema.clone(),
                    vec![Arc::new(StringArray::from(text)) as ArrayRef],
                )?
            }
            KafkaFormat::Json | KafkaFormat::Csv => {
                let mut joined = Vec::with_capacity(values.iter().map(|v| v.len() + 1).sum());
                for v in values {
                    if v.contains(&b'\n') && self.format == KafkaFormat::Csv {
                        return Err(ArrowError::ParseError(
                            "a CSV value holds a line break".into(),
                        ));
                    }
                    joined.extend_from_slice(v);
                    joined.push(b'\n');
                }
                let batches: Vec<RecordBatch> = if self.format == KafkaFormat::Json {
                    // Fields the schema does not declare are ignored, as Flink's JSON
                    // format does: a topic's records usually carry more than a job reads.
                    arrow::json::ReaderBuilder::new(self.schema.clone())
                        .with_batch_size(values.len().max(1))
                        .build(Cursor::new(joined))?
                        .collect::<Result<_, _>>()?
                } else {
                    arrow::csv::ReaderBuilder::new(self.schema.clone())
                        .with_header(false)
                        .with_batch_size(values.len().max(1))
                        .build(Cursor::new(joined))?
                        .collect::<Result<_, _>>()?
                };
                arrow::compute::concat_batches(&self.schema, &batches)?
            }
        };
        if batch.num_rows() != values.len() {
            return Err(ArrowError::ParseError(format!(
                "{} values gave {} rows",
                values.len(),
                batch.num_rows()
            )));
        }
        Ok(batch)
    }

    /// One value's row, or why it has none.
    pub fn decode_one(&self, value: &[u8]) -> Result<RecordBatch, String> {
        if value.iter().all(u8::is_ascii_whitespace) && self.format != KafkaFormat::Raw {
            return Err("the value is empty".into());
        }
        self.decode(&[value]).map_err(|e| match e {
            ArrowError::ParseError(m) | ArrowError::JsonError(m) | ArrowError::CsvError(m) => m,
            other => other.to_string(),
        })
    }
}

/// Encodes rows as record values (and keys).
#[derive(Debug, Clone)]
pub struct Encoder {
    format: KafkaFormat,
    key: Option<usize>,
}

impl Encoder {
    /// An encoder of `format`, keyed by column `key`.
    pub fn new(format: KafkaFormat, key: Option<usize>) -> Self {
        Encoder { format, key }
    }

    /// Calls `emit(key, value)` for every row of `batch`.
    pub fn encode(
        &self,
        batch: &RecordBatch,
        mut emit: impl FnMut(Option<&[u8]>, &[u8]) -> Result<(), ArrowError>,
    ) -> Result<(), ArrowError> {
        let keys: Option<Vec<Option<String>>> = self.key.map(|k| {
            let col = batch.column(k);
            (0..batch.num_rows())
                .map(|r| text_of(col.as_ref(), r))
                .collect()
        });
        let key_of = |row: usize| -> Option<&[u8]> {
            keys.as_ref()
                .and_then(|k| k[row].as_deref())
                .map(str::as_bytes)
        };
        match self.format {
            KafkaFormat::Json => {
                let mut w = arrow::json::LineDelimitedWriter::new(Vec::new());
                w.write(batch)?;
                w.finish()?;
                let text = w.into_inner();
                // JSON strings escape line breaks: each line is one row.
                for (row, line) in text
                    .split(|b| *b == b'\n')
                    .filter(|l| !l.is_empty())
                    .enumerate()
                {
                    emit(key_of(row), line)?;
                }
            }
            KafkaFormat::Csv => {
                let mut line = String::new();
                for row in 0..batch.num_rows() {
                    line.clear();
                    format::csv_row(batch, row, &mut line);
                    emit(key_of(row), line.as_bytes())?;
                }
            }
            KafkaFormat::Raw => {
                let col = batch.column(0);
                for row in 0..batch.num_rows() {
                    let text = text_of(col.as_ref(), row).unwrap_or_default();
                    emit(key_of(row), text.as_bytes())?;
                }
            }
        }
        Ok(())
    }
}

/// A value as text (as a CSV field holds it), None for NULL.
fn text_of(col: &dyn Array, row: usize) -> Option<String> {
    if col.is_null(row) {
        return None;
    }
    let any = col.as_any();
    if let Some(a) = any.downcast_ref::<StringArray>() {
        Some(a.value(row).to_owned())
    } else if let Some(a) = any.downcast_ref::<Int64Array>() {
        Some(a.value(row).to_string())
    } else if let Some(a) = any.downcast_ref::<Float64Array>() {
        Some(format::double(a.value(row)))
    } else {
        any.downcast_ref::<arrow::array::BooleanArray>()
            .map(|a| a.value(row).to_string())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;
    use arrow::datatypes::{DataType, Field, Schema};

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, false),
        ]))
    }

    #[test]
    fn json_and_csv_values_decode_one_row_each_and_bad_ones_are_named() {
        let d = Decoder::new(KafkaFormat::Json, schema());
        let b = d
            .decode(&[br#"{"id": 1, "name": "a"}"#, br#"{"name": "b", "id": 2}"#])
            .unwrap();
        assert_eq!(b.num_rows(), 2);
        // Fields the job does not declare are left aside.
        let b = d
            .decode_one(br#"{"id": 3, "extra": {"nested": [1, "x"]}, "name": "c", "n": null}"#)
            .unwrap();
        assert_eq!(b.num_rows(), 1);
        assert!(d.decode(&[br#"{"id": "x", "name": "a"}"#]).is_err());
        assert!(d.decode_one(br#"{"id": 1}"#).is_err(), "a missing column");
        assert!(d.decode_one(b"").is_err());
        // Two objects in one value are not one record.
        assert!(
            d.decode(&[br#"{"id": 1, "name": "a"} {"id": 2, "name": "b"}"#])
                .is_err()
        );
        let c = Decoder::new(KafkaFormat::Csv, schema());
        assert_eq!(c.decode(&[b"1,a", b"2,\"b,c\""]).unwrap().num_rows(), 2);
        assert!(c.decode_one(b"1,a\n2,b").is_err());
        assert!(c.decode_one(b"x,a").is_err());
    }

    #[test]
    fn rows_encode_to_values_that_decode_back() {
        let batch = RecordBatch::try_new(
            schema(),
            vec![
                Arc::new(Int64Array::from(vec![1, 2])),
                Arc::new(StringArray::from(vec!["a,b", "line\nbreak"])),
            ],
        )
        .unwrap();
        for format in [KafkaFormat::Json, KafkaFormat::Csv] {
            let mut values = Vec::new();
            let mut keys = Vec::new();
            Encoder::new(format, Some(0))
                .encode(&batch, |k, v| {
                    keys.push(k.map(<[u8]>::to_vec));
                    values.push(v.to_vec());
                    Ok(())
                })
                .unwrap();
            assert_eq!(keys, [Some(b"1".to_vec()), Some(b"2".to_vec())]);
            if format == KafkaFormat::Json {
                let refs: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
                let back = Decoder::new(format, schema()).decode(&refs).unwrap();
                assert_eq!(back, batch);
            } else {
                assert_eq!(values[0], b"1,\"a,b\"");
            }
        }
    }
}
