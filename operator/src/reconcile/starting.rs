//! The `Starting` phase, and the rollback of an upgrade that does not become healthy.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use strom_crds::status::{LifecycleState, Operation, OperationKind, OperationPhase};
use strom_crds::{FlinkJobSpec, FlinkJobStatus};

use super::*;
use crate::conditions::{self, Kind, Reason as CReason};
use crate::events::{Event, Reason};

/// Starting: deploy the target, wait for it to run healthily, or roll back.
pub(super) fn step(
    ctx: &Ctx,
    op: Operation,
    status: &mut FlinkJobStatus,
    actions: &mut Vec<Action>,
) {
    let &Ctx {
        observed, now, job, ..
    } = ctx;
    let generation = job.metadata.generation;
    let target_spec = ctx.specs.of(&op.target);
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
        actions.push(Action::Event(Event::warning(
            Reason::RollbackStarted,
            message.clone(),
        )));
        conditions::set_upgrade_failed(status, message, op.target.generation, now);
        status.lifecycle_state = Some(LifecycleState::RollingBack);
        status.operation = Some(rollback.clone());
        advance(ctx, rollback, status, actions);
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
            actions.push(Action::Event(Event::normal(
                Reason::RestoredFrom,
                format!("generation {} starts from {from}", op.target.generation),
            )));
        }
        status.operation = Some(op);
        return;
    }
    if let Some(Deployed {
        pod: PodState::Crashing { restarts, message },
        ..
    }) = &observed.deployed
    {
        if failure::engine_failed(*restarts, message, generation, now, status, actions) {
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
        status.parallelism = Some(spec.widest());
        status.observed_generation = Some(op.target.generation);
        status.last_reconciled_spec = Some(op.target.clone());
        status.operation = None;
        status.failures = 0;
        actions.push(Action::Event(Event::normal(
            match op.kind {
                OperationKind::Deploy => Reason::Deployed,
                OperationKind::Rollback => Reason::RolledBack,
                OperationKind::Rescale => Reason::Rescaled,
                OperationKind::Resume => Reason::Resumed,
                OperationKind::Restart => Reason::Restarted,
                _ => Reason::Upgraded,
            },
            format!(
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
                    format!("; per vertex: {}", each.join(", "))
                }
            ),
        )));
        conditions::set(
            status,
            Kind::Ready,
            true,
            CReason::Running,
            "the engine runs".into(),
            generation,
            now,
        );
    } else {
        status.operation = Some(op);
    }
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
