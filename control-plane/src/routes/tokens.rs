//! `/v1/tenants/{tenant}/tokens`: a tenant's API tokens (tenant admin or platform admin).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};

use super::request::positive_duration_ms;
use crate::auth::{self, Principal, Role};
use crate::db::{now_ms, rfc3339};
use crate::error::{ApiError, CarriesSecret, Result};
use crate::model::{CreatedToken, TokenInfo, TokenRequest};
use crate::{AppState, Body, store};

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
) -> Result<(StatusCode, Extension<CarriesSecret>, Json<CreatedToken>)> {
    who.check(&tenant, Role::Admin)?;
    super::load_tenant(&state, &tenant).await?;
    let expires_at = match &req.expires_in {
        Some(d) => Some(now_ms() + positive_duration_ms("expiresIn", d)?),
        None => None,
    };
    let (id, token) = auth::create(
        &state.db,
        Some(&tenant),
        req.role,
        &req.description,
        expires_at,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Extension(CarriesSecret),
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
    Ok(Json(store::tokens::list(&state.db.pool, &tenant).await?))
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
    let revoked = store::tokens::revoke(&state.db.pool, &tenant, &id, now_ms()).await?;
    state.verified.forget(&id);
    if !revoked {
        return Err(ApiError::not_found(format!("no active token {id:?}")));
    }
    Ok(StatusCode::NO_CONTENT)
}
