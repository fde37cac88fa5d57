//! The controller loop: observe a FlinkJob's objects, its engine and its storage; call
//! [`plan`](crate::reconcile::plan); write the status (the write-ahead log) **before** acting; then act.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action as Requeue, Controller};
use kube::runtime::events::Reporter;
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use strom_crds::{FlinkJob, FlinkJobSpec};
use strom_storage::StorageOptions;

use crate::execute;
use crate::reconcile as plan;
use crate::resources;

/// The field manager of everything the operator writes.
pub const MANAGER: &str = "strom-operator";

/// Why a reconcile failed (it is retried, sooner or later by kind: see [`retry_after`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The API server refused or failed.
    #[error("kubernetes: {0}")]
    Kube(#[from] kube::Error),
    /// The job's storage could not be read or written.
    #[error("storage: {0}")]
    Storage(#[from] strom_storage::StorageError),
    /// The job names a storage endpoint this operator sends no credentials to.
    #[error("spec.objectStorage.endpoint: {0}")]
    StorageEndpoint(String),
    /// The call to the engine's control endpoint could not be made (its worker thread
    /// failed); the engine's own answers, errors included, are handled by the reconciler.
    #[error("engine: {0}")]
    Engine(#[from] tokio::task::JoinError),
    /// The engine's objects could not be built from the spec.
    #[error("resources: {0}")]
    Resources(#[from] resources::BuildError),
}

/// How long to wait before retrying a reconcile that failed with `error`: a write that lost
/// a race (409) at once; the API server or the engine briefly; storage longer; objects that
/// cannot be built from the spec until someone changes something (a minute).
pub fn retry_after(error: &Error) -> Duration {
    match error {
        Error::Kube(kube::Error::Api(e)) if e.code == 409 => Duration::from_millis(500),
        Error::Kube(kube::Error::Api(e)) if e.code == 429 || e.code >= 500 => {
            Duration::from_secs(5)
        }
        Error::Kube(_) | Error::Engine(_) => Duration::from_secs(2),
        Error::Storage(_) => Duration::from_secs(10),
        Error::Resources(_) | Error::StorageEndpoint(_) => Duration::from_secs(60),
    }
}

/// What every reconcile shares.
pub struct Context {
    pub(crate) client: Client,
    pub(crate) reporter: Reporter,
    metrics: Arc<Metrics>,
    pub(crate) settings: Settings,
}

/// Operator-wide settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// How often the autoscaler samples each job's engine metrics (and decides).
    pub autoscaler_interval: Duration,
    /// The service account engine pods run as when their FlinkJob names none.
    pub engine_service_account: Option<String>,
    /// The namespaces whose pods may reach engines' control ports (the operator's, the
    /// control plane's, Prometheus'); empty: no NetworkPolicy is made.
    pub engine_ingress_namespaces: Vec<String>,
    /// Object-storage endpoints the operator sends its credentials to (besides the clouds'
    /// own, which a FlinkJob names by leaving `spec.objectStorage.endpoint` out).
    pub storage_endpoints: Vec<String>,
}

impl Settings {
    /// Why the operator will not touch `spec`'s storage, if it will not: it names an
    /// endpoint off the operator's list, which would receive the operator's credentials (on
    /// Azure and GCS a bearer token).
    pub fn storage_refusal(&self, spec: &FlinkJobSpec) -> Option<String> {
        let endpoint = spec.object_storage.as_ref()?.endpoint.as_deref()?;
        let trimmed = endpoint.trim_end_matches('/');
        if self
            .storage_endpoints
            .iter()
            .any(|a| a.trim_end_matches('/') == trimmed)
        {
            return None;
        }
        Some(format!(
            "{endpoint:?} is not a storage endpoint this operator sends its credentials to \
             (allowed: {}; the operator's --allowed-storage-endpoint, the chart's \
             objectStorage.allowedEndpoints)",
            if self.storage_endpoints.is_empty() {
                "the clouds' own only".to_owned()
            } else {
                self.storage_endpoints.join(", ")
            }
        ))
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            autoscaler_interval: Duration::from_secs(10),
            engine_service_account: None,
            engine_ingress_namespaces: Vec::new(),
            storage_endpoints: Vec::new(),
        }
    }
}

/// The operator's Prometheus metrics.
pub struct Metrics {
    /// Where they are registered (served at `/metrics`).
    pub registry: prometheus::Registry,
    reconciles: prometheus::IntCounterVec,
    duration: prometheus::Histogram,
    jobs: prometheus::IntGaugeVec,
    transitions: prometheus::IntCounterVec,
    decisions: prometheus::IntCounterVec,
    recommended: prometheus::IntGaugeVec,
    utilization: prometheus::GaugeVec,
    /// 1 while this replica leads.
    pub leader: prometheus::IntGauge,
}

/// A labelled metric registered in `registry`.
fn registered<M: prometheus::core::Collector + Clone + 'static>(
    registry: &prometheus::Registry,
    metric: Result<M, prometheus::Error>,
) -> M {
    let metric = metric.expect("a valid metric");
    registry
        .register(Box::new(metric.clone()))
        .expect("metric registers");
    metric
}

impl Default for Metrics {
    fn default() -> Self {
        use prometheus::{Histogram, HistogramOpts, IntCounterVec, IntGaugeVec, Opts};
        let registry = prometheus::Registry::new();
        let r = &registry;
        let opts = Opts::new;
        Metrics {
            reconciles: registered(
                r,
                IntCounterVec::new(
                    opts(
                        "strom_operator_reconciles_total",
                        "Reconciles, by result (ok or error)",
                    ),
                    &["result"],
                ),
            ),
            duration: registered(
                r,
                Histogram::with_opts(HistogramOpts::new(
                    "strom_operator_reconcile_duration_seconds",
                    "Time one reconcile took",
                )),
            ),
            jobs: registered(
                r,
                IntGaugeVec::new(
                    opts(
                        "strom_operator_job_state",
                        "1 for each job's lifecycle state",
                    ),
                    &["namespace", "name", "state"],
                ),
            ),
            transitions: registered(
                r,
                IntCounterVec::new(
                    opts(
                        "strom_operator_transitions_total",
                        "Lifecycle transitions, by new state",
                    ),
                    &["state"],
                ),
            ),
            leader: registered(
                r,
                prometheus::IntGauge::new("strom_operator_leader", "1 while this replica leads"),
            ),
            decisions: registered(
                r,
                IntCounterVec::new(
                    opts(
                        "strom_operator_autoscaler_decisions_total",
                        "Autoscaler decisions, by outcome (Scale, InBand, ScaleDownPending, …)",
                    ),
                    &["namespace", "name", "outcome"],
                ),
            ),
            recommended: registered(
                r,
                IntGaugeVec::new(
                    opts(
                        "strom_operator_autoscaler_recommended_parallelism",
                        "The parallelism the autoscaler last recommended, per vertex",
                    ),
                    &["namespace", "name", "vertex"],
                ),
            ),
            utilization: registered(
                r,
                prometheus::GaugeVec::new(
                    opts(
                        "strom_operator_autoscaler_utilization",
                        "Busy fraction each vertex would need for its target rate, as last measured",
                    ),
                    &["namespace", "name", "vertex"],
                ),
            ),
            registry,
        }
    }
}

/// Runs the controller over FlinkJobs in `namespace` (all namespaces if `None`) until the
/// stream ends.
pub async fn run(client: Client, namespace: Option<String>) {
    run_with(
        client,
        namespace,
        Arc::new(Metrics::default()),
        Settings::default(),
    )
    .await;
}

/// [`run`], recording into `metrics`, with `settings`.
pub async fn run_with(
    client: Client,
    namespace: Option<String>,
    metrics: Arc<Metrics>,
    settings: Settings,
) {
    run_in(client, namespace.into_iter().collect(), metrics, settings).await;
}

/// Runs the controller over FlinkJobs in each of `namespaces` (all namespaces if empty), one
/// watch per namespace so that the operator needs no cluster-wide permission, until the
/// streams end.
pub async fn run_in(
    client: Client,
    namespaces: Vec<String>,
    metrics: Arc<Metrics>,
    settings: Settings,
) {
    let reporter = Reporter {
        controller: MANAGER.into(),
        instance: std::env::var("POD_NAME").ok(),
    };
    let context = Arc::new(Context {
        client: client.clone(),
        reporter,
        metrics,
        settings,
    });
    let scopes: Vec<(Api<FlinkJob>, Api<StatefulSet>)> = if namespaces.is_empty() {
        vec![(Api::all(client.clone()), Api::all(client))]
    } else {
        namespaces
            .iter()
            .map(|ns| {
                (
                    Api::namespaced(client.clone(), ns),
                    Api::namespaced(client.clone(), ns),
                )
            })
            .collect()
    };
    futures::future::join_all(scopes.into_iter().map(|(jobs, sets)| {
        Controller::new(jobs, watcher::Config::default())
            .owns(sets, watcher::Config::default())
            .run(reconcile, error_policy, context.clone())
            .for_each(|result| async move {
                if let Err(e) = result {
                    tracing::warn!(error = %e, "reconcile failed");
                }
            })
    }))
    .await;
}

fn error_policy(_job: Arc<FlinkJob>, error: &Error, _ctx: Arc<Context>) -> Requeue {
    let after = retry_after(error);
    tracing::warn!(%error, retry_in = ?after, "retrying");
    Requeue::requeue(after)
}

/// The options for the job's storage, with the operator's credentials: refused for an
/// endpoint off the operator's list.
pub(crate) fn storage_options(
    job: &FlinkJob,
    settings: &Settings,
) -> Result<StorageOptions, Error> {
    if let Some(why) = settings.storage_refusal(&job.spec) {
        return Err(Error::StorageEndpoint(why));
    }
    Ok(resources::storage_options(&job.spec)
        .into_iter()
        .fold(StorageOptions::new(), |o, (k, v)| o.with(k, &v)))
}

async fn reconcile(job: Arc<FlinkJob>, ctx: Arc<Context>) -> Result<Requeue, Error> {
    let timer = ctx.metrics.duration.start_timer();
    let result = reconcile_once(&job, &ctx).await;
    timer.observe_duration();
    ctx.metrics
        .reconciles
        .with_label_values(&[if result.is_ok() { "ok" } else { "error" }])
        .inc();
    result
}

async fn reconcile_once(job: &Arc<FlinkJob>, ctx: &Arc<Context>) -> Result<Requeue, Error> {
    let (job, ctx) = (job.clone(), ctx.clone());
    let ns = job.namespace().unwrap_or_else(|| "default".into());
    let name = job.name_any();
    let jobs: Api<FlinkJob> = Api::namespaced(ctx.client.clone(), &ns);
    let (observed, engine) = crate::observe::observe(&job, &ctx).await?;
    let now = Time(jiff::Timestamp::now());
    // The status as stored: what the merge patch is computed against.
    let stored = job.status.clone();
    let (job, scaling_events) = autoscale(job, engine.as_ref(), &now, &ctx).await?;
    let decided = plan::plan(&job, &observed, &now);
    let mut status = decided.status.clone();
    let old_state = stored.as_ref().and_then(|s| s.lifecycle_state);
    if let Some(state) = status.lifecycle_state
        && Some(state) != old_state
    {
        let state = format!("{state:?}");
        ctx.metrics
            .transitions
            .with_label_values(&[state.as_str()])
            .inc();
        if let Some(old) = old_state {
            let _ = ctx.metrics.jobs.remove_label_values(&[
                ns.as_str(),
                name.as_str(),
                format!("{old:?}").as_str(),
            ]);
        }
        ctx.metrics
            .jobs
            .with_label_values(&[ns.as_str(), name.as_str(), state.as_str()])
            .set(1);
    }
    // The log first: what is about to be done is recorded before it is done.
    if Some(&status) != stored.as_ref() {
        execute::write_status(&jobs, &name, stored.as_ref(), &status).await?;
    }
    let target = execute::Target {
        ctx: &ctx,
        job: &job,
        ns: &ns,
        name: &name,
        jobs: &jobs,
    };
    for event in &scaling_events {
        execute::record(&target, event, "Autoscale").await;
    }
    for action in decided.actions {
        execute::run(&target, action, &mut status).await?;
    }
    let busy = status.operation.is_some();
    Ok(Requeue::requeue(Duration::from_secs(if busy {
        1
    } else {
        5
    })))
}

/// Events of an autoscaler step.
type ScalingEvents = Vec<crate::events::Event>;

/// Runs an autoscaler step for `job` (reading and writing its history ConfigMap) and
/// returns the job with the autoscaler status [`plan`](crate::reconcile::plan) should see, and the events to record.
async fn autoscale(
    job: Arc<FlinkJob>,
    engine: Option<&strom_protocol::JobStatus>,
    now: &Time,
    ctx: &Context,
) -> Result<(Arc<FlinkJob>, ScalingEvents), Error> {
    let wanted = job
        .spec
        .autoscaler
        .as_ref()
        .is_some_and(|a| a.mode != strom_crds::spec::AutoscalerMode::Disabled)
        || job.status.as_ref().is_some_and(|s| s.autoscaler.is_some());
    if !wanted || job.metadata.deletion_timestamp.is_some() {
        return Ok((job, Vec::new()));
    }
    let ns = job.namespace().unwrap_or_else(|| "default".into());
    let name = job.name_any();
    let maps: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &ns);
    let cm_name = resources::names(&job).autoscaler;
    let mut history: crate::autoscaling::History = maps
        .get_opt(&cm_name)
        .await?
        .and_then(|c| c.data)
        .and_then(|d| d.get("history.json").cloned())
        .and_then(|h| match serde_json::from_str(&h) {
            Ok(h) => Some(h),
            Err(e) => {
                tracing::warn!(job = %name, error = %e, "unreadable autoscaler history; starting over");
                None
            }
        })
        .unwrap_or_default();
    let before = history.clone();
    let interval = ctx.settings.autoscaler_interval.as_millis() as i64;
    let Some(step) = crate::autoscaling::step(&job, &mut history, engine, now, interval) else {
        return Ok((job, Vec::new()));
    };
    if history != before {
        let text = serde_json::to_string(&history).expect("JSON serializes");
        let cm = resources::autoscaler_config_map(&job, text);
        maps.patch(
            &cm_name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&cm),
        )
        .await?;
    }
    if let Some(d) = &step.decision {
        ctx.metrics
            .decisions
            .with_label_values(&[ns.as_str(), name.as_str(), d.outcome.name()])
            .inc();
        for v in &d.vertices {
            ctx.metrics
                .recommended
                .with_label_values(&[ns.as_str(), name.as_str(), v.id.as_str()])
                .set(i64::from(v.recommended));
            if let Some(u) = v.utilization {
                ctx.metrics
                    .utilization
                    .with_label_values(&[ns.as_str(), name.as_str(), v.id.as_str()])
                    .set(u);
            }
        }
        if d.outcome == strom_autoscaler::Outcome::Scale {
            tracing::info!(job = %name, summary = %d.summary, "autoscaler decision");
        }
    }
    let mut changed = (*job).clone();
    changed
        .status
        .get_or_insert_with(Default::default)
        .autoscaler = step.status;
    Ok((Arc::new(changed), step.events))
}
