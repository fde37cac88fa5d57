//! Start and stop: what an application is told to be, applied to its FlinkJob.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::applications::renamed;
use super::request::{conflict, if_match};
use super::{Outcome, changed, check_quota, load_app, load_at, record};
use crate::auth::{Principal, Role};
use crate::db::now_ms;
use crate::error::{ApiError, Result};
use crate::model::{Changed, StartRequest, StopRequest};
use crate::store::applications::{AppRow, Desired};
use crate::sync::{Applied, after_commit, apply};
use crate::{AppState, OptBody, k8s, spec, store};

/// A change of what the application is told to be.
struct Told {
    desired: Desired,
    /// The first start's savepoint (`restoreFrom`).
    restore_from: Option<String>,
    /// A stop takes a savepoint (otherwise it resumes from its latest checkpoint).
    savepoint: bool,
}

async fn set_desired(
    state: &AppState,
    tenant: &str,
    app: &str,
    expected: i64,
    told: Told,
) -> Result<AppRow> {
    let current = load_at(state, tenant, app, expected).await?;
    let mut spec = current.typed_spec()?;
    let running = current.desired == Desired::Running;
    match told.desired {
        Desired::Running => {
            if running {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "already_running",
                    format!("application {app:?} is running"),
                ));
            }
            if let Some(from) = &told.restore_from {
                if k8s::get_job(&state.kube, tenant, app).await?.is_some() {
                    return Err(ApiError::field(
                        "restoreFrom",
                        "applies to the first start only; a stopped application resumes from its own last savepoint",
                    ));
                }
                spec.restore = Some(strom_crds::spec::RestoreSpec {
                    initial_savepoint: Some(from.as_str().into()),
                    ..Default::default()
                });
                let text = spec::stored(&spec)?;
                let value = serde_json::from_str(&text).map_err(ApiError::internal)?;
                spec::managed(&state.tenant_storage(tenant), &state.policy, app, &value)
                    .map_err(|e| renamed(e, "spec.restore.initialSavepoint", "restoreFrom"))?;
            }
        }
        Desired::Stopped if !running => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "not_running",
                format!("application {app:?} is stopped"),
            ));
        }
        Desired::Stopped if !told.savepoint && spec.checkpoints.is_none() => {
            return Err(ApiError::field(
                "savepoint",
                "stopping without a savepoint needs checkpoints (spec.checkpoints) to resume from",
            ));
        }
        Desired::Stopped => {}
    }
    let at_checkpoint = match told.desired {
        Desired::Running => current.at_checkpoint,
        Desired::Stopped => !told.savepoint,
    };
    // What Kubernetes would refuse is refused before anything is recorded.
    let job = Applied {
        version: current.version,
        spec: &spec,
        running: told.desired == Desired::Running,
        nonce: current.nonce,
        at_checkpoint,
    };
    apply(state, tenant, app, job, true).await?;
    let mut tx = state.db.pool.begin().await?;
    if told.desired == Desired::Running {
        check_quota(&mut tx, tenant, app, &spec).await?;
    }
    let moved = store::applications::set_desired(
        &mut *tx,
        tenant,
        app,
        expected,
        told.desired,
        at_checkpoint,
        now_ms(),
    )
    .await?;
    if !moved {
        return Err(conflict(current.version, expected));
    }
    store::intents::record(
        &mut *tx,
        tenant,
        app,
        now_ms(),
        told.restore_from.as_deref(),
    )
    .await?;
    tx.commit().await?;
    after_commit(state, tenant, app).await;
    load_app(state, tenant, app).await
}

/// Start (or resume) the application's job.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/applications/{app}/start",
    params(("tenant" = String, Path), ("app" = String, Path), ("If-Match" = String, Header, description = "current version")),
    request_body = StartRequest, responses((status = 200, body = Changed), (status = 403, body = crate::error::ErrorBody)),
    security(("token" = [])), tag = "applications")]
pub async fn start_application(
    State(state): State<AppState>,
    who: Principal,
    Path((tenant, app)): Path<(String, String)>,
    headers: HeaderMap,
    OptBody(req): OptBody<StartRequest>,
) -> Result<Response> {
    who.check(&tenant, Role::Editor)?;
    let expected = if_match(&headers)?;
    let told = Told {
        desired: Desired::Running,
        restore_from: req.restore_from,
        savepoint: true,
    };
    let a = set_desired(&state, &tenant, &app, expected, told).await?;
    let op = record(
        &state,
        &tenant,
        &app,
        "start",
        a.version,
        Outcome::Accepted,
        format!("version {} starting", a.version),
    )
    .await?;
    Ok(changed(&a, op))
}

/// Stop the application's job: with a savepoint (listed under its snapshots; the default),
/// or at its latest checkpoint (`savepoint: false`; the next start resumes from it).
#[utoipa::path(post, path = "/v1/tenants/{tenant}/applications/{app}/stop",
    params(("tenant" = String, Path), ("app" = String, Path), ("If-Match" = String, Header, description = "current version")),
    request_body = StopRequest, responses((status = 200, body = Changed)),
    security(("token" = [])), tag = "applications")]
pub async fn stop_application(
    State(state): State<AppState>,
    who: Principal,
    Path((tenant, app)): Path<(String, String)>,
    headers: HeaderMap,
    OptBody(req): OptBody<StopRequest>,
) -> Result<Response> {
    who.check(&tenant, Role::Editor)?;
    let expected = if_match(&headers)?;
    let told = Told {
        desired: Desired::Stopped,
        restore_from: None,
        savepoint: req.savepoint,
    };
    let a = set_desired(&state, &tenant, &app, expected, told).await?;
    let message = if req.savepoint {
        "stopping with a savepoint".into()
    } else {
        "stopping at the latest checkpoint (no savepoint); the next start resumes from it".into()
    };
    let op = record(
        &state,
        &tenant,
        &app,
        "stop",
        a.version,
        Outcome::Accepted,
        message,
    )
    .await?;
    Ok(changed(&a, op))
}
