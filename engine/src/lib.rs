//! The Strom streaming engine: a job spec becomes a dataflow of parallel tasks exchanging
//! Arrow record batches, with event time, watermarks, windows and keyed state.
//!
//! This crate never depends on `kube` (enforced by `local-cluster/tests/dependency_direction.rs`).

pub mod batch;
pub mod cli;
pub mod control;
mod error;
pub mod expr;
pub mod hash;
pub mod io;
pub mod job;
pub mod ops;
pub mod plan;
pub mod runtime;
pub mod snapshot;
pub mod spec;

pub use error::{Error, Result};
