//! Savepoints of the running job: on demand and periodic.

use super::*;

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
fn the_engines_answer_becomes_progress_and_a_completed_savepoint_needs_a_location() {
    use strom_protocol::{SavepointState, SavepointStatus};
    let answer = |status, location: Option<&str>, error: Option<&str>| SavepointStatus {
        id: "savepoint-1".into(),
        status,
        location: location.map(str::to_owned),
        error: error.map(str::to_owned),
    };
    let target = Some("s3://b/ns/job/savepoints/sp-1");
    assert_eq!(
        SavepointProgress::of(
            answer(
                SavepointState::Completed,
                Some("s3://b/ns/job/savepoints/sp-1/"),
                None
            ),
            target
        ),
        SavepointProgress::Completed("s3://b/ns/job/savepoints/sp-1".into())
    );
    // An engine naming another place (a forged answer: the tenant's image runs it) is not
    // recorded; the control plane would delete what is recorded.
    for forged in ["file:////data", "s3://b/other-tenant/app/savepoints/sp-1"] {
        assert!(matches!(
            SavepointProgress::of(answer(SavepointState::Completed, Some(forged), None), target),
            SavepointProgress::Failed(why) if why.contains("not at s3://b/ns/job/savepoints/sp-1")
        ));
    }
    assert!(matches!(
        SavepointProgress::of(
            answer(SavepointState::Completed, Some("s3://b/x"), None),
            None
        ),
        SavepointProgress::Failed(_)
    ));
    assert!(matches!(
        SavepointProgress::of(answer(SavepointState::Completed, None, None), target),
        SavepointProgress::Failed(why) if why.contains("not where it is")
    ));
    assert_eq!(
        SavepointProgress::of(
            answer(SavepointState::Failed, None, Some("disk full")),
            target
        ),
        SavepointProgress::Failed("disk full".into())
    );
    assert!(matches!(
        SavepointProgress::of(answer(SavepointState::Failed, None, None), target),
        SavepointProgress::Failed(why) if !why.is_empty()
    ));
    assert_eq!(
        SavepointProgress::of(answer(SavepointState::InProgress, None, None), target),
        SavepointProgress::InProgress
    );
}
