//! `operations`: the record of every change of an application.

use sqlx::Row;

use super::Exec;
use crate::db::rfc3339;
use crate::error::Result;
use crate::model::Operation;

/// Stores `op` (created at `at`, epoch ms) for the tenant.
pub async fn insert<'e>(db: impl Exec<'e>, tenant: &str, op: &Operation, at: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO operations (id, tenant, application, kind, version, outcome, message, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&op.id)
    .bind(tenant)
    .bind(&op.application)
    .bind(&op.kind)
    .bind(op.version)
    .bind(&op.outcome)
    .bind(&op.message)
    .bind(at)
    .execute(db)
    .await?;
    Ok(())
}

/// At most `limit` of the application's operations older than the key (`at`, `id`),
/// newest first, each with its page key.
pub async fn list<'e>(
    db: impl Exec<'e>,
    tenant: &str,
    app: &str,
    (at, id): (i64, &str),
    limit: i64,
) -> Result<Vec<(String, Operation)>> {
    let rows = sqlx::query(
        "SELECT * FROM operations WHERE tenant = $1 AND application = $2 \
         AND (created_at < $3 OR (created_at = $3 AND id < $4)) \
         ORDER BY created_at DESC, id DESC LIMIT $5",
    )
    .bind(tenant)
    .bind(app)
    .bind(at)
    .bind(id)
    .bind(limit)
    .fetch_all(db)
    .await?;
    rows.iter()
        .map(|r| {
            let created: i64 = r.try_get("created_at")?;
            let id: String = r.try_get("id")?;
            Ok((
                super::newest_first_key(created, &id),
                Operation {
                    id,
                    application: r.try_get("application")?,
                    kind: r.try_get("kind")?,
                    version: r.try_get("version")?,
                    outcome: r.try_get("outcome")?,
                    message: r.try_get("message")?,
                    created_at: rfc3339(created),
                },
            ))
        })
        .collect()
}
