//! The conditions the operator keeps on a FlinkJob (`status.conditions`): their types and
//! reasons as enums, and the one function that sets them.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use strom_crds::FlinkJobStatus;

/// A condition's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The job runs (True), or why not (False).
    Ready,
    /// Something needs a person: an invalid spec, a failed upgrade, a failed job.
    Degraded,
}

impl Kind {
    /// As Kubernetes shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Ready => "Ready",
            Kind::Degraded => "Degraded",
        }
    }
}

/// A condition's reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Ready: the engine runs.
    Running,
    /// Ready=False: the engine runs, but a source waits for the system it reads.
    SourceWaiting,
    /// Ready=False: a bounded job finished.
    Finished,
    /// Ready=False: suspended.
    Suspended,
    /// Ready=False: failed too often.
    Failed,
    /// Degraded: the spec is invalid.
    InvalidSpec,
    /// Degraded=False: the spec is valid again.
    SpecValid,
    /// Degraded: a change was not applied.
    UpgradeFailed,
    /// Degraded: the job failed too often.
    JobFailed,
}

impl Reason {
    /// As Kubernetes shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Running => "Running",
            Reason::SourceWaiting => "SourceWaiting",
            Reason::Finished => "Finished",
            Reason::Suspended => "Suspended",
            Reason::Failed => "Failed",
            Reason::InvalidSpec => "InvalidSpec",
            Reason::SpecValid => "SpecValid",
            Reason::UpgradeFailed => "UpgradeFailed",
            Reason::JobFailed => "JobFailed",
        }
    }
}

/// The condition of `kind`, if the status has one.
pub fn get(status: &FlinkJobStatus, kind: Kind) -> Option<&Condition> {
    status.conditions.iter().find(|c| c.type_ == kind.as_str())
}

/// Whether the condition of `kind` is True for `reason`.
pub fn holds(status: &FlinkJobStatus, kind: Kind, reason: Reason) -> bool {
    get(status, kind).is_some_and(|c| c.status == "True" && c.reason == reason.as_str())
}

/// Sets the condition of `kind`; its transition time moves only when its truth changes.
pub fn set(
    status: &mut FlinkJobStatus,
    kind: Kind,
    on: bool,
    reason: Reason,
    message: String,
    generation: Option<i64>,
    now: &Time,
) {
    let value = if on { "True" } else { "False" };
    if let Some(c) = status
        .conditions
        .iter_mut()
        .find(|c| c.type_ == kind.as_str())
    {
        if c.status != value {
            c.last_transition_time = now.clone();
        }
        c.status = value.into();
        c.reason = reason.as_str().into();
        c.message = message;
        c.observed_generation = generation;
        return;
    }
    status.conditions.push(Condition {
        type_: kind.as_str().into(),
        status: value.into(),
        reason: reason.as_str().into(),
        message,
        observed_generation: generation,
        last_transition_time: now.clone(),
    });
}

/// Marks the upgrade to `generation` failed (Degraded, `UpgradeFailed`): the job keeps or
/// returns to its earlier version, and the operator does not try this generation again.
pub fn set_upgrade_failed(
    status: &mut FlinkJobStatus,
    message: String,
    generation: i64,
    now: &Time,
) {
    set(
        status,
        Kind::Degraded,
        true,
        Reason::UpgradeFailed,
        message,
        Some(generation),
        now,
    );
}

/// The generation whose upgrade failed, while the job is degraded for it.
pub fn upgrade_failed_at(status: &FlinkJobStatus) -> Option<i64> {
    get(status, Kind::Degraded)
        .filter(|_| holds(status, Kind::Degraded, Reason::UpgradeFailed))
        .and_then(|c| c.observed_generation)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> Time {
        Time(jiff::Timestamp::from_second(s).unwrap())
    }

    #[test]
    fn the_transition_time_moves_only_when_the_truth_changes() {
        let mut status = FlinkJobStatus::default();
        set(
            &mut status,
            Kind::Ready,
            true,
            Reason::Running,
            "a".into(),
            Some(1),
            &at(10),
        );
        set(
            &mut status,
            Kind::Ready,
            true,
            Reason::Running,
            "b".into(),
            Some(2),
            &at(20),
        );
        let c = get(&status, Kind::Ready).unwrap();
        assert_eq!(
            (c.last_transition_time.clone(), c.message.as_str()),
            (at(10), "b")
        );
        assert_eq!(c.observed_generation, Some(2));
        set(
            &mut status,
            Kind::Ready,
            false,
            Reason::Suspended,
            "c".into(),
            Some(2),
            &at(30),
        );
        let c = get(&status, Kind::Ready).unwrap();
        assert_eq!(
            (c.last_transition_time.clone(), c.status.as_str()),
            (at(30), "False")
        );
        assert!(!holds(&status, Kind::Ready, Reason::Suspended));
        set(
            &mut status,
            Kind::Degraded,
            true,
            Reason::InvalidSpec,
            "d".into(),
            None,
            &at(40),
        );
        assert!(holds(&status, Kind::Degraded, Reason::InvalidSpec));
        assert_eq!(status.conditions.len(), 2);
    }
}
