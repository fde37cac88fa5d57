//! How disruptive a spec change is: what the operator must do to bring a running job from
//! one spec to another.

use serde_json::Value;

use crate::FlinkJobSpec;

/// What a spec change needs, least disruptive first (the order is meaningful: a change of
/// several fields needs the most disruptive of them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SpecChange {
    /// Nothing reaches the engine: operator-side settings (savepoint history and schedule,
    /// autoscaler, rollback, upgrade mode) or nothing at all.
    None,
    /// Only the parallelism (of the job or of single vertices) changed: a rescale (a savepoint upgrade with the new
    /// parallelism, whatever `upgradeMode` says, since keyed state must be re-split).
    Rescale,
    /// `restartNonce` changed: restart from the latest checkpoint, nothing else differs.
    Restart,
    /// The job, image, resources, storage, pod template or engine flags changed: an upgrade
    /// by `upgradeMode`.
    Upgrade,
    /// `restore.redeployNonce` set to a new value: stop without a savepoint and start from
    /// `restore.initialSavepoint` (with whatever else changed).
    Redeploy,
}

/// The fields that never reach the engine.
const OPERATOR_ONLY: &[&str] = &["autoscaler", "rollback", "upgradeMode", "state"];
/// Within `savepoints`, what the operator alone uses (`storage` is passed to the engine's
/// savepoint requests but changes nothing in a running engine either).
const SAVEPOINT_OPERATOR_ONLY: &[&str] =
    &["history", "periodicInterval", "triggerNonce", "storage"];

/// Classifies the change from `old` to `new`. `state` (running/suspended) and
/// `savepoints.triggerNonce` are not spec changes in this sense: the operator handles them
/// as requests of their own.
pub fn classify(old: &FlinkJobSpec, new: &FlinkJobSpec) -> SpecChange {
    let (mut a, mut b) = (engine_facing(old), engine_facing(new));
    if a == b {
        return SpecChange::None;
    }
    let redeploy = |v: &Value| v.pointer("/restore/redeployNonce").cloned();
    // A new nonce redeploys; dropping it is an ordinary change.
    if redeploy(&b).is_some() && redeploy(&a) != redeploy(&b) {
        return SpecChange::Redeploy;
    }
    let nonce = |v: &mut Value| v.as_object_mut().and_then(|m| m.remove("restartNonce"));
    let (na, nb) = (nonce(&mut a), nonce(&mut b));
    let parallelism = |v: &mut Value| {
        v.as_object_mut().map(|m| {
            (
                m.remove("parallelism"),
                m.remove("maxParallelism"),
                m.remove("vertexParallelism"),
            )
        })
    };
    let (pa, pb) = (parallelism(&mut a), parallelism(&mut b));
    if a != b {
        SpecChange::Upgrade
    } else if na != nb {
        SpecChange::Restart
    } else if pa != pb {
        SpecChange::Rescale
    } else {
        SpecChange::None
    }
}

fn engine_facing(spec: &FlinkJobSpec) -> Value {
    let mut v = serde_json::to_value(spec).expect("a spec serializes");
    if let Some(m) = v.as_object_mut() {
        for k in OPERATOR_ONLY {
            m.remove(*k);
        }
        if let Some(Value::Object(sp)) = m.get_mut("savepoints") {
            for k in SAVEPOINT_OPERATOR_ONLY {
                sp.remove(*k);
            }
            if sp.is_empty() {
                m.remove("savepoints");
            }
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(extra: &str) -> FlinkJobSpec {
        let yaml = format!(
            "image: strom/engine:0.1.0\nparallelism: 2\njob: {{sources: [{{name: s, datagen: {{rate: 10, columns: [{{name: v, expr: id}}]}}}}], sinks: [{{name: o, input: s, stdout: {{}}}}]}}\n{extra}"
        );
        serde_yaml_ng::from_str(&yaml).unwrap()
    }

    #[test]
    fn changes_are_classified_by_their_most_disruptive_part() {
        let base = spec("");
        let cases = [
            ("", SpecChange::None),
            (
                "upgradeMode: savepoint\nsavepoints: {storage: 's3://b/sp', triggerNonce: 3}",
                SpecChange::None,
            ),
            ("checkpoints: {storage: 's3://b/c'}", SpecChange::Upgrade),
            ("state: suspended", SpecChange::None),
            ("autoscaler: {mode: recommend}", SpecChange::None),
            ("rollback: {enabled: true}", SpecChange::None),
            ("restartNonce: 7", SpecChange::Restart),
            ("logLevel: debug", SpecChange::Upgrade),
            ("objectStorage: {region: eu-west-1}", SpecChange::Upgrade),
            ("vertexParallelism: {win: 3}", SpecChange::Rescale),
            (
                "restore: {initialSavepoint: 's3://b/sp-1', redeployNonce: 1}",
                SpecChange::Redeploy,
            ),
            (
                "restore: {initialSavepoint: 's3://b/sp-1'}",
                SpecChange::Upgrade,
            ),
        ];
        for (extra, want) in cases {
            assert_eq!(classify(&base, &spec(extra)), want, "{extra}");
        }
        let mut rescaled = base.clone();
        rescaled.parallelism = 4;
        assert_eq!(classify(&base, &rescaled), SpecChange::Rescale);
        let mut both = rescaled.clone();
        both.restart_nonce = Some(1);
        assert_eq!(classify(&base, &both), SpecChange::Restart);
        let mut upgraded = rescaled.clone();
        upgraded.image = "strom/engine:0.2.0".into();
        assert_eq!(classify(&base, &upgraded), SpecChange::Upgrade);
        let with_savepoints = spec("savepoints: {storage: 's3://b/sp'}");
        let mut history = with_savepoints.clone();
        let sp = history.savepoints.as_mut().unwrap();
        sp.history.max_count = 3;
        sp.trigger_nonce = Some(9);
        sp.periodic_interval = Some("1h".into());
        assert_ne!(history, with_savepoints);
        assert_eq!(classify(&with_savepoints, &history), SpecChange::None);
    }
}
