//! Writing values as Flink's CSV results are written: integers in decimal, doubles as the
//! shortest text that reads back to the same value (Python's `repr`, with `-0.0`), strings
//! as they are (quoted only when they hold a comma, quote or line break).

use std::fmt::Write;

use arrow::array::{Array, BooleanArray, Float64Array, Int64Array, StringArray};
use arrow::record_batch::RecordBatch;

/// A double as Python's `repr` writes it.
pub fn double(v: f64) -> String {
    if v.is_nan() {
        return "nan".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let abs = v.abs();
    if abs != 0.0 && !(1e-4..1e16).contains(&abs) {
        // Exponent form: 1e-05, 1.5e+16.
        let s = format!("{v:e}");
        let (mantissa, exp) = s.split_once('e').expect("exponent form");
        let exp: i32 = exp.parse().expect("exponent");
        return format!(
            "{mantissa}e{}{:02}",
            if exp < 0 { '-' } else { '+' },
            exp.abs()
        );
    }
    let s = format!("{v}");
    if s.contains('.') { s } else { format!("{s}.0") }
}

fn field(out: &mut String, text: &str) {
    if text.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&text.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(text);
    }
}

/// Appends the rows of `batch` as CSV lines.
pub fn csv_rows(batch: &RecordBatch, out: &mut String) {
    for row in 0..batch.num_rows() {
        csv_row(batch, row, out);
        out.push('\n');
    }
}

/// Appends row `row` of `batch` as CSV, without a line end.
pub fn csv_row(batch: &RecordBatch, row: usize, out: &mut String) {
    {
        for (i, col) in batch.columns().iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            if col.is_null(row) {
                continue;
            }
            if let Some(a) = col.as_any().downcast_ref::<Int64Array>() {
                let _ = write!(out, "{}", a.value(row));
            } else if let Some(a) = col.as_any().downcast_ref::<Float64Array>() {
                out.push_str(&double(a.value(row)));
            } else if let Some(a) = col.as_any().downcast_ref::<StringArray>() {
                field(out, a.value(row));
            } else if let Some(a) = col.as_any().downcast_ref::<BooleanArray>() {
                out.push_str(if a.value(row) { "true" } else { "false" });
            }
        }
    }
}

/// The CSV header line of `batch`'s schema.
pub fn csv_header(schema: &arrow::datatypes::Schema) -> String {
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    format!("{}\n", names.join(","))
}

#[cfg(test)]
mod tests {
    use super::double;

    #[test]
    fn doubles_read_like_python_repr() {
        assert_eq!(double(32.78947368421053), "32.78947368421053");
        assert_eq!(double(-0.0), "-0.0");
        assert_eq!(double(3.0), "3.0");
        assert_eq!(double(0.0001), "0.0001");
        assert_eq!(double(0.00001), "1e-05");
        assert_eq!(double(1.5e16), "1.5e+16");
    }
}
