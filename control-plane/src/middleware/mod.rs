//! What every mutating request passes through: the audit log and `Idempotency-Key`.

mod audit;
mod idempotency;

pub use audit::audit;
pub use idempotency::idempotency;

use axum::http::Method;

fn mutating(method: &Method) -> bool {
    matches!(
        *method,
        Method::POST | Method::PUT | Method::DELETE | Method::PATCH
    )
}
