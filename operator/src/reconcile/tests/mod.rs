//! The table tests of [`plan`](super::plan), by theme, and the fixtures they share: a job
//! built from `BASE` plus a YAML edit, and what was observed.

mod deploy;
mod failures;
mod rollback;
mod savepoints;
mod suspend;
mod upgrade;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use strom_crds::status::{LifecycleState, SavepointInfo, SavepointState, SavepointTrigger};
use strom_crds::{FlinkJob, FlinkJobStatus};

use super::*;

pub(super) fn now() -> Time {
    Time(jiff::Timestamp::from_second(1_800_000_000).unwrap())
}

pub(super) const BASE: &str = "image: strom/engine:0.1.0
parallelism: 2
upgradeMode: savepoint
checkpoints: {storage: 's3://state/c'}
savepoints: {storage: 's3://state/s'}
job: {sources: [{name: s, datagen: {rate: 10, columns: [{name: v, expr: id}]}}], sinks: [{name: o, input: s, stdout: {}}]}
";

pub(super) fn job(extra: &str, generation: i64, status: Option<FlinkJobStatus>) -> FlinkJob {
    let mut spec: serde_json::Value = serde_yaml_ng::from_str(BASE).unwrap();
    let extra: serde_json::Value =
        serde_yaml_ng::from_str(if extra.is_empty() { "{}" } else { extra }).unwrap();
    for (k, v) in extra.as_object().unwrap() {
        spec[k] = v.clone();
    }
    let mut job = FlinkJob::new("fraud", serde_json::from_value(spec).unwrap());
    job.metadata.namespace = Some("payments".into());
    job.metadata.generation = Some(generation);
    job.metadata.finalizers = Some(vec![FINALIZER.into()]);
    job.status = status;
    job
}

pub(super) fn observed(pod: Option<PodState>, hash: &str) -> Observed {
    Observed {
        deployed: pod.map(|pod| Deployed {
            hash: hash.into(),
            pod,
        }),
        job_state: None,
        checkpoint: None,
        savepoint: SavepointProgress::Unknown,
        latest_checkpoint: Some("s3://state/c/payments/fraud/checkpoints/chk-9".into()),
        storage_refused: None,
        waiting: None,
    }
}

pub(super) fn reasons(p: &Plan) -> Vec<&'static str> {
    p.actions
        .iter()
        .filter_map(|a| match a {
            Action::Event(e) => Some(e.reason.as_str()),
            _ => None,
        })
        .collect()
}

pub(super) fn deploys(p: &Plan) -> Vec<(String, Option<String>)> {
    p.actions
        .iter()
        .filter_map(|a| match a {
            Action::Deploy {
                hash, restore_from, ..
            } => Some((hash.clone(), restore_from.clone())),
            _ => None,
        })
        .collect()
}

/// A job running generation 1 of BASE.
pub(super) fn running() -> (FlinkJob, String) {
    let j = job("", 1, None);
    let p = plan(&j, &observed(None, ""), &now());
    let hash = j.spec.hash();
    let j = job("", 1, Some(p.status));
    let p = plan(
        &j,
        &observed(Some(PodState::Running { ready: true }), &hash),
        &now(),
    );
    assert_eq!(p.status.lifecycle_state, Some(LifecycleState::Running));
    (job("", 1, Some(p.status)), hash)
}
