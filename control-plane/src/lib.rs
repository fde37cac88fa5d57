//! The managed-service REST API over FlinkJobs: tenants (each a namespace with a quota),
//! API tokens (hashed, scoped, expiring, revocable), applications with immutable versions
//! (start, stop, update as a savepoint upgrade, scale, rollback, delete), snapshots,
//! status, events, operations and an audit log; SQLite or PostgreSQL. See
//! `docs/control-plane.md`.

pub mod api;
pub mod auth;
pub mod db;
pub mod error;
pub mod k8s;
pub mod model;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use sqlx::Row;
use utoipa::OpenApi;

use crate::auth::{Principal, VerifiedCache};
use crate::db::{Db, now_ms};
use crate::error::{ApiError, AuditNote};

/// What every request shares.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub db: Db,
    /// The Kubernetes client.
    pub kube: kube::Client,
    /// Default checkpoint and savepoint storage for applications that name none.
    pub storage: Option<String>,
    /// Secrets verified in this process.
    pub verified: VerifiedCache,
}

/// The OpenAPI document of the API.
#[derive(OpenApi)]
#[openapi(
    info(title = "Strom control plane", description = "Applications on Strom, a managed streaming service: tenants, tokens, applications and their versions, snapshots, status, events, operations and audit.", version = "v1"),
    paths(
        api::create_tenant, api::list_tenants, api::get_tenant,
        api::create_token, api::list_tokens, api::revoke_token,
        api::create_application, api::list_applications, api::get_application,
        api::update_application, api::delete_application, api::start_application,
        api::stop_application, api::scale_application, api::rollback_application,
        api::list_versions, api::list_operations, api::list_snapshots, api::create_snapshot,
        api::delete_snapshot,
        api::application_status, api::application_events, api::audit_log,
    ),
    modifiers(&Security),
)]
pub struct ApiDoc;

struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        doc.components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "token",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
    }
}

/// The OpenAPI document as pretty JSON (what `/openapi.json` serves and
/// `control-plane/openapi.json` holds).
pub fn openapi_json() -> String {
    ApiDoc::openapi()
        .to_pretty_json()
        .expect("the document serializes")
}

/// A JSON request body whose errors are API errors naming the field.
pub struct Body<T>(pub T);

fn parse_body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize(&mut de) {
        Ok(v) => Ok(v),
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if inner.is_syntax() || inner.is_eof() {
                Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "bad_json",
                    format!("the body is not valid JSON: {inner}"),
                ))
            } else {
                let reason = inner.to_string();
                let reason = reason
                    .split(" at line ")
                    .next()
                    .unwrap_or(&reason)
                    .to_owned();
                Err(ApiError::field(
                    if path == "." { "(body)" } else { &path },
                    reason,
                ))
            }
        }
    }
}

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_body", e.body_text()))?;
        parse_body(&bytes).map(Body)
    }
}

/// A JSON body that may be absent (then `T::default()`).
pub struct OptBody<T>(pub T);

impl<T: serde::de::DeserializeOwned + Default, S: Send + Sync> FromRequest<S> for OptBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_body", e.body_text()))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptBody(T::default()));
        }
        parse_body(&bytes).map(OptBody)
    }
}

/// The API's routes.
pub fn router(state: AppState) -> Router {
    let app = "/v1/tenants/{tenant}/applications/{app}";
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/openapi.json",
            get(|| async { ([("content-type", "application/json")], openapi_json()) }),
        )
        .route(
            "/v1/tenants",
            post(api::create_tenant).get(api::list_tenants),
        )
        .route("/v1/tenants/{tenant}", get(api::get_tenant))
        .route(
            "/v1/tenants/{tenant}/tokens",
            post(api::create_token).get(api::list_tokens),
        )
        .route(
            "/v1/tenants/{tenant}/tokens/{id}",
            axum::routing::delete(api::revoke_token),
        )
        .route(
            "/v1/tenants/{tenant}/applications",
            post(api::create_application).get(api::list_applications),
        )
        .route(
            app,
            get(api::get_application)
                .put(api::update_application)
                .delete(api::delete_application),
        )
        .route(&format!("{app}/start"), post(api::start_application))
        .route(&format!("{app}/stop"), post(api::stop_application))
        .route(&format!("{app}/scale"), post(api::scale_application))
        .route(&format!("{app}/rollback"), post(api::rollback_application))
        .route(&format!("{app}/versions"), get(api::list_versions))
        .route(&format!("{app}/operations"), get(api::list_operations))
        .route(
            &format!("{app}/snapshots"),
            get(api::list_snapshots).post(api::create_snapshot),
        )
        .route(
            &format!("{app}/snapshots/{{id}}"),
            axum::routing::delete(api::delete_snapshot),
        )
        .route(&format!("{app}/status"), get(api::application_status))
        .route(&format!("{app}/events"), get(api::application_events))
        .route("/v1/tenants/{tenant}/audit", get(api::audit_log))
        .fallback(|| async {
            ApiError::not_found("no such route; the routes are in /openapi.json")
        })
        .layer(middleware::from_fn_with_state(state.clone(), idempotency))
        .layer(middleware::from_fn_with_state(state.clone(), audit))
        .with_state(state)
}

fn mutating(method: &Method) -> bool {
    matches!(
        *method,
        Method::POST | Method::PUT | Method::DELETE | Method::PATCH
    )
}

/// The tenant a path is about (`/v1/tenants/<t>/…`).
fn path_tenant(path: &str) -> Option<String> {
    let rest = path.strip_prefix("/v1/tenants/")?;
    Some(rest.split('/').next()?.to_owned()).filter(|t| !t.is_empty())
}

/// Records every mutating call: who, what, when, outcome.
async fn audit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if !mutating(req.method()) {
        return next.run(req).await;
    }
    let (method, path) = (req.method().to_string(), req.uri().path().to_owned());
    let token_id = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer strom_"))
        .and_then(|t| t.split('_').next())
        .map(str::to_owned);
    let response = next.run(req).await;
    let status = response.status();
    let outcome = response
        .extensions()
        .get::<AuditNote>()
        .map(|n| n.0.clone())
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("").to_owned());
    let tenant = path_tenant(&path).or_else(|| {
        // Tenant creation is recorded in the new tenant's log.
        (path == "/v1/tenants" && status == StatusCode::CREATED).then(|| "-".to_owned())
    });
    let token_id = if status == StatusCode::UNAUTHORIZED {
        None
    } else {
        token_id
    };
    let written = sqlx::query(
        "INSERT INTO audit (id, tenant, token_id, method, path, status, outcome, at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(uuid::Uuid::new_v4().simple().to_string())
    .bind(tenant)
    .bind(token_id)
    .bind(method)
    .bind(path)
    .bind(i64::from(status.as_u16()))
    .bind(outcome)
    .bind(now_ms())
    .execute(&state.db.pool)
    .await;
    if let Err(e) = written {
        tracing::error!(error = %e, "cannot write the audit log");
    }
    response
}

fn fnv(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// `Idempotency-Key`: the first request with a key runs and its answer is kept; a retry
/// with the same key and the same request gets that answer again (`Idempotent-Replayed:
/// true`); the same key with a different request is refused. Keys are per tenant (per
/// platform for tenant management), checked after the token.
async fn idempotency(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let key = req
        .headers()
        .get("idempotency-key")
        .and_then(|k| k.to_str().ok())
        .map(str::to_owned);
    let Some(key) = key.filter(|_| mutating(req.method())) else {
        return next.run(req).await;
    };
    if key.is_empty() || key.len() > 200 {
        return ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_idempotency_key",
            "Idempotency-Key must be 1 to 200 characters",
        )
        .into_response();
    }
    let (mut parts, body) = req.into_parts();
    let Ok(who) = Principal::from_request_parts(&mut parts, &state).await else {
        // Unauthenticated: the handler says so.
        return next.run(Request::from_parts(parts, body)).await;
    };
    let bytes = match axum::body::to_bytes(body, 4 << 20).await {
        Ok(b) => b,
        Err(_) => {
            return ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                "the body exceeds 4 MiB",
            )
            .into_response();
        }
    };
    let scope = who.tenant.clone().unwrap_or_else(|| "-".into());
    let mut descriptor = format!("{} {} ", parts.method, parts.uri.path()).into_bytes();
    descriptor.extend_from_slice(&bytes);
    let request = fnv(&descriptor);
    let reserved = sqlx::query(
        "INSERT INTO idempotency (tenant, key, request, status, body, created_at) VALUES ($1, $2, $3, 0, '', $4)",
    )
    .bind(&scope)
    .bind(&key)
    .bind(&request)
    .bind(now_ms())
    .execute(&state.db.pool)
    .await;
    match reserved {
        Ok(_) => {}
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            let row = sqlx::query(
                "SELECT request, status, body FROM idempotency WHERE tenant = $1 AND key = $2",
            )
            .bind(&scope)
            .bind(&key)
            .fetch_optional(&state.db.pool)
            .await;
            let Ok(Some(row)) = row else {
                return ApiError::internal("idempotency record vanished").into_response();
            };
            let (seen, status, body): (String, i64, String) = (
                row.try_get("request").unwrap_or_default(),
                row.try_get("status").unwrap_or_default(),
                row.try_get("body").unwrap_or_default(),
            );
            if seen != request {
                return ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "idempotency_key_reused",
                    "this Idempotency-Key was used for a different request; use a new key",
                )
                .into_response();
            }
            if status == 0 {
                return ApiError::new(
                    StatusCode::CONFLICT,
                    "request_in_progress",
                    "a request with this Idempotency-Key is still running; retry shortly",
                )
                .into_response();
            }
            let mut r = (
                StatusCode::from_u16(status as u16).unwrap_or(StatusCode::OK),
                [
                    ("content-type", "application/json"),
                    ("idempotent-replayed", "true"),
                ],
                body,
            )
                .into_response();
            r.extensions_mut()
                .insert(AuditNote("replayed an earlier answer".into()));
            return r;
        }
        Err(e) => return ApiError::from(e).into_response(),
    }
    let response = next
        .run(Request::from_parts(parts, axum::body::Body::from(bytes)))
        .await;
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, 16 << 20)
        .await
        .unwrap_or_default();
    let kept = if parts.status.is_server_error() {
        // Not an answer worth keeping: a retry should run again.
        sqlx::query("DELETE FROM idempotency WHERE tenant = $1 AND key = $2")
            .bind(&scope)
            .bind(&key)
            .execute(&state.db.pool)
            .await
    } else {
        sqlx::query("UPDATE idempotency SET status = $1, body = $2 WHERE tenant = $3 AND key = $4")
            .bind(i64::from(parts.status.as_u16()))
            .bind(String::from_utf8_lossy(&bytes).into_owned())
            .bind(&scope)
            .bind(&key)
            .execute(&state.db.pool)
            .await
    };
    if let Err(e) = kept {
        tracing::error!(error = %e, "cannot record an idempotent answer");
    }
    Response::from_parts(parts, axum::body::Body::from(bytes))
}
