//! The FlinkJob controller: turns FlinkJobs into running engines and keeps them there.
//!
//! Not built yet; see `docs/architecture.md`.
