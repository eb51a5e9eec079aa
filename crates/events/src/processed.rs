//! Idempotent apply: a consumer records each event id it has applied in the same transaction as
//! the effect, so a redelivered event changes nothing.

use sqlx::{PgConnection, SqliteConnection};

pub const PG_DDL: &str = "
CREATE TABLE IF NOT EXISTS processed_events (
    consumer_group TEXT NOT NULL,
    event_id       TEXT NOT NULL,
    processed_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, event_id)
);
";

pub const SQLITE_DDL: &str = "
CREATE TABLE IF NOT EXISTS processed_events (
    consumer_group TEXT NOT NULL,
    event_id       TEXT NOT NULL,
    processed_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
    PRIMARY KEY (consumer_group, event_id)
);
";

/// True the first time `event_id` is seen by `group`; false for a redelivery, in which case the
/// caller skips the effect (and still commits and acknowledges).
pub async fn first_time_pg(
    conn: &mut PgConnection,
    group: &str,
    event_id: &str,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "INSERT INTO processed_events (consumer_group, event_id) VALUES ($1, $2) \
         ON CONFLICT DO NOTHING",
    )
    .bind(group)
    .bind(event_id)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

pub async fn first_time_sqlite(
    conn: &mut SqliteConnection,
    group: &str,
    event_id: &str,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "INSERT INTO processed_events (consumer_group, event_id) VALUES (?1, ?2) \
         ON CONFLICT DO NOTHING",
    )
    .bind(group)
    .bind(event_id)
    .execute(conn)
    .await?;
    Ok(r.rows_affected() == 1)
}
