//! The types of a job's columns and expressions, checked before anything runs: every column
//! an expression names exists, every operator gets the types it needs, and every step's
//! output columns are known. The engine compiles its operators from these same checked
//! expressions; the FlinkJob API runs [`columns`] so a pipeline the engine would refuse is an
//! invalid spec, not a crash-looping pod.
//!
//! Semantics follow Flink SQL: integer `/` truncates toward zero and `MOD`/`%` takes the
//! dividend's sign (Java's), `CAST(x AS DOUBLE) / y` is IEEE division, strings are UTF-8 and
//! `SUBSTRING` counts characters from 1.

mod aggregate;
mod expr;
mod pipeline;
mod scope;
mod step;

pub use aggregate::{AggCall, AggKind, OutItem, compile_aggregate, window_items};
pub use expr::{BinOp, Expr, Func, Lit, default_name};
pub use pipeline::{Columns, columns, generator_input};
pub use scope::Scope;
pub use step::{Calc, JoinKeys, TopNOrder, calc, interval_bounds, join_keys, keys, top_n_order};

/// The value types expressions work with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    /// 64-bit integer.
    Int,
    /// 64-bit float.
    Float,
    /// UTF-8 string.
    Str,
    /// Boolean.
    Bool,
}

impl Ty {
    /// The SQL name (`BIGINT`, `DOUBLE`, `STRING`, `BOOLEAN`).
    pub fn name(self) -> &'static str {
        match self {
            Ty::Int => "BIGINT",
            Ty::Float => "DOUBLE",
            Ty::Str => "STRING",
            Ty::Bool => "BOOLEAN",
        }
    }
}

impl From<crate::FieldType> for Ty {
    fn from(t: crate::FieldType) -> Ty {
        use crate::FieldType as F;
        match t {
            F::Bigint | F::Int => Ty::Int,
            F::Double => Ty::Float,
            F::String => Ty::Str,
            F::Boolean => Ty::Bool,
        }
    }
}

/// A named, typed column of a step's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Its name (after a join, `<input>.<column>`).
    pub name: String,
    /// Its type.
    pub ty: Ty,
}

impl Column {
    /// A column.
    pub fn new(name: impl Into<String>, ty: Ty) -> Self {
        Column {
            name: name.into(),
            ty,
        }
    }
}
