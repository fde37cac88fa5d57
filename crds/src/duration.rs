//! Durations as users write them in manifests: one type with one parser, shared with the job
//! spec (`strom-jobspec`), whose CEL-compatible syntax both validators accept.

pub use strom_jobspec::{DURATION_PATTERN, Duration, DurationError};
