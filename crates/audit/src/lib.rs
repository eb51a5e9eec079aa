//! The audit log each service keeps in its own schema: who changed what, and who saw whose
//! personal data, for at least three years (PIPL, DOMAIN.md §9).
//!
//! An entry is written in the transaction of the change it records, into `audit_pending`, so
//! that the change and its record commit or vanish together and no business transaction waits
//! on another. A chainer (one per schema; several replicas take turns under a lock) then moves
//! pending entries into `audit_log` in the order it finds them, giving each a sequence number
//! and a hash over its content and the previous entry's hash. Altering, removing or inserting
//! an entry breaks the chain at that entry; rewriting the whole chain consistently is caught by
//! the anchors — the head's sequence number and hash, recorded every few minutes in
//! `audit_anchors` and in the service's log, which operators ship off the machine.

use chrono::{DateTime, Utc};
use petition_storage::{Db, Dialect, RowExt, Sql, Tx, micros};
use sha2::{Digest, Sha256};
use sqlx::migrate::Migrator;
use std::collections::BTreeMap;
use std::time::Duration;

/// Its own migrations table, so that any service's schema may hold the log.
pub const MIGRATIONS_TABLE: &str = "_petition_audit_migrations";

const MIGRATION: &str = "
CREATE TABLE audit_pending (
    id       BIGSERIAL PRIMARY KEY,
    at       BIGINT NOT NULL,
    actor    TEXT NOT NULL,
    organ    TEXT NOT NULL,
    action   TEXT NOT NULL,
    case_id  TEXT NOT NULL,
    detail   TEXT NOT NULL
);
CREATE TABLE audit_log (
    seq       BIGINT PRIMARY KEY,
    at        BIGINT NOT NULL,
    actor     TEXT NOT NULL,
    organ     TEXT NOT NULL,
    action    TEXT NOT NULL,
    case_id   TEXT NOT NULL,
    detail    TEXT NOT NULL,
    prev_hash BYTEA NOT NULL,
    hash      BYTEA NOT NULL
);
CREATE INDEX audit_log_by_case ON audit_log (case_id, seq);
CREATE INDEX audit_log_by_actor ON audit_log (actor, seq);
CREATE TABLE audit_anchors (
    seq  BIGINT PRIMARY KEY,
    hash BYTEA NOT NULL,
    at   BIGINT NOT NULL
);";

/// The audit tables for `dialect`: one text, SQLite spelling its auto-incrementing key.
pub fn migrator(dialect: Dialect) -> Migrator {
    petition_storage::shared_migrator(dialect, MIGRATIONS_TABLE, "audit log", MIGRATION)
}

/// What happened, by whom, to which case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub at: DateTime<Utc>,
    /// the principal's subject (`clerk@pingcheng.bureau`, `datong.12345`), or the service
    /// itself for what it does on its own (supervision's urging)
    pub actor: String,
    /// the principal's organ; empty for a service
    pub organ: String,
    /// an event type (`petition.registered`) or a read that is audited (`personal data revealed`)
    pub action: String,
    pub case_id: String,
    /// the event id, or the purpose of a read
    pub detail: String,
}

/// An entry in the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub seq: i64,
    pub entry: Entry,
    pub prev_hash: Vec<u8>,
    pub hash: Vec<u8>,
}

/// The hash before the first entry.
pub const GENESIS: [u8; 32] = [0; 32];

/// The hash of entry `seq` after `prev`: every field length-prefixed, so that no two entries
/// encode alike.
pub fn link_hash(seq: i64, prev: &[u8], e: &Entry) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(seq.to_be_bytes());
    h.update(prev);
    h.update(micros(e.at).to_be_bytes());
    for field in [&e.actor, &e.organ, &e.action, &e.case_id, &e.detail] {
        h.update((field.len() as u64).to_be_bytes());
        h.update(field.as_bytes());
    }
    h.finalize().to_vec()
}

/// Set once, by a cost benchmark's baseline process only: see [`switch_off_for_benchmarks`].
static SWITCHED_OFF: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Stops this process writing audit entries, for good. Only the baseline of the security cost
/// benchmark (`register-cost`) calls it, to measure what the log costs; no binary that serves
/// petitions has a flag or setting that reaches it.
pub fn switch_off_for_benchmarks() {
    tracing::warn!("BENCHMARK BASELINE: this process keeps no audit log");
    SWITCHED_OFF.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Writes `entries` in the caller's transaction; the chainer links them after it commits.
pub async fn append(tx: &mut Tx, entries: &[Entry]) -> Result<(), sqlx::Error> {
    if SWITCHED_OFF.load(std::sync::atomic::Ordering::Relaxed) {
        return Ok(());
    }
    // 6 parameters a row, well under either dialect's limit per statement
    for chunk in entries.chunks(500) {
        let mut q = Sql::new(
            "INSERT INTO audit_pending (at, actor, organ, action, case_id, detail) VALUES ",
        );
        for (i, e) in chunk.iter().enumerate() {
            q.push(if i == 0 { "(" } else { ", (" })
                .bind(micros(e.at))
                .push(", ")
                .bind(e.actor.clone())
                .push(", ")
                .bind(e.organ.clone())
                .push(", ")
                .bind(e.action.clone())
                .push(", ")
                .bind(e.case_id.clone())
                .push(", ")
                .bind(e.detail.clone())
                .push(")");
        }
        q.build().execute(&mut **tx).await?;
    }
    Ok(())
}

/// Writes `entry` in a transaction of its own: for a read that is audited, before what was
/// read is answered.
pub async fn record(db: &Db, entry: &Entry) -> Result<(), sqlx::Error> {
    let mut tx = db.begin().await?;
    append(&mut tx, std::slice::from_ref(entry)).await?;
    tx.commit().await
}

fn entry_from(r: &sqlx::any::AnyRow) -> Result<Entry, sqlx::Error> {
    let corrupt = |e: petition_storage::Corrupt| sqlx::Error::Decode(Box::new(e));
    Ok(Entry {
        at: r.time("at").map_err(corrupt)?,
        actor: r.text("actor").map_err(corrupt)?,
        organ: r.text("organ").map_err(corrupt)?,
        action: r.text("action").map_err(corrupt)?,
        case_id: r.text("case_id").map_err(corrupt)?,
        detail: r.text("detail").map_err(corrupt)?,
    })
}

fn link_from(r: &sqlx::any::AnyRow) -> Result<Link, sqlx::Error> {
    let corrupt = |e: petition_storage::Corrupt| sqlx::Error::Decode(Box::new(e));
    Ok(Link {
        seq: r.int("seq").map_err(corrupt)?,
        entry: entry_from(r)?,
        prev_hash: r.bytes("prev_hash").map_err(corrupt)?,
        hash: r.bytes("hash").map_err(corrupt)?,
    })
}

/// Links up to `limit` pending entries onto the chain; returns how many.
pub async fn chain_pending(db: &Db, limit: i64) -> Result<usize, sqlx::Error> {
    let mut tx = db.begin().await?;
    if db.dialect() == Dialect::Postgres {
        // One chainer at a time in this schema, whichever replica it runs in; the lock goes
        // with the transaction. (SQLite has one writer at a time anyway.)
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.audit_log'))")
            .execute(&mut *tx)
            .await?;
    }
    let pending = sqlx::query(
        "SELECT id, at, actor, organ, action, case_id, detail FROM audit_pending \
         ORDER BY id LIMIT $1",
    )
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?;
    if pending.is_empty() {
        return Ok(0);
    }
    let head = sqlx::query("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
        .fetch_optional(&mut *tx)
        .await?;
    let (mut seq, mut prev) = match head {
        Some(r) => (
            r.int("seq").map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
            r.bytes("hash")
                .map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        ),
        None => (0, GENESIS.to_vec()),
    };
    let mut ids = Vec::with_capacity(pending.len());
    for chunk in pending.chunks(400) {
        let mut q = Sql::new(
            "INSERT INTO audit_log (seq, at, actor, organ, action, case_id, detail, prev_hash, hash) VALUES ",
        );
        for (i, r) in chunk.iter().enumerate() {
            ids.push(r.int("id").map_err(|e| sqlx::Error::Decode(Box::new(e)))?);
            let e = entry_from(r)?;
            seq += 1;
            let hash = link_hash(seq, &prev, &e);
            q.push(if i == 0 { "(" } else { ", (" })
                .bind(seq)
                .push(", ")
                .bind(micros(e.at))
                .push(", ")
                .bind(e.actor)
                .push(", ")
                .bind(e.organ)
                .push(", ")
                .bind(e.action)
                .push(", ")
                .bind(e.case_id)
                .push(", ")
                .bind(e.detail)
                .push(", ")
                .bind(prev.clone())
                .push(", ")
                .bind(hash.clone())
                .push(")");
            prev = hash;
        }
        q.build().execute(&mut *tx).await?;
    }
    for chunk in ids.chunks(500) {
        let mut q = Sql::new("DELETE FROM audit_pending WHERE id IN (");
        q.bind_list(chunk.iter().copied()).push(")");
        q.build().execute(&mut *tx).await?;
    }
    tx.commit().await?;
    metrics::counter!("audit_entries_chained_total").increment(ids.len() as u64);
    Ok(ids.len())
}

/// Records the chain's head as an anchor, if it moved since the last one; returns it.
pub async fn anchor(db: &Db, now: DateTime<Utc>) -> Result<Option<(i64, Vec<u8>)>, sqlx::Error> {
    let head = sqlx::query("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
        .fetch_optional(db.pool())
        .await?;
    let Some(head) = head else { return Ok(None) };
    let decode = |e: petition_storage::Corrupt| sqlx::Error::Decode(Box::new(e));
    let (seq, hash) = (
        head.int("seq").map_err(decode)?,
        head.bytes("hash").map_err(decode)?,
    );
    let done = sqlx::query("INSERT INTO audit_anchors (seq, hash, at) VALUES ($1, $2, $3) ON CONFLICT (seq) DO NOTHING")
        .bind(seq)
        .bind(hash.clone())
        .bind(micros(now))
        .execute(db.pool())
        .await?;
    Ok((done.rows_affected() > 0).then_some((seq, hash)))
}

/// Lower-case hex, for logs and answers.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Entries linked between anchors at most, however busy the service.
pub const ANCHOR_EVERY_ENTRIES: usize = 1000;

async fn anchor_and_log(db: &Db, schema: &'static str) {
    match anchor(db, Utc::now()).await {
        Ok(Some((seq, hash))) => tracing::info!(
            target: "audit",
            schema,
            seq,
            hash = %hex(&hash),
            "audit chain anchored"
        ),
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, schema, "audit anchor not written"),
    }
}

/// Links pending entries every `every`, and anchors the head — at start, every `anchor_every`
/// or every [`ANCHOR_EVERY_ENTRIES`] entries, whichever comes first, and at the stop — until
/// `stop`. Each anchor is also logged (`target: audit`): shipped off the machine, those lines
/// are what `petition audit verify --expect` holds a rewritten chain against.
pub async fn run_chainer(
    db: Db,
    schema: &'static str,
    every: Duration,
    anchor_every: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    const BATCH: usize = 2000;
    let _ = chain_pending(&db, i64::MAX).await;
    anchor_and_log(&db, schema).await;
    let mut anchored = tokio::time::Instant::now();
    let mut since_anchor = 0usize;
    loop {
        let linked = match chain_pending(&db, BATCH as i64).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, schema, "audit chainer could not link pending entries");
                0
            }
        };
        since_anchor += linked;
        if since_anchor >= ANCHOR_EVERY_ENTRIES || anchored.elapsed() >= anchor_every {
            anchor_and_log(&db, schema).await;
            anchored = tokio::time::Instant::now();
            since_anchor = 0;
        }
        if linked == BATCH {
            // more may be waiting: link them before sleeping
            continue;
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => {
                // what committed before the stop is linked, and anchored, before the process ends
                let _ = chain_pending(&db, i64::MAX).await;
                anchor_and_log(&db, schema).await;
                return;
            }
        }
    }
}

/// Where a chain first fails to hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    pub seq: i64,
    pub reason: String,
}

/// What a walk of a chain found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Verified {
    /// entries walked
    pub entries: u64,
    /// entries written but not yet linked
    pub pending: u64,
    /// the last entry's sequence number and hash
    pub head: Option<(i64, Vec<u8>)>,
    pub anchors: u64,
    pub broken: Option<Broken>,
}

/// Walks the chain from its first entry, recomputing every hash and checking every anchor;
/// stops at the first broken link.
pub async fn verify(db: &Db) -> Result<Verified, sqlx::Error> {
    verify_against(db, &[]).await
}

/// [`verify`], holding the chain also to anchors kept elsewhere (`(seq, hash)` from the log
/// lines shipped off the machine). The chain and its anchors in the database can both be
/// rewritten by whoever can write the database; these cannot.
pub async fn verify_against(db: &Db, expected: &[(i64, Vec<u8>)]) -> Result<Verified, sqlx::Error> {
    let decode = |e: petition_storage::Corrupt| sqlx::Error::Decode(Box::new(e));
    let mut anchors = BTreeMap::new();
    for r in sqlx::query("SELECT seq, hash, at FROM audit_anchors ORDER BY seq")
        .fetch_all(db.pool())
        .await?
    {
        let at = r.time("at").map_err(decode)?;
        anchors.insert(
            r.int("seq").map_err(decode)?,
            (
                r.bytes("hash").map_err(decode)?,
                format!("the anchor recorded at {}", at.to_rfc3339()),
            ),
        );
    }
    for (seq, hash) in expected {
        // the outside copy wins over whatever the database says of the same entry
        anchors.insert(
            *seq,
            (hash.clone(), "the anchor given to verify".to_owned()),
        );
    }
    let pending = sqlx::query("SELECT COUNT(*) AS n FROM audit_pending")
        .fetch_one(db.pool())
        .await?
        .int("n")
        .map_err(decode)?;
    let mut v = Verified {
        pending: pending as u64,
        anchors: anchors.len() as u64,
        ..Verified::default()
    };
    let mut expected = 1i64;
    let mut prev = GENESIS.to_vec();
    loop {
        let page = sqlx::query(
            "SELECT seq, at, actor, organ, action, case_id, detail, prev_hash, hash \
             FROM audit_log WHERE seq >= $1 ORDER BY seq LIMIT 2000",
        )
        .bind(expected)
        .fetch_all(db.pool())
        .await?;
        if page.is_empty() {
            break;
        }
        for r in &page {
            let l = link_from(r)?;
            let broken = |reason: String| Some(Broken { seq: l.seq, reason });
            v.broken = if l.seq != expected {
                Some(Broken {
                    seq: expected,
                    reason: format!("entry {expected} is missing (the next is {})", l.seq),
                })
            } else if l.prev_hash != prev {
                broken(format!(
                    "entry {} does not follow entry {}: one was removed, inserted or rewritten",
                    l.seq,
                    l.seq - 1
                ))
            } else if link_hash(l.seq, &prev, &l.entry) != l.hash {
                broken(format!(
                    "entry {} was altered after it was written (its hash does not match its content)",
                    l.seq
                ))
            } else if let Some((hash, which)) = anchors.get(&l.seq).filter(|(h, _)| *h != l.hash) {
                broken(format!(
                    "entry {} differs from {which} (hash {}): the chain was rewritten",
                    l.seq,
                    hex(hash)
                ))
            } else {
                None
            };
            if v.broken.is_some() {
                return Ok(v);
            }
            v.entries += 1;
            v.head = Some((l.seq, l.hash.clone()));
            prev = l.hash;
            expected += 1;
        }
    }
    let last = expected - 1;
    if let Some((&seq, (_, which))) = anchors.range(last + 1..).next() {
        v.broken = Some(Broken {
            seq: last + 1,
            reason: format!(
                "the chain ends at entry {last}, but {which} names entry {seq}: entries were removed"
            ),
        });
    }
    Ok(v)
}

/// Which entries a query wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    Case(String),
    Actor(String),
}

/// Entries of `filter` after sequence number `after`, oldest first, `limit` of them.
pub async fn list(
    db: &Db,
    filter: &Filter,
    after: i64,
    limit: i64,
) -> Result<Vec<Link>, sqlx::Error> {
    let (column, value) = match filter {
        Filter::Case(c) => ("case_id", c),
        Filter::Actor(a) => ("actor", a),
    };
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT seq, at, actor, organ, action, case_id, detail, prev_hash, hash FROM audit_log \
         WHERE {column} = $1 AND seq > $2 ORDER BY seq LIMIT $3"
    )))
    .bind(value.clone())
    .bind(after)
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(link_from).collect()
}
