//! Client request ids a service has applied, so that a retried command is answered rather than
//! applied twice (DESIGN.md §5). Ids are scoped to the caller's organ: one organ's ids never
//! collide with another's, and a retry from the same organ finds its first result.
//!
//! The table lives in each service's own schema, beside the state it guards, and is written
//! in the same transaction as the change the request made.

use crate::{Tx, is_unique_violation, micros};
use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};

/// Its own migrations table, apart from each service's, so that any service may take it.
pub const MIGRATIONS_TABLE: &str = "_petition_requests_migrations";

// `IF NOT EXISTS`: routing created this table in its own first migration, before it was
// shared; hosts run this migrator after the service's own, so that both orders of history
// end with the same table.
const MIGRATION: &str = "CREATE TABLE IF NOT EXISTS applied_requests (
    organ      TEXT NOT NULL,
    request_id TEXT NOT NULL,
    case_id    TEXT NOT NULL,
    applied_at BIGINT NOT NULL,
    PRIMARY KEY (organ, request_id)
);";

/// The method a request id was used for: the same id sent to another method is another
/// request, not a retry (rows from before it have '' and match any).
const METHOD: &str = "ALTER TABLE applied_requests ADD COLUMN method TEXT NOT NULL DEFAULT ''";

pub fn migrator() -> Migrator {
    let mut m = Migrator::with_migrations(vec![
        Migration::new(
            1,
            "applied requests".into(),
            MigrationType::Simple,
            sqlx::AssertSqlSafe(MIGRATION).into_sql_str(),
            false,
        ),
        Migration::new(
            2,
            "request method".into(),
            MigrationType::Simple,
            sqlx::AssertSqlSafe(METHOD).into_sql_str(),
            false,
        ),
    ]);
    m.dangerous_set_table_name(MIGRATIONS_TABLE);
    m
}

/// A request id, scoped to the organ that sent it, and the method it was sent to.
#[derive(Debug, Clone, Copy)]
pub struct RequestId<'a> {
    pub organ: &'a str,
    /// the gRPC method, e.g. `AcceptCase`
    pub method: &'a str,
    pub id: &'a str,
}

impl<'a> RequestId<'a> {
    /// `None` for a request sent without an id: applied every time it is sent.
    pub fn of(organ: &'a str, method: &'a str, id: &'a str) -> Option<Self> {
        Some(Self { organ, method, id }).filter(|r| !r.id.is_empty())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// A concurrent request with the same id was applied first.
    #[error("the request id was used concurrently")]
    Duplicate,
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

/// The case the request id was applied to by the same method, if it was. An id the organ used
/// for another method is not found here; recording it again then fails as `Duplicate`, so the
/// second request changes nothing and its caller hears the id was taken.
pub async fn applied(
    pool: &sqlx::AnyPool,
    req: RequestId<'_>,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT case_id FROM applied_requests WHERE organ = $1 AND request_id = $2 \
         AND (method = $3 OR method = '')",
    )
    .bind(req.organ)
    .bind(req.id)
    .bind(req.method)
    .fetch_optional(pool)
    .await
}

/// Whether `req` (if any) was applied to `case_id` by the same method: when recording it failed
/// as `Duplicate`, a concurrent retry of this very request got there first.
pub async fn applied_to(
    pool: &sqlx::AnyPool,
    req: Option<RequestId<'_>>,
    case_id: &str,
) -> Result<bool, sqlx::Error> {
    let Some(req) = req else { return Ok(false) };
    Ok(applied(pool, req).await?.as_deref() == Some(case_id))
}

/// Marks the request applied to `case_id`, in the transaction of its change.
pub async fn record(
    tx: &mut Tx,
    req: RequestId<'_>,
    case_id: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), RequestError> {
    sqlx::query(
        "INSERT INTO applied_requests (organ, request_id, case_id, applied_at, method) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(req.organ)
    .bind(req.id)
    .bind(case_id)
    .bind(micros(now))
    .bind(req.method)
    .execute(&mut **tx)
    .await
    .map_err(|e| {
        if is_unique_violation(&e, &["applied_requests_pkey", "applied_requests.organ"]) {
            RequestError::Duplicate
        } else {
            e.into()
        }
    })?;
    Ok(())
}
