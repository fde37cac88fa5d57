//! Sources and sinks.

pub mod format;
pub mod generate;
pub mod sink;
pub mod source;
