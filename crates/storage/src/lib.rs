//! Database connections for the services: one PostgreSQL schema per service, or one SQLite file
//! per service for the embedded default. Migrations stay with each service; this crate only
//! opens pools the same way everywhere.

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, PgPool, SqlitePool};
use std::str::FromStr;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("unsupported database URL {0:?}: use postgres://… or sqlite://…")]
    Scheme(String),
    #[error("schema name {0:?} must be lower-case letters and underscores")]
    SchemaName(String),
    #[error(transparent)]
    Sqlx(#[from] sqlx::Error),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Postgres,
    Sqlite,
}

impl Dialect {
    pub fn of_url(url: &str) -> Result<Self, StorageError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Dialect::Postgres)
        } else if url.starts_with("sqlite:") {
            Ok(Dialect::Sqlite)
        } else {
            Err(StorageError::Scheme(url.to_owned()))
        }
    }
}

/// Opens a pool whose connections see only `schema` (created if missing), so a service's
/// unqualified table names — and its migrations table — live in its own schema.
pub async fn connect_postgres(
    url: &str,
    schema: &str,
    max_connections: u32,
) -> Result<PgPool, StorageError> {
    if schema.is_empty() || !schema.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
        return Err(StorageError::SchemaName(schema.to_owned()));
    }
    let base = PgConnectOptions::from_str(url)?;
    let mut conn = sqlx::PgConnection::connect_with(&base).await?;
    // Two services starting at once may race to create their schemas; the lock makes it safe.
    sqlx::query("SELECT pg_advisory_lock(4242)")
        .execute(&mut conn)
        .await?;
    let created = sqlx::query(sqlx::AssertSqlSafe(format!(
        "CREATE SCHEMA IF NOT EXISTS {schema}"
    )))
    .execute(&mut conn)
    .await;
    sqlx::query("SELECT pg_advisory_unlock(4242)")
        .execute(&mut conn)
        .await?;
    created?;
    conn.close().await?;
    let options = base.options([("search_path", schema)]);
    Ok(PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await?)
}

/// Opens (creating if missing) a SQLite database in WAL mode. One connection: SQLite serialises
/// writers anyway, and a single connection never meets SQLITE_BUSY on a lock upgrade.
pub async fn connect_sqlite(url: &str) -> Result<SqlitePool, StorageError> {
    let options = SqliteConnectOptions::from_str(url)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(10));
    if let Some(dir) = options.get_filename().parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).map_err(sqlx::Error::Io)?;
    }
    Ok(SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dialect_by_scheme() {
        assert_eq!(
            Dialect::of_url("postgres://u@h/db").unwrap(),
            Dialect::Postgres
        );
        assert_eq!(
            Dialect::of_url("sqlite://data/x.db").unwrap(),
            Dialect::Sqlite
        );
        assert!(Dialect::of_url("mysql://x").is_err());
    }

    #[tokio::test]
    async fn sqlite_file_is_created_with_its_directory() {
        let dir = std::env::temp_dir().join(format!("petition-storage-{}", std::process::id()));
        let url = format!("sqlite://{}/sub/x.db", dir.display());
        let pool = connect_sqlite(&url).await.unwrap();
        let one: i64 = sqlx::query_scalar("SELECT 1")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(one, 1);
        pool.close().await;
        assert!(dir.join("sub/x.db").exists());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn bad_schema_names_are_refused_before_connecting() {
        let err = connect_postgres("postgres://nobody@127.0.0.1:1/x", "intake; drop", 1)
            .await
            .unwrap_err();
        assert!(matches!(err, StorageError::SchemaName(_)));
    }
}
