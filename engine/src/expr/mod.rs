//! SQL expressions over a batch's columns: checked and compiled by the job spec's type layer
//! ([`strom_jobspec::typing`]: unknown columns and type errors are found before anything
//! runs, by the FlinkJob API as by the engine) and evaluated here on whole Arrow arrays with
//! Arrow's compute kernels.

mod eval;

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema};

pub use eval::{Value, eval};
pub use strom_jobspec::sql::parse_expr as parse_sql;
pub use strom_jobspec::typing::{BinOp, Column, Expr, Func, Lit, Scope, Ty, default_name};

/// The Arrow type of a value type.
pub fn arrow_type(ty: Ty) -> DataType {
    match ty {
        Ty::Int => DataType::Int64,
        Ty::Float => DataType::Float64,
        Ty::Str => DataType::Utf8,
        Ty::Bool => DataType::Boolean,
    }
}

/// The value type of an Arrow column, if expressions can work with it.
pub fn ty_of(dt: &DataType) -> Option<Ty> {
    Some(match dt {
        DataType::Int64 | DataType::Int32 => Ty::Int,
        DataType::Float64 => Ty::Float,
        DataType::Utf8 => Ty::Str,
        DataType::Boolean => Ty::Bool,
        _ => return None,
    })
}

/// The typed columns of an engine schema. Every schema the planner makes is built from value
/// types, so each field has one; a field without is an engine defect, named in the error.
pub fn columns(schema: &Schema) -> Result<Vec<Column>, String> {
    schema
        .fields()
        .iter()
        .map(|f| {
            ty_of(f.data_type())
                .map(|ty| Column::new(f.name().clone(), ty))
                .ok_or_else(|| {
                    format!(
                        "column {:?} has an unsupported type {}",
                        f.name(),
                        f.data_type()
                    )
                })
        })
        .collect()
}

/// A scope over an engine schema's columns.
pub fn scope(schema: &Schema) -> Result<Scope, String> {
    columns(schema).map(Scope::new)
}

/// An engine schema of typed columns.
pub fn schema_of(columns: &[Column]) -> Arc<Schema> {
    Arc::new(Schema::new(
        columns
            .iter()
            .map(|c| Field::new(&c.name, arrow_type(c.ty), false))
            .collect::<Vec<_>>(),
    ))
}
