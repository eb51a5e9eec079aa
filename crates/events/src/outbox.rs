//! The transactional outbox and its relay.
//!
//! A service writes its events into `outbox` inside the transaction of the state change, so an
//! acknowledged change always has its event. The relay publishes unpublished rows in order and
//! marks them; a crash between publish and mark publishes the row again, which consumers absorb
//! by applying each event id once.

use crate::BusError;
use sqlx::{PgConnection, PgPool, Row, SqliteConnection, SqlitePool};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, watch};
use uuid::Uuid;

/// Created by each producing service in its own schema at start-up.
pub const PG_DDL: &str = "
CREATE TABLE IF NOT EXISTS outbox (
    seq          BIGSERIAL PRIMARY KEY,
    event_id     UUID NOT NULL UNIQUE,
    stream       TEXT NOT NULL,
    payload      BYTEA NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    published_at TIMESTAMPTZ
);
CREATE INDEX IF NOT EXISTS outbox_unpublished ON outbox (seq) WHERE published_at IS NULL;
";

pub const SQLITE_DDL: &str = "
CREATE TABLE IF NOT EXISTS outbox (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id     TEXT NOT NULL UNIQUE,
    stream       TEXT NOT NULL,
    payload      BLOB NOT NULL,
    created_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
    published_at TEXT
);
CREATE INDEX IF NOT EXISTS outbox_unpublished ON outbox (seq) WHERE published_at IS NULL;
";

#[derive(Debug, Clone)]
pub struct OutboxMessage {
    pub event_id: Uuid,
    pub stream: String,
    pub payload: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub seq: i64,
    pub event_id: Uuid,
    pub stream: String,
    pub payload: Vec<u8>,
}

/// Where the relay publishes to.
#[async_trait::async_trait]
pub trait EventSink: Send + Sync + 'static {
    /// Publishes the batch in order; returns only once every row is delivered to the bus.
    async fn publish(&self, batch: &[OutboxRow]) -> Result<(), BusError>;
}

/// A service's outbox table, in either dialect.
#[async_trait::async_trait]
pub trait Outbox: Send + Sync + 'static {
    /// Publishes up to `limit` of the oldest unpublished rows and marks them; returns how many.
    async fn relay_once(&self, sink: &dyn EventSink, limit: usize) -> Result<usize, BusError>;
    /// Rows not yet published (for metrics and tests).
    async fn pending(&self) -> Result<i64, BusError>;
}

pub async fn enqueue_pg(conn: &mut PgConnection, msg: &OutboxMessage) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO outbox (event_id, stream, payload) VALUES ($1, $2, $3)")
        .bind(msg.event_id)
        .bind(&msg.stream)
        .bind(&msg.payload)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn enqueue_sqlite(
    conn: &mut SqliteConnection,
    msg: &OutboxMessage,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO outbox (event_id, stream, payload) VALUES (?1, ?2, ?3)")
        .bind(msg.event_id.to_string())
        .bind(&msg.stream)
        .bind(&msg.payload)
        .execute(conn)
        .await?;
    Ok(())
}

#[derive(Clone)]
pub struct PgOutbox {
    pool: PgPool,
}

impl PgOutbox {
    pub async fn install(pool: PgPool) -> Result<Self, sqlx::Error> {
        sqlx::raw_sql(PG_DDL).execute(&pool).await?;
        Ok(Self { pool })
    }
}

#[async_trait::async_trait]
impl Outbox for PgOutbox {
    async fn relay_once(&self, sink: &dyn EventSink, limit: usize) -> Result<usize, BusError> {
        let mut tx = self.pool.begin().await?;
        // The mark need not survive a database crash: a lost mark only publishes the rows again,
        // which consumers absorb by event id. Not waiting for its WAL flush spares every
        // published batch an fsync.
        sqlx::query("SET LOCAL synchronous_commit = off")
            .execute(&mut *tx)
            .await?;
        // SKIP LOCKED lets several relay instances share one outbox without publishing a row
        // twice in the common case.
        let rows = sqlx::query(
            "SELECT seq, event_id, stream, payload FROM outbox WHERE published_at IS NULL \
             ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED",
        )
        .bind(limit as i64)
        .fetch_all(&mut *tx)
        .await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let batch: Vec<OutboxRow> = rows
            .iter()
            .map(|r| OutboxRow {
                seq: r.get("seq"),
                event_id: r.get("event_id"),
                stream: r.get("stream"),
                payload: r.get("payload"),
            })
            .collect();
        sink.publish(&batch).await?;
        let seqs: Vec<i64> = batch.iter().map(|r| r.seq).collect();
        sqlx::query("UPDATE outbox SET published_at = now() WHERE seq = ANY($1)")
            .bind(&seqs)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(batch.len())
    }

    async fn pending(&self) -> Result<i64, BusError> {
        Ok(
            sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL")
                .fetch_one(&self.pool)
                .await?,
        )
    }
}

#[derive(Clone)]
pub struct SqliteOutbox {
    pool: SqlitePool,
}

impl SqliteOutbox {
    pub async fn install(pool: SqlitePool) -> Result<Self, sqlx::Error> {
        sqlx::raw_sql(SQLITE_DDL).execute(&pool).await?;
        Ok(Self { pool })
    }
}

#[async_trait::async_trait]
impl Outbox for SqliteOutbox {
    async fn relay_once(&self, sink: &dyn EventSink, limit: usize) -> Result<usize, BusError> {
        // One relay per embedded process: no row locking needed, and holding no transaction
        // while the bus delivers keeps the single connection free for the service.
        let rows = sqlx::query(
            "SELECT seq, event_id, stream, payload FROM outbox WHERE published_at IS NULL \
             ORDER BY seq LIMIT ?1",
        )
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let mut batch = Vec::with_capacity(rows.len());
        for r in &rows {
            let id: String = r.get("event_id");
            batch.push(OutboxRow {
                seq: r.get("seq"),
                event_id: Uuid::parse_str(&id).map_err(|e| BusError::Other(e.to_string()))?,
                stream: r.get("stream"),
                payload: r.get("payload"),
            });
        }
        sink.publish(&batch).await?;
        let last = batch.last().map(|r| r.seq).unwrap_or_default();
        let first = batch.first().map(|r| r.seq).unwrap_or_default();
        sqlx::query(
            "UPDATE outbox SET published_at = strftime('%Y-%m-%dT%H:%M:%fZ','now') \
             WHERE seq BETWEEN ?1 AND ?2 AND published_at IS NULL",
        )
        .bind(first)
        .bind(last)
        .execute(&self.pool)
        .await?;
        Ok(batch.len())
    }

    async fn pending(&self) -> Result<i64, BusError> {
        Ok(
            sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL")
                .fetch_one(&self.pool)
                .await?,
        )
    }
}

/// Moves outbox rows to the bus: woken at once by a commit (the service calls `notify` after
/// each transaction), with a slow poll as a safety net for rows written by other instances.
pub struct Relay {
    pub outbox: Arc<dyn Outbox>,
    pub sink: Arc<dyn EventSink>,
    pub wake: Arc<Notify>,
    pub batch_size: usize,
    pub poll_interval: Duration,
}

impl Relay {
    pub fn new(outbox: Arc<dyn Outbox>, sink: Arc<dyn EventSink>, wake: Arc<Notify>) -> Self {
        Self {
            outbox,
            sink,
            wake,
            batch_size: 256,
            poll_interval: Duration::from_secs(1),
        }
    }

    /// Runs until `shutdown` turns true, then publishes what is left once and returns.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut backoff = Duration::from_millis(50);
        loop {
            match self.drain().await {
                Ok(()) => backoff = Duration::from_millis(50),
                Err(e) => {
                    tracing::warn!(error = %e, "outbox relay failed; retrying");
                    metrics::counter!("outbox_relay_errors_total").increment(1);
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.changed() => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    if !*shutdown.borrow() {
                        continue;
                    }
                }
            }
            if *shutdown.borrow() {
                if let Err(e) = self.drain().await {
                    tracing::warn!(error = %e, "outbox relay could not flush at shutdown");
                }
                return;
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(self.poll_interval) => {}
                _ = shutdown.changed() => {}
            }
        }
    }

    async fn drain(&self) -> Result<(), BusError> {
        loop {
            let n = self
                .outbox
                .relay_once(self.sink.as_ref(), self.batch_size)
                .await?;
            metrics::counter!("outbox_published_total").increment(n as u64);
            if n < self.batch_size {
                return Ok(());
            }
        }
    }
}
