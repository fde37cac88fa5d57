//! Sources and sinks: files, generated records, Kafka.

pub mod format;
pub mod generate;
pub mod kafka;
pub mod sink;
pub mod source;
