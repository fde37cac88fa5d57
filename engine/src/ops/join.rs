//! Interval join of two keyed streams on event time: a left row `l` and a right row `r`
//! with equal keys join when `l.ts + lower <= r.ts <= l.ts + upper`. Rows are kept until no
//! future row of the other side can match them.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Int64Array};
use arrow::compute::interleave;
use arrow::datatypes::{Field, Schema};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;

use super::Operator;
use super::value::{FxMap, Key, KeyColumns};
use crate::batch::{Batch, MIN_WATERMARK, SchemaRef};
use crate::expr::{Expr, eval};
use crate::snapshot::{StateIn, StateOut, decode, encode};

/// A buffered row: event time, batch, row.
type RowRef = (i64, u64, u32);

/// The rows of one key: most keys have one, kept without a heap allocation.
enum Rows {
    One(RowRef),
    Many(Vec<RowRef>),
}

impl Rows {
    fn as_slice(&self) -> &[RowRef] {
        match self {
            Rows::One(r) => std::slice::from_ref(r),
            Rows::Many(v) => v,
        }
    }

    fn push(&mut self, r: RowRef) {
        match self {
            Rows::One(first) => *self = Rows::Many(vec![*first, r]),
            Rows::Many(v) => v.push(r),
        }
    }

    /// Keeps the rows `keep` accepts; false if none is left.
    fn retain(&mut self, keep: impl Fn(&RowRef) -> bool) -> bool {
        match self {
            Rows::One(r) => keep(r),
            Rows::Many(v) => {
                v.retain(|r| keep(r));
                !v.is_empty()
            }
        }
    }
}

/// A buffered batch: its rows, their event times and key hashes, and the highest event time.
struct Stored {
    rows: RecordBatch,
    times: Int64Array,
    hashes: arrow::array::UInt64Array,
    max_ts: i64,
}

/// One input's buffered rows: the batches they arrived in (rows stay columnar), an index from
/// key to rows, and the order in which index entries expire.
#[derive(Default)]
struct Side {
    /// Batches by arrival number, with the highest event time in each.
    batches: BTreeMap<u64, Stored>,
    next: u64,
    /// Key → its rows.
    index: FxMap<Key, Rows>,
    /// Index entries in arrival order, for expiring them.
    expiry: VecDeque<(i64, Key)>,
}

impl Side {
    /// Keeps a batch (its rows, event times and evaluated key columns); its number, and
    /// the key columns for indexing its rows.
    fn store(
        &mut self,
        rows: RecordBatch,
        times: Int64Array,
        key_arrays: Vec<ArrayRef>,
    ) -> (u64, KeyColumns) {
        let id = self.next;
        self.next += 1;
        let max_ts = times
            .values()
            .iter()
            .copied()
            .max()
            .unwrap_or(MIN_WATERMARK);
        let hashes = crate::hash::hash_rows(&key_arrays, rows.num_rows()).into();
        self.batches.insert(
            id,
            Stored {
                rows,
                times,
                hashes,
                max_ts,
            },
        );
        (id, KeyColumns::new(key_arrays))
    }

    /// Indexes row `row` of batch `id` under `key`.
    fn index_row(&mut self, key: Key, ts: i64, id: u64, row: usize) {
        self.expiry.push_back((ts, key.clone()));
        let entry = (ts, id, row as u32);
        match self.index.get_mut(&key) {
            Some(rows) => rows.push(entry),
            None => {
                self.index.insert(key, Rows::One(entry));
            }
        }
    }

    /// Drops rows with `keep(ts)` false: index entries in arrival order (event time is out of
    /// order only within the watermark delay, so they expire close to in order) and whole
    /// batches whose every row is gone.
    fn expire(&mut self, keep: impl Fn(i64) -> bool) {
        while let Some((ts, _)) = self.expiry.front() {
            if keep(*ts) {
                break;
            }
            let Some((_, key)) = self.expiry.pop_front() else {
                break;
            };
            if let Some(rows) = self.index.get_mut(&key)
                && !rows.retain(|(ts, _, _)| keep(*ts))
            {
                self.index.remove(&key);
            }
        }
        self.batches.retain(|_, b| keep(b.max_ts));
    }
}

/// Interval join of one subtask.
pub struct IntervalJoin {
    left_keys: Vec<Expr>,
    right_keys: Vec<Expr>,
    lower: i64,
    upper: i64,
    sides: [Side; 2],
    schema: SchemaRef,
    watermark: i64,
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
            sides: [Side::default(), Side::default()],
            schema: Arc::new(Schema::new(fields)),
            watermark: MIN_WATERMARK,
        }
    }

    /// The columns of rows `picks` (batch, row) of one side's buffered batches.
    fn gather(side: &Side, picks: &[(u64, u32)]) -> Result<Vec<ArrayRef>, ArrowError> {
        let mut ids: Vec<u64> = picks.iter().map(|p| p.0).collect();
        ids.sort_unstable();
        ids.dedup();
        let batches: Vec<&RecordBatch> = ids
            .iter()
            .map(|id| {
                side.batches.get(id).map(|b| &b.rows).ok_or_else(|| {
                    ArrowError::InvalidArgumentError("a joined row's batch was dropped".into())
                })
            })
            .collect::<Result<_, _>>()?;
        let indices: Vec<(usize, usize)> = picks
            .iter()
            .map(|(id, row)| (ids.binary_search(id).unwrap_or(0), *row as usize))
            .collect();
        let width = batches.first().map_or(0, |b| b.num_columns());
        (0..width)
            .map(|c| {
                let arrays: Vec<&dyn Array> =
                    batches.iter().map(|b| b.column(c).as_ref()).collect();
                interleave(&arrays, &indices)
            })
            .collect()
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
        if n == 0 {
            return Ok(());
        }
        let rowtime = batch.rowtime.clone().ok_or_else(|| {
            ArrowError::InvalidArgumentError("an interval join needs event-time inputs".into())
        })?;
        let keys = if input == 0 {
            &self.left_keys
        } else {
            &self.right_keys
        };
        let key_arrays: Vec<ArrayRef> = keys
            .iter()
            .map(|k| eval(k, &batch.data)?.into_array(n))
            .collect::<Result<_, _>>()?;
        let (lower, upper) = (self.lower, self.upper);
        let [left, right] = &mut self.sides;
        let (own, other) = if input == 0 {
            (left, &*right)
        } else {
            (right, &*left)
        };
        let (id, key_cols) = own.store(batch.data.clone(), rowtime.clone(), key_arrays);
        // (left pick, right pick, event time of the result)
        let (mut lefts, mut rights, mut times) = (Vec::new(), Vec::new(), Vec::new());
        for row in 0..n {
            let ts = rowtime.value(row);
            let key = key_cols.key(row);
            if let Some(matches) = other.index.get(&key) {
                for (ots, ob, orow) in matches.as_slice() {
                    let (lts, rts) = if input == 0 { (ts, *ots) } else { (*ots, ts) };
                    if lts + lower <= rts && rts <= lts + upper && other.batches.contains_key(ob) {
                        let (mine, theirs) = ((id, row as u32), (*ob, *orow));
                        if input == 0 {
                            lefts.push(mine);
                            rights.push(theirs);
                        } else {
                            lefts.push(theirs);
                            rights.push(mine);
                        }
                        times.push(lts.max(rts));
                    }
                }
            }
            own.index_row(key, ts, id, row);
        }
        if times.is_empty() {
            return Ok(());
        }
        let mut columns = Self::gather(&self.sides[0], &lefts)?;
        columns.extend(Self::gather(&self.sides[1], &rights)?);
        out.push(Batch {
            data: RecordBatch::try_new(self.schema.clone(), columns)?,
            rowtime: Some(Int64Array::from(times)),
            wm: None,
        });
        Ok(())
    }

    fn state_kind(&self) -> Option<&'static str> {
        Some("interval-join")
    }

    fn snapshot(&self, out: &mut StateOut) -> Result<(), ArrowError> {
        out.scalar = encode(&self.watermark);
        // Whole retained batches, with each row's key hash and event time: no copying here
        // (rows that expired ride along and expire again after a restore).
        for (tag, side) in self.sides.iter().enumerate() {
            for stored in side.batches.values() {
                let mut fields = vec![
                    Field::new("__hash", arrow::datatypes::DataType::UInt64, false),
                    Field::new("__ts", arrow::datatypes::DataType::Int64, false),
                ];
                fields.extend(
                    stored
                        .rows
                        .schema()
                        .fields()
                        .iter()
                        .map(|f| f.as_ref().clone()),
                );
                let mut columns: Vec<ArrayRef> = vec![
                    Arc::new(stored.hashes.clone()),
                    Arc::new(stored.times.clone()),
                ];
                columns.extend(stored.rows.columns().iter().cloned());
                out.batches.push((
                    tag as u8,
                    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?,
                ));
            }
        }
        Ok(())
    }

    fn restore(&mut self, state: StateIn) -> Result<(), ArrowError> {
        for scalar in &state.scalars {
            let wm: i64 = decode(scalar)?;
            self.watermark = if self.watermark == MIN_WATERMARK {
                wm
            } else {
                self.watermark.min(wm)
            };
        }
        for (tag, batch) in state.batches {
            let side_index = usize::from(tag.min(1));
            let times = batch
                .column(0)
                .as_any()
                .downcast_ref::<Int64Array>()
                .cloned()
                .ok_or_else(|| ArrowError::ParseError("join state lacks __ts".into()))?;
            let rows = batch.project(&(1..batch.num_columns()).collect::<Vec<_>>())?;
            let keys = if side_index == 0 {
                &self.left_keys
            } else {
                &self.right_keys
            };
            let n = rows.num_rows();
            let key_arrays: Vec<ArrayRef> = keys
                .iter()
                .map(|k| eval(k, &rows)?.into_array(n))
                .collect::<Result<_, _>>()?;
            let side = &mut self.sides[side_index];
            let (id, key_cols) = side.store(rows, times.clone(), key_arrays);
            for row in 0..n {
                side.index_row(key_cols.key(row), times.value(row), id, row);
            }
        }
        Ok(())
    }

    fn on_watermark(&mut self, watermark: i64, _out: &mut Vec<Batch>) -> Result<(), ArrowError> {
        self.watermark = self.watermark.max(watermark);
        let w = self.watermark;
        if w == i64::MAX {
            self.sides = [Side::default(), Side::default()];
            return Ok(());
        }
        // Future rows have ts >= w: a left row can still match while l.ts + upper >= w, a
        // right row while r.ts - lower >= w.
        let (lower, upper) = (self.lower, self.upper);
        self.sides[0].expire(|ts| ts.saturating_add(upper) >= w);
        self.sides[1].expire(|ts| ts.saturating_sub(lower) >= w);
        Ok(())
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}
