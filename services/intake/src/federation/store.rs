//! The exchange tables in intake's database: the exchanges of cases sent to peers, the feed of
//! steps of cases peers sent us, and the cursor of each peer's feed applied here.

use crate::store::{IntakeStore, StoreError};
use chrono::{DateTime, Utc};
use petition_events::{Outbox, Stream};
use petition_federation::{ExchangeStatus, Federation};
use petition_grpc::convert::{from_ts, ts};
use petition_proto::v1 as pb;
use petition_storage::{Corrupt, Db, Order, RowExt, Sql, Tx, micros};
use prost::Message;
use std::sync::Arc;
use std::time::Duration;

/// The metadata key in which an ALREADY_EXISTS answer names the case that holds the key, for
/// a caller who may see it: a peer lists the conflict with both versions.
pub const EXISTING_CASE: &str = "petition-existing-case";

/// Intake's settings for exchanges.
#[derive(Debug, Clone)]
pub struct Exchanges {
    pub federation: Arc<Federation>,
    pub retry_base: Duration,
    pub retry_cap: Duration,
}

impl Default for Exchanges {
    fn default() -> Self {
        Self {
            federation: Arc::new(Federation::default()),
            retry_base: Duration::from_millis(500),
            retry_cap: Duration::from_secs(300),
        }
    }
}

/// One exchange row.
#[derive(Debug, Clone)]
pub struct ExchangeRow {
    pub case_id: String,
    pub case_number: String,
    pub peer: String,
    pub organ: String,
    pub routed_by: String,
    pub accused_organ: Option<String>,
    pub upstream: pb::Upstream,
    pub status: ExchangeStatus,
    pub attempts: i64,
    pub next_attempt_at: DateTime<Utc>,
    pub reason: String,
    pub peer_case_number: Option<String>,
    pub ours: Option<pb::ExchangeVersion>,
    pub theirs: Option<pb::ExchangeVersion>,
    pub steps_received: i64,
    pub last_step_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const EXCHANGE_COLUMNS: &str = "case_id, case_number, peer, organ, routed_by, accused_organ, \
    upstream, status, attempts, next_attempt_at, reason, peer_case_number, ours, theirs, \
    steps_received, last_step_at, created_at, updated_at";

fn decode<M: Message + Default>(
    column: &'static str,
    bytes: Option<Vec<u8>>,
) -> Result<Option<M>, Corrupt> {
    bytes
        .map(|b| {
            M::decode(&b[..]).map_err(|e| Corrupt {
                column,
                reason: e.to_string(),
            })
        })
        .transpose()
}

fn exchange_from_row(r: &sqlx::any::AnyRow) -> Result<ExchangeRow, StoreError> {
    Ok(ExchangeRow {
        case_id: r.text("case_id")?,
        case_number: r.text("case_number")?,
        peer: r.text("peer")?,
        organ: r.text("organ")?,
        routed_by: r.text("routed_by")?,
        accused_organ: r.opt_text("accused_organ")?,
        upstream: decode("upstream", Some(r.bytes("upstream")?))?.unwrap_or_default(),
        status: r.parsed("status")?,
        attempts: r.int("attempts")?,
        next_attempt_at: r.time("next_attempt_at")?,
        reason: r.text("reason")?,
        peer_case_number: r.opt_text("peer_case_number")?,
        ours: decode("ours", r.opt_bytes("ours")?)?,
        theirs: decode("theirs", r.opt_bytes("theirs")?)?,
        steps_received: r.int("steps_received")?,
        last_step_at: r.opt_time("last_step_at")?,
        created_at: r.time("created_at")?,
        updated_at: r.time("updated_at")?,
    })
}

impl ExchangeRow {
    pub fn to_pb(&self) -> pb::Exchange {
        let status = match self.status {
            ExchangeStatus::Pending => pb::ExchangeStatus::Pending,
            ExchangeStatus::Retrying => pb::ExchangeStatus::Retrying,
            ExchangeStatus::Done => pb::ExchangeStatus::Done,
            ExchangeStatus::Conflict => pb::ExchangeStatus::Conflict,
            ExchangeStatus::Failed => pb::ExchangeStatus::Failed,
        };
        pb::Exchange {
            case_id: self.case_id.clone(),
            case_number: self.case_number.clone(),
            peer: self.peer.clone(),
            organ: self.organ.clone(),
            status: status as i32,
            attempts: self.attempts.try_into().unwrap_or(u32::MAX),
            next_attempt_at: self.status.is_open().then(|| ts(self.next_attempt_at)),
            reason: self.reason.clone(),
            peer_case_number: self.peer_case_number.clone().unwrap_or_default(),
            created_at: Some(ts(self.created_at)),
            updated_at: Some(ts(self.updated_at)),
            ours: self.ours.clone(),
            theirs: self.theirs.clone(),
            steps_received: self.steps_received.try_into().unwrap_or_default(),
            last_step_at: self.last_step_at.map(ts),
        }
    }
}

/// The status filter of `ListExchanges`.
pub fn status_from_pb(v: i32) -> Result<Option<ExchangeStatus>, tonic::Status> {
    match pb::ExchangeStatus::try_from(v) {
        Ok(pb::ExchangeStatus::Unspecified) => Ok(None),
        Ok(pb::ExchangeStatus::Pending) => Ok(Some(ExchangeStatus::Pending)),
        Ok(pb::ExchangeStatus::Retrying) => Ok(Some(ExchangeStatus::Retrying)),
        Ok(pb::ExchangeStatus::Done) => Ok(Some(ExchangeStatus::Done)),
        Ok(pb::ExchangeStatus::Conflict) => Ok(Some(ExchangeStatus::Conflict)),
        Ok(pb::ExchangeStatus::Failed) => Ok(Some(ExchangeStatus::Failed)),
        Err(_) => Err(tonic::Status::invalid_argument(format!(
            "status: unknown exchange status {v}"
        ))),
    }
}

/// Who may see which exchanges, and which page.
pub struct ExchangeFilter {
    pub status: Option<ExchangeStatus>,
    pub peer: Option<String>,
    /// `None`: every routing bureau
    pub routed_by: Option<Vec<String>>,
    /// never an accusation against one of these organs (Art. 30 ¶3)
    pub hidden_accused: Vec<String>,
    /// never a case this person is out of (回避, Art. 28 ¶3)
    pub recused: Option<String>,
}

/// The exchange tables, in intake's database.
#[derive(Clone)]
pub struct ExchangeStore {
    db: Db,
}

impl ExchangeStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// Opens the exchange of a case routed to a peer's organ, in the transaction that records
    /// the routing step; a case already on its way keeps its exchange (a redelivered event).
    pub async fn open(
        tx: &mut Tx,
        case_id: &str,
        peer: &str,
        routed: &pb::PetitionRouted,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let upstream = pb::Upstream {
            case_number: routed.case_number.clone(),
            organ: routed.organ.clone(),
            assigned: routed.mode == pb::HandlingMode::Assign as i32,
            report_due: routed.report_due,
            routed_by: routed.forwarding_bureau.clone(),
            routed_at: routed.routed_at,
            leapfrog: false,
        };
        let done = sqlx::query(
            "INSERT INTO exchanges (case_id, case_number, peer, organ, routed_by, accused_organ, \
             upstream, status, attempts, next_attempt_at, reason, steps_received, created_at, \
             updated_at) \
             SELECT $1, $2, $3, $4, $5, accused_organ, $6, $7, 0, $8, '', 0, $8, $8 \
             FROM cases WHERE id = $1 ON CONFLICT DO NOTHING",
        )
        .bind(case_id)
        .bind(&routed.case_number)
        .bind(peer)
        .bind(&routed.organ)
        .bind(&routed.forwarding_bureau)
        .bind(upstream.encode_to_vec())
        .bind(ExchangeStatus::Pending.as_str())
        .bind(micros(now))
        .execute(&mut **tx)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The exchanges due for an attempt, oldest due first.
    pub async fn due(
        &self,
        now: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<ExchangeRow>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {EXCHANGE_COLUMNS} FROM exchanges WHERE status IN ('pending', 'retrying') \
             AND next_attempt_at <= $1 ORDER BY next_attempt_at, case_id LIMIT $2"
        )))
        .bind(micros(now))
        .bind(limit)
        .fetch_all(self.db.pool())
        .await?;
        rows.iter().map(exchange_from_row).collect()
    }

    /// When the next open exchange falls due, if any.
    pub async fn next_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let v: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(next_attempt_at) FROM exchanges WHERE status IN ('pending', 'retrying')",
        )
        .fetch_one(self.db.pool())
        .await?;
        Ok(v.and_then(DateTime::from_timestamp_micros))
    }

    pub async fn get(&self, case_id: &str) -> Result<Option<ExchangeRow>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {EXCHANGE_COLUMNS} FROM exchanges WHERE case_id = $1"
        )))
        .bind(case_id)
        .fetch_optional(self.db.pool())
        .await?;
        row.as_ref().map(exchange_from_row).transpose()
    }

    /// Records an attempt's result over the row as it was read: `attempts` guards against a
    /// second deliverer (another replica) having recorded one meanwhile.
    pub async fn record(&self, row: &ExchangeRow, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE exchanges SET status = $1, attempts = $2, next_attempt_at = $3, reason = $4, \
             peer_case_number = COALESCE($5, peer_case_number), ours = $6, theirs = $7, \
             updated_at = $8 WHERE case_id = $9 AND attempts = $10 AND status = $11",
        )
        .bind(row.status.as_str())
        .bind(row.attempts)
        .bind(micros(row.next_attempt_at))
        .bind(&row.reason)
        .bind(row.peer_case_number.clone())
        .bind(row.ours.as_ref().map(Message::encode_to_vec))
        .bind(row.theirs.as_ref().map(Message::encode_to_vec))
        .bind(micros(now))
        .bind(&row.case_id)
        .bind(row.attempts - 1)
        .bind(
            // the status it was read with, which an attempt never leaves unless it ends it
            if row.attempts == 1 {
                "pending"
            } else {
                "retrying"
            },
        )
        .execute(self.db.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Sends the exchange again now: a conflict or refusal someone resolved, or a retrying one
    /// not worth waiting for. A done exchange stays done.
    pub async fn retry(&self, case_id: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE exchanges SET status = CASE WHEN attempts = 0 THEN 'pending' ELSE 'retrying' END, \
             next_attempt_at = $1, updated_at = $1 WHERE case_id = $2 AND status <> 'done'",
        )
        .bind(micros(now))
        .bind(case_id)
        .execute(self.db.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Once per status: the counts /metrics shows and the alerts read.
    pub async fn counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query("SELECT status, COUNT(*) AS n FROM exchanges GROUP BY status")
            .fetch_all(self.db.pool())
            .await?;
        rows.iter()
            .map(|r| Ok((r.text("status")?, r.int("n")?)))
            .collect()
    }

    /// One page, oldest first, after `after` (created_at, case_id).
    pub async fn list(
        &self,
        f: &ExchangeFilter,
        after: Option<(i64, String)>,
        limit: u32,
    ) -> Result<Vec<ExchangeRow>, StoreError> {
        let mut q = Sql::new(format!(
            "SELECT {EXCHANGE_COLUMNS} FROM exchanges WHERE 1 = 1"
        ));
        if let Some(s) = f.status {
            q.push(" AND status = ").bind(s.as_str().to_owned());
        }
        if let Some(p) = &f.peer {
            q.push(" AND peer = ").bind(p.clone());
        }
        if let Some(organs) = &f.routed_by {
            if organs.is_empty() {
                return Ok(Vec::new());
            }
            q.push(" AND routed_by IN (")
                .bind_list(organs.iter().cloned())
                .push(")");
        }
        if !f.hidden_accused.is_empty() {
            q.push(" AND (accused_organ IS NULL OR accused_organ NOT IN (")
                .bind_list(f.hidden_accused.iter().cloned())
                .push("))");
        }
        petition_storage::recusals::push_not_recused(
            &mut q,
            "exchanges.case_id",
            f.recused.as_deref(),
        );
        q.page("created_at", "case_id", after, Order::Ascending, limit);
        let rows = q.build().fetch_all(self.db.pool()).await?;
        rows.iter().map(exchange_from_row).collect()
    }

    /// Appends a step of a case a peer sent us to that peer's feed, in the transaction that
    /// records the step; nothing for our own cases. The counter row's lock orders the feed.
    pub async fn append_feed(
        tx: &mut Tx,
        case_id: &str,
        envelope: &pb::EventEnvelope,
    ) -> Result<bool, StoreError> {
        let peer: Option<String> =
            sqlx::query_scalar("SELECT peer FROM upstream_cases WHERE case_id = $1")
                .bind(case_id)
                .fetch_optional(&mut **tx)
                .await?;
        let Some(peer) = peer else { return Ok(false) };
        let seq: i64 = sqlx::query_scalar(
            "INSERT INTO peer_feed_counters (peer, last_seq) VALUES ($1, 1) ON CONFLICT (peer) \
             DO UPDATE SET last_seq = peer_feed_counters.last_seq + 1 RETURNING last_seq",
        )
        .bind(&peer)
        .fetch_one(&mut **tx)
        .await?;
        sqlx::query(
            "INSERT INTO peer_feed (peer, seq, case_id, event_id, payload) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&peer)
        .bind(seq)
        .bind(case_id)
        .bind(&envelope.event_id)
        .bind(envelope.encode_to_vec())
        .execute(&mut **tx)
        .await?;
        Ok(true)
    }

    /// The peer's feed after `since`, at most `limit` steps, oldest first.
    pub async fn feed_after(
        &self,
        peer: &str,
        since: i64,
        limit: i64,
    ) -> Result<Vec<pb::CaseProgress>, StoreError> {
        let rows = sqlx::query(
            "SELECT f.seq, f.payload, u.peer_case_number, c.case_number FROM peer_feed f \
             JOIN upstream_cases u ON u.case_id = f.case_id JOIN cases c ON c.id = f.case_id \
             WHERE f.peer = $1 AND f.seq > $2 ORDER BY f.seq LIMIT $3",
        )
        .bind(peer)
        .bind(since)
        .bind(limit)
        .fetch_all(self.db.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(pb::CaseProgress {
                    seq: r.int("seq")?.try_into().unwrap_or_default(),
                    external_ref: r.text("peer_case_number")?,
                    case_number: r.opt_text("case_number")?.unwrap_or_default(),
                    event: r.bytes("payload")?,
                })
            })
            .collect()
    }

    pub async fn cursor(&self, peer: &str) -> Result<i64, StoreError> {
        let v: Option<i64> = sqlx::query_scalar("SELECT seq FROM peer_cursors WHERE peer = $1")
            .bind(peer)
            .fetch_optional(self.db.pool())
            .await?;
        Ok(v.unwrap_or(0))
    }

    /// The upstream a case was sent down with, if a peer sent it.
    pub async fn upstream_of(&self, case_id: &str) -> Result<Option<pb::Upstream>, StoreError> {
        let v: Option<Vec<u8>> =
            sqlx::query_scalar("SELECT upstream FROM upstream_cases WHERE case_id = $1")
                .bind(case_id)
                .fetch_optional(self.db.pool())
                .await?;
        Ok(decode("upstream", v)?)
    }

    /// Applies one step of the peer's feed, once: moves the cursor (nothing if it is past the
    /// step already), updates the exchange, and either publishes `peer.progressed` for routing
    /// or writes the step into our timeline.
    pub(super) async fn apply_progress(
        &self,
        peer: &str,
        p: &pb::CaseProgress,
        served_by_peer: impl Fn(&str) -> bool,
        now: DateTime<Utc>,
    ) -> Result<Applied, StoreError> {
        let mut tx = self.db.begin().await?;
        let seq = i64::try_from(p.seq).unwrap_or(i64::MAX);
        let cursor: Option<i64> =
            sqlx::query_scalar("SELECT seq FROM peer_cursors WHERE peer = $1")
                .bind(peer)
                .fetch_optional(&mut *tx)
                .await?;
        // The peer numbers its feed without gaps and is asked for what follows our cursor:
        // anything else means its feed was rewritten (a restore from a backup), and steps may be
        // passed over unseen. Said loudly; the operator compares the two sides.
        if let Some(c) = cursor
            && seq != c + 1
        {
            metrics::counter!("federation_feed_anomalies_total", "peer" => peer.to_owned())
                .increment(1);
            tracing::error!(%peer, cursor = c, seq,
                "the peer's feed does not follow on from the last step applied here: was it restored from a backup?");
        }
        let moved = sqlx::query(
            "INSERT INTO peer_cursors (peer, seq) VALUES ($1, $2) ON CONFLICT (peer) \
             DO UPDATE SET seq = excluded.seq WHERE peer_cursors.seq < excluded.seq",
        )
        .bind(peer)
        .bind(seq)
        .execute(&mut *tx)
        .await?;
        if moved.rows_affected() == 0 {
            return Ok(Applied::Already);
        }
        type Row = (String, String, String, Option<String>, String);
        let exchange: Option<Row> = sqlx::query_as(
            "SELECT case_id, case_number, status, peer_case_number, organ FROM exchanges \
             WHERE peer = $1 AND case_number = $2",
        )
        .bind(peer)
        .bind(&p.external_ref)
        .fetch_optional(&mut *tx)
        .await?;
        let event = pb::EventEnvelope::decode(&p.event[..]).ok();
        let (Some((case_id, case_number, status, held_as, organ)), Some(event)) =
            (exchange, event.as_ref())
        else {
            // Not a case we sent (another system under our name): the cursor moves on.
            tx.commit().await?;
            return Ok(Applied::NotOurs);
        };
        match status.parse::<ExchangeStatus>() {
            // The peer's case under our number is not our petition (a conflict), or the peer
            // never took ours: its steps are not ours either.
            Ok(ExchangeStatus::Conflict | ExchangeStatus::Failed) => {
                tx.commit().await?;
                return Ok(Applied::NotOurs);
            }
            // Our delivery has not heard back yet: whether this case is ours is known once it
            // has (a replay of ours, or a conflict). The step waits, the cursor with it.
            Ok(ExchangeStatus::Pending | ExchangeStatus::Retrying) => return Ok(Applied::Wait),
            _ if held_as.as_deref().is_some_and(|n| n != p.case_number) => {
                tx.commit().await?;
                return Ok(Applied::NotOurs);
            }
            _ => {}
        }
        let step_at = event.occurred_at.as_ref().and_then(from_ts).unwrap_or(now);
        sqlx::query(
            "UPDATE exchanges SET steps_received = steps_received + 1, last_step_at = $1, \
             peer_case_number = $2, status = 'done', reason = CASE WHEN status = 'done' THEN \
             reason ELSE '' END, updated_at = $3 WHERE case_id = $4",
        )
        .bind(micros(step_at))
        .bind(&p.case_number)
        .bind(micros(now))
        .bind(&case_id)
        .execute(&mut *tx)
        .await?;
        let routing_applies = event
            .payload
            .as_ref()
            .is_some_and(petition_grpc::federation::routing_applies);
        let supervision_applies = event
            .payload
            .as_ref()
            .is_some_and(petition_grpc::federation::supervision_applies);
        if routing_applies || supervision_applies {
            let envelope = petition_events::envelope(
                &case_id,
                crate::events::PRODUCER,
                now,
                pb::event_envelope::Payload::PeerProgressed(Box::new(pb::PeerProgressed {
                    case_id: case_id.clone(),
                    case_number: case_number.clone(),
                    peer: peer.to_owned(),
                    peer_case_number: p.case_number.clone(),
                    seq: p.seq,
                    moved_within_peer: step_organ(event)
                        .is_some_and(|o| o != organ && served_by_peer(o)),
                    event: Some(Box::new(event.clone())),
                })),
            );
            Outbox::enqueue(
                &mut tx,
                &petition_events::to_outbox(Stream::Intake, &envelope).by(peer, ""),
            )
            .await?;
        }
        // Routing's own event of the step reaches the timeline; every other step is written
        // here.
        if !routing_applies && let Some((_, mut step)) = crate::events::step(event) {
            step.note = format!("{peer}, case {}: {}", p.case_number, step.note);
            step.bureau = None;
            IntakeStore::apply_step(&mut tx, &case_id, &step).await?;
        }
        tx.commit().await?;
        Ok(if routing_applies || supervision_applies {
            Applied::Published
        } else {
            Applied::Recorded
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Applied {
    Already,
    NotOurs,
    Published,
    Recorded,
    /// not yet: the exchange of its case has not heard back from its delivery
    Wait,
}

/// The organ a step of routing's names.
fn step_organ(e: &pb::EventEnvelope) -> Option<&str> {
    use pb::event_envelope::Payload;
    match e.payload.as_ref()? {
        Payload::CaseAccepted(a) => Some(&a.organ),
        Payload::CaseAnswered(a) => Some(&a.organ),
        Payload::CompletionReported(c) => Some(&c.organ),
        _ => None,
    }
}
