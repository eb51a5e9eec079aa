//! The supervision store: one SQL body on PostgreSQL and SQLite (see `petition-storage`), and
//! one conformance suite (tests/store_conformance.rs) run against both.
//!
//! A case file (the case and its clocks) is read and written whole, under the case's version,
//! so that the consumer, the commands and the firing engine never overwrite one another. Each
//! clock row carries what lists and the engine sort by — its last day, its lapse instant, and
//! the instant it must next be looked at — computed on every write from the one arithmetic in
//! `petition_domain::clocks`.

use crate::model::{CaseFile, Entry, LeaderInCharge, NoticeRecord, SupervisedCase};
use crate::workflow::Change;
use chrono::{DateTime, NaiveDate, Utc};
use petition_domain::calendar::{HolidayCalendar, Period};
use petition_domain::clocks::{CaseClock, ClockKind, ClockRules, ClockState, Span};
use petition_events::{Outbox, OutboxMessage};
use petition_grpc::reference::LiveCalendar;
pub use petition_storage::StoreError;
use petition_storage::recusals;
use petition_storage::requests::{self, RequestId};
use petition_storage::{Corrupt, Db, Order, RowExt, Sql, Tx, micros};
use sqlx::any::AnyRow;

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// What `change_cases` does with a case its change leaves alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unchanged {
    /// write its clocks' derived instants afresh (they said something was due that was not)
    Rewrite,
    Skip,
}

/// Which open clocks a list shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DueFilter {
    /// every open clock
    All,
    /// running, lapsing within the reminder lead
    DueSoon,
    Overdue,
    Paused,
}

#[derive(Debug, Clone)]
pub struct DueQuery {
    /// the organs whose clocks are listed
    pub organs: Vec<String>,
    pub filter: DueFilter,
    pub now: DateTime<Utc>,
    /// `DueSoon` ends here
    pub soon_until: DateTime<Utc>,
    pub hidden_accused: Vec<String>,
    /// never a case this person is out of (回避)
    pub recused: Option<String>,
    /// `(due_at micros, "case_id:kind")` of the last row of the previous page
    pub after: Option<(i64, String)>,
    pub limit: u32,
}

/// One row of a due list: the case's number and one of its clocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueRow {
    pub case_id: String,
    pub case_number: String,
    pub clock: CaseClock,
    pub due_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct BacklogQuery {
    /// `None`: every organ; else cases held, routed or received by one of these
    pub organs: Option<Vec<String>>,
    pub hidden_accused: Vec<String>,
    /// never a case this person is out of (回避)
    pub recused: Option<String>,
    pub min_repeats: u32,
    pub now: DateTime<Utc>,
    /// the last case id of the previous page
    pub after: Option<String>,
    pub limit: u32,
}

/// A backlog case and why it is one.
#[derive(Debug, Clone)]
pub struct BacklogRow {
    pub case: SupervisedCase,
    pub repeats: u32,
    pub overdue: bool,
}

#[derive(Debug, Clone)]
pub struct NoticeQuery {
    /// the organs whose notices are listed
    pub organs: Vec<String>,
    pub only_unacknowledged: bool,
    pub hidden_accused: Vec<String>,
    /// never a case this person is out of (回避)
    pub recused: Option<String>,
    /// `(issued_at micros, notice_id)` of the last row of the previous page, newest first
    pub after: Option<(i64, String)>,
    pub limit: u32,
}

const CASE_COLUMNS: &str = "case_id, case_number, received_by, bureau, holder, accused_organ, \
    stage, first_routed_at, extension_requested_days, extension_reason, query_code_digest, \
    answered_by, bureau_rating, organ_rating, rating_reason, rated_at, final_reason, repeat_of, \
    leader, leader_organ, leader_plan, leader_target_day, leader_taken_at, backlog_flag, \
    resolved_at, resolution, petitioner_confirmed, version";

const CLOCK_COLUMNS: &str = "case_id, kind, organ, started_at, period_days, working_days, \
    until_day, extension_days, paused_days, paused_days_late, paused_since, state, stage, ended_at, \
    last_day, due_at, next_fire_at, floor_day, provisional";

const NOTICE_COLUMNS: &str = "notice_id, case_id, case_number, organ, accused_organ, kind, \
    clock, text, copy_to, issued_at, issued_by, feedback_due, acknowledged_at, \
    acknowledged_by, feedback";

fn case_from_row(r: &AnyRow) -> Result<SupervisedCase, StoreError> {
    Ok(SupervisedCase {
        case_id: r.text("case_id")?,
        case_number: r.text("case_number")?,
        received_by: r.text("received_by")?,
        bureau: r.opt_text("bureau")?,
        holder: r.opt_text("holder")?,
        accused_organ: r.opt_text("accused_organ")?,
        stage: r.parsed("stage")?,
        first_routed_at: r.opt_time("first_routed_at")?,
        extension_requested_days: r
            .opt_int("extension_requested_days")?
            .map(|d| u32::try_from(d).unwrap_or(0)),
        extension_reason: r.opt_text("extension_reason")?,
        query_code_digest: r.opt_text("query_code_digest")?,
        answered_by: r.opt_text("answered_by")?,
        bureau_rating: r.opt_parsed("bureau_rating")?,
        organ_rating: r.opt_parsed("organ_rating")?,
        rating_reason: r.opt_text("rating_reason")?,
        rated_at: r.opt_time("rated_at")?,
        final_reason: r.opt_parsed("final_reason")?,
        repeat_of: r.opt_text("repeat_of")?,
        leader: match (r.opt_text("leader")?, r.opt_time("leader_taken_at")?) {
            (Some(leader), Some(taken_at)) => Some(LeaderInCharge {
                leader,
                organ: r.opt_text("leader_organ")?.unwrap_or_default(),
                plan: r.opt_text("leader_plan")?.unwrap_or_default(),
                target_day: r
                    .opt_text("leader_target_day")?
                    .and_then(|d| NaiveDate::parse_from_str(&d, "%Y-%m-%d").ok())
                    .ok_or(Corrupt {
                        column: "leader_target_day",
                        reason: "not a date".into(),
                    })?,
                taken_at,
            }),
            _ => None,
        },
        backlog_flag: r.flag("backlog_flag")?,
        resolved_at: r.opt_time("resolved_at")?,
        resolution: r.opt_text("resolution")?,
        petitioner_confirmed: r.flag("petitioner_confirmed")?,
        version: r.int("version")?,
    })
}

fn count(r: &AnyRow, column: &'static str) -> Result<u32, Corrupt> {
    u32::try_from(r.int(column)?).map_err(|_| Corrupt {
        column,
        reason: "negative or too large".into(),
    })
}

fn clock_from_row(r: &AnyRow) -> Result<CaseClock, StoreError> {
    let span = match (r.opt_text("until_day")?, r.opt_int("period_days")?) {
        (Some(day), _) => Span::Until(NaiveDate::parse_from_str(&day, "%Y-%m-%d").map_err(
            |e| Corrupt {
                column: "until_day",
                reason: e.to_string(),
            },
        )?),
        (None, Some(n)) => {
            let n = u32::try_from(n).map_err(|_| Corrupt {
                column: "period_days",
                reason: "negative".into(),
            })?;
            Span::Period(if r.flag("working_days")? {
                Period::WorkingDays(n)
            } else {
                Period::CalendarDays(n)
            })
        }
        (None, None) => {
            return Err(Corrupt {
                column: "period_days",
                reason: "a clock needs a period or an until day".into(),
            }
            .into());
        }
    };
    Ok(CaseClock {
        kind: r.parsed("kind")?,
        organ: r.opt_text("organ")?,
        started_at: r.time("started_at")?,
        span,
        extension_days: count(r, "extension_days")?,
        paused_days: count(r, "paused_days")?,
        paused_days_late: count(r, "paused_days_late")?,
        paused_since: r.opt_time("paused_since")?,
        state: r.parsed("state")?,
        stage: r.parsed("stage")?,
        ended_at: r.opt_time("ended_at")?,
        floor: floor(r)?,
    })
}

/// The day a clock may not end before: its stored floor, and the last day of a row still
/// marked provisional (rows written before the floor was kept carry only that).
fn floor(r: &AnyRow) -> Result<Option<NaiveDate>, StoreError> {
    let kept: Option<NaiveDate> = r.opt_parsed("floor_day")?;
    if !r.flag("provisional")? {
        return Ok(kept);
    }
    let told: NaiveDate = r.parsed("last_day")?;
    Ok(Some(kept.map_or(told, |k| k.max(told))))
}

fn notice_from_row(r: &AnyRow) -> Result<NoticeRecord, StoreError> {
    Ok(NoticeRecord {
        notice_id: r.text("notice_id")?,
        case_id: r.text("case_id")?,
        case_number: r.text("case_number")?,
        organ: r.text("organ")?,
        accused_organ: r.opt_text("accused_organ")?,
        kind: r.parsed("kind")?,
        clock: r.opt_parsed("clock")?,
        text: r.text("text")?,
        copy_to: r.text("copy_to")?,
        issued_at: r.time("issued_at")?,
        issued_by: r.text("issued_by")?,
        feedback_due: r.opt_time("feedback_due")?,
        acknowledged_at: r.opt_time("acknowledged_at")?,
        acknowledged_by: r.opt_text("acknowledged_by")?,
        feedback: r.opt_text("feedback")?,
    })
}

fn push_not_accused(q: &mut Sql, column: &str, hidden: &[String]) {
    if hidden.is_empty() {
        return;
    }
    q.push(&format!(" AND ({column} IS NULL OR {column} NOT IN ("))
        .bind_list(hidden.iter().cloned())
        .push("))");
}

#[derive(Clone)]
pub struct SupervisionStore {
    db: Db,
    calendar: LiveCalendar,
    rules: ClockRules,
}

impl SupervisionStore {
    pub fn new(db: Db, calendar: LiveCalendar, rules: ClockRules) -> Self {
        Self {
            db,
            calendar,
            rules,
        }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    async fn load_in(tx: &mut Tx, case_id: &str) -> Result<Option<CaseFile>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CASE_COLUMNS} FROM cases WHERE case_id = $1"
        )))
        .bind(case_id)
        .fetch_optional(&mut **tx)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let case = case_from_row(&row)?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CLOCK_COLUMNS} FROM clocks WHERE case_id = $1 ORDER BY started_at, kind"
        )))
        .bind(case_id)
        .fetch_all(&mut **tx)
        .await?;
        let clocks = rows.iter().map(clock_from_row).collect::<Result<_, _>>()?;
        let recused = recusals::of_case(&mut **tx, case_id).await?;
        Ok(Some(CaseFile {
            case,
            clocks,
            recused,
        }))
    }

    /// The staff who are out of the case (回避).
    pub async fn recused(&self, case_id: &str) -> Result<Vec<String>, StoreError> {
        Ok(recusals::of_case(self.db.pool(), case_id).await?)
    }

    /// The id of the case with this number, if supervision follows it.
    pub async fn case_id_of(&self, case_number: &str) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT case_id FROM cases WHERE case_number = $1")
                .bind(case_number)
                .fetch_optional(self.db.pool())
                .await?,
        )
    }

    /// The case file, if supervision follows the case.
    pub async fn load(&self, case_id: &str) -> Result<Option<CaseFile>, StoreError> {
        let mut tx = self.db.begin().await?;
        let f = Self::load_in(&mut tx, case_id).await?;
        tx.commit().await?;
        Ok(f)
    }

    /// Applies an event in the consumer's transaction (which holds the processed-event mark):
    /// reads the file, lets `change` decide, and writes the result. Returns whether the event
    /// changed anything; `Conflict`, with nothing written, when another writer changed the case
    /// since it was read.
    pub async fn apply_event<E>(
        &self,
        tx: &mut Tx,
        case_id: &str,
        calendar: &HolidayCalendar,
        change: impl FnOnce(Option<CaseFile>) -> Result<Option<Change>, E>,
        events: impl FnOnce(&Change) -> Vec<OutboxMessage>,
    ) -> Result<Result<bool, E>, StoreError> {
        let before = Self::load_in(tx, case_id).await?;
        let version = before.as_ref().map(|f| f.case.version);
        let read = before
            .as_ref()
            .map(|f| f.clocks.clone())
            .unwrap_or_default();
        let c = match change(before) {
            Ok(Some(mut c)) => {
                // Most events move one clock of several: the others are not written again.
                c.read = read;
                c
            }
            Ok(None) => return Ok(Ok(false)),
            Err(e) => return Ok(Err(e)),
        };
        let msgs = events(&c);
        self.write(tx, version, &c, &msgs, calendar).await?;
        Ok(Ok(true))
    }

    /// Writes a command's change of a file read at `version`, with its events and the request
    /// id that caused it; `calendar` is the one the change was decided on.
    pub async fn save(
        &self,
        version: i64,
        c: &Change,
        msgs: &[OutboxMessage],
        request: Option<RequestId<'_>>,
        now: DateTime<Utc>,
        calendar: &HolidayCalendar,
    ) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        self.write(&mut tx, Some(version), c, msgs, calendar)
            .await?;
        if let Some(req) = request {
            requests::record(&mut tx, req, &c.file.case.case_id, now).await?;
        }
        tx.commit().await?;
        Ok(())
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

    /// A change whole: the file, then what it said and sent. Every write takes the calendar
    /// its change was decided on, so the instants stored beside a clock (its last day, when it
    /// fires, whether it is provisional) never mix two calendars.
    async fn write(
        &self,
        tx: &mut Tx,
        version: Option<i64>,
        c: &Change,
        msgs: &[OutboxMessage],
        calendar: &HolidayCalendar,
    ) -> Result<(), StoreError> {
        self.write_file(tx, version, c, calendar).await?;
        Self::write_records(tx, &c.file.case.case_id, &c.entries, &c.notices, msgs).await
    }

    /// The case under its version, and its clocks.
    async fn write_file(
        &self,
        tx: &mut Tx,
        version: Option<i64>,
        c: &Change,
        calendar: &HolidayCalendar,
    ) -> Result<(), StoreError> {
        let k = &c.file.case;
        let next = version.map_or(1, |v| v + 1);
        let bind_case = |q: &mut Sql| {
            q.bind(k.case_number.clone())
                .push(", ")
                .bind(k.received_by.clone())
                .push(", ")
                .bind(k.bureau.clone())
                .push(", ")
                .bind(k.holder.clone())
                .push(", ")
                .bind(k.accused_organ.clone())
                .push(", ")
                .bind(k.stage.as_str().to_owned())
                .push(", ")
                .bind(k.first_routed_at.map(micros))
                .push(", ")
                .bind(k.extension_requested_days.map(i64::from))
                .push(", ")
                .bind(k.extension_reason.clone())
                .push(", ")
                .bind(k.query_code_digest.clone())
                .push(", ")
                .bind(k.answered_by.clone())
                .push(", ")
                .bind(k.bureau_rating.map(|r| r.as_str().to_owned()))
                .push(", ")
                .bind(k.organ_rating.map(|r| r.as_str().to_owned()))
                .push(", ")
                .bind(k.rating_reason.clone())
                .push(", ")
                .bind(k.rated_at.map(micros))
                .push(", ")
                .bind(k.final_reason.map(|r| r.as_str().to_owned()))
                .push(", ")
                .bind(k.repeat_of.clone())
                .push(", ")
                .bind(k.leader.as_ref().map(|l| l.leader.clone()))
                .push(", ")
                .bind(k.leader.as_ref().map(|l| l.organ.clone()))
                .push(", ")
                .bind(k.leader.as_ref().map(|l| l.plan.clone()))
                .push(", ")
                .bind(k.leader.as_ref().map(|l| l.target_day.to_string()))
                .push(", ")
                .bind(k.leader.as_ref().map(|l| micros(l.taken_at)))
                .push(", ")
                .bind(i64::from(k.backlog_flag))
                .push(", ")
                .bind(k.resolved_at.map(micros))
                .push(", ")
                .bind(k.resolution.clone())
                .push(", ")
                .bind(i64::from(k.petitioner_confirmed))
                .push(", ")
                .bind(next);
        };
        match version {
            None => {
                let mut q = Sql::new(format!("INSERT INTO cases ({CASE_COLUMNS}) VALUES ("));
                q.bind(k.case_id.clone()).push(", ");
                bind_case(&mut q);
                // The case's first events arrive on two streams at once: whichever inserts
                // second reads the case again. DO NOTHING rather than a unique violation, which
                // would abort a consumer's whole batch on PostgreSQL.
                q.push(") ON CONFLICT (case_id) DO NOTHING");
                if q.build().execute(&mut **tx).await?.rows_affected() != 1 {
                    return Err(StoreError::Conflict);
                }
            }
            Some(v) => {
                let mut q = Sql::new(
                    "UPDATE cases SET (case_number, received_by, bureau, holder, accused_organ, \
                     stage, first_routed_at, extension_requested_days, extension_reason, \
                     query_code_digest, answered_by, bureau_rating, organ_rating, \
                     rating_reason, rated_at, final_reason, repeat_of, leader, leader_organ, \
                     leader_plan, leader_target_day, leader_taken_at, backlog_flag, resolved_at, \
                     resolution, petitioner_confirmed, version) = (",
                );
                bind_case(&mut q);
                q.push(") WHERE case_id = ")
                    .bind(k.case_id.clone())
                    .push(" AND version = ")
                    .bind(v);
                if q.build().execute(&mut **tx).await?.rows_affected() != 1 {
                    return Err(StoreError::Conflict);
                }
            }
        }
        let changed: Vec<&CaseClock> = c
            .file
            .clocks
            .iter()
            .filter(|k| !c.read.contains(k))
            .collect();
        self.write_clocks(tx, &k.case_id, &changed, calendar).await
    }

    /// The timeline entries, notices and events of changes, many rows per statement.
    async fn write_records(
        tx: &mut Tx,
        case_id: &str,
        entries: &[Entry],
        notices: &[NoticeRecord],
        msgs: &[OutboxMessage],
    ) -> Result<(), StoreError> {
        Self::insert_entries(tx, entries.iter().map(|e| (case_id, e))).await?;
        Self::insert_notices(tx, notices).await?;
        Outbox::enqueue_all(tx, msgs).await?;
        Ok(())
    }

    async fn insert_entries<'a>(
        tx: &mut Tx,
        entries: impl Iterator<Item = (&'a str, &'a Entry)>,
    ) -> Result<(), StoreError> {
        let all: Vec<_> = entries.collect();
        for chunk in all.chunks(500) {
            let mut q =
                Sql::new("INSERT INTO timeline (entry_id, case_id, at, kind, text, actor) VALUES ");
            for (i, (case_id, e)) in chunk.iter().enumerate() {
                q.push(if i == 0 { "(" } else { ", (" })
                    .bind(uuid::Uuid::now_v7().to_string())
                    .push(", ")
                    .bind((*case_id).to_owned())
                    .push(", ")
                    .bind(micros(e.at))
                    .push(", ")
                    .bind(e.kind.clone())
                    .push(", ")
                    .bind(e.text.clone())
                    .push(", ")
                    .bind(e.actor.clone())
                    .push(")");
            }
            q.build().execute(&mut **tx).await?;
        }
        Ok(())
    }

    /// The clocks given, in one statement (a case has a handful).
    async fn write_clocks(
        &self,
        tx: &mut Tx,
        case_id: &str,
        clocks: &[&CaseClock],
        calendar: &HolidayCalendar,
    ) -> Result<(), StoreError> {
        if clocks.is_empty() {
            return Ok(());
        }
        let mut q = Sql::new(format!("INSERT INTO clocks ({CLOCK_COLUMNS}) VALUES "));
        for (i, c) in clocks.iter().enumerate() {
            let dl = c.deadline(calendar, self.rules.counting);
            // Only an open clock waits for a year: an ended one is judged and done.
            let provisional = dl.provisional && c.state.is_open();
            if provisional {
                self.calendar.note_provisional(dl.last_day);
            }
            let next_fire = c
                .next_warning(&self.rules, calendar)
                .map(|(at, _)| micros(at));
            let (period_days, working, until) = match c.span {
                Span::Period(Period::CalendarDays(n)) => (Some(i64::from(n)), 0i64, None),
                Span::Period(Period::WorkingDays(n)) => (Some(i64::from(n)), 1, None),
                Span::Until(d) => (None, 0, Some(d.to_string())),
            };
            q.push(if i == 0 { "(" } else { ", (" });
            q.bind(case_id.to_owned())
                .push(", ")
                .bind(c.kind.as_str().to_owned())
                .push(", ")
                .bind(c.organ.clone())
                .push(", ")
                .bind(micros(c.started_at))
                .push(", ")
                .bind(period_days)
                .push(", ")
                .bind(working)
                .push(", ")
                .bind(until)
                .push(", ")
                .bind(i64::from(c.extension_days))
                .push(", ")
                .bind(i64::from(c.paused_days))
                .push(", ")
                .bind(i64::from(c.paused_days_late))
                .push(", ")
                .bind(c.paused_since.map(micros))
                .push(", ")
                .bind(c.state.as_str().to_owned())
                .push(", ")
                .bind(c.stage.as_str().to_owned())
                .push(", ")
                .bind(c.ended_at.map(micros))
                .push(", ")
                .bind(dl.last_day.to_string())
                .push(", ")
                .bind(micros(dl.due))
                .push(", ")
                .bind(next_fire)
                .push(", ")
                .bind(c.floor_after(&dl).map(|d| d.to_string()))
                .push(", ")
                .bind(i64::from(provisional));
            q.push(")");
        }
        q.push(
            " ON CONFLICT (case_id, kind) DO UPDATE SET organ = excluded.organ, \
             started_at = excluded.started_at, period_days = excluded.period_days, \
             working_days = excluded.working_days, until_day = excluded.until_day, \
             extension_days = excluded.extension_days, paused_days = excluded.paused_days, \
             paused_days_late = excluded.paused_days_late, \
             paused_since = excluded.paused_since, state = excluded.state, \
             stage = excluded.stage, ended_at = excluded.ended_at, \
             last_day = excluded.last_day, due_at = excluded.due_at, \
             next_fire_at = excluded.next_fire_at, floor_day = excluded.floor_day, \
             provisional = excluded.provisional",
        );
        q.build().execute(&mut **tx).await?;
        Ok(())
    }

    async fn insert_notices(tx: &mut Tx, notices: &[NoticeRecord]) -> Result<(), StoreError> {
        // 15 parameters a row
        for chunk in notices.chunks(200) {
            let mut q = Sql::new(format!("INSERT INTO notices ({NOTICE_COLUMNS}) VALUES "));
            for (i, n) in chunk.iter().enumerate() {
                q.push(if i == 0 { "(" } else { ", (" })
                    .bind(n.notice_id.clone())
                    .push(", ")
                    .bind(n.case_id.clone())
                    .push(", ")
                    .bind(n.case_number.clone())
                    .push(", ")
                    .bind(n.organ.clone())
                    .push(", ")
                    .bind(n.accused_organ.clone())
                    .push(", ")
                    .bind(n.kind.as_str().to_owned())
                    .push(", ")
                    .bind(n.clock.map(|c| c.as_str().to_owned()))
                    .push(", ")
                    .bind(n.text.clone())
                    .push(", ")
                    .bind(n.copy_to.clone())
                    .push(", ")
                    .bind(micros(n.issued_at))
                    .push(", ")
                    .bind(n.issued_by.clone())
                    .push(", ")
                    .bind(n.feedback_due.map(micros))
                    .push(", ")
                    .bind(n.acknowledged_at.map(micros))
                    .push(", ")
                    .bind(n.acknowledged_by.clone())
                    .push(", ")
                    .bind(n.feedback.clone())
                    .push(")");
            }
            q.build().execute(&mut **tx).await?;
        }
        Ok(())
    }

    /// The cases with a clock to look at by `now`, soonest first: read through the index on
    /// the next firing instant, so the cost follows what is due, not what is open.
    pub async fn due_cases(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT case_id, next_fire_at FROM clocks WHERE next_fire_at IS NOT NULL \
             AND next_fire_at <= $1 ORDER BY next_fire_at LIMIT $2",
        )
        .bind(micros(now))
        .bind(i64::from(limit))
        .fetch_all(self.db.pool())
        .await?;
        let mut ids: Vec<String> = Vec::with_capacity(rows.len());
        for (id, _) in rows {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        Ok(ids)
    }

    /// When the engine must next look, if ever.
    pub async fn next_fire_at(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let v: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(next_fire_at) FROM clocks WHERE next_fire_at IS NOT NULL",
        )
        .fetch_one(self.db.pool())
        .await?;
        Ok(v.and_then(chrono::DateTime::from_timestamp_micros))
    }

    async fn load_many(tx: &mut Tx, ids: &[String]) -> Result<Vec<CaseFile>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut q = Sql::new(format!(
            "SELECT {CASE_COLUMNS} FROM cases WHERE case_id IN ("
        ));
        q.bind_list(ids.iter().cloned()).push(")");
        let cases = q.build().fetch_all(&mut **tx).await?;
        let mut q = Sql::new(format!(
            "SELECT {CLOCK_COLUMNS} FROM clocks WHERE case_id IN ("
        ));
        q.bind_list(ids.iter().cloned())
            .push(") ORDER BY case_id, started_at, kind");
        let clocks = q.build().fetch_all(&mut **tx).await?;
        let mut by_case: std::collections::HashMap<String, Vec<CaseClock>> =
            std::collections::HashMap::new();
        for r in &clocks {
            by_case
                .entry(r.text("case_id")?)
                .or_default()
                .push(clock_from_row(r)?);
        }
        cases
            .iter()
            .map(|r| {
                let case = case_from_row(r)?;
                let clocks = by_case.remove(&case.case_id).unwrap_or_default();
                // The engine's batch: it fires clocks for nobody, so nobody is hidden from.
                Ok(CaseFile {
                    case,
                    clocks,
                    recused: Vec::new(),
                })
            })
            .collect()
    }

    /// Changes a batch of cases with `change`, in one transaction, each case under its
    /// version: a case changed meanwhile is left for the next round. Returns how many cases
    /// changed and how many conflicted. The firing engine passes `Unchanged::Rewrite`, the
    /// recount `Unchanged::Skip`.
    pub async fn change_cases(
        &self,
        ids: &[String],
        calendar: &HolidayCalendar,
        change: impl Fn(CaseFile) -> Option<Change>,
        events: impl Fn(&Change) -> Vec<OutboxMessage>,
        unchanged: Unchanged,
    ) -> Result<(usize, usize), StoreError> {
        let mut tx = self.db.begin().await?;
        let files = Self::load_many(&mut tx, ids).await?;
        let (mut changed, mut conflicts) = (0, 0);
        let (mut entries, mut notices, mut msgs) = (Vec::new(), Vec::new(), Vec::new());
        for file in files {
            let version = file.case.version;
            let case_id = file.case.case_id.clone();
            let Some(c) = change(file.clone()) else {
                if unchanged == Unchanged::Skip {
                    continue;
                }
                // Nothing fired though the row said so (the calendar or the rules changed
                // since it was written): write its instants afresh under the case's version —
                // never over a change committed since it was read — or every scan reads it.
                let fresh = Change {
                    file,
                    // every clock written again: the instants derived from them changed
                    read: Vec::new(),
                    entries: Vec::new(),
                    notices: Vec::new(),
                    events: Vec::new(),
                };
                match self
                    .write_file(&mut tx, Some(version), &fresh, calendar)
                    .await
                {
                    Ok(()) => {}
                    Err(StoreError::Conflict) => conflicts += 1,
                    Err(e) => return Err(e),
                }
                continue;
            };
            match self.write_file(&mut tx, Some(version), &c, calendar).await {
                Ok(()) => changed += 1,
                Err(StoreError::Conflict) => {
                    conflicts += 1;
                    continue;
                }
                Err(e) => return Err(e),
            }
            msgs.extend(events(&c));
            entries.extend(c.entries.into_iter().map(|e| (case_id.clone(), e)));
            notices.extend(c.notices);
        }
        Self::insert_entries(&mut tx, entries.iter().map(|(id, e)| (id.as_str(), e))).await?;
        Self::insert_notices(&mut tx, &notices).await?;
        Outbox::enqueue_all(&mut tx, &msgs).await?;
        tx.commit().await?;
        Ok((changed, conflicts))
    }

    /// One page of the open clocks marked provisional, by case and kind: what a newly loaded
    /// calendar counts again (the day each was announced with is read with its case, in the
    /// recount's own transaction). Read through a partial index, so the cost follows the
    /// provisional clocks, not the open ones.
    pub async fn provisional_clocks(
        &self,
        after: Option<&(String, ClockKind)>,
        limit: u32,
    ) -> Result<Vec<(String, ClockKind)>, StoreError> {
        let mut q = Sql::new(
            "SELECT case_id, kind FROM clocks WHERE provisional = 1 \
             AND state IN ('running', 'paused', 'overdue')",
        );
        if let Some((case_id, kind)) = after {
            q.push(" AND (case_id > ")
                .bind(case_id.clone())
                .push(" OR (case_id = ")
                .bind(case_id.clone())
                .push(" AND kind > ")
                .bind(kind.as_str().to_owned())
                .push("))");
        }
        q.push(" ORDER BY case_id, kind LIMIT ")
            .bind(i64::from(limit));
        let rows = q.build().fetch_all(self.db.pool()).await?;
        rows.iter()
            .map(|r| Ok((r.text("case_id")?, r.parsed("kind")?)))
            .collect()
    }

    /// How many open clocks are provisional: for the metrics of the admin port.
    pub async fn open_provisional_clocks(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM clocks WHERE provisional = 1 \
             AND state IN ('running', 'paused', 'overdue')",
        )
        .fetch_one(self.db.pool())
        .await?)
    }

    pub async fn timeline(&self, case_id: &str) -> Result<Vec<Entry>, StoreError> {
        let rows = sqlx::query(
            "SELECT at, kind, text, actor FROM timeline WHERE case_id = $1 ORDER BY at, entry_id",
        )
        .bind(case_id)
        .fetch_all(self.db.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Entry {
                    at: r.time("at")?,
                    kind: r.text("kind")?,
                    text: r.text("text")?,
                    actor: r.text("actor")?,
                })
            })
            .collect()
    }

    /// One page of the open clocks an organ owes, by lapse instant.
    pub async fn due(&self, q: &DueQuery) -> Result<Vec<DueRow>, StoreError> {
        let cols: String = CLOCK_COLUMNS
            .split(", ")
            .map(|c| format!("k.{}", c.trim()))
            .collect::<Vec<_>>()
            .join(", ");
        let mut b = Sql::new(format!(
            "SELECT {cols}, c.case_number, (k.case_id || ':' || k.kind) AS clock_key \
             FROM clocks k JOIN cases c ON c.case_id = k.case_id WHERE k.organ IN ("
        ));
        b.bind_list(q.organs.iter().cloned()).push(")");
        push_not_accused(&mut b, "c.accused_organ", &q.hidden_accused);
        recusals::push_not_recused(&mut b, "c.case_id", q.recused.as_deref());
        let now = micros(q.now);
        match q.filter {
            DueFilter::All => {
                b.push(" AND k.state IN ('running', 'paused', 'overdue')");
            }
            DueFilter::Paused => {
                b.push(" AND k.state = 'paused'");
            }
            DueFilter::Overdue => {
                // the engine may not have fired yet: a running clock past its end is overdue
                b.push(" AND (k.state = 'overdue' OR (k.state = 'running' AND k.due_at <= ")
                    .bind(now)
                    .push("))");
            }
            DueFilter::DueSoon => {
                b.push(" AND k.state = 'running' AND k.due_at > ")
                    .bind(now)
                    .push(" AND k.due_at <= ")
                    .bind(micros(q.soon_until));
            }
        }
        b.page(
            "k.due_at",
            "(k.case_id || ':' || k.kind)",
            q.after.clone(),
            Order::Ascending,
            q.limit,
        );
        let rows = b.build().fetch_all(self.db.pool()).await?;
        rows.iter()
            .map(|r| {
                Ok(DueRow {
                    case_id: r.text("case_id")?,
                    case_number: r.text("case_number")?,
                    clock: clock_from_row(r)?,
                    due_at: r.time("due_at")?,
                })
            })
            .collect()
    }

    /// One page of the backlog (信访积案) within `scope`: unresolved cases past the handling
    /// limit, repeated `min_repeats` times or more, or flagged by hand; by case number.
    pub async fn backlog(&self, q: &BacklogQuery) -> Result<Vec<BacklogRow>, StoreError> {
        let cols: String = CASE_COLUMNS
            .split(", ")
            .map(|c| format!("c.{}", c.trim()))
            .collect::<Vec<_>>()
            .join(", ");
        let now = micros(q.now);
        let mut b = Sql::new(format!(
            "SELECT {cols}, (SELECT COUNT(*) FROM cases r WHERE r.repeat_of = c.case_id) AS repeats, \
             CASE WHEN EXISTS (SELECT 1 FROM clocks k WHERE k.case_id = c.case_id \
             AND k.kind = 'handling' AND (k.state = 'overdue' OR (k.state = 'running' AND k.due_at <= "
        ));
        b.bind(now).push(
            "))) THEN 1 ELSE 0 END AS overdue FROM cases c WHERE c.resolved_at IS NULL \
             AND c.stage <> 'linked' AND c.stage <> 'diverted'",
        );
        push_not_accused(&mut b, "c.accused_organ", &q.hidden_accused);
        recusals::push_not_recused(&mut b, "c.case_id", q.recused.as_deref());
        if let Some(organs) = &q.organs {
            if organs.is_empty() {
                return Ok(Vec::new());
            }
            b.push(" AND (c.holder IN (")
                .bind_list(organs.iter().cloned())
                .push(") OR c.bureau IN (")
                .bind_list(organs.iter().cloned())
                .push(") OR c.received_by IN (")
                .bind_list(organs.iter().cloned())
                .push("))");
        }
        b.push(" AND (c.backlog_flag = 1 OR (SELECT COUNT(*) FROM cases r WHERE r.repeat_of = c.case_id) >= ")
            .bind(i64::from(q.min_repeats))
            .push(
                " OR EXISTS (SELECT 1 FROM clocks k WHERE k.case_id = c.case_id AND k.kind = 'handling' \
                 AND (k.state = 'overdue' OR (k.state = 'running' AND k.due_at <= ",
            )
            .bind(now)
            .push("))))");
        if let Some(after) = &q.after {
            b.push(" AND c.case_id > ").bind(after.clone());
        }
        b.push(" ORDER BY c.case_id LIMIT ")
            .bind(i64::from(q.limit));
        let rows = b.build().fetch_all(self.db.pool()).await?;
        rows.iter()
            .map(|r| {
                Ok(BacklogRow {
                    case: case_from_row(r)?,
                    repeats: count(r, "repeats")?,
                    overdue: r.flag("overdue")?,
                })
            })
            .collect()
    }

    /// One page of the notices sent to an organ, newest first.
    pub async fn notices(&self, q: &NoticeQuery) -> Result<Vec<NoticeRecord>, StoreError> {
        let mut b = Sql::new(format!(
            "SELECT {NOTICE_COLUMNS} FROM notices WHERE organ IN ("
        ));
        b.bind_list(q.organs.iter().cloned()).push(")");
        push_not_accused(&mut b, "accused_organ", &q.hidden_accused);
        recusals::push_not_recused(&mut b, "notices.case_id", q.recused.as_deref());
        if q.only_unacknowledged {
            b.push(" AND acknowledged_at IS NULL");
        }
        b.page(
            "issued_at",
            "notice_id",
            q.after.clone(),
            Order::Descending,
            q.limit,
        );
        let rows = b.build().fetch_all(self.db.pool()).await?;
        rows.iter().map(notice_from_row).collect()
    }

    /// The newest notice of `kind` about a case that `issued_by` issued.
    pub async fn latest_notice(
        &self,
        case_id: &str,
        kind: crate::model::NoticeKind,
        issued_by: &str,
    ) -> Result<Option<NoticeRecord>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {NOTICE_COLUMNS} FROM notices WHERE case_id = $1 AND kind = $2 \
             AND issued_by = $3 ORDER BY issued_at DESC, notice_id DESC LIMIT 1"
        )))
        .bind(case_id)
        .bind(kind.as_str())
        .bind(issued_by)
        .fetch_optional(self.db.pool())
        .await?;
        row.as_ref().map(notice_from_row).transpose()
    }

    pub async fn notice(&self, notice_id: &str) -> Result<Option<NoticeRecord>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {NOTICE_COLUMNS} FROM notices WHERE notice_id = $1"
        )))
        .bind(notice_id)
        .fetch_optional(self.db.pool())
        .await?;
        row.as_ref().map(notice_from_row).transpose()
    }

    /// Records the organ's acknowledgment and written feedback, once: `Conflict` if another
    /// acknowledgment came first.
    pub async fn acknowledge(
        &self,
        n: &NoticeRecord,
        request: Option<RequestId<'_>>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        let done = sqlx::query(
            "UPDATE notices SET acknowledged_at = $1, acknowledged_by = $2, feedback = $3 \
             WHERE notice_id = $4 AND acknowledged_at IS NULL",
        )
        .bind(n.acknowledged_at.map(micros))
        .bind(&n.acknowledged_by)
        .bind(&n.feedback)
        .bind(&n.notice_id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Err(StoreError::Conflict);
        }
        sqlx::query(
            "INSERT INTO timeline (entry_id, case_id, at, kind, text, actor) \
             VALUES ($1, $2, $3, 'notice.acknowledged', $4, $5)",
        )
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(&n.case_id)
        .bind(micros(now))
        .bind(format!(
            "{} acknowledged the {} notice: {}",
            n.organ,
            n.kind,
            n.feedback.as_deref().unwrap_or_default()
        ))
        .bind(n.acknowledged_by.as_deref().unwrap_or_default())
        .execute(&mut *tx)
        .await?;
        if let Some(req) = request {
            requests::record(&mut tx, req, &n.notice_id, now).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// How many clocks are open, by state: for the metrics of the admin port.
    pub async fn open_clocks(&self) -> Result<Vec<(ClockState, i64)>, StoreError> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT state, COUNT(*) FROM clocks WHERE state IN ('running', 'paused', 'overdue') \
             GROUP BY state",
        )
        .fetch_all(self.db.pool())
        .await?;
        rows.into_iter()
            .map(|(s, n)| {
                Ok((
                    s.parse()
                        .map_err(|e: petition_domain::UnknownValue| Corrupt {
                            column: "state",
                            reason: e.to_string(),
                        })?,
                    n,
                ))
            })
            .collect()
    }
}
