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
use crate::{AppState, Body, k8s, quota, store};

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
    // Whole thousandths: at least 1m of CPU, at most a million CPUs.
    let cpu = quantity(
        &mut errors,
        "maxCpu",
        req.max_cpu.as_ref(),
        (1, 1_000_000_000),
        "1m and 1000000",
    )
    .unwrap_or(quota::DEFAULT_MAX_CPU_MILLI);
    // In bytes: at least 1Mi, at most 1Ei.
    let memory = quantity(
        &mut errors,
        "maxMemory",
        req.max_memory.as_ref(),
        (1000 << 20, 1000 << 60),
        "1Mi and 1Ei",
    )
    .map(|m| m / 1000)
    .unwrap_or(quota::DEFAULT_MAX_MEMORY_BYTES);
    let max_applications = req
        .max_applications
        .unwrap_or(quota::DEFAULT_MAX_APPLICATIONS);
    if !(1..=10_000).contains(&max_applications) {
        errors.push(Violation::new(
            "maxApplications",
            "must be between 1 and 10000",
        ));
    }
    let max_versions = req.max_versions.unwrap_or(quota::DEFAULT_MAX_VERSIONS);
    if !(1..=100_000).contains(&max_versions) {
        errors.push(Violation::new(
            "maxVersions",
            "must be between 1 and 100000",
        ));
    }
    if !errors.is_empty() {
        return Err(ApiError::fields(errors));
    }
    let now = now_ms();
    let tenant = Tenant {
        namespace: k8s::namespace_of(&req.name),
        name: req.name,
        max_parallelism: req.max_parallelism,
        max_jobs: req.max_jobs,
        max_cpu: quota::cpu_text(cpu),
        max_memory: quota::memory_text(memory),
        max_applications,
        max_versions,
        created_at: rfc3339(now),
    };
    // The namespace first: a name whose namespace is not free is refused before it exists.
    k8s::ensure_namespace(
        &state.kube,
        &tenant,
        &state.policy.engine_account_annotations,
    )
    .await?;
    if !store::tenants::insert(&state.db.pool, &tenant, now).await? {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "already_exists",
            format!("tenant {:?} exists", tenant.name),
        ));
    }
    Ok((StatusCode::CREATED, Json(tenant)))
}

/// The quantity at `field` in thousandths of its unit, if given and between `min` and
/// `max` (as `range` says it to people); otherwise a violation is noted and `None` given.
fn quantity(
    errors: &mut Vec<Violation>,
    field: &str,
    q: Option<&strom_crds::spec::Quantity>,
    (min, max): (i128, i128),
    range: &str,
) -> Option<i64> {
    let milli = match q?.milli() {
        Ok(m) => m,
        Err(reason) => {
            errors.push(Violation::new(field, reason));
            return None;
        }
    };
    if !(min..=max).contains(&milli) {
        errors.push(Violation::new(field, format!("must be between {range}")));
        return None;
    }
    i64::try_from(milli).ok()
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
