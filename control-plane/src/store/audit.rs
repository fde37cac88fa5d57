//! `audit`: every mutating call, who made it and how it ended.

use sqlx::Row;

use super::Exec;
use crate::db::rfc3339;
use crate::error::Result;
use crate::model::AuditEntry;

/// One call as the audit log records it.
pub struct Entry<'a> {
    /// The tenant it concerned (`-` for tenant creation), if any.
    pub tenant: Option<&'a str>,
    /// The calling token, if it authenticated.
    pub token_id: Option<&'a str>,
    /// HTTP method.
    pub method: &'a str,
    /// Path.
    pub path: &'a str,
    /// Answered status.
    pub status: u16,
    /// What happened.
    pub outcome: &'a str,
    /// When, epoch ms.
    pub at: i64,
}

/// Appends `e`.
pub async fn insert<'e>(db: impl Exec<'e>, e: &Entry<'_>) -> Result<()> {
    sqlx::query(
        "INSERT INTO audit (id, tenant, token_id, method, path, status, outcome, at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(uuid::Uuid::new_v4().simple().to_string())
    .bind(e.tenant)
    .bind(e.token_id)
    .bind(e.method)
    .bind(e.path)
    .bind(i64::from(e.status))
    .bind(e.outcome)
    .bind(e.at)
    .execute(db)
    .await?;
    Ok(())
}

/// At most `limit` of the tenant's entries older than the key (`at`, `id`), newest
/// first, each with its page key.
pub async fn list<'e>(
    db: impl Exec<'e>,
    tenant: &str,
    (at, id): (i64, &str),
    limit: i64,
) -> Result<Vec<(String, AuditEntry)>> {
    let rows = sqlx::query(
        "SELECT * FROM audit WHERE tenant = $1 AND (at < $2 OR (at = $2 AND id < $3)) \
         ORDER BY at DESC, id DESC LIMIT $4",
    )
    .bind(tenant)
    .bind(at)
    .bind(id)
    .bind(limit)
    .fetch_all(db)
    .await?;
    rows.iter()
        .map(|r| {
            let at: i64 = r.try_get("at")?;
            let id: String = r.try_get("id")?;
            Ok((
                super::newest_first_key(at, &id),
                AuditEntry {
                    id,
                    token_id: r
                        .try_get::<Option<String>, _>("token_id")?
                        .unwrap_or_else(|| "-".into()),
                    method: r.try_get("method")?,
                    path: r.try_get("path")?,
                    status: r.try_get("status")?,
                    outcome: r.try_get("outcome")?,
                    at: rfc3339(at),
                },
            ))
        })
        .collect()
}
