//! City and district deployments as one case pipeline (DESIGN §5b, ADR 0016).
//!
//! Down: when routing sends a case to an organ a peer deployment serves, intake (which holds
//! the petition and its sealed personal data) opens an exchange in the transaction that records
//! the routing step, and the [`Deliverer`] registers the case at the peer's intake under our
//! name and case number, until it is done, a conflict or refused.
//!
//! Up: the peer's intake keeps a gapless feed of the steps of the cases it got from us
//! (`peer_feed`), and our [`Watcher`] pulls it with `WatchCases(since)`. Each step is applied
//! here once, in the transaction that moves our cursor: routing's steps (acceptance, reply,
//! completion report) go out as `peer.progressed` for routing to apply to our copy with the
//! peer's dates; every other step goes into our timeline at once.

use crate::crypto::PersonalDataCipher;
use crate::store::{CaseKey, IntakeStore, StoreError};
use chrono::{DateTime, Utc};
use petition_domain::{Clock, OrgTree};
use petition_events::{Outbox, RelayWake, Stream};
use petition_federation::{ExchangeStatus, Federation, Peer, Verdict};
use petition_grpc::convert::{from_ts, ts};
use petition_proto::v1 as pb;
use petition_proto::v1::intake_service_client::IntakeServiceClient;
use petition_storage::{Corrupt, Db, Order, RowExt, Sql, Tx, micros};
use prost::Message;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, watch};
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

/// The metadata key in which an ALREADY_EXISTS answer names the case that holds the key, for
/// a caller who may see it: a peer lists the conflict with both versions.
pub const EXISTING_CASE: &str = "petition-existing-case";

/// The most exchanges sent in one round.
const ROUND: i64 = 64;
/// How often the exchange gauges are counted (a count over the whole table).
const GAUGE_EVERY: Duration = Duration::from_secs(5);

/// How long one delivery or one read of the peer may take before it counts as unanswered.
const PEER_TIMEOUT: Duration = Duration::from_secs(10);

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
    async fn apply_progress(
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
enum Applied {
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

/// A client of a peer's intake, with the token the peer issued us on every call.
type PeerClient =
    IntakeServiceClient<tonic::service::interceptor::InterceptedService<Channel, BearerToken>>;

#[derive(Clone)]
pub struct BearerToken(tonic::metadata::MetadataValue<tonic::metadata::Ascii>);

impl tonic::service::Interceptor for BearerToken {
    fn call(&mut self, mut r: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        r.metadata_mut().insert("authorization", self.0.clone());
        Ok(r)
    }
}

/// A lazy channel to the peer: connecting waits for the first call, so a peer that is away at
/// our start costs nothing until a case goes there.
pub fn client(peer: &Peer) -> Result<PeerClient, String> {
    let mut endpoint = Endpoint::from_shared(peer.address.clone())
        .map_err(|e| format!("peer {}: address: {e}", peer.name))?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true);
    if peer.address.starts_with("https://") {
        let mut tls = ClientTlsConfig::new().with_enabled_roots();
        if let Some(ca) = &peer.ca_file {
            let pem = std::fs::read(ca)
                .map_err(|e| format!("peer {}: ca_file {}: {e}", peer.name, ca.display()))?;
            tls = tls.ca_certificate(tonic::transport::Certificate::from_pem(pem));
        }
        if let Some(d) = &peer.domain {
            tls = tls.domain_name(d.clone());
        }
        endpoint = endpoint
            .tls_config(tls)
            .map_err(|e| format!("peer {}: tls: {e}", peer.name))?;
    }
    let token = format!("Bearer {}", peer.token)
        .parse()
        .map_err(|_| format!("peer {}: the token is not valid header text", peer.name))?;
    Ok(IntakeServiceClient::with_interceptor(
        endpoint.connect_lazy(),
        BearerToken(token),
    ))
}

/// Sends each open exchange to its peer, and again with backoff until it ends.
pub struct Deliverer {
    pub store: ExchangeStore,
    pub cases: IntakeStore,
    pub cipher: Arc<PersonalDataCipher>,
    pub settings: Exchanges,
    pub tree: Arc<OrgTree>,
    pub clock: Arc<dyn Clock>,
    pub wake: Arc<Notify>,
    clients: Mutex<HashMap<String, PeerClient>>,
}

/// What one attempt came to.
enum Attempt {
    Done(String),
    Retry(String),
    Conflict {
        reason: String,
        ours: Box<pb::ExchangeVersion>,
        theirs: Option<Box<pb::ExchangeVersion>>,
    },
    Refused(String),
}

fn version(
    case_number: &str,
    title: &str,
    category: &str,
    received_at: Option<prost_types::Timestamp>,
    received_by: &str,
    content: &str,
) -> pb::ExchangeVersion {
    pb::ExchangeVersion {
        case_number: case_number.to_owned(),
        title: title.to_owned(),
        category: category.to_owned(),
        received_at,
        received_by: received_by.to_owned(),
        content: content.to_owned(),
    }
}

impl Deliverer {
    pub fn new(
        store: ExchangeStore,
        cases: IntakeStore,
        cipher: Arc<PersonalDataCipher>,
        settings: Exchanges,
        tree: Arc<OrgTree>,
        clock: Arc<dyn Clock>,
        wake: Arc<Notify>,
    ) -> Self {
        Self {
            store,
            cases,
            cipher,
            settings,
            tree,
            clock,
            wake,
            clients: Mutex::new(HashMap::new()),
        }
    }

    fn client(&self, peer: &Peer) -> Result<PeerClient, String> {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = clients.get(&peer.name) {
            return Ok(c.clone());
        }
        let c = client(peer)?;
        clients.insert(peer.name.clone(), c.clone());
        Ok(c)
    }

    /// Until `stop`: whatever is due, then a wait until the next is due, a new exchange wakes
    /// it, or a second passes (another replica may have opened or moved one).
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut counted: Option<std::time::Instant> = None;
        loop {
            let next = match self.round().await {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(error = %e, "exchanges could not be read; trying again");
                    Duration::from_secs(1)
                }
            };
            if counted.is_none_or(|t| t.elapsed() >= GAUGE_EVERY) {
                self.gauges().await;
                counted = Some(std::time::Instant::now());
            }
            tokio::select! {
                _ = stop.changed() => return,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(next) => {}
            }
        }
    }

    async fn gauges(&self) {
        if let Ok(counts) = self.store.counts().await {
            for s in ExchangeStatus::ALL {
                let n = counts
                    .iter()
                    .find(|(k, _)| k == s.as_str())
                    .map_or(0, |(_, n)| *n);
                metrics::gauge!("federation_exchanges", "status" => s.as_str()).set(n as f64);
            }
        }
    }

    /// Attempts what is due, all at once (the peer's intake writes concurrent registrations in
    /// one transaction); returns how long to wait for the next.
    async fn round(&self) -> Result<Duration, StoreError> {
        let now = self.clock.now();
        let due = self.store.due(now, ROUND).await?;
        let busy = due.len() as i64 == ROUND;
        for done in futures::future::join_all(due.into_iter().map(|row| self.deliver(row))).await {
            done?;
        }
        if busy {
            return Ok(Duration::ZERO);
        }
        let wait = match self.store.next_due().await? {
            Some(t) => (t - self.clock.now()).to_std().unwrap_or(Duration::ZERO),
            None => Duration::from_secs(1),
        };
        Ok(wait.min(Duration::from_secs(1)))
    }

    async fn deliver(&self, mut row: ExchangeRow) -> Result<(), StoreError> {
        let attempt = match self.settings.federation.peer(&row.peer) {
            Some(peer) => self.attempt(peer, &row).await,
            None => Attempt::Retry(format!(
                "peer {} is not in the peers file any more; restore it, or route the case again",
                row.peer
            )),
        };
        let now = self.clock.now();
        row.attempts += 1;
        row.next_attempt_at = now;
        let outcome = match attempt {
            Attempt::Done(number) => {
                row.status = ExchangeStatus::Done;
                row.reason.clear();
                row.peer_case_number = Some(number);
                "done"
            }
            Attempt::Retry(why) => {
                row.status = ExchangeStatus::Retrying;
                row.reason = why;
                let wait = petition_federation::backoff(
                    (row.attempts - 1).try_into().unwrap_or(u32::MAX),
                    self.settings.retry_base,
                    self.settings.retry_cap,
                );
                row.next_attempt_at = now + chrono::Duration::from_std(wait).unwrap_or_default();
                "retry"
            }
            Attempt::Conflict {
                reason,
                ours,
                theirs,
            } => {
                row.status = ExchangeStatus::Conflict;
                row.reason = reason;
                row.ours = Some(*ours);
                row.theirs = theirs.map(|t| *t);
                "conflict"
            }
            Attempt::Refused(why) => {
                row.status = ExchangeStatus::Failed;
                row.reason = why;
                "failed"
            }
        };
        metrics::counter!("federation_exchange_attempts_total", "outcome" => outcome).increment(1);
        if self.store.record(&row, now).await? {
            tracing::info!(case_number = %row.case_number, peer = %row.peer, status = %row.status,
                attempts = row.attempts, reason = %row.reason, "exchange attempted");
        }
        Ok(())
    }

    /// What we send: the petition as registered here, personal data opened for the peer (the
    /// organ it goes to must reach the petitioner; the channel is the peers' own, authenticated
    /// and, across machines, TLS), under our name and case number.
    async fn request(&self, row: &ExchangeRow) -> Result<pb::RegisterPetitionRequest, String> {
        let id = uuid::Uuid::parse_str(&row.case_id).map_err(|e| e.to_string())?;
        let case = self
            .cases
            .get_case(&CaseKey::Id(id))
            .await
            .map_err(|e| format!("the case could not be read here: {e}"))?
            .ok_or("the case is not in this intake")?;
        let open = |v: &Option<Vec<u8>>| -> Result<String, String> {
            v.as_ref().map_or(Ok(String::new()), |s| {
                self.cipher
                    .open(s)
                    .map_err(|e| format!("personal data could not be opened: {e}"))
            })
        };
        let mut petitioners = Vec::new();
        for p in &case.petitioners {
            petitioners.push(pb::PetitionerInput {
                name: p.name.clone(),
                id_type: p
                    .id_type
                    .map_or(0, |t| petition_grpc::convert::id_type_to_pb(Some(t)) as i32),
                id_number: open(&p.id_number_sealed)?,
                phone: open(&p.phone_sealed)?,
                address: open(&p.address_sealed)?,
                is_main: p.is_main,
            });
        }
        let c = &case.body;
        let accused = match (&c.accused_organ, &c.accused_name_sealed) {
            (None, None) => None,
            (organ, name) => Some(pb::Accused {
                name: open(name)?,
                organ_id: organ.clone().unwrap_or_default(),
            }),
        };
        // It arrives at the bureau of the organ's territory, from above (上级转送/交办).
        let received_by = self
            .tree
            .get(&row.organ)
            .and_then(|o| self.tree.bureau_for(&o.region))
            .map(|b| b.id.clone())
            .unwrap_or_else(|| row.organ.clone());
        let mut upstream = row.upstream.clone();
        upstream.leapfrog = c.flags.leapfrog;
        Ok(pb::RegisterPetitionRequest {
            channel: pb::Channel::Upstream as i32,
            received_by,
            received_at: Some(ts(c.received_at)),
            petitioners,
            category: c.category.clone(),
            problem_location: c.problem_location.clone(),
            title: c.title.clone(),
            content: c.content.clone(),
            people_present: c.people_present.try_into().unwrap_or_default(),
            people_affected: c.people_affected.try_into().unwrap_or_default(),
            representatives: c.representatives.try_into().unwrap_or_default(),
            accused,
            source_system: self.settings.federation.name.clone(),
            external_ref: case.case_number.clone(),
            upstream: Some(upstream),
        })
    }

    async fn attempt(&self, peer: &Peer, row: &ExchangeRow) -> Attempt {
        let req = match self.request(row).await {
            Ok(r) => r,
            Err(why) => return Attempt::Retry(why),
        };
        let mut client = match self.client(peer) {
            Ok(c) => c,
            Err(why) => return Attempt::Refused(why),
        };
        let mut call = tonic::Request::new(req.clone());
        call.set_timeout(PEER_TIMEOUT);
        match client.register_petition(call).await {
            Ok(r) => Attempt::Done(r.into_inner().case_number),
            Err(s) => match petition_federation::verdict(s.code()) {
                Verdict::Retry => Attempt::Retry(format!(
                    "{} did not answer: {:?}: {}",
                    peer.name,
                    s.code(),
                    s.message()
                )),
                Verdict::Refused => Attempt::Refused(format!(
                    "{} refused it: {:?}: {}",
                    peer.name,
                    s.code(),
                    s.message()
                )),
                Verdict::Conflict => {
                    let held = s
                        .metadata()
                        .get(EXISTING_CASE)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    let theirs = match held {
                        Some(number) => self.theirs(&mut client, &number).await.map(Box::new),
                        None => None,
                    };
                    // What we sent, beside what the peer holds, for the person who decides.
                    let ours = version(
                        &req.external_ref,
                        &req.title,
                        &req.category,
                        req.received_at,
                        &req.received_by,
                        &req.content,
                    );
                    Attempt::Conflict {
                        reason: format!("{}: {}", peer.name, s.message()),
                        ours: Box::new(ours),
                        theirs,
                    }
                }
            },
        }
    }

    /// The peer's version of the case that holds our key.
    async fn theirs(&self, client: &mut PeerClient, number: &str) -> Option<pb::ExchangeVersion> {
        let mut call = tonic::Request::new(pb::GetCaseRequest {
            case_number: number.to_owned(),
            ..Default::default()
        });
        call.set_timeout(PEER_TIMEOUT);
        let c = client.get_case(call).await.ok()?.into_inner();
        Some(version(
            &c.case_number,
            &c.title,
            &c.category,
            c.received_at,
            &c.received_by,
            &c.content,
        ))
    }
}

/// Pulls each peer's feed of the steps of the cases we sent it, and applies them here.
pub struct Watcher {
    pub store: ExchangeStore,
    pub peer: Peer,
    pub federation: Arc<Federation>,
    pub tree: Arc<OrgTree>,
    pub clock: Arc<dyn Clock>,
    pub relay: Arc<RelayWake>,
}

impl Watcher {
    /// Until `stop`: read the feed from our cursor; when the peer goes away, connect again
    /// with backoff, from the cursor, so no step is missed and none applied twice.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        // Present from the start, so that a peer never reached raises its alert too.
        metrics::gauge!("federation_watch_connected", "peer" => self.peer.name.clone()).set(0.0);
        metrics::counter!("federation_watch_errors_total", "peer" => self.peer.name.clone())
            .increment(0);
        let mut failures = 0u32;
        loop {
            let result = tokio::select! {
                _ = stop.changed() => return,
                r = self.follow() => r,
            };
            if let Err(e) = result {
                failures = failures.saturating_add(1);
                metrics::counter!("federation_watch_errors_total", "peer" => self.peer.name.clone())
                    .increment(1);
                tracing::warn!(peer = %self.peer.name, error = %e,
                    "the peer's steps could not be read; connecting again");
            }
            let wait = petition_federation::backoff(
                failures.saturating_sub(1),
                Duration::from_millis(250),
                Duration::from_secs(10),
            );
            tokio::select! {
                _ = stop.changed() => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// One step, applied; a step whose exchange has not heard back from its delivery is
    /// asked again for a while (the answer is usually milliseconds away), then given up on
    /// until the stream is read again.
    async fn apply(&self, p: &pb::CaseProgress) -> Result<Applied, String> {
        let served = |organ: &str| {
            self.federation
                .remote(&self.tree, organ)
                .is_some_and(|peer| peer.name == self.peer.name)
        };
        for _ in 0..100 {
            let applied = self
                .store
                .apply_progress(&self.peer.name, p, served, self.clock.now())
                .await
                .map_err(|e| e.to_string())?;
            if applied != Applied::Wait {
                return Ok(applied);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(format!(
            "case {}: its exchange has not heard back from its delivery; steps wait",
            p.external_ref
        ))
    }

    async fn follow(&self) -> Result<(), String> {
        let since = self
            .store
            .cursor(&self.peer.name)
            .await
            .map_err(|e| e.to_string())?;
        let mut client = client(&self.peer)?;
        let mut stream = client
            .watch_cases(pb::WatchCasesRequest {
                since: since.try_into().unwrap_or_default(),
            })
            .await
            .map_err(|s| format!("{:?}: {}", s.code(), s.message()))?
            .into_inner();
        metrics::gauge!("federation_watch_connected", "peer" => self.peer.name.clone()).set(1.0);
        let result = loop {
            match stream.message().await {
                Ok(Some(p)) => match self.apply(&p).await {
                    Ok(Applied::Published) => self.relay.notify_one(),
                    Ok(_) => {}
                    Err(e) => break Err(e),
                },
                Ok(None) => break Ok(()),
                Err(s) => break Err(format!("{:?}: {}", s.code(), s.message())),
            }
        };
        metrics::gauge!("federation_watch_connected", "peer" => self.peer.name.clone()).set(0.0);
        result
    }
}
