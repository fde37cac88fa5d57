//! Suspend and resume.

use super::*;

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
