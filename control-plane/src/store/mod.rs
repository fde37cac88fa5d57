//! The database's queries, one module per table; handlers never write SQL. Every
//! function is one statement (or one read), takes the pool or the caller's transaction,
//! and returns typed rows.

pub mod applications;
pub mod audit;
pub mod idempotency;
pub mod intents;
pub mod operations;
pub mod snapshots;
pub mod tenants;
pub mod tokens;
pub mod versions;

/// The caller's transaction (`&mut *tx`) or the pool.
pub trait Exec<'e>: sqlx::Executor<'e, Database = sqlx::Any> {}

impl<'e, T: sqlx::Executor<'e, Database = sqlx::Any>> Exec<'e> for T {}

/// Whether `result` failed on a unique key (the row exists already).
pub fn exists<T>(result: &Result<T, sqlx::Error>) -> bool {
    matches!(result, Err(sqlx::Error::Database(e)) if e.is_unique_violation())
}

/// A newest-first page key `<ms>.<id>`, as operations and the audit log give out.
pub fn newest_first_key(at: i64, id: &str) -> String {
    format!("{at}.{id}")
}
