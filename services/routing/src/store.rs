//! The routing store. The schema is written in SQL both dialects read alike, so one body serves
//! PostgreSQL and SQLite (instantiated twice by a macro) and one conformance suite checks both.

use chrono::{DateTime, Utc};
use petition_events::OutboxMessage;
use petition_events::outbox::{PgOutbox, SqliteOutbox};
use serde::{Deserialize, Serialize};
use sqlx::{PgPool, Row, SqlitePool};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Someone changed the case since it was read; the caller reads again.
    #[error("the case changed concurrently")]
    Conflict,
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub at_micros: i64,
    pub from_organ: String,
    pub to_organ: String,
    pub rule: String,
    pub actor: String,
}

/// One case as routing sees it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AssignmentRecord {
    pub case_id: String,
    pub case_number: String,
    pub organ: String,
    pub outcome: String,
    pub state: String,
    pub mode: Option<String>,
    pub rule: String,
    pub notice: String,
    pub hops: Vec<String>,
    pub linked_case_number: Option<String>,
    pub diversion: Option<String>,
    pub type_of_matter: String,
    pub category: String,
    pub problem_location: String,
    pub channel: String,
    pub forwarding_bureau: String,
    pub accused_organ: Option<String>,
    pub flag_group: bool,
    pub flag_leapfrog: bool,
    pub flag_repeat: bool,
    pub received_at: DateTime<Utc>,
    pub route_due: DateTime<Utc>,
    pub organ_received_at: Option<DateTime<Utc>>,
    pub objection_due: Option<DateTime<Utc>>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub handling_due: Option<DateTime<Utc>>,
    pub report_due: Option<DateTime<Utc>>,
    pub objection_reason: Option<String>,
    pub history: Vec<Step>,
    pub version: i64,
    pub reply_outcome: Option<String>,
    pub reply_text: Option<String>,
    pub legal_basis: Option<String>,
    pub service_record: Option<ServiceRecord>,
    pub replied_at: Option<DateTime<Utc>>,
    pub served_at: Option<DateTime<Utc>>,
    pub extension_days: Option<i64>,
    pub extension_reason: Option<String>,
    pub completion_report: Option<String>,
    pub completion_reported_at: Option<DateTime<Utc>>,
}

/// 送达: how the written opinion reached the petitioner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceRecord {
    pub mode: String,
    pub served_at_micros: i64,
    pub signed: bool,
    pub refused: bool,
    pub view: String,
}

#[async_trait::async_trait]
pub trait RoutingStore: Send + Sync + 'static {
    /// Records a newly routed case and its event, once per `(group, event_id)`. Returns false
    /// for a redelivered event.
    async fn insert_routed(
        &self,
        group: &str,
        event_id: &str,
        record: &AssignmentRecord,
        event: &OutboxMessage,
    ) -> Result<bool, StoreError>;
    async fn get(&self, case_id: &str) -> Result<Option<AssignmentRecord>, StoreError>;
    /// Cases held by `organ`, in the given states.
    async fn held_by(
        &self,
        organ: &str,
        states: &[&str],
    ) -> Result<Vec<AssignmentRecord>, StoreError>;
    /// Writes `record` if its stored version is still `record.version - 1`, with its event and
    /// the request id that caused it.
    async fn update(
        &self,
        record: &AssignmentRecord,
        event: &OutboxMessage,
        request_id: Option<&str>,
    ) -> Result<(), StoreError>;
    /// The case a request id was applied to, if it was.
    async fn applied_request(&self, request_id: &str) -> Result<Option<String>, StoreError>;
}

fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

fn time(v: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_micros(v).ok_or_else(|| StoreError::Corrupt(format!("time {v}")))
}

fn opt_time(v: Option<i64>) -> Result<Option<DateTime<Utc>>, StoreError> {
    v.map(time).transpose()
}

fn json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("lists of strings serialise")
}

fn unjson<T: for<'de> Deserialize<'de>>(s: &str) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(e.to_string()))
}

const COLUMNS: &str = "case_id, case_number, organ, outcome, state, mode, rule, notice, hops, \
    linked_case_number, diversion, type_of_matter, category, problem_location, channel, \
    forwarding_bureau, accused_organ, flag_group, flag_leapfrog, flag_repeat, received_at, \
    route_due, organ_received_at, objection_due, accepted_at, handling_due, report_due, \
    objection_reason, history, version, reply_outcome, reply_text, legal_basis, service_record, \
    replied_at, served_at, extension_days, extension_reason, completion_report, \
    completion_reported_at";

const INSERT: &str = "INSERT INTO assignments (case_id, case_number, organ, outcome, state, \
    mode, rule, notice, hops, linked_case_number, diversion, type_of_matter, category, \
    problem_location, channel, forwarding_bureau, accused_organ, flag_group, flag_leapfrog, \
    flag_repeat, received_at, route_due, organ_received_at, objection_due, accepted_at, \
    handling_due, report_due, objection_reason, history, version, reply_outcome, reply_text, \
    legal_basis, service_record, replied_at, served_at, extension_days, extension_reason, \
    completion_report, completion_reported_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, \
    $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, \
    $28, $29, $30, $31, $32, $33, $34, $35, $36, $37, $38, $39, $40)";

const UPDATE: &str = "UPDATE assignments SET organ = $2, outcome = $3, state = $4, mode = $5, \
    rule = $6, notice = $7, hops = $8, linked_case_number = $9, diversion = $10, \
    forwarding_bureau = $11, organ_received_at = $12, objection_due = $13, accepted_at = $14, \
    handling_due = $15, report_due = $16, objection_reason = $17, history = $18, version = $19, \
    reply_outcome = $20, reply_text = $21, legal_basis = $22, service_record = $23, \
    replied_at = $24, served_at = $25, extension_days = $26, extension_reason = $27, \
    completion_report = $28, completion_reported_at = $29 \
    WHERE case_id = $1 AND version = $30";

macro_rules! bind_insert {
    ($q:expr, $r:expr) => {
        $q.bind(&$r.case_id)
            .bind(&$r.case_number)
            .bind(&$r.organ)
            .bind(&$r.outcome)
            .bind(&$r.state)
            .bind(&$r.mode)
            .bind(&$r.rule)
            .bind(&$r.notice)
            .bind(json(&$r.hops))
            .bind(&$r.linked_case_number)
            .bind(&$r.diversion)
            .bind(&$r.type_of_matter)
            .bind(&$r.category)
            .bind(&$r.problem_location)
            .bind(&$r.channel)
            .bind(&$r.forwarding_bureau)
            .bind(&$r.accused_organ)
            .bind($r.flag_group)
            .bind($r.flag_leapfrog)
            .bind($r.flag_repeat)
            .bind(micros($r.received_at))
            .bind(micros($r.route_due))
            .bind($r.organ_received_at.map(micros))
            .bind($r.objection_due.map(micros))
            .bind($r.accepted_at.map(micros))
            .bind($r.handling_due.map(micros))
            .bind($r.report_due.map(micros))
            .bind(&$r.objection_reason)
            .bind(json(&$r.history))
            .bind($r.version)
            .bind(&$r.reply_outcome)
            .bind(&$r.reply_text)
            .bind(&$r.legal_basis)
            .bind($r.service_record.as_ref().map(json))
            .bind($r.replied_at.map(micros))
            .bind($r.served_at.map(micros))
            .bind($r.extension_days)
            .bind(&$r.extension_reason)
            .bind(&$r.completion_report)
            .bind($r.completion_reported_at.map(micros))
    };
}

macro_rules! record_from_row {
    ($row:expr) => {{
        let r = $row;
        Ok::<_, StoreError>(AssignmentRecord {
            case_id: r.get("case_id"),
            case_number: r.get("case_number"),
            organ: r.get("organ"),
            outcome: r.get("outcome"),
            state: r.get("state"),
            mode: r.get("mode"),
            rule: r.get("rule"),
            notice: r.get("notice"),
            hops: unjson(r.get::<&str, _>("hops"))?,
            linked_case_number: r.get("linked_case_number"),
            diversion: r.get("diversion"),
            type_of_matter: r.get("type_of_matter"),
            category: r.get("category"),
            problem_location: r.get("problem_location"),
            channel: r.get("channel"),
            forwarding_bureau: r.get("forwarding_bureau"),
            accused_organ: r.get("accused_organ"),
            flag_group: r.get("flag_group"),
            flag_leapfrog: r.get("flag_leapfrog"),
            flag_repeat: r.get("flag_repeat"),
            received_at: time(r.get("received_at"))?,
            route_due: time(r.get("route_due"))?,
            organ_received_at: opt_time(r.get("organ_received_at"))?,
            objection_due: opt_time(r.get("objection_due"))?,
            accepted_at: opt_time(r.get("accepted_at"))?,
            handling_due: opt_time(r.get("handling_due"))?,
            report_due: opt_time(r.get("report_due"))?,
            objection_reason: r.get("objection_reason"),
            history: unjson(r.get::<&str, _>("history"))?,
            version: r.get("version"),
            reply_outcome: r.get("reply_outcome"),
            reply_text: r.get("reply_text"),
            legal_basis: r.get("legal_basis"),
            service_record: r
                .get::<Option<&str>, _>("service_record")
                .map(unjson)
                .transpose()?,
            replied_at: opt_time(r.get("replied_at"))?,
            served_at: opt_time(r.get("served_at"))?,
            extension_days: r.get("extension_days"),
            extension_reason: r.get("extension_reason"),
            completion_report: r.get("completion_report"),
            completion_reported_at: opt_time(r.get("completion_reported_at"))?,
        })
    }};
}

/// One body for both dialects: the SQL is shared; only the pool, the outbox and the
/// processed-events helpers differ.
macro_rules! routing_store {
    ($name:ident, $pool:ty, $outbox:ty, $enqueue:path, $first_time:path, $processed_ddl:path) => {
        #[derive(Clone)]
        pub struct $name {
            pool: $pool,
        }

        impl $name {
            /// Migrates the schema and installs the outbox and processed-events tables.
            pub async fn open(pool: $pool) -> Result<(Self, $outbox), StoreError> {
                MIGRATOR.run(&pool).await?;
                sqlx::raw_sql($processed_ddl).execute(&pool).await?;
                let outbox = <$outbox>::install(pool.clone()).await?;
                Ok((Self { pool }, outbox))
            }
        }

        #[async_trait::async_trait]
        impl RoutingStore for $name {
            async fn insert_routed(
                &self,
                group: &str,
                event_id: &str,
                record: &AssignmentRecord,
                event: &OutboxMessage,
            ) -> Result<bool, StoreError> {
                let mut tx = self.pool.begin().await?;
                if !$first_time(&mut tx, group, event_id).await? {
                    return Ok(false);
                }
                bind_insert!(sqlx::query(INSERT), record)
                    .execute(&mut *tx)
                    .await?;
                $enqueue(&mut tx, event).await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn get(&self, case_id: &str) -> Result<Option<AssignmentRecord>, StoreError> {
                let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {COLUMNS} FROM assignments WHERE case_id = $1"
                )))
                .bind(case_id)
                .fetch_optional(&self.pool)
                .await?;
                row.map(|r| record_from_row!(r)).transpose()
            }

            async fn held_by(
                &self,
                organ: &str,
                states: &[&str],
            ) -> Result<Vec<AssignmentRecord>, StoreError> {
                let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {COLUMNS} FROM assignments WHERE organ = $1"
                )))
                .bind(organ)
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter()
                    .map(|r| record_from_row!(r))
                    .filter(|r| {
                        r.as_ref()
                            .map_or(true, |r| states.contains(&r.state.as_str()))
                    })
                    .collect()
            }

            async fn update(
                &self,
                r: &AssignmentRecord,
                event: &OutboxMessage,
                request_id: Option<&str>,
            ) -> Result<(), StoreError> {
                let mut tx = self.pool.begin().await?;
                let done = sqlx::query(UPDATE)
                    .bind(&r.case_id)
                    .bind(&r.organ)
                    .bind(&r.outcome)
                    .bind(&r.state)
                    .bind(&r.mode)
                    .bind(&r.rule)
                    .bind(&r.notice)
                    .bind(json(&r.hops))
                    .bind(&r.linked_case_number)
                    .bind(&r.diversion)
                    .bind(&r.forwarding_bureau)
                    .bind(r.organ_received_at.map(micros))
                    .bind(r.objection_due.map(micros))
                    .bind(r.accepted_at.map(micros))
                    .bind(r.handling_due.map(micros))
                    .bind(r.report_due.map(micros))
                    .bind(&r.objection_reason)
                    .bind(json(&r.history))
                    .bind(r.version)
                    .bind(&r.reply_outcome)
                    .bind(&r.reply_text)
                    .bind(&r.legal_basis)
                    .bind(r.service_record.as_ref().map(json))
                    .bind(r.replied_at.map(micros))
                    .bind(r.served_at.map(micros))
                    .bind(r.extension_days)
                    .bind(&r.extension_reason)
                    .bind(&r.completion_report)
                    .bind(r.completion_reported_at.map(micros))
                    .bind(r.version - 1)
                    .execute(&mut *tx)
                    .await?;
                if done.rows_affected() != 1 {
                    return Err(StoreError::Conflict);
                }
                if let Some(id) = request_id {
                    sqlx::query(
                        "INSERT INTO applied_requests (request_id, case_id, applied_at) \
                         VALUES ($1, $2, $3)",
                    )
                    .bind(id)
                    .bind(&r.case_id)
                    .bind(micros(Utc::now()))
                    .execute(&mut *tx)
                    .await?;
                }
                $enqueue(&mut tx, event).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn applied_request(
                &self,
                request_id: &str,
            ) -> Result<Option<String>, StoreError> {
                Ok(
                    sqlx::query_scalar(
                        "SELECT case_id FROM applied_requests WHERE request_id = $1",
                    )
                    .bind(request_id)
                    .fetch_optional(&self.pool)
                    .await?,
                )
            }
        }
    };
}

routing_store!(
    PgRoutingStore,
    PgPool,
    PgOutbox,
    petition_events::outbox::enqueue_pg,
    petition_events::processed::first_time_pg,
    petition_events::processed::PG_DDL
);
routing_store!(
    SqliteRoutingStore,
    SqlitePool,
    SqliteOutbox,
    petition_events::outbox::enqueue_sqlite,
    petition_events::processed::first_time_sqlite,
    petition_events::processed::SQLITE_DDL
);
