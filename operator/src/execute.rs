//! The controller's hands: one function per [`Action`] the plan decided, run in order after
//! the status (the write-ahead log) is written.

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType, Recorder};
use kube::{Resource, ResourceExt};
use strom_crds::{FlinkJob, FlinkJobSpec, FlinkJobStatus};
use strom_storage::Location;

use crate::controller::{Context, Error, MANAGER};
use crate::events::{self, Reason};
use crate::reconcile::{Action, FINALIZER};
use crate::resources;

/// The FlinkJob acted on.
pub(crate) struct Target<'a> {
    /// What every reconcile shares.
    pub ctx: &'a Context,
    /// The FlinkJob as read (with the autoscaler's status).
    pub job: &'a FlinkJob,
    /// Its namespace.
    pub ns: &'a str,
    /// Its name.
    pub name: &'a str,
    /// FlinkJobs of its namespace.
    pub jobs: &'a Api<FlinkJob>,
}

/// Carries out `action`; `status` is what was written, and is written again where an
/// action learns something (a savepoint request's id, disposed savepoints).
pub(crate) async fn run(
    t: &Target<'_>,
    action: Action,
    status: &mut FlinkJobStatus,
) -> Result<(), Error> {
    match action {
        Action::Event(e) => {
            record(t, &e, "Reconcile").await;
            Ok(())
        }
        Action::Deploy {
            spec,
            hash,
            restore_from,
            deployment,
        } => deploy(t, &spec, &hash, restore_from.as_deref(), &deployment).await,
        Action::AddFinalizer => set_finalizer(t, true).await,
        Action::ReleaseFinalizer => set_finalizer(t, false).await,
        Action::DisposeSavepoints => retain_savepoints(t, status).await,
        Action::StopEngine => stop_engine(t).await,
        Action::RequestSavepoint { target, stop } => {
            request_savepoint(t, target, stop, status).await
        }
    }
}

/// The Kubernetes event for `e`, done by `action` (`Reconcile`, `Autoscale`, `Retention`).
pub(crate) fn kube_event(e: &events::Event, action: &str) -> Event {
    Event {
        type_: if e.warning {
            EventType::Warning
        } else {
            EventType::Normal
        },
        reason: e.reason.as_str().into(),
        note: Some(e.message.clone()),
        action: action.into(),
        secondary: None,
    }
}

/// Records `e` on the FlinkJob; an event that cannot be recorded is logged, not retried.
pub(crate) async fn record(t: &Target<'_>, e: &events::Event, action: &str) {
    let reference = t.job.object_ref(&());
    if let Err(err) = publish(t.ctx, &kube_event(e, action), &reference).await {
        tracing::warn!(error = %err, "cannot record an event");
    }
}

/// Creates or replaces the engine's ConfigMap, Service and StatefulSet for `spec`.
async fn deploy(
    t: &Target<'_>,
    spec: &FlinkJobSpec,
    hash: &str,
    restore_from: Option<&str>,
    deployment: &str,
) -> Result<(), Error> {
    let params = PatchParams::apply(MANAGER).force();
    let names = resources::names(t.job);
    let client = t.ctx.client.clone();
    let cm = resources::config_map(t.job, spec)?;
    Api::<ConfigMap>::namespaced(client.clone(), t.ns)
        .patch(&names.config, &params, &Patch::Apply(&cm))
        .await?;
    if !t.ctx.settings.engine_ingress_namespaces.is_empty() {
        let policy = resources::network_policy(t.job, &t.ctx.settings.engine_ingress_namespaces);
        Api::<NetworkPolicy>::namespaced(client.clone(), t.ns)
            .patch(&names.engine, &params, &Patch::Apply(&policy))
            .await?;
    }
    // The control token is made once and kept: engines of every deployment of the job
    // mount the same Secret.
    let secrets = Api::<Secret>::namespaced(client.clone(), t.ns);
    if secrets.get_opt(&names.control).await?.is_none() {
        let secret = resources::control_secret(t.job, &resources::new_control_token());
        match secrets.create(&PostParams::default(), &secret).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(e) => return Err(e.into()),
        }
    }
    let svc = resources::service(t.job);
    Api::<Service>::namespaced(client.clone(), t.ns)
        .patch(&names.service, &params, &Patch::Apply(&svc))
        .await?;
    let set = resources::stateful_set(
        t.job,
        spec,
        hash,
        restore_from,
        deployment,
        t.ctx.settings.engine_service_account.as_deref(),
    );
    Api::<StatefulSet>::namespaced(client, t.ns)
        .patch(&names.engine, &params, &Patch::Apply(&set))
        .await?;
    Ok(())
}

/// Adds or removes [`FINALIZER`].
async fn set_finalizer(t: &Target<'_>, present: bool) -> Result<(), Error> {
    let mut finalizers = t.job.finalizers().to_vec();
    finalizers.retain(|f| f != FINALIZER);
    if present {
        finalizers.push(FINALIZER.into());
    }
    // Not pinned to a resourceVersion: the status was just written, so the one read is
    // stale by design.
    let patch = serde_json::json!({"metadata": {"finalizers": finalizers}});
    match t
        .jobs
        .patch(t.name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Applies the savepoint retention policy; a failure is retried after the next savepoint.
async fn retain_savepoints(t: &Target<'_>, status: &mut FlinkJobStatus) -> Result<(), Error> {
    let before = status.clone();
    if let Err(e) = dispose_savepoints(t.job, t.ctx, t.ns, status).await {
        tracing::warn!(job = %t.name, error = %e, "savepoint retention failed; will retry after the next savepoint");
    } else if *status != before {
        write_status(t.jobs, t.name, Some(&before), status).await?;
    }
    Ok(())
}

/// Removes the engine's StatefulSet (and so its pods).
async fn stop_engine(t: &Target<'_>) -> Result<(), Error> {
    let sets: Api<StatefulSet> = Api::namespaced(t.ctx.client.clone(), t.ns);
    match sets
        .delete(&resources::names(t.job).engine, &DeleteParams::foreground())
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The job's control token, from its Secret (None while it has none).
async fn control_token(t: &Target<'_>) -> Result<Option<String>, Error> {
    let secrets = Api::<Secret>::namespaced(t.ctx.client.clone(), t.ns);
    let secret = secrets.get_opt(&resources::names(t.job).control).await?;
    Ok(secret
        .and_then(|s| s.data)
        .and_then(|d| d.get(strom_crds::objects::CONTROL_TOKEN_KEY).cloned())
        .and_then(|b| String::from_utf8(b.0).ok()))
}

/// Asks the engine for a savepoint into `target` and records the request's id; an engine
/// that does not answer is asked again at the next reconcile.
async fn request_savepoint(
    t: &Target<'_>,
    target: String,
    stop: bool,
    status: &mut FlinkJobStatus,
) -> Result<(), Error> {
    let pods: Api<Pod> = Api::namespaced(t.ctx.client.clone(), t.ns);
    let ip = pods
        .get_opt(&resources::names(t.job).pod)
        .await?
        .and_then(|p| p.status)
        .and_then(|s| s.pod_ip);
    let Some(ip) = ip else { return Ok(()) };
    let Some(token) = control_token(t).await? else {
        tracing::warn!(job = %t.name, "the job's control Secret has no token; a savepoint cannot be asked for");
        return Ok(());
    };
    let engine = strom_protocol::EngineClient::new(
        format!("http://{ip}:{}", resources::CONTROL_PORT),
        std::time::Duration::from_secs(10),
    )
    .with_token(token);
    let request = strom_protocol::SavepointRequest { target, stop };
    let answer = tokio::task::spawn_blocking(move || engine.request_savepoint(&request)).await?;
    match answer {
        Ok(s) => {
            let before = status.clone();
            if let Some(op) = status.operation.as_mut() {
                op.savepoint_request = Some(s.id);
            }
            write_status(t.jobs, t.name, Some(&before), status).await
        }
        Err(e) => {
            tracing::warn!(job = %t.name, error = %e, "savepoint request failed; retrying");
            Ok(())
        }
    }
}

/// Records `event` on `reference`. A recorder per event: kube-runtime's `Recorder` treats
/// events that differ only in their note as one series and keeps the first note, so a
/// second rescale or savepoint would show the first one's message in `kubectl describe`
/// (client-go's events recorder keys series by note as well). The operator publishes
/// events on transitions, not in loops, so it needs no series.
pub(crate) async fn publish(
    ctx: &Context,
    event: &Event,
    reference: &k8s_openapi::api::core::v1::ObjectReference,
) -> Result<(), kube::Error> {
    Recorder::new(ctx.client.clone(), ctx.reporter.clone())
        .publish(event, reference)
        .await
}

/// Applies `spec.savepoints.history` to the job's savepoints directory through the storage
/// layer's crash-safe disposal, sparing the savepoint the running deployment restored from,
/// the ones a start is about to restore (`FlinkJob::savepoints_in_use`) and, by count, the
/// newest; marks what went as `Disposed` in the status.
async fn dispose_savepoints(
    job: &FlinkJob,
    ctx: &Context,
    ns: &str,
    status: &mut FlinkJobStatus,
) -> Result<(), Error> {
    let Some(sp) = &job.spec.savepoints else {
        return Ok(());
    };
    let Some(storage) = &sp.storage else {
        return Ok(());
    };
    let dir = crate::reconcile::job_dirs(job, storage).savepoints();
    let parent = Location::open(
        &dir,
        &crate::controller::storage_options(job, &ctx.settings)?,
    )?;
    let mut protected = job.savepoints_in_use();
    let sets: Api<StatefulSet> = Api::namespaced(ctx.client.clone(), ns);
    if let Some(set) = sets.get_opt(&resources::names(job).engine).await?
        && let Some(from) = set.annotations().get(resources::RESTORED_FROM)
    {
        protected.push(from.clone());
    }
    let policy = strom_storage::layout::SavepointPolicy {
        max_count: sp.history.max_count.max(1) as usize,
        max_age_ms: sp
            .history
            .max_age
            .as_ref()
            .and_then(|d| d.to_std().ok())
            .map(|d| d.as_millis() as i64),
    };
    let now = jiff::Timestamp::now().as_millisecond();
    let gone = strom_storage::layout::retain_savepoints(&parent, &policy, &protected, now).await?;
    for g in gone {
        for s in status.savepoints.iter_mut() {
            if s.location.as_deref() == Some(g.url.as_str()) {
                s.state = strom_crds::status::SavepointState::Disposed;
            }
        }
        let event = events::Event::normal(
            Reason::SavepointDisposed,
            format!("{} disposed of by the retention policy", g.url),
        );
        if let Err(e) = publish(ctx, &kube_event(&event, "Retention"), &job.object_ref(&())).await {
            tracing::warn!(error = %e, "cannot record an event");
        }
    }
    Ok(())
}

/// Writes `status` as a merge patch against `old` (what was read).
pub(crate) async fn write_status(
    jobs: &Api<FlinkJob>,
    name: &str,
    old: Option<&FlinkJobStatus>,
    status: &FlinkJobStatus,
) -> Result<(), Error> {
    let old = serde_json::to_value(old.cloned().unwrap_or_default()).expect("status serializes");
    let new = serde_json::to_value(status).expect("status serializes");
    let patch = serde_json::json!({"status": merge_patch(&old, &new)});
    jobs.patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

/// A JSON merge patch (RFC 7396) from `old` to `new`: fields that disappear become `null`.
pub fn merge_patch(old: &serde_json::Value, new: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match (old, new) {
        (Value::Object(o), Value::Object(n)) => {
            let mut patch = serde_json::Map::new();
            for (k, nv) in n {
                match o.get(k) {
                    Some(ov) if ov == nv => {}
                    Some(ov) => {
                        patch.insert(k.clone(), merge_patch(ov, nv));
                    }
                    None => {
                        patch.insert(k.clone(), nv.clone());
                    }
                }
            }
            for k in o.keys() {
                if !n.contains_key(k) {
                    patch.insert(k.clone(), Value::Null);
                }
            }
            Value::Object(patch)
        }
        _ => new.clone(),
    }
}
