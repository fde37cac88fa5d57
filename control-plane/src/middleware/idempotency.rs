//! `Idempotency-Key`: the first request with a key runs and its answer is kept; a retry
//! with the same key and the same request gets that answer again.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::auth::Principal;
use crate::db::now_ms;
use crate::error::CarriesSecret;
use crate::error::{ApiError, AuditNote};
use crate::store;

/// A fingerprint of a request (FNV-1a, 64 bits): the same key with another request is
/// refused, and an accidental collision only fails to refuse.
fn fnv(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// The first request with a key runs and its answer is kept; a retry with the same key
/// and the same request gets that answer again (`Idempotent-Replayed: true`); the same
/// key with a different request is refused. Keys are per tenant (per platform for tenant
/// management), checked after the token.
pub async fn idempotency(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let key = req
        .headers()
        .get("idempotency-key")
        .and_then(|k| k.to_str().ok())
        .map(str::to_owned);
    let Some(key) = key.filter(|_| super::mutating(req.method())) else {
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
    let Ok(bytes) = axum::body::to_bytes(body, 4 << 20).await else {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            "the body exceeds 4 MiB",
        )
        .into_response();
    };
    // Keys belong to the token that sent them: another token (of the same tenant, with
    // another role) never gets this one's answer.
    let scope = format!("{}/{}", who.tenant.as_deref().unwrap_or("-"), who.token_id);
    let mut descriptor = format!("{} {} ", parts.method, parts.uri.path()).into_bytes();
    descriptor.extend_from_slice(&bytes);
    let request = fnv(&descriptor);
    let db = &state.db.pool;
    match store::idempotency::reserve(db, &scope, &key, &request, now_ms()).await {
        Ok(true) => {}
        Ok(false) => return replay(&state, &scope, &key, &request).await,
        Err(e) => return e.into_response(),
    }
    let response = next
        .run(Request::from_parts(parts, axum::body::Body::from(bytes)))
        .await;
    let (parts, body) = response.into_parts();
    let bytes = match axum::body::to_bytes(body, 16 << 20).await {
        Ok(b) => b,
        Err(e) => {
            // The answer cannot be kept, so it is not: the key is freed and the client
            // told the truth (a retry runs again; a versioned change then conflicts).
            if let Err(e) = store::idempotency::release(db, &scope, &key).await {
                tracing::error!(error = %e.body.message, "cannot free an idempotency key");
            }
            return ApiError::internal(format!("cannot read the answer to keep it: {e}"))
                .into_response();
        }
    };
    let kept = if parts.status.is_server_error() {
        // Not an answer worth keeping: a retry should run again.
        store::idempotency::release(db, &scope, &key).await
    } else if parts.extensions.get::<CarriesSecret>().is_some() {
        // A secret is shown once and stored nowhere: a replay says so instead.
        let note = ApiError::new(
            StatusCode::CONFLICT,
            "answer_not_kept",
            "the answer to this request carried a secret (a new token) and was not kept; \
             list the tokens to see the one it made",
        );
        let body = serde_json::to_string(&note.body).unwrap_or_default();
        store::idempotency::keep(db, &scope, &key, note.status.as_u16(), &body).await
    } else {
        let text = String::from_utf8_lossy(&bytes);
        store::idempotency::keep(db, &scope, &key, parts.status.as_u16(), &text).await
    };
    if let Err(e) = kept {
        tracing::error!(error = %e.body.message, "cannot record an idempotent answer");
    }
    Response::from_parts(parts, axum::body::Body::from(bytes))
}

/// The answer to a request whose key is taken.
async fn replay(state: &AppState, scope: &str, key: &str, request: &str) -> Response {
    let kept = match store::idempotency::get(&state.db.pool, scope, key).await {
        Ok(Some(k)) => k,
        Ok(None) => return ApiError::internal("idempotency record vanished").into_response(),
        Err(e) => return e.into_response(),
    };
    if kept.request != request {
        return ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            "this Idempotency-Key was used for a different request; use a new key",
        )
        .into_response();
    }
    let Some(status) = kept.status else {
        return ApiError::new(
            StatusCode::CONFLICT,
            "request_in_progress",
            "a request with this Idempotency-Key is still running; retry shortly",
        )
        .into_response();
    };
    let Ok(status) = StatusCode::from_u16(status) else {
        return ApiError::internal(format!("a kept answer's status is not HTTP: {status}"))
            .into_response();
    };
    let mut r = (
        status,
        [
            ("content-type", "application/json"),
            ("idempotent-replayed", "true"),
        ],
        kept.body,
    )
        .into_response();
    r.extensions_mut()
        .insert(AuditNote("replayed an earlier answer".into()));
    r
}

#[cfg(test)]
mod tests {
    use super::fnv;

    #[test]
    fn the_fingerprint_tells_requests_apart() {
        assert_eq!(fnv(b""), "cbf29ce484222325");
        assert_eq!(fnv(b"POST /a {}"), fnv(b"POST /a {}"));
        assert_ne!(fnv(b"POST /a {}"), fnv(b"POST /b {}"));
    }
}
