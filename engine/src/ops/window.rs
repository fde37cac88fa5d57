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
use super::value::{FxMap, Key, KeyColumns, Val, column};
use super::{OpStats, Operator};
use crate::batch::{Batch, MIN_WATERMARK, SchemaRef};
use crate::expr::{Expr, Ty, eval};
use crate::snapshot::{StateIn, StateOut, decode, encode};

/// A keyed entry of a window's snapshot.
#[derive(serde::Serialize, serde::Deserialize)]
enum Entry {
    /// A slice (by end) of one key.
    Slice(i64, Key, Vec<Acc>),
    /// A single window's (by end) additions of one key.
    Extra(i64, Key, Vec<Acc>),
    /// A fired window kept for the allowed lateness.
    Fired(i64, Key, Vec<Acc>),
    /// A key's open sessions.
    Sessions(Key, Vec<Session>),
}

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

pub use strom_jobspec::typing::OutItem;

/// How a windowed aggregation treats late records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Lateness {
    /// How long (ms) a fired tumbling or hopping window still takes late records.
    pub allowed: i64,
    /// Whether late records are set aside for a side output (else only counted).
    pub side_output: bool,
}

#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct Session {
    start: i64,
    end: i64,
    min_ts: i64,
    max_ts: i64,
    accs: Vec<Acc>,
}

type Pane = FxMap<Key, Vec<Acc>>;

/// Result rows gathered before they become a batch.
#[derive(Default)]
struct Rows {
    keys: Vec<Key>,
    starts: Vec<i64>,
    ends: Vec<i64>,
    /// Aggregate results, row after row.
    values: Vec<Val>,
}

impl Rows {
    fn push(&mut self, aggs: &Aggregates, key: Key, start: i64, end: i64, accs: &[Acc]) {
        self.keys.push(key);
        self.starts.push(start);
        self.ends.push(end);
        aggs.finish_into(accs, &mut self.values);
    }
}

/// Windowed aggregation of one subtask.
pub struct WindowAggregate {
    kind: WindowKind,
    lateness: Lateness,
    keys: Vec<Expr>,
    key_types: Vec<Ty>,
    aggs: Aggregates,
    items: Vec<OutItem>,
    schema: SchemaRef,
    /// Tumbling and hopping windows: slices by end.
    slices: BTreeMap<i64, Pane>,
    /// Additions to single windows (by end) of rows late for some of their windows.
    extras: BTreeMap<i64, Pane>,
    /// Fired windows kept for the allowed lateness, by end.
    fired: BTreeMap<i64, Pane>,
    /// Every window with `end - 1` at or below this has fired.
    fired_wm: i64,
    /// Rows of the current input batch that were too late, and late batches set aside.
    late_rows: Vec<u32>,
    late_out: Vec<Batch>,
    /// Open sessions by key.
    sessions: FxMap<Key, Vec<Session>>,
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
                Field::new(name, crate::expr::arrow_type(ty), false)
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
            slices: BTreeMap::new(),
            extras: BTreeMap::new(),
            fired: BTreeMap::new(),
            fired_wm: MIN_WATERMARK,
            late_rows: Vec::new(),
            late_out: Vec::new(),
            sessions: FxMap::default(),
            seq: 0,
            stats: OpStats::default(),
        }
    }

    /// `(size, slide)` of tumbling (slide = size) and hopping windows.
    fn size_slide(&self) -> Option<(i64, i64)> {
        match self.kind {
            WindowKind::Tumble { size } => Some((size, size)),
            WindowKind::Hop { size, slide } => Some((size, slide)),
            WindowKind::Session { .. } => None,
        }
    }

    fn emit(&self, rows: Rows, out: &mut Vec<Batch>) -> Result<(), ArrowError> {
        let n = rows.keys.len();
        if n == 0 {
            return Ok(());
        }
        let m = self.aggs.0.len();
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(self.items.len());
        for item in &self.items {
            columns.push(match item {
                OutItem::Key(i) => column(
                    self.key_types[*i],
                    rows.keys.iter().map(|k| k.get(*i).clone()),
                ),
                OutItem::Start => Arc::new(Int64Array::from(rows.starts.clone())),
                OutItem::End => Arc::new(Int64Array::from(rows.ends.clone())),
                OutItem::Agg(j) => column(
                    self.aggs.0[*j].ty(),
                    (0..n).map(|r| rows.values[r * m + j].clone()),
                ),
            });
        }
        let rowtime: Int64Array = rows.ends.iter().map(|e| e - 1).collect();
        out.push(Batch {
            data: RecordBatch::try_new(self.schema.clone(), columns)?,
            rowtime: Some(rowtime),
            wm: None,
        });
        Ok(())
    }

    /// The end of the first window after the fired ones that has rows, if any.
    fn next_window_end(&self, size: i64, slide: i64) -> Option<i64> {
        let after = self.fired_wm.saturating_add(1);
        let from_slices = self
            .slices
            .range(after.saturating_sub(size).saturating_add(slide + 1)..)
            .next()
            .map(|(end, _)| {
                if *end > after {
                    *end
                } else {
                    after - after.rem_euclid(slide) + slide
                }
            });
        let from_extras = self
            .extras
            .range(after.saturating_add(1)..)
            .next()
            .map(|(end, _)| *end);
        match (from_slices, from_extras) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Fires, in order, every window with `end - 1 <= watermark` that has not fired.
    fn fire_through(&mut self, watermark: i64, rows: &mut Rows) {
        let Some((size, slide)) = self.size_slide() else {
            return;
        };
        while let Some(end) = self.next_window_end(size, slide) {
            if end - 1 > watermark {
                break;
            }
            // The oldest slice of this window belongs to no later window: take it as the
            // base and merge the others into it.
            let oldest = end - size + slide;
            let mut pane = self.slices.remove(&oldest).unwrap_or_default();
            let younger = if size > slide {
                self.slices.range(oldest + 1..=end)
            } else {
                self.slices.range(0..0)
            };
            for (_, slice) in younger {
                for (key, accs) in slice {
                    match pane.get_mut(key) {
                        Some(into) => self.aggs.merge_ref(into, accs),
                        None => {
                            pane.insert(key.clone(), accs.clone());
                        }
                    }
                }
            }
            if let Some(extra) = self.extras.remove(&end) {
                for (key, accs) in extra {
                    match pane.get_mut(&key) {
                        Some(into) => self.aggs.merge(into, accs),
                        None => {
                            pane.insert(key, accs);
                        }
                    }
                }
            }
            while let Some(first) = self.slices.first_entry() {
                if *first.key() > oldest {
                    break;
                }
                first.remove();
            }
            for (key, accs) in &pane {
                rows.push(&self.aggs, key.clone(), end - size, end, accs);
            }
            if self.lateness.allowed > 0 {
                self.fired.insert(end, pane);
            }
            self.fired_wm = end - 1;
        }
        self.fired_wm = self.fired_wm.max(watermark);
        // Windows past their allowed lateness are forgotten.
        let expired = watermark
            .saturating_add(1)
            .saturating_sub(self.lateness.allowed);
        while let Some(first) = self.fired.first_entry() {
            if *first.key() > expired {
                break;
            }
            first.remove();
        }
    }

    /// Adds a row of a tumbling or hopping window; false if it was too late for all of its
    /// windows.
    #[allow(
        clippy::too_many_arguments,
        reason = "one call site, all per-row state"
    )]
    fn add_row(
        &mut self,
        key: Key,
        ts: i64,
        wm: i64,
        args: &Args,
        row: usize,
        rows: &mut Rows,
    ) -> bool {
        let Some((size, slide)) = self.size_slide() else {
            return false;
        };
        let slice_end = ts - ts.rem_euclid(slide) + slide;
        // On time for every window it belongs to (the earliest ends at its slice's end).
        if slice_end - 1 > wm {
            let slice = self.slices.entry(slice_end).or_default();
            let accs = match slice.get_mut(&key) {
                Some(a) => a,
                None => slice.entry(key).or_insert_with(|| self.aggs.init()),
            };
            self.aggs.update(accs, args, row, self.seq);
            return true;
        }
        let allowed = self.lateness.allowed;
        let mut counted = false;
        let mut end = slice_end;
        while end <= slice_end - slide + size {
            if end - 1 + allowed <= wm {
                end += slide;
                continue;
            }
            counted = true;
            if end - 1 > wm {
                let pane = self.extras.entry(end).or_default();
                let accs = pane.entry(key.clone()).or_insert_with(|| self.aggs.init());
                self.aggs.update(accs, args, row, self.seq);
            } else {
                // Late within the allowed lateness: the window has fired (or fires now), and
                // fires again with the row added.
                if end - 1 > self.fired_wm {
                    self.fire_through(wm, rows);
                }
                let pane = self.fired.entry(end).or_default();
                let accs = pane.entry(key.clone()).or_insert_with(|| self.aggs.init());
                self.aggs.update(accs, args, row, self.seq);
                rows.push(&self.aggs, key.clone(), end - size, end, accs);
            }
            end += slide;
        }
        counted
    }

    /// Adds a row to its session; false if it was too late for any.
    fn add_session(&mut self, key: Key, ts: i64, wm: i64, accs: Vec<Acc>) -> bool {
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
}

/// 0001-01-01T00:00:00Z in epoch milliseconds: the earliest event time a window takes.
pub const MIN_EVENT_TIME: i64 = -62_135_596_800_000;
/// 9999-12-31T23:59:59.999Z in epoch milliseconds: the latest event time a window takes.
pub const MAX_EVENT_TIME: i64 = 253_402_300_799_999;

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
        let key_cols = KeyColumns::new(
            self.keys
                .iter()
                .map(|k| eval(k, &batch.data)?.into_array(n))
                .collect::<Result<_, _>>()?,
        );
        let args = self.aggs.args(&batch.data)?;
        let mut rows = Rows::default();
        for row in 0..n {
            let ts = rowtime.value(row);
            // Window starts and ends are event time plus or minus sizes, slides, gaps and
            // lateness (each at most ~292 000 years): inside years 1–9999 none can overflow.
            if !(MIN_EVENT_TIME..=MAX_EVENT_TIME).contains(&ts) {
                return Err(ArrowError::InvalidArgumentError(format!(
                    "a record's event time {ts} ms is outside the years 0001-9999 that windows can place"
                )));
            }
            // The watermark the row saw at its source, and never below what has fired here.
            let wm = batch
                .wm
                .as_ref()
                .map_or(self.fired_wm, |w| w.value(row))
                .max(self.fired_wm);
            let key = key_cols.key(row);
            self.seq += 1;
            let counted = match self.kind {
                WindowKind::Tumble { .. } | WindowKind::Hop { .. } => {
                    self.add_row(key, ts, wm, &args, row, &mut rows)
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
        self.emit(rows, out)
    }

    fn take_late(&mut self, out: &mut Vec<Batch>) {
        out.append(&mut self.late_out);
    }

    fn on_watermark(&mut self, watermark: i64, out: &mut Vec<Batch>) -> Result<(), ArrowError> {
        let mut rows = Rows::default();
        match self.kind {
            WindowKind::Tumble { .. } | WindowKind::Hop { .. } => {
                self.fire_through(watermark, &mut rows);
            }
            WindowKind::Session { gap } => {
                self.fired_wm = self.fired_wm.max(watermark);
                for (key, open) in self.sessions.iter_mut() {
                    let mut i = 0;
                    while i < open.len() {
                        if open[i].end - 1 <= watermark {
                            let s = open.swap_remove(i);
                            rows.push(&self.aggs, key.clone(), s.min_ts, s.max_ts + gap, &s.accs);
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

    fn state_kind(&self) -> Option<&'static str> {
        Some(match self.kind {
            WindowKind::Tumble { .. } => "window-tumble",
            WindowKind::Hop { .. } => "window-hop",
            WindowKind::Session { .. } => "window-session",
        })
    }

    fn snapshot(&self, out: &mut StateOut) -> Result<(), ArrowError> {
        out.scalar = encode(&(self.fired_wm, self.seq));
        for (tag, map) in [(0u8, &self.slices), (1, &self.extras), (2, &self.fired)] {
            for (end, pane) in map {
                for (key, accs) in pane {
                    let entry = match tag {
                        0 => Entry::Slice(*end, key.clone(), accs.clone()),
                        1 => Entry::Extra(*end, key.clone(), accs.clone()),
                        _ => Entry::Fired(*end, key.clone(), accs.clone()),
                    };
                    out.keyed.push((key.hash64(), encode(&entry)));
                }
            }
        }
        for (key, open) in &self.sessions {
            let entry = Entry::Sessions(key.clone(), open.clone());
            out.keyed.push((key.hash64(), encode(&entry)));
        }
        Ok(())
    }

    fn restore(&mut self, state: StateIn) -> Result<(), ArrowError> {
        // Every subtask saw about the same watermark; the lowest is the safe one (a window
        // above it that another subtask had fired has no slices left to fire twice).
        let mut fired_wm = None;
        for scalar in &state.scalars {
            let (wm, seq): (i64, u64) = decode(scalar)?;
            fired_wm = Some(fired_wm.map_or(wm, |f: i64| f.min(wm)));
            self.seq = self.seq.max(seq);
        }
        self.fired_wm = fired_wm.unwrap_or(MIN_WATERMARK);
        for (_, bytes) in &state.keyed {
            match decode::<Entry>(bytes)? {
                Entry::Slice(end, key, accs) => {
                    self.slices.entry(end).or_default().insert(key, accs);
                }
                Entry::Extra(end, key, accs) => {
                    self.extras.entry(end).or_default().insert(key, accs);
                }
                Entry::Fired(end, key, accs) => {
                    self.fired.entry(end).or_default().insert(key, accs);
                }
                Entry::Sessions(key, open) => {
                    self.sessions.insert(key, open);
                }
            }
        }
        Ok(())
    }
}
