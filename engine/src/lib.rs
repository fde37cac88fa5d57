//! The Strom streaming engine: job spec → dataflow graph → parallel tasks, with event time,
//! keyed state, checkpoints and the HTTP control endpoint.
//!
//! Not built yet; see `docs/architecture.md`. This crate must never depend on `kube`
//! (enforced by `e2e/tests/dependency_direction.rs`).
