//! API errors: an HTTP status, a machine-readable code, a message for people, and the
//! field it concerns.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use strom_crds::Violation;
use utoipa::ToSchema;

/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Machine-readable, e.g. `version_conflict`, `invalid_spec`, `quota_exceeded`.
    pub code: String,
    /// For people.
    pub message: String,
    /// Each field that is wrong (for validation errors), with why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

// The wire form of a `Violation` (the API calls the path `field`): handlers speak in
// `Violation`s, and this type exists only in the response body.
/// One wrong field.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct FieldError {
    /// Path of the field in the request body, e.g. `spec.parallelism`.
    pub field: String,
    /// Why it is wrong.
    pub reason: String,
}

impl From<Violation> for FieldError {
    fn from(v: Violation) -> Self {
        FieldError {
            field: v.path,
            reason: v.reason,
        }
    }
}

/// The crate's results.
pub type Result<T, E = ApiError> = std::result::Result<T, E>;

/// An error answered to the client.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// The body.
    pub body: ErrorBody,
    /// Seconds before trying again (`Retry-After`), for 429.
    pub retry_after: Option<u64>,
}

/// Marks a response that carries a secret (a minted token): it is never kept for an
/// `Idempotency-Key` replay.
#[derive(Debug, Clone, Copy)]
pub struct CarriesSecret;

/// What the audit log records about a response (set by handlers and errors).
#[derive(Debug, Clone)]
pub struct AuditNote(pub String);

impl ApiError {
    /// An error without field details.
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            body: ErrorBody {
                code: code.into(),
                message: message.into(),
                errors: Vec::new(),
            },
            retry_after: None,
        }
    }

    /// 422 for one wrong field.
    pub fn field(field: &str, reason: impl Into<String>) -> Self {
        ApiError::fields(vec![Violation::new(field, reason)])
    }

    /// 422 for several wrong fields.
    pub fn fields(violations: Vec<Violation>) -> Self {
        let message = violations
            .iter()
            .map(Violation::to_string)
            .collect::<Vec<_>>()
            .join("; ");
        let errors = violations.into_iter().map(FieldError::from).collect();
        ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            body: ErrorBody {
                code: "invalid_request".into(),
                message,
                errors,
            },
            retry_after: None,
        }
    }

    /// 404 for `what`.
    pub fn not_found(what: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", what)
    }

    /// 429: `why`; try again after `wait` (whole seconds, rounded up).
    pub fn rate_limited(wait: std::time::Duration, why: &str) -> Self {
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        ApiError {
            retry_after: Some(secs.max(1)),
            ..ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("{why}; try again in {} s", secs.max(1)),
            )
        }
    }

    /// 500, logged; the client learns only that it failed.
    pub fn internal(e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "request failed");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the request failed on the server; it is logged",
        )
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        ApiError::internal(format!("database: {e}"))
    }
}

impl From<kube::Error> for ApiError {
    /// Kubernetes' own messages stay in the log: they name the cluster's objects, admission
    /// webhooks and policies, which are the platform's business. The caller learns that
    /// Kubernetes refused the change, and why in a word.
    fn from(e: kube::Error) -> Self {
        match e {
            kube::Error::Api(ae) if ae.code == 422 || ae.code == 400 => {
                tracing::warn!(code = ae.code, reason = %ae.reason, message = %ae.message, "kubernetes refused a change");
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "rejected_by_kubernetes",
                    format!(
                        "Kubernetes refused the change ({}); nothing was recorded. The control plane's log has Kubernetes' message for the platform's operators",
                        if ae.reason.is_empty() {
                            "Invalid"
                        } else {
                            ae.reason.as_str()
                        }
                    ),
                )
            }
            e => {
                tracing::error!(error = %e, "kubernetes request failed");
                ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    "kubernetes_unavailable",
                    "the Kubernetes API did not answer as expected; try again",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let note = AuditNote(format!("{}: {}", self.body.code, self.body.message));
        let mut r = (self.status, Json(self.body)).into_response();
        if let Some(secs) = self.retry_after {
            r.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        r.extensions_mut().insert(note);
        r
    }
}
