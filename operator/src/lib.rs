//! The FlinkJob controller: turns FlinkJobs into running engines and keeps them there.
//!
//! - [`reconcile`]: the controller's decisions as a pure function (deploy, savepoint
//!   upgrades, rescales, suspend/resume, restarts, failure handling), with the status as a
//!   write-ahead log; one file per lifecycle phase, table tests by theme.
//! - [`conditions`] and [`events`]: the typed conditions and event reasons it records.
//! - [`controller`]: the kube-runtime loop that observes, plans, records and acts (through
//!   `execute`, one function per action), with Prometheus metrics.
//! - [`resources`]: the objects it creates for a job; [`launch`]: the engine's arguments.
//! - [`leader`]: Lease-based leader election.
//! - [`autoscaling`]: the autoscaler's sampling, history and reporting around
//!   `strom_autoscaler::decide`.

pub mod autoscaling;
pub mod conditions;
pub mod controller;
pub mod events;
mod execute;
pub mod launch;
pub mod leader;
mod observe;
pub mod pod_security;
pub mod reconcile;
pub mod resources;
