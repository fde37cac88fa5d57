//! The routes' handlers, one module per resource; what they share is here: loading a
//! tenant or an application (404 otherwise), recording an operation, applying the
//! application's FlinkJob, and the answer to a change.

pub mod applications;
pub mod lifecycle;
pub mod observe;
pub mod request;
pub mod snapshots;
pub mod tenants;
pub mod tokens;
pub mod versions;

use axum::Json;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use strom_crds::FlinkJobSpec;

use crate::AppState;
use crate::db::{now_ms, rfc3339};
use crate::error::{ApiError, AuditNote, Result};
use crate::model::{Application, Changed, Operation, Tenant};
use crate::store::applications::AppRow;
use crate::store::{self};

/// The tenant `name`.
pub(crate) async fn load_tenant(state: &AppState, name: &str) -> Result<Tenant> {
    store::tenants::get(&state.db.pool, name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no tenant {name:?}")))
}

/// The tenant's application `name`.
pub(crate) async fn load_app(state: &AppState, tenant: &str, name: &str) -> Result<AppRow> {
    store::applications::get(&state.db.pool, tenant, name)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no application {name:?}")))
}

/// The application, which must be at version `expected` (the caller's `If-Match`).
pub(crate) async fn load_at(
    state: &AppState,
    tenant: &str,
    name: &str,
    expected: i64,
) -> Result<AppRow> {
    let current = load_app(state, tenant, name).await?;
    if current.version != expected {
        return Err(request::conflict(current.version, expected));
    }
    Ok(current)
}

/// Refuses running `spec` as `app` if, beside the tenant's other running applications, it
/// would exceed the tenant's quota. Takes the tenant's row first, so that concurrent
/// checks in other transactions wait for this one to end: two starts cannot both pass on
/// the same headroom.
pub(crate) async fn check_quota(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    tenant: &str,
    app: &str,
    spec: &FlinkJobSpec,
) -> Result<()> {
    let t = lock_tenant(tx, tenant).await?;
    let others = store::applications::running_except(&mut **tx, tenant, app).await?;
    let others = others
        .iter()
        .map(AppRow::typed_spec)
        .collect::<Result<Vec<_>>>()?;
    crate::quota::fits_beside(&t, &others, spec)
}

/// Takes the tenant's row for the rest of `tx` (see `store::tenants::lock`) and reads it.
pub(crate) async fn lock_tenant(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    tenant: &str,
) -> Result<Tenant> {
    store::tenants::lock(&mut **tx, tenant).await?;
    store::tenants::get(&mut **tx, tenant)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no tenant {tenant:?}")))
}

/// 403 `quota_exceeded` for a limit of the tenant's.
pub(crate) fn over_limit(message: String) -> ApiError {
    ApiError::new(axum::http::StatusCode::FORBIDDEN, "quota_exceeded", message)
}

/// The application as answered.
pub(crate) fn application(a: &AppRow) -> Application {
    Application {
        name: a.name.clone(),
        version: a.version,
        desired: a.desired.as_str().to_owned(),
        spec: a.spec.clone(),
        created_at: rfc3339(a.created_at),
        updated_at: rfc3339(a.updated_at),
    }
}

/// How an operation ended when it was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Handed to Kubernetes; the job's status shows its progress.
    Accepted,
    /// Done.
    Succeeded,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Accepted => "accepted",
            Outcome::Succeeded => "succeeded",
        }
    }

    /// Accepted if the application runs (Kubernetes carries the change out), else done.
    pub(crate) fn of(a: &AppRow) -> Outcome {
        if a.desired == store::applications::Desired::Running {
            Outcome::Accepted
        } else {
            Outcome::Succeeded
        }
    }
}

/// Records an operation of `kind` on the application.
pub(crate) async fn record(
    state: &AppState,
    tenant: &str,
    app: &str,
    kind: &str,
    version: i64,
    outcome: Outcome,
    message: String,
) -> Result<Operation> {
    let now = now_ms();
    let op = Operation {
        id: uuid::Uuid::new_v4().simple().to_string(),
        application: app.to_owned(),
        kind: kind.to_owned(),
        version,
        outcome: outcome.as_str().to_owned(),
        message,
        created_at: rfc3339(now),
    };
    store::operations::insert(&state.db.pool, tenant, &op, now).await?;
    Ok(op)
}

/// The answer to a change of an application: it (with its version as `ETag`) and the
/// operation recorded.
pub(crate) fn changed(a: &AppRow, op: Operation) -> Response {
    let etag = format!("\"{}\"", a.version);
    let note = AuditNote(format!("{} {} → version {}", op.kind, a.name, a.version));
    let mut r = (
        [(header::ETAG, etag)],
        Json(Changed {
            application: application(a),
            operation: op,
        }),
    )
        .into_response();
    r.extensions_mut().insert(note);
    r
}

/// The answer with `note` for the audit log.
pub(crate) fn noted(r: impl IntoResponse, note: String) -> Response {
    let mut r = r.into_response();
    r.extensions_mut().insert(AuditNote(note));
    r
}
