//! Filter and projection: `where` and `select` expressions, evaluated on whole batches.

use std::sync::Arc;

use arrow::array::{Array, BooleanArray};
use arrow::compute::filter;
use arrow::datatypes::{Field, Schema};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;

use super::Operator;
use crate::batch::{Batch, SchemaRef};
use crate::expr::{Expr, eval};

/// Keeps the rows where `predicate` is true and computes `projection` from them.
pub struct Calc {
    predicate: Option<Expr>,
    projection: Option<Vec<Expr>>,
    schema: SchemaRef,
}

impl Calc {
    /// A filter and/or projection producing `schema`.
    pub fn new(
        predicate: Option<Expr>,
        projection: Option<Vec<(String, Expr)>>,
        input: SchemaRef,
    ) -> Self {
        let schema = match &projection {
            Some(items) => Arc::new(Schema::new(
                items
                    .iter()
                    .map(|(n, e)| Field::new(n, crate::expr::arrow_type(e.ty()), false))
                    .collect::<Vec<_>>(),
            )),
            None => input,
        };
        Calc {
            predicate,
            projection: projection.map(|p| p.into_iter().map(|(_, e)| e).collect()),
            schema,
        }
    }
}

fn filter_i64(
    a: &Option<arrow::array::Int64Array>,
    mask: &BooleanArray,
) -> Result<Option<arrow::array::Int64Array>, ArrowError> {
    a.as_ref()
        .map(|a| {
            filter(a, mask).map(|f| {
                f.as_any()
                    .downcast_ref::<arrow::array::Int64Array>()
                    .expect("int64")
                    .clone()
            })
        })
        .transpose()
}

impl Operator for Calc {
    fn process(
        &mut self,
        _input: usize,
        batch: Batch,
        out: &mut Vec<Batch>,
    ) -> Result<(), ArrowError> {
        let mut batch = batch;
        if let Some(p) = &self.predicate {
            let mask = eval(p, &batch.data)?.into_array(batch.len())?;
            let mask = mask
                .as_any()
                .downcast_ref::<BooleanArray>()
                .ok_or_else(|| ArrowError::CastError("where must be boolean".into()))?;
            // NULL counts as not true.
            let mask = if mask.null_count() > 0 {
                arrow::compute::prep_null_mask_filter(mask)
            } else {
                mask.clone()
            };
            if mask.true_count() == 0 {
                return Ok(());
            }
            if mask.true_count() < batch.len() {
                batch = Batch {
                    data: arrow::compute::filter_record_batch(&batch.data, &mask)?,
                    rowtime: filter_i64(&batch.rowtime, &mask)?,
                    wm: filter_i64(&batch.wm, &mask)?,
                };
            }
        }
        if let Some(items) = &self.projection {
            let n = batch.len();
            let columns = items
                .iter()
                .map(|e| eval(e, &batch.data)?.into_array(n))
                .collect::<Result<Vec<_>, _>>()?;
            batch.data = RecordBatch::try_new(self.schema.clone(), columns)?;
        }
        out.push(batch);
        Ok(())
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}
