//! `FlinkJob.status`: what the operator observed and did. Written only by the operator.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::spec::AutoscalerMode;

/// What the operator observed and did. Written only by the operator, through the status
/// subresource.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct FlinkJobStatus {
    /// Where the job is in its lifecycle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle_state: Option<LifecycleState>,

    /// The state the engine reports for the job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_state: Option<JobState>,

    /// The `metadata.generation` whose spec the operator last acted on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// Standard conditions: `Ready` (running and checkpointing), `Progressing` (a deploy,
    /// upgrade, rescale or rollback is under way), `Degraded` (the spec is invalid or the job
    /// is failing), each with a reason and a message.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,

    /// The parallelism the job runs at now (the scale subresource's replica count).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallelism: Option<i32>,

    /// Label selector of the job's engine pods (the scale subresource's selector).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,

    /// The spec the operator is deploying or last deployed. Written before the deployment
    /// starts, so a restarted operator resumes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_reconciled_spec: Option<ReconciledSpec>,

    /// The last spec that ran healthily; a rollback returns to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_stable_spec: Option<ReconciledSpec>,

    /// The latest completed checkpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_checkpoint: Option<CheckpointInfo>,

    /// The latest completed savepoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_savepoint: Option<SavepointInfo>,

    /// Savepoints taken for this job, oldest first, including pending and failed ones.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub savepoints: Vec<SavepointInfo>,

    /// What the autoscaler measured, decided and applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaler: Option<AutoscalerStatus>,

    /// The latest error, from the engine or the operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<ErrorInfo>,

    /// The change under way, written before each of its steps is taken (a write-ahead log):
    /// an operator restarted at any point resumes it from here, and never restores other
    /// state than the step recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<Operation>,

    /// The `spec.savepoints.triggerNonce` last acted on: a different value in the spec takes
    /// a savepoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub savepoint_trigger_nonce: Option<i64>,

    /// Restarts after engine failures since the job last ran healthily.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub failures: i32,
}

fn is_zero(n: &i32) -> bool {
    *n == 0
}

/// A change the operator is applying, and how far it has got.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Operation {
    /// What kind of change.
    pub kind: OperationKind,
    /// The step under way.
    pub phase: OperationPhase,
    /// The spec being deployed.
    pub target: ReconciledSpec,
    /// Where the savepoint of this change goes (chosen before it is requested, so a retried
    /// request or a restarted operator finds the same one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub savepoint_target: Option<String>,
    /// Why the savepoint of this change is taken (`Savepoint` operations).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<SavepointTrigger>,
    /// The engine's id of the savepoint request, once made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub savepoint_request: Option<String>,
    /// What the new engine restores from, once decided (a savepoint or checkpoint URL);
    /// unset with phase `Stopping` or later: empty state, by the upgrade mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_from: Option<String>,
    /// When the change started.
    pub started: Time,
}

/// Kinds of change.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OperationKind {
    /// First deployment.
    Deploy,
    /// A spec change applied by the upgrade mode.
    Upgrade,
    /// A parallelism change (always through a savepoint).
    Rescale,
    /// `restartNonce`, or an engine that failed: restart from the latest checkpoint.
    Restart,
    /// `state: suspended`.
    Suspend,
    /// A savepoint of the running job (on demand or periodic); the job goes on.
    Savepoint,
    /// The FlinkJob is being deleted: stop (with a savepoint where there is storage for
    /// one), then release the object.
    Delete,
    /// An upgrade did not become healthy in `rollback.readinessTimeout`: back to the last
    /// stable spec, from the savepoint taken before the upgrade.
    Rollback,
    /// `state: running` after a suspend.
    Resume,
}

/// Steps of a change, in order.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OperationPhase {
    /// Taking a savepoint of the running job (stop-with-savepoint).
    Savepointing,
    /// Removing the old engine.
    Stopping,
    /// Starting the new engine (restoring `restoreFrom`).
    Starting,
}

/// Lifecycle of a FlinkJob as the operator drives it.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LifecycleState {
    /// Accepted; nothing deployed yet.
    Created,
    /// The engine is being deployed.
    Deploying,
    /// The job runs the desired spec.
    Running,
    /// A spec change is being applied (savepoint, redeploy, restore).
    Upgrading,
    /// The job is stopped on request; its pods are gone.
    Suspended,
    /// An upgrade did not become healthy; the last stable spec is being restored.
    RollingBack,
    /// The job failed and will not be retried until the spec changes.
    Failed,
    /// The job is being stopped and its resources removed.
    Deleting,
}

/// The job's state as the engine reports it.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobState {
    /// Accepted by the engine, not yet running.
    Created,
    /// Processing records.
    Running,
    /// Running, but a source waits for the system it reads (its brokers cannot be reached,
    /// its topic does not exist): the `Ready` condition says which and why.
    Waiting,
    /// Failing; the engine is restarting tasks.
    Failing,
    /// Failed terminally.
    Failed,
    /// A bounded job that finished.
    Finished,
    /// Stopped on request.
    Canceled,
}

/// A spec the operator deployed.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ReconciledSpec {
    /// `metadata.generation` of the spec.
    pub generation: i64,
    /// Hash of the spec, to tell changes apart at a glance.
    pub hash: String,
    /// The spec itself, as JSON.
    pub spec: String,
    /// When it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<Time>,
}

/// A completed checkpoint.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CheckpointInfo {
    /// Checkpoint id, increasing within a job.
    pub id: i64,
    /// When it completed.
    pub time: Time,
    /// Where it is stored.
    pub location: String,
}

/// A savepoint the operator triggered or recorded.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SavepointInfo {
    /// Savepoint id (unique within the job).
    pub id: String,
    /// Where it is stored, once completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Why it was taken.
    pub trigger: SavepointTrigger,
    /// The FlinkJob generation the job ran when it was taken (the version it ends, for
    /// an upgrade or suspend savepoint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
    /// When it was triggered or completed.
    pub time: Time,
    /// Its state.
    pub state: SavepointState,
    /// Why it failed, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Why a savepoint was taken.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum SavepointTrigger {
    /// `spec.savepoints.triggerNonce` changed.
    Manual,
    /// `spec.savepoints.periodicInterval` elapsed.
    Periodic,
    /// Before an upgrade or rescale.
    Upgrade,
    /// Before the job was suspended or deleted.
    Suspend,
}

/// State of a savepoint.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SavepointState {
    /// Being written.
    Pending,
    /// Complete and restorable.
    Completed,
    /// Could not be written.
    Failed,
    /// Deleted by retention or by request.
    Disposed,
}

/// What the autoscaler measured, decided and applied.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AutoscalerStatus {
    /// The mode it ran in.
    pub mode: AutoscalerMode,
    /// The latest decision's outcome: `NoMetrics`, `Stabilizing`, `CollectingMetrics`,
    /// `LoadChanging`, `InBand`, `Hold`, `ScaleDownPending` or `Scale`.
    pub outcome: String,
    /// The latest decision, in a sentence.
    pub summary: String,
    /// When it decided.
    pub time: Time,
    /// The parallelism the autoscaler has set, by vertex id (in `active` mode); applied on
    /// top of `spec.parallelism` and `spec.vertexParallelism`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub vertex_parallelism: BTreeMap<String, i32>,
    /// The pipeline (hash of `spec.job`) that `vertexParallelism` was decided for: a
    /// different pipeline starts from the spec's parallelism again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_hash: Option<String>,
    /// Each vertex as last measured.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vertices: Vec<AutoscalerVertex>,
    /// The last rescale the autoscaler decided (or, in `recommend` mode, would have).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_scaling: Option<ScalingRecord>,
}

/// One vertex in the autoscaler's latest decision.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AutoscalerVertex {
    /// Vertex id (`source:<name>`, a step name, `sink:<name>`).
    pub id: String,
    /// Subtasks now.
    pub parallelism: i32,
    /// What the formulas recommend.
    pub recommended: i32,
    /// Records in per second.
    pub input_rate: String,
    /// Busy fraction, 0–1.
    pub busy: String,
    /// Records per second at 100% busy (all subtasks), where measurable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub true_rate: Option<String>,
    /// Records per second it must sustain (plus catch-up of a backlog).
    pub target_rate: String,
    /// A source's backlog in records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backlog: Option<i64>,
    /// Busy fraction it would need now; the autoscaler acts outside the band.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utilization: Option<String>,
    /// Why it does not follow the recommendation, if it does not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A rescale decided by the autoscaler.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ScalingRecord {
    /// When.
    pub time: Time,
    /// What and why.
    pub summary: String,
    /// Whether it was applied (`active`) or only recommended.
    pub applied: bool,
}

/// An error worth showing the user.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ErrorInfo {
    /// What went wrong, written for the person reading `kubectl describe`.
    pub message: String,
    /// When it happened.
    pub time: Time,
}
