//! Sources and sinks.

pub mod format;
pub mod sink;
pub mod source;
