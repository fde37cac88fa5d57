//! No change under way: begin the one the spec asks for (deploy, suspend, resume,
//! redeploy, rescale, upgrade), or watch the running job.

use strom_crds::change::{SpecChange, classify};
use strom_crds::spec::{DesiredState, UpgradeMode};
use strom_crds::status::{LifecycleState, OperationKind, OperationPhase};
use strom_crds::{FlinkJobSpec, FlinkJobStatus};

use super::*;
use crate::events::{Event, Reason};

/// No change under way: start one if the spec asks for it, else watch the job.
pub(super) fn begin(
    ctx: &Ctx,
    desired: FlinkJobSpec,
    status: &mut FlinkJobStatus,
    actions: &mut Vec<Action>,
) {
    let &Ctx {
        job, observed, now, ..
    } = ctx;
    let target = reconciled(job, &desired, now);
    let current = status
        .last_reconciled_spec
        .as_ref()
        .and_then(|r| ctx.specs.of(r));
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
        actions.push(Action::Event(Event::normal(
            Reason::DeployStarted,
            format!("deploying generation {} from {from}", op.target.generation),
        )));
        status.lifecycle_state = Some(LifecycleState::Deploying);
        advance(ctx, op, status, actions);
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
        actions.push(Action::Event(Event::normal(Reason::SuspendStarted, match &op.savepoint_target {
                Some(t) => format!("suspending: stop with a savepoint into {t}"),
                None if last_state => {
                    "suspending without a savepoint (upgradeMode: last-state): the job stops at its latest checkpoint and resumes from it".into()
                }
                None => "suspending: no savepoint storage, the job stops at its latest checkpoint"
                    .into(),
            })));
        status.lifecycle_state = Some(LifecycleState::Upgrading);
        advance(ctx, op, status, actions);
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
        actions.push(Action::Event(Event::normal(
            Reason::ResumeStarted,
            format!(
                "resuming from {}",
                op.restore_from.as_deref().unwrap_or("empty state")
            ),
        )));
        status.lifecycle_state = Some(LifecycleState::Deploying);
        advance(ctx, op, status, actions);
        return;
    }
    if suspended {
        // Nothing runs, so an edit has nothing to act on until the resume; it has been seen,
        // and tools that wait for the status to catch up (kubectl wait, Argo CD, Flux) settle.
        status.observed_generation = Some(target.generation);
        return;
    }

    // A spec change.
    let degraded_at = conditions::upgrade_failed_at(status);
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
        actions.push(Action::Event(Event::normal(Reason::RedeployStarted, format!(
                "redeploying generation {} from {} (restore.redeployNonce changed); the running state is not saved",
                op.target.generation,
                op.restore_from.as_deref().unwrap_or("empty state")
            ))));
        status.lifecycle_state = Some(LifecycleState::Upgrading);
        advance(ctx, op, status, actions);
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
        actions.push(Action::Event(Event::normal(
            if kind == OperationKind::Rescale {
                Reason::RescaleStarted
            } else {
                Reason::UpgradeStarted
            },
            format!(
                "applying generation {} ({:?}) by {how}{}",
                op.target.generation,
                change,
                op.savepoint_target
                    .as_deref()
                    .map(|t| format!(": stop with a savepoint into {t}"))
                    .unwrap_or_default()
            ),
        )));
        status.lifecycle_state = Some(LifecycleState::Upgrading);
        advance(ctx, op, status, actions);
        return;
    }

    // Watch the running job.
    watch::watch(ctx, status, actions);
}
