//! `tenants`.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::Exec;
use crate::db::rfc3339;
use crate::error::Result;
use crate::model::Tenant;
use crate::quota::{Quota, cpu_text, memory_text};

fn tenant_of(row: &AnyRow) -> Result<Tenant> {
    Ok(Tenant {
        name: row.try_get("name")?,
        namespace: row.try_get("namespace")?,
        max_parallelism: row.try_get("max_parallelism")?,
        max_jobs: row.try_get("max_jobs")?,
        max_cpu: cpu_text(row.try_get("max_cpu_milli")?),
        max_memory: memory_text(row.try_get("max_memory_bytes")?),
        max_applications: row.try_get("max_applications")?,
        max_versions: row.try_get("max_versions")?,
        created_at: rfc3339(row.try_get("created_at")?),
    })
}

/// Adds a tenant; `Ok(false)` if one of that name exists.
pub async fn insert<'e>(db: impl Exec<'e>, t: &Tenant, created_at: i64) -> Result<bool> {
    let quota = Quota::of(t)?;
    let inserted = sqlx::query(
        "INSERT INTO tenants (name, namespace, max_parallelism, max_jobs, max_cpu_milli, \
         max_memory_bytes, max_applications, max_versions, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&t.name)
    .bind(&t.namespace)
    .bind(t.max_parallelism)
    .bind(t.max_jobs)
    .bind(quota.total.cpu_milli)
    .bind(quota.total.memory_bytes)
    .bind(t.max_applications)
    .bind(t.max_versions)
    .bind(created_at)
    .execute(db)
    .await;
    if super::exists(&inserted) {
        return Ok(false);
    }
    inserted?;
    Ok(true)
}

/// The tenant `name`.
pub async fn get<'e>(db: impl Exec<'e>, name: &str) -> Result<Option<Tenant>> {
    let row = sqlx::query("SELECT * FROM tenants WHERE name = $1")
        .bind(name)
        .fetch_optional(db)
        .await?;
    row.as_ref().map(tenant_of).transpose()
}

/// At most `limit` tenants named after `after`, by name.
pub async fn list<'e>(db: impl Exec<'e>, after: &str, limit: i64) -> Result<Vec<Tenant>> {
    let rows = sqlx::query("SELECT * FROM tenants WHERE name > $1 ORDER BY name LIMIT $2")
        .bind(after)
        .bind(limit)
        .fetch_all(db)
        .await?;
    rows.iter().map(tenant_of).collect()
}

/// Takes the tenant's row for the rest of the caller's transaction (a row lock on
/// PostgreSQL, the write lock on SQLite), so that two requests checking the tenant's quota
/// run one after the other and cannot both pass on the same headroom.
pub async fn lock<'e>(db: impl Exec<'e>, name: &str) -> Result<()> {
    sqlx::query("UPDATE tenants SET max_jobs = max_jobs WHERE name = $1")
        .bind(name)
        .execute(db)
        .await?;
    Ok(())
}
