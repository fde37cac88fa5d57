//! Scaling decisions for Strom jobs: a pure function of a metrics history, a configuration
//! and the time. No Kubernetes.
//!
//! Not built yet; see `docs/architecture.md`.
