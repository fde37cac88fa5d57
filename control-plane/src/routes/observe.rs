//! What a tenant reads about its applications as they run: status, events, audit log.

use axum::Json;
use axum::extract::{Path, Query, State};

use super::load_app;
use super::request::cursor;
use crate::auth::{Principal, Role};
use crate::error::{ApiError, Result};
use crate::model::{ApplicationStatus, AuditEntry, JobEvent, Page, PageQuery};
use crate::{AppState, k8s, store};

/// The application's job status and engine metrics.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/applications/{app}/status",
    params(("tenant" = String, Path), ("app" = String, Path)),
    responses((status = 200, body = ApplicationStatus)), security(("token" = [])), tag = "applications")]
pub async fn application_status(
    State(state): State<AppState>,
    who: Principal,
    Path((tenant, app)): Path<(String, String)>,
) -> Result<Json<ApplicationStatus>> {
    who.check(&tenant, Role::Viewer)?;
    let a = load_app(&state, &tenant, &app).await?;
    let job = k8s::get_job(&state.kube, &tenant, &app).await?;
    let engine = match &job {
        Some(_) => k8s::engine_status(&state.kube, &tenant, &app).await,
        None => None,
    };
    let engine = engine
        .map(|e| serde_json::to_value(e).map_err(ApiError::internal))
        .transpose()?;
    let status = job.and_then(|j| j.status);
    Ok(Json(ApplicationStatus {
        desired: a.desired.as_str().to_owned(),
        job: status
            .map(|s| serde_json::to_value(s).map_err(ApiError::internal))
            .transpose()?,
        engine,
    }))
}

/// The Kubernetes events of the application's job.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/applications/{app}/events",
    params(("tenant" = String, Path), ("app" = String, Path)),
    responses((status = 200, body = [JobEvent])), security(("token" = [])), tag = "applications")]
pub async fn application_events(
    State(state): State<AppState>,
    who: Principal,
    Path((tenant, app)): Path<(String, String)>,
) -> Result<Json<Vec<JobEvent>>> {
    who.check(&tenant, Role::Viewer)?;
    load_app(&state, &tenant, &app).await?;
    Ok(Json(k8s::events(&state.kube, &tenant, &app).await?))
}

/// The tenant's audit log, newest first.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/audit",
    params(("tenant" = String, Path), PageQuery),
    responses((status = 200, body = Page<AuditEntry>)), security(("token" = [])), tag = "audit")]
pub async fn audit_log(
    State(state): State<AppState>,
    who: Principal,
    Path(tenant): Path<String>,
    Query(page): Query<PageQuery>,
) -> Result<Json<Page<AuditEntry>>> {
    who.check(&tenant, Role::Admin)?;
    let limit = page.limit()?;
    let (at, id) = cursor(&page)?;
    let rows = store::audit::list(&state.db.pool, &tenant, (at, &id), limit + 1).await?;
    Ok(Json(Page::keyed(rows, limit)))
}
