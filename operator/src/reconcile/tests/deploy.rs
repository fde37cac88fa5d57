//! First deployment and deletion.

use super::*;

#[test]
fn first_deploy_records_the_step_then_deploys_then_reports_running() {
    let j = job("restore: {initialSavepoint: 's3://old/sp-3'}", 1, None);
    let p = plan(&j, &observed(None, ""), &now());
    let op = p.status.operation.clone().unwrap();
    assert_eq!(
        (op.kind, op.phase),
        (OperationKind::Deploy, OperationPhase::Starting)
    );
    assert_eq!(op.restore_from.as_deref(), Some("s3://old/sp-3"));
    assert_eq!(p.status.lifecycle_state, Some(LifecycleState::Deploying));
    assert_eq!(
        deploys(&p),
        vec![(j.spec.hash(), Some("s3://old/sp-3".into()))]
    );
    assert!(reasons(&p).contains(&"DeployStarted"));

    // The pod is starting: nothing more to do.
    let j2 = job(
        "restore: {initialSavepoint: 's3://old/sp-3'}",
        1,
        Some(p.status),
    );
    let p = plan(
        &j2,
        &observed(Some(PodState::Pending), &j.spec.hash()),
        &now(),
    );
    assert!(p.actions.is_empty(), "{:?}", p.actions);
    assert!(p.status.operation.is_some());
}

#[test]
fn the_finalizer_is_added_first_and_deletion_stops_with_a_savepoint_then_releases() {
    let mut fresh = job("", 1, None);
    fresh.metadata.finalizers = None;
    assert_eq!(
        plan(&fresh, &observed(None, ""), &now()).actions[0],
        Action::AddFinalizer
    );

    let (j, hash) = running();
    let mut deleting = j.clone();
    deleting.metadata.deletion_timestamp = Some(now());
    let p = plan(
        &deleting,
        &observed(Some(PodState::Running { ready: true }), &hash),
        &now(),
    );
    assert_eq!(p.status.lifecycle_state, Some(LifecycleState::Deleting));
    assert!(p.actions.contains(&Action::RequestSavepoint {
        target: "s3://state/s/payments/fraud/savepoints/sp-1".into(),
        stop: true
    }));
    deleting.status = Some(p.status);
    let mut o = observed(Some(PodState::Succeeded), &hash);
    o.savepoint =
        SavepointProgress::Completed("s3://state/s/payments/fraud/savepoints/sp-1".into());
    let p = plan(&deleting, &o, &now());
    assert!(p.actions.contains(&Action::StopEngine));
    assert!(!p.actions.contains(&Action::ReleaseFinalizer));
    deleting.status = Some(p.status);
    let p = plan(&deleting, &observed(None, ""), &now());
    assert!(p.actions.contains(&Action::ReleaseFinalizer));
    assert_eq!(
        p.status.savepoints.len(),
        1,
        "the savepoint is recorded, and kept"
    );
}

#[test]
fn an_invalid_edit_is_reported_once_and_the_running_job_is_untouched() {
    let (j, old_hash) = running();
    let bad = |status| job("parallelism: 0", 2, Some(status));
    let o = observed(Some(PodState::Running { ready: true }), &old_hash);
    let p = plan(&bad(j.status.clone().unwrap()), &o, &now());
    assert_eq!(reasons(&p), vec!["InvalidSpec"]);
    assert!(p.status.operation.is_none());
    assert_eq!(p.actions.len(), 1);
    let c = p
        .status
        .conditions
        .iter()
        .find(|c| c.type_ == "Degraded")
        .unwrap();
    assert!(c.message.contains("spec.parallelism"), "{}", c.message);
    let p = plan(&bad(p.status), &o, &now());
    assert!(p.actions.is_empty(), "reported again: {:?}", p.actions);
}

#[test]
fn a_storage_endpoint_off_the_operators_list_starts_nothing_and_says_why() {
    let j = job(
        "objectStorage: {endpoint: 'https://collector.example'}",
        1,
        None,
    );
    let settings = crate::controller::Settings::default();
    let mut o = observed(None, "");
    o.storage_refused = settings.storage_refusal(&j.spec);
    let p = plan(&j, &o, &now());
    assert!(deploys(&p).is_empty(), "{:?}", p.actions);
    assert_eq!(reasons(&p), vec!["InvalidSpec"]);
    let c = p
        .status
        .conditions
        .iter()
        .find(|c| c.type_ == "Degraded")
        .unwrap();
    assert!(
        c.message.contains("spec.objectStorage.endpoint")
            && c.message
                .contains("\"https://collector.example\" is not a storage endpoint"),
        "{}",
        c.message
    );

    // On the list, the same spec deploys.
    let listed = crate::controller::Settings {
        storage_endpoints: vec!["https://collector.example/".into()],
        ..Default::default()
    };
    assert_eq!(listed.storage_refusal(&j.spec), None);
    let p = plan(&j, &observed(None, ""), &now());
    assert_eq!(deploys(&p).len(), 1, "{:?}", p.actions);
}

#[test]
fn a_running_job_whose_source_waits_says_so_and_is_running_again_when_it_reads() {
    let (j, hash) = running();
    let mut o = observed(Some(PodState::Running { ready: true }), &hash);
    o.waiting = Some(
        "source:orders subtask 0: topic orders on kafka:9092 cannot be read: it does not \
         exist (retrying every 2 s)"
            .into(),
    );
    let p = plan(&j, &o, &now());
    assert!(p.actions.is_empty(), "nothing to do: {:?}", p.actions);
    assert_eq!(p.status.lifecycle_state, Some(LifecycleState::Running));
    assert_eq!(
        p.status.job_state,
        Some(strom_crds::status::JobState::Waiting)
    );
    let ready = conditions::get(&p.status, Kind::Ready).unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "SourceWaiting")
    );
    assert!(
        ready.message.contains("topic orders on kafka:9092"),
        "{}",
        ready.message
    );

    let j = job("", 1, Some(p.status));
    let p = plan(
        &j,
        &observed(Some(PodState::Running { ready: true }), &hash),
        &now(),
    );
    assert_eq!(
        p.status.job_state,
        Some(strom_crds::status::JobState::Running)
    );
    assert!(conditions::holds(
        &p.status,
        Kind::Ready,
        conditions::Reason::Running
    ));
}

#[test]
fn a_bounded_job_that_finished_is_finished_not_failed_and_takes_no_savepoints() {
    let extra = "savepoints: {storage: 's3://state/s', periodicInterval: 1m}";
    let j = job(extra, 1, None);
    let hash = j.spec.hash();
    let p = plan(&j, &observed(None, ""), &now());
    let j = job(extra, 1, Some(p.status));
    let running = observed(Some(PodState::Running { ready: true }), &hash);
    let p = plan(&j, &running, &now());
    let j = job(extra, 1, Some(p.status));
    let later = Time(jiff::Timestamp::from_second(1_800_003_600).unwrap());
    // Still running, an hour later: a periodic savepoint is due.
    let p = plan(&j, &running, &later);
    assert!(
        p.actions
            .iter()
            .any(|a| matches!(a, Action::RequestSavepoint { .. })),
        "{:?}",
        p.actions
    );
    // Finished: nothing to do, and it says so.
    let mut finished = running.clone();
    finished.job_state = Some(strom_protocol::JobState::Finished);
    let p = plan(&j, &finished, &later);
    assert!(p.actions.is_empty(), "nothing to do: {:?}", p.actions);
    assert_eq!(p.status.lifecycle_state, Some(LifecycleState::Running));
    assert_eq!(
        p.status.job_state,
        Some(strom_crds::status::JobState::Finished)
    );
    let ready = conditions::get(&p.status, Kind::Ready).unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "Finished")
    );

    // Deleted once finished: nothing is left to save, so it stops without a savepoint.
    let mut deleting = job(extra, 1, Some(p.status));
    deleting.metadata.deletion_timestamp = Some(later.clone());
    let p = plan(&deleting, &finished, &later);
    assert!(
        !p.actions
            .iter()
            .any(|a| matches!(a, Action::RequestSavepoint { .. })),
        "{:?}",
        p.actions
    );
    assert!(p.actions.contains(&Action::StopEngine), "{:?}", p.actions);
}
