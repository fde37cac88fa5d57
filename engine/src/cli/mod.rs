//! What `strom-engine` does besides parsing its arguments: turning the snapshot flags into
//! run options ([`setup`]), describing a plan for `--dry-run` ([`topology`]), showing a
//! running job's progress ([`progress`]), and `strom-engine savepoint` ([`savepoint`]).

pub mod progress;
pub mod savepoint;
pub mod setup;
pub mod topology;
