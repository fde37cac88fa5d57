//! The managed-service REST API over FlinkJobs: tenants, tokens, applications, versions.
//!
//! Not built yet; see `docs/architecture.md`.
