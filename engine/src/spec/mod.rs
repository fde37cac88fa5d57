//! The job spec. Its types, reader and checks live in `strom-jobspec`, shared with the
//! FlinkJob API so that a pipeline is checked before any pod starts; the engine names them
//! through this module.

pub use strom_jobspec::*;
