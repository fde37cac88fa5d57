//! The `Stopping` phase.

use strom_crds::FlinkJobStatus;
use strom_crds::spec::UpgradeMode;
use strom_crds::status::{LifecycleState, Operation, OperationKind, OperationPhase};

use super::*;
use crate::conditions::{self, Kind, Reason as CReason};
use crate::events::{Event, Reason};

/// Stopping: wait for the engine to go, then decide what the new version starts from.
pub(super) fn step(
    ctx: &Ctx,
    mut op: Operation,
    status: &mut FlinkJobStatus,
    actions: &mut Vec<Action>,
) {
    let &Ctx {
        job, observed, now, ..
    } = ctx;
    let generation = job.metadata.generation;
    let target_spec = ctx.specs.of(&op.target);
    let current_spec = status
        .last_reconciled_spec
        .as_ref()
        .and_then(|r| ctx.specs.of(r));
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
        conditions::set(
            status,
            Kind::Ready,
            false,
            CReason::Suspended,
            "the job is suspended".into(),
            generation,
            now,
        );
        actions.push(Action::Event(Event::normal(
            Reason::Suspended,
            "the job is suspended; its pods are gone",
        )));
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
                        actions.push(Action::Event(Event::warning(Reason::RestoringFromCheckpoint, format!(
                                    "no savepoint could be taken (the job was not running); generation {} starts from the latest checkpoint {c}",
                                    op.target.generation
                                ))));
                        op.restore_from = Some(c.clone());
                    }
                    None => {
                        let message = format!(
                            "generation {} was not applied: no savepoint could be taken (the job was not running) and there is no checkpoint; it is not started from empty state",
                            op.target.generation
                        );
                        savepointing::savepoint_failed(op, message, now, status, actions);
                        return;
                    }
                }
            }
            _ => {}
        }
    }
    op.phase = OperationPhase::Starting;
    status.operation = Some(op.clone());
    advance(ctx, op, status, actions);
}
