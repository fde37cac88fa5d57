//! The control endpoint's port (as the operator deploys engines) and routes.

/// The port engines deployed by the operator listen on.
pub const CONTROL_PORT: u16 = 8081;

/// `GET`: the job and every subtask's counters ([`crate::JobStatus`]).
pub const JOB: &str = "/v1/job";
/// `GET`: checkpoints and savepoints ([`crate::CheckpointsStatus`]).
pub const CHECKPOINTS: &str = "/v1/checkpoints";
/// `POST` a [`crate::SavepointRequest`]; answers a [`crate::SavepointStatus`].
pub const SAVEPOINTS: &str = "/v1/savepoints";
/// `GET /v1/savepoints/{id}`, as axum writes the route.
pub const SAVEPOINT: &str = "/v1/savepoints/{id}";
/// `GET /metrics`: Prometheus text.
pub const METRICS: &str = "/metrics";

/// The path of savepoint request `id`.
pub fn savepoint(id: &str) -> String {
    format!("{SAVEPOINTS}/{id}")
}
