//! What the controller sees of one FlinkJob before it plans: its engine's objects and pod,
//! the engine's own report (job state, checkpoints, the savepoint under way) and, when a
//! decision may need it, the newest checkpoint in storage.

use std::time::Duration;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::api::{Api, LogParams};
use strom_crds::FlinkJob;
use strom_storage::Location;
use strom_storage::layout::{CheckpointDir, MANIFEST};

use crate::controller::{Context, Error, storage_options};
use crate::reconcile::{self as plan, Deployed, Observed, PodState, SavepointProgress};
use crate::resources::{self, SPEC_HASH};

fn pod_state(pod: &Pod) -> PodState {
    let Some(status) = &pod.status else {
        return PodState::Pending;
    };
    let container = status.container_statuses.as_ref().and_then(|c| c.first());
    if status.phase.as_deref() == Some("Succeeded") {
        return PodState::Succeeded;
    }
    let Some(c) = container else {
        return PodState::Pending;
    };
    let waiting = c.state.as_ref().and_then(|s| s.waiting.as_ref());
    let last = c.last_state.as_ref().and_then(|s| s.terminated.as_ref());
    let crashed = c.restart_count > 0
        && (waiting.is_some_and(|w| w.reason.as_deref() == Some("CrashLoopBackOff")) || !c.ready);
    if crashed || status.phase.as_deref() == Some("Failed") {
        let message = last
            .and_then(|t| t.message.clone().or_else(|| t.reason.clone()))
            .or_else(|| waiting.and_then(|w| w.message.clone()))
            .unwrap_or_else(|| "the engine exited".into());
        return PodState::Crashing {
            restarts: c.restart_count,
            message,
        };
    }
    if c.state.as_ref().is_some_and(|s| s.running.is_some()) {
        PodState::Running { ready: c.ready }
    } else {
        PodState::Pending
    }
}

/// A call to the engine's control endpoint, off the async threads; an engine that does
/// not answer is logged and seen as absent for this reconcile.
async fn engine_call<T: Send + 'static>(
    client: strom_protocol::EngineClient,
    call: impl FnOnce(&strom_protocol::EngineClient) -> Result<T, strom_protocol::ClientError>
    + Send
    + 'static,
) -> Option<T> {
    let answer = tokio::task::spawn_blocking(move || call(&client))
        .await
        .ok()?;
    answer
        .inspect_err(|e| tracing::debug!(error = %e, "engine call failed"))
        .ok()
}

pub(crate) async fn observe(
    job: &FlinkJob,
    ctx: &Context,
) -> Result<(Observed, Option<strom_protocol::JobStatus>), Error> {
    let ns = job.namespace().unwrap_or_else(|| "default".into());
    let names = resources::names(job);
    let sets: Api<StatefulSet> = Api::namespaced(ctx.client.clone(), &ns);
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let set = sets.get_opt(&names.engine).await?;
    let pod = pods.get_opt(&names.pod).await?;
    let mut deployed = set.map(|s| Deployed {
        hash: s.annotations().get(SPEC_HASH).cloned().unwrap_or_default(),
        pod: pod.as_ref().map_or(PodState::Absent, pod_state),
    });
    // A crashing engine's reason is in its log: the last error line of the previous run.
    if let Some(Deployed {
        pod: PodState::Crashing { message, .. },
        ..
    }) = deployed.as_mut()
    {
        let params = LogParams {
            previous: true,
            tail_lines: Some(20),
            ..LogParams::default()
        };
        let log = match pods.logs(&names.pod, &params).await {
            Ok(l) => Some(l),
            Err(_) => pods
                .logs(
                    &names.pod,
                    &LogParams {
                        tail_lines: Some(20),
                        ..LogParams::default()
                    },
                )
                .await
                .ok(),
        };
        if let Some(line) = log.as_deref().and_then(|l| {
            l.lines()
                .rev()
                .find(|line| line.to_ascii_lowercase().contains("error"))
        }) {
            *message = strom_storage::redact(line.trim());
        }
    }
    let ip = pod
        .as_ref()
        .and_then(|p| p.status.as_ref())
        .and_then(|s| s.pod_ip.clone());
    let endpoint = ip.map(|ip| {
        strom_protocol::EngineClient::new(
            format!("http://{ip}:{}", resources::CONTROL_PORT),
            Duration::from_secs(3),
        )
    });
    let mut checkpoint = None;
    let mut job_state = None;
    let mut engine = None;
    if let Some(e) = &endpoint {
        if let Some(c) = engine_call(e.clone(), |e| e.checkpoints()).await
            && let Some(last) = c
                .history
                .iter()
                .rev()
                .find(|h| h.kind == strom_protocol::SnapshotKind::Checkpoint)
        {
            checkpoint = Some((last.id, last.location.clone(), last.completed_ms));
        }
        engine = engine_call(e.clone(), |e| e.job()).await;
        job_state = engine.as_ref().map(|j| j.state);
    }
    // No storage read at an endpoint off the operator's list: the plan refuses the spec.
    let storage_refused = ctx.settings.storage_refusal(&job.spec);
    let options = storage_options(job, &ctx.settings).ok();
    let op = job.status.as_ref().and_then(|s| s.operation.as_ref());
    let mut savepoint = SavepointProgress::Unknown;
    if let Some(op) = op {
        if let (Some(e), Some(id)) = (&endpoint, &op.savepoint_request) {
            let id = id.clone();
            if let Some(s) = engine_call(e.clone(), move |e| e.savepoint(&id)).await {
                savepoint = SavepointProgress::of(s, op.savepoint_target.as_deref());
            }
        }
        // Whatever the engine says (or if it is gone), a savepoint in storage is complete.
        if !matches!(savepoint, SavepointProgress::Completed(_))
            && let Some(target) = &op.savepoint_target
            && let Some(options) = &options
            && let Ok(loc) = Location::open(target, options)
            && loc.exists(MANIFEST).await.unwrap_or(false)
        {
            savepoint = SavepointProgress::Completed(target.clone());
        }
    }
    // The checkpoint directory is read only when a decision may need its newest checkpoint
    // (a change under way or pending, or an engine that is not running): not on every
    // reconcile of a healthy job.
    let steady = job.status.as_ref().is_some_and(|s| {
        s.operation.is_none()
            && s.last_reconciled_spec
                .as_ref()
                .is_some_and(|r| Some(r.generation) == job.metadata.generation)
    }) && deployed
        .as_ref()
        .is_some_and(|d| d.pod == PodState::Running { ready: true });
    let mut latest_checkpoint = None;
    let spec = job
        .status
        .as_ref()
        .and_then(|s| s.last_reconciled_spec.as_ref())
        .and_then(|r| serde_json::from_str(&r.spec).ok())
        .unwrap_or_else(|| job.spec.clone());
    if !steady
        && let Some(dir) = plan::checkpoint_dir(job, &spec)
        && let Some(options) = &options
        && let Ok(loc) = Location::open(&dir, options)
        && let Ok(Some(id)) = CheckpointDir::new(loc.clone()).latest_complete().await
    {
        latest_checkpoint = Some(loc.url_of(&format!("chk-{id}")));
    }
    Ok((
        Observed {
            deployed,
            job_state,
            checkpoint,
            savepoint,
            latest_checkpoint,
            storage_refused,
            waiting: engine.as_ref().and_then(waiting),
        },
        engine,
    ))
}

/// What the engine's sources wait for: the first waiting subtask's reason, naming its
/// vertex and subtask, and how many more wait.
fn waiting(status: &strom_protocol::JobStatus) -> Option<String> {
    let mut all = status.vertices.iter().flat_map(|v| {
        v.subtasks.iter().filter_map(move |s| {
            s.waiting.as_ref().map(|why| {
                let vertex = if v.id.is_empty() { &v.name } else { &v.id };
                format!("{vertex} subtask {}: {why}", s.subtask)
            })
        })
    });
    let first = all.next()?;
    Some(match all.count() {
        0 => first,
        n => format!("{first} (and {n} more subtasks waiting)"),
    })
}
