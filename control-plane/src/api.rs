//! The routes' handlers.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sqlx::Row;
use sqlx::any::AnyRow;
use strom_crds::FlinkJobSpec;
use strom_crds::spec::{AutoscalerMode, DesiredState, UpgradeMode};

use crate::auth::{self, Principal, Role};
use crate::db::{now_ms, rfc3339};
use crate::error::{ApiError, AuditNote, FieldError};
use crate::k8s;
use crate::model::*;
use crate::{AppState, Body, OptBody};

type Result<T> = std::result::Result<T, ApiError>;

fn dns_label(field: &str, value: &str, max: usize) -> Result<()> {
    let ok = !value.is_empty()
        && value.len() <= max
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !value.starts_with('-')
        && !value.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(ApiError::field(
            field,
            format!(
                "must be a lower-case DNS label of at most {max} characters (a-z, 0-9, '-'), e.g. \"clicks\""
            ),
        ))
    }
}

/// The version in `If-Match` (`3`, `"3"` or `W/"3"`).
fn if_match(headers: &HeaderMap) -> Result<i64> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Err(ApiError::new(
            StatusCode::PRECONDITION_REQUIRED,
            "version_required",
            "send the application's current version in If-Match (e.g. If-Match: \"3\")",
        ));
    };
    value
        .to_str()
        .ok()
        .map(|v| v.trim().trim_start_matches("W/").trim_matches('"'))
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_if_match",
                "If-Match must be an application version, e.g. \"3\"",
            )
        })
}

fn conflict(current: i64, sent: i64) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "version_conflict",
        format!(
            "the application is at version {current}, not {sent}: read it again and retry with If-Match: \"{current}\""
        ),
    )
}

fn parse_duration_ms(field: &str, text: &str) -> Result<i64> {
    let d: strom_crds::Duration = text.into();
    match d.to_std() {
        Ok(d) if !d.is_zero() => Ok(d.as_millis() as i64),
        _ => Err(ApiError::field(
            field,
            "must be a positive duration such as 30m, 12h or 720h (units ms, s, m, h)",
        )),
    }
}

// ---------- tenants ----------

fn tenant_of(row: &AnyRow) -> Result<Tenant> {
    Ok(Tenant {
        name: row.try_get("name")?,
        namespace: row.try_get("namespace")?,
        max_parallelism: row.try_get("max_parallelism")?,
        max_jobs: row.try_get("max_jobs")?,
        created_at: rfc3339(row.try_get("created_at")?),
    })
}

async fn load_tenant(state: &AppState, name: &str) -> Result<Tenant> {
    let row = sqlx::query("SELECT * FROM tenants WHERE name = $1")
        .bind(name)
        .fetch_optional(&state.db.pool)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no tenant {name:?}")))?;
    tenant_of(&row)
}

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
        errors.push(FieldError {
            field: "maxParallelism".into(),
            reason: "must be between 1 and 100000".into(),
        });
    }
    if !(1..=10_000).contains(&req.max_jobs) {
        errors.push(FieldError {
            field: "maxJobs".into(),
            reason: "must be between 1 and 10000".into(),
        });
    }
    if !errors.is_empty() {
        return Err(ApiError::fields(errors));
    }
    let namespace = k8s::namespace_of(&req.name);
    let created = sqlx::query(
        "INSERT INTO tenants (name, namespace, max_parallelism, max_jobs, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&req.name)
    .bind(&namespace)
    .bind(req.max_parallelism)
    .bind(req.max_jobs)
    .bind(now_ms())
    .execute(&state.db.pool)
    .await;
    if let Err(sqlx::Error::Database(e)) = &created
        && e.is_unique_violation()
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "already_exists",
            format!("tenant {:?} exists", req.name),
        ));
    }
    created?;
    Ok((
        StatusCode::CREATED,
        Json(load_tenant(&state, &req.name).await?),
    ))
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
    let rows = sqlx::query("SELECT * FROM tenants WHERE name > $1 ORDER BY name LIMIT $2")
        .bind(page.cursor.clone().unwrap_or_default())
        .bind(limit + 1)
        .fetch_all(&state.db.pool)
        .await?;
    let mut items: Vec<Tenant> = rows.iter().map(tenant_of).collect::<Result<_>>()?;
    let next_cursor = (items.len() as i64 > limit).then(|| {
        items.truncate(limit as usize);
        items.last().map(|t| t.name.clone()).unwrap_or_default()
    });
    Ok(Json(Page { items, next_cursor }))
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
    Ok(Json(load_tenant(&state, &tenant).await?))
}

// ---------- tokens ----------

/// Create a token for the tenant (tenant admin or platform admin). The secret is in this
/// answer only.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/tokens", params(("tenant" = String, Path)),
    request_body = TokenRequest, responses((status = 201, body = CreatedToken)),
    security(("token" = [])), tag = "tokens")]
pub async fn create_token(
    State(state): State<AppState>,
    who: Principal,
    Path(tenant): Path<String>,
    Body(req): Body<TokenRequest>,
) -> Result<(StatusCode, Json<CreatedToken>)> {
    who.check(&tenant, Role::Admin)?;
    load_tenant(&state, &tenant).await?;
    let expires_at = match &req.expires_in {
        Some(d) => Some(now_ms() + parse_duration_ms("expiresIn", d)?),
        None => None,
    };
    let (id, token) = auth::create(
        &state,
        Some(&tenant),
        req.role,
        &req.description,
        expires_at,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            id,
            token,
            role: req.role,
            expires_at: expires_at.map(rfc3339),
        }),
    ))
}

/// The tenant's tokens (never their secrets).
#[utoipa::path(get, path = "/v1/tenants/{tenant}/tokens", params(("tenant" = String, Path)),
    responses((status = 200, body = [TokenInfo])), security(("token" = [])), tag = "tokens")]
pub async fn list_tokens(
    State(state): State<AppState>,
    who: Principal,
    Path(tenant): Path<String>,
) -> Result<Json<Vec<TokenInfo>>> {
    who.check(&tenant, Role::Admin)?;
    let rows = sqlx::query("SELECT * FROM tokens WHERE tenant = $1 ORDER BY created_at, id")
        .bind(&tenant)
        .fetch_all(&state.db.pool)
        .await?;
    let mut out = Vec::new();
    for r in rows {
        let role: String = r.try_get("role")?;
        out.push(TokenInfo {
            id: r.try_get("id")?,
            role: serde_json::from_value(serde_json::Value::String(role))
                .map_err(ApiError::internal)?,
            description: r.try_get("description")?,
            created_at: rfc3339(r.try_get("created_at")?),
            expires_at: r.try_get::<Option<i64>, _>("expires_at")?.map(rfc3339),
            revoked_at: r.try_get::<Option<i64>, _>("revoked_at")?.map(rfc3339),
        });
    }
    Ok(Json(out))
}

/// Revoke a token: it stops working at once.
#[utoipa::path(delete, path = "/v1/tenants/{tenant}/tokens/{id}",
    params(("tenant" = String, Path), ("id" = String, Path)),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody)),
    security(("token" = [])), tag = "tokens")]
pub async fn revoke_token(
    State(state): State<AppState>,
    who: Principal,
    Path((tenant, id)): Path<(String, String)>,
) -> Result<StatusCode> {
    who.check(&tenant, Role::Admin)?;
    let done = sqlx::query(
        "UPDATE tokens SET revoked_at = $1 WHERE id = $2 AND tenant = $3 AND revoked_at IS NULL",
    )
    .bind(now_ms())
    .bind(&id)
    .bind(&tenant)
    .execute(&state.db.pool)
    .await?;
    state.verified.forget(&id);
    if done.rows_affected() == 0 {
        return Err(ApiError::not_found(format!("no active token {id:?}")));
    }
    Ok(StatusCode::NO_CONTENT)
}

// ---------- applications ----------

struct AppRow {
    /// Stopped without a savepoint: the next start resumes the latest checkpoint.
    at_checkpoint: bool,
    version: i64,
    desired: String,
    nonce: i64,
    created_at: i64,
    updated_at: i64,
    spec: serde_json::Value,
}

async fn load_app(state: &AppState, tenant: &str, name: &str) -> Result<AppRow> {
    let row = sqlx::query(
        "SELECT a.version, a.desired, a.snapshot_nonce, a.at_checkpoint, a.created_at, a.updated_at, v.spec \
         FROM applications a JOIN versions v \
         ON v.tenant = a.tenant AND v.application = a.name AND v.version = a.version \
         WHERE a.tenant = $1 AND a.name = $2",
    )
    .bind(tenant)
    .bind(name)
    .fetch_optional(&state.db.pool)
    .await?
    .ok_or_else(|| ApiError::not_found(format!("no application {name:?}")))?;
    let spec: String = row.try_get("spec")?;
    Ok(AppRow {
        version: row.try_get("version")?,
        desired: row.try_get("desired")?,
        nonce: row.try_get("snapshot_nonce")?,
        at_checkpoint: row.try_get::<i64, _>("at_checkpoint")? != 0,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        spec: serde_json::from_str(&spec).map_err(ApiError::internal)?,
    })
}

/// The application, which must be at version `expected` (the caller's `If-Match`).
async fn load_at(state: &AppState, tenant: &str, name: &str, expected: i64) -> Result<AppRow> {
    let current = load_app(state, tenant, name).await?;
    if current.version != expected {
        return Err(conflict(current.version, expected));
    }
    Ok(current)
}

fn application(name: &str, a: &AppRow) -> Application {
    Application {
        name: name.to_owned(),
        version: a.version,
        desired: a.desired.clone(),
        spec: a.spec.clone(),
        created_at: rfc3339(a.created_at),
        updated_at: rfc3339(a.updated_at),
    }
}

/// The spec as the service runs it: validated with the CRD's rules, storage defaulted,
/// upgrades through savepoints. Errors name the field in the request body (`spec.…`).
fn managed_spec(state: &AppState, name: &str, spec: &serde_json::Value) -> Result<FlinkJobSpec> {
    let mut spec = spec.clone();
    let Some(map) = spec.as_object_mut() else {
        return Err(ApiError::field(
            "spec",
            "must be an object (a FlinkJob spec)",
        ));
    };
    if map.contains_key("state") {
        return Err(ApiError::field(
            "spec.state",
            "is set by the start and stop calls, not in the spec",
        ));
    }
    if let Some(mode) = map.get("upgradeMode")
        && mode != "savepoint"
    {
        return Err(ApiError::field(
            "spec.upgradeMode",
            "the service upgrades through savepoints only: leave it out or set \"savepoint\"",
        ));
    }
    map.insert("upgradeMode".into(), "savepoint".into());
    if let Some(base) = &state.storage {
        if !map.contains_key("checkpoints") {
            map.insert("checkpoints".into(), serde_json::json!({"storage": base}));
        }
        let sp = map
            .entry("savepoints")
            .or_insert_with(|| serde_json::json!({}));
        if let Some(sp) = sp.as_object_mut()
            && !sp.contains_key("storage")
        {
            sp.insert("storage".into(), base.clone().into());
        }
    }
    let manifest = serde_json::json!({
        "apiVersion": "strom.dev/v1alpha1",
        "kind": "FlinkJob",
        "metadata": {"name": name},
        "spec": spec,
    });
    let job = strom_crds::validate::from_value(manifest).map_err(|v| {
        ApiError::fields(
            v.0.into_iter()
                .map(|v| FieldError {
                    field: v.path,
                    reason: v.reason,
                })
                .collect(),
        )
    })?;
    if job
        .spec
        .savepoints
        .as_ref()
        .and_then(|s| s.storage.as_ref())
        .is_none()
    {
        return Err(ApiError::field(
            "spec.savepoints.storage",
            "is required: updates, stops and rollbacks go through savepoints",
        ));
    }
    Ok(job.spec)
}

/// A spec as versions keep it: without `state`, which start and stop set.
fn stored(spec: &FlinkJobSpec) -> Result<String> {
    let mut v = serde_json::to_value(spec).map_err(ApiError::internal)?;
    if let Some(m) = v.as_object_mut() {
        m.remove("state");
    }
    serde_json::to_string(&v).map_err(ApiError::internal)
}

/// The most subtasks `spec` may ever use: its widest vertex, or the autoscaler's upper
/// bound when it may scale.
fn budget(spec: &FlinkJobSpec) -> Result<i64> {
    let widest = spec
        .vertex_parallelism
        .values()
        .copied()
        .fold(spec.parallelism, i32::max);
    match &spec.autoscaler {
        Some(a) if a.mode == AutoscalerMode::Active => {
            match a.max_parallelism.or(spec.max_parallelism) {
                Some(m) => Ok(i64::from(m.max(widest))),
                None => Err(ApiError::field(
                    "spec.autoscaler.maxParallelism",
                    "is required for an active autoscaler under a tenant quota (or set spec.maxParallelism)",
                )),
            }
        }
        _ => Ok(i64::from(widest)),
    }
}

/// Refuses `spec` for `app` if the tenant's running applications (with `app` at `spec`,
/// running) would exceed its quota.
async fn check_quota(
    state: &AppState,
    tenant: &Tenant,
    app: &str,
    spec: &FlinkJobSpec,
) -> Result<()> {
    let mine = budget(spec)?;
    let rows = sqlx::query(
        "SELECT a.name, v.spec FROM applications a JOIN versions v \
         ON v.tenant = a.tenant AND v.application = a.name AND v.version = a.version \
         WHERE a.tenant = $1 AND a.desired = 'running' AND a.name <> $2",
    )
    .bind(&tenant.name)
    .bind(app)
    .fetch_all(&state.db.pool)
    .await?;
    let mut used = 0;
    for r in &rows {
        let text: String = r.try_get("spec")?;
        let other: FlinkJobSpec = serde_json::from_str(&text).map_err(ApiError::internal)?;
        used += budget(&other).unwrap_or(i64::from(other.parallelism));
    }
    if rows.len() as i64 + 1 > tenant.max_jobs {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "quota_exceeded",
            format!(
                "tenant {:?} may run {} applications and runs {} already",
                tenant.name,
                tenant.max_jobs,
                rows.len()
            ),
        ));
    }
    if used + mine > tenant.max_parallelism {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "quota_exceeded",
            format!(
                "tenant {:?} may use {} subtasks; its other running applications use up to {used} and this one up to {mine}",
                tenant.name, tenant.max_parallelism
            ),
        ));
    }
    Ok(())
}

async fn record(
    state: &AppState,
    tenant: &str,
    app: &str,
    kind: &str,
    version: i64,
    outcome: &str,
    message: String,
) -> Result<Operation> {
    let op = Operation {
        id: uuid::Uuid::new_v4().simple().to_string(),
        application: app.to_owned(),
        kind: kind.to_owned(),
        version,
        outcome: outcome.to_owned(),
        message,
        created_at: rfc3339(now_ms()),
    };
    sqlx::query(
        "INSERT INTO operations (id, tenant, application, kind, version, outcome, message, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&op.id)
    .bind(tenant)
    .bind(app)
    .bind(kind)
    .bind(version)
    .bind(outcome)
    .bind(&op.message)
    .bind(now_ms())
    .execute(&state.db.pool)
    .await?;
    Ok(op)
}

/// Records which FlinkJob generation runs `version` (its savepoints carry the generation),
/// inside the caller's transaction.
async fn set_generation(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    tenant: &str,
    app: &str,
    version: i64,
    generation: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE versions SET generation = $1 WHERE tenant = $2 AND application = $3 AND version = $4",
    )
    .bind(generation)
    .bind(tenant)
    .bind(app)
    .bind(version)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Applies the application's FlinkJob: `spec` with the desired state and snapshot nonce,
/// upgrading through savepoints (or, `at_checkpoint`, stopping and resuming at the latest
/// checkpoint); returns the FlinkJob's generation.
#[allow(
    clippy::too_many_arguments,
    reason = "each is one aspect of the FlinkJob applied"
)]
async fn apply(
    state: &AppState,
    tenant: &str,
    app: &str,
    version: i64,
    spec: &FlinkJobSpec,
    running: bool,
    nonce: i64,
    at_checkpoint: bool,
) -> Result<i64> {
    let mut spec = spec.clone();
    spec.state = if running {
        DesiredState::Running
    } else {
        DesiredState::Suspended
    };
    if nonce > 0
        && let Some(sp) = spec.savepoints.as_mut()
    {
        sp.trigger_nonce = Some(nonce);
    }
    spec.upgrade_mode = if at_checkpoint {
        UpgradeMode::LastState
    } else {
        UpgradeMode::Savepoint
    };
    k8s::ensure_namespace(&state.kube, &k8s::namespace_of(tenant)).await?;
    Ok(k8s::apply_job(&state.kube, tenant, app, version, spec).await?)
}

fn changed(name: &str, a: &AppRow, op: Operation) -> Response {
    let etag = format!("\"{}\"", a.version);
    let note = AuditNote(format!("{} {} → version {}", op.kind, name, a.version));
    let mut r = (
        [(header::ETAG, etag)],
        Json(Changed {
            application: application(name, a),
            operation: op,
        }),
    )
        .into_response();
    r.extensions_mut().insert(note);
    r
}

/// Create an application (version 1, stopped).
#[utoipa::path(post, path = "/v1/tenants/{tenant}/applications", params(("tenant" = String, Path)),
    request_body = ApplicationRequest,
    responses((status = 201, body = Changed), (status = 409, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)),
    security(("token" = [])), tag = "applications")]
pub async fn create_application(
    State(state): State<AppState>,
    who: Principal,
    Path(tenant): Path<String>,
    Body(req): Body<ApplicationRequest>,
) -> Result<Response> {
    who.check(&tenant, Role::Editor)?;
    let t = load_tenant(&state, &tenant).await?;
    dns_label("name", &req.name, 45)?;
    let spec = managed_spec(&state, &req.name, &req.spec)?;
    let mine = budget(&spec)?;
    if mine > t.max_parallelism {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "quota_exceeded",
            format!(
                "this application may use up to {mine} subtasks; tenant {tenant:?} may use {}",
                t.max_parallelism
            ),
        ));
    }
    let text = stored(&spec)?;
    let now = now_ms();
    let mut tx = state.db.pool.begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO applications (tenant, name, version, desired, snapshot_nonce, created_at, updated_at) \
         VALUES ($1, $2, 1, 'stopped', 0, $3, $3)",
    )
    .bind(&tenant)
    .bind(&req.name)
    .bind(now)
    .execute(&mut *tx)
    .await;
    if let Err(sqlx::Error::Database(e)) = &inserted
        && e.is_unique_violation()
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "already_exists",
            format!("application {:?} exists", req.name),
        ));
    }
    inserted?;
    sqlx::query(
        "INSERT INTO versions (tenant, application, version, spec, note, created_at, created_by) \
         VALUES ($1, $2, 1, $3, $4, $5, $6)",
    )
    .bind(&tenant)
    .bind(&req.name)
    .bind(&text)
    .bind(&req.note)
    .bind(now)
    .bind(&who.token_id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    let a = load_app(&state, &tenant, &req.name).await?;
    let op = record(
        &state,
        &tenant,
        &req.name,
        "create",
        1,
        "succeeded",
        "version 1 created".into(),
    )
    .await?;
    let mut r = changed(&req.name, &a, op);
    *r.status_mut() = StatusCode::CREATED;
    Ok(r)
}

/// The tenant's applications, by name.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/applications",
    params(("tenant" = String, Path), PageQuery),
    responses((status = 200, body = Page<Application>)), security(("token" = [])), tag = "applications")]
pub async fn list_applications(
    State(state): State<AppState>,
    who: Principal,
    Path(tenant): Path<String>,
    Query(page): Query<PageQuery>,
) -> Result<Json<Page<Application>>> {
    who.check(&tenant, Role::Viewer)?;
    let limit = page.limit()?;
    let rows = sqlx::query(
        "SELECT a.name, a.version, a.desired, a.snapshot_nonce, a.at_checkpoint, a.created_at, a.updated_at, v.spec \
         FROM applications a JOIN versions v \
         ON v.tenant = a.tenant AND v.application = a.name AND v.version = a.version \
         WHERE a.tenant = $1 AND a.name > $2 ORDER BY a.name LIMIT $3",
    )
    .bind(&tenant)
    .bind(page.cursor.clone().unwrap_or_default())
    .bind(limit + 1)
    .fetch_all(&state.db.pool)
    .await?;
    let mut items = Vec::new();
    for r in &rows {
        let name: String = r.try_get("name")?;
        let spec: String = r.try_get("spec")?;
        let a = AppRow {
            version: r.try_get("version")?,
            desired: r.try_get("desired")?,
            nonce: r.try_get("snapshot_nonce")?,
            at_checkpoint: r.try_get::<i64, _>("at_checkpoint")? != 0,
            created_at: r.try_get("created_at")?,
            updated_at: r.try_get("updated_at")?,
            spec: serde_json::from_str(&spec).map_err(ApiError::internal)?,
        };
        items.push(application(&name, &a));
    }
    let next_cursor = (items.len() as i64 > limit).then(|| {
        items.truncate(limit as usize);
        items.last().map(|a| a.name.clone()).unwrap_or_default()
    });
    Ok(Json(Page { items, next_cursor }))
}

/// An application (its `ETag` is its version).
#[utoipa::path(get, path = "/v1/tenants/{tenant}/applications/{app}",
    params(("tenant" = String, Path), ("app" = String, Path)),
    responses((status = 200, body = Application), (status = 404, body = crate::error::ErrorBody)),
    security(("token" = [])), tag = "applications")]
pub async fn get_application(
    State(state): State<AppState>,
    who: Principal,
    Path((tenant, app)): Path<(String, String)>,
) -> Result<Response> {
    who.check(&tenant, Role::Viewer)?;
    let a = load_app(&state, &tenant, &app).await?;
    Ok((
        [(header::ETAG, format!("\"{}\"", a.version))],
        Json(application(&app, &a)),
    )
        .into_response())
}

/// Moves the application from `expected` to a new version with `spec`, and applies it if
/// it runs; all or nothing.
async fn new_version(
    state: &AppState,
    who: &Principal,
    tenant: &str,
    app: &str,
    expected: i64,
    spec: &FlinkJobSpec,
    note: &str,
) -> Result<AppRow> {
    let current = load_at(state, tenant, app, expected).await?;
    let t = load_tenant(state, tenant).await?;
    if current.desired == "running" {
        check_quota(state, &t, app, spec).await?;
    } else if budget(spec)? > t.max_parallelism {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "quota_exceeded",
            format!(
                "this application may use up to {} subtasks; tenant {tenant:?} may use {}",
                budget(spec)?,
                t.max_parallelism
            ),
        ));
    }
    let text = stored(spec)?;
    let (now, version) = (now_ms(), expected + 1);
    let mut tx = state.db.pool.begin().await?;
    let moved = sqlx::query(
        "UPDATE applications SET version = $1, updated_at = $2, at_checkpoint = 0 WHERE tenant = $3 AND name = $4 AND version = $5",
    )
    .bind(version)
    .bind(now)
    .bind(tenant)
    .bind(app)
    .bind(expected)
    .execute(&mut *tx)
    .await?;
    if moved.rows_affected() == 0 {
        let now_at = load_app(state, tenant, app)
            .await
            .map_or(expected, |a| a.version);
        return Err(conflict(now_at, expected));
    }
    sqlx::query(
        "INSERT INTO versions (tenant, application, version, spec, note, created_at, created_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(tenant)
    .bind(app)
    .bind(version)
    .bind(&text)
    .bind(note)
    .bind(now)
    .bind(&who.token_id)
    .execute(&mut *tx)
    .await?;
    if current.desired == "running" {
        // Kubernetes first: if it refuses, the transaction rolls back and nothing changed.
        let generation = apply(
            state,
            tenant,
            app,
            version,
            spec,
            true,
            current.nonce,
            false,
        )
        .await?;
        set_generation(&mut tx, tenant, app, version, generation).await?;
    }
    tx.commit().await?;
    load_app(state, tenant, app).await
}

/// A new version with a new spec; a running job gets it by a savepoint upgrade.
#[utoipa::path(put, path = "/v1/tenants/{tenant}/applications/{app}",
    params(("tenant" = String, Path), ("app" = String, Path), ("If-Match" = String, Header, description = "current version")),
    request_body = UpdateRequest,
    responses((status = 200, body = Changed), (status = 409, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody), (status = 428, body = crate::error::ErrorBody)),
    security(("token" = [])), tag = "applications")]
pub async fn update_application(
    State(state): State<AppState>,
    who: Principal,
    Path((tenant, app)): Path<(String, String)>,
    headers: HeaderMap,
    Body(req): Body<UpdateRequest>,
) -> Result<Response> {
    who.check(&tenant, Role::Editor)?;
    let expected = if_match(&headers)?;
    load_app(&state, &tenant, &app).await?;
    let spec = managed_spec(&state, &app, &req.spec)?;
    let a = new_version(&state, &who, &tenant, &app, expected, &spec, &req.note).await?;
    let (outcome, message) = if a.desired == "running" {
        (
            "accepted",
            format!(
                "version {} is being applied by a savepoint upgrade",
                a.version
            ),
        )
    } else {
        (
            "succeeded",
            format!("version {} created; it runs at the next start", a.version),
        )
    };
    let op = record(&state, &tenant, &app, "update", a.version, outcome, message).await?;
    Ok(changed(&app, &a, op))
}

/// A new version with only the parallelism changed (a savepoint rescale when running).
#[utoipa::path(post, path = "/v1/tenants/{tenant}/applications/{app}/scale",
    params(("tenant" = String, Path), ("app" = String, Path), ("If-Match" = String, Header, description = "current version")),
    request_body = ScaleRequest, responses((status = 200, body = Changed)),
    security(("token" = [])), tag = "applications")]
pub async fn scale_application(
    State(state): State<AppState>,
    who: Principal,
    Path((tenant, app)): Path<(String, String)>,
    headers: HeaderMap,
    Body(req): Body<ScaleRequest>,
) -> Result<Response> {
    who.check(&tenant, Role::Editor)?;
    let expected = if_match(&headers)?;
    let current = load_app(&state, &tenant, &app).await?;
    let mut spec = current.spec.clone();
    spec["parallelism"] = req.parallelism.into();
    let spec = managed_spec(&state, &app, &spec).map_err(|mut e| {
        for f in &mut e.body.errors {
            if f.field == "spec.parallelism" {
                f.field = "parallelism".into();
            }
        }
        e
    })?;
    let a = new_version(
        &state,
        &who,
        &tenant,
        &app,
        expected,
        &spec,
        &format!("scale to {}", req.parallelism),
    )
    .await?;
    let outcome = if a.desired == "running" {
        "accepted"
    } else {
        "succeeded"
    };
    let op = record(
        &state,
        &tenant,
        &app,
        "scale",
        a.version,
        outcome,
        format!("parallelism {}", req.parallelism),
    )
    .await?;
    Ok(changed(&app, &a, op))
}

/// A new version equal to an earlier one (default: the one before the current).
#[utoipa::path(post, path = "/v1/tenants/{tenant}/applications/{app}/rollback",
    params(("tenant" = String, Path), ("app" = String, Path), ("If-Match" = String, Header, description = "current version")),
    request_body = RollbackRequest, responses((status = 200, body = Changed)),
    security(("token" = [])), tag = "applications")]
pub async fn rollback_application(
    State(state): State<AppState>,
    who: Principal,
    Path((tenant, app)): Path<(String, String)>,
    headers: HeaderMap,
    OptBody(body): OptBody<RollbackRequest>,
) -> Result<Response> {
    who.check(&tenant, Role::Editor)?;
    let expected = if_match(&headers)?;
    let req = body;
    let current = load_app(&state, &tenant, &app).await?;
    let target = req.version.unwrap_or(current.version - 1);
    if target < 1 || target >= current.version {
        return Err(ApiError::field(
            "version",
            format!("must be an earlier version (1 to {})", current.version - 1),
        ));
    }
    let row = sqlx::query(
        "SELECT spec, generation FROM versions WHERE tenant = $1 AND application = $2 AND version = $3",
    )
    .bind(&tenant)
    .bind(&app)
    .bind(target)
    .fetch_optional(&state.db.pool)
    .await?
    .ok_or_else(|| ApiError::field("version", format!("version {target} does not exist")))?;
    let text: String = row.try_get("spec")?;
    let generation: Option<i64> = row.try_get("generation")?;
    let mut spec: FlinkJobSpec = serde_json::from_str(&text).map_err(ApiError::internal)?;
    // The savepoint that ended the target version (taken when the job left it).
    let ended = match (generation, k8s::get_job(&state.kube, &tenant, &app).await?) {
        (Some(g), Some(job)) => job.status.and_then(|s| {
            s.savepoints.into_iter().rev().find(|sp| {
                sp.generation == Some(g)
                    && sp.state == strom_crds::status::SavepointState::Completed
                    && sp.location.is_some()
            })
        }),
        _ => None,
    };
    let how = match &ended {
        Some(sp) => {
            let location = sp.location.clone().unwrap_or_default();
            spec.restore = Some(strom_crds::spec::RestoreSpec {
                initial_savepoint: Some(location.as_str().into()),
                allow_non_restored_state: spec
                    .restore
                    .as_ref()
                    .is_some_and(|r| r.allow_non_restored_state),
                redeploy_nonce: Some(now_ms()),
            });
            format!(
                "restoring {} ({location}), taken at the end of version {target}",
                sp.id
            )
        }
        None => format!(
            "no savepoint ends version {target}, so the current state carries over (a savepoint upgrade)"
        ),
    };
    let a = new_version(
        &state,
        &who,
        &tenant,
        &app,
        expected,
        &spec,
        &format!("rollback to version {target}"),
    )
    .await?;
    let outcome = if a.desired == "running" {
        "accepted"
    } else {
        "succeeded"
    };
    let op = record(
        &state,
        &tenant,
        &app,
        "rollback",
        a.version,
        outcome,
        format!("version {} = version {target}; {how}", a.version),
    )
    .await?;
    Ok(changed(&app, &a, op))
}

async fn set_desired(
    state: &AppState,
    tenant: &str,
    app: &str,
    expected: i64,
    running: bool,
    restore_from: Option<String>,
    savepoint: bool,
) -> Result<AppRow> {
    let current = load_at(state, tenant, app, expected).await?;
    let mut spec: FlinkJobSpec =
        serde_json::from_value(current.spec.clone()).map_err(ApiError::internal)?;
    if running {
        if current.desired == "running" {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "already_running",
                format!("application {app:?} is running"),
            ));
        }
        let t = load_tenant(state, tenant).await?;
        check_quota(state, &t, app, &spec).await?;
        if let Some(from) = restore_from {
            if k8s::get_job(&state.kube, tenant, app).await?.is_some() {
                return Err(ApiError::field(
                    "restoreFrom",
                    "applies to the first start only; a stopped application resumes from its own last savepoint",
                ));
            }
            let url: strom_crds::StorageUrl = from.as_str().into();
            spec.restore = Some(strom_crds::spec::RestoreSpec {
                initial_savepoint: Some(url),
                ..Default::default()
            });
            managed_spec(
                state,
                app,
                &serde_json::from_str(&stored(&spec)?).map_err(ApiError::internal)?,
            )
            .map_err(|mut e| {
                for f in &mut e.body.errors {
                    if f.field == "spec.restore.initialSavepoint" {
                        f.field = "restoreFrom".into();
                    }
                }
                e
            })?;
        }
    } else if current.desired != "running" {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_running",
            format!("application {app:?} is stopped"),
        ));
    } else if !savepoint && spec.checkpoints.is_none() {
        return Err(ApiError::field(
            "savepoint",
            "stopping without a savepoint needs checkpoints (spec.checkpoints) to resume from",
        ));
    }
    let desired = if running { "running" } else { "stopped" };
    let at_checkpoint = if running {
        current.at_checkpoint
    } else {
        !savepoint
    };
    let mut tx = state.db.pool.begin().await?;
    let moved = sqlx::query(
        "UPDATE applications SET desired = $1, updated_at = $2, at_checkpoint = $6 WHERE tenant = $3 AND name = $4 AND version = $5",
    )
    .bind(desired)
    .bind(now_ms())
    .bind(tenant)
    .bind(app)
    .bind(expected)
    .bind(i64::from(at_checkpoint))
    .execute(&mut *tx)
    .await?;
    if moved.rows_affected() == 0 {
        return Err(conflict(current.version, expected));
    }
    let generation = apply(
        state,
        tenant,
        app,
        current.version,
        &spec,
        running,
        current.nonce,
        at_checkpoint,
    )
    .await?;
    set_generation(&mut tx, tenant, app, current.version, generation).await?;
    tx.commit().await?;
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
    OptBody(body): OptBody<StartRequest>,
) -> Result<Response> {
    who.check(&tenant, Role::Editor)?;
    let expected = if_match(&headers)?;
    let req = body;
    let a = set_desired(
        &state,
        &tenant,
        &app,
        expected,
        true,
        req.restore_from,
        true,
    )
    .await?;
    let op = record(
        &state,
        &tenant,
        &app,
        "start",
        a.version,
        "accepted",
        format!("version {} starting", a.version),
    )
    .await?;
    Ok(changed(&app, &a, op))
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
    OptBody(body): OptBody<StopRequest>,
) -> Result<Response> {
    who.check(&tenant, Role::Editor)?;
    let expected = if_match(&headers)?;
    let a = set_desired(&state, &tenant, &app, expected, false, None, body.savepoint).await?;
    let op = record(
        &state,
        &tenant,
        &app,
        "stop",
        a.version,
        "accepted",
        if body.savepoint {
            "stopping with a savepoint".into()
        } else {
            "stopping at the latest checkpoint (no savepoint); the next start resumes from it"
                .into()
        },
    )
    .await?;
    Ok(changed(&app, &a, op))
}

/// Delete the application: its job stops with a savepoint (kept in storage) and goes.
#[utoipa::path(delete, path = "/v1/tenants/{tenant}/applications/{app}",
    params(("tenant" = String, Path), ("app" = String, Path), ("If-Match" = String, Header, description = "current version")),
    responses((status = 200, body = Operation)), security(("token" = [])), tag = "applications")]
pub async fn delete_application(
    State(state): State<AppState>,
    who: Principal,
    Path((tenant, app)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response> {
    who.check(&tenant, Role::Editor)?;
    let expected = if_match(&headers)?;
    let current = load_at(&state, &tenant, &app, expected).await?;
    let mut tx = state.db.pool.begin().await?;
    let gone =
        sqlx::query("DELETE FROM applications WHERE tenant = $1 AND name = $2 AND version = $3")
            .bind(&tenant)
            .bind(&app)
            .bind(expected)
            .execute(&mut *tx)
            .await?;
    if gone.rows_affected() == 0 {
        return Err(conflict(current.version, expected));
    }
    sqlx::query("DELETE FROM versions WHERE tenant = $1 AND application = $2")
        .bind(&tenant)
        .bind(&app)
        .execute(&mut *tx)
        .await?;
    k8s::delete_job(&state.kube, &tenant, &app).await?;
    tx.commit().await?;
    let op = record(
        &state,
        &tenant,
        &app,
        "delete",
        expected,
        "accepted",
        "the job stops with a savepoint and is removed".into(),
    )
    .await?;
    let mut r = Json(op).into_response();
    r.extensions_mut()
        .insert(AuditNote(format!("delete {app}")));
    Ok(r)
}

/// The application's versions, newest first.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/applications/{app}/versions",
    params(("tenant" = String, Path), ("app" = String, Path)),
    responses((status = 200, body = [Version])), security(("token" = [])), tag = "applications")]
pub async fn list_versions(
    State(state): State<AppState>,
    who: Principal,
    Path((tenant, app)): Path<(String, String)>,
) -> Result<Json<Vec<Version>>> {
    who.check(&tenant, Role::Viewer)?;
    load_app(&state, &tenant, &app).await?;
    let rows = sqlx::query(
        "SELECT * FROM versions WHERE tenant = $1 AND application = $2 ORDER BY version DESC",
    )
    .bind(&tenant)
    .bind(&app)
    .fetch_all(&state.db.pool)
    .await?;
    let mut out = Vec::new();
    for r in rows {
        let spec: String = r.try_get("spec")?;
        out.push(Version {
            version: r.try_get("version")?,
            spec: serde_json::from_str(&spec).map_err(ApiError::internal)?,
            note: r.try_get("note")?,
            created_at: rfc3339(r.try_get("created_at")?),
            created_by: r.try_get("created_by")?,
        });
    }
    Ok(Json(out))
}

/// The application's operations, newest first.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/applications/{app}/operations",
    params(("tenant" = String, Path), ("app" = String, Path), PageQuery),
    responses((status = 200, body = Page<Operation>)), security(("token" = [])), tag = "applications")]
pub async fn list_operations(
    State(state): State<AppState>,
    who: Principal,
    Path((tenant, app)): Path<(String, String)>,
    Query(page): Query<PageQuery>,
) -> Result<Json<Page<Operation>>> {
    who.check(&tenant, Role::Viewer)?;
    let limit = page.limit()?;
    let (at, id) = cursor(&page)?;
    let rows = sqlx::query(
        "SELECT * FROM operations WHERE tenant = $1 AND application = $2 \
         AND (created_at < $3 OR (created_at = $3 AND id < $4)) \
         ORDER BY created_at DESC, id DESC LIMIT $5",
    )
    .bind(&tenant)
    .bind(&app)
    .bind(at)
    .bind(&id)
    .bind(limit + 1)
    .fetch_all(&state.db.pool)
    .await?;
    let mut items = Vec::new();
    let mut keys = Vec::new();
    for r in &rows {
        let created: i64 = r.try_get("created_at")?;
        let id: String = r.try_get("id")?;
        keys.push(format!("{created}.{id}"));
        items.push(Operation {
            id,
            application: r.try_get("application")?,
            kind: r.try_get("kind")?,
            version: r.try_get("version")?,
            outcome: r.try_get("outcome")?,
            message: r.try_get("message")?,
            created_at: rfc3339(created),
        });
    }
    let next_cursor = (items.len() as i64 > limit).then(|| {
        items.truncate(limit as usize);
        keys[limit as usize - 1].clone()
    });
    Ok(Json(Page { items, next_cursor }))
}

/// A newest-first cursor `<ms>.<id>` (none: from the newest).
fn cursor(page: &PageQuery) -> Result<(i64, String)> {
    match &page.cursor {
        None => Ok((i64::MAX, String::new())),
        Some(c) => c
            .split_once('.')
            .and_then(|(a, b)| Some((a.parse().ok()?, b.to_owned())))
            .ok_or_else(|| ApiError::field("cursor", "is not a cursor this API gave out")),
    }
}

// ---------- snapshots, status, events ----------

/// The application's snapshots (savepoints), oldest first.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/applications/{app}/snapshots",
    params(("tenant" = String, Path), ("app" = String, Path)),
    responses((status = 200, body = [Snapshot])), security(("token" = [])), tag = "snapshots")]
pub async fn list_snapshots(
    State(state): State<AppState>,
    who: Principal,
    Path((tenant, app)): Path<(String, String)>,
) -> Result<Json<Vec<Snapshot>>> {
    who.check(&tenant, Role::Viewer)?;
    load_app(&state, &tenant, &app).await?;
    let Some(job) = k8s::get_job(&state.kube, &tenant, &app).await? else {
        return Ok(Json(Vec::new()));
    };
    let disposed = disposed(&state, &tenant, &app).await?;
    let out = job
        .status
        .map(|s| s.savepoints)
        .unwrap_or_default()
        .into_iter()
        .map(|s| Snapshot {
            state: if s.location.as_ref().is_some_and(|l| disposed.contains(l)) {
                "Disposed".into()
            } else {
                format!("{:?}", s.state)
            },
            id: s.id,
            location: s.location,
            trigger: format!("{:?}", s.trigger),
            time: s.time.0.to_string(),
        })
        .collect();
    Ok(Json(out))
}

/// Take a snapshot (savepoint) of the running job now.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/applications/{app}/snapshots",
    params(("tenant" = String, Path), ("app" = String, Path), ("If-Match" = String, Header, description = "current version")),
    responses((status = 202, body = Operation)), security(("token" = [])), tag = "snapshots")]
pub async fn create_snapshot(
    State(state): State<AppState>,
    who: Principal,
    Path((tenant, app)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response> {
    who.check(&tenant, Role::Editor)?;
    let expected = if_match(&headers)?;
    let current = load_at(&state, &tenant, &app, expected).await?;
    if current.desired != "running" {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_running",
            "a snapshot needs a running job",
        ));
    }
    let nonce = now_ms().max(current.nonce + 1);
    let spec: FlinkJobSpec =
        serde_json::from_value(current.spec.clone()).map_err(ApiError::internal)?;
    let mut tx = state.db.pool.begin().await?;
    sqlx::query("UPDATE applications SET snapshot_nonce = $1 WHERE tenant = $2 AND name = $3")
        .bind(nonce)
        .bind(&tenant)
        .bind(&app)
        .execute(&mut *tx)
        .await?;
    let generation = apply(
        &state,
        &tenant,
        &app,
        current.version,
        &spec,
        true,
        nonce,
        current.at_checkpoint,
    )
    .await?;
    set_generation(&mut tx, &tenant, &app, current.version, generation).await?;
    tx.commit().await?;
    let op = record(
        &state,
        &tenant,
        &app,
        "snapshot",
        current.version,
        "accepted",
        "savepoint requested".into(),
    )
    .await?;
    let mut r = (StatusCode::ACCEPTED, Json(op)).into_response();
    r.extensions_mut()
        .insert(AuditNote(format!("snapshot of {app}")));
    Ok(r)
}

/// Delete a snapshot from storage, through the same crash-safe disposal the operator's
/// retention uses. The savepoint the running job restored from, and the newest savepoint
/// of a stopped application (it resumes from it), are refused.
#[utoipa::path(delete, path = "/v1/tenants/{tenant}/applications/{app}/snapshots/{id}",
    params(("tenant" = String, Path), ("app" = String, Path), ("id" = String, Path), ("If-Match" = String, Header, description = "current version")),
    responses((status = 200, body = Operation), (status = 409, body = crate::error::ErrorBody)),
    security(("token" = [])), tag = "snapshots")]
pub async fn delete_snapshot(
    State(state): State<AppState>,
    who: Principal,
    Path((tenant, app, id)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response> {
    who.check(&tenant, Role::Editor)?;
    let expected = if_match(&headers)?;
    let current = load_at(&state, &tenant, &app, expected).await?;
    let job = k8s::get_job(&state.kube, &tenant, &app)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no snapshot {id:?}")))?;
    let status = job.status.clone().unwrap_or_default();
    let disposed = disposed(&state, &tenant, &app).await?;
    let completed: Vec<_> = status
        .savepoints
        .iter()
        .filter(|s| {
            s.state == strom_crds::status::SavepointState::Completed
                && s.location.as_ref().is_some_and(|l| !disposed.contains(l))
        })
        .collect();
    let sp = completed
        .iter()
        .find(|s| s.id == id)
        .ok_or_else(|| ApiError::not_found(format!("no completed snapshot {id:?}")))?;
    let location = sp.location.clone().unwrap_or_default();
    let in_use = |why: String| Err(ApiError::new(StatusCode::CONFLICT, "snapshot_in_use", why));
    if current.desired != "running" && completed.last().is_some_and(|s| s.id == id) {
        return in_use(format!(
            "{id} is the newest savepoint of the stopped application: it resumes from it"
        ));
    }
    if k8s::restored_from(&state.kube, &tenant, &app)
        .await?
        .as_deref()
        == Some(location.as_str())
    {
        return in_use(format!(
            "{id} is the savepoint the running job started from"
        ));
    }
    let Some((parent, dir)) = location.trim_end_matches('/').rsplit_once('/') else {
        return Err(ApiError::internal(format!(
            "a savepoint location without a parent: {location}"
        )));
    };
    let options = job
        .spec
        .storage_options()
        .into_iter()
        .fold(strom_storage::StorageOptions::new(), |o, (k, v)| {
            o.with(k, &v)
        });
    let parent = strom_storage::Location::open(parent, &options).map_err(ApiError::internal)?;
    strom_storage::layout::discard(&parent, dir)
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::BAD_GATEWAY,
                "storage_unavailable",
                format!("{id} could not be deleted: {e}"),
            )
        })?;
    sqlx::query(
        "INSERT INTO disposed_snapshots (tenant, application, location, at) VALUES ($1, $2, $3, $4)",
    )
    .bind(&tenant)
    .bind(&app)
    .bind(&location)
    .bind(now_ms())
    .execute(&state.db.pool)
    .await?;
    let op = record(
        &state,
        &tenant,
        &app,
        "dispose-snapshot",
        current.version,
        "succeeded",
        format!("{id} ({location}) deleted"),
    )
    .await?;
    let mut r = Json(op).into_response();
    r.extensions_mut()
        .insert(AuditNote(format!("deleted snapshot {id}")));
    Ok(r)
}

/// Snapshot locations the control plane deleted for an application.
async fn disposed(state: &AppState, tenant: &str, app: &str) -> Result<Vec<String>> {
    let rows = sqlx::query(
        "SELECT location FROM disposed_snapshots WHERE tenant = $1 AND application = $2",
    )
    .bind(tenant)
    .bind(app)
    .fetch_all(&state.db.pool)
    .await?;
    rows.iter().map(|r| Ok(r.try_get("location")?)).collect()
}

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
    Ok(Json(ApplicationStatus {
        desired: a.desired,
        job: job
            .and_then(|j| j.status)
            .map(|s| serde_json::to_value(s).unwrap_or_default()),
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
    let rows = sqlx::query(
        "SELECT * FROM audit WHERE tenant = $1 AND (at < $2 OR (at = $2 AND id < $3)) \
         ORDER BY at DESC, id DESC LIMIT $4",
    )
    .bind(&tenant)
    .bind(at)
    .bind(&id)
    .bind(limit + 1)
    .fetch_all(&state.db.pool)
    .await?;
    let mut items = Vec::new();
    let mut keys = Vec::new();
    for r in &rows {
        let at: i64 = r.try_get("at")?;
        let id: String = r.try_get("id")?;
        keys.push(format!("{at}.{id}"));
        items.push(AuditEntry {
            id,
            token_id: r
                .try_get::<Option<String>, _>("token_id")?
                .unwrap_or_else(|| "-".into()),
            method: r.try_get("method")?,
            path: r.try_get("path")?,
            status: r.try_get("status")?,
            outcome: r.try_get("outcome")?,
            at: rfc3339(at),
        });
    }
    let next_cursor = (items.len() as i64 > limit).then(|| {
        items.truncate(limit as usize);
        keys[limit as usize - 1].clone()
    });
    Ok(Json(Page { items, next_cursor }))
}
