//! Engine crashes.

use super::*;

#[test]
fn repeated_engine_failures_end_in_failed_with_the_reason() {
    let (j, hash) = running();
    let mut status = j.status.clone().unwrap();
    for restarts in 1..=MAX_FAILURES {
        let o = observed(
            Some(PodState::Crashing {
                restarts,
                message: "cannot read /data/in.csv: No such file".into(),
            }),
            &hash,
        );
        let p = plan(&job("", 1, Some(status)), &o, &now());
        assert!(reasons(&p).contains(&"EngineFailed"), "{restarts}");
        status = p.status;
        if restarts < MAX_FAILURES {
            assert_ne!(status.lifecycle_state, Some(LifecycleState::Failed));
        } else {
            assert_eq!(status.lifecycle_state, Some(LifecycleState::Failed));
            assert!(p.actions.contains(&Action::StopEngine));
            assert!(
                status
                    .last_error
                    .as_ref()
                    .unwrap()
                    .message
                    .contains("No such file")
            );
        }
    }
}

#[test]
fn a_version_that_keeps_crashing_on_deploy_ends_failed_and_is_not_redeployed() {
    let j = job("", 1, None);
    let hash = j.spec.hash();
    let mut status = plan(&j, &observed(None, ""), &now()).status;
    for restarts in 1..=MAX_FAILURES {
        let o = observed(
            Some(PodState::Crashing {
                restarts,
                message: "error: bad job".into(),
            }),
            &hash,
        );
        status = plan(&job("", 1, Some(status)), &o, &now()).status;
    }
    assert_eq!(status.lifecycle_state, Some(LifecycleState::Failed));
    assert!(status.operation.is_none());
    let p = plan(&job("", 1, Some(status)), &observed(None, ""), &now());
    assert!(deploys(&p).is_empty(), "{:?}", p.actions);
}
