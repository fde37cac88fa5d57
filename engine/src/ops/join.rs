//! Interval join of two keyed streams on event time: a left row `l` and a right row `r`
//! with equal keys join when `l.ts + lower <= r.ts <= l.ts + upper`. Rows are kept until no
//! future row of the other side can match them.

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array};
use arrow::datatypes::{Field, Schema};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;

use super::Operator;
use super::value::{FxMap, Val, column};
use crate::expr::{Expr, Ty, eval};
use crate::runtime::{Batch, MIN_WATERMARK, SchemaRef};

type Buffer = FxMap<Vec<Val>, Vec<(i64, Vec<Val>)>>;

/// Interval join of one subtask.
pub struct IntervalJoin {
    left_keys: Vec<Expr>,
    right_keys: Vec<Expr>,
    lower: i64,
    upper: i64,
    left: Buffer,
    right: Buffer,
    left_types: Vec<Ty>,
    right_types: Vec<Ty>,
    schema: SchemaRef,
    watermark: i64,
    /// The watermark at the last state cleanup.
    cleaned_at: i64,
}

impl IntervalJoin {
    /// Joins inputs 0 (left) and 1 (right); output columns are named `<left>.<col>` and
    /// `<right>.<col>`.
    pub fn new(
        left_keys: Vec<Expr>,
        right_keys: Vec<Expr>,
        lower: i64,
        upper: i64,
        left: (&str, SchemaRef),
        right: (&str, SchemaRef),
    ) -> Self {
        let types = |s: &SchemaRef| {
            s.fields()
                .iter()
                .map(|f| Ty::of(f.data_type()).unwrap_or(Ty::Str))
                .collect::<Vec<_>>()
        };
        let mut fields = Vec::new();
        for (name, s) in [&left, &right] {
            for f in s.fields() {
                fields.push(Field::new(
                    format!("{name}.{}", f.name()),
                    f.data_type().clone(),
                    false,
                ));
            }
        }
        IntervalJoin {
            left_keys,
            right_keys,
            lower,
            upper,
            left: FxMap::default(),
            right: FxMap::default(),
            left_types: types(&left.1),
            right_types: types(&right.1),
            schema: Arc::new(Schema::new(fields)),
            watermark: MIN_WATERMARK,
            cleaned_at: MIN_WATERMARK,
        }
    }
}

impl Operator for IntervalJoin {
    fn process(
        &mut self,
        input: usize,
        batch: Batch,
        out: &mut Vec<Batch>,
    ) -> Result<(), ArrowError> {
        let n = batch.len();
        let rowtime = batch.rowtime.clone().ok_or_else(|| {
            ArrowError::InvalidArgumentError("an interval join needs event-time inputs".into())
        })?;
        let keys = if input == 0 {
            &self.left_keys
        } else {
            &self.right_keys
        };
        let key_cols: Vec<ArrayRef> = keys
            .iter()
            .map(|k| eval(k, &batch.data)?.into_array(n))
            .collect::<Result<_, _>>()?;
        let mut joined: Vec<(Vec<Val>, Vec<Val>, i64)> = Vec::new();
        for row in 0..n {
            let ts = rowtime.value(row);
            let key: Vec<Val> = key_cols.iter().map(|c| Val::at(c.as_ref(), row)).collect();
            let values: Vec<Val> = batch
                .data
                .columns()
                .iter()
                .map(|c| Val::at(c.as_ref(), row))
                .collect();
            if input == 0 {
                if let Some(others) = self.right.get(&key) {
                    for (rts, r) in others {
                        if ts + self.lower <= *rts && *rts <= ts + self.upper {
                            joined.push((values.clone(), r.clone(), ts.max(*rts)));
                        }
                    }
                }
                self.left.entry(key).or_default().push((ts, values));
            } else {
                if let Some(others) = self.left.get(&key) {
                    for (lts, l) in others {
                        if lts + self.lower <= ts && ts <= lts + self.upper {
                            joined.push((l.clone(), values.clone(), ts.max(*lts)));
                        }
                    }
                }
                self.right.entry(key).or_default().push((ts, values));
            }
        }
        if joined.is_empty() {
            return Ok(());
        }
        let mut columns: Vec<ArrayRef> = Vec::new();
        for (i, t) in self.left_types.iter().enumerate() {
            columns.push(column(*t, joined.iter().map(|j| j.0[i].clone())));
        }
        for (i, t) in self.right_types.iter().enumerate() {
            columns.push(column(*t, joined.iter().map(|j| j.1[i].clone())));
        }
        let rowtime: Int64Array = joined.iter().map(|j| j.2).collect();
        out.push(Batch {
            data: RecordBatch::try_new(self.schema.clone(), columns)?,
            rowtime: Some(rowtime),
            wm: None,
        });
        Ok(())
    }

    fn on_watermark(&mut self, watermark: i64, _out: &mut Vec<Batch>) -> Result<(), ArrowError> {
        self.watermark = self.watermark.max(watermark);
        let w = self.watermark;
        if w == i64::MAX {
            self.left.clear();
            self.right.clear();
            return Ok(());
        }
        // Expired rows only cost memory, never correctness: sweep once per second of event
        // time rather than on every watermark.
        if w.saturating_sub(self.cleaned_at) < 1000 {
            return Ok(());
        }
        self.cleaned_at = w;
        // Future rows have ts >= w: a left row can still match while l.ts + upper >= w, a
        // right row while r.ts - lower >= w.
        let (lower, upper) = (self.lower, self.upper);
        for rows in self.left.values_mut() {
            rows.retain(|(ts, _)| ts.saturating_add(upper) >= w);
        }
        for rows in self.right.values_mut() {
            rows.retain(|(ts, _)| ts.saturating_sub(lower) >= w);
        }
        self.left.retain(|_, v| !v.is_empty());
        self.right.retain(|_, v| !v.is_empty());
        Ok(())
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}
