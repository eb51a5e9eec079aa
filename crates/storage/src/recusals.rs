//! Recusals (回避, Art. 28 ¶3) every service keeps beside its cases: who among the staff is out
//! of which case. Routing records one when it is decided and publishes it; the other services
//! copy it from the event. Each reads its own copy in the same query as the case, so a list
//! never shows a case to the person who is out of it, and a lookup answers them as if the case
//! did not exist.

use crate::{Sql, Tx, micros};
use sqlx::migrate::Migrator;

/// Its own migrations table, so that any service's schema may hold it.
pub const MIGRATIONS_TABLE: &str = "_petition_recusals_migrations";

const MIGRATION: &str = "CREATE TABLE IF NOT EXISTS recusals (
    case_id     TEXT NOT NULL,
    subject     TEXT NOT NULL,
    reason      TEXT NOT NULL,
    recorded_at BIGINT NOT NULL,
    PRIMARY KEY (case_id, subject)
);";

/// A lifted recusal stays as a tombstone (`lifted_at`): copies apply routing's events in the
/// order their consumers get to them, and a record that arrives after its own lift (a retried
/// delivery, another replica) must find the lift and stay lifted, not come back.
const LIFTED: &str = "ALTER TABLE recusals ADD COLUMN lifted_at BIGINT";

pub fn migrator(_dialect: crate::Dialect) -> Migrator {
    use sqlx::SqlSafeStr;
    use sqlx::migrate::{Migration, MigrationType};
    let mut m = Migrator::with_migrations(vec![
        Migration::new(
            1,
            "recusals".into(),
            MigrationType::Simple,
            sqlx::AssertSqlSafe(MIGRATION).into_sql_str(),
            false,
        ),
        Migration::new(
            2,
            "recusals lifted".into(),
            MigrationType::Simple,
            sqlx::AssertSqlSafe(LIFTED).into_sql_str(),
            false,
        ),
    ]);
    m.dangerous_set_table_name(MIGRATIONS_TABLE);
    m
}

/// Records that `subject` is out of `case_id`, in the caller's transaction. A second record of
/// the same person on the same case keeps the first (an event delivered twice, a recusal
/// recorded again with another reason), and a record older than a lift of it stays lifted;
/// one made after a lift stands again. Returns whether this one took effect.
pub async fn record(
    tx: &mut Tx,
    case_id: &str,
    subject: &str,
    reason: &str,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO recusals (case_id, subject, reason, recorded_at, lifted_at) \
         VALUES ($1, $2, $3, $4, NULL) \
         ON CONFLICT (case_id, subject) DO UPDATE SET reason = excluded.reason, \
         recorded_at = excluded.recorded_at, lifted_at = NULL \
         WHERE recusals.lifted_at IS NOT NULL AND recusals.lifted_at < excluded.recorded_at",
    )
    .bind(case_id)
    .bind(subject)
    .bind(reason)
    .bind(micros(at))
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Lifts `subject`'s recusal from `case_id` as of `at`, in the caller's transaction, leaving a
/// tombstone even when the record has not arrived yet: whether it took effect.
pub async fn lift(
    tx: &mut Tx,
    case_id: &str,
    subject: &str,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "INSERT INTO recusals (case_id, subject, reason, recorded_at, lifted_at) \
         VALUES ($1, $2, '', 0, $3) \
         ON CONFLICT (case_id, subject) DO UPDATE SET lifted_at = excluded.lifted_at \
         WHERE recusals.lifted_at IS NULL AND recusals.recorded_at <= excluded.lifted_at",
    )
    .bind(case_id)
    .bind(subject)
    .bind(micros(at))
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Whether `subject`'s recusal from `case_id` was lifted.
pub async fn is_lifted(
    executor: impl sqlx::Executor<'_, Database = sqlx::Any>,
    case_id: &str,
    subject: &str,
) -> Result<bool, sqlx::Error> {
    let n: Option<i64> = sqlx::query_scalar(
        "SELECT 1 FROM recusals WHERE case_id = $1 AND subject = $2 AND lifted_at IS NOT NULL",
    )
    .bind(case_id)
    .bind(subject)
    .fetch_optional(executor)
    .await?;
    Ok(n.is_some())
}

/// Everyone who is out of `case_id`.
pub async fn of_case(
    executor: impl sqlx::Executor<'_, Database = sqlx::Any>,
    case_id: &str,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT subject FROM recusals WHERE case_id = $1 AND lifted_at IS NULL ORDER BY subject",
    )
    .bind(case_id)
    .fetch_all(executor)
    .await
}

/// Which of `case_ids` `subject` is out of.
pub async fn among(
    executor: impl sqlx::Executor<'_, Database = sqlx::Any>,
    subject: &str,
    case_ids: &[String],
) -> Result<Vec<String>, sqlx::Error> {
    if case_ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut q = Sql::new("SELECT case_id FROM recusals WHERE lifted_at IS NULL AND subject = ");
    q.bind(subject.to_owned())
        .push(" AND case_id IN (")
        .bind_list(case_ids.iter().cloned())
        .push(")");
    let rows = q.build().fetch_all(executor).await?;
    use sqlx::Row;
    rows.iter()
        .map(|r| r.try_get::<String, _>("case_id"))
        .collect()
}

/// The reason and time `subject` was recorded out of `case_id`, if they were.
pub async fn get(
    executor: impl sqlx::Executor<'_, Database = sqlx::Any>,
    case_id: &str,
    subject: &str,
) -> Result<Option<(String, chrono::DateTime<chrono::Utc>)>, sqlx::Error> {
    let row: Option<(String, i64)> = sqlx::query_as(
        "SELECT reason, recorded_at FROM recusals \
         WHERE case_id = $1 AND subject = $2 AND lifted_at IS NULL",
    )
    .bind(case_id)
    .bind(subject)
    .fetch_optional(executor)
    .await?;
    Ok(row.and_then(|(reason, at)| Some((reason, chrono::DateTime::from_timestamp_micros(at)?))))
}

/// ` AND NOT EXISTS (…)`: the rows whose case (`case_column`) `subject` is not out of; nothing
/// when there is nobody to leave out. Qualify `case_column` with its table: inside the
/// subquery a bare `case_id` would name the recusal's own column.
pub fn push_not_recused(q: &mut Sql, case_column: &str, subject: Option<&str>) {
    if let Some(subject) = subject {
        q.push(&format!(
            " AND NOT EXISTS (SELECT 1 FROM recusals r WHERE r.lifted_at IS NULL \
             AND r.case_id = {case_column} AND r.subject = "
        ))
        .bind(subject.to_owned())
        .push(")");
    }
}
