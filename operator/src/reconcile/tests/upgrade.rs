//! Spec changes: savepoint, last-state and stateless upgrades, rescales, restarts, redeploys.

use super::*;

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
    let new_hash = edit(FlinkJobStatus::default()).spec.hash();
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
    let new_hash = edit(FlinkJobStatus::default()).spec.hash();
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
