//! `versions`: every spec an application had, immutable once written.

use sqlx::Row;
use strom_crds::FlinkJobSpec;

use super::Exec;
use crate::db::rfc3339;
use crate::error::{ApiError, Result};
use crate::model::Version;

/// A stored spec, read back. A stored spec that no longer reads is the server's fault.
pub fn decode(text: &str) -> Result<FlinkJobSpec> {
    serde_json::from_str(text).map_err(|e| ApiError::internal(format!("a stored spec: {e}")))
}

/// A new version.
pub struct NewVersion<'a> {
    /// Its number.
    pub version: i64,
    /// Its spec as versions keep it (`crate::spec::stored`).
    pub spec: &'a str,
    /// What it changes.
    pub note: &'a str,
    /// Created, epoch ms.
    pub created_at: i64,
    /// The token that created it.
    pub created_by: &'a str,
}

/// Stores a version of the tenant's application.
pub async fn insert<'e>(
    db: impl Exec<'e>,
    tenant: &str,
    app: &str,
    v: &NewVersion<'_>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO versions (tenant, application, version, spec, note, created_at, created_by) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(tenant)
    .bind(app)
    .bind(v.version)
    .bind(v.spec)
    .bind(v.note)
    .bind(v.created_at)
    .bind(v.created_by)
    .execute(db)
    .await?;
    Ok(())
}

/// The application's versions, newest first.
pub async fn list<'e>(db: impl Exec<'e>, tenant: &str, app: &str) -> Result<Vec<Version>> {
    page(db, tenant, app, i64::MAX, i64::MAX).await
}

/// At most `limit` of the application's versions older than `before`, newest first.
pub async fn page<'e>(
    db: impl Exec<'e>,
    tenant: &str,
    app: &str,
    before: i64,
    limit: i64,
) -> Result<Vec<Version>> {
    let rows = sqlx::query(
        "SELECT * FROM versions WHERE tenant = $1 AND application = $2 AND version < $3 \
         ORDER BY version DESC LIMIT $4",
    )
    .bind(tenant)
    .bind(app)
    .bind(before)
    .bind(limit)
    .fetch_all(db)
    .await?;
    rows.iter()
        .map(|r| {
            let spec: String = r.try_get("spec")?;
            Ok(Version {
                version: r.try_get("version")?,
                spec: serde_json::from_str(&spec).map_err(ApiError::internal)?,
                note: r.try_get("note")?,
                created_at: rfc3339(r.try_get("created_at")?),
                created_by: r.try_get("created_by")?,
            })
        })
        .collect()
}

/// Version `version`'s spec and the FlinkJob generation that ran it (if it ran).
pub async fn get<'e>(
    db: impl Exec<'e>,
    tenant: &str,
    app: &str,
    version: i64,
) -> Result<Option<(FlinkJobSpec, Option<i64>)>> {
    let Some(row) = sqlx::query(
        "SELECT spec, generation FROM versions WHERE tenant = $1 AND application = $2 AND version = $3",
    )
    .bind(tenant)
    .bind(app)
    .bind(version)
    .fetch_optional(db)
    .await?
    else {
        return Ok(None);
    };
    let text: String = row.try_get("spec")?;
    Ok(Some((decode(&text)?, row.try_get("generation")?)))
}

/// Records which FlinkJob generation runs `version` (its savepoints carry the generation).
pub async fn set_generation<'e>(
    db: impl Exec<'e>,
    tenant: &str,
    app: &str,
    version: i64,
    generation: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE versions SET generation = $1 WHERE tenant = $2 AND application = $3 AND version = $4",
    )
    .bind(generation)
    .bind(tenant)
    .bind(app)
    .bind(version)
    .execute(db)
    .await?;
    Ok(())
}

/// Removes every version of the application.
pub async fn delete_all<'e>(db: impl Exec<'e>, tenant: &str, app: &str) -> Result<()> {
    sqlx::query("DELETE FROM versions WHERE tenant = $1 AND application = $2")
        .bind(tenant)
        .bind(app)
        .execute(db)
        .await?;
    Ok(())
}

/// How many versions the application has.
pub async fn count<'e>(db: impl Exec<'e>, tenant: &str, app: &str) -> Result<i64> {
    let row =
        sqlx::query("SELECT COUNT(*) AS n FROM versions WHERE tenant = $1 AND application = $2")
            .bind(tenant)
            .bind(app)
            .fetch_one(db)
            .await?;
    Ok(row.try_get("n")?)
}
