//! The operator's decisions, as a pure function: [`plan`] takes a FlinkJob (spec and the
//! status the operator last wrote), what was observed in the cluster and from the engine,
//! and the time, and returns the status to record and the actions to take. No I/O: the
//! controller observes, calls `plan`, writes the status **first** (the write-ahead log),
//! then acts. Every decision is covered by table tests in this file.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use strom_crds::change::{SpecChange, classify};
use strom_crds::spec::{DesiredState, UpgradeMode};
use strom_crds::status::{
    ErrorInfo, LifecycleState, Operation, OperationKind, OperationPhase, ReconciledSpec,
    SavepointInfo, SavepointState, SavepointTrigger,
};
use strom_crds::{FlinkJob, FlinkJobSpec, FlinkJobStatus};

/// The operator's finalizer: a FlinkJob is released only once its job has stopped (with a
/// savepoint where there is storage for one).
pub const FINALIZER: &str = "strom.dev/stop-job";

/// Engine restarts after failures before the job is declared `Failed`.
pub const MAX_FAILURES: i32 = 5;

/// The engine pod, as observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PodState {
    /// No pod.
    Absent,
    /// Created, not running yet (scheduling, pulling, starting).
    Pending,
    /// Running; `ready` once its readiness probe passes.
    Running {
        /// Readiness.
        ready: bool,
    },
    /// Restarting after crashes, or exited with an error.
    Crashing {
        /// Restarts so far.
        restarts: i32,
        /// The container's last termination message or reason.
        message: String,
    },
    /// Exited successfully (a bounded job that finished, or a stop with savepoint).
    Succeeded,
}

/// The engine as deployed: the spec it was deployed with, and its pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployed {
    /// [`spec_hash`] of the spec it runs.
    pub hash: String,
    /// Its pod.
    pub pod: PodState,
}

/// What the savepoint of the current operation has become.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SavepointProgress {
    /// Not requested, or nothing known.
    Unknown,
    /// Being written.
    InProgress,
    /// Complete, at this URL (reported by the engine or found complete in storage).
    Completed(String),
    /// Failed, with the engine's reason.
    Failed(String),
}

/// What the controller observed for one job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// The engine's resources, if they exist.
    pub deployed: Option<Deployed>,
    /// The engine's own report: its job state (`running`, `finished`, …).
    pub job_state: Option<String>,
    /// The newest completed checkpoint the engine reports: (id, URL, completion epoch ms).
    pub checkpoint: Option<(u64, String, i64)>,
    /// The savepoint of the current operation.
    pub savepoint: SavepointProgress,
    /// The newest complete checkpoint in the job's checkpoint directory (for `last-state`
    /// restores and restarts after failures).
    pub latest_checkpoint: Option<String>,
}

/// Something the controller must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Create or replace the engine's resources for `spec`, restoring `restore_from`.
    Deploy {
        /// The spec.
        spec: Box<FlinkJobSpec>,
        /// Its hash, stamped on the resources.
        hash: String,
        /// Snapshot to restore; `None`: empty state.
        restore_from: Option<String>,
        /// Identity of this deployment: a restarted engine of it resumes its own latest
        /// checkpoint rather than `restore_from`.
        deployment: String,
    },
    /// Remove the engine's pods (keeping the job's ConfigMap and Service).
    StopEngine,
    /// Ask the engine for a savepoint into `target`; with `stop`, the engine stops after.
    RequestSavepoint {
        /// Directory.
        target: String,
        /// Stop after it.
        stop: bool,
    },
    /// Apply the savepoint retention policy to the job's savepoints directory (never
    /// touching the savepoint the running deployment restored from, nor the newest).
    DisposeSavepoints,
    /// Add [`FINALIZER`] to the FlinkJob.
    AddFinalizer,
    /// Remove [`FINALIZER`]: the job is stopped, the object may go.
    ReleaseFinalizer,
    /// Record a Kubernetes Event on the FlinkJob.
    Event {
        /// Warning (else Normal).
        warning: bool,
        /// CamelCase reason, e.g. `UpgradeStarted`.
        reason: &'static str,
        /// For people.
        message: String,
    },
}

/// What [`plan`] decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The status to record before acting.
    pub status: FlinkJobStatus,
    /// What to do, in order.
    pub actions: Vec<Action>,
}

/// A stable hash of a spec, to tell deployed versions apart.
pub fn spec_hash(spec: &FlinkJobSpec) -> String {
    json_hash(spec)
}

/// A stable hash (FNV-1a, hex) of a value's JSON form.
pub fn json_hash(value: &impl serde::Serialize) -> String {
    let json = serde_json::to_vec(value).expect("JSON serializes");
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in json {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

fn reconciled(job: &FlinkJob, spec: &FlinkJobSpec, now: &Time) -> ReconciledSpec {
    ReconciledSpec {
        generation: job.metadata.generation.unwrap_or(0),
        hash: spec_hash(spec),
        spec: serde_json::to_string(spec).expect("a spec serializes"),
        time: Some(now.clone()),
    }
}

fn spec_of(r: &ReconciledSpec) -> Option<FlinkJobSpec> {
    serde_json::from_str(&r.spec).ok()
}

fn set_condition(
    status: &mut FlinkJobStatus,
    kind: &str,
    on: bool,
    reason: &str,
    message: String,
    generation: Option<i64>,
    now: &Time,
) {
    let value = if on { "True" } else { "False" };
    if let Some(c) = status.conditions.iter_mut().find(|c| c.type_ == kind) {
        if c.status != value {
            c.last_transition_time = now.clone();
        }
        c.status = value.into();
        c.reason = reason.into();
        c.message = message;
        c.observed_generation = generation;
        return;
    }
    status.conditions.push(Condition {
        type_: kind.into(),
        status: value.into(),
        reason: reason.into(),
        message,
        observed_generation: generation,
        last_transition_time: now.clone(),
    });
}

/// The savepoint directory for the next savepoint of `job`, under `savepoints.storage`
/// (`<storage>/<namespace>/<name>/savepoints/sp-<n>`), or `None` without savepoint storage.
pub fn savepoint_target(
    job: &FlinkJob,
    spec: &FlinkJobSpec,
    status: &FlinkJobStatus,
) -> Option<String> {
    let storage = spec.savepoints.as_ref()?.storage.as_ref()?;
    let n = status.savepoints.len() + 1;
    Some(format!(
        "{}/{}/{}/savepoints/sp-{n}",
        storage.0.trim_end_matches('/'),
        job.metadata.namespace.as_deref().unwrap_or("default"),
        job.metadata.name.as_deref().unwrap_or("job"),
    ))
}

/// The job's checkpoint directory (`<storage>/<namespace>/<name>/checkpoints`).
pub fn checkpoint_dir(job: &FlinkJob, spec: &FlinkJobSpec) -> Option<String> {
    let storage = &spec.checkpoints.as_ref()?.storage;
    Some(format!(
        "{}/{}/{}/checkpoints",
        storage.0.trim_end_matches('/'),
        job.metadata.namespace.as_deref().unwrap_or("default"),
        job.metadata.name.as_deref().unwrap_or("job"),
    ))
}

fn start(
    kind: OperationKind,
    phase: OperationPhase,
    target: ReconciledSpec,
    now: &Time,
) -> Operation {
    Operation {
        kind,
        phase,
        target,
        savepoint_target: None,
        trigger: None,
        savepoint_request: None,
        restore_from: None,
        started: now.clone(),
    }
}

/// The spec the job should run: the user's, with the vertex parallelism an `active`
/// autoscaler decided for this pipeline on top. A change of it is a rescale like any other.
pub fn effective_spec(job: &FlinkJob) -> FlinkJobSpec {
    let mut spec = job.spec.clone();
    spec.vertex_parallelism
        .extend(crate::autoscaling::applied(job));
    spec
}

/// The highest parallelism of any vertex under `spec` (what `status.parallelism` shows).
pub fn widest(spec: &FlinkJobSpec) -> i32 {
    spec.vertex_parallelism
        .values()
        .copied()
        .fold(spec.parallelism, i32::max)
}

/// Decides what to do for `job` given what was observed at `now`.
pub fn plan(job: &FlinkJob, observed: &Observed, now: &Time) -> Plan {
    let mut status = job.status.clone().unwrap_or_default();
    let mut actions = Vec::new();
    let generation = job.metadata.generation;
    status.selector = Some(format!(
        "strom.dev/job={}",
        job.metadata.name.as_deref().unwrap_or_default()
    ));

    // Observations that hold whatever else happens.
    if let Some((id, url, ms)) = &observed.checkpoint {
        let time = Time(jiff::Timestamp::from_millisecond(*ms).unwrap_or(now.0));
        status.last_checkpoint = Some(strom_crds::status::CheckpointInfo {
            id: *id as i64,
            time,
            location: url.clone(),
        });
    }

    // An invalid spec: say where, keep running what runs.
    let desired = match job.spec.validate() {
        Ok(()) => {
            if status
                .conditions
                .iter()
                .any(|c| c.type_ == "Degraded" && c.reason == "InvalidSpec" && c.status == "True")
            {
                set_condition(
                    &mut status,
                    "Degraded",
                    false,
                    "SpecValid",
                    "the spec is valid".into(),
                    generation,
                    now,
                );
            }
            Some(effective_spec(job))
        }
        Err(violations) => {
            let message = if status.last_reconciled_spec.is_some() {
                format!(
                    "the spec is invalid, so the job keeps running its last valid spec: {violations}"
                )
            } else {
                format!(
                    "the spec is invalid, so nothing is started until it is fixed: {violations}"
                )
            };
            let already = status.conditions.iter().any(|c| {
                c.type_ == "Degraded"
                    && c.reason == "InvalidSpec"
                    && c.observed_generation == generation
            });
            if !already {
                actions.push(Action::Event {
                    warning: true,
                    reason: "InvalidSpec",
                    message: message.clone(),
                });
            }
            set_condition(
                &mut status,
                "Degraded",
                true,
                "InvalidSpec",
                message,
                generation,
                now,
            );
            None
        }
    };

    let finalized = job
        .metadata
        .finalizers
        .as_ref()
        .is_some_and(|f| f.iter().any(|f| f == FINALIZER));
    if job.metadata.deletion_timestamp.is_some() {
        if finalized {
            delete(job, observed, now, &mut status, &mut actions);
        }
        return Plan { status, actions };
    }
    if !finalized {
        actions.push(Action::AddFinalizer);
    }
    if let Some(op) = status.operation.clone() {
        advance(job, op, observed, now, &mut status, &mut actions);
    } else if let Some(desired) = desired {
        steady(job, desired, observed, now, &mut status, &mut actions);
    }
    Plan { status, actions }
}

/// No change under way: start one if the spec asks for it, else watch the job.
fn steady(
    job: &FlinkJob,
    desired: FlinkJobSpec,
    observed: &Observed,
    now: &Time,
    status: &mut FlinkJobStatus,
    actions: &mut Vec<Action>,
) {
    let target = reconciled(job, &desired, now);
    let current = status.last_reconciled_spec.as_ref().and_then(spec_of);
    let suspended = status.lifecycle_state == Some(LifecycleState::Suspended);
    let Some(current) = current else {
        // First deployment.
        if desired.state == DesiredState::Suspended {
            status.lifecycle_state = Some(LifecycleState::Suspended);
            status.observed_generation = Some(target.generation);
            status.last_reconciled_spec = Some(target);
            return;
        }
        let mut op = start(OperationKind::Deploy, OperationPhase::Starting, target, now);
        op.restore_from = desired
            .restore
            .as_ref()
            .and_then(|r| r.initial_savepoint.as_ref())
            .map(|u| u.0.clone());
        let from = op
            .restore_from
            .clone()
            .unwrap_or_else(|| "empty state".into());
        actions.push(Action::Event {
            warning: false,
            reason: "DeployStarted",
            message: format!("deploying generation {} from {from}", op.target.generation),
        });
        status.lifecycle_state = Some(LifecycleState::Deploying);
        advance(job, op, observed, now, status, actions);
        return;
    };

    // Suspend and resume.
    if desired.state == DesiredState::Suspended && !suspended {
        let mut op = start(
            OperationKind::Suspend,
            OperationPhase::Savepointing,
            target,
            now,
        );
        // As Flink's operator: `last-state` suspends at the latest checkpoint (and resumes
        // from it); otherwise with a savepoint where there is storage for one.
        let last_state = desired.upgrade_mode == UpgradeMode::LastState;
        match savepoint_target(job, &current, status) {
            Some(t) if engine_running(observed) && !last_state => op.savepoint_target = Some(t),
            _ => op.phase = OperationPhase::Stopping,
        }
        actions.push(Action::Event {
            warning: false,
            reason: "SuspendStarted",
            message: match &op.savepoint_target {
                Some(t) => format!("suspending: stop with a savepoint into {t}"),
                None if last_state => {
                    "suspending without a savepoint (upgradeMode: last-state): the job stops at its latest checkpoint and resumes from it".into()
                }
                None => "suspending: no savepoint storage, the job stops at its latest checkpoint"
                    .into(),
            },
        });
        status.lifecycle_state = Some(LifecycleState::Upgrading);
        advance(job, op, observed, now, status, actions);
        return;
    }
    if desired.state == DesiredState::Running && suspended {
        let mut op = start(OperationKind::Resume, OperationPhase::Starting, target, now);
        let savepoint = status
            .last_savepoint
            .as_ref()
            .and_then(|s| s.location.clone());
        op.restore_from = if desired.upgrade_mode == UpgradeMode::LastState {
            observed.latest_checkpoint.clone().or(savepoint)
        } else {
            savepoint.or_else(|| observed.latest_checkpoint.clone())
        };
        actions.push(Action::Event {
            warning: false,
            reason: "ResumeStarted",
            message: format!(
                "resuming from {}",
                op.restore_from.as_deref().unwrap_or("empty state")
            ),
        });
        status.lifecycle_state = Some(LifecycleState::Deploying);
        advance(job, op, observed, now, status, actions);
        return;
    }
    if suspended {
        // Nothing runs, so an edit has nothing to act on until the resume; it has been seen,
        // and tools that wait for the status to catch up (kubectl wait, Argo CD, Flux) settle.
        status.observed_generation = Some(target.generation);
        return;
    }

    // A spec change.
    let degraded_at = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Degraded" && c.status == "True" && c.reason == "UpgradeFailed")
        .and_then(|c| c.observed_generation);
    let change = classify(&current, &desired);
    if change == SpecChange::Redeploy && degraded_at != Some(target.generation) {
        // Back to a given snapshot: no savepoint of the state being left behind.
        let mut op = start(
            OperationKind::Upgrade,
            OperationPhase::Stopping,
            target,
            now,
        );
        op.restore_from = desired
            .restore
            .as_ref()
            .and_then(|r| r.initial_savepoint.as_ref())
            .map(|u| u.0.clone());
        actions.push(Action::Event {
            warning: false,
            reason: "RedeployStarted",
            message: format!(
                "redeploying generation {} from {} (restore.redeployNonce changed); the running state is not saved",
                op.target.generation,
                op.restore_from.as_deref().unwrap_or("empty state")
            ),
        });
        status.lifecycle_state = Some(LifecycleState::Upgrading);
        advance(job, op, observed, now, status, actions);
        return;
    }
    if change > SpecChange::None && degraded_at != Some(target.generation) {
        let (kind, how) = match change {
            SpecChange::Rescale => (OperationKind::Rescale, UpgradeMode::Savepoint),
            SpecChange::Restart => (OperationKind::Restart, UpgradeMode::LastState),
            _ => (OperationKind::Upgrade, desired.upgrade_mode),
        };
        // A rescale needs state re-split: through a savepoint where there is storage for
        // one, else through the latest checkpoint.
        let how = match how {
            UpgradeMode::Savepoint if savepoint_target(job, &current, status).is_none() => {
                if current.checkpoints.is_some() {
                    UpgradeMode::LastState
                } else {
                    UpgradeMode::Stateless
                }
            }
            m => m,
        };
        let mut op = start(kind, OperationPhase::Stopping, target, now);
        if how == UpgradeMode::Savepoint && engine_running(observed) {
            op.phase = OperationPhase::Savepointing;
            op.savepoint_target = savepoint_target(job, &current, status);
        }
        actions.push(Action::Event {
            warning: false,
            reason: if kind == OperationKind::Rescale {
                "RescaleStarted"
            } else {
                "UpgradeStarted"
            },
            message: format!(
                "applying generation {} ({:?}) by {how}{}",
                op.target.generation,
                change,
                op.savepoint_target
                    .as_deref()
                    .map(|t| format!(": stop with a savepoint into {t}"))
                    .unwrap_or_default()
            ),
        });
        status.lifecycle_state = Some(LifecycleState::Upgrading);
        advance(job, op, observed, now, status, actions);
        return;
    }

    // Watch the running job.
    watch(job, observed, now, status, actions);
}

fn watch(
    job: &FlinkJob,
    observed: &Observed,
    now: &Time,
    status: &mut FlinkJobStatus,
    actions: &mut Vec<Action>,
) {
    let generation = job.metadata.generation;
    match observed.deployed.as_ref().map(|d| &d.pod) {
        Some(PodState::Running { ready: true }) => {
            // Healthy = running and checkpointing: a checkpoint completed after the version
            // was deployed makes it the one a rollback returns to.
            if let (Some(r), Some(c)) = (&status.last_reconciled_spec, &status.last_checkpoint)
                && r.time.as_ref().is_some_and(|t| c.time.0 > t.0)
                && status.last_stable_spec.as_ref().map(|s| &s.hash) != Some(&r.hash)
            {
                status.last_stable_spec = Some(r.clone());
            }
            status.lifecycle_state = Some(LifecycleState::Running);
            status.job_state = Some(strom_crds::status::JobState::Running);
            if status.failures > 0 && observed.checkpoint.is_some() {
                status.failures = 0;
            }
            set_condition(
                status,
                "Ready",
                true,
                "Running",
                "the engine runs and checkpoints".into(),
                generation,
                now,
            );
        }
        Some(PodState::Succeeded) => {
            status.job_state = Some(strom_crds::status::JobState::Finished);
            set_condition(
                status,
                "Ready",
                false,
                "Finished",
                "the job finished".into(),
                generation,
                now,
            );
        }
        Some(PodState::Crashing { restarts, message }) => {
            engine_failed(*restarts, message, generation, now, status, actions);
        }
        Some(PodState::Absent) | None
            if status.lifecycle_state == Some(LifecycleState::Running) =>
        {
            // The resources were removed by someone else: redeploy from the latest
            // checkpoint.
            if let Some(r) = status.last_reconciled_spec.clone() {
                let mut op = start(OperationKind::Restart, OperationPhase::Starting, r, now);
                op.restore_from = observed.latest_checkpoint.clone();
                status.lifecycle_state = Some(LifecycleState::Deploying);
                status.operation = Some(op);
            }
        }
        _ => {}
    }
    if status.operation.is_none()
        && status.lifecycle_state == Some(LifecycleState::Running)
        && observed
            .deployed
            .as_ref()
            .is_some_and(|d| d.pod == PodState::Running { ready: true })
    {
        scheduled_savepoint(job, now, status, actions);
    }
}

fn engine_running(observed: &Observed) -> bool {
    observed
        .deployed
        .as_ref()
        .is_some_and(|d| matches!(d.pod, PodState::Running { .. }))
}

/// The FlinkJob is being deleted: stop the job, with a savepoint where there is storage for
/// one (savepoints are kept), then release the object; the objects it owns go with it.
fn delete(
    job: &FlinkJob,
    observed: &Observed,
    now: &Time,
    status: &mut FlinkJobStatus,
    actions: &mut Vec<Action>,
) {
    let op = match status.operation.clone() {
        Some(op) if op.kind == OperationKind::Delete => op,
        _ => {
            let target = status
                .last_reconciled_spec
                .clone()
                .unwrap_or_else(|| reconciled(job, &job.spec, now));
            let mut op = start(
                OperationKind::Delete,
                OperationPhase::Stopping,
                target.clone(),
                now,
            );
            let running = observed
                .deployed
                .as_ref()
                .is_some_and(|d| matches!(d.pod, PodState::Running { .. }));
            if running
                && let Some(spec) = spec_of(&target)
                && let Some(t) = savepoint_target(job, &spec, status)
            {
                op.phase = OperationPhase::Savepointing;
                op.savepoint_target = Some(t);
                op.trigger = Some(SavepointTrigger::Suspend);
            }
            actions.push(Action::Event {
                warning: false,
                reason: "DeleteStarted",
                message: match &op.savepoint_target {
                    Some(t) => format!("deleting: stop with a savepoint into {t} (kept)"),
                    None => "deleting: stopping the job".into(),
                },
            });
            status.lifecycle_state = Some(LifecycleState::Deleting);
            op
        }
    };
    status.operation = Some(op.clone());
    advance(job, op, observed, now, status, actions);
}

/// The rollback an upgrade in its `Starting` phase needs, if it is due: rollback enabled, the
/// new version not running healthily within the readiness timeout, and a last stable spec
/// to return to (from the savepoint taken before the upgrade).
fn rollback_due(
    op: &Operation,
    spec: &FlinkJobSpec,
    observed: &Observed,
    now: &Time,
    status: &FlinkJobStatus,
) -> Option<Operation> {
    if !matches!(op.kind, OperationKind::Upgrade | OperationKind::Rescale) {
        return None;
    }
    let rollback = spec.rollback.as_ref().filter(|r| r.enabled)?;
    let timeout = rollback.readiness_timeout.to_std().ok()?;
    let healthy = observed
        .deployed
        .as_ref()
        .is_some_and(|d| d.hash == op.target.hash && d.pod == PodState::Running { ready: true });
    let elapsed = now.0.as_millisecond() - op.started.0.as_millisecond();
    if healthy || elapsed < timeout.as_millis() as i64 {
        return None;
    }
    let stable = status.last_stable_spec.clone()?;
    if stable.hash == op.target.hash {
        return None;
    }
    let mut back = start(
        OperationKind::Rollback,
        OperationPhase::Stopping,
        stable,
        now,
    );
    // The savepoint taken before the upgrade is what the new version restored from.
    back.restore_from = op.restore_from.clone();
    Some(back)
}

/// An on-demand (`triggerNonce`) or periodic savepoint of the running job, when due.
fn scheduled_savepoint(
    job: &FlinkJob,
    now: &Time,
    status: &mut FlinkJobStatus,
    actions: &mut Vec<Action>,
) {
    let Some(current) = status.last_reconciled_spec.clone() else {
        return;
    };
    let Some(spec) = spec_of(&current) else {
        return;
    };
    let nonce = job.spec.savepoints.as_ref().and_then(|s| s.trigger_nonce);
    let trigger = if nonce.is_some() && nonce != status.savepoint_trigger_nonce {
        // Acted on once, whatever comes of it.
        status.savepoint_trigger_nonce = nonce;
        Some(SavepointTrigger::Manual)
    } else {
        let every = job
            .spec
            .savepoints
            .as_ref()
            .and_then(|s| s.periodic_interval.as_ref())
            .and_then(|d| d.to_std().ok());
        let since = status
            .last_savepoint
            .as_ref()
            .map(|s| s.time.clone())
            .or_else(|| current.time.clone());
        match (every, since) {
            (Some(every), Some(since))
                if now.0.as_millisecond() - since.0.as_millisecond()
                    >= every.as_millis() as i64 =>
            {
                Some(SavepointTrigger::Periodic)
            }
            _ => None,
        }
    };
    let Some(trigger) = trigger else { return };
    let Some(target) = savepoint_target(job, &spec, status) else {
        if trigger == SavepointTrigger::Manual {
            actions.push(Action::Event {
                warning: true,
                reason: "SavepointFailed",
                message:
                    "spec.savepoints.triggerNonce changed, but spec.savepoints.storage is not set"
                        .into(),
            });
        }
        return;
    };
    let mut op = start(
        OperationKind::Savepoint,
        OperationPhase::Savepointing,
        current,
        now,
    );
    op.savepoint_target = Some(target.clone());
    op.trigger = Some(trigger);
    actions.push(Action::RequestSavepoint {
        target: target.clone(),
        stop: false,
    });
    actions.push(Action::Event {
        warning: false,
        reason: "SavepointTriggered",
        message: format!(
            "{} savepoint into {target}",
            if trigger == SavepointTrigger::Manual {
                "on-demand"
            } else {
                "periodic"
            }
        ),
    });
    status.operation = Some(op);
}

/// A change is under way: take its next step.
fn advance(
    job: &FlinkJob,
    mut op: Operation,
    observed: &Observed,
    now: &Time,
    status: &mut FlinkJobStatus,
    actions: &mut Vec<Action>,
) {
    let generation = job.metadata.generation;
    let target_spec = spec_of(&op.target);
    let current_spec = status.last_reconciled_spec.as_ref().and_then(spec_of);
    match op.phase {
        OperationPhase::Savepointing => match &observed.savepoint {
            SavepointProgress::Completed(location) => {
                let info = SavepointInfo {
                    id: format!("sp-{}", status.savepoints.len() + 1),
                    location: Some(location.clone()),
                    generation: status.last_reconciled_spec.as_ref().map(|r| r.generation),
                    trigger: op.trigger.unwrap_or(if op.kind == OperationKind::Suspend {
                        SavepointTrigger::Suspend
                    } else {
                        SavepointTrigger::Upgrade
                    }),
                    time: now.clone(),
                    state: SavepointState::Completed,
                    message: None,
                };
                status.savepoints.push(info.clone());
                status.last_savepoint = Some(info);
                actions.push(Action::Event {
                    warning: false,
                    reason: "SavepointCompleted",
                    message: format!("savepoint written to {location}"),
                });
                actions.push(Action::DisposeSavepoints);
                if op.kind == OperationKind::Savepoint {
                    // The job goes on.
                    status.operation = None;
                    return;
                }
                op.restore_from = Some(location.clone());
                op.phase = OperationPhase::Stopping;
                op.savepoint_request = None;
                status.operation = Some(op.clone());
                advance(job, op, observed, now, status, actions);
            }
            SavepointProgress::Failed(why) if op.kind == OperationKind::Delete => {
                actions.push(Action::Event {
                    warning: true,
                    reason: "SavepointFailed",
                    message: format!("no savepoint before deletion ({why}); stopping at the latest checkpoint, which is kept"),
                });
                op.phase = OperationPhase::Stopping;
                op.savepoint_target = None;
                status.operation = Some(op.clone());
                advance(job, op, observed, now, status, actions);
            }
            SavepointProgress::Failed(why) => {
                let message = if op.kind == OperationKind::Savepoint {
                    format!(
                        "the savepoint into {} failed: {why}",
                        op.savepoint_target.as_deref().unwrap_or("?")
                    )
                } else {
                    format!(
                        "generation {} was not applied: the savepoint before it failed: {why}",
                        op.target.generation
                    )
                };
                savepoint_failed(op, message, now, status, actions);
            }
            SavepointProgress::InProgress => {
                status.operation = Some(op);
            }
            SavepointProgress::Unknown
                if op.kind == OperationKind::Delete
                    && !observed
                        .deployed
                        .as_ref()
                        .is_some_and(|d| matches!(d.pod, PodState::Running { .. })) =>
            {
                op.phase = OperationPhase::Stopping;
                op.savepoint_target = None;
                status.operation = Some(op.clone());
                advance(job, op, observed, now, status, actions);
            }
            SavepointProgress::Unknown
                if op.savepoint_request.is_some()
                    && !observed
                        .deployed
                        .as_ref()
                        .is_some_and(|d| matches!(d.pod, PodState::Running { .. })) =>
            {
                // Requested, but the engine is no longer running and the savepoint is not in
                // storage: it was never completed.
                let message = format!(
                    "generation {} was not applied: the engine stopped before its savepoint into {} completed",
                    op.target.generation,
                    op.savepoint_target.as_deref().unwrap_or("?")
                );
                savepoint_failed(op, message, now, status, actions);
            }
            SavepointProgress::Unknown
                if op.savepoint_request.is_none() && !engine_running(observed) =>
            {
                // The engine stopped before it could be asked: no savepoint is possible;
                // Stopping decides what to start from (a checkpoint, never empty state
                // where there was state).
                actions.push(Action::Event {
                    warning: true,
                    reason: "SavepointSkipped",
                    message: "the engine is not running, so no savepoint can be taken".into(),
                });
                if op.kind == OperationKind::Savepoint {
                    status.operation = None;
                    return;
                }
                op.phase = OperationPhase::Stopping;
                op.savepoint_target = None;
                status.operation = Some(op.clone());
                advance(job, op, observed, now, status, actions);
            }
            SavepointProgress::Unknown => {
                if op.savepoint_request.is_none()
                    && let Some(target) = &op.savepoint_target
                {
                    actions.push(Action::RequestSavepoint {
                        target: target.clone(),
                        stop: op.kind != OperationKind::Savepoint,
                    });
                    actions.push(Action::Event {
                        warning: false,
                        reason: "SavepointTriggered",
                        message: format!("stop with a savepoint into {target}"),
                    });
                }
                status.operation = Some(op);
            }
        },
        OperationPhase::Stopping => {
            if observed
                .deployed
                .as_ref()
                .is_some_and(|d| d.pod != PodState::Absent)
            {
                actions.push(Action::StopEngine);
                status.operation = Some(op);
                return;
            }
            if op.kind == OperationKind::Delete {
                status.operation = None;
                actions.push(Action::ReleaseFinalizer);
                return;
            }
            if op.kind == OperationKind::Suspend {
                status.lifecycle_state = Some(LifecycleState::Suspended);
                status.job_state = None;
                status.observed_generation = Some(op.target.generation);
                status.last_reconciled_spec = Some(op.target.clone());
                set_condition(
                    status,
                    "Ready",
                    false,
                    "Suspended",
                    "the job is suspended".into(),
                    generation,
                    now,
                );
                actions.push(Action::Event {
                    warning: false,
                    reason: "Suspended",
                    message: "the job is suspended; its pods are gone".into(),
                });
                status.operation = None;
                return;
            }
            if op.restore_from.is_none() {
                let how = match op.kind {
                    OperationKind::Restart => UpgradeMode::LastState,
                    OperationKind::Rescale => {
                        if current_spec
                            .as_ref()
                            .is_some_and(|c| c.checkpoints.is_some())
                        {
                            UpgradeMode::LastState
                        } else {
                            UpgradeMode::Stateless
                        }
                    }
                    _ => target_spec
                        .as_ref()
                        .map_or(UpgradeMode::Stateless, |s| s.upgrade_mode),
                };
                match how {
                    UpgradeMode::LastState => op.restore_from = observed.latest_checkpoint.clone(),
                    // A savepoint upgrade of a job that could not take one (it was not
                    // running): its latest checkpoint, or nothing — never empty state.
                    UpgradeMode::Savepoint if op.kind != OperationKind::Deploy => {
                        match &observed.latest_checkpoint {
                            Some(c) => {
                                actions.push(Action::Event {
                                    warning: true,
                                    reason: "RestoringFromCheckpoint",
                                    message: format!(
                                        "no savepoint could be taken (the job was not running); generation {} starts from the latest checkpoint {c}",
                                        op.target.generation
                                    ),
                                });
                                op.restore_from = Some(c.clone());
                            }
                            None => {
                                let message = format!(
                                    "generation {} was not applied: no savepoint could be taken (the job was not running) and there is no checkpoint; it is not started from empty state",
                                    op.target.generation
                                );
                                savepoint_failed(op, message, now, status, actions);
                                return;
                            }
                        }
                    }
                    _ => {}
                }
            }
            op.phase = OperationPhase::Starting;
            status.operation = Some(op.clone());
            advance(job, op, observed, now, status, actions);
        }
        OperationPhase::Starting => {
            let Some(spec) = target_spec else {
                status.operation = None;
                return;
            };
            if let Some(rollback) = rollback_due(&op, &spec, observed, now, status) {
                let message = format!(
                    "generation {} did not become healthy within {}; rolling back to generation {}{}",
                    op.target.generation,
                    spec.rollback
                        .as_ref()
                        .map_or("?", |r| r.readiness_timeout.0.as_str()),
                    rollback.target.generation,
                    rollback
                        .restore_from
                        .as_deref()
                        .map(|r| format!(" from {r}"))
                        .unwrap_or_default()
                );
                actions.push(Action::Event {
                    warning: true,
                    reason: "RollbackStarted",
                    message: message.clone(),
                });
                set_condition(
                    status,
                    "Degraded",
                    true,
                    "UpgradeFailed",
                    message,
                    Some(op.target.generation),
                    now,
                );
                status.lifecycle_state = Some(LifecycleState::RollingBack);
                status.operation = Some(rollback.clone());
                advance(job, rollback, observed, now, status, actions);
                return;
            }
            let deployed_now = observed
                .deployed
                .as_ref()
                .is_some_and(|d| d.hash == op.target.hash);
            if !deployed_now {
                actions.push(Action::Deploy {
                    spec: Box::new(spec.clone()),
                    hash: op.target.hash.clone(),
                    restore_from: op.restore_from.clone(),
                    deployment: format!(
                        "g{}-{}",
                        op.target.generation,
                        op.started.0.as_millisecond()
                    ),
                });
                if let Some(from) = &op.restore_from {
                    actions.push(Action::Event {
                        warning: false,
                        reason: "RestoredFrom",
                        message: format!("generation {} starts from {from}", op.target.generation),
                    });
                }
                status.operation = Some(op);
                return;
            }
            if let Some(Deployed {
                pod: PodState::Crashing { restarts, message },
                ..
            }) = &observed.deployed
            {
                if engine_failed(*restarts, message, generation, now, status, actions) {
                    // This version does not run; it is not deployed again until the spec
                    // changes.
                    status.last_reconciled_spec = Some(op.target.clone());
                    status.observed_generation = Some(op.target.generation);
                    status.operation = None;
                } else {
                    status.operation = Some(op);
                }
                return;
            }
            if observed
                .deployed
                .as_ref()
                .is_some_and(|d| d.pod == PodState::Running { ready: true })
            {
                status.lifecycle_state = Some(LifecycleState::Running);
                status.parallelism = Some(widest(&spec));
                status.observed_generation = Some(op.target.generation);
                status.last_reconciled_spec = Some(op.target.clone());
                status.operation = None;
                status.failures = 0;
                actions.push(Action::Event {
                    warning: false,
                    reason: match op.kind {
                        OperationKind::Deploy => "Deployed",
                        OperationKind::Rollback => "RolledBack",
                        OperationKind::Rescale => "Rescaled",
                        OperationKind::Resume => "Resumed",
                        OperationKind::Restart => "Restarted",
                        _ => "Upgraded",
                    },
                    message: format!(
                        "generation {} runs at parallelism {}{}",
                        op.target.generation,
                        spec.parallelism,
                        if spec.vertex_parallelism.is_empty() {
                            String::new()
                        } else {
                            let each: Vec<String> = spec
                                .vertex_parallelism
                                .iter()
                                .map(|(id, n)| format!("{id}={n}"))
                                .collect();
                            format!(" ({})", each.join(", "))
                        }
                    ),
                });
                set_condition(
                    status,
                    "Ready",
                    true,
                    "Running",
                    "the engine runs".into(),
                    generation,
                    now,
                );
            } else {
                status.operation = Some(op);
            }
        }
    }
}

/// The savepoint an operation needed failed: never fall back to empty state; the old
/// version keeps running, and the same generation is not retried until the spec changes.
fn savepoint_failed(
    op: Operation,
    message: String,
    now: &Time,
    status: &mut FlinkJobStatus,
    actions: &mut Vec<Action>,
) {
    actions.push(Action::Event {
        warning: true,
        reason: if op.kind == OperationKind::Savepoint {
            "SavepointFailed"
        } else {
            "UpgradeFailed"
        },
        message: message.clone(),
    });
    status.last_error = Some(ErrorInfo {
        message: message.clone(),
        time: now.clone(),
    });
    status.savepoints.push(SavepointInfo {
        id: format!("sp-{}", status.savepoints.len() + 1),
        location: None,
        generation: status.last_reconciled_spec.as_ref().map(|r| r.generation),
        trigger: op.trigger.unwrap_or(if op.kind == OperationKind::Suspend {
            SavepointTrigger::Suspend
        } else {
            SavepointTrigger::Upgrade
        }),
        time: now.clone(),
        state: SavepointState::Failed,
        message: Some(message.clone()),
    });
    if op.kind != OperationKind::Savepoint {
        set_condition(
            status,
            "Degraded",
            true,
            "UpgradeFailed",
            message,
            Some(op.target.generation),
            now,
        );
    }
    status.lifecycle_state = Some(LifecycleState::Running);
    status.operation = None;
}

/// The engine pod crashed `restarts` times (Kubernetes restarts it, and it resumes its
/// deployment's latest checkpoint). Counts it, says so, and after [`MAX_FAILURES`] declares
/// the job `Failed` and stops it. Returns whether the job is now failed.
fn engine_failed(
    restarts: i32,
    message: &str,
    generation: Option<i64>,
    now: &Time,
    status: &mut FlinkJobStatus,
    actions: &mut Vec<Action>,
) -> bool {
    if restarts > status.failures {
        status.failures = restarts;
        actions.push(Action::Event {
            warning: true,
            reason: "EngineFailed",
            message: format!("the engine failed ({restarts} restarts): {message}"),
        });
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
    set_condition(
        status,
        "Ready",
        false,
        "Failed",
        message.to_owned(),
        generation,
        now,
    );
    set_condition(
        status,
        "Degraded",
        true,
        "JobFailed",
        format!(
            "the engine failed {} times; the job is stopped until its spec changes: {message}",
            status.failures
        ),
        generation,
        now,
    );
    actions.push(Action::StopEngine);
    actions.push(Action::Event {
        warning: true,
        reason: "JobFailed",
        message: format!("the engine failed {} times: {message}", status.failures),
    });
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Time {
        Time(jiff::Timestamp::from_second(1_800_000_000).unwrap())
    }

    const BASE: &str = "image: strom/engine:0.1.0
parallelism: 2
upgradeMode: savepoint
checkpoints: {storage: 's3://state/c'}
savepoints: {storage: 's3://state/s'}
job: {sources: [{name: s, datagen: {rate: 10, columns: [{name: v, expr: id}]}}], sinks: [{name: o, input: s, stdout: {}}]}
";

    fn job(extra: &str, generation: i64, status: Option<FlinkJobStatus>) -> FlinkJob {
        let mut spec: serde_json::Value = serde_yaml_ng::from_str(BASE).unwrap();
        let extra: serde_json::Value =
            serde_yaml_ng::from_str(if extra.is_empty() { "{}" } else { extra }).unwrap();
        for (k, v) in extra.as_object().unwrap() {
            spec[k] = v.clone();
        }
        let mut job = FlinkJob::new("fraud", serde_json::from_value(spec).unwrap());
        job.metadata.namespace = Some("payments".into());
        job.metadata.generation = Some(generation);
        job.metadata.finalizers = Some(vec![FINALIZER.into()]);
        job.status = status;
        job
    }

    fn observed(pod: Option<PodState>, hash: &str) -> Observed {
        Observed {
            deployed: pod.map(|pod| Deployed {
                hash: hash.into(),
                pod,
            }),
            job_state: None,
            checkpoint: None,
            savepoint: SavepointProgress::Unknown,
            latest_checkpoint: Some("s3://state/c/payments/fraud/checkpoints/chk-9".into()),
        }
    }

    fn reasons(p: &Plan) -> Vec<&'static str> {
        p.actions
            .iter()
            .filter_map(|a| match a {
                Action::Event { reason, .. } => Some(*reason),
                _ => None,
            })
            .collect()
    }

    fn deploys(p: &Plan) -> Vec<(String, Option<String>)> {
        p.actions
            .iter()
            .filter_map(|a| match a {
                Action::Deploy {
                    hash, restore_from, ..
                } => Some((hash.clone(), restore_from.clone())),
                _ => None,
            })
            .collect()
    }

    /// A job running generation 1 of BASE.
    fn running() -> (FlinkJob, String) {
        let j = job("", 1, None);
        let p = plan(&j, &observed(None, ""), &now());
        let hash = spec_hash(&j.spec);
        let j = job("", 1, Some(p.status));
        let p = plan(
            &j,
            &observed(Some(PodState::Running { ready: true }), &hash),
            &now(),
        );
        assert_eq!(p.status.lifecycle_state, Some(LifecycleState::Running));
        (job("", 1, Some(p.status)), hash)
    }

    #[test]
    fn first_deploy_records_the_step_then_deploys_then_reports_running() {
        let j = job("restore: {initialSavepoint: 's3://old/sp-3'}", 1, None);
        let p = plan(&j, &observed(None, ""), &now());
        let op = p.status.operation.clone().unwrap();
        assert_eq!(
            (op.kind, op.phase),
            (OperationKind::Deploy, OperationPhase::Starting)
        );
        assert_eq!(op.restore_from.as_deref(), Some("s3://old/sp-3"));
        assert_eq!(p.status.lifecycle_state, Some(LifecycleState::Deploying));
        assert_eq!(
            deploys(&p),
            vec![(spec_hash(&j.spec), Some("s3://old/sp-3".into()))]
        );
        assert!(reasons(&p).contains(&"DeployStarted"));

        // The pod is starting: nothing more to do.
        let j2 = job(
            "restore: {initialSavepoint: 's3://old/sp-3'}",
            1,
            Some(p.status),
        );
        let p = plan(
            &j2,
            &observed(Some(PodState::Pending), &spec_hash(&j.spec)),
            &now(),
        );
        assert!(p.actions.is_empty(), "{:?}", p.actions);
        assert!(p.status.operation.is_some());
    }

    #[test]
    fn savepoint_upgrade_takes_a_savepoint_stops_and_restores_exactly_it() {
        let (j, old_hash) = running();
        let running_pod = || Some(PodState::Running { ready: true });
        // An edit: the image changes.
        let edit = |status| job("image: strom/engine:0.2.0", 2, Some(status));
        let p = plan(
            &edit(j.status.clone().unwrap()),
            &observed(running_pod(), &old_hash),
            &now(),
        );
        let op = p.status.operation.clone().unwrap();
        assert_eq!(
            (op.kind, op.phase),
            (OperationKind::Upgrade, OperationPhase::Savepointing)
        );
        assert_eq!(
            op.savepoint_target.as_deref(),
            Some("s3://state/s/payments/fraud/savepoints/sp-1")
        );
        // The target is in the status the controller writes before it asks the engine.
        assert!(p.actions.contains(&Action::RequestSavepoint {
            target: "s3://state/s/payments/fraud/savepoints/sp-1".into(),
            stop: true
        }));
        let mut status = p.status;
        status.operation.as_mut().unwrap().savepoint_request = Some("savepoint-1".into());
        // In progress: wait.
        let mut o = observed(running_pod(), &old_hash);
        o.savepoint = SavepointProgress::InProgress;
        let p = plan(&edit(status), &o, &now());
        assert!(p.actions.is_empty());
        // Done: stop the engine, remember where it went.
        o.savepoint =
            SavepointProgress::Completed("s3://state/s/payments/fraud/savepoints/sp-1".into());
        o.deployed = Some(Deployed {
            hash: old_hash.clone(),
            pod: PodState::Succeeded,
        });
        let p = plan(&edit(p.status), &o, &now());
        assert!(p.actions.contains(&Action::StopEngine));
        let op = p.status.operation.clone().unwrap();
        assert_eq!(op.phase, OperationPhase::Stopping);
        assert_eq!(
            op.restore_from.as_deref(),
            Some("s3://state/s/payments/fraud/savepoints/sp-1")
        );
        assert_eq!(p.status.savepoints.len(), 1);
        // Gone: deploy the new version from exactly that savepoint (not the newer checkpoint).
        let p = plan(&edit(p.status), &observed(None, ""), &now());
        let new_hash = spec_hash(&edit(FlinkJobStatus::default()).spec);
        assert_eq!(
            deploys(&p),
            vec![(
                new_hash.clone(),
                Some("s3://state/s/payments/fraud/savepoints/sp-1".into())
            )]
        );
        // Running: done.
        let p = plan(&edit(p.status), &observed(running_pod(), &new_hash), &now());
        assert!(p.status.operation.is_none());
        assert_eq!(
            p.status.last_reconciled_spec.as_ref().unwrap().generation,
            2
        );
        assert!(reasons(&p).contains(&"Upgraded"));
    }

    #[test]
    fn an_operator_restarted_mid_upgrade_resumes_the_recorded_step() {
        let (j, old_hash) = running();
        let edit = |status| job("image: strom/engine:0.2.0", 2, Some(status));
        let p = plan(
            &edit(j.status.clone().unwrap()),
            &observed(Some(PodState::Running { ready: true }), &old_hash),
            &now(),
        );
        // Killed after the savepoint completed and the pods were deleted, before recording:
        // the restarted operator sees the savepoint in storage and no pods.
        let mut status = p.status.clone();
        status.operation.as_mut().unwrap().savepoint_request = Some("savepoint-1".into());
        let mut o = observed(None, "");
        o.savepoint =
            SavepointProgress::Completed("s3://state/s/payments/fraud/savepoints/sp-1".into());
        let p = plan(&edit(status), &o, &now());
        let restore: Vec<_> = deploys(&p).into_iter().map(|d| d.1).collect();
        assert_eq!(
            restore,
            vec![Some("s3://state/s/payments/fraud/savepoints/sp-1".into())]
        );
        // Killed after the new pods were created: no second deploy, it just waits.
        let new_hash = spec_hash(&edit(FlinkJobStatus::default()).spec);
        let p = plan(
            &edit(p.status),
            &observed(Some(PodState::Pending), &new_hash),
            &now(),
        );
        assert!(deploys(&p).is_empty());
        assert_eq!(
            p.status.operation.unwrap().restore_from.as_deref(),
            Some("s3://state/s/payments/fraud/savepoints/sp-1")
        );
    }

    #[test]
    fn a_failed_savepoint_keeps_the_old_version_running_and_is_not_retried() {
        let (j, old_hash) = running();
        let edit = |status| job("image: strom/engine:0.2.0", 2, Some(status));
        let running_pod = || observed(Some(PodState::Running { ready: true }), &old_hash);
        let p = plan(&edit(j.status.clone().unwrap()), &running_pod(), &now());
        let mut o = running_pod();
        o.savepoint = SavepointProgress::Failed("the job has failed".into());
        let p = plan(&edit(p.status), &o, &now());
        assert!(p.status.operation.is_none());
        assert!(deploys(&p).is_empty() && !p.actions.contains(&Action::StopEngine));
        assert!(reasons(&p).contains(&"UpgradeFailed"));
        let degraded = p
            .status
            .conditions
            .iter()
            .find(|c| c.type_ == "Degraded")
            .unwrap();
        assert_eq!(degraded.status, "True");
        assert!(
            degraded.message.contains("the job has failed"),
            "{}",
            degraded.message
        );
        // The same generation is not tried again.
        let p = plan(&edit(p.status), &running_pod(), &now());
        assert!(p.status.operation.is_none(), "{:?}", p.status.operation);
        // A new edit is.
        let p = plan(
            &job("image: strom/engine:0.3.0", 3, Some(p.status)),
            &running_pod(),
            &now(),
        );
        assert_eq!(
            p.status.operation.unwrap().phase,
            OperationPhase::Savepointing
        );
    }

    #[test]
    fn upgrade_modes_decide_what_the_new_version_starts_from() {
        for (mode, want) in [
            (
                "last-state",
                Some("s3://state/c/payments/fraud/checkpoints/chk-9"),
            ),
            ("stateless", None),
        ] {
            let (j, old_hash) = running();
            let edit = |status| {
                job(
                    &format!("upgradeMode: {mode}\nimage: strom/engine:0.2.0"),
                    2,
                    Some(status),
                )
            };
            let p = plan(
                &edit(j.status.clone().unwrap()),
                &observed(Some(PodState::Running { ready: true }), &old_hash),
                &now(),
            );
            assert_eq!(
                p.status.operation.as_ref().unwrap().phase,
                OperationPhase::Stopping,
                "{mode}"
            );
            assert!(p.actions.contains(&Action::StopEngine), "{mode}");
            let p = plan(&edit(p.status), &observed(None, ""), &now());
            let restore: Vec<_> = deploys(&p).into_iter().map(|d| d.1).collect();
            assert_eq!(restore, vec![want.map(str::to_owned)], "{mode}");
        }
    }

    #[test]
    fn a_rescale_goes_through_a_savepoint_whatever_the_upgrade_mode() {
        let (j, old_hash) = running();
        let p = plan(
            &job(
                "upgradeMode: stateless\nparallelism: 4",
                2,
                j.status.clone(),
            ),
            &observed(Some(PodState::Running { ready: true }), &old_hash),
            &now(),
        );
        let op = p.status.operation.clone().unwrap();
        assert_eq!(
            (op.kind, op.phase),
            (OperationKind::Rescale, OperationPhase::Savepointing)
        );
        assert!(reasons(&p).contains(&"RescaleStarted"));
    }

    #[test]
    fn an_invalid_edit_is_reported_once_and_the_running_job_is_untouched() {
        let (j, old_hash) = running();
        let bad = |status| job("parallelism: 0", 2, Some(status));
        let o = observed(Some(PodState::Running { ready: true }), &old_hash);
        let p = plan(&bad(j.status.clone().unwrap()), &o, &now());
        assert_eq!(reasons(&p), vec!["InvalidSpec"]);
        assert!(p.status.operation.is_none());
        assert_eq!(p.actions.len(), 1);
        let c = p
            .status
            .conditions
            .iter()
            .find(|c| c.type_ == "Degraded")
            .unwrap();
        assert!(c.message.contains("spec.parallelism"), "{}", c.message);
        let p = plan(&bad(p.status), &o, &now());
        assert!(p.actions.is_empty(), "reported again: {:?}", p.actions);
    }

    #[test]
    fn repeated_engine_failures_end_in_failed_with_the_reason() {
        let (j, hash) = running();
        let mut status = j.status.clone().unwrap();
        for restarts in 1..=MAX_FAILURES {
            let o = observed(
                Some(PodState::Crashing {
                    restarts,
                    message: "cannot read /data/in.csv: No such file".into(),
                }),
                &hash,
            );
            let p = plan(&job("", 1, Some(status)), &o, &now());
            assert!(reasons(&p).contains(&"EngineFailed"), "{restarts}");
            status = p.status;
            if restarts < MAX_FAILURES {
                assert_ne!(status.lifecycle_state, Some(LifecycleState::Failed));
            } else {
                assert_eq!(status.lifecycle_state, Some(LifecycleState::Failed));
                assert!(p.actions.contains(&Action::StopEngine));
                assert!(
                    status
                        .last_error
                        .as_ref()
                        .unwrap()
                        .message
                        .contains("No such file")
                );
            }
        }
    }

    #[test]
    fn suspend_takes_a_savepoint_and_resume_restores_it() {
        let (j, hash) = running();
        let pod = || observed(Some(PodState::Running { ready: true }), &hash);
        let suspend = |status| job("state: suspended", 2, Some(status));
        let p = plan(&suspend(j.status.clone().unwrap()), &pod(), &now());
        assert_eq!(
            p.status.operation.as_ref().unwrap().kind,
            OperationKind::Suspend
        );
        let mut o = pod();
        o.savepoint =
            SavepointProgress::Completed("s3://state/s/payments/fraud/savepoints/sp-1".into());
        let p = plan(&suspend(p.status), &o, &now());
        let p = plan(&suspend(p.status), &observed(None, ""), &now());
        assert_eq!(p.status.lifecycle_state, Some(LifecycleState::Suspended));
        assert!(p.status.operation.is_none());
        // The suspend is acted on: the status has caught up with the spec.
        assert_eq!(p.status.observed_generation, Some(2));
        // Edited while suspended: seen, nothing to do until the resume.
        let edited = plan(
            &job(
                "state: suspended\nparallelism: 4",
                3,
                Some(p.status.clone()),
            ),
            &observed(None, ""),
            &now(),
        );
        assert!(edited.actions.is_empty(), "{:?}", edited.actions);
        assert_eq!(edited.status.observed_generation, Some(3));
        // Resume.
        let p = plan(
            &job("state: running", 3, Some(p.status)),
            &observed(None, ""),
            &now(),
        );
        let restore: Vec<_> = deploys(&p).into_iter().map(|d| d.1).collect();
        assert_eq!(
            restore,
            vec![Some("s3://state/s/payments/fraud/savepoints/sp-1".into())]
        );
    }

    #[test]
    fn a_savepoint_upgrade_of_a_stopped_job_uses_its_checkpoint_never_empty_state() {
        let (j, _) = running();
        let mut status = j.status.clone().unwrap();
        status.lifecycle_state = Some(LifecycleState::Failed);
        let edit = |status| job("image: strom/engine:0.2.0", 2, Some(status));
        // No engine: no savepoint possible; the latest checkpoint is used, and said so.
        let p = plan(&edit(status.clone()), &observed(None, ""), &now());
        assert_eq!(
            deploys(&p).into_iter().map(|d| d.1).collect::<Vec<_>>(),
            vec![Some("s3://state/c/payments/fraud/checkpoints/chk-9".into())]
        );
        assert!(reasons(&p).contains(&"RestoringFromCheckpoint"));
        // Without a checkpoint it refuses rather than start empty.
        let mut o = observed(None, "");
        o.latest_checkpoint = None;
        let p = plan(&edit(status), &o, &now());
        assert!(deploys(&p).is_empty());
        assert!(p.status.operation.is_none());
        assert!(reasons(&p).contains(&"UpgradeFailed"));
    }

    #[test]
    fn a_version_that_keeps_crashing_on_deploy_ends_failed_and_is_not_redeployed() {
        let j = job("", 1, None);
        let hash = spec_hash(&j.spec);
        let mut status = plan(&j, &observed(None, ""), &now()).status;
        for restarts in 1..=MAX_FAILURES {
            let o = observed(
                Some(PodState::Crashing {
                    restarts,
                    message: "error: bad job".into(),
                }),
                &hash,
            );
            status = plan(&job("", 1, Some(status)), &o, &now()).status;
        }
        assert_eq!(status.lifecycle_state, Some(LifecycleState::Failed));
        assert!(status.operation.is_none());
        let p = plan(&job("", 1, Some(status)), &observed(None, ""), &now());
        assert!(deploys(&p).is_empty(), "{:?}", p.actions);
    }

    #[test]
    fn a_trigger_nonce_takes_one_savepoint_and_the_job_goes_on() {
        let (j, hash) = running();
        let pod = || observed(Some(PodState::Running { ready: true }), &hash);
        let nonce = |status| {
            job(
                "savepoints: {storage: 's3://state/s', triggerNonce: 7}",
                1,
                Some(status),
            )
        };
        let p = plan(&nonce(j.status.clone().unwrap()), &pod(), &now());
        assert!(p.actions.contains(&Action::RequestSavepoint {
            target: "s3://state/s/payments/fraud/savepoints/sp-1".into(),
            stop: false
        }));
        assert_eq!(p.status.savepoint_trigger_nonce, Some(7));
        let mut status = p.status;
        status.operation.as_mut().unwrap().savepoint_request = Some("savepoint-1".into());
        let mut o = pod();
        o.savepoint =
            SavepointProgress::Completed("s3://state/s/payments/fraud/savepoints/sp-1".into());
        let p = plan(&nonce(status), &o, &now());
        assert!(p.status.operation.is_none());
        assert!(!p.actions.contains(&Action::StopEngine));
        assert!(p.actions.contains(&Action::DisposeSavepoints));
        assert_eq!(p.status.lifecycle_state, Some(LifecycleState::Running));
        let sp = p.status.last_savepoint.clone().unwrap();
        assert_eq!(sp.trigger, SavepointTrigger::Manual);
        // Acted on: not again.
        let p = plan(&nonce(p.status), &pod(), &now());
        assert!(p.status.operation.is_none(), "{:?}", p.actions);
    }

    #[test]
    fn periodic_savepoints_come_when_the_interval_has_passed() {
        let (j, hash) = running();
        let pod = || observed(Some(PodState::Running { ready: true }), &hash);
        let periodic = |status| {
            job(
                "savepoints: {storage: 's3://state/s', periodicInterval: 1h}",
                1,
                Some(status),
            )
        };
        let p = plan(&periodic(j.status.clone().unwrap()), &pod(), &now());
        assert!(p.status.operation.is_none(), "not due yet");
        let later = Time(now().0 + jiff::SignedDuration::from_secs(3601));
        let p = plan(&periodic(p.status), &pod(), &later);
        let op = p.status.operation.unwrap();
        assert_eq!(
            (op.kind, op.trigger),
            (OperationKind::Savepoint, Some(SavepointTrigger::Periodic))
        );
    }

    #[test]
    fn the_finalizer_is_added_first_and_deletion_stops_with_a_savepoint_then_releases() {
        let mut fresh = job("", 1, None);
        fresh.metadata.finalizers = None;
        assert_eq!(
            plan(&fresh, &observed(None, ""), &now()).actions[0],
            Action::AddFinalizer
        );

        let (j, hash) = running();
        let mut deleting = j.clone();
        deleting.metadata.deletion_timestamp = Some(now());
        let p = plan(
            &deleting,
            &observed(Some(PodState::Running { ready: true }), &hash),
            &now(),
        );
        assert_eq!(p.status.lifecycle_state, Some(LifecycleState::Deleting));
        assert!(p.actions.contains(&Action::RequestSavepoint {
            target: "s3://state/s/payments/fraud/savepoints/sp-1".into(),
            stop: true
        }));
        deleting.status = Some(p.status);
        let mut o = observed(Some(PodState::Succeeded), &hash);
        o.savepoint =
            SavepointProgress::Completed("s3://state/s/payments/fraud/savepoints/sp-1".into());
        let p = plan(&deleting, &o, &now());
        assert!(p.actions.contains(&Action::StopEngine));
        assert!(!p.actions.contains(&Action::ReleaseFinalizer));
        deleting.status = Some(p.status);
        let p = plan(&deleting, &observed(None, ""), &now());
        assert!(p.actions.contains(&Action::ReleaseFinalizer));
        assert_eq!(
            p.status.savepoints.len(),
            1,
            "the savepoint is recorded, and kept"
        );
    }

    #[test]
    fn an_upgrade_that_does_not_become_healthy_rolls_back_to_the_stable_spec_and_its_savepoint() {
        let (j, old_hash) = running();
        // The running version has checkpointed since it was deployed: it is stable.
        let mut o = observed(Some(PodState::Running { ready: true }), &old_hash);
        o.checkpoint = Some((
            4,
            "s3://state/c/payments/fraud/checkpoints/chk-4".into(),
            now().0.as_millisecond() + 1000,
        ));
        let p = plan(
            &job("", 1, j.status.clone()),
            &o,
            &Time(now().0 + jiff::SignedDuration::from_secs(2)),
        );
        assert!(p.status.last_stable_spec.is_some());
        let edit = |status| {
            job(
                "image: strom/engine:broken\nrollback: {enabled: true, readinessTimeout: 1m}",
                2,
                Some(status),
            )
        };
        let p = plan(
            &edit(p.status),
            &observed(Some(PodState::Running { ready: true }), &old_hash),
            &now(),
        );
        let mut o = observed(Some(PodState::Succeeded), &old_hash);
        o.savepoint =
            SavepointProgress::Completed("s3://state/s/payments/fraud/savepoints/sp-1".into());
        let p = plan(&edit(p.status), &o, &now());
        let p = plan(&edit(p.status), &observed(None, ""), &now());
        let new_hash = deploys(&p)[0].0.clone();
        // The new version crashes; a minute later it is rolled back.
        let crashing = observed(
            Some(PodState::Crashing {
                restarts: 1,
                message: "error: no such image".into(),
            }),
            &new_hash,
        );
        let p = plan(
            &edit(p.status),
            &crashing,
            &Time(now().0 + jiff::SignedDuration::from_secs(30)),
        );
        assert!(
            p.status
                .operation
                .as_ref()
                .is_some_and(|o| o.kind == OperationKind::Upgrade)
        );
        let p = plan(
            &edit(p.status),
            &crashing,
            &Time(now().0 + jiff::SignedDuration::from_secs(61)),
        );
        assert!(reasons(&p).contains(&"RollbackStarted"));
        assert_eq!(p.status.lifecycle_state, Some(LifecycleState::RollingBack));
        assert!(p.actions.contains(&Action::StopEngine));
        let p = plan(
            &edit(p.status),
            &observed(None, ""),
            &Time(now().0 + jiff::SignedDuration::from_secs(62)),
        );
        assert_eq!(
            deploys(&p),
            vec![(
                old_hash.clone(),
                Some("s3://state/s/payments/fraud/savepoints/sp-1".into())
            )]
        );
        let p = plan(
            &edit(p.status),
            &observed(Some(PodState::Running { ready: true }), &old_hash),
            &Time(now().0 + jiff::SignedDuration::from_secs(63)),
        );
        assert!(reasons(&p).contains(&"RolledBack"));
        assert_eq!(
            p.status.last_reconciled_spec.as_ref().unwrap().hash,
            old_hash
        );
        // And the broken generation is not tried again.
        let p = plan(
            &edit(p.status),
            &observed(Some(PodState::Running { ready: true }), &old_hash),
            &Time(now().0 + jiff::SignedDuration::from_secs(64)),
        );
        assert!(p.status.operation.is_none(), "{:?}", p.status.operation);
    }

    #[test]
    fn a_rescale_of_a_crashing_job_does_not_wait_for_a_savepoint_it_cannot_get() {
        let (j, hash) = running();
        let crashing = observed(
            Some(PodState::Crashing {
                restarts: 2,
                message: "error: x".into(),
            }),
            &hash,
        );
        let p = plan(
            &job("parallelism: 4", 2, j.status.clone()),
            &crashing,
            &now(),
        );
        assert!(
            !p.actions
                .iter()
                .any(|a| matches!(a, Action::RequestSavepoint { .. }))
        );
        assert!(p.actions.contains(&Action::StopEngine));
        let p = plan(
            &job("parallelism: 4", 2, Some(p.status)),
            &observed(None, ""),
            &now(),
        );
        assert_eq!(
            deploys(&p).into_iter().map(|d| d.1).collect::<Vec<_>>(),
            vec![Some("s3://state/c/payments/fraud/checkpoints/chk-9".into())]
        );
    }

    #[test]
    fn a_restart_nonce_restarts_from_the_latest_checkpoint() {
        let (j, hash) = running();
        let p = plan(
            &job("restartNonce: 1", 2, j.status.clone()),
            &observed(Some(PodState::Running { ready: true }), &hash),
            &now(),
        );
        let op = p.status.operation.clone().unwrap();
        assert_eq!(
            (op.kind, op.phase),
            (OperationKind::Restart, OperationPhase::Stopping)
        );
        assert!(p.actions.contains(&Action::StopEngine));
        let p = plan(
            &job("restartNonce: 1", 2, Some(p.status)),
            &observed(None, ""),
            &now(),
        );
        assert_eq!(
            deploys(&p).into_iter().map(|d| d.1).collect::<Vec<_>>(),
            vec![Some("s3://state/c/payments/fraud/checkpoints/chk-9".into())]
        );
    }

    #[test]
    fn a_redeploy_nonce_restarts_from_the_given_savepoint_without_taking_one() {
        let (j, hash) = running();
        let edit = "restore: {initialSavepoint: 's3://state/s/payments/fraud/savepoints/sp-1', redeployNonce: 7}\nparallelism: 3";
        let p = plan(
            &job(edit, 2, j.status.clone()),
            &observed(Some(PodState::Running { ready: true }), &hash),
            &now(),
        );
        let op = p.status.operation.clone().unwrap();
        assert_eq!(
            (op.kind, op.phase),
            (OperationKind::Upgrade, OperationPhase::Stopping)
        );
        assert!(reasons(&p).contains(&"RedeployStarted"));
        assert!(p.actions.contains(&Action::StopEngine));
        assert!(
            !p.actions
                .iter()
                .any(|a| matches!(a, Action::RequestSavepoint { .. })),
            "no savepoint of the state left behind"
        );
        let p = plan(&job(edit, 2, Some(p.status)), &observed(None, ""), &now());
        assert_eq!(
            deploys(&p).into_iter().map(|d| d.1).collect::<Vec<_>>(),
            vec![Some("s3://state/s/payments/fraud/savepoints/sp-1".into())]
        );
    }

    #[test]
    fn a_last_state_suspend_takes_no_savepoint_and_resumes_from_the_latest_checkpoint() {
        let (j, hash) = running();
        let p = plan(
            &job(
                "state: suspended\nupgradeMode: last-state",
                2,
                j.status.clone(),
            ),
            &observed(Some(PodState::Running { ready: true }), &hash),
            &now(),
        );
        assert!(p.actions.contains(&Action::StopEngine));
        assert!(
            !p.actions
                .iter()
                .any(|a| matches!(a, Action::RequestSavepoint { .. }))
        );
        let p = plan(
            &job(
                "state: suspended\nupgradeMode: last-state",
                2,
                Some(p.status),
            ),
            &observed(None, ""),
            &now(),
        );
        assert_eq!(p.status.lifecycle_state, Some(LifecycleState::Suspended));
        // An older savepoint exists; the checkpoint is newer and is what resumes.
        let mut status = p.status;
        status.last_savepoint = Some(SavepointInfo {
            id: "sp-1".into(),
            location: Some("s3://state/s/payments/fraud/savepoints/sp-1".into()),
            trigger: SavepointTrigger::Manual,
            generation: Some(1),
            time: now(),
            state: SavepointState::Completed,
            message: None,
        });
        let p = plan(
            &job("upgradeMode: last-state", 3, Some(status.clone())),
            &observed(None, ""),
            &now(),
        );
        assert_eq!(
            deploys(&p).into_iter().map(|d| d.1).collect::<Vec<_>>(),
            vec![Some("s3://state/c/payments/fraud/checkpoints/chk-9".into())]
        );
        // With savepoint upgrades, a resume takes the savepoint (the suspend's).
        let p = plan(&job("", 3, Some(status)), &observed(None, ""), &now());
        assert_eq!(
            deploys(&p).into_iter().map(|d| d.1).collect::<Vec<_>>(),
            vec![Some("s3://state/s/payments/fraud/savepoints/sp-1".into())]
        );
    }
}
