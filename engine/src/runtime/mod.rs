//! Running a plan: one thread per subtask, bounded channels between them. A full channel
//! blocks its sender — that blocking is backpressure, and it is measured: every task splits
//! its time into busy, idle (waiting for input) and backpressured (waiting to send).
//!
//! - `launch.rs`: start a plan (restore, claim, wire, spawn), wait for it.
//! - `task.rs`: one subtask's context and typed stop reasons; `source_task.rs` (files,
//!   generated records), `kafka_source_task.rs` and `operator_task.rs` run the kinds.
//! - `gate.rs`: an operator task's watermark merging and barrier alignment, unit-tested.
//! - `outputs.rs`: routing and sending; `message.rs`: what channels carry.
//! - `source_position.rs`: a source's saved position and its hand-out on restore.
//! - `metrics.rs`: per-task counters and the busy/idle/backpressured clock.

mod gate;
mod kafka_source_task;
mod launch;
pub mod message;
pub mod metrics;
mod operator_task;
mod outputs;
pub mod source_position;
mod source_task;
mod task;

pub use launch::{RunOptions, Running, Summary, summary};
pub use message::Message;
pub use outputs::CHANNEL_CAPACITY;
pub use task::TaskError;
