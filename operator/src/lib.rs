//! The FlinkJob controller: turns FlinkJobs into running engines and keeps them there.
//!
//! Built so far: [`plan`], the controller's decisions as a pure function (deploy, savepoint
//! upgrades, rescales, suspend/resume, restarts, failure handling), with the status as a
//! write-ahead log; [`resources`], the objects it creates for a job; and [`controller`], the
//! kube-runtime loop that observes, plans, records and acts, with Prometheus metrics; and
//! [`leader`], Lease-based leader election; [`autoscaling`], the autoscaler's sampling,
//! history and reporting around `strom_autoscaler::decide`.

pub mod autoscaling;
pub mod controller;
pub mod leader;
pub mod plan;
pub mod resources;
