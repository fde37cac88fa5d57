//! `disposed_snapshots`: savepoint locations the control plane deleted.

use sqlx::Row;

use super::Exec;
use crate::error::Result;

/// The locations deleted for the application.
pub async fn disposed<'e>(db: impl Exec<'e>, tenant: &str, app: &str) -> Result<Vec<String>> {
    let rows = sqlx::query(
        "SELECT location FROM disposed_snapshots WHERE tenant = $1 AND application = $2",
    )
    .bind(tenant)
    .bind(app)
    .fetch_all(db)
    .await?;
    rows.iter().map(|r| Ok(r.try_get("location")?)).collect()
}

/// Records that `location` was deleted at `at`.
pub async fn insert_disposed<'e>(
    db: impl Exec<'e>,
    tenant: &str,
    app: &str,
    location: &str,
    at: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO disposed_snapshots (tenant, application, location, at) VALUES ($1, $2, $3, $4)",
    )
    .bind(tenant)
    .bind(app)
    .bind(location)
    .bind(at)
    .execute(db)
    .await?;
    Ok(())
}
