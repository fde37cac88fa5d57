//! Running a job from its spec.

use crate::Error;
use crate::plan::Plan;
use crate::runtime::{Running, Summary};
use crate::spec::JobSpec;

/// Checks `spec`, plans it at `parallelism` and starts it.
pub fn start(spec: &JobSpec, parallelism: usize) -> Result<Running, Error> {
    let plan = Plan::build(spec, parallelism)?;
    Ok(Running::start(plan))
}

/// Runs a bounded job to its end.
pub fn run(spec: &JobSpec, parallelism: usize) -> Result<Summary, Error> {
    start(spec, parallelism)?.wait()
}
