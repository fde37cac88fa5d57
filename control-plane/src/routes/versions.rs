//! An application's history: its versions and its operations.

use axum::Json;
use axum::extract::{Path, Query, State};

use super::load_app;
use super::request::cursor;
use crate::auth::{Principal, Role};
use crate::error::{ApiError, Result};
use crate::model::{Operation, Page, PageQuery, Version};
use crate::{AppState, store};

/// The application's versions, newest first, a page at a time.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/applications/{app}/versions",
    params(("tenant" = String, Path), ("app" = String, Path), PageQuery),
    responses((status = 200, body = Page<Version>)), security(("token" = [])), tag = "applications")]
pub async fn list_versions(
    State(state): State<AppState>,
    who: Principal,
    Path((tenant, app)): Path<(String, String)>,
    Query(page): Query<PageQuery>,
) -> Result<Json<Page<Version>>> {
    who.check(&tenant, Role::Viewer)?;
    load_app(&state, &tenant, &app).await?;
    let limit = page.limit()?;
    let before = match &page.cursor {
        None => i64::MAX,
        Some(c) => c
            .parse::<i64>()
            .ok()
            .filter(|v| *v > 0)
            .ok_or_else(|| ApiError::field("cursor", "is not a cursor this API gave out"))?,
    };
    let rows = store::versions::page(&state.db.pool, &tenant, &app, before, limit + 1).await?;
    Ok(Json(Page::of(rows, limit, |v| v.version.to_string())))
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
