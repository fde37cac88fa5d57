//! Rollback of an upgrade that does not become healthy.

use super::*;

#[test]
fn an_upgrade_that_does_not_become_healthy_rolls_back_to_the_stable_spec_and_its_savepoint() {
    let (j, old_hash) = running();
    // The running version has checkpointed since it was deployed: it is stable.
    let mut o = observed(Some(PodState::Running { ready: true }), &old_hash);
    o.checkpoint = Some((
        4,
        "s3://state/c/payments/fraud/checkpoints/chk-4".into(),
        now().0.as_millisecond() + 1000,
    ));
    let p = plan(
        &job("", 1, j.status.clone()),
        &o,
        &Time(now().0 + jiff::SignedDuration::from_secs(2)),
    );
    assert!(p.status.last_stable_spec.is_some());
    let edit = |status| {
        job(
            "image: strom/engine:broken\nrollback: {enabled: true, readinessTimeout: 1m}",
            2,
            Some(status),
        )
    };
    let p = plan(
        &edit(p.status),
        &observed(Some(PodState::Running { ready: true }), &old_hash),
        &now(),
    );
    let mut o = observed(Some(PodState::Succeeded), &old_hash);
    o.savepoint =
        SavepointProgress::Completed("s3://state/s/payments/fraud/savepoints/sp-1".into());
    let p = plan(&edit(p.status), &o, &now());
    let p = plan(&edit(p.status), &observed(None, ""), &now());
    let new_hash = deploys(&p)[0].0.clone();
    // The new version crashes; a minute later it is rolled back.
    let crashing = observed(
        Some(PodState::Crashing {
            restarts: 1,
            message: "error: no such image".into(),
        }),
        &new_hash,
    );
    let p = plan(
        &edit(p.status),
        &crashing,
        &Time(now().0 + jiff::SignedDuration::from_secs(30)),
    );
    assert!(
        p.status
            .operation
            .as_ref()
            .is_some_and(|o| o.kind == OperationKind::Upgrade)
    );
    let p = plan(
        &edit(p.status),
        &crashing,
        &Time(now().0 + jiff::SignedDuration::from_secs(61)),
    );
    assert!(reasons(&p).contains(&"RollbackStarted"));
    assert_eq!(p.status.lifecycle_state, Some(LifecycleState::RollingBack));
    assert!(p.actions.contains(&Action::StopEngine));
    let p = plan(
        &edit(p.status),
        &observed(None, ""),
        &Time(now().0 + jiff::SignedDuration::from_secs(62)),
    );
    assert_eq!(
        deploys(&p),
        vec![(
            old_hash.clone(),
            Some("s3://state/s/payments/fraud/savepoints/sp-1".into())
        )]
    );
    let p = plan(
        &edit(p.status),
        &observed(Some(PodState::Running { ready: true }), &old_hash),
        &Time(now().0 + jiff::SignedDuration::from_secs(63)),
    );
    assert!(reasons(&p).contains(&"RolledBack"));
    assert_eq!(
        p.status.last_reconciled_spec.as_ref().unwrap().hash,
        old_hash
    );
    // And the broken generation is not tried again.
    let p = plan(
        &edit(p.status),
        &observed(Some(PodState::Running { ready: true }), &old_hash),
        &Time(now().0 + jiff::SignedDuration::from_secs(64)),
    );
    assert!(p.status.operation.is_none(), "{:?}", p.status.operation);
}
