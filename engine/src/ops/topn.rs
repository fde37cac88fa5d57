//! The best rows of each window: rows carrying `window_start`/`window_end` are kept per
//! window, ordered, and the first `n` (or, with ties, every row ranked `n` or better) emitted
//! when the watermark closes the window. Only rows that can still make the cut are kept: a
//! row worse than the n-th best so far never will.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Int64Array};
use arrow::datatypes::{Field, Schema};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;

use super::Operator;
use super::value::{FxMap, Val, column};
use crate::batch::{Batch, SchemaRef};
use crate::expr::{Expr, Ty, eval};
use crate::snapshot::{StateIn, StateOut, decode, encode};

/// Rows of one window that can still make the cut, best first (ties in arrival order):
/// (sort key, row).
type Candidates = Vec<(Vec<Val>, Vec<Val>)>;

/// Top-N per window.
pub struct TopN {
    n: usize,
    with_ties: bool,
    order: Vec<(Expr, bool)>,
    start_col: usize,
    end_col: usize,
    input_types: Vec<Ty>,
    schema: SchemaRef,
    numbered: bool,
    /// Buffered rows by window end, then window start: (sort key, row).
    windows: BTreeMap<i64, FxMap<i64, Candidates>>,
}

impl TopN {
    /// `n` rows per window ordered by `order` (expression, ascending).
    pub fn new(
        n: usize,
        with_ties: bool,
        order: Vec<(Expr, bool)>,
        start_col: usize,
        end_col: usize,
        input: SchemaRef,
        number_as: Option<String>,
    ) -> Self {
        let input_types: Vec<Ty> = input
            .fields()
            .iter()
            .map(|f| crate::expr::ty_of(f.data_type()).unwrap_or(Ty::Str))
            .collect();
        let mut fields: Vec<Field> = input.fields().iter().map(|f| f.as_ref().clone()).collect();
        if let Some(name) = &number_as {
            fields.push(Field::new(name, crate::expr::arrow_type(Ty::Int), false));
        }
        TopN {
            n,
            with_ties,
            order,
            start_col,
            end_col,
            input_types,
            schema: Arc::new(Schema::new(fields)),
            numbered: number_as.is_some(),
            windows: BTreeMap::new(),
        }
    }

    /// Whether a row with sort key `key` can be among the best `n` of `kept`.
    fn admits(&self, kept: &Candidates, key: &[Val]) -> bool {
        match kept.get(self.n - 1) {
            None => true,
            // With ties, a row equal to the n-th is ranked n; without, it comes after it.
            Some((nth, _)) => match self.compare(key, nth) {
                Ordering::Less => true,
                Ordering::Equal => self.with_ties,
                Ordering::Greater => false,
            },
        }
    }

    fn compare(&self, a: &[Val], b: &[Val]) -> Ordering {
        for ((_, asc), (x, y)) in self.order.iter().zip(a.iter().zip(b)) {
            let o = x.cmp(y);
            let o = if *asc { o } else { o.reverse() };
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    }
}

impl Operator for TopN {
    fn process(
        &mut self,
        _input: usize,
        batch: Batch,
        _out: &mut Vec<Batch>,
    ) -> Result<(), ArrowError> {
        let n = batch.len();
        let keys: Vec<ArrayRef> = self
            .order
            .iter()
            .map(|(e, _)| eval(e, &batch.data)?.into_array(n))
            .collect::<Result<_, _>>()?;
        let starts = batch
            .data
            .column(self.start_col)
            .as_any()
            .downcast_ref::<Int64Array>()
            .cloned()
            .ok_or_else(|| ArrowError::CastError("window_start must be BIGINT".into()))?;
        let ends = batch
            .data
            .column(self.end_col)
            .as_any()
            .downcast_ref::<Int64Array>()
            .cloned()
            .ok_or_else(|| ArrowError::CastError("window_end must be BIGINT".into()))?;
        let mut key: Vec<Val> = Vec::with_capacity(keys.len());
        let mut windows = std::mem::take(&mut self.windows);
        for row in 0..n {
            key.clear();
            key.extend(keys.iter().map(|k| Val::at(k.as_ref(), row)));
            let kept = windows
                .entry(ends.value(row))
                .or_default()
                .entry(starts.value(row))
                .or_default();
            if !self.admits(kept, &key) {
                continue;
            }
            let values: Vec<Val> = batch
                .data
                .columns()
                .iter()
                .map(|c| Val::at(c.as_ref(), row))
                .collect();
            // After every row not worse than it (ties keep arrival order).
            let at = kept.partition_point(|(k, _)| self.compare(k, &key) != Ordering::Greater);
            kept.insert(at, (key.clone(), values));
            // Drop what can no longer make the cut.
            if kept.len() > self.n {
                let keep = if self.with_ties {
                    let nth = kept[self.n - 1].0.clone();
                    kept.partition_point(|(k, _)| self.compare(k, &nth) != Ordering::Greater)
                } else {
                    self.n
                };
                kept.truncate(keep);
            }
        }
        self.windows = windows;
        Ok(())
    }

    fn on_watermark(&mut self, watermark: i64, out: &mut Vec<Batch>) -> Result<(), ArrowError> {
        let limit = watermark.saturating_add(1);
        let closed: Vec<i64> = self.windows.range(..=limit).map(|(e, _)| *e).collect();
        let mut rows: Vec<(Vec<Val>, i64, i64)> = Vec::new();
        for end in closed {
            let Some(by_start) = self.windows.remove(&end) else {
                continue;
            };
            for (_, candidates) in by_start {
                let mut rank = 0usize;
                for (i, (key, values)) in candidates.iter().enumerate() {
                    let number = if self.with_ties {
                        if i == 0 || self.compare(&candidates[i - 1].0, key) != Ordering::Equal {
                            rank = i + 1;
                        }
                        rank
                    } else {
                        i + 1
                    };
                    if number > self.n {
                        break;
                    }
                    rows.push((values.clone(), number as i64, end - 1));
                }
            }
        }
        if rows.is_empty() {
            return Ok(());
        }
        let mut columns: Vec<ArrayRef> = self
            .input_types
            .iter()
            .enumerate()
            .map(|(i, t)| column(*t, rows.iter().map(|r| r.0[i].clone())))
            .collect();
        if self.numbered {
            columns.push(Arc::new(rows.iter().map(|r| r.1).collect::<Int64Array>()));
        }
        let rowtime: Int64Array = rows.iter().map(|r| r.2).collect();
        out.push(Batch {
            data: RecordBatch::try_new(self.schema.clone(), columns)?,
            rowtime: Some(rowtime),
            wm: None,
        });
        Ok(())
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn state_kind(&self) -> Option<&'static str> {
        Some("top-n")
    }

    fn snapshot(&self, out: &mut StateOut) -> Result<(), ArrowError> {
        for (end, by_start) in &self.windows {
            for (start, kept) in by_start {
                // Rows are routed by the hash of (window_start, window_end).
                let hash = super::value::hash_vals(&[Val::I(*start), Val::I(*end)]);
                out.keyed.push((hash, encode(&(*end, *start, kept))));
            }
        }
        Ok(())
    }

    fn restore(&mut self, state: StateIn) -> Result<(), ArrowError> {
        for (_, bytes) in &state.keyed {
            let (end, start, kept): (i64, i64, Candidates) = decode(bytes)?;
            self.windows.entry(end).or_default().insert(start, kept);
        }
        Ok(())
    }
}
