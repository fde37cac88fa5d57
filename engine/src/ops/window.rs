//! Windowed aggregation per key: tumbling, hopping (sliding) and session windows over event
//! time, with Flink's lateness rules.
//!
//! A row's lateness is judged against the watermark it saw at its source (`Batch::wm`), as a
//! chained Flink job at parallelism 1 judges it: a tumbling or hopping window takes the row
//! while `window_end - 1 > W`; a session takes it when the session it merges into ends after
//! `W + 1`. Windows fire when the watermark reaches `window_end - 1`.
//!
//! With an allowed lateness `L` (tumble and hop), a fired window keeps its state until the
//! watermark reaches `window_end - 1 + L`, as Flink's `allowedLateness`: a record for it that
//! arrives in that time is added and the window fires again at once with the updated result.
//! Records too late for every window they belong to are counted and, when the job names a
//! `late_output`, set aside for that side output with their columns, event time and watermark.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, UInt32Array};
use arrow::datatypes::{Field, Schema};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;

use super::aggregate::{Acc, Aggregates, Args};
use super::value::{FxMap, Val, column};
use super::{OpStats, Operator};
use crate::expr::{Expr, Ty, eval};
use crate::runtime::{Batch, MIN_WATERMARK, SchemaRef};

/// The kind of window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowKind {
    /// `[start, start + size)`, starts aligned to the epoch.
    Tumble {
        /// Length in ms.
        size: i64,
    },
    /// `[s, s + size)` for every `s` that is a multiple of `slide`.
    Hop {
        /// Length in ms.
        size: i64,
        /// Distance between starts in ms.
        slide: i64,
    },
    /// Per key, rows closer than `gap` belong together.
    Session {
        /// Gap in ms.
        gap: i64,
    },
}

/// What a column of the output holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutItem {
    /// The i-th key column.
    Key(usize),
    /// Window start (epoch ms).
    Start,
    /// Window end (epoch ms).
    End,
    /// The j-th aggregate.
    Agg(usize),
}

struct Session {
    start: i64,
    end: i64,
    min_ts: i64,
    max_ts: i64,
    accs: Vec<Acc>,
}

/// How a windowed aggregation treats late records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lateness {
    /// How long (ms) a fired tumbling or hopping window still takes late records.
    pub allowed: i64,
    /// Whether late records are set aside for a side output (else only counted).
    pub side_output: bool,
}

type Pane = FxMap<Vec<Val>, Vec<Acc>>;

/// Windowed aggregation of one subtask.
pub struct WindowAggregate {
    kind: WindowKind,
    lateness: Lateness,
    keys: Vec<Expr>,
    key_types: Vec<Ty>,
    aggs: Aggregates,
    items: Vec<OutItem>,
    schema: SchemaRef,
    /// Tumbling and hopping windows that have not fired, by end, then key.
    panes: BTreeMap<i64, Pane>,
    /// Fired windows kept for the allowed lateness, by end.
    fired: BTreeMap<i64, Pane>,
    /// Rows of the current input batch that were too late, and late batches set aside.
    late_rows: Vec<u32>,
    late_out: Vec<Batch>,
    /// Open sessions by key.
    sessions: FxMap<Vec<Val>, Vec<Session>>,
    watermark: i64,
    seq: u64,
    stats: OpStats,
}

impl WindowAggregate {
    /// An operator emitting `items` named `names`.
    pub fn new(
        kind: WindowKind,
        lateness: Lateness,
        keys: Vec<Expr>,
        aggs: Aggregates,
        items: Vec<(String, OutItem)>,
    ) -> Self {
        let key_types: Vec<Ty> = keys.iter().map(Expr::ty).collect();
        let fields: Vec<Field> = items
            .iter()
            .map(|(name, item)| {
                let ty = match item {
                    OutItem::Key(i) => key_types[*i],
                    OutItem::Start | OutItem::End => Ty::Int,
                    OutItem::Agg(j) => aggs.0[*j].ty(),
                };
                Field::new(name, ty.arrow(), false)
            })
            .collect();
        WindowAggregate {
            kind,
            lateness,
            keys,
            key_types,
            aggs,
            items: items.into_iter().map(|(_, i)| i).collect(),
            schema: Arc::new(Schema::new(fields)),
            panes: BTreeMap::new(),
            fired: BTreeMap::new(),
            late_rows: Vec::new(),
            late_out: Vec::new(),
            sessions: FxMap::default(),
            watermark: MIN_WATERMARK,
            seq: 0,
            stats: OpStats::default(),
        }
    }

    fn emit(
        &self,
        rows: Vec<(Vec<Val>, i64, i64, Vec<Val>)>,
        out: &mut Vec<Batch>,
    ) -> Result<(), ArrowError> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.items.len());
        for item in &self.items {
            columns.push(match item {
                OutItem::Key(i) => column(self.key_types[*i], rows.iter().map(|r| r.0[*i].clone())),
                OutItem::Start => Arc::new(rows.iter().map(|r| r.1).collect::<Int64Array>()),
                OutItem::End => Arc::new(rows.iter().map(|r| r.2).collect::<Int64Array>()),
                OutItem::Agg(j) => {
                    column(self.aggs.0[*j].ty(), rows.iter().map(|r| r.3[*j].clone()))
                }
            });
        }
        let rowtime: Int64Array = rows.iter().map(|r| r.2 - 1).collect();
        out.push(Batch {
            data: RecordBatch::try_new(self.schema.clone(), columns)?,
            rowtime: Some(rowtime),
            wm: None,
        });
        Ok(())
    }

    /// Adds a row to its session; false if it was too late for any.
    fn add_session(&mut self, key: Vec<Val>, ts: i64, wm: i64, accs: Vec<Acc>) -> bool {
        let WindowKind::Session { gap } = self.kind else {
            return false;
        };
        let (mut start, mut end) = (ts, ts + gap);
        let open = self.sessions.entry(key).or_default();
        let (mut min_ts, mut max_ts) = (ts, ts);
        let mut merged_accs = accs;
        let mut merged: Vec<Session> = Vec::new();
        let mut i = 0;
        while i < open.len() {
            let s = &open[i];
            // A session the row's watermark has passed has fired (its emission waits for the
            // next watermark message, but it takes no more rows).
            if s.start <= end && s.end >= start && s.end - 1 > wm {
                merged.push(open.swap_remove(i));
            } else {
                i += 1;
            }
        }
        for s in &merged {
            start = start.min(s.start);
            end = end.max(s.end);
        }
        if merged.is_empty() && end - 1 <= wm {
            return false;
        }
        for s in merged {
            min_ts = min_ts.min(s.min_ts);
            max_ts = max_ts.max(s.max_ts);
            self.aggs.merge(&mut merged_accs, s.accs);
        }
        open.push(Session {
            start,
            end,
            min_ts,
            max_ts,
            accs: merged_accs,
        });
        true
    }

    /// Adds row `row` (key `key`) to the tumbling or hopping window ending at `end`, as seen
    /// under watermark `wm`; false if that window is past its allowed lateness. A window the
    /// row's watermark has passed fires first (if it has not yet), then fires again with the
    /// row added.
    #[allow(
        clippy::too_many_arguments,
        reason = "one call site, all per-row state"
    )]
    fn add_to_pane(
        &mut self,
        end: i64,
        size: i64,
        key: &[Val],
        wm: i64,
        args: &Args,
        row: usize,
        rows: &mut Vec<(Vec<Val>, i64, i64, Vec<Val>)>,
    ) -> bool {
        let allowed = self.lateness.allowed;
        if end - 1 + allowed <= wm {
            return false;
        }
        if end - 1 > wm {
            let pane = self.panes.entry(end).or_default();
            let accs = match pane.get_mut(key) {
                Some(a) => a,
                None => pane.entry(key.to_vec()).or_insert_with(|| self.aggs.init()),
            };
            self.aggs.update(accs, args, row, self.seq);
            return true;
        }
        // Late, within the allowed lateness: the window has fired (or fires now).
        if let Some(pane) = self.panes.remove(&end) {
            for (k, accs) in &pane {
                rows.push((k.clone(), end - size, end, self.aggs.finish(accs)));
            }
            self.fired.insert(end, pane);
        }
        let pane = self.fired.entry(end).or_default();
        let accs = pane.entry(key.to_vec()).or_insert_with(|| self.aggs.init());
        self.aggs.update(accs, args, row, self.seq);
        rows.push((key.to_vec(), end - size, end, self.aggs.finish(accs)));
        true
    }
}

impl Operator for WindowAggregate {
    fn process(
        &mut self,
        _input: usize,
        batch: Batch,
        out: &mut Vec<Batch>,
    ) -> Result<(), ArrowError> {
        let n = batch.len();
        let rowtime = batch.rowtime.clone().ok_or_else(|| {
            ArrowError::InvalidArgumentError(
                "a window needs an event-time input (set watermark on its source)".into(),
            )
        })?;
        let key_cols: Vec<ArrayRef> = self
            .keys
            .iter()
            .map(|k| eval(k, &batch.data)?.into_array(n))
            .collect::<Result<_, _>>()?;
        let args = self.aggs.args(&batch.data)?;
        let current = self.watermark;
        let wm_of = |i: usize| {
            batch
                .wm
                .as_ref()
                .map_or(current, |w| w.value(i))
                .max(current)
        };
        let mut refired = Vec::new();
        for row in 0..n {
            let ts = rowtime.value(row);
            let wm = wm_of(row);
            let key: Vec<Val> = key_cols.iter().map(|c| Val::at(c.as_ref(), row)).collect();
            self.seq += 1;
            let counted = match self.kind {
                WindowKind::Tumble { size } => {
                    let end = ts - ts.rem_euclid(size) + size;
                    self.add_to_pane(end, size, &key, wm, &args, row, &mut refired)
                }
                WindowKind::Hop { size, slide } => {
                    let mut counted = false;
                    let mut start = ts - ts.rem_euclid(slide);
                    while start > ts - size {
                        counted |= self.add_to_pane(
                            start + size,
                            size,
                            &key,
                            wm,
                            &args,
                            row,
                            &mut refired,
                        );
                        start -= slide;
                    }
                    counted
                }
                WindowKind::Session { .. } => {
                    let mut accs = self.aggs.init();
                    self.aggs.update(&mut accs, &args, row, self.seq);
                    self.add_session(key, ts, wm, accs)
                }
            };
            if !counted {
                self.stats.late += 1;
                if self.lateness.side_output {
                    self.late_rows.push(row as u32);
                }
            }
        }
        if !self.late_rows.is_empty() {
            let rows = UInt32Array::from(std::mem::take(&mut self.late_rows));
            self.late_out.push(batch.take(&rows)?);
        }
        self.emit(refired, out)
    }

    fn take_late(&mut self, out: &mut Vec<Batch>) {
        out.append(&mut self.late_out);
    }

    fn on_watermark(&mut self, watermark: i64, out: &mut Vec<Batch>) -> Result<(), ArrowError> {
        self.watermark = self.watermark.max(watermark);
        let mut rows = Vec::new();
        match self.kind {
            WindowKind::Tumble { size } | WindowKind::Hop { size, .. } => {
                // Every window whose end - 1 <= W fires.
                let limit = watermark.saturating_add(1);
                let fired: Vec<i64> = self.panes.range(..=limit).map(|(e, _)| *e).collect();
                let keep = self.lateness.allowed > 0;
                for end in fired {
                    if let Some(pane) = self.panes.remove(&end) {
                        for (key, accs) in &pane {
                            rows.push((key.clone(), end - size, end, self.aggs.finish(accs)));
                        }
                        if keep {
                            self.fired.insert(end, pane);
                        }
                    }
                }
                // Windows past their allowed lateness are forgotten.
                let expired = watermark
                    .saturating_add(1)
                    .saturating_sub(self.lateness.allowed);
                while let Some(entry) = self.fired.first_entry() {
                    if *entry.key() > expired {
                        break;
                    }
                    entry.remove();
                }
            }
            WindowKind::Session { gap } => {
                for (key, open) in self.sessions.iter_mut() {
                    let mut i = 0;
                    while i < open.len() {
                        if open[i].end - 1 <= watermark {
                            let s = open.swap_remove(i);
                            rows.push((
                                key.clone(),
                                s.min_ts,
                                s.max_ts + gap,
                                self.aggs.finish(&s.accs),
                            ));
                        } else {
                            i += 1;
                        }
                    }
                }
                self.sessions.retain(|_, v| !v.is_empty());
            }
        }
        self.emit(rows, out)
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn stats(&self) -> OpStats {
        self.stats
    }
}
