//! The FlinkJob controller: turns FlinkJobs into running engines and keeps them there.
//!
//! Built so far: [`plan`], the controller's decisions as a pure function (deploy, savepoint
//! upgrades, rescales, suspend/resume, restarts, failure handling), with the status as a
//! write-ahead log; [`resources`], the objects it creates for a job. The controller that observes the cluster and executes the plan is not
//! built yet; see `docs/architecture.md`.

pub mod plan;
pub mod resources;
