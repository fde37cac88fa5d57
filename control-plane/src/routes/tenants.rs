//! `/v1/tenants`: tenants, each a namespace with a quota (platform admin).

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;

use super::request::dns_label;
use crate::auth::{Principal, Role};
use crate::db::{now_ms, rfc3339};
use strom_crds::Violation;

use crate::error::{ApiError, Result};
use crate::model::{Page, PageQuery, Tenant, TenantRequest};
use crate::{AppState, Body, k8s, store};

/// Create a tenant (platform admin).
#[utoipa::path(post, path = "/v1/tenants", request_body = TenantRequest,
    responses((status = 201, body = Tenant), (status = 409, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)),
    security(("token" = [])), tag = "tenants")]
pub async fn create_tenant(
    State(state): State<AppState>,
    who: Principal,
    Body(req): Body<TenantRequest>,
) -> Result<(StatusCode, Json<Tenant>)> {
    who.platform()?;
    dns_label("name", &req.name, 40)?;
    let mut errors = Vec::new();
    if !(1..=100_000).contains(&req.max_parallelism) {
        errors.push(Violation::new(
            "maxParallelism",
            "must be between 1 and 100000",
        ));
    }
    if !(1..=10_000).contains(&req.max_jobs) {
        errors.push(Violation::new("maxJobs", "must be between 1 and 10000"));
    }
    if !errors.is_empty() {
        return Err(ApiError::fields(errors));
    }
    // The namespace first: a name whose namespace is not free is refused before it exists.
    k8s::ensure_namespace(
        &state.kube,
        &req.name,
        &state.policy.engine_account_annotations,
    )
    .await?;
    let now = now_ms();
    let tenant = Tenant {
        namespace: k8s::namespace_of(&req.name),
        name: req.name,
        max_parallelism: req.max_parallelism,
        max_jobs: req.max_jobs,
        created_at: rfc3339(now),
    };
    if !store::tenants::insert(&state.db.pool, &tenant, now).await? {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "already_exists",
            format!("tenant {:?} exists", tenant.name),
        ));
    }
    Ok((StatusCode::CREATED, Json(tenant)))
}

/// List tenants (platform admin).
#[utoipa::path(get, path = "/v1/tenants", params(PageQuery),
    responses((status = 200, body = Page<Tenant>)), security(("token" = [])), tag = "tenants")]
pub async fn list_tenants(
    State(state): State<AppState>,
    who: Principal,
    Query(page): Query<PageQuery>,
) -> Result<Json<Page<Tenant>>> {
    who.platform()?;
    let limit = page.limit()?;
    let after = page.cursor.as_deref().unwrap_or_default();
    let items = store::tenants::list(&state.db.pool, after, limit + 1).await?;
    Ok(Json(Page::of(items, limit, |t| t.name.clone())))
}

/// A tenant.
#[utoipa::path(get, path = "/v1/tenants/{tenant}", params(("tenant" = String, Path)),
    responses((status = 200, body = Tenant), (status = 404, body = crate::error::ErrorBody)),
    security(("token" = [])), tag = "tenants")]
pub async fn get_tenant(
    State(state): State<AppState>,
    who: Principal,
    Path(tenant): Path<String>,
) -> Result<Json<Tenant>> {
    who.check(&tenant, Role::Viewer)?;
    Ok(Json(super::load_tenant(&state, &tenant).await?))
}
