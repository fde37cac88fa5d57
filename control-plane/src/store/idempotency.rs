//! `idempotency`: the kept answers of requests sent with an `Idempotency-Key`.

use sqlx::Row;

use super::Exec;
use crate::error::{ApiError, Result};

/// A key's record.
pub struct Kept {
    /// The fingerprint of the request that reserved the key.
    pub request: String,
    /// Its answer's status; `None` while that request still runs.
    pub status: Option<u16>,
    /// Its answer's body.
    pub body: String,
}

/// How long a key is remembered (Stripe's and the IETF draft's day).
pub const TTL_MS: i64 = 24 * 3600 * 1000;

/// How long a request may hold its key without an answer before the key is taken to be
/// abandoned (its server stopped mid-request) and freed for a retry.
pub const IN_PROGRESS_MS: i64 = 5 * 60 * 1000;

/// Reserves `key` in `scope` for `request`; `Ok(false)` if the key is taken. Keys older than
/// [`TTL_MS`], and reservations left without an answer for [`IN_PROGRESS_MS`], are freed
/// first.
pub async fn reserve(
    db: &sqlx::AnyPool,
    scope: &str,
    key: &str,
    request: &str,
    at: i64,
) -> Result<bool> {
    sqlx::query(
        "DELETE FROM idempotency WHERE created_at < $1 OR (status = 0 AND created_at < $2)",
    )
    .bind(at - TTL_MS)
    .bind(at - IN_PROGRESS_MS)
    .execute(db)
    .await?;
    let reserved = sqlx::query(
        "INSERT INTO idempotency (tenant, key, request, status, body, created_at) VALUES ($1, $2, $3, 0, '', $4)",
    )
    .bind(scope)
    .bind(key)
    .bind(request)
    .bind(at)
    .execute(db)
    .await;
    if super::exists(&reserved) {
        return Ok(false);
    }
    reserved?;
    Ok(true)
}

/// The record of `key` in `scope`.
pub async fn get<'e>(db: impl Exec<'e>, scope: &str, key: &str) -> Result<Option<Kept>> {
    let Some(row) =
        sqlx::query("SELECT request, status, body FROM idempotency WHERE tenant = $1 AND key = $2")
            .bind(scope)
            .bind(key)
            .fetch_optional(db)
            .await?
    else {
        return Ok(None);
    };
    let status: i64 = row.try_get("status")?;
    Ok(Some(Kept {
        request: row.try_get("request")?,
        status: match status {
            0 => None,
            s => Some(u16::try_from(s).map_err(|_| {
                ApiError::internal(format!("a kept answer's status is not HTTP: {s}"))
            })?),
        },
        body: row.try_get("body")?,
    }))
}

/// Keeps the answer to `key`'s request.
pub async fn keep<'e>(
    db: impl Exec<'e>,
    scope: &str,
    key: &str,
    status: u16,
    body: &str,
) -> Result<()> {
    sqlx::query("UPDATE idempotency SET status = $1, body = $2 WHERE tenant = $3 AND key = $4")
        .bind(i64::from(status))
        .bind(body)
        .bind(scope)
        .bind(key)
        .execute(db)
        .await?;
    Ok(())
}

/// Frees `key` (its request failed on the server: a retry should run again).
pub async fn release<'e>(db: impl Exec<'e>, scope: &str, key: &str) -> Result<()> {
    sqlx::query("DELETE FROM idempotency WHERE tenant = $1 AND key = $2")
        .bind(scope)
        .bind(key)
        .execute(db)
        .await?;
    Ok(())
}
