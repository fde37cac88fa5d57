//! Deduplication: the first row per key by event time (Flink's `Deduplicate(keep=FirstRow,
//! order=ROWTIME)`), emitted once, when the watermark passes its event time. With a state
//! TTL, a key is forgotten once the watermark passes its first row's time plus the TTL: a
//! later row of that key is a first row again (Flink's `table.exec.state.ttl`, measured here
//! in event time so that results do not depend on how fast the job runs).

use std::collections::BTreeMap;

use arrow::array::{ArrayRef, Int64Array};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;

use super::value::{FxMap, Val, column};
use super::{OpStats, Operator};
use crate::batch::{Batch, MIN_WATERMARK, SchemaRef};
use crate::expr::{Expr, Ty, eval};
use crate::snapshot::{StateIn, StateOut, decode, encode};

/// A key's snapshot entry: key, state, when it is forgotten.
type Entry = (Vec<Val>, KeyState, Option<(i64, u64)>);

#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct KeyState {
    emitted: bool,
    /// The pending row, with its timer's sequence number.
    pending: Option<(i64, u64, Vec<Val>)>,
}

/// Keeps each key's earliest row.
pub struct Deduplicate {
    keys: Vec<Expr>,
    types: Vec<Ty>,
    schema: SchemaRef,
    state: FxMap<Vec<Val>, KeyState>,
    /// Event-time timers of pending rows: (ts, sequence) → key.
    timers: BTreeMap<(i64, u64), Vec<Val>>,
    /// How long (ms of event time) an emitted key is remembered; None: forever.
    ttl: Option<i64>,
    /// When emitted keys are forgotten: (time, sequence) → key.
    expiry: BTreeMap<(i64, u64), Vec<Val>>,
    seq: u64,
    watermark: i64,
    stats: OpStats,
}

impl Deduplicate {
    /// Dedup on `keys` of rows with `schema`.
    pub fn new(keys: Vec<Expr>, schema: SchemaRef, ttl: Option<i64>) -> Self {
        let types = schema
            .fields()
            .iter()
            .map(|f| crate::expr::ty_of(f.data_type()).unwrap_or(Ty::Str))
            .collect();
        Deduplicate {
            keys,
            types,
            schema,
            state: FxMap::default(),
            timers: BTreeMap::new(),
            ttl,
            expiry: BTreeMap::new(),
            seq: 0,
            watermark: MIN_WATERMARK,
            stats: OpStats::default(),
        }
    }

    /// The watermark rose: pending rows with `ts <= watermark` are final.
    fn rise(&mut self, watermark: i64, ready: &mut Vec<(i64, Vec<Val>)>) {
        if watermark <= self.watermark {
            return;
        }
        self.watermark = watermark;
        while let Some(entry) = self.timers.first_entry() {
            if entry.key().0 > watermark {
                break;
            }
            let (ts, seq) = *entry.key();
            let key = entry.remove();
            if let Some(st) = self.state.get_mut(&key)
                && let Some((ts, _, row)) = st.pending.take()
            {
                ready.push((ts, row));
                st.emitted = true;
            }
            if let Some(ttl) = self.ttl {
                self.expiry.insert((ts.saturating_add(ttl), seq), key);
            }
        }
        while let Some(entry) = self.expiry.first_entry() {
            if entry.key().0 > watermark {
                break;
            }
            let key = entry.remove();
            self.state.remove(&key);
        }
    }

    fn emit(&self, rows: Vec<(i64, Vec<Val>)>, out: &mut Vec<Batch>) -> Result<(), ArrowError> {
        if rows.is_empty() {
            return Ok(());
        }
        let columns: Vec<ArrayRef> = self
            .types
            .iter()
            .enumerate()
            .map(|(i, t)| column(*t, rows.iter().map(|r| r.1[i].clone())))
            .collect();
        let rowtime: Int64Array = rows.iter().map(|r| r.0).collect();
        out.push(Batch {
            data: RecordBatch::try_new(self.schema.clone(), columns)?,
            rowtime: Some(rowtime),
            wm: None,
        });
        Ok(())
    }
}

impl Operator for Deduplicate {
    fn process(
        &mut self,
        _input: usize,
        batch: Batch,
        out: &mut Vec<Batch>,
    ) -> Result<(), ArrowError> {
        let n = batch.len();
        let rowtime = batch.rowtime.clone().ok_or_else(|| {
            ArrowError::InvalidArgumentError("deduplicate needs an event-time input".into())
        })?;
        let key_cols: Vec<ArrayRef> = self
            .keys
            .iter()
            .map(|k| eval(k, &batch.data)?.into_array(n))
            .collect::<Result<_, _>>()?;
        let mut ready = Vec::new();
        for row in 0..n {
            let w = batch.wm.as_ref().map_or(self.watermark, |w| w.value(row));
            self.rise(w, &mut ready);
            let w = self.watermark;
            let ts = rowtime.value(row);
            if ts < w {
                self.stats.late += 1;
                continue;
            }
            let key: Vec<Val> = key_cols.iter().map(|c| Val::at(c.as_ref(), row)).collect();
            let st = self.state.entry(key.clone()).or_insert(KeyState {
                emitted: false,
                pending: None,
            });
            if st.emitted {
                continue;
            }
            if st.pending.as_ref().is_none_or(|(p, _, _)| ts < *p) {
                let values = batch
                    .data
                    .columns()
                    .iter()
                    .map(|c| Val::at(c.as_ref(), row))
                    .collect();
                self.seq += 1;
                if let Some((old_ts, old_seq, _)) = st.pending.replace((ts, self.seq, values)) {
                    self.timers.remove(&(old_ts, old_seq));
                }
                self.timers.insert((ts, self.seq), key);
            }
        }
        self.emit(ready, out)
    }

    fn on_watermark(&mut self, watermark: i64, out: &mut Vec<Batch>) -> Result<(), ArrowError> {
        let mut ready = Vec::new();
        self.rise(watermark, &mut ready);
        self.emit(ready, out)
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn stats(&self) -> OpStats {
        self.stats
    }

    fn state_kind(&self) -> Option<&'static str> {
        Some("dedup")
    }

    fn snapshot(&self, out: &mut StateOut) -> Result<(), ArrowError> {
        out.scalar = encode(&(self.seq, self.watermark));
        let expiry: FxMap<&Vec<Val>, (i64, u64)> =
            self.expiry.iter().map(|(at, key)| (key, *at)).collect();
        for (key, st) in &self.state {
            let entry: Entry = (key.clone(), st.clone(), expiry.get(key).copied());
            out.keyed
                .push((super::value::hash_vals(key), encode(&entry)));
        }
        Ok(())
    }

    fn restore(&mut self, state: StateIn) -> Result<(), ArrowError> {
        let mut watermark = None;
        for scalar in &state.scalars {
            let (seq, wm): (u64, i64) = decode(scalar)?;
            self.seq = self.seq.max(seq);
            watermark = Some(watermark.map_or(wm, |w: i64| w.min(wm)));
        }
        self.watermark = watermark.unwrap_or(MIN_WATERMARK);
        for (_, bytes) in &state.keyed {
            let (key, st, expires): Entry = decode(bytes)?;
            if let Some((ts, seq, _)) = &st.pending {
                self.timers.insert((*ts, *seq), key.clone());
            }
            if let Some(at) = expires {
                self.expiry.insert(at, key.clone());
            }
            self.state.insert(key, st);
        }
        Ok(())
    }
}
