//! `intents`: applications whose FlinkJob may not match the database yet.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::Exec;
use crate::error::Result;

/// An application's pending Kubernetes step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intent {
    /// Its tenant.
    pub tenant: String,
    /// Its application.
    pub application: String,
    /// Which recording this is: the step that finishes it names it.
    pub id: String,
    /// When it was (last) recorded, epoch ms.
    pub created_at: i64,
    /// A first start's savepoint to restore.
    pub restore_from: Option<String>,
}

fn intent_of(r: &AnyRow) -> Result<Intent> {
    Ok(Intent {
        tenant: r.try_get("tenant")?,
        application: r.try_get("application")?,
        id: r.try_get("id")?,
        created_at: r.try_get("created_at")?,
        restore_from: r.try_get("restore_from")?,
    })
}

/// Records that the application's FlinkJob must follow the database (in the caller's
/// transaction, beside the change); keeps an earlier `restore_from` unless given one.
/// Returns the recording's id.
pub async fn record<'e>(
    db: impl Exec<'e>,
    tenant: &str,
    app: &str,
    at: i64,
    restore_from: Option<&str>,
) -> Result<String> {
    let id = uuid::Uuid::new_v4().simple().to_string();
    sqlx::query(
        "INSERT INTO intents (tenant, application, id, created_at, restore_from) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (tenant, application) DO UPDATE SET id = excluded.id, \
         created_at = excluded.created_at, \
         restore_from = COALESCE(excluded.restore_from, intents.restore_from)",
    )
    .bind(tenant)
    .bind(app)
    .bind(&id)
    .bind(at)
    .bind(restore_from)
    .execute(db)
    .await?;
    Ok(id)
}

/// The application's pending step, if any.
pub async fn get<'e>(db: impl Exec<'e>, tenant: &str, app: &str) -> Result<Option<Intent>> {
    let row = sqlx::query("SELECT * FROM intents WHERE tenant = $1 AND application = $2")
        .bind(tenant)
        .bind(app)
        .fetch_optional(db)
        .await?;
    row.as_ref().map(intent_of).transpose()
}

/// Removes the recording `id` (not a newer one made since); `Ok(false)` if a newer one is
/// pending.
pub async fn finish<'e>(db: impl Exec<'e>, tenant: &str, app: &str, id: &str) -> Result<bool> {
    let done =
        sqlx::query("DELETE FROM intents WHERE tenant = $1 AND application = $2 AND id = $3")
            .bind(tenant)
            .bind(app)
            .bind(id)
            .execute(db)
            .await?;
    Ok(done.rows_affected() > 0)
}

/// Steps recorded before `before` (their request died or is stuck), oldest first.
pub async fn older_than<'e>(db: impl Exec<'e>, before: i64) -> Result<Vec<Intent>> {
    let rows = sqlx::query("SELECT * FROM intents WHERE created_at < $1 ORDER BY created_at")
        .bind(before)
        .fetch_all(db)
        .await?;
    rows.iter().map(intent_of).collect()
}
