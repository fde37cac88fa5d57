//! The engine's HTTP control endpoint: `/v1/job` (status and every subtask's counters, as
//! the `strom-protocol` types), `/v1/checkpoints` (history), `POST /v1/savepoints` (take one,
//! optionally stopping the job; poll `GET /v1/savepoints/{id}`), Prometheus `/metrics`, and
//! `/healthz` and `/readyz`.
//!
//! A sampler turns the tasks' cumulative time counters into milliseconds per second over
//! the last second, the signals the autoscaler reads. `guard.rs`: who may ask for a
//! savepoint, and where it may go.

mod exposition;
mod guard;

pub use guard::{Guard, MAX_PENDING_SAVEPOINTS};

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use strom_protocol::{
    CheckpointInfo, CheckpointsStatus, JobState, JobStatus, SavepointState, SavepointStatus,
    SubtaskMetrics, VertexStatus, routes,
};

use crate::runtime::metrics::TaskMetrics;
use crate::snapshot::coordinator::{SavepointRequest, Shared};
use crate::snapshot::storage::Storage;

/// The job's checkpointing, as the endpoint sees it.
pub struct Checkpoints {
    /// Progress and history.
    pub shared: Arc<Shared>,
    /// Whether periodic checkpoints are on.
    pub enabled: bool,
    /// Where savepoint requests go.
    pub requests: std::sync::mpsc::Sender<SavepointRequest>,
    /// How savepoint targets are opened (the job's storage options).
    pub storage_options: strom_storage::StorageOptions,
    /// Who may ask for savepoints, and where they may go.
    pub guard: Guard,
}

/// What the endpoint reports on.
pub struct JobView {
    metrics: Vec<Arc<TaskMetrics>>,
    parallelism: u32,
    started: Instant,
    /// Set when the job ends.
    pub outcome: Mutex<Option<(JobState, Option<String>)>>,
    rates: Mutex<Vec<(f64, f64, f64)>>,
    checkpoints: Option<Checkpoints>,
    /// Savepoint requests: (target as requested, status).
    savepoints: Mutex<Vec<(String, SavepointStatus)>>,
}

impl JobView {
    /// A view over a running job's task counters.
    pub fn new(metrics: Vec<Arc<TaskMetrics>>, parallelism: u32, started: Instant) -> Arc<Self> {
        Self::build(metrics, parallelism, started, None)
    }

    /// A view that also reports on, and takes, checkpoints and savepoints.
    pub fn with_checkpoints(
        metrics: Vec<Arc<TaskMetrics>>,
        parallelism: u32,
        started: Instant,
        checkpoints: Checkpoints,
    ) -> Arc<Self> {
        Self::build(metrics, parallelism, started, Some(checkpoints))
    }

    fn build(
        metrics: Vec<Arc<TaskMetrics>>,
        parallelism: u32,
        started: Instant,
        checkpoints: Option<Checkpoints>,
    ) -> Arc<Self> {
        let n = metrics.len();
        Arc::new(JobView {
            metrics,
            parallelism,
            started,
            outcome: Mutex::new(None),
            rates: Mutex::new(vec![(0.0, 0.0, 0.0); n]),
            checkpoints,
            savepoints: Mutex::new(Vec::new()),
        })
    }

    /// `GET /v1/checkpoints`.
    pub fn checkpoints(&self) -> CheckpointsStatus {
        let Some(c) = &self.checkpoints else {
            return CheckpointsStatus {
                enabled: false,
                latest_completed: 0,
                failed: 0,
                last_failure: None,
                attempt: 0,
                history: Vec::new(),
            };
        };
        let history = c.shared.history.lock().expect("history");
        CheckpointsStatus {
            enabled: c.enabled,
            latest_completed: c.shared.completed.load(Ordering::Relaxed),
            failed: c.shared.failures.load(Ordering::Relaxed),
            last_failure: c.shared.last_failure.lock().expect("last failure").clone(),
            attempt: c.shared.attempt.load(Ordering::Relaxed),
            history: history
                .iter()
                .map(|h| CheckpointInfo {
                    id: h.id,
                    kind: match h.kind {
                        crate::snapshot::SnapshotKind::Checkpoint => {
                            strom_protocol::SnapshotKind::Checkpoint
                        }
                        crate::snapshot::SnapshotKind::Savepoint => {
                            strom_protocol::SnapshotKind::Savepoint
                        }
                    },
                    location: h.url.clone(),
                    duration_ms: h.duration.as_millis() as u64,
                    size_bytes: h.size,
                    completed_ms: h.completed_ms,
                })
                .collect(),
        }
    }

    /// Starts a savepoint into `target`; its status is then polled by id.
    pub fn request_savepoint(
        self: &Arc<Self>,
        request: strom_protocol::SavepointRequest,
    ) -> Result<SavepointStatus, (StatusCode, String)> {
        let Some(c) = &self.checkpoints else {
            return Err((
                StatusCode::CONFLICT,
                "this job cannot take savepoints".into(),
            ));
        };
        // A repeated request for a target already asked for (a client retrying, or an
        // operator acting on a stale view of its own status) gets the first request back
        // rather than a second savepoint racing it into the same directory.
        c.guard.target(&request.target)?;
        let mut all = self.savepoints.lock().expect("savepoints");
        if let Some((_, s)) = all
            .iter()
            .find(|(t, s)| *t == request.target && s.status != SavepointState::Failed)
        {
            return Ok(s.clone());
        }
        let pending = all
            .iter()
            .filter(|(_, s)| s.status == SavepointState::InProgress)
            .count();
        if pending >= MAX_PENDING_SAVEPOINTS {
            return Err((
                StatusCode::TOO_MANY_REQUESTS,
                format!("{pending} savepoints are in progress; ask again when one has finished"),
            ));
        }
        let target = Storage::open_with(&request.target, &c.storage_options)
            .map_err(|e| (StatusCode::BAD_REQUEST, format!("target: {e}")))?;
        let (reply, answer) = std::sync::mpsc::channel();
        c.requests
            .send(SavepointRequest {
                target,
                stop: request.stop,
                reply,
            })
            .map_err(|_| (StatusCode::CONFLICT, "the job is not running".to_owned()))?;
        let status = SavepointStatus {
            id: format!("savepoint-{}", all.len() + 1),
            status: SavepointState::InProgress,
            location: None,
            error: None,
        };
        all.push((request.target.clone(), status.clone()));
        drop(all);
        let (view, id) = (self.clone(), status.id.clone());
        std::thread::spawn(move || {
            let result = answer
                .recv()
                .unwrap_or_else(|_| Err(crate::Error::NotRunning("stopped before the savepoint")));
            let mut all = view.savepoints.lock().expect("savepoints");
            if let Some((_, s)) = all.iter_mut().find(|(_, s)| s.id == id) {
                match result {
                    Ok(location) => {
                        s.status = SavepointState::Completed;
                        s.location = Some(location);
                    }
                    Err(e) => {
                        s.status = SavepointState::Failed;
                        s.error = Some(e.to_string());
                    }
                }
            }
        });
        Ok(status)
    }

    /// A savepoint request's status.
    pub fn savepoint(&self, id: &str) -> Option<SavepointStatus> {
        self.savepoints
            .lock()
            .expect("savepoints")
            .iter()
            .find(|(_, s)| s.id == id)
            .map(|(_, s)| s.clone())
    }

    /// Samples the time counters every second until the job ends; call on its own thread.
    pub fn sample_forever(self: &Arc<Self>) {
        let read = |m: &TaskMetrics| {
            (
                m.busy_ns.load(Ordering::Relaxed),
                m.idle_ns.load(Ordering::Relaxed),
                m.backpressured_ns.load(Ordering::Relaxed),
            )
        };
        let mut last: Vec<(u64, u64, u64)> = self.metrics.iter().map(|m| read(m)).collect();
        let mut at = Instant::now();
        loop {
            std::thread::sleep(Duration::from_secs(1));
            let now = Instant::now();
            let secs = (now - at).as_secs_f64();
            let current: Vec<(u64, u64, u64)> = self.metrics.iter().map(|m| read(m)).collect();
            let rates = current
                .iter()
                .zip(&last)
                .map(|(c, l)| {
                    let per_s = |a: u64, b: u64| (a.saturating_sub(b)) as f64 / 1e6 / secs;
                    (per_s(c.0, l.0), per_s(c.1, l.1), per_s(c.2, l.2))
                })
                .collect();
            *self.rates.lock().expect("rates") = rates;
            last = current;
            at = now;
            if self.outcome.lock().expect("outcome").is_some() {
                return;
            }
        }
    }

    /// The job's status now.
    pub fn status(&self) -> JobStatus {
        let rates = self.rates.lock().expect("rates").clone();
        let (state, error) = self
            .outcome
            .lock()
            .expect("outcome")
            .clone()
            .unwrap_or((JobState::Running, None));
        let mut vertices: Vec<VertexStatus> = Vec::new();
        for (m, r) in self.metrics.iter().zip(rates) {
            let watermark = m.watermark.load(Ordering::Relaxed);
            let sub = SubtaskMetrics {
                subtask: m.subtask as u32,
                busy_ms_per_second: r.0,
                busy_ms_total: m.busy_ns.load(Ordering::Relaxed) / 1_000_000,
                idle_ms_per_second: r.1,
                backpressured_ms_per_second: r.2,
                records_in: m.records_in.load(Ordering::Relaxed),
                records_out: m.records_out.load(Ordering::Relaxed),
                late_records: m.late_records.load(Ordering::Relaxed),
                watermark: (watermark != i64::MIN).then_some(watermark),
                watermark_idle: m.watermark_idle.load(Ordering::Relaxed),
                pending_records: u64::try_from(m.pending_records.load(Ordering::Relaxed)).ok(),
                skipped_records: m.skipped_records.load(Ordering::Relaxed),
                dead_letter_records: m.dead_letter_records.load(Ordering::Relaxed),
                waiting: m.waiting.lock().expect("waiting").clone(),
                partitions: m.partitions.lock().expect("partitions").clone(),
            };
            // A partitioned source's partition count (its subtasks all know it).
            let partitions = u32::try_from(m.source_partitions.load(Ordering::Relaxed))
                .ok()
                .filter(|n| *n > 0);
            match vertices.iter_mut().find(|v| v.name == m.vertex) {
                Some(v) => {
                    v.parallelism += 1;
                    v.subtasks.push(sub);
                    v.partitions = v.partitions.max(partitions);
                }
                None => vertices.push(VertexStatus {
                    name: m.vertex.clone(),
                    id: m.vertex_id.clone(),
                    inputs: m.inputs.clone(),
                    scalable: m.scalable,
                    partitions,
                    parallelism: 1,
                    subtasks: vec![sub],
                }),
            }
        }
        JobStatus {
            state,
            parallelism: self.parallelism,
            uptime_ms: self.started.elapsed().as_millis() as u64,
            restarts: 0,
            error,
            vertices,
        }
    }
}

fn router(view: Arc<JobView>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(|State(v): State<Arc<JobView>>| async move {
                match v.outcome.lock().expect("outcome").as_ref() {
                    Some((JobState::Failed, e)) => (
                        StatusCode::SERVICE_UNAVAILABLE,
                        format!("failed: {}", e.clone().unwrap_or_default()),
                    ),
                    _ => (StatusCode::OK, "ready".to_owned()),
                }
            }),
        )
        .route(
            routes::JOB,
            get(|State(v): State<Arc<JobView>>| async move { axum::Json(v.status()) }),
        )
        .route(
            routes::CHECKPOINTS,
            get(|State(v): State<Arc<JobView>>| async move { axum::Json(v.checkpoints()) }),
        )
        .route(
            routes::SAVEPOINTS,
            post(
                |State(v): State<Arc<JobView>>,
                 headers: axum::http::HeaderMap,
                 body: axum::body::Bytes| async move {
                    if let Some(c) = &v.checkpoints
                        && let Err((code, why)) = c.guard.authorize(&headers)
                    {
                        return (code, [("www-authenticate", "Bearer")], why).into_response();
                    }
                    let request: strom_protocol::SavepointRequest =
                        match serde_json::from_slice(&body) {
                            Ok(r) => r,
                            Err(e) => {
                                return (
                                    StatusCode::BAD_REQUEST,
                                    format!("the request body is not a savepoint request: {e}"),
                                )
                                    .into_response();
                            }
                        };
                    match v.request_savepoint(request) {
                        Ok(s) => (StatusCode::ACCEPTED, axum::Json(s)).into_response(),
                        Err((code, e)) => (code, e).into_response(),
                    }
                },
            ),
        )
        .route(
            routes::SAVEPOINT,
            get(
                |State(v): State<Arc<JobView>>,
                 axum::extract::Path(id): axum::extract::Path<String>| async move {
                    match v.savepoint(&id) {
                        Some(s) => axum::Json(s).into_response(),
                        None => {
                            (StatusCode::NOT_FOUND, format!("no savepoint {id:?}")).into_response()
                        }
                    }
                },
            ),
        )
        .route(
            routes::METRICS,
            get(|State(v): State<Arc<JobView>>| async move {
                (
                    [("content-type", "text/plain; version=0.0.4")],
                    v.prometheus(),
                )
                    .into_response()
            }),
        )
        .with_state(view)
}

/// Serves the endpoint on `addr` from a background thread; returns the bound address.
pub fn serve(view: Arc<JobView>, addr: SocketAddr) -> std::io::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let bound = listener.local_addr()?;
    let sampler = view.clone();
    std::thread::Builder::new()
        .name("metrics-sampler".into())
        .spawn(move || sampler.sample_forever())?;
    std::thread::Builder::new()
        .name("control-endpoint".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a tokio runtime");
            runtime.block_on(async move {
                let listener =
                    tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
                if let Err(e) = axum::serve(listener, router(view)).await {
                    eprintln!("control endpoint stopped: {e}");
                }
            });
        })?;
    Ok(bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_few_savepoint_requests_wait_at_once() {
        // A coordinator that never answers: every request stays in progress.
        let (requests, _held) = std::sync::mpsc::channel();
        let view = JobView::with_checkpoints(
            Vec::new(),
            1,
            Instant::now(),
            Checkpoints {
                shared: Arc::new(Shared::default()),
                enabled: true,
                requests,
                storage_options: strom_storage::StorageOptions::new(),
                guard: Guard::default(),
            },
        );
        let dir = std::env::temp_dir().join(format!("strom-pending-{}", std::process::id()));
        let ask = |n: usize| {
            view.request_savepoint(strom_protocol::SavepointRequest {
                target: format!("file://{}/sp-{n}", dir.display()),
                stop: false,
            })
        };
        for n in 0..MAX_PENDING_SAVEPOINTS {
            assert_eq!(ask(n).unwrap().status, SavepointState::InProgress);
        }
        // Asking for one already asked for is an answer, not a new request.
        assert!(ask(0).is_ok());
        let (code, why) = ask(MAX_PENDING_SAVEPOINTS).unwrap_err();
        assert_eq!(code, StatusCode::TOO_MANY_REQUESTS, "{why}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
