//! The audit log: every mutating call, who made it, what happened.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;

use axum::response::IntoResponse;

use crate::AppState;
use crate::auth::VerifiedSlot;
use crate::db::now_ms;
use crate::error::{ApiError, AuditNote};
use crate::store;

/// The tenant a path is about (`/v1/tenants/<t>/…`).
fn path_tenant(path: &str) -> Option<String> {
    let rest = path.strip_prefix("/v1/tenants/")?;
    Some(rest.split('/').next()?.to_owned()).filter(|t| !t.is_empty())
}

/// Records every mutating call by a verified caller: who (the token and tenant its
/// verification found), what, when, outcome. A call that never got that far (no token, a
/// forged or revoked one) is counted in a metric instead, so a caller without a token cannot
/// write rows into a tenant's log. A row that cannot be written fails the call (500): an
/// action must not go unrecorded.
pub async fn audit(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    if !super::mutating(req.method()) {
        return next.run(req).await;
    }
    let (method, path) = (req.method().to_string(), req.uri().path().to_owned());
    let slot = VerifiedSlot::default();
    req.extensions_mut().insert(slot.clone());
    let response = next.run(req).await;
    let status = response.status();
    let principal = slot.0.lock().expect("the verified slot").take();
    let Some(principal) = principal else {
        state
            .metrics
            .unauthenticated
            .with_label_values(&[status.as_str()])
            .inc();
        return response;
    };
    let outcome = response
        .extensions()
        .get::<AuditNote>()
        .map(|n| n.0.clone())
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("").to_owned());
    // A tenant's token writes only into its own tenant's log, whatever path it called; a
    // platform token acts on the tenant its path names (tenant creation: the new tenant's).
    let tenant = match &principal.tenant {
        Some(t) => Some(t.clone()),
        None => path_tenant(&path).or_else(|| {
            (path == "/v1/tenants" && status == StatusCode::CREATED).then(|| "-".to_owned())
        }),
    };
    let entry = store::audit::Entry {
        tenant: tenant.as_deref(),
        token_id: Some(&principal.token_id),
        method: &method,
        path: &path,
        status: status.as_u16(),
        outcome: &outcome,
        at: now_ms(),
    };
    if let Err(e) = store::audit::insert(&state.db.pool, &entry).await {
        tracing::error!(error = %e.body.message, "cannot write the audit log; the call fails");
        return ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "audit_unavailable",
            "the call could not be recorded in the audit log; check its outcome before retrying",
        )
        .into_response();
    }
    response
}

#[cfg(test)]
mod tests {
    use super::path_tenant;

    #[test]
    fn the_tenant_of_a_path() {
        assert_eq!(
            path_tenant("/v1/tenants/acme/applications").as_deref(),
            Some("acme")
        );
        assert_eq!(path_tenant("/v1/tenants/acme").as_deref(), Some("acme"));
        assert_eq!(path_tenant("/v1/tenants/"), None);
        assert_eq!(path_tenant("/v1/tenants"), None);
        assert_eq!(path_tenant("/healthz"), None);
    }
}
