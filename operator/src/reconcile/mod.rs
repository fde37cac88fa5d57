//! The operator's decisions, as a pure function: [`plan`] takes a FlinkJob (spec and the
//! status the operator last wrote), what was observed in the cluster and from the engine,
//! and the time, and returns the status to record and the actions to take. No I/O: the
//! controller observes, calls `plan`, writes the status **first** (the write-ahead log),
//! then acts (`crate::execute`).
//!
//! A change under way is an `Operation` in the status, which moves through phases, one
//! file each: [`savepointing`], [`stopping`], [`starting`]. With none under way,
//! [`begin`] starts one when the spec asks for it and otherwise [`watch`]es the job;
//! [`delete`] stops a job whose FlinkJob is deleted; [`failure`] counts engine crashes.
//! The table tests are in `tests/`, by theme.

mod begin;
mod delete;
mod failure;
mod savepointing;
mod starting;
mod stopping;
#[cfg(test)]
mod tests;
mod watch;

use std::cell::RefCell;
use std::collections::HashMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use strom_crds::status::{Operation, OperationKind, OperationPhase, ReconciledSpec};
use strom_crds::{FlinkJob, FlinkJobSpec, FlinkJobStatus};
use strom_storage::layout::JobDirs;

use crate::conditions::{self, Kind, Reason as CReason};
use crate::events::{Event, Reason};

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

impl SavepointProgress {
    /// What the engine's answer about a savepoint request into `target` says. A savepoint
    /// reported complete without its location, or anywhere but the target it was given, is
    /// a failure: the operator records only the place it asked for (`target`), never a
    /// location an engine (running the tenant's image) names, because the control plane
    /// later deletes what is recorded.
    pub fn of(s: strom_protocol::SavepointStatus, target: Option<&str>) -> SavepointProgress {
        use strom_protocol::SavepointState;
        match (s.status, s.location, target) {
            (SavepointState::Completed, Some(location), Some(target))
                if location.trim_end_matches('/') == target.trim_end_matches('/') =>
            {
                SavepointProgress::Completed(target.to_owned())
            }
            (SavepointState::Completed, Some(location), Some(target)) => {
                SavepointProgress::Failed(format!(
                    "the engine reported the savepoint at {location}, not at {target}, where it \
                     was asked to write it; it is not recorded"
                ))
            }
            (SavepointState::Completed, Some(_), None) => SavepointProgress::Failed(
                "the engine reported a savepoint the operator has no target for".into(),
            ),
            (SavepointState::Completed, None, _) => SavepointProgress::Failed(
                "the engine reported the savepoint complete but not where it is".into(),
            ),
            (SavepointState::Failed, _, _) => SavepointProgress::Failed(
                s.error
                    .unwrap_or_else(|| "the engine gave no reason".into()),
            ),
            (SavepointState::InProgress, _, _) => SavepointProgress::InProgress,
        }
    }
}

/// What the controller observed for one job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// The engine's resources, if they exist.
    pub deployed: Option<Deployed>,
    /// The engine's own report: its job state.
    pub job_state: Option<strom_protocol::JobState>,
    /// The newest completed checkpoint the engine reports: (id, URL, completion epoch ms).
    pub checkpoint: Option<(u64, String, i64)>,
    /// The savepoint of the current operation.
    pub savepoint: SavepointProgress,
    /// The newest complete checkpoint in the job's checkpoint directory (for `last-state`
    /// restores and restarts after failures).
    pub latest_checkpoint: Option<String>,
    /// Why the operator will not touch the spec's storage (an endpoint off its list), if it
    /// will not: the spec is then invalid here.
    pub storage_refused: Option<String>,
    /// What the engine's sources wait for, said for people (a broker that cannot be
    /// reached, a topic that does not exist), if any waits.
    pub waiting: Option<String>,
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
    Event(Event),
}

/// What [`plan`] decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The status to record before acting.
    pub status: FlinkJobStatus,
    /// What to do, in order.
    pub actions: Vec<Action>,
}

/// What one reconcile decides from: the FlinkJob, what was observed, the time, and the
/// specs the status records, each parsed once.
struct Ctx<'a> {
    job: &'a FlinkJob,
    observed: &'a Observed,
    now: &'a Time,
    specs: Specs,
}

/// The specs recorded in the status (`lastReconciledSpec`, an operation's target, the last
/// stable spec), parsed once per reconcile, by hash.
#[derive(Default)]
struct Specs(RefCell<HashMap<String, Option<FlinkJobSpec>>>);

impl Specs {
    /// The spec `r` records; `None` if it does not parse (a status written by another
    /// version of the operator), which every caller treats as "no spec".
    fn of(&self, r: &ReconciledSpec) -> Option<FlinkJobSpec> {
        self.0
            .borrow_mut()
            .entry(r.hash.clone())
            .or_insert_with(|| serde_json::from_str(&r.spec).ok())
            .clone()
    }
}

fn reconciled(job: &FlinkJob, spec: &FlinkJobSpec, now: &Time) -> ReconciledSpec {
    ReconciledSpec {
        generation: job.metadata.generation.unwrap_or(0),
        hash: spec.hash(),
        spec: serde_json::to_string(spec).expect("a spec serializes"),
        time: Some(now.clone()),
    }
}

/// Where `job`'s state lives under `storage` (`<storage>/<namespace>/<name>`).
pub fn job_dirs(job: &FlinkJob, storage: &strom_crds::StorageUrl) -> JobDirs {
    JobDirs::new(
        &storage.0,
        job.metadata.namespace.as_deref().unwrap_or("default"),
        job.metadata.name.as_deref().unwrap_or("job"),
    )
}

/// The savepoint directory for the next savepoint of `job`, under `savepoints.storage`
/// (`<storage>/<namespace>/<name>/savepoints/sp-<n>`), or `None` without savepoint storage.
pub fn savepoint_target(
    job: &FlinkJob,
    spec: &FlinkJobSpec,
    status: &FlinkJobStatus,
) -> Option<String> {
    let storage = spec.savepoints.as_ref()?.storage.as_ref()?;
    Some(job_dirs(job, storage).savepoint(status.savepoints.len() + 1))
}

/// The job's checkpoint directory (`<storage>/<namespace>/<name>/checkpoints`).
pub fn checkpoint_dir(job: &FlinkJob, spec: &FlinkJobSpec) -> Option<String> {
    let storage = &spec.checkpoints.as_ref()?.storage;
    Some(job_dirs(job, storage).checkpoints())
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

/// Whether the engine runs a job, and so can take a savepoint: its pod runs and its
/// job has not finished (a finished bounded job's engine stays up only to report it;
/// there is nothing left to save, so a change, suspend or delete stops it without one).
fn engine_running(observed: &Observed) -> bool {
    observed
        .deployed
        .as_ref()
        .is_some_and(|d| matches!(d.pod, PodState::Running { .. }))
        && observed.job_state != Some(strom_protocol::JobState::Finished)
}

/// Decides what to do for `job` given what was observed at `now`.
pub fn plan(job: &FlinkJob, observed: &Observed, now: &Time) -> Plan {
    let ctx = Ctx {
        job,
        observed,
        now,
        specs: Specs::default(),
    };
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
    let valid = job
        .spec
        .validate()
        .and_then(|()| match &observed.storage_refused {
            Some(why) => Err(strom_crds::Violations::one(
                "spec.objectStorage.endpoint",
                why.clone(),
            )),
            None => Ok(()),
        });
    let desired = match valid {
        Ok(()) => {
            if conditions::holds(&status, Kind::Degraded, CReason::InvalidSpec) {
                conditions::set(
                    &mut status,
                    Kind::Degraded,
                    false,
                    CReason::SpecValid,
                    "the spec is valid".into(),
                    generation,
                    now,
                );
            }
            Some(job.effective_spec())
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
            let already = conditions::get(&status, Kind::Degraded).is_some_and(|c| {
                c.reason == CReason::InvalidSpec.as_str() && c.observed_generation == generation
            });
            if !already {
                actions.push(Action::Event(Event::warning(
                    Reason::InvalidSpec,
                    message.clone(),
                )));
            }
            conditions::set(
                &mut status,
                Kind::Degraded,
                true,
                CReason::InvalidSpec,
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
            delete::delete(&ctx, &mut status, &mut actions);
        }
        return Plan { status, actions };
    }
    if !finalized {
        actions.push(Action::AddFinalizer);
    }
    if let Some(op) = status.operation.clone() {
        advance(&ctx, op, &mut status, &mut actions);
    } else if let Some(desired) = desired {
        begin::begin(&ctx, desired, &mut status, &mut actions);
    }
    Plan { status, actions }
}

/// A change is under way: take its next step.
fn advance(ctx: &Ctx, op: Operation, status: &mut FlinkJobStatus, actions: &mut Vec<Action>) {
    match op.phase {
        OperationPhase::Savepointing => savepointing::step(ctx, op, status, actions),
        OperationPhase::Stopping => stopping::step(ctx, op, status, actions),
        OperationPhase::Starting => starting::step(ctx, op, status, actions),
    }
}
