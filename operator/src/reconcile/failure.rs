//! Engine crashes: counted, reported, and after [`MAX_FAILURES`] the job is `Failed`.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use strom_crds::FlinkJobStatus;
use strom_crds::status::{ErrorInfo, LifecycleState};

use super::*;
use crate::conditions::{self, Kind, Reason as CReason};
use crate::events::{Event, Reason};

/// The engine pod crashed `restarts` times (Kubernetes restarts it, and it resumes its
/// deployment's latest checkpoint). Counts it, says so, and after [`MAX_FAILURES`] declares
/// the job `Failed` and stops it. Returns whether the job is now failed.
pub(super) fn engine_failed(
    restarts: i32,
    message: &str,
    generation: Option<i64>,
    now: &Time,
    status: &mut FlinkJobStatus,
    actions: &mut Vec<Action>,
) -> bool {
    if restarts > status.failures {
        status.failures = restarts;
        actions.push(Action::Event(Event::warning(
            Reason::EngineFailed,
            format!("the engine failed ({restarts} restarts): {message}"),
        )));
    }
    status.last_error = Some(ErrorInfo {
        message: message.to_owned(),
        time: now.clone(),
    });
    if status.failures < MAX_FAILURES || status.lifecycle_state == Some(LifecycleState::Failed) {
        return false;
    }
    status.lifecycle_state = Some(LifecycleState::Failed);
    status.job_state = Some(strom_crds::status::JobState::Failed);
    conditions::set(
        status,
        Kind::Ready,
        false,
        CReason::Failed,
        message.to_owned(),
        generation,
        now,
    );
    conditions::set(
        status,
        Kind::Degraded,
        true,
        CReason::JobFailed,
        format!(
            "the engine failed {} times; the job is stopped until its spec changes: {message}",
            status.failures
        ),
        generation,
        now,
    );
    actions.push(Action::StopEngine);
    actions.push(Action::Event(Event::warning(
        Reason::JobFailed,
        format!("the engine failed {} times: {message}", status.failures),
    )));
    true
}
