//! Union: every row of every input, unchanged.

use arrow::error::ArrowError;

use super::Operator;
use crate::batch::{Batch, SchemaRef};

/// Passes rows of all inputs through.
pub struct Union {
    schema: SchemaRef,
}

impl Union {
    /// A union producing `schema` (every input has it).
    pub fn new(schema: SchemaRef) -> Self {
        Union { schema }
    }
}

impl Operator for Union {
    fn process(
        &mut self,
        _input: usize,
        batch: Batch,
        out: &mut Vec<Batch>,
    ) -> Result<(), ArrowError> {
        let data = batch.data.with_schema(self.schema.clone())?;
        out.push(Batch { data, ..batch });
        Ok(())
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}
