//! API tokens: a tenant's (`/v1/tenants/{tenant}/tokens`, tenant admin or platform admin)
//! and the platform's own (`/v1/tokens`, platform admin; they always expire).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};

use super::request::positive_duration_ms;
use crate::auth::{self, Principal, Role};
use crate::db::{now_ms, rfc3339};
use crate::error::{ApiError, CarriesSecret, Result};
use crate::model::{CreatedToken, PlatformTokenRequest, TokenInfo, TokenRequest};
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
    Ok(Json(
        store::tokens::list(&state.db.pool, Some(&tenant)).await?,
    ))
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
    let revoked = store::tokens::revoke(&state.db.pool, Some(&tenant), &id, now_ms()).await?;
    state.verified.forget(&id);
    if !revoked {
        return Err(ApiError::not_found(format!("no active token {id:?}")));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// The longest a platform admin token lives (a year).
pub const PLATFORM_TOKEN_MAX_LIFETIME: &str = "8760h";
/// A platform admin token's lifetime when none is asked for (90 days).
pub const PLATFORM_TOKEN_DEFAULT_LIFETIME: &str = "2160h";

/// When a platform token asked to live `expires_in` (default 90 days, at most a year)
/// expires, in epoch ms.
pub fn platform_token_expiry(field: &str, expires_in: Option<&str>) -> Result<i64> {
    let asked = positive_duration_ms(field, expires_in.unwrap_or(PLATFORM_TOKEN_DEFAULT_LIFETIME))?;
    let max = positive_duration_ms(field, PLATFORM_TOKEN_MAX_LIFETIME)?;
    if asked > max {
        return Err(ApiError::field(
            field,
            format!("a platform admin token lives at most {PLATFORM_TOKEN_MAX_LIFETIME} (a year)"),
        ));
    }
    Ok(now_ms() + asked)
}

/// Create a platform admin token (platform admin). It expires: by default in 90 days, at
/// most in a year. The secret is in this answer only.
#[utoipa::path(post, path = "/v1/tokens", request_body = PlatformTokenRequest,
    responses((status = 201, body = CreatedToken)), security(("token" = [])), tag = "tokens")]
pub async fn create_platform_token(
    State(state): State<AppState>,
    who: Principal,
    Body(req): Body<PlatformTokenRequest>,
) -> Result<(StatusCode, Extension<CarriesSecret>, Json<CreatedToken>)> {
    who.platform()?;
    let expires_at = platform_token_expiry("expiresIn", req.expires_in.as_deref())?;
    let (id, token) = auth::create(
        &state.db,
        None,
        Role::Admin,
        &req.description,
        Some(expires_at),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Extension(CarriesSecret),
        Json(CreatedToken {
            id,
            token,
            role: Role::Admin,
            expires_at: Some(rfc3339(expires_at)),
        }),
    ))
}

/// The platform admin tokens (never their secrets).
#[utoipa::path(get, path = "/v1/tokens", responses((status = 200, body = [TokenInfo])),
    security(("token" = [])), tag = "tokens")]
pub async fn list_platform_tokens(
    State(state): State<AppState>,
    who: Principal,
) -> Result<Json<Vec<TokenInfo>>> {
    who.platform()?;
    Ok(Json(store::tokens::list(&state.db.pool, None).await?))
}

/// Revoke a platform admin token: it stops working at once. The last working one cannot
/// be revoked here (409), so the platform is never locked out by mistake; the
/// `strom-control-plane revoke-token` command can.
#[utoipa::path(delete, path = "/v1/tokens/{id}", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody)),
    security(("token" = [])), tag = "tokens")]
pub async fn revoke_platform_token(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    who.platform()?;
    let revoked = store::tokens::revoke_platform(&state.db.pool, &id, now_ms()).await?;
    state.verified.forget(&id);
    if revoked {
        return Ok(StatusCode::NO_CONTENT);
    }
    if store::tokens::is_active_platform(&state.db.pool, &id).await? {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "last_platform_token",
            "this is the last working platform admin token; create another first (or use `strom-control-plane revoke-token`)",
        ));
    }
    Err(ApiError::not_found(format!(
        "no active platform token {id:?}"
    )))
}
