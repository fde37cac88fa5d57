//! `tokens`: hashes only, never secrets.

use sqlx::Row;

use super::Exec;
use crate::auth::Role;
use crate::db::rfc3339;
use crate::error::{ApiError, Result};
use crate::model::TokenInfo;

/// A token as stored.
pub struct NewToken<'a> {
    /// Its id.
    pub id: &'a str,
    /// Its tenant; `None` for a platform token.
    pub tenant: Option<&'a str>,
    /// Its role.
    pub role: Role,
    /// The hash of its secret (`sha256:<hex>`; Argon2id for tokens minted before).
    pub hash: &'a str,
    /// What it is for.
    pub description: &'a str,
    /// Created, epoch ms.
    pub created_at: i64,
    /// Expires, epoch ms.
    pub expires_at: Option<i64>,
}

/// Stores a new token.
pub async fn insert<'e>(db: impl Exec<'e>, t: &NewToken<'_>) -> Result<()> {
    sqlx::query(
        "INSERT INTO tokens (id, tenant, role, hash, description, created_at, expires_at, revoked_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, NULL)",
    )
    .bind(t.id)
    .bind(t.tenant)
    .bind(t.role.as_str())
    .bind(t.hash)
    .bind(t.description)
    .bind(t.created_at)
    .bind(t.expires_at)
    .execute(db)
    .await?;
    Ok(())
}

/// What checking a presented token needs.
pub struct Credential {
    /// Its tenant; `None` for a platform token.
    pub tenant: Option<String>,
    /// Its role.
    pub role: Role,
    /// The hash of its secret.
    pub hash: String,
    /// Expires, epoch ms.
    pub expires_at: Option<i64>,
    /// Revoked, epoch ms.
    pub revoked_at: Option<i64>,
}

/// The token `id`'s credential.
pub async fn credential<'e>(db: impl Exec<'e>, id: &str) -> Result<Option<Credential>> {
    let Some(row) =
        sqlx::query("SELECT tenant, role, hash, expires_at, revoked_at FROM tokens WHERE id = $1")
            .bind(id)
            .fetch_optional(db)
            .await?
    else {
        return Ok(None);
    };
    let role: String = row.try_get("role")?;
    Ok(Some(Credential {
        tenant: row.try_get("tenant")?,
        role: Role::parse(&role).ok_or_else(|| ApiError::internal("a stored role is unknown"))?,
        hash: row.try_get("hash")?,
        expires_at: row.try_get("expires_at")?,
        revoked_at: row.try_get("revoked_at")?,
    }))
}

/// The tenant's tokens (`None`: the platform's), oldest first.
pub async fn list<'e>(db: impl Exec<'e>, tenant: Option<&str>) -> Result<Vec<TokenInfo>> {
    let rows = sqlx::query(
        "SELECT * FROM tokens WHERE tenant IS NOT DISTINCT FROM $1 ORDER BY created_at, id",
    )
    .bind(tenant)
    .fetch_all(db)
    .await?;
    rows.iter()
        .map(|r| {
            let role: String = r.try_get("role")?;
            Ok(TokenInfo {
                id: r.try_get("id")?,
                role: Role::parse(&role)
                    .ok_or_else(|| ApiError::internal("a stored role is unknown"))?,
                description: r.try_get("description")?,
                created_at: rfc3339(r.try_get("created_at")?),
                expires_at: r.try_get::<Option<i64>, _>("expires_at")?.map(rfc3339),
                revoked_at: r.try_get::<Option<i64>, _>("revoked_at")?.map(rfc3339),
            })
        })
        .collect()
}

/// Revokes the tenant's (`None`: the platform's) active token `id` at `at`; `Ok(false)`
/// if there is none.
pub async fn revoke<'e>(
    db: impl Exec<'e>,
    tenant: Option<&str>,
    id: &str,
    at: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE tokens SET revoked_at = $1 \
         WHERE id = $2 AND tenant IS NOT DISTINCT FROM $3 AND revoked_at IS NULL",
    )
    .bind(at)
    .bind(id)
    .bind(tenant)
    .execute(db)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Revokes the active platform token `id` at `at` unless no other platform token would
/// still work then (one statement, so two revocations cannot both see the other's token as
/// the one left); `Ok(false)` if nothing was revoked.
pub async fn revoke_platform<'e>(db: impl Exec<'e>, id: &str, at: i64) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE tokens SET revoked_at = $1 \
         WHERE id = $2 AND tenant IS NULL AND revoked_at IS NULL \
         AND EXISTS (SELECT 1 FROM tokens o WHERE o.tenant IS NULL AND o.id <> $2 \
             AND o.revoked_at IS NULL AND (o.expires_at IS NULL OR o.expires_at > $1))",
    )
    .bind(at)
    .bind(id)
    .execute(db)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Whether `id` is an active platform token.
pub async fn is_active_platform<'e>(db: impl Exec<'e>, id: &str) -> Result<bool> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS n FROM tokens WHERE id = $1 AND tenant IS NULL AND revoked_at IS NULL",
    )
    .bind(id)
    .fetch_one(db)
    .await?;
    Ok(row.try_get::<i64, _>("n")? > 0)
}

/// Revokes the active token `id`, whoever's it is (the operator's break-glass command);
/// `Ok(false)` if there is none.
pub async fn revoke_any<'e>(db: impl Exec<'e>, id: &str, at: i64) -> Result<bool> {
    let done =
        sqlx::query("UPDATE tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(at)
            .bind(id)
            .execute(db)
            .await?;
    Ok(done.rows_affected() > 0)
}
