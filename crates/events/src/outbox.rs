//! The transactional outbox: the durable log of a service's events.
//!
//! A service writes its events into `outbox` inside the transaction of the state change, so an
//! acknowledged change always has its event. The relay publishes unpublished rows in order and
//! marks them; a crash between publish and mark publishes the row again, which consumers absorb
//! by applying each event id once. Published rows are kept for a retention period (7 days by
//! default) rather than deleted, because the bus is only the transport: when Redis restarts
//! without its data, or an operator asks for a replay, the rows are marked unpublished again and
//! flow once more.

use crate::BusError;
use chrono::{DateTime, Utc};
use petition_domain::{Clock, SystemClock};
use petition_storage::{Db, Dialect, RowExt, Sql, Tx, micros};
use sqlx::AnyConnection;
use sqlx::migrate::Migrator;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::Mutex;
use uuid::Uuid;

const MIGRATION: &str = include_str!("../migrations/outbox.sql");

/// The outbox and processed-event tables keep their own migration history beside the
/// service's, so each service's migration set stays its own.
pub const MIGRATIONS_TABLE: &str = "_petition_events_migrations";

/// The outbox's migrations for `dialect`: one text, with SQLite's spelling of an
/// auto-incrementing key as the only difference.
pub fn migrator(dialect: Dialect) -> Migrator {
    petition_storage::shared_migrator(dialect, MIGRATIONS_TABLE, "outbox", MIGRATION)
}

/// Brings a service's database up to date, in the one order every host and test uses: the
/// outbox tables, the service's own migrations, then the shared applied-request table (after
/// the service's, which may have created it before it was shared), then the audit log and the
/// recusals.
pub async fn migrate_service(
    db: &petition_storage::Db,
    service: &Migrator,
) -> Result<(), petition_storage::StorageError> {
    db.migrate(&migrator(db.dialect())).await?;
    db.migrate(service).await?;
    db.migrate(&petition_storage::requests::migrator()).await?;
    db.migrate(&petition_audit::migrator(db.dialect())).await?;
    db.migrate(&petition_storage::recusals::migrator(db.dialect()))
        .await
}

#[derive(Debug, Clone, Default)]
pub struct OutboxMessage {
    pub event_id: Uuid,
    /// the stream's name (the Redis key without any prefix)
    pub stream: String,
    pub payload: Vec<u8>,
    /// who made the change, for the audit log; nobody for what a service does on its own
    pub actor: Actor,
}

/// A person or system that made a change: the principal's subject and organ.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Actor {
    pub subject: String,
    pub organ: String,
}

impl OutboxMessage {
    /// The same message, recorded in the audit log as `subject`'s (of `organ`) doing.
    pub fn by(mut self, subject: &str, organ: &str) -> Self {
        self.actor = Actor {
            subject: subject.to_owned(),
            organ: organ.to_owned(),
        };
        self
    }

    /// The audit log's record of this change: the event's type, case and time, and who made it
    /// (the producing service when nobody did).
    fn audit_entry(&self) -> petition_audit::Entry {
        use prost::Message;
        let Ok(envelope) = petition_proto::v1::EventEnvelope::decode(self.payload.as_slice())
        else {
            // never written by a service; recorded as what it is rather than as nothing
            return petition_audit::Entry {
                at: wall_clock(),
                actor: self.actor.subject.clone(),
                organ: self.actor.organ.clone(),
                action: format!("undecodable event on {}", self.stream),
                case_id: String::new(),
                detail: format!("event {}", self.event_id),
            };
        };
        let at = envelope
            .occurred_at
            .and_then(|t| chrono::DateTime::from_timestamp(t.seconds, t.nanos.max(0) as u32))
            .unwrap_or_else(wall_clock);
        // A recusal's subject, and a lift's reason, are what the record is for: the event row
        // that holds them is purged after the retention period, the audit log is kept.
        use petition_proto::v1::event_envelope::Payload;
        let detail = match &envelope.payload {
            Some(Payload::RecusalRecorded(r)) => {
                format!("event {}: {} out of the case", self.event_id, r.subject)
            }
            Some(Payload::RecusalLifted(l)) => format!(
                "event {}: recusal of {} lifted: {}",
                self.event_id, l.subject, l.why
            ),
            _ => format!("event {}", self.event_id),
        };
        petition_audit::Entry {
            at,
            actor: if self.actor.subject.is_empty() {
                envelope.producer
            } else {
                self.actor.subject.clone()
            },
            organ: self.actor.organ.clone(),
            action: envelope.r#type,
            case_id: envelope.case_id,
            detail,
        }
    }
}

#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub seq: i64,
    pub event_id: Uuid,
    pub stream: String,
    pub payload: Vec<u8>,
}

/// A Redis stream entry id, `<ms>-<seq>`; ordered as Redis orders them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EntryId {
    pub ms: u64,
    pub seq: u64,
}

impl std::str::FromStr for EntryId {
    type Err = BusError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BusError::Other(format!("not a stream entry id: {s:?}"));
        let (ms, seq) = s.split_once('-').ok_or_else(bad)?;
        Ok(Self {
            ms: ms.parse().map_err(|_| bad())?,
            seq: seq.parse().map_err(|_| bad())?,
        })
    }
}

impl std::fmt::Display for EntryId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// What a bus said about a batch it was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Published {
    /// Every row is on the bus; with, per row, its entry id where the bus has ids.
    Done(Vec<Option<EntryId>>),
    /// Nothing was published: `stream` no longer holds entries we gave it (Redis restarted
    /// without its data, or lost its last writes). `last` is the last id it still has.
    Lost {
        stream: String,
        last: Option<EntryId>,
    },
}

/// Where the relay publishes to.
#[async_trait::async_trait]
pub trait EventSink: Send + Sync + 'static {
    /// Publishes the batch in order, unless a stream it writes to lost entries: `known` holds,
    /// per stream, the last entry id this relay was given, which the stream must still hold.
    async fn publish(
        &self,
        batch: &[OutboxRow],
        known: &HashMap<String, EntryId>,
    ) -> Result<Published, BusError>;

    /// The first stream of `known` that lost entries, without publishing anything.
    async fn check(&self, known: &HashMap<String, EntryId>) -> Result<Published, BusError> {
        let _ = known;
        Ok(Published::Done(Vec::new()))
    }

    /// Trims `stream` below what every consumer group has acknowledged and below `before`.
    async fn trim(&self, stream: &str, before: DateTime<Utc>) -> Result<u64, BusError> {
        let _ = (stream, before);
        Ok(0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OutboxStats {
    /// rows not yet published
    pub backlog: i64,
    /// when the oldest of them was written
    pub oldest: Option<DateTime<Utc>>,
}

/// The outbox's times are operational — retention, replay, the age of the backlog — and run
/// on the wall clock even when a development run simulates the cases' time, so that moving a
/// simulated clock a month ahead does not purge every row it might still have to republish.
fn wall_clock() -> DateTime<Utc> {
    SystemClock.now()
}

/// How often a relay that does not lead asks again whether it may.
const LEAD_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

struct Leadership {
    conn: Option<AnyConnection>,
    /// a standby asks for the lead again no sooner than this
    next_try: Option<std::time::Instant>,
}

/// A service's outbox table, on either dialect.
#[derive(Clone)]
pub struct Outbox {
    db: Db,
    /// On PostgreSQL, the relay's own connection while it leads (see `relay_once`).
    leader: Arc<Mutex<Leadership>>,
}

impl Outbox {
    pub fn new(db: Db) -> Self {
        Self {
            db,
            leader: Arc::new(Mutex::new(Leadership {
                conn: None,
                next_try: None,
            })),
        }
    }

    /// Writes `msg` in the caller's transaction.
    pub async fn enqueue(tx: &mut Tx, msg: &OutboxMessage) -> Result<(), sqlx::Error> {
        let at = wall_clock();
        sqlx::query(
            "INSERT INTO outbox (event_id, stream, payload, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(msg.event_id.to_string())
        .bind(&msg.stream)
        .bind(&msg.payload)
        .bind(micros(at))
        .execute(&mut **tx)
        .await?;
        // every change a service makes writes an event: its audit entry goes with it
        petition_audit::append(tx, &[msg.audit_entry()]).await
    }

    /// Writes every message of `msgs` in the caller's transaction, many rows per statement: for
    /// a change of many cases at once (the supervision engine firing a batch).
    pub async fn enqueue_all(tx: &mut Tx, msgs: &[OutboxMessage]) -> Result<(), sqlx::Error> {
        let at = micros(wall_clock());
        // 4 parameters a row, well under either dialect's limit per statement.
        for chunk in msgs.chunks(500) {
            let mut q =
                Sql::new("INSERT INTO outbox (event_id, stream, payload, created_at) VALUES ");
            for (i, m) in chunk.iter().enumerate() {
                q.push(if i == 0 { "(" } else { ", (" })
                    .bind(m.event_id.to_string())
                    .push(", ")
                    .bind(m.stream.clone())
                    .push(", ")
                    .bind(m.payload.clone())
                    .push(", ")
                    .bind(at)
                    .push(")");
            }
            q.build().execute(&mut **tx).await?;
        }
        let entries: Vec<_> = msgs.iter().map(OutboxMessage::audit_entry).collect();
        petition_audit::append(tx, &entries).await
    }

    /// Publishes up to `limit` of the oldest unpublished rows and marks them; returns how many
    /// were published, or the stream that lost entries (nothing is marked then).
    pub async fn relay_once(
        &self,
        sink: &dyn EventSink,
        limit: usize,
        known: &mut HashMap<String, EntryId>,
    ) -> Result<Published, BusError> {
        const SELECT: &str = "SELECT seq, event_id, stream, payload FROM outbox \
                              WHERE published_at IS NULL ORDER BY seq LIMIT $1";
        match self.db.dialect() {
            Dialect::Postgres => {
                let mut leader = self.leader.lock().await;
                if leader.conn.is_none() {
                    let now = std::time::Instant::now();
                    if leader.next_try.is_some_and(|t| now < t) {
                        return Ok(Published::Done(Vec::new()));
                    }
                    leader.next_try = Some(now + LEAD_RETRY);
                    match self.lead().await? {
                        Some(conn) => {
                            // What the streams must hold is what the outbox says was published
                            // last, whoever published it: the check that finds a stream Redis
                            // lost starts from there.
                            *known = self.last_published().await?;
                            leader.conn = Some(conn);
                        }
                        None => return Ok(Published::Done(Vec::new())),
                    }
                }
                let Some(conn) = leader.conn.as_mut() else {
                    return Ok(Published::Done(Vec::new()));
                };
                let result = async {
                    let rows = sqlx::query(SELECT)
                        .bind(limit as i64)
                        .fetch_all(&mut *conn)
                        .await?;
                    let batch = decode_rows(&rows)?;
                    if batch.is_empty() {
                        return Ok(Published::Done(Vec::new()));
                    }
                    let outcome = sink.publish(&batch, known).await?;
                    if let Published::Done(ids) = &outcome {
                        self.mark(&batch, ids, known, &mut *conn).await?;
                    }
                    Ok(outcome)
                }
                .await;
                if let Err(BusError::Database(_)) = &result {
                    // The connection may be what failed; the next round connects afresh and
                    // takes the lead again (the lock went with the session). A failure of the
                    // bus keeps the lead, and what the relay knows of the streams with it.
                    leader.conn = None;
                    leader.next_try = None;
                }
                result
            }
            Dialect::Sqlite => {
                // One relay per embedded process: no row locking needed, and holding no
                // transaction while the bus delivers keeps the single connection free for the
                // service (an in-process consumer writes through it).
                let rows = sqlx::query(SELECT)
                    .bind(limit as i64)
                    .fetch_all(self.db.pool())
                    .await?;
                let batch = decode_rows(&rows)?;
                if batch.is_empty() {
                    return Ok(Published::Done(Vec::new()));
                }
                let outcome = sink.publish(&batch, known).await?;
                if let Published::Done(ids) = &outcome {
                    let mut tx = self.db.begin().await?;
                    self.mark(&batch, ids, known, &mut tx).await?;
                    tx.commit().await?;
                }
                Ok(outcome)
            }
        }
    }

    /// Takes the lead of this outbox's relays: one relay publishes at a time, on a connection
    /// of its own that holds a session advisory lock (released by PostgreSQL if the process
    /// dies, so a standby takes over within its poll). Leading, the relay reads and marks
    /// rows with two plain statements instead of a locking transaction of four round trips,
    /// and its marks skip the WAL flush: a lost mark only publishes the rows again, which
    /// consumers absorb by event id. The connection leaves the pool (`detach`) once it leads,
    /// so that this session setting never reaches a service's own writes. `None`: another
    /// relay leads; this one asks again after `LEAD_RETRY`, and its own commits go out with
    /// the leader's next poll.
    async fn lead(&self) -> Result<Option<AnyConnection>, BusError> {
        let mut conn = self.db.pool().acquire().await?;
        let led: bool = sqlx::query_scalar(
            "SELECT pg_try_advisory_lock(hashtext('petition outbox relay ' || current_schema()))",
        )
        .fetch_one(&mut *conn)
        .await?;
        if !led {
            // Back to the pool as it came: it holds no lock and no setting.
            return Ok(None);
        }
        let mut conn = conn.detach();
        sqlx::raw_sql("SET synchronous_commit = off")
            .execute(&mut conn)
            .await?;
        Ok(Some(conn))
    }

    /// Marks a published batch, and remembers per stream the last entry id it reached.
    async fn mark(
        &self,
        batch: &[OutboxRow],
        ids: &[Option<EntryId>],
        known: &mut HashMap<String, EntryId>,
        conn: &mut AnyConnection,
    ) -> Result<(), BusError> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut per_stream: HashMap<&str, (Vec<i64>, Option<EntryId>)> = HashMap::new();
        for (row, id) in batch.iter().zip(ids.iter().chain(std::iter::repeat(&None))) {
            let e = per_stream.entry(row.stream.as_str()).or_default();
            e.0.push(row.seq);
            e.1 = e.1.max(*id);
        }
        let now = micros(wall_clock());
        for (stream, (seqs, last)) in per_stream {
            let mut q = Sql::new("UPDATE outbox SET published_at = ");
            q.bind(now)
                .push(", entry_ms = ")
                .bind(last.map(|l| l.ms as i64))
                .push(", entry_seq = ")
                .bind(last.map(|l| l.seq as i64))
                .push(" WHERE seq IN (")
                .bind_list(seqs)
                .push(")");
            q.build().execute(&mut *conn).await?;
            if let Some(last) = last {
                known.insert(stream.to_owned(), last);
            }
        }
        Ok(())
    }

    /// Per stream, the last entry id published from this outbox (what the stream must still
    /// hold), as the relay starts.
    pub async fn last_published(&self) -> Result<HashMap<String, EntryId>, BusError> {
        let rows = sqlx::query(
            "SELECT stream, MAX(entry_ms) AS entry_ms FROM outbox \
             WHERE entry_ms IS NOT NULL GROUP BY stream",
        )
        .fetch_all(self.db.pool())
        .await?;
        let mut out = HashMap::new();
        for r in rows {
            let stream = r.text("stream")?;
            let ms = r.int("entry_ms")?;
            let seq: i64 = sqlx::query_scalar(
                "SELECT MAX(entry_seq) FROM outbox WHERE stream = $1 AND entry_ms = $2",
            )
            .bind(&stream)
            .bind(ms)
            .fetch_one(self.db.pool())
            .await?;
            out.insert(
                stream,
                EntryId {
                    ms: ms as u64,
                    seq: seq as u64,
                },
            );
        }
        Ok(out)
    }

    /// Marks unpublished again the retained rows of `stream` that a bus lost: those published
    /// at or after `last` (or every retained row of the stream when it is gone whole). Returns
    /// how many will flow again.
    pub async fn republish_lost(
        &self,
        stream: &str,
        last: Option<EntryId>,
    ) -> Result<u64, BusError> {
        let (ms, seq) = last.map_or((-1, -1), |l| (l.ms as i64, l.seq as i64));
        // A batch is marked with the id it ended at, so a batch cut by the loss is republished
        // whole; consumers absorb the duplicates.
        let r = sqlx::query(
            "UPDATE outbox SET published_at = NULL, entry_ms = NULL, entry_seq = NULL \
             WHERE stream = $1 AND published_at IS NOT NULL \
               AND (entry_ms IS NULL OR entry_ms > $2 OR (entry_ms = $2 AND entry_seq > $3))",
        )
        .bind(stream)
        .bind(ms)
        .bind(seq)
        .execute(self.db.pool())
        .await?;
        Ok(r.rows_affected())
    }

    /// Marks every retained row of `stream` written at or after `since` for publishing again
    /// (the operator's replay). Returns how many.
    pub async fn replay(&self, stream: &str, since: DateTime<Utc>) -> Result<u64, BusError> {
        let r = sqlx::query(
            "UPDATE outbox SET published_at = NULL, entry_ms = NULL, entry_seq = NULL \
             WHERE stream = $1 AND published_at IS NOT NULL AND created_at >= $2",
        )
        .bind(stream)
        .bind(micros(since))
        .execute(self.db.pool())
        .await?;
        Ok(r.rows_affected())
    }

    /// Deletes rows published before `before`, and processed-event marks older than
    /// `marks_before`. Returns how many outbox rows went.
    pub async fn purge(
        &self,
        before: DateTime<Utc>,
        marks_before: DateTime<Utc>,
    ) -> Result<u64, BusError> {
        let r =
            sqlx::query("DELETE FROM outbox WHERE published_at IS NOT NULL AND published_at < $1")
                .bind(micros(before))
                .execute(self.db.pool())
                .await?;
        sqlx::query("DELETE FROM processed_events WHERE processed_at < $1")
            .bind(micros(marks_before))
            .execute(self.db.pool())
            .await?;
        Ok(r.rows_affected())
    }

    /// Rows not yet published and the age of the oldest, for metrics and tests.
    pub async fn stats(&self) -> Result<OutboxStats, BusError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS backlog, MIN(created_at) AS oldest FROM outbox \
             WHERE published_at IS NULL",
        )
        .fetch_one(self.db.pool())
        .await?;
        Ok(OutboxStats {
            backlog: row.int("backlog")?,
            oldest: row.opt_time("oldest")?,
        })
    }

    /// Rows not yet published.
    pub async fn pending(&self) -> Result<i64, BusError> {
        Ok(self.stats().await?.backlog)
    }

    /// The outbox's notion of now (the wall clock).
    pub fn now(&self) -> DateTime<Utc> {
        wall_clock()
    }
}

fn decode_rows(rows: &[sqlx::any::AnyRow]) -> Result<Vec<OutboxRow>, BusError> {
    rows.iter()
        .map(|r| {
            let id = r.text("event_id")?;
            Ok(OutboxRow {
                seq: r.int("seq")?,
                event_id: Uuid::parse_str(&id)
                    .map_err(|e| BusError::Other(format!("outbox event_id {id:?}: {e}")))?,
                stream: r.text("stream")?,
                payload: r.bytes("payload")?,
            })
        })
        .collect()
}
