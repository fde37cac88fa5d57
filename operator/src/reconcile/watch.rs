//! The job runs its spec: follow its health, and take the savepoints that are due
//! (on demand by `triggerNonce`, or periodic).

use strom_crds::FlinkJobStatus;
use strom_crds::status::{LifecycleState, OperationKind, OperationPhase, SavepointTrigger};

use super::*;
use crate::conditions::{self, Kind, Reason as CReason};
use crate::events::{Event, Reason};

/// The job runs as its spec says: follow its health, and take the savepoints due.
pub(super) fn watch(ctx: &Ctx, status: &mut FlinkJobStatus, actions: &mut Vec<Action>) {
    let &Ctx {
        job, observed, now, ..
    } = ctx;
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
            if status.failures > 0 && observed.checkpoint.is_some() {
                status.failures = 0;
            }
            // A bounded job that finished keeps its engine up to report it; a source
            // waiting for its brokers is not a failure (the engine retries and checkpoints
            // meanwhile), but no record flows: both said at a glance.
            use strom_crds::status::JobState;
            let (state, ready, reason, message) =
                if observed.job_state == Some(strom_protocol::JobState::Finished) {
                    let why = "the job finished: every source reached its end";
                    (JobState::Finished, false, CReason::Finished, why.into())
                } else if let Some(why) = &observed.waiting {
                    (
                        JobState::Waiting,
                        false,
                        CReason::SourceWaiting,
                        why.clone(),
                    )
                } else {
                    let why = "the engine runs and checkpoints";
                    (JobState::Running, true, CReason::Running, why.into())
                };
            status.job_state = Some(state);
            conditions::set(status, Kind::Ready, ready, reason, message, generation, now);
        }
        Some(PodState::Succeeded) => {
            status.job_state = Some(strom_crds::status::JobState::Finished);
            conditions::set(
                status,
                Kind::Ready,
                false,
                CReason::Finished,
                "the job finished".into(),
                generation,
                now,
            );
        }
        Some(PodState::Crashing { restarts, message }) => {
            failure::engine_failed(*restarts, message, generation, now, status, actions);
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
        && observed.job_state != Some(strom_protocol::JobState::Finished)
        && observed
            .deployed
            .as_ref()
            .is_some_and(|d| d.pod == PodState::Running { ready: true })
    {
        scheduled_savepoint(ctx, status, actions);
    }
}

/// An on-demand (`triggerNonce`) or periodic savepoint of the running job, when due.
fn scheduled_savepoint(ctx: &Ctx, status: &mut FlinkJobStatus, actions: &mut Vec<Action>) {
    let &Ctx { job, now, .. } = ctx;
    let Some(current) = status.last_reconciled_spec.clone() else {
        return;
    };
    let Some(spec) = ctx.specs.of(&current) else {
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
            actions.push(Action::Event(Event::warning(
                Reason::SavepointFailed,
                "spec.savepoints.triggerNonce changed, but spec.savepoints.storage is not set",
            )));
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
    actions.push(Action::Event(Event::normal(
        Reason::SavepointTriggered,
        format!(
            "{} savepoint into {target}",
            if trigger == SavepointTrigger::Manual {
                "on-demand"
            } else {
                "periodic"
            }
        ),
    )));
    status.operation = Some(op);
}
