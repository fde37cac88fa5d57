//! The Kubernetes Events the operator records on a FlinkJob: each reason is a variant, so a
//! misspelt reason does not compile and `kubectl get events --field-selector reason=…`
//! users can rely on the list in `docs/operator.md`.

/// Declares [`Reason`] and its text in one place.
macro_rules! reasons {
    ($($(#[doc = $doc:literal])+ $name:ident,)+) => {
        /// Why an event was recorded (the Event's `reason`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Reason {
            $($(#[doc = $doc])+ $name,)+
        }

        impl Reason {
            /// As Kubernetes shows it (CamelCase).
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Reason::$name => stringify!($name),)+
                }
            }

            /// Every reason.
            pub const ALL: &[Reason] = &[$(Reason::$name,)+];
        }
    };
}

reasons! {
    /// The spec breaks a rule of the CRD or the pipeline; nothing new is applied.
    InvalidSpec,
    /// A first deployment begins.
    DeployStarted,
    /// A suspension begins.
    SuspendStarted,
    /// A resumption begins.
    ResumeStarted,
    /// A redeployment from a given savepoint begins (`restore.redeployNonce`).
    RedeployStarted,
    /// A parallelism change begins.
    RescaleStarted,
    /// A spec change begins.
    UpgradeStarted,
    /// The FlinkJob is being deleted: its job stops.
    DeleteStarted,
    /// A savepoint was requested.
    SavepointTriggered,
    /// A savepoint completed.
    SavepointCompleted,
    /// A savepoint failed or could not be requested.
    SavepointFailed,
    /// No savepoint could be taken: the engine was not running.
    SavepointSkipped,
    /// The retention policy deleted a savepoint.
    SavepointDisposed,
    /// A new version starts from the latest checkpoint because no savepoint was possible.
    RestoringFromCheckpoint,
    /// A new version starts from this snapshot.
    RestoredFrom,
    /// An upgrade did not become healthy: back to the last stable version.
    RollbackStarted,
    /// A first deployment runs.
    Deployed,
    /// A rollback runs.
    RolledBack,
    /// A rescale runs.
    Rescaled,
    /// A resumption runs.
    Resumed,
    /// A restart runs.
    Restarted,
    /// An upgrade runs.
    Upgraded,
    /// The job is suspended.
    Suspended,
    /// A change was not applied; the old version keeps running.
    UpgradeFailed,
    /// The engine crashed (Kubernetes restarts it).
    EngineFailed,
    /// The engine failed too often: the job is stopped until its spec changes.
    JobFailed,
    /// The autoscaler's decision and its reasons.
    ScalingReport,
    /// Earlier scale-ups did not raise the throughput as expected.
    IneffectiveScaling,
}

/// An event to record on the FlinkJob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Warning (else Normal).
    pub warning: bool,
    /// Why.
    pub reason: Reason,
    /// For people.
    pub message: String,
}

impl Event {
    /// A Normal event.
    pub fn normal(reason: Reason, message: impl Into<String>) -> Event {
        Event {
            warning: false,
            reason,
            message: message.into(),
        }
    }

    /// A Warning event.
    pub fn warning(reason: Reason, message: impl Into<String>) -> Event {
        Event {
            warning: true,
            reason,
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Reason;

    #[test]
    fn every_reason_is_camel_case_and_unique() {
        let mut seen = std::collections::HashSet::new();
        for r in Reason::ALL {
            let s = r.as_str();
            assert!(
                s.chars().next().is_some_and(|c| c.is_ascii_uppercase()),
                "{s}"
            );
            assert!(s.chars().all(|c| c.is_ascii_alphanumeric()), "{s}");
            assert!(seen.insert(s), "{s} twice");
        }
        assert_eq!(Reason::InvalidSpec.as_str(), "InvalidSpec");
    }
}
