//! An application's history: its versions and its operations.

use axum::Json;
use axum::extract::{Path, Query, State};

use super::load_app;
use super::request::cursor;
use crate::auth::{Principal, Role};
use crate::error::Result;
use crate::model::{Operation, Page, PageQuery, Version};
use crate::{AppState, store};

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
    Ok(Json(
        store::versions::list(&state.db.pool, &tenant, &app).await?,
    ))
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
    let rows = store::operations::list(&state.db.pool, &tenant, &app, (at, &id), limit + 1).await?;
    Ok(Json(Page::keyed(rows, limit)))
}
