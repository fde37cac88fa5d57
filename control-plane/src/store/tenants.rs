//! `tenants`.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::Exec;
use crate::db::rfc3339;
use crate::error::Result;
use crate::model::Tenant;

fn tenant_of(row: &AnyRow) -> Result<Tenant> {
    Ok(Tenant {
        name: row.try_get("name")?,
        namespace: row.try_get("namespace")?,
        max_parallelism: row.try_get("max_parallelism")?,
        max_jobs: row.try_get("max_jobs")?,
        created_at: rfc3339(row.try_get("created_at")?),
    })
}

/// Adds a tenant; `Ok(false)` if one of that name exists.
pub async fn insert<'e>(db: impl Exec<'e>, t: &Tenant, created_at: i64) -> Result<bool> {
    let inserted = sqlx::query(
        "INSERT INTO tenants (name, namespace, max_parallelism, max_jobs, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&t.name)
    .bind(&t.namespace)
    .bind(t.max_parallelism)
    .bind(t.max_jobs)
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
