//! Running a job from its spec.

use crate::plan::Plan;
use crate::runtime::{RunError, Running, Summary};
use crate::spec::{JobSpec, Violations};

/// Why a job could not run.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The spec is wrong; every problem is listed with its path.
    #[error("the job spec is invalid:\n{0}")]
    Invalid(#[from] Violations),
    /// A task failed while running.
    #[error(transparent)]
    Failed(#[from] RunError),
}

/// Checks `spec`, plans it at `parallelism` and starts it.
pub fn start(spec: &JobSpec, parallelism: usize) -> Result<Running, JobError> {
    let plan = Plan::build(spec, parallelism)?;
    Ok(Running::start(plan))
}

/// Runs a bounded job to its end.
pub fn run(spec: &JobSpec, parallelism: usize) -> Result<Summary, JobError> {
    Ok(start(spec, parallelism)?.wait()?)
}
