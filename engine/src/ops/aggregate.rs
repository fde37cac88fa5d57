//! Aggregate functions and their accumulators: COUNT, SUM, MIN, MAX, AVG, FIRST_VALUE,
//! LAST_VALUE and COUNT(DISTINCT), mergeable (session windows merge them).

use std::collections::HashSet;

use arrow::array::{Array, ArrayRef, Float64Array, Int64Array};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;

use super::value::Val;
use crate::expr::{Ty, eval};

pub use strom_jobspec::typing::{AggCall, AggKind};

/// An accumulator.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub enum Acc {
    /// A count.
    Count(i64),
    /// An integer sum.
    SumI(i64),
    /// A float sum.
    SumF(f64),
    /// The least value so far.
    Min(Option<Val>),
    /// The greatest value so far.
    Max(Option<Val>),
    /// Integer average: sum and count.
    AvgI(i64, i64),
    /// Float average: sum and count.
    AvgF(f64, i64),
    /// The value with the lowest sequence number.
    First(Option<(u64, Val)>),
    /// The value with the highest sequence number.
    Last(Option<(u64, Val)>),
    /// Distinct values.
    Distinct(HashSet<Val>),
}

enum Arg {
    None,
    I(Int64Array),
    F(Float64Array),
    Other(ArrayRef),
}

/// The aggregate calls of one operator.
#[derive(Debug, Clone)]
pub struct Aggregates(pub Vec<AggCall>);

/// Evaluated arguments of one batch.
pub struct Args(Vec<Arg>);

impl Aggregates {
    /// Fresh accumulators.
    pub fn init(&self) -> Vec<Acc> {
        self.0
            .iter()
            .map(|c| match (c.kind, c.ty()) {
                (AggKind::CountStar | AggKind::Count, _) => Acc::Count(0),
                (AggKind::Sum, Ty::Float) => Acc::SumF(0.0),
                (AggKind::Sum, _) => Acc::SumI(0),
                (AggKind::Min, _) => Acc::Min(None),
                (AggKind::Max, _) => Acc::Max(None),
                (AggKind::Avg, Ty::Float) => Acc::AvgF(0.0, 0),
                (AggKind::Avg, _) => Acc::AvgI(0, 0),
                (AggKind::First, _) => Acc::First(None),
                (AggKind::Last, _) => Acc::Last(None),
                (AggKind::CountDistinct, _) => Acc::Distinct(HashSet::new()),
            })
            .collect()
    }

    /// Evaluates every argument over a batch.
    pub fn args(&self, batch: &RecordBatch) -> Result<Args, ArrowError> {
        let n = batch.num_rows();
        let mut out = Vec::with_capacity(self.0.len());
        for c in &self.0 {
            out.push(match &c.arg {
                None => Arg::None,
                Some(e) => {
                    let a = eval(e, batch)?.into_array(n)?;
                    if let Some(i) = a.as_any().downcast_ref::<Int64Array>() {
                        Arg::I(i.clone())
                    } else if let Some(f) = a.as_any().downcast_ref::<Float64Array>() {
                        Arg::F(f.clone())
                    } else {
                        Arg::Other(a)
                    }
                }
            });
        }
        Ok(Args(out))
    }

    /// Adds row `row` (arrival sequence `seq`) to `accs`.
    #[inline]
    pub fn update(&self, accs: &mut [Acc], args: &Args, row: usize, seq: u64) {
        for (acc, arg) in accs.iter_mut().zip(args.0.iter()) {
            match (acc, arg) {
                (Acc::Count(c), _) => *c += 1,
                (Acc::SumI(s), Arg::I(a)) => *s = s.wrapping_add(a.value(row)),
                (Acc::SumF(s), Arg::F(a)) => *s += a.value(row),
                (Acc::AvgI(s, c), Arg::I(a)) => {
                    *s = s.wrapping_add(a.value(row));
                    *c += 1;
                }
                (Acc::AvgF(s, c), Arg::F(a)) => {
                    *s += a.value(row);
                    *c += 1;
                }
                (Acc::Min(m), arg) => {
                    let v = value(arg, row);
                    if m.as_ref().is_none_or(|cur| v < *cur) {
                        *m = Some(v);
                    }
                }
                (Acc::Max(m), arg) => {
                    let v = value(arg, row);
                    if m.as_ref().is_none_or(|cur| v > *cur) {
                        *m = Some(v);
                    }
                }
                (Acc::First(f), arg) if f.as_ref().is_none_or(|(s, _)| seq < *s) => {
                    *f = Some((seq, value(arg, row)))
                }
                (Acc::Last(l), arg) if l.as_ref().is_none_or(|(s, _)| seq >= *s) => {
                    *l = Some((seq, value(arg, row)))
                }
                (Acc::Distinct(set), arg) => {
                    set.insert(value(arg, row));
                }
                _ => {}
            }
        }
    }

    /// Folds a copy of `from` into `into` (window slices combining into a window).
    pub fn merge_ref(&self, into: &mut [Acc], from: &[Acc]) {
        for (a, b) in into.iter_mut().zip(from) {
            match (a, b) {
                (Acc::Count(x), Acc::Count(y)) => *x += y,
                (Acc::SumI(x), Acc::SumI(y)) => *x = x.wrapping_add(*y),
                (Acc::SumF(x), Acc::SumF(y)) => *x += y,
                (Acc::AvgI(s, c), Acc::AvgI(s2, c2)) => {
                    *s = s.wrapping_add(*s2);
                    *c += c2;
                }
                (Acc::AvgF(s, c), Acc::AvgF(s2, c2)) => {
                    *s += s2;
                    *c += c2;
                }
                (a, b) => self.merge_one(a, b.clone()),
            }
        }
    }

    /// Folds `from` into `into` (session windows merging).
    pub fn merge(&self, into: &mut [Acc], from: Vec<Acc>) {
        for (a, b) in into.iter_mut().zip(from) {
            self.merge_one(a, b);
        }
    }

    fn merge_one(&self, a: &mut Acc, b: Acc) {
        match (a, b) {
            (Acc::Count(x), Acc::Count(y)) => *x += y,
            (Acc::SumI(x), Acc::SumI(y)) => *x = x.wrapping_add(y),
            (Acc::SumF(x), Acc::SumF(y)) => *x += y,
            (Acc::AvgI(s, c), Acc::AvgI(s2, c2)) => {
                *s = s.wrapping_add(s2);
                *c += c2;
            }
            (Acc::AvgF(s, c), Acc::AvgF(s2, c2)) => {
                *s += s2;
                *c += c2;
            }
            (Acc::Min(x), Acc::Min(Some(y))) if x.as_ref().is_none_or(|cur| y < *cur) => {
                *x = Some(y)
            }
            (Acc::Max(x), Acc::Max(Some(y))) if x.as_ref().is_none_or(|cur| y > *cur) => {
                *x = Some(y)
            }
            (Acc::First(x), Acc::First(Some(y))) if x.as_ref().is_none_or(|cur| y.0 < cur.0) => {
                *x = Some(y)
            }
            (Acc::Last(x), Acc::Last(Some(y))) if x.as_ref().is_none_or(|cur| y.0 >= cur.0) => {
                *x = Some(y)
            }
            (Acc::Distinct(x), Acc::Distinct(y)) => x.extend(y),
            _ => {}
        }
    }

    /// The results.
    pub fn finish(&self, accs: &[Acc]) -> Vec<Val> {
        let mut out = Vec::with_capacity(accs.len());
        self.finish_into(accs, &mut out);
        out
    }

    /// Appends the results to `out`.
    pub fn finish_into(&self, accs: &[Acc], out: &mut Vec<Val>) {
        out.extend(accs.iter().map(|a| match a {
            Acc::Count(c) => Val::I(*c),
            Acc::SumI(s) => Val::I(*s),
            Acc::SumF(s) => Val::F(*s),
            // Java long division truncates toward zero, as Rust's does.
            Acc::AvgI(s, c) => Val::I(if *c == 0 { 0 } else { s / c }),
            Acc::AvgF(s, c) => Val::F(if *c == 0 { 0.0 } else { s / *c as f64 }),
            Acc::Min(v) | Acc::Max(v) => v.clone().unwrap_or(Val::I(0)),
            Acc::First(v) | Acc::Last(v) => v.as_ref().map(|(_, v)| v.clone()).unwrap_or(Val::I(0)),
            Acc::Distinct(s) => Val::I(s.len() as i64),
        }));
    }
}

#[inline]
fn value(arg: &Arg, row: usize) -> Val {
    match arg {
        Arg::I(a) => Val::I(a.value(row)),
        Arg::F(a) => Val::F(a.value(row)),
        Arg::Other(a) => Val::at(a.as_ref(), row),
        Arg::None => Val::I(0),
    }
}
