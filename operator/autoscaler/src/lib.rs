//! Scaling decisions for Strom jobs: a pure function of a metrics history, a configuration
//! and the time ([`decide`]). No Kubernetes, no clock, no I/O: the operator collects
//! [`Sample`]s from the engine, keeps them with the [`State`] this crate hands back, and
//! applies or reports the [`Decision`].
//!
//! The method is the one of Apache Flink's autoscaler (FLIP-271, after the DS2 paper):
//! measure each vertex's *true processing rate* (what it processes per second of busy
//! time), derive the rate each vertex must sustain from the sources' input and backlog
//! along the graph, and set each vertex's parallelism so that it runs at the target
//! utilization. The formulas and defaults are written out in `docs/autoscaler.md`.

mod config;
mod decide;
mod metrics;
pub mod sim;

pub use config::Config;
pub use decide::{Decision, Outcome, PendingScaleDown, ScaleUp, State, VertexReport, decide};
pub use metrics::{Sample, VertexRates, VertexSample, rates};
