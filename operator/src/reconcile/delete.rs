//! The FlinkJob is being deleted: stop its job, with a savepoint where there is storage
//! for one, then release it.

use strom_crds::FlinkJobStatus;
use strom_crds::status::{LifecycleState, OperationKind, OperationPhase, SavepointTrigger};

use super::*;
use crate::events::{Event, Reason};

/// The FlinkJob is being deleted: stop the job, with a savepoint where there is storage for
/// one (savepoints are kept), then release the object; the objects it owns go with it.
pub(super) fn delete(ctx: &Ctx, status: &mut FlinkJobStatus, actions: &mut Vec<Action>) {
    let &Ctx {
        job, observed, now, ..
    } = ctx;
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
            if engine_running(observed)
                && let Some(spec) = ctx.specs.of(&target)
                && let Some(t) = savepoint_target(job, &spec, status)
            {
                op.phase = OperationPhase::Savepointing;
                op.savepoint_target = Some(t);
                op.trigger = Some(SavepointTrigger::Suspend);
            }
            actions.push(Action::Event(Event::normal(
                Reason::DeleteStarted,
                match &op.savepoint_target {
                    Some(t) => format!("deleting: stop with a savepoint into {t} (kept)"),
                    None => "deleting: stopping the job".into(),
                },
            )));
            status.lifecycle_state = Some(LifecycleState::Deleting);
            op
        }
    };
    status.operation = Some(op.clone());
    advance(ctx, op, status, actions);
}
