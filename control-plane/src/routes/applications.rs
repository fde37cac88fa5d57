//! `/v1/tenants/{tenant}/applications`: applications and their immutable versions —
//! create, read, update (a savepoint upgrade when running), scale, roll back, delete.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use strom_crds::FlinkJobSpec;
use strom_crds::status::SavepointState;

use super::request::{conflict, dns_label, if_match};
use super::{
    Outcome, changed, check_quota, load_app, load_at, load_tenant, lock_tenant, over_limit, record,
};
use crate::auth::{Principal, Role};
use crate::db::now_ms;
use crate::error::{ApiError, Result};
use crate::model::{
    Application, ApplicationRequest, Changed, Operation, Page, PageQuery, RollbackRequest,
    ScaleRequest, UpdateRequest,
};
use crate::store::applications::{AppRow, Desired};
use crate::store::versions::NewVersion;
use crate::sync::{Applied, after_commit, apply};
use crate::{AppState, Body, OptBody, k8s, quota, spec, store};

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
    let spec = spec::managed(
        &state.tenant_storage(&tenant),
        &state.policy,
        &req.name,
        &req.spec,
    )?;
    quota::fits(&t, &spec)?;
    let text = spec::stored(&spec)?;
    let now = now_ms();
    let mut tx = state.db.pool.begin().await?;
    let t = lock_tenant(&mut tx, &tenant).await?;
    let count = store::applications::count(&mut *tx, &tenant).await?;
    if count >= t.max_applications {
        return Err(over_limit(format!(
            "tenant {tenant:?} may have {} applications and has {count}; delete one first",
            t.max_applications
        )));
    }
    if !store::applications::insert(&mut *tx, &tenant, &req.name, now).await? {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "already_exists",
            format!("application {:?} exists", req.name),
        ));
    }
    let first = NewVersion {
        version: 1,
        spec: &text,
        note: &req.note,
        created_at: now,
        created_by: &who.token_id,
    };
    store::versions::insert(&mut *tx, &tenant, &req.name, &first).await?;
    tx.commit().await?;
    let a = load_app(&state, &tenant, &req.name).await?;
    let op = record(
        &state,
        &tenant,
        &req.name,
        "create",
        1,
        Outcome::Succeeded,
        "version 1 created".into(),
    )
    .await?;
    let mut r = changed(&a, op);
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
    let after = page.cursor.as_deref().unwrap_or_default();
    let rows = store::applications::list(&state.db.pool, &tenant, after, limit + 1).await?;
    let items = rows.iter().map(super::application).collect();
    Ok(Json(Page::of(items, limit, |a| a.name.clone())))
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
        Json(super::application(&a)),
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
    let running = current.desired == Desired::Running;
    quota::fits(&t, spec)?;
    let text = spec::stored(spec)?;
    let (now, version) = (now_ms(), expected + 1);
    if running {
        // What Kubernetes would refuse is refused before anything is recorded.
        let job = Applied {
            version,
            spec,
            running: true,
            nonce: current.nonce,
            at_checkpoint: false,
        };
        apply(state, tenant, app, job, true).await?;
    }
    let mut tx = state.db.pool.begin().await?;
    if running {
        check_quota(&mut tx, tenant, app, spec).await?;
    } else {
        lock_tenant(&mut tx, tenant).await?;
    }
    let versions = store::versions::count(&mut *tx, tenant, app).await?;
    if versions >= t.max_versions {
        return Err(over_limit(format!(
            "application {app:?} has {versions} versions, the most tenant {tenant:?} may keep; \
             delete the application and create it again (its savepoints stay in storage) to start a new history"
        )));
    }
    if !store::applications::advance(&mut *tx, tenant, app, expected, version, now).await? {
        let now_at = load_app(state, tenant, app)
            .await
            .map_or(expected, |a| a.version);
        return Err(conflict(now_at, expected));
    }
    let next = NewVersion {
        version,
        spec: &text,
        note,
        created_at: now,
        created_by: &who.token_id,
    };
    store::versions::insert(&mut *tx, tenant, app, &next).await?;
    if running {
        store::intents::record(&mut *tx, tenant, app, now, None).await?;
    }
    tx.commit().await?;
    if running {
        after_commit(state, tenant, app).await;
    }
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
    let spec = spec::managed(
        &state.tenant_storage(&tenant),
        &state.policy,
        &app,
        &req.spec,
    )?;
    let a = new_version(&state, &who, &tenant, &app, expected, &spec, &req.note).await?;
    let outcome = Outcome::of(&a);
    let message = match outcome {
        Outcome::Accepted => format!(
            "version {} is being applied by a savepoint upgrade",
            a.version
        ),
        Outcome::Succeeded => format!("version {} created; it runs at the next start", a.version),
    };
    let op = record(&state, &tenant, &app, "update", a.version, outcome, message).await?;
    Ok(changed(&a, op))
}

/// Renames the errors about `from` in `e` to `to` (a field of this request's body).
pub(crate) fn renamed(mut e: ApiError, from: &str, to: &str) -> ApiError {
    for f in &mut e.body.errors {
        if f.field == from {
            f.field = to.into();
        }
    }
    e
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
    let spec = spec::managed(&state.tenant_storage(&tenant), &state.policy, &app, &spec)
        .map_err(|e| renamed(e, "spec.parallelism", "parallelism"))?;
    let note = format!("scale to {}", req.parallelism);
    let a = new_version(&state, &who, &tenant, &app, expected, &spec, &note).await?;
    let op = record(
        &state,
        &tenant,
        &app,
        "scale",
        a.version,
        Outcome::of(&a),
        format!("parallelism {}", req.parallelism),
    )
    .await?;
    Ok(changed(&a, op))
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
    OptBody(req): OptBody<RollbackRequest>,
) -> Result<Response> {
    who.check(&tenant, Role::Editor)?;
    let expected = if_match(&headers)?;
    let current = load_app(&state, &tenant, &app).await?;
    let target = req.version.unwrap_or(current.version - 1);
    if target < 1 || target >= current.version {
        return Err(ApiError::field(
            "version",
            format!("must be an earlier version (1 to {})", current.version - 1),
        ));
    }
    let (mut spec, generation) = store::versions::get(&state.db.pool, &tenant, &app, target)
        .await?
        .ok_or_else(|| ApiError::field("version", format!("version {target} does not exist")))?;
    // The savepoint that ended the target version (taken when the job left it).
    let ended = match (generation, k8s::get_job(&state.kube, &tenant, &app).await?) {
        (Some(g), Some(job)) => job.status.and_then(|s| {
            s.savepoints.into_iter().rev().find_map(|sp| {
                let ends = sp.generation == Some(g)
                    && matches!(
                        sp.state,
                        SavepointState::Completed | SavepointState::Disposed
                    );
                ends.then_some(())?;
                Some((sp.id, sp.location?, sp.state))
            })
        }),
        _ => None,
    };
    // A deleted savepoint cannot be restored: say so rather than start a job that fails.
    if let Some((id, location, sp_state)) = &ended {
        let deleted = *sp_state == SavepointState::Disposed
            || store::snapshots::disposed(&state.db.pool, &tenant, &app)
                .await?
                .contains(location);
        if deleted {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "savepoint_deleted",
                format!(
                    "{id}, the savepoint that ended version {target}, was deleted, so its state \
                     cannot be restored; to run version {target}'s spec on the current state, \
                     submit it as a new version"
                ),
            ));
        }
    }
    let ended = ended.map(|(id, location, _)| (id, location));
    let how = match &ended {
        Some((id, location)) => {
            spec.restore = Some(strom_crds::spec::RestoreSpec {
                initial_savepoint: Some(location.as_str().into()),
                allow_non_restored_state: spec
                    .restore
                    .as_ref()
                    .is_some_and(|r| r.allow_non_restored_state),
                redeploy_nonce: Some(now_ms()),
            });
            format!("restoring {id} ({location}), taken at the end of version {target}")
        }
        None => format!(
            "no savepoint ends version {target}, so the current state carries over (a savepoint upgrade)"
        ),
    };
    let note = format!("rollback to version {target}");
    let a = new_version(&state, &who, &tenant, &app, expected, &spec, &note).await?;
    let op = record(
        &state,
        &tenant,
        &app,
        "rollback",
        a.version,
        Outcome::of(&a),
        format!("version {} = version {target}; {how}", a.version),
    )
    .await?;
    Ok(changed(&a, op))
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
    if !store::applications::delete(&mut *tx, &tenant, &app, expected).await? {
        return Err(conflict(current.version, expected));
    }
    store::versions::delete_all(&mut *tx, &tenant, &app).await?;
    store::intents::record(&mut *tx, &tenant, &app, now_ms(), None).await?;
    tx.commit().await?;
    after_commit(&state, &tenant, &app).await;
    let op = record(
        &state,
        &tenant,
        &app,
        "delete",
        expected,
        Outcome::Accepted,
        "the job stops with a savepoint and is removed".into(),
    )
    .await?;
    Ok(super::noted(Json(op), format!("delete {app}")))
}
