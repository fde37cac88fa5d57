//! The audit log: every mutating call, who made it, what happened.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;

use crate::AppState;
use crate::db::now_ms;
use crate::error::AuditNote;
use crate::store;

/// The tenant a path is about (`/v1/tenants/<t>/…`).
fn path_tenant(path: &str) -> Option<String> {
    let rest = path.strip_prefix("/v1/tenants/")?;
    Some(rest.split('/').next()?.to_owned()).filter(|t| !t.is_empty())
}

/// Records every mutating call: who, what, when, outcome.
pub async fn audit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if !super::mutating(req.method()) {
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
    let entry = store::audit::Entry {
        tenant: tenant.as_deref(),
        token_id: token_id.as_deref(),
        method: &method,
        path: &path,
        status: status.as_u16(),
        outcome: &outcome,
        at: now_ms(),
    };
    if let Err(e) = store::audit::insert(&state.db.pool, &entry).await {
        tracing::error!(error = %e.body.message, "cannot write the audit log");
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
