//! `applications`, each joined with its current version's spec.

use sqlx::Row;
use sqlx::any::AnyRow;
use strom_crds::FlinkJobSpec;

use super::Exec;
use crate::error::{ApiError, Result};

/// What an application was last told to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Desired {
    /// Its FlinkJob runs.
    Running,
    /// Its FlinkJob is suspended (or was never started).
    Stopped,
}

impl Desired {
    /// As stored and answered.
    pub fn as_str(self) -> &'static str {
        match self {
            Desired::Running => "running",
            Desired::Stopped => "stopped",
        }
    }

    fn parse(s: &str) -> Result<Desired> {
        match s {
            "running" => Ok(Desired::Running),
            "stopped" => Ok(Desired::Stopped),
            other => Err(ApiError::internal(format!(
                "a stored desired state is unknown: {other:?}"
            ))),
        }
    }
}

/// An application at its current version.
pub struct AppRow {
    /// Its name.
    pub name: String,
    /// Stopped without a savepoint: the next start resumes the latest checkpoint.
    pub at_checkpoint: bool,
    /// Its current version.
    pub version: i64,
    /// What it was last told.
    pub desired: Desired,
    /// The last snapshot request's nonce.
    pub nonce: i64,
    /// Created, epoch ms.
    pub created_at: i64,
    /// Changed, epoch ms.
    pub updated_at: i64,
    /// The current version's spec as versions keep it (no `state`).
    pub spec: serde_json::Value,
}

impl AppRow {
    /// The current version's spec, typed.
    pub fn typed_spec(&self) -> Result<FlinkJobSpec> {
        serde_json::from_value(self.spec.clone())
            .map_err(|e| ApiError::internal(format!("a stored spec: {e}")))
    }
}

const SELECT: &str = "SELECT a.name, a.version, a.desired, a.snapshot_nonce, a.at_checkpoint, \
     a.created_at, a.updated_at, v.spec \
     FROM applications a JOIN versions v \
     ON v.tenant = a.tenant AND v.application = a.name AND v.version = a.version";

fn app_of(row: &AnyRow) -> Result<AppRow> {
    let spec: String = row.try_get("spec")?;
    let desired: String = row.try_get("desired")?;
    Ok(AppRow {
        name: row.try_get("name")?,
        version: row.try_get("version")?,
        desired: Desired::parse(&desired)?,
        nonce: row.try_get("snapshot_nonce")?,
        at_checkpoint: row.try_get::<i64, _>("at_checkpoint")? != 0,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        spec: serde_json::from_str(&spec).map_err(ApiError::internal)?,
    })
}

/// The tenant's application `name`.
pub async fn get<'e>(db: impl Exec<'e>, tenant: &str, name: &str) -> Result<Option<AppRow>> {
    let row = sqlx::query(&format!("{SELECT} WHERE a.tenant = $1 AND a.name = $2"))
        .bind(tenant)
        .bind(name)
        .fetch_optional(db)
        .await?;
    row.as_ref().map(app_of).transpose()
}

/// At most `limit` of the tenant's applications named after `after`, by name.
pub async fn list<'e>(
    db: impl Exec<'e>,
    tenant: &str,
    after: &str,
    limit: i64,
) -> Result<Vec<AppRow>> {
    let rows = sqlx::query(&format!(
        "{SELECT} WHERE a.tenant = $1 AND a.name > $2 ORDER BY a.name LIMIT $3"
    ))
    .bind(tenant)
    .bind(after)
    .bind(limit)
    .fetch_all(db)
    .await?;
    rows.iter().map(app_of).collect()
}

/// The tenant's running applications other than `except`.
pub async fn running_except<'e>(
    db: impl Exec<'e>,
    tenant: &str,
    except: &str,
) -> Result<Vec<AppRow>> {
    let rows = sqlx::query(&format!(
        "{SELECT} WHERE a.tenant = $1 AND a.desired = 'running' AND a.name <> $2"
    ))
    .bind(tenant)
    .bind(except)
    .fetch_all(db)
    .await?;
    rows.iter().map(app_of).collect()
}

/// Adds a stopped application at version 1; `Ok(false)` if one of that name exists.
pub async fn insert<'e>(db: impl Exec<'e>, tenant: &str, name: &str, now: i64) -> Result<bool> {
    let inserted = sqlx::query(
        "INSERT INTO applications (tenant, name, version, desired, snapshot_nonce, created_at, updated_at) \
         VALUES ($1, $2, 1, 'stopped', 0, $3, $3)",
    )
    .bind(tenant)
    .bind(name)
    .bind(now)
    .execute(db)
    .await;
    if super::exists(&inserted) {
        return Ok(false);
    }
    inserted?;
    Ok(true)
}

/// Moves the application from version `from` to `to` (a new spec: not at a checkpoint);
/// `Ok(false)` if it is no longer at `from`.
pub async fn advance<'e>(
    db: impl Exec<'e>,
    tenant: &str,
    name: &str,
    from: i64,
    to: i64,
    now: i64,
) -> Result<bool> {
    let moved = sqlx::query(
        "UPDATE applications SET version = $1, updated_at = $2, at_checkpoint = 0 \
         WHERE tenant = $3 AND name = $4 AND version = $5",
    )
    .bind(to)
    .bind(now)
    .bind(tenant)
    .bind(name)
    .bind(from)
    .execute(db)
    .await?;
    Ok(moved.rows_affected() > 0)
}

/// Sets what the application at `version` is told; `Ok(false)` if it is no longer at
/// `version`.
pub async fn set_desired<'e>(
    db: impl Exec<'e>,
    tenant: &str,
    name: &str,
    version: i64,
    desired: Desired,
    at_checkpoint: bool,
    now: i64,
) -> Result<bool> {
    let moved = sqlx::query(
        "UPDATE applications SET desired = $1, updated_at = $2, at_checkpoint = $6 \
         WHERE tenant = $3 AND name = $4 AND version = $5",
    )
    .bind(desired.as_str())
    .bind(now)
    .bind(tenant)
    .bind(name)
    .bind(version)
    .bind(i64::from(at_checkpoint))
    .execute(db)
    .await?;
    Ok(moved.rows_affected() > 0)
}

/// Records the latest snapshot request's nonce.
pub async fn set_nonce<'e>(db: impl Exec<'e>, tenant: &str, name: &str, nonce: i64) -> Result<()> {
    sqlx::query("UPDATE applications SET snapshot_nonce = $1 WHERE tenant = $2 AND name = $3")
        .bind(nonce)
        .bind(tenant)
        .bind(name)
        .execute(db)
        .await?;
    Ok(())
}

/// Removes the application at `version`; `Ok(false)` if it is no longer at `version`.
pub async fn delete<'e>(db: impl Exec<'e>, tenant: &str, name: &str, version: i64) -> Result<bool> {
    let gone =
        sqlx::query("DELETE FROM applications WHERE tenant = $1 AND name = $2 AND version = $3")
            .bind(tenant)
            .bind(name)
            .bind(version)
            .execute(db)
            .await?;
    Ok(gone.rows_affected() > 0)
}

/// How many applications the tenant has.
pub async fn count<'e>(db: impl Exec<'e>, tenant: &str) -> Result<i64> {
    let row = sqlx::query("SELECT COUNT(*) AS n FROM applications WHERE tenant = $1")
        .bind(tenant)
        .fetch_one(db)
        .await?;
    Ok(row.try_get("n")?)
}
