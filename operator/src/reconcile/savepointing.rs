//! The `Savepointing` phase, and what a failed savepoint leaves behind.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use strom_crds::FlinkJobStatus;
use strom_crds::status::{
    ErrorInfo, LifecycleState, Operation, OperationKind, OperationPhase, SavepointInfo,
    SavepointState, SavepointTrigger,
};

use super::*;
use crate::conditions;
use crate::events::{Event, Reason};

/// Savepointing: wait for the savepoint (asking for it once), then stop the engine.
pub(super) fn step(
    ctx: &Ctx,
    mut op: Operation,
    status: &mut FlinkJobStatus,
    actions: &mut Vec<Action>,
) {
    let &Ctx {
        job, observed, now, ..
    } = ctx;
    let _generation = job.metadata.generation;
    match &observed.savepoint {
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
            actions.push(Action::Event(Event::normal(
                Reason::SavepointCompleted,
                format!("savepoint written to {location}"),
            )));
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
            advance(ctx, op, status, actions);
        }
        SavepointProgress::Failed(why) if op.kind == OperationKind::Delete => {
            actions.push(Action::Event(Event::warning(Reason::SavepointFailed, format!("no savepoint before deletion ({why}); stopping at the latest checkpoint, which is kept"))));
            op.phase = OperationPhase::Stopping;
            op.savepoint_target = None;
            status.operation = Some(op.clone());
            advance(ctx, op, status, actions);
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
            advance(ctx, op, status, actions);
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
            actions.push(Action::Event(Event::warning(
                Reason::SavepointSkipped,
                "the engine is not running, so no savepoint can be taken",
            )));
            if op.kind == OperationKind::Savepoint {
                status.operation = None;
                return;
            }
            op.phase = OperationPhase::Stopping;
            op.savepoint_target = None;
            status.operation = Some(op.clone());
            advance(ctx, op, status, actions);
        }
        SavepointProgress::Unknown => {
            if op.savepoint_request.is_none()
                && let Some(target) = &op.savepoint_target
            {
                actions.push(Action::RequestSavepoint {
                    target: target.clone(),
                    stop: op.kind != OperationKind::Savepoint,
                });
                actions.push(Action::Event(Event::normal(
                    Reason::SavepointTriggered,
                    format!("stop with a savepoint into {target}"),
                )));
            }
            status.operation = Some(op);
        }
    }
}

/// The savepoint an operation needed failed: never fall back to empty state; the old
/// version keeps running, and the same generation is not retried until the spec changes.
pub(super) fn savepoint_failed(
    op: Operation,
    message: String,
    now: &Time,
    status: &mut FlinkJobStatus,
    actions: &mut Vec<Action>,
) {
    actions.push(Action::Event(Event::warning(
        if op.kind == OperationKind::Savepoint {
            Reason::SavepointFailed
        } else {
            Reason::UpgradeFailed
        },
        message.clone(),
    )));
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
        conditions::set_upgrade_failed(status, message, op.target.generation, now);
    }
    status.lifecycle_state = Some(LifecycleState::Running);
    status.operation = None;
}
