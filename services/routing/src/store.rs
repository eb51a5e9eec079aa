//! The routing store: one SQL body on PostgreSQL and SQLite (see `petition-storage`), lists
//! filtered and paged in SQL, and one conformance suite (tests/store_conformance.rs) run
//! against both.

use crate::model::AssignmentRecord;
use chrono::{DateTime, Utc};
use petition_domain::RecusalReason;
use petition_events::{Outbox, OutboxMessage};
pub use petition_storage::StoreError;
pub use petition_storage::requests::RequestId;
use petition_storage::{Corrupt, Db, Order, RowExt, Sql, Tx, micros};
use petition_storage::{recusals, requests};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// `due_at` of a case with nothing due: last in every list ordered by due date.
const NOTHING_DUE: i64 = i64::MAX;

/// Which inbox rows, by due date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    All,
    /// 待领, not overdue
    ToClaim,
    /// 待办 (and diverted), not overdue
    ToDo,
    Overdue,
}

/// A list request: whose list, what to leave out, from where, how many.
#[derive(Debug, Clone)]
pub struct InboxQuery {
    pub organ: String,
    pub bucket: Bucket,
    pub now: DateTime<Utc>,
    pub category_prefix: Option<String>,
    /// Art. 30 ¶3: never an accusation against one of these organs
    pub hidden_accused: Vec<String>,
    /// never a case this person is out of (回避)
    pub recused: Option<String>,
    /// `(due_at micros, case_id)` of the last row of the previous page
    pub after: Option<(i64, String)>,
    pub limit: u32,
}

const COLUMNS: &str = "case_id, case_number, received_by, organ, outcome, state, mode, rule, \
    notice, hops, linked_case_number, diversion, type_of_matter, category, problem_location, \
    channel, forwarding_bureau, accused_organ, flag_group, flag_leapfrog, flag_repeat, \
    received_at, route_due, organ_received_at, objection_due, accepted_at, handling_due, \
    report_due, due_at, objection_reason, history, version, reply_outcome, reply_text, \
    legal_basis, service_record, replied_at, served_at, extension_days, extension_reason, \
    completion_report, completion_reported_at";

/// The columns a change may touch; the others are fixed when the case is first routed.
const MUTABLE: [&str; 30] = [
    "organ",
    "outcome",
    "state",
    "mode",
    "rule",
    "notice",
    "hops",
    "linked_case_number",
    "diversion",
    "forwarding_bureau",
    "organ_received_at",
    "objection_due",
    "accepted_at",
    "handling_due",
    "report_due",
    "due_at",
    "objection_reason",
    "history",
    "version",
    "reply_outcome",
    "reply_text",
    "legal_basis",
    "service_record",
    "replied_at",
    "served_at",
    "extension_days",
    "extension_reason",
    "completion_report",
    "completion_reported_at",
    "route_due",
];

fn json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("plain data serialises")
}

fn unjson<T: for<'de> Deserialize<'de>>(column: &'static str, s: &str) -> Result<T, Corrupt> {
    serde_json::from_str(s).map_err(|e| Corrupt {
        column,
        reason: e.to_string(),
    })
}

/// A bound value of a column, for both the insert and the update.
enum Value {
    Text(Option<String>),
    Int(Option<i64>),
}

/// The value of `column` in `r`, written once for insert and update alike.
fn value(r: &AssignmentRecord, column: &str) -> Value {
    use Value::{Int, Text};
    let t = |s: &str| Text(Some(s.to_owned()));
    let time = |d: Option<DateTime<Utc>>| Int(d.map(micros));
    match column {
        "case_id" => t(&r.case_id),
        "case_number" => t(&r.case_number),
        "received_by" => t(&r.received_by),
        "organ" => t(&r.organ),
        "outcome" => t(r.outcome.as_str()),
        "state" => t(r.state.as_str()),
        "mode" => Text(r.mode.map(|m| m.as_str().to_owned())),
        "rule" => t(&r.rule),
        "notice" => t(&r.notice),
        "hops" => Text(Some(json(&r.hops))),
        "linked_case_number" => Text(r.linked_case_number.clone()),
        "diversion" => Text(r.diversion.map(|d| d.as_str().to_owned())),
        "type_of_matter" => Text(r.type_of_matter.map(|d| d.as_str().to_owned())),
        "category" => t(&r.category),
        "problem_location" => t(&r.problem_location),
        "channel" => t(r.channel.as_str()),
        "forwarding_bureau" => t(&r.forwarding_bureau),
        "accused_organ" => Text(r.accused_organ.clone()),
        "flag_group" => Int(Some(i64::from(r.flag_group))),
        "flag_leapfrog" => Int(Some(i64::from(r.flag_leapfrog))),
        "flag_repeat" => Int(Some(i64::from(r.flag_repeat))),
        "received_at" => time(Some(r.received_at)),
        "route_due" => time(Some(r.route_due)),
        "organ_received_at" => time(r.organ_received_at),
        "objection_due" => time(r.objection_due),
        "accepted_at" => time(r.accepted_at),
        "handling_due" => time(r.handling_due),
        "report_due" => time(r.report_due),
        "due_at" => Int(Some(r.due_at.map_or(NOTHING_DUE, micros))),
        "objection_reason" => Text(r.objection_reason.clone()),
        "history" => Text(Some(json(&r.history))),
        "version" => Int(Some(r.version)),
        "reply_outcome" => Text(r.reply_outcome.map(|o| o.as_str().to_owned())),
        "reply_text" => Text(r.reply_text.clone()),
        "legal_basis" => Text(r.legal_basis.clone()),
        "service_record" => Text(r.service_record.as_ref().map(json)),
        "replied_at" => time(r.replied_at),
        "served_at" => time(r.served_at),
        "extension_days" => Int(r.extension_days),
        "extension_reason" => Text(r.extension_reason.clone()),
        "completion_report" => Text(r.completion_report.clone()),
        "completion_reported_at" => time(r.completion_reported_at),
        other => unreachable!("no column {other}"),
    }
}

fn bind_value(q: &mut Sql, v: Value) {
    match v {
        Value::Text(s) => q.bind(s),
        Value::Int(i) => q.bind(i),
    };
}

/// The one place an assignment row is decoded.
fn from_row(r: &AnyRow) -> Result<AssignmentRecord, StoreError> {
    let due_at = r.int("due_at")?;
    Ok(AssignmentRecord {
        case_id: r.text("case_id")?,
        case_number: r.text("case_number")?,
        received_by: r.text("received_by")?,
        organ: r.text("organ")?,
        outcome: r.parsed("outcome")?,
        state: r.parsed("state")?,
        mode: r.opt_parsed("mode")?,
        rule: r.text("rule")?,
        notice: r.text("notice")?,
        hops: unjson("hops", &r.text("hops")?)?,
        linked_case_number: r.opt_text("linked_case_number")?,
        diversion: r.opt_parsed("diversion")?,
        type_of_matter: r.opt_parsed("type_of_matter")?,
        category: r.text("category")?,
        problem_location: r.text("problem_location")?,
        channel: r.parsed("channel")?,
        forwarding_bureau: r.text("forwarding_bureau")?,
        accused_organ: r.opt_text("accused_organ")?,
        flag_group: r.flag("flag_group")?,
        flag_leapfrog: r.flag("flag_leapfrog")?,
        flag_repeat: r.flag("flag_repeat")?,
        received_at: r.time("received_at")?,
        route_due: r.time("route_due")?,
        organ_received_at: r.opt_time("organ_received_at")?,
        objection_due: r.opt_time("objection_due")?,
        accepted_at: r.opt_time("accepted_at")?,
        handling_due: r.opt_time("handling_due")?,
        report_due: r.opt_time("report_due")?,
        due_at: if due_at == NOTHING_DUE {
            None
        } else {
            r.opt_time("due_at")?
        },
        objection_reason: r.opt_text("objection_reason")?,
        history: unjson("history", &r.text("history")?)?,
        version: r.int("version")?,
        reply_outcome: r.opt_parsed("reply_outcome")?,
        reply_text: r.opt_text("reply_text")?,
        legal_basis: r.opt_text("legal_basis")?,
        service_record: r
            .opt_text("service_record")?
            .map(|s| unjson("service_record", &s))
            .transpose()?,
        replied_at: r.opt_time("replied_at")?,
        served_at: r.opt_time("served_at")?,
        extension_days: r.opt_int("extension_days")?,
        extension_reason: r.opt_text("extension_reason")?,
        completion_report: r.opt_text("completion_report")?,
        completion_reported_at: r.opt_time("completion_reported_at")?,
        recused: Vec::new(),
    })
}

fn push_not_accused(q: &mut Sql, hidden: &[String]) {
    if hidden.is_empty() {
        return;
    }
    q.push(" AND (accused_organ IS NULL OR accused_organ NOT IN (")
        .bind_list(hidden.iter().cloned())
        .push("))");
}

#[derive(Clone)]
pub struct RoutingStore {
    db: Db,
}

impl RoutingStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// Records a newly routed case and its event, in the consumer's transaction (which holds
    /// the processed-event mark).
    pub async fn insert_routed(
        tx: &mut Tx,
        record: &AssignmentRecord,
        event: &OutboxMessage,
    ) -> Result<(), StoreError> {
        let mut q = Sql::new(format!("INSERT INTO assignments ({COLUMNS}) VALUES ("));
        for (i, c) in COLUMNS.split(", ").map(str::trim).enumerate() {
            if i > 0 {
                q.push(", ");
            }
            bind_value(&mut q, value(record, c));
        }
        q.push(")");
        q.build().execute(&mut **tx).await?;
        Outbox::enqueue(tx, event).await?;
        Ok(())
    }

    /// The case with the staff who are out of it.
    pub async fn get(&self, case_id: &str) -> Result<Option<AssignmentRecord>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM assignments WHERE case_id = $1"
        )))
        .bind(case_id)
        .fetch_optional(self.db.pool())
        .await?;
        let Some(mut r) = row.as_ref().map(from_row).transpose()? else {
            return Ok(None);
        };
        r.recused = recusals::of_case(self.db.pool(), case_id).await?;
        Ok(Some(r))
    }

    /// How `subject` was recorded out of the case, if they were.
    pub async fn recusal(
        &self,
        case_id: &str,
        subject: &str,
    ) -> Result<Option<(RecusalReason, DateTime<Utc>)>, StoreError> {
        let Some((reason, at)) = recusals::get(self.db.pool(), case_id, subject).await? else {
            return Ok(None);
        };
        let reason = reason.parse().map_err(|e| Corrupt {
            column: "recusals.reason",
            reason: format!("{e}"),
        })?;
        Ok(Some((reason, at)))
    }

    /// Whether `subject`'s recusal from the case was lifted.
    pub async fn recusal_lifted(&self, case_id: &str, subject: &str) -> Result<bool, StoreError> {
        Ok(recusals::is_lifted(self.db.pool(), case_id, subject).await?)
    }

    /// Lifts `subject`'s recusal from the case, with its event and request id: how it had been
    /// recorded, or `None` when there was none (nothing written then).
    pub async fn lift_recusal(
        &self,
        case_id: &str,
        subject: &str,
        event: &OutboxMessage,
        request: Option<RequestId<'_>>,
        now: DateTime<Utc>,
    ) -> Result<Option<(RecusalReason, DateTime<Utc>)>, StoreError> {
        let mut tx = self.db.begin().await?;
        let Some((reason, at)) = recusals::get(&mut *tx, case_id, subject).await? else {
            return Ok(None);
        };
        if !recusals::lift(&mut tx, case_id, subject, now).await? {
            return Ok(None);
        }
        if let Some(req) = request {
            requests::record(&mut tx, req, case_id, now).await?;
        }
        Outbox::enqueue(&mut tx, event).await?;
        tx.commit().await?;
        let reason = reason.parse().map_err(|e| Corrupt {
            column: "recusals.reason",
            reason: format!("{e}"),
        })?;
        Ok(Some((reason, at)))
    }

    /// Records that `subject` is out of the case, with its event and request id; `false` when
    /// they were out of it already (nothing written then).
    pub async fn record_recusal(
        &self,
        case_id: &str,
        subject: &str,
        reason: RecusalReason,
        event: &OutboxMessage,
        request: Option<RequestId<'_>>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.db.begin().await?;
        if !recusals::record(&mut tx, case_id, subject, reason.as_str(), now).await? {
            return Ok(false);
        }
        if let Some(req) = request {
            requests::record(&mut tx, req, case_id, now).await?;
        }
        Outbox::enqueue(&mut tx, event).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// One page of an organ's inbox — what it was sent, assigned or diverted — by due date.
    pub async fn inbox(&self, q: &InboxQuery) -> Result<Vec<AssignmentRecord>, StoreError> {
        let mut b = Sql::new(format!("SELECT {COLUMNS} FROM assignments WHERE organ = "));
        b.bind(q.organ.clone()).push(
            " AND (state IN ('awaiting_acceptance', 'accepted', 'diverted') \
                   OR (state = 'answered' AND mode = 'assign'))",
        );
        push_not_accused(&mut b, &q.hidden_accused);
        recusals::push_not_recused(&mut b, "assignments.case_id", q.recused.as_deref());
        if let Some(p) = &q.category_prefix {
            b.push(" AND (category = ")
                .bind(p.clone())
                .push(" OR category LIKE ")
                .bind(format!("{p}.%"))
                .push(")");
        }
        let now = micros(q.now);
        match q.bucket {
            Bucket::All => {}
            Bucket::Overdue => {
                b.push(" AND due_at <= ").bind(now);
            }
            Bucket::ToClaim => {
                b.push(" AND state = 'awaiting_acceptance' AND due_at > ")
                    .bind(now);
            }
            Bucket::ToDo => {
                b.push(" AND state <> 'awaiting_acceptance' AND due_at > ")
                    .bind(now);
            }
        }
        b.page(
            "due_at",
            "case_id",
            q.after.clone(),
            Order::Ascending,
            q.limit,
        );
        let rows = b.build().fetch_all(self.db.pool()).await?;
        rows.iter().map(from_row).collect()
    }

    /// One page of a bureau's desk: cases in its triage queue, and objections it must answer,
    /// by the date the law wants them routed (Art. 22).
    pub async fn triage(
        &self,
        bureau: &str,
        hidden_accused: &[String],
        recused: Option<&str>,
        after: Option<(i64, String)>,
        limit: u32,
    ) -> Result<Vec<AssignmentRecord>, StoreError> {
        let mut b = Sql::new(format!(
            "SELECT {COLUMNS} FROM assignments WHERE ((state = 'triage' AND organ = "
        ));
        b.bind(bureau.to_owned())
            .push(") OR (state = 'objected' AND forwarding_bureau = ")
            .bind(bureau.to_owned())
            .push("))");
        push_not_accused(&mut b, hidden_accused);
        recusals::push_not_recused(&mut b, "assignments.case_id", recused);
        b.page("route_due", "case_id", after, Order::Ascending, limit);
        let rows = b.build().fetch_all(self.db.pool()).await?;
        rows.iter().map(from_row).collect()
    }

    /// Writes `record` if its stored version is still `record.version - 1`, with its event and
    /// the request id that caused it.
    pub async fn update(
        &self,
        r: &AssignmentRecord,
        event: &OutboxMessage,
        request: Option<RequestId<'_>>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        Self::write_version(&mut tx, r).await?;
        if let Some(req) = request {
            requests::record(&mut tx, req, &r.case_id, now).await?;
        }
        Outbox::enqueue(&mut tx, event).await?;
        tx.commit().await?;
        Ok(())
    }

    /// `record` over its stored version `record.version - 1`, or `Conflict`.
    async fn write_version(tx: &mut Tx, r: &AssignmentRecord) -> Result<(), StoreError> {
        let mut q = Sql::new("UPDATE assignments SET ");
        for (i, c) in MUTABLE.iter().enumerate() {
            q.push(if i > 0 { ", " } else { "" }).push(c).push(" = ");
            bind_value(&mut q, value(r, c));
        }
        q.push(" WHERE case_id = ")
            .bind(r.case_id.clone())
            .push(" AND version = ")
            .bind(r.version - 1);
        let done = q.build().execute(&mut **tx).await?;
        if done.rows_affected() != 1 {
            return Err(StoreError::Conflict);
        }
        Ok(())
    }

    /// Applies another service's decision about a case, in the consumer's transaction: `change`
    /// gets the stored case and returns it changed, or `None` to leave it. Returns whether it
    /// changed; `Conflict` (nothing written) when a command changed the case since it was read.
    pub async fn apply_decision(
        tx: &mut Tx,
        case_id: &str,
        change: impl FnOnce(&AssignmentRecord) -> Option<AssignmentRecord>,
    ) -> Result<bool, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM assignments WHERE case_id = $1"
        )))
        .bind(case_id)
        .fetch_optional(&mut **tx)
        .await?;
        let next = match row.as_ref().map(from_row).transpose()? {
            Some(r) => change(&r),
            None => None,
        };
        if let Some(next) = &next {
            Self::write_version(tx, next).await?;
        }
        Ok(next.is_some())
    }

    /// Like `apply_decision`, with the event the change publishes, in the same transaction.
    pub async fn apply_with_event(
        tx: &mut Tx,
        case_id: &str,
        change: impl FnOnce(&AssignmentRecord) -> Option<(AssignmentRecord, OutboxMessage)>,
    ) -> Result<bool, StoreError> {
        let mut event = None;
        let changed = Self::apply_decision(tx, case_id, |r| {
            change(r).map(|(next, msg)| {
                event = Some(msg);
                next
            })
        })
        .await?;
        if let Some(msg) = event {
            Outbox::enqueue(tx, &msg).await?;
        }
        Ok(changed)
    }

    /// Whether `req` was applied to `case_id` by the same method (see `requests::applied_to`).
    pub async fn applied_to(
        &self,
        req: Option<RequestId<'_>>,
        case_id: &str,
    ) -> Result<bool, StoreError> {
        Ok(requests::applied_to(self.db.pool(), req, case_id).await?)
    }

    /// The case a request id of this organ was applied to, if it was.
    pub async fn applied_request(&self, req: RequestId<'_>) -> Result<Option<String>, StoreError> {
        Ok(requests::applied(self.db.pool(), req).await?)
    }
}
