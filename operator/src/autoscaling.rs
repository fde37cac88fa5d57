//! The autoscaler in the operator, as a pure step: a job, its history and the engine's
//! latest report in; the history to keep, the autoscaler status to record and the events to
//! publish out. The decision itself is [`strom_autoscaler::decide`]; this module samples,
//! keeps the history bounded, turns the spec into its config and an `active` decision into
//! `status.autoscaler.vertexParallelism`, which [`crate::reconcile`] applies as a rescale like
//! any other parallelism change.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde::{Deserialize, Serialize};
use strom_autoscaler::{Config, Decision, Outcome, Sample, State};
use strom_crds::spec::{AutoscalerMode, AutoscalerSpec};
use strom_crds::status::{AutoscalerStatus, AutoscalerVertex, LifecycleState, ScalingRecord};
use strom_crds::{FlinkJob, FlinkJobSpec};
use strom_protocol::{JobState, JobStatus};

use crate::events::{Event, Reason};

/// At most this many samples are kept (a ConfigMap holds 1 MiB; a sample of a job of ten
/// vertices is about 2 KB).
pub const MAX_SAMPLES: usize = 400;

/// What the operator keeps per job between decisions (in the `<job>-autoscaler` ConfigMap).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct History {
    /// Samples, oldest first.
    #[serde(default)]
    pub samples: Vec<Sample>,
    /// The decision state.
    #[serde(default)]
    pub state: State,
}

/// One step's result.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// The autoscaler status to record (`None`: remove it).
    pub status: Option<AutoscalerStatus>,
    /// Events: (warning, reason, message).
    pub events: Vec<Event>,
    /// The decision made, if one was.
    pub decision: Option<Decision>,
}

fn ms(d: &strom_crds::Duration) -> i64 {
    d.to_std().map_or(0, |d| d.as_millis() as i64)
}

/// The decision's configuration from the spec.
pub fn config(spec: &FlinkJobSpec, a: &AutoscalerSpec) -> Config {
    let max = a.max_parallelism.or(spec.max_parallelism);
    Config {
        min_parallelism: a.min_parallelism.max(1) as u32,
        max_parallelism: max.map(|m| m.max(1) as u32),
        target_utilization: a.target_utilization,
        utilization_band: a.utilization_band,
        metrics_window_ms: ms(&a.metrics_window),
        stabilization_ms: ms(&a.stabilization_interval),
        scale_down_delay_ms: ms(&a.scale_down_delay),
        catch_up_ms: ms(&a.catch_up_duration).max(1),
        restart_ms: ms(&a.restart_time),
        max_scale_up_factor: a.max_scale_up_factor,
        max_scale_down_factor: a.max_scale_down_factor,
        ..Config::default()
    }
}

fn rate(r: f64) -> String {
    if r >= 100.0 {
        format!("{r:.0}/s")
    } else {
        format!("{r:.1}/s")
    }
}

/// One autoscaler step for `job` at `now_ms`: sample `engine` (its `GET /v1/job`) into
/// `history` if `interval_ms` has passed since the last sample, decide, and say what to
/// record. `None`: nothing to do (no autoscaler, or not a time to sample).
pub fn step(
    job: &FlinkJob,
    history: &mut History,
    engine: Option<&JobStatus>,
    now: &Time,
    interval_ms: i64,
) -> Option<Step> {
    let status = job.status.clone().unwrap_or_default();
    let previous = status.autoscaler.clone();
    let Some(a) = job
        .spec
        .autoscaler
        .as_ref()
        .filter(|a| a.mode != AutoscalerMode::Disabled)
    else {
        // Disabled: forget what it set, so the job returns to the spec's parallelism.
        return previous.map(|_| Step {
            status: None,
            events: vec![Event::normal(
                Reason::ScalingReport,
                "autoscaler disabled: the job returns to the parallelism of its spec",
            )],
            decision: None,
        });
    };
    let now_ms = now.0.as_millisecond();
    let hash = job.spec.pipeline_hash();
    let mut base = previous.clone().unwrap_or(AutoscalerStatus {
        mode: a.mode,
        outcome: "NoMetrics".into(),
        summary: "no metrics from the job yet".into(),
        time: now.clone(),
        vertex_parallelism: BTreeMap::new(),
        job_hash: Some(hash.clone()),
        vertices: Vec::new(),
        last_scaling: None,
    });
    let mut events = Vec::new();
    if base.job_hash.as_deref() != Some(hash.as_str()) {
        // A new pipeline: its vertices are not the ones measured.
        *history = History::default();
        base.vertex_parallelism.clear();
        base.vertices.clear();
        base.job_hash = Some(hash);
    }
    if a.mode != AutoscalerMode::Active && !base.vertex_parallelism.is_empty() {
        base.vertex_parallelism.clear();
        events.push(Event::normal(
            Reason::ScalingReport,
            "autoscaler in recommend mode: the job returns to the parallelism of its spec",
        ));
    }
    base.mode = a.mode;
    let running = status.lifecycle_state == Some(LifecycleState::Running)
        && status.operation.is_none()
        && engine.is_some_and(|e| e.state == JobState::Running);
    let due = history
        .samples
        .last()
        .is_none_or(|s| now_ms - s.at_ms >= interval_ms - interval_ms / 10);
    let (Some(engine), true, true) = (engine, running, due) else {
        return (Some(&base) != previous.as_ref()).then_some(Step {
            status: Some(base),
            events,
            decision: None,
        });
    };

    let config = config(&job.spec, a);
    history.samples.push(Sample::from_status(engine, now_ms));
    let keep_from = now_ms - config.metrics_window_ms - config.stabilization_ms - 3 * interval_ms;
    history.samples.retain(|s| s.at_ms >= keep_from);
    if history.samples.len() > MAX_SAMPLES {
        let extra = history.samples.len() - MAX_SAMPLES;
        history.samples.drain(..extra);
    }
    let decision = strom_autoscaler::decide(&history.samples, &history.state, &config, now_ms);
    history.state = decision.state.clone();

    for n in &decision.notices {
        events.push(Event::warning(Reason::IneffectiveScaling, n.clone()));
    }
    let was = previous.as_ref().map(|p| p.outcome.as_str());
    let outcome = decision.outcome.name();
    if decision.outcome == Outcome::Scale {
        let parallelism: BTreeMap<String, i32> = decision
            .parallelism
            .iter()
            .map(|(k, v)| (k.clone(), *v as i32))
            .collect();
        let applied = a.mode == AutoscalerMode::Active;
        let repeated = !applied
            && base
                .last_scaling
                .as_ref()
                .is_some_and(|l| l.summary == decision.summary || was == Some("Scale"));
        if applied {
            base.vertex_parallelism = parallelism;
        }
        if !repeated {
            events.push(Event::normal(
                Reason::ScalingReport,
                if applied {
                    format!("{}; applying it as a savepoint rescale", decision.summary)
                } else {
                    format!(
                        "recommendation (mode: recommend, not applied): {}",
                        decision.summary
                    )
                },
            ));
            base.last_scaling = Some(ScalingRecord {
                time: now.clone(),
                summary: decision.summary.clone(),
                applied,
            });
        }
    } else if matches!(decision.outcome, Outcome::ScaleDownPending { .. })
        && was != Some("ScaleDownPending")
    {
        events.push(Event::normal(
            Reason::ScalingReport,
            decision.summary.clone(),
        ));
    }
    base.outcome = outcome.into();
    base.summary = decision.summary.clone();
    base.time = now.clone();
    if !decision.vertices.is_empty() {
        base.vertices = decision
            .vertices
            .iter()
            .map(|r| AutoscalerVertex {
                id: r.id.clone(),
                parallelism: r.parallelism as i32,
                recommended: r.recommended as i32,
                input_rate: rate(r.input_rate),
                busy: format!("{:.2}", r.busy),
                true_rate: r.true_rate.map(rate),
                target_rate: if r.catch_up_rate > 0.0 {
                    format!(
                        "{} + {} catch-up",
                        rate(r.target_rate),
                        rate(r.catch_up_rate)
                    )
                } else {
                    rate(r.target_rate)
                },
                backlog: r.backlog.map(|b| b as i64),
                utilization: r.utilization.map(|u| format!("{u:.2}")),
                note: r.note.clone(),
            })
            .collect();
    }
    Some(Step {
        status: Some(base),
        events,
        decision: Some(decision),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::{self as plan, Deployed, Observed, PodState, SavepointProgress};
    use strom_crds::status::{OperationKind, OperationPhase};
    use strom_protocol::{SubtaskMetrics, VertexStatus};

    const SPEC: &str = "image: strom/engine:0.1.0
parallelism: 1
checkpoints: {storage: 's3://state/c'}
savepoints: {storage: 's3://state/s'}
job: {sources: [{name: s, datagen: {rate: 10, columns: [{name: v, expr: id}]}}], transforms: [{name: work, input: s, throttle: 100}], sinks: [{name: o, input: work, file: {path: /out, format: csv}}]}
";

    fn at(secs: i64) -> Time {
        Time(jiff::Timestamp::from_second(1_800_000_000 + secs).unwrap())
    }

    fn job(autoscaler: &str) -> FlinkJob {
        let mut spec: serde_json::Value = serde_yaml_ng::from_str(SPEC).unwrap();
        spec["autoscaler"] = serde_yaml_ng::from_str(autoscaler).unwrap();
        let mut job = FlinkJob::new("orders", serde_json::from_value(spec).unwrap());
        job.metadata.namespace = Some("shop".into());
        job.metadata.generation = Some(1);
        job.metadata.finalizers = Some(vec![plan::FINALIZER.into()]);
        job
    }

    fn observed(hash: &str) -> Observed {
        Observed {
            deployed: Some(Deployed {
                hash: hash.into(),
                pod: PodState::Running { ready: true },
            }),
            job_state: Some(JobState::Running),
            checkpoint: None,
            savepoint: SavepointProgress::Unknown,
            latest_checkpoint: None,
            storage_refused: None,
            waiting: None,
        }
    }

    /// The job deployed and running.
    fn running(autoscaler: &str) -> FlinkJob {
        let mut j = job(autoscaler);
        for _ in 0..2 {
            let hash = j.effective_spec().hash();
            j.status = Some(plan::plan(&j, &observed(&hash), &at(0)).status);
        }
        assert_eq!(
            j.status.as_ref().unwrap().lifecycle_state,
            Some(LifecycleState::Running)
        );
        j
    }

    /// The engine at `secs` seconds of a run started at 0: the source reads 100/s while
    /// 300/s arrive (its backlog grows 200/s), `work` is 100% busy.
    fn engine(secs: u64) -> JobStatus {
        let sub = |records: u64, busy_ms: u64, pending: Option<u64>| SubtaskMetrics {
            subtask: 0,
            busy_ms_per_second: 0.0,
            busy_ms_total: busy_ms,
            idle_ms_per_second: 0.0,
            backpressured_ms_per_second: 0.0,
            records_in: records,
            records_out: records,
            late_records: 0,
            watermark: None,
            watermark_idle: false,
            pending_records: pending,
            skipped_records: 0,
            dead_letter_records: 0,
            waiting: None,
            partitions: Vec::new(),
        };
        let vertex = |id: &str, inputs: &[&str], scalable, s| VertexStatus {
            name: id.into(),
            id: id.into(),
            inputs: inputs.iter().map(|s| (*s).to_owned()).collect(),
            scalable,
            partitions: None,
            parallelism: 1,
            subtasks: vec![s],
        };
        JobStatus {
            state: JobState::Running,
            parallelism: 1,
            uptime_ms: secs * 1000,
            restarts: 0,
            error: None,
            vertices: vec![
                vertex(
                    "source:s",
                    &[],
                    true,
                    sub(100 * secs, 10 * secs, Some(200 * secs)),
                ),
                vertex(
                    "work",
                    &["source:s"],
                    true,
                    sub(100 * secs, 1000 * secs, None),
                ),
                vertex("sink:o", &["work"], false, sub(100 * secs, secs, None)),
            ],
        }
    }

    const FAST: &str = "{mode: active, metricsWindow: 1m, stabilizationInterval: 0s, catchUpDuration: 10m, restartTime: 30s}";

    /// Steps every 10 s from 10 to `until` seconds; returns the last step.
    fn run_steps(j: &mut FlinkJob, history: &mut History, until: i64) -> Vec<Step> {
        let mut steps = Vec::new();
        for t in (10..=until).step_by(10) {
            if let Some(s) = step(j, history, Some(&engine(t as u64)), &at(t), 10_000) {
                j.status.as_mut().unwrap().autoscaler = s.status.clone();
                steps.push(s);
            }
        }
        steps
    }

    #[test]
    fn an_active_decision_becomes_a_savepoint_rescale_of_that_vertex() {
        let mut j = running(FAST);
        let mut history = History::default();
        let steps = run_steps(&mut j, &mut history, 80);
        // Collecting until a full minute of samples, then one decision to scale `work`:
        // capacity = 16000 / 600 s catch-up + 300 × 30/600 + 300 / 0.7 = 470.2/s over a true
        // rate of 100/s → 5 subtasks.
        let outcomes: Vec<&str> = steps
            .iter()
            .map(|s| s.status.as_ref().unwrap().outcome.as_str())
            .collect();
        assert_eq!(outcomes.first(), Some(&"CollectingMetrics"));
        assert_eq!(outcomes.last(), Some(&"Scale"), "{outcomes:?}");
        let last = steps.last().unwrap();
        let status = last.status.as_ref().unwrap();
        assert_eq!(
            status.vertex_parallelism.get("work"),
            Some(&5),
            "{status:#?}"
        );
        assert!(last.events.iter().any(|e| e.reason == Reason::ScalingReport
            && e.message.contains("work 1 → 5")
            && e.message.contains("savepoint rescale")));
        assert!(
            history.samples.len() <= 9,
            "bounded: {}",
            history.samples.len()
        );

        // The plan applies it like any parallelism change: stop with a savepoint, restore.
        let p = plan::plan(&j, &observed(&job(FAST).spec.hash()), &at(80));
        let op = p.status.operation.expect("an operation");
        assert_eq!(op.kind, OperationKind::Rescale);
        assert_eq!(op.phase, OperationPhase::Savepointing);
        let target: FlinkJobSpec = serde_json::from_str(&op.target.spec).unwrap();
        assert_eq!(target.vertex_parallelism.get("work"), Some(&5));
        assert_eq!(target.parallelism, 1);
    }

    #[test]
    fn a_recommendation_is_reported_once_and_changes_nothing() {
        let mode = FAST.replace("active", "recommend");
        let mut j = running(&mode);
        let mut history = History::default();
        let steps = run_steps(&mut j, &mut history, 120);
        let reports: Vec<&String> = steps
            .iter()
            .flat_map(|s| s.events.iter())
            .filter(|e| e.reason == Reason::ScalingReport)
            .map(|e| &e.message)
            .collect();
        assert_eq!(reports.len(), 1, "{reports:?}");
        assert!(reports[0].starts_with("recommendation"));
        let status = j.status.as_ref().unwrap().autoscaler.as_ref().unwrap();
        assert!(status.vertex_parallelism.is_empty());
        assert!(!status.last_scaling.as_ref().unwrap().applied);
        let hash = job(&mode).spec.hash();
        let p = plan::plan(&j, &observed(&hash), &at(120));
        assert!(p.status.operation.is_none());
    }

    #[test]
    fn disabling_or_a_new_pipeline_returns_to_the_spec_parallelism() {
        let mut j = running(FAST);
        let mut history = History::default();
        run_steps(&mut j, &mut history, 80);
        assert!(!j.autoscaled().is_empty());
        // A different pipeline: what was decided no longer applies.
        let mut changed = j.clone();
        changed.spec.job.as_mut().unwrap().transforms[0].throttle = Some(200);
        assert!(changed.autoscaled().is_empty());
        let s = step(&changed, &mut history, None, &at(90), 10_000).unwrap();
        assert!(s.status.unwrap().vertex_parallelism.is_empty());
        assert!(history.samples.is_empty());
        // Disabled: the status goes, with a word why.
        let mut off = j.clone();
        off.spec.autoscaler.as_mut().unwrap().mode = AutoscalerMode::Disabled;
        assert!(off.autoscaled().is_empty());
        let s = step(&off, &mut History::default(), None, &at(90), 10_000).unwrap();
        assert!(s.status.is_none() && s.events.len() == 1);
    }
}
