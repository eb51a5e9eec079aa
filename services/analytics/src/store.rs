//! Analytics' storage, in both dialects: the event copies, the case facts and the rollups.
//!
//! No two writers may fold one case at once: a lost update would break the rule that the
//! rollups are the sum of the facts. On PostgreSQL the three stream consumers (and replicas)
//! write at once, each locking its cases' rows — created first as empty placeholders, so that
//! a new case has a row to lock — and then its rollup cells, every set in key order, so that
//! no two transactions wait on each other in a circle. On SQLite, one connection, writers take
//! turns. A rebuild locks the tables against writers (not readers) while it runs. Readers never
//! wait for writers on PostgreSQL: each transaction commits the facts and their rollups
//! together.

use crate::fact::{Derived, Fact, Latest, Outcome, Registration, Route};
use crate::period::{Month, Months};
use crate::tally::{self, Basis, Counts, Deltas, Dim, Role, Score, ScoreKey, TallyKey};
use chrono::{DateTime, Utc};
use petition_auth::FigureScope;
use petition_domain::calendar::HolidayCalendar;
use petition_proto::v1::EventEnvelope;
use petition_storage::{Corrupt, Db, Dialect, RowExt, Sql, Tx, micros};
use prost::Message;
use sqlx::any::AnyRow;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use tokio::sync::RwLock;

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("stored data: {0}")]
    Corrupt(#[from] Corrupt),
    #[error("stored event {0}: {1}")]
    Event(String, prost::DecodeError),
}

type Result<T> = std::result::Result<T, StoreError>;

const FACT_COLUMNS: [&str; 54] = [
    "case_id",
    "registered",
    "case_number",
    "channel",
    "received_by",
    "received_at",
    "registered_at",
    "category",
    "type_of_matter",
    "location",
    "people_present",
    "petitioner_count",
    "age_band",
    "sex",
    "is_group",
    "leapfrog",
    "is_repeat",
    "repeat_of",
    "imported",
    "accused_organ",
    "routed_at",
    "route_at",
    "route_organ",
    "route_outcome",
    "route_mode",
    "route_bureau",
    "reassigned_at",
    "reassigned_organ",
    "accepted_at",
    "accepted_by_at",
    "accepted_by",
    "handling_due",
    "extended",
    "objections",
    "answered_at",
    "rating_at",
    "bureau_rating",
    "organ_rating",
    "reviews",
    "final_at",
    "urged",
    "supervised",
    "leader_at",
    "leader_organ_at",
    "leader_organ",
    "backlog_flag",
    "resolved_at",
    "organ",
    "is_open",
    "received_month",
    "registered_month",
    "routed_month",
    "route_due",
    "accept_due",
];

/// Rows a multi-row statement carries: 54 parameters a fact, 600 facts, stay below SQLite's 32,766.
const FACT_CHUNK: usize = 600;
const CELL_CHUNK: usize = 2000;

#[derive(Clone)]
pub struct AnalyticsStore {
    db: Db,
    /// shared by concurrent writers on PostgreSQL, exclusive on SQLite and for a rebuild
    writers: Arc<RwLock<()>>,
}

/// What a batch did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Ingested {
    /// events seen for the first time
    pub fresh: usize,
    /// cases whose fact changed
    pub cases: usize,
}

/// One row of a rollup sum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sum {
    pub month: i64,
    pub received_by: String,
    pub organ: String,
    pub dim: Dim,
    pub value: String,
    pub cases: i64,
    pub persons: i64,
}

impl AnalyticsStore {
    pub fn new(db: Db) -> Self {
        Self {
            db,
            writers: Arc::new(RwLock::new(())),
        }
    }

    pub fn dialect(&self) -> Dialect {
        self.db.dialect()
    }

    /// Applies a read's events: keeps a copy of each one seen for the first time (the copy is
    /// also the mark that makes a redelivery change nothing), folds them into their cases, and
    /// moves the rollups by the difference, all in one transaction.
    /// `shard`: which copy of the rollup cells this writer moves (one per stream consumer).
    pub async fn ingest(
        &self,
        events: &[EventEnvelope],
        calendar: &HolidayCalendar,
        shard: i16,
    ) -> Result<Ingested> {
        let postgres = self.db.dialect() == Dialect::Postgres;
        let (_shared, _alone);
        if postgres {
            _shared = self.writers.read().await;
        } else {
            _alone = self.writers.write().await;
        }
        let mut tx = self.db.begin().await?;
        let fresh = insert_events(&mut tx, events).await?;
        if fresh.is_empty() {
            tx.commit().await?;
            return Ok(Ingested::default());
        }
        // A recusal (回避) counts in no figure; its copy keeps the case out of that person's
        // lists.
        for e in &fresh {
            petition_grpc::recusal::apply(&mut tx, e).await?;
        }
        let mut ids: Vec<&str> = fresh.iter().map(|e| e.case_id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut stored = lock_facts(&mut tx, &ids, postgres).await?;
        let mut folded: HashMap<&str, Fact> = HashMap::new();
        for e in &fresh {
            let fact = folded.entry(e.case_id.as_str()).or_insert_with(|| {
                stored
                    .get(e.case_id.as_str())
                    .map(|(f, _)| f.clone())
                    .unwrap_or_else(|| Fact::new(&e.case_id))
            });
            fact.apply(e);
        }
        let mut deltas = Deltas::default();
        let mut rows = Vec::new();
        for (id, fact) in folded {
            let derived = fact.derive(calendar);
            if let Some((old, old_derived)) = stored.remove(id) {
                if old == fact && old_derived == derived {
                    continue;
                }
                deltas.add(&tally::contribution(&old, &old_derived), -1);
            }
            deltas.add(&tally::contribution(&fact, &derived), 1);
            rows.push((fact, derived));
        }
        let cases = rows.len();
        rows.sort_by(|a, b| a.0.case_id.cmp(&b.0.case_id));
        write_facts(&mut tx, &rows, true).await?;
        write_deltas(&mut tx, deltas, shard).await?;
        tx.commit().await?;
        Ok(Ingested {
            fresh: fresh.len(),
            cases,
        })
    }

    /// Replays every stored event into fresh facts and rollups, in one transaction: readers
    /// see the old read models until it commits, and the consumers wait their turn (their
    /// events stay in the streams meanwhile). Returns (events, cases).
    pub async fn rebuild(&self, calendar: &HolidayCalendar) -> Result<(u64, u64)> {
        let _alone = self.writers.write().await;
        let mut tx = self.db.begin().await?;
        if self.db.dialect() == Dialect::Postgres {
            // Writers of other processes wait; readers do not. The events first, as every
            // writer takes them first.
            sqlx::query("LOCK TABLE events, cases, tally, scores IN EXCLUSIVE MODE")
                .execute(&mut *tx)
                .await?;
        }
        for t in ["tally", "scores", "cases"] {
            sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {t}")))
                .execute(&mut *tx)
                .await?;
        }
        let mut deltas = Deltas::default();
        let (mut events, mut cases) = (0u64, 0u64);
        let mut current: Option<Fact> = None;
        let mut rows: Vec<(Fact, Derived)> = Vec::new();
        let mut after: Option<(String, String)> = None;
        loop {
            let mut q = Sql::new("SELECT case_id, event_id, payload FROM events");
            // A row comparison, which both dialects read as one range of the primary key (the
            // spelled-out OR makes PostgreSQL scan from the start on every page).
            if let Some((c, e)) = &after {
                q.push(" WHERE (case_id, event_id) > (")
                    .bind(c.clone())
                    .push(", ")
                    .bind(e.clone())
                    .push(")");
            }
            q.push(" ORDER BY case_id, event_id LIMIT 20000");
            let page = q.build().fetch_all(&mut *tx).await?;
            if page.is_empty() {
                break;
            }
            for row in &page {
                let (case_id, event_id) = (row.text("case_id")?, row.text("event_id")?);
                let e = EventEnvelope::decode(row.bytes("payload")?.as_slice())
                    .map_err(|err| StoreError::Event(event_id.clone(), err))?;
                if current.as_ref().is_some_and(|f| f.case_id != case_id) {
                    let f = current.take().expect("checked");
                    let d = f.derive(calendar);
                    deltas.add(&tally::contribution(&f, &d), 1);
                    rows.push((f, d));
                    cases += 1;
                }
                current.get_or_insert_with(|| Fact::new(&case_id)).apply(&e);
                events += 1;
                after = Some((case_id, event_id));
            }
            if rows.len() >= 5000 {
                write_facts(&mut tx, &rows, false).await?;
                rows.clear();
            }
        }
        if let Some(f) = current.take() {
            let d = f.derive(calendar);
            deltas.add(&tally::contribution(&f, &d), 1);
            rows.push((f, d));
            cases += 1;
        }
        write_facts(&mut tx, &rows, false).await?;
        write_deltas(&mut tx, deltas, 0).await?;
        tx.commit().await?;
        Ok((events, cases))
    }

    /// The read models as rows of text, in key order, without the cells whose counts fell to
    /// zero: what a rebuild must reproduce exactly.
    pub async fn dump(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let cols = FACT_COLUMNS.join(", ");
        let queries = [
            format!("SELECT {cols} FROM cases ORDER BY case_id"),
            "SELECT month, dim, value, received_by, organ, accused, CAST(SUM(cases) AS BIGINT), \
             CAST(SUM(persons) AS BIGINT) FROM tally GROUP BY month, dim, value, received_by, organ, accused \
             HAVING SUM(cases) <> 0 OR SUM(persons) <> 0 ORDER BY month, dim, value, received_by, organ, accused"
                .to_owned(),
            format!(
                "SELECT basis, month, role, organ, accused, {} FROM scores GROUP BY basis, month, role, organ, accused \
                 HAVING {} ORDER BY basis, month, role, organ, accused",
                Score::COLUMNS
                    .map(|c| format!("CAST(SUM({c}) AS BIGINT)"))
                    .join(", "),
                Score::COLUMNS
                    .map(|c| format!("SUM({c}) <> 0"))
                    .join(" OR ")
            ),
        ];
        for q in queries {
            for row in sqlx::query(sqlx::AssertSqlSafe(q))
                .fetch_all(self.db.pool())
                .await?
            {
                use sqlx::Row;
                let mut line = Vec::new();
                for i in 0..row.len() {
                    let v: Option<String> = row
                        .try_get::<Option<String>, _>(i)
                        .ok()
                        .flatten()
                        .or_else(|| {
                            row.try_get::<Option<i64>, _>(i)
                                .ok()
                                .flatten()
                                .map(|v| v.to_string())
                        })
                        .or_else(|| {
                            row.try_get::<Option<i32>, _>(i)
                                .ok()
                                .flatten()
                                .map(|v| v.to_string())
                        })
                        .or_else(|| {
                            row.try_get::<Option<i16>, _>(i)
                                .ok()
                                .flatten()
                                .map(|v| v.to_string())
                        });
                    line.push(v.unwrap_or_else(|| "∅".into()));
                }
                out.push(line.join("|"));
            }
        }
        Ok(out)
    }

    pub async fn counts(&self) -> Result<(i64, i64)> {
        let row = sqlx::query(
            "SELECT (SELECT count(*) FROM events) AS events, (SELECT count(*) FROM cases) AS cases",
        )
        .fetch_one(self.db.pool())
        .await?;
        Ok((row.int("events")?, row.int("cases")?))
    }

    /// Sums of the tally over `months` within `scope`, for `dims`, grouped by the key columns
    /// named in `by` (any of month, received_by, organ; dim and value always).
    pub async fn sums(
        &self,
        months: Months,
        scope: &FigureScope,
        dims: &[Dim],
        by: &[&str],
    ) -> Result<Vec<Sum>> {
        let cols: Vec<&str> = ["month", "received_by", "organ"]
            .into_iter()
            .filter(|c| by.contains(c))
            .collect();
        let mut select = String::from("SELECT dim, value");
        for c in ["month", "received_by", "organ"] {
            if cols.contains(&c) {
                select.push_str(&format!(", {c}"));
            } else if c == "month" {
                select.push_str(", 0 AS month");
            } else {
                select.push_str(&format!(", '' AS {c}"));
            }
        }
        let mut q = Sql::new(format!(
            "{select}, CAST(SUM(cases) AS BIGINT) AS cases, CAST(SUM(persons) AS BIGINT) AS persons FROM tally WHERE month BETWEEN "
        ));
        q.bind(months.first.key())
            .push(" AND ")
            .bind(months.last.key())
            .push(" AND dim IN (")
            .bind_list(dims.iter().map(|d| d.as_str().to_owned()))
            .push(")");
        scope_filter(&mut q, scope, "received_by", "organ", "accused");
        q.push(" GROUP BY dim, value");
        for c in &cols {
            q.push(&format!(", {c}"));
        }
        let rows = q.build().fetch_all(self.db.pool()).await?;
        rows.iter()
            .map(|r| {
                Ok(Sum {
                    month: r.int("month")?,
                    received_by: r.text("received_by")?,
                    organ: r.text("organ")?,
                    dim: r.parsed("dim")?,
                    value: r.text("value")?,
                    cases: r.int("cases")?,
                    persons: r.int("persons")?,
                })
            })
            .collect()
    }

    /// The scorecard counters of `months` on `basis`, per role and organ, within `scope`, with
    /// the open cases past a limit at `now` added to the denominators.
    pub async fn scores(
        &self,
        months: Months,
        basis: Basis,
        scope: &FigureScope,
        now: DateTime<Utc>,
    ) -> Result<HashMap<(Role, String), Score>> {
        let mut q = Sql::new("SELECT role, organ");
        for c in Score::COLUMNS {
            // PostgreSQL sums BIGINT to NUMERIC
            q.push(&format!(", CAST(SUM({c}) AS BIGINT) AS {c}"));
        }
        q.push(" FROM scores WHERE basis = ")
            .bind(basis.as_str().to_owned())
            .push(" AND month BETWEEN ")
            .bind(months.first.key())
            .push(" AND ")
            .bind(months.last.key());
        scope_filter(&mut q, scope, "organ", "organ", "accused");
        q.push(" GROUP BY role, organ");
        let mut out: HashMap<(Role, String), Score> = HashMap::new();
        for r in q.build().fetch_all(self.db.pool()).await? {
            let mut v = [0i64; 11];
            for (slot, c) in v.iter_mut().zip(Score::COLUMNS) {
                *slot = r.int(c)?;
            }
            out.insert((r.parsed("role")?, r.text("organ")?), Score::from_values(v));
        }
        let month_col = match basis {
            Basis::Petition => "received_month",
            Basis::Registration => "registered_month",
            Basis::Exchange => "routed_month",
        };
        let now = micros(now);
        // (what is late, whose card, which counter): each a partial index's worth of rows
        let late = [
            (
                "routed_at IS NULL AND route_due < ",
                "received_by",
                Role::Registrar,
                0,
            ),
            (
                "accepted_at IS NULL AND routed_at IS NOT NULL AND accept_due < ",
                "route_organ",
                Role::Responsible,
                0,
            ),
            (
                "answered_at IS NULL AND handling_due IS NOT NULL AND handling_due < ",
                "received_by",
                Role::Registrar,
                1,
            ),
            (
                "answered_at IS NULL AND handling_due IS NOT NULL AND handling_due < ",
                "organ",
                Role::Responsible,
                1,
            ),
        ];
        for (cond, col, role, which) in late {
            let mut q = Sql::new(format!(
                "SELECT {col} AS organ, count(*) AS n FROM cases WHERE is_open = 1 AND {cond}"
            ));
            q.bind(now)
                .push(&format!(" AND {month_col} BETWEEN "))
                .bind(months.first.key())
                .push(" AND ")
                .bind(months.last.key());
            scope_filter(&mut q, scope, col, col, "COALESCE(accused_organ, '')");
            q.push(&format!(" GROUP BY {col}"));
            for r in q.build().fetch_all(self.db.pool()).await? {
                let Some(organ) = r.opt_text("organ")? else {
                    continue;
                };
                let s = out.entry((role, organ)).or_default();
                let n = r.int("n")?;
                if which == 0 {
                    s.timely_den += n;
                } else {
                    s.on_time_den += n;
                }
            }
        }
        Ok(out)
    }

    /// Cases of `scope` as their facts, narrowed by `condition` (which appends ` AND …` to the
    /// WHERE clause), oldest first.
    pub async fn facts_where(
        &self,
        scope: &FigureScope,
        condition: impl FnOnce(&mut Sql),
        limit: Option<i64>,
    ) -> Result<Vec<(Fact, Derived)>> {
        let mut q = Sql::new(format!(
            "SELECT {} FROM cases WHERE registered = 1",
            FACT_COLUMNS.join(", ")
        ));
        condition(&mut q);
        scope_filter(
            &mut q,
            scope,
            "received_by",
            "organ",
            "COALESCE(accused_organ, '')",
        );
        petition_storage::recusals::push_not_recused(
            &mut q,
            "cases.case_id",
            scope.recused.as_deref(),
        );
        q.push(" ORDER BY received_at, case_id");
        if let Some(l) = limit {
            q.push(" LIMIT ").bind(l);
        }
        let rows = q.build().fetch_all(self.db.pool()).await?;
        rows.iter().map(read_fact).collect()
    }

    /// One page of the export: the cases whose `month_col` lies in `months`, after `after`.
    pub async fn export_page(
        &self,
        scope: &FigureScope,
        month_col: &str,
        months: Months,
        after: Option<(i64, String)>,
        limit: u32,
    ) -> Result<Vec<(Fact, Derived)>> {
        let mut q = Sql::new(format!(
            "SELECT {} FROM cases WHERE registered = 1 AND {month_col} BETWEEN ",
            FACT_COLUMNS.join(", ")
        ));
        q.bind(months.first.key())
            .push(" AND ")
            .bind(months.last.key());
        // On the petition date nothing of the period lies before its first day, which lets the
        // index start there (a case registered or routed in the period may have come earlier).
        if month_col == "received_month" {
            q.push(" AND received_at >= ").bind(micros(
                petition_domain::calendar::end_of_local_day(
                    months.first.first_day() - chrono::Duration::days(1),
                ),
            ));
        }
        scope_filter(
            &mut q,
            scope,
            "received_by",
            "organ",
            "COALESCE(accused_organ, '')",
        );
        petition_storage::recusals::push_not_recused(
            &mut q,
            "cases.case_id",
            scope.recused.as_deref(),
        );
        q.page(
            "received_at",
            "case_id",
            after,
            petition_storage::Order::Ascending,
            limit,
        );
        let rows = q.build().fetch_all(self.db.pool()).await?;
        rows.iter().map(read_fact).collect()
    }

    /// The backlog (积案) within `scope` at `now`: open cases flagged by hand, past the
    /// handling limit, or repeated at least `repeats` times — counting only repeats the caller
    /// may see, so that no accusation against its own chain shows even as a count. Returns the
    /// total, the count per responsible organ, and the oldest `limit` cases with their repeats.
    pub async fn backlog(
        &self,
        scope: &FigureScope,
        now: DateTime<Utc>,
        repeats: i64,
        limit: i64,
    ) -> Result<Backlog> {
        let condition = |q: &mut Sql| {
            q.push(" AND is_open = 1 AND (backlog_flag = 1 OR (answered_at IS NULL AND handling_due < ")
                .bind(micros(now))
                .push(") OR case_id IN (SELECT r.repeat_of FROM cases r WHERE r.repeat_of IS NOT NULL");
            hidden_filter(q, scope, "COALESCE(r.accused_organ, '')");
            q.push(" GROUP BY r.repeat_of HAVING count(*) >= ")
                .bind(repeats)
                .push("))");
        };
        let mut q = Sql::new(
            "SELECT COALESCE(organ, '') AS organ, count(*) AS n FROM cases WHERE registered = 1",
        );
        condition(&mut q);
        scope_filter(
            &mut q,
            scope,
            "received_by",
            "organ",
            "COALESCE(accused_organ, '')",
        );
        q.push(" GROUP BY COALESCE(organ, '')");
        let mut by_organ = Vec::new();
        for r in q.build().fetch_all(self.db.pool()).await? {
            by_organ.push((r.text("organ")?, r.int("n")?));
        }
        let cases = self.facts_where(scope, condition, Some(limit)).await?;
        let mut counted = HashMap::new();
        let ids: Vec<String> = cases.iter().map(|(f, _)| f.case_id.clone()).collect();
        for chunk in ids.chunks(500) {
            let mut q = Sql::new(
                "SELECT repeat_of, count(*) AS n FROM cases WHERE repeat_of IS NOT NULL AND repeat_of IN (",
            );
            q.bind_list(chunk.iter().cloned()).push(")");
            hidden_filter(&mut q, scope, "COALESCE(accused_organ, '')");
            q.push(" GROUP BY repeat_of");
            for r in q.build().fetch_all(self.db.pool()).await? {
                counted.insert(r.text("repeat_of")?, r.int("n")?);
            }
        }
        Ok(Backlog {
            total: by_organ.iter().map(|(_, n)| n).sum(),
            by_organ,
            cases: cases
                .into_iter()
                .map(|(f, _)| {
                    let n = counted.get(&f.case_id).copied().unwrap_or(0);
                    (f, n)
                })
                .collect(),
        })
    }

    /// Writes a suggestion (recorded or answered) and its audit entry, together.
    pub async fn save_suggestion(
        &self,
        s: &SuggestionRow,
        audit: &petition_audit::Entry,
    ) -> Result<()> {
        let mut q = Sql::new(
            "INSERT INTO suggestions (id, organ, made_on, made_month, addressee, title, body, adoption, outcome, recorded_at) VALUES (",
        );
        q.bind(s.id.clone())
            .push(", ")
            .bind(s.organ.clone())
            .push(", ")
            .bind(s.made_on.to_string())
            .push(", ")
            .bind(Month::of(s.made_on).key())
            .push(", ")
            .bind(s.addressee.clone())
            .push(", ")
            .bind(s.title.clone())
            .push(", ")
            .bind(s.body.clone())
            .push(", ")
            .bind(s.adoption.clone())
            .push(", ")
            .bind(s.outcome.clone())
            .push(", ")
            .bind(micros(s.recorded_at))
            .push(
                ") ON CONFLICT (id) DO UPDATE SET adoption = excluded.adoption, outcome = excluded.outcome, recorded_at = excluded.recorded_at",
            );
        let mut tx = self.db.begin().await?;
        q.build().execute(&mut *tx).await?;
        petition_audit::append(&mut tx, std::slice::from_ref(audit)).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn suggestion(&self, id: &str) -> Result<Option<SuggestionRow>> {
        let mut q = Sql::new("SELECT * FROM suggestions WHERE id = ");
        q.bind(id.to_owned());
        q.build()
            .fetch_optional(self.db.pool())
            .await?
            .as_ref()
            .map(read_suggestion)
            .transpose()
    }

    pub async fn suggestions(
        &self,
        months: Months,
        organs: Option<&[String]>,
    ) -> Result<Vec<SuggestionRow>> {
        let mut q = Sql::new("SELECT * FROM suggestions WHERE made_month BETWEEN ");
        q.bind(months.first.key())
            .push(" AND ")
            .bind(months.last.key());
        if let Some(o) = organs {
            q.push(" AND organ IN (")
                .bind_list(o.iter().cloned())
                .push(")");
        }
        q.push(" ORDER BY made_on, id");
        let rows = q.build().fetch_all(self.db.pool()).await?;
        rows.iter().map(read_suggestion).collect()
    }
}

/// The backlog as `backlog` reads it.
#[derive(Debug, Clone)]
pub struct Backlog {
    pub total: i64,
    /// (responsible organ, or "" while none, cases)
    pub by_organ: Vec<(String, i64)>,
    /// the oldest cases, each with the repeats the caller may see
    pub cases: Vec<(Fact, i64)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuggestionRow {
    pub id: String,
    pub organ: String,
    pub made_on: chrono::NaiveDate,
    pub addressee: String,
    pub title: String,
    pub body: String,
    pub adoption: String,
    pub outcome: String,
    pub recorded_at: DateTime<Utc>,
}

fn read_suggestion(r: &AnyRow) -> Result<SuggestionRow> {
    Ok(SuggestionRow {
        id: r.text("id")?,
        organ: r.text("organ")?,
        made_on: r.text("made_on")?.parse().map_err(|e| Corrupt {
            column: "made_on",
            reason: format!("{e}"),
        })?,
        addressee: r.text("addressee")?,
        title: r.text("title")?,
        body: r.text("body")?,
        adoption: r.text("adoption")?,
        outcome: r.text("outcome")?,
        recorded_at: r.time("recorded_at")?,
    })
}

/// ` AND (a IN (…) OR b IN (…)) AND accused NOT IN (…)` for a figure scope.
fn scope_filter(q: &mut Sql, scope: &FigureScope, a: &str, b: &str, accused: &str) {
    if let Some(organs) = &scope.organs {
        if organs.is_empty() {
            q.push(" AND 1 = 0");
        } else {
            q.push(&format!(" AND ({a} IN ("))
                .bind_list(organs.iter().cloned())
                .push(&format!(") OR {b} IN ("))
                .bind_list(organs.iter().cloned())
                .push("))");
        }
    }
    hidden_filter(q, scope, accused);
}

/// ` AND accused NOT IN (…)`: no accusation against the caller's chain (Art. 30 ¶3).
fn hidden_filter(q: &mut Sql, scope: &FigureScope, accused: &str) {
    if !scope.hidden_accused.is_empty() {
        q.push(&format!(" AND {accused} NOT IN ("))
            .bind_list(scope.hidden_accused.iter().cloned())
            .push(")");
    }
}

/// Inserts the events not seen before and returns them, in the order given.
async fn insert_events(tx: &mut Tx, events: &[EventEnvelope]) -> Result<Vec<EventEnvelope>> {
    let mut fresh_ids = HashSet::new();
    for chunk in events.chunks(CELL_CHUNK) {
        let mut q = Sql::new("INSERT INTO events (event_id, case_id, payload) VALUES ");
        for (i, e) in chunk.iter().enumerate() {
            q.push(if i == 0 { "(" } else { ", (" })
                .bind(e.event_id.clone())
                .push(", ")
                .bind(e.case_id.clone())
                .push(", ")
                .bind(e.encode_to_vec())
                .push(")");
        }
        q.push(" ON CONFLICT DO NOTHING RETURNING event_id");
        for row in q.build().fetch_all(&mut **tx).await? {
            fresh_ids.insert(row.text("event_id")?);
        }
    }
    // An event twice in one read is folded once.
    Ok(events
        .iter()
        .filter(|e| fresh_ids.remove(&e.event_id))
        .cloned()
        .collect())
}

/// The stored facts of `ids` (sorted), locked for this transaction on PostgreSQL. A case seen
/// for the first time gets an empty row first (it contributes nothing), so that two writers
/// meeting on a new case queue on its row instead of both inserting it.
async fn lock_facts(
    tx: &mut Tx,
    ids: &[&str],
    postgres: bool,
) -> Result<HashMap<String, (Fact, Derived)>> {
    let mut out = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(CELL_CHUNK) {
        let mut q = Sql::new(
            "INSERT INTO cases (case_id, registered, extended, objections, reviews, urged, supervised, backlog_flag, is_open) VALUES ",
        );
        for (i, id) in chunk.iter().enumerate() {
            q.push(if i == 0 { "(" } else { ", (" })
                .bind((*id).to_owned())
                .push(", 0, 0, 0, 0, 0, 0, 0, 0)");
        }
        q.push(" ON CONFLICT (case_id) DO NOTHING");
        q.build().execute(&mut **tx).await?;
        let mut q = Sql::new(format!(
            "SELECT {} FROM cases WHERE case_id IN (",
            FACT_COLUMNS.join(", ")
        ));
        q.bind_list(chunk.iter().map(|s| (*s).to_owned()))
            .push(") ORDER BY case_id");
        if postgres {
            q.push(" FOR UPDATE");
        }
        for row in q.build().fetch_all(&mut **tx).await? {
            let (f, d) = read_fact(&row)?;
            out.insert(f.case_id.clone(), (f, d));
        }
    }
    Ok(out)
}

fn opt_month(r: &AnyRow, c: &'static str) -> Result<Option<Month>> {
    r.opt_int(c)?
        .map(|k| {
            Month::from_key(k).ok_or_else(|| {
                StoreError::Corrupt(Corrupt {
                    column: c,
                    reason: format!("{k} is not a YYYYMM month"),
                })
            })
        })
        .transpose()
}

fn latest<T>(r: &AnyRow, at: &'static str, value: impl FnOnce() -> Result<T>) -> Result<Latest<T>> {
    Ok(match r.opt_int(at)? {
        Some(at) => Latest {
            at,
            value: Some(value()?),
        },
        None => Latest::default(),
    })
}

fn read_fact(r: &AnyRow) -> Result<(Fact, Derived)> {
    let registration = if r.flag("registered")? {
        Some(Registration {
            case_number: r.text("case_number")?,
            channel: r.parsed("channel")?,
            received_by: r.text("received_by")?,
            received_at: r.time("received_at")?,
            registered_at: r.time("registered_at")?,
            category: r.text("category")?,
            type_of_matter: r.opt_parsed("type_of_matter")?,
            location: r.text("location")?,
            people_present: r.int("people_present")? as u32,
            petitioner_count: r.int("petitioner_count")? as u32,
            age_band: r.opt_text("age_band")?,
            sex: r.opt_parsed("sex")?,
            group: r.flag("is_group")?,
            leapfrog: r.flag("leapfrog")?,
            repeat: r.flag("is_repeat")?,
            repeat_of: r.opt_text("repeat_of")?,
            imported: r.flag("imported")?,
        })
    } else {
        None
    };
    let fact = Fact {
        case_id: r.text("case_id")?,
        registration,
        accused_organ: r.opt_text("accused_organ")?,
        routed_at: r.opt_time("routed_at")?,
        route: latest(r, "route_at", || {
            Ok(Route {
                organ: r.opt_text("route_organ")?,
                outcome: r.parsed::<Outcome>("route_outcome")?,
                mode: r.opt_parsed("route_mode")?,
                bureau: r.opt_text("route_bureau")?,
            })
        })?,
        reassigned: latest(r, "reassigned_at", || Ok(r.text("reassigned_organ")?))?,
        accepted_at: r.opt_time("accepted_at")?,
        accepted_by: latest(r, "accepted_by_at", || Ok(r.text("accepted_by")?))?,
        handling_due: r.opt_time("handling_due")?,
        extended: r.flag("extended")?,
        objections: r.int("objections")? as u32,
        answered_at: r.opt_time("answered_at")?,
        rating: latest(r, "rating_at", || {
            Ok((
                r.opt_parsed("bureau_rating")?,
                r.opt_parsed("organ_rating")?,
            ))
        })?,
        reviews: r.int("reviews")? as u32,
        final_at: r.opt_time("final_at")?,
        urged: r.int("urged")? as u32,
        supervised: r.int("supervised")? as u32,
        leader_at: r.opt_time("leader_at")?,
        leader_organ: latest(r, "leader_organ_at", || Ok(r.text("leader_organ")?))?,
        backlog_flag: r.flag("backlog_flag")?,
        resolved_at: r.opt_time("resolved_at")?,
    };
    let derived = Derived {
        received_month: opt_month(r, "received_month")?,
        registered_month: opt_month(r, "registered_month")?,
        routed_month: opt_month(r, "routed_month")?,
        route_due: r.opt_time("route_due")?,
        accept_due: r.opt_time("accept_due")?,
    };
    Ok((fact, derived))
}

/// Writes facts whole, over the rows of these cases when `replace`.
async fn write_facts(tx: &mut Tx, rows: &[(Fact, Derived)], replace: bool) -> Result<()> {
    for chunk in rows.chunks(FACT_CHUNK) {
        let mut q = Sql::new(format!(
            "INSERT INTO cases ({}) VALUES ",
            FACT_COLUMNS.join(", ")
        ));
        for (i, (f, d)) in chunk.iter().enumerate() {
            q.push(if i == 0 { "(" } else { ", (" });
            bind_fact(&mut q, f, d);
            q.push(")");
        }
        if replace {
            let sets: Vec<String> = FACT_COLUMNS[1..]
                .iter()
                .map(|c| format!("{c} = excluded.{c}"))
                .collect();
            q.push(&format!(
                " ON CONFLICT (case_id) DO UPDATE SET {}",
                sets.join(", ")
            ));
        }
        q.build().execute(&mut **tx).await?;
    }
    Ok(())
}

fn bind_fact(q: &mut Sql, f: &Fact, d: &Derived) {
    let t = |v: Option<DateTime<Utc>>| v.map(micros);
    let s = |v: Option<&str>| v.map(str::to_owned);
    let b = |v: bool| i16::from(v);
    let reg = f.registration.as_ref();
    let route = f.route.value.as_ref();
    let rating = f.rating.value.unwrap_or_default();
    let at = |l: i64, present: bool| present.then_some(l);
    let mut first = true;
    let mut sep = |q: &mut Sql| {
        if !first {
            q.push(", ");
        }
        first = false;
    };
    macro_rules! put {
        ($v:expr) => {{
            sep(q);
            q.bind($v);
        }};
    }
    put!(f.case_id.clone());
    put!(b(reg.is_some()));
    put!(s(reg.map(|r| r.case_number.as_str())));
    put!(s(reg.map(|r| r.channel.as_str())));
    put!(s(reg.map(|r| r.received_by.as_str())));
    put!(t(reg.map(|r| r.received_at)));
    put!(t(reg.map(|r| r.registered_at)));
    put!(s(reg.map(|r| r.category.as_str())));
    put!(s(reg.and_then(|r| r.type_of_matter).map(|x| x.as_str())));
    put!(s(reg.map(|r| r.location.as_str())));
    put!(reg.map(|r| i64::from(r.people_present)));
    put!(reg.map(|r| i64::from(r.petitioner_count)));
    put!(s(reg.and_then(|r| r.age_band.as_deref())));
    put!(s(reg.and_then(|r| r.sex).map(|x| x.as_str())));
    put!(reg.map(|r| b(r.group)));
    put!(reg.map(|r| b(r.leapfrog)));
    put!(reg.map(|r| b(r.repeat)));
    put!(s(reg.and_then(|r| r.repeat_of.as_deref())));
    put!(reg.map(|r| b(r.imported)));
    put!(f.accused_organ.clone());
    put!(t(f.routed_at));
    put!(at(f.route.at, route.is_some()));
    put!(s(route.and_then(|r| r.organ.as_deref())));
    put!(s(route.map(|r| r.outcome.as_str())));
    put!(s(route.and_then(|r| r.mode).map(|m| m.as_str())));
    put!(s(route.and_then(|r| r.bureau.as_deref())));
    put!(at(f.reassigned.at, f.reassigned.value.is_some()));
    put!(f.reassigned.value.clone());
    put!(t(f.accepted_at));
    put!(at(f.accepted_by.at, f.accepted_by.value.is_some()));
    put!(f.accepted_by.value.clone());
    put!(t(f.handling_due));
    put!(b(f.extended));
    put!(i64::from(f.objections));
    put!(t(f.answered_at));
    put!(at(f.rating.at, f.rating.value.is_some()));
    put!(s(rating.0.map(|r| r.as_str())));
    put!(s(rating.1.map(|r| r.as_str())));
    put!(i64::from(f.reviews));
    put!(t(f.final_at));
    put!(i64::from(f.urged));
    put!(i64::from(f.supervised));
    put!(t(f.leader_at));
    put!(at(f.leader_organ.at, f.leader_organ.value.is_some()));
    put!(f.leader_organ.value.clone());
    put!(b(f.backlog_flag));
    put!(t(f.resolved_at));
    put!(s(f.organ()));
    put!(b(f.is_open()));
    put!(d.received_month.map(Month::key));
    put!(d.registered_month.map(Month::key));
    put!(d.routed_month.map(Month::key));
    put!(t(d.route_due));
    put!(t(d.accept_due));
}

/// Adds a batch's differences to the rollups, one statement per chunk of cells.
async fn write_deltas(tx: &mut Tx, deltas: Deltas, shard: i16) -> Result<()> {
    let (tallies, scores) = deltas.into_sorted();
    for chunk in tallies.chunks(CELL_CHUNK) {
        let mut q = Sql::new(
            "INSERT INTO tally (shard, month, received_by, organ, accused, dim, value, cases, persons) VALUES ",
        );
        for (i, (k, v)) in chunk.iter().enumerate() {
            let TallyKey {
                month,
                received_by,
                organ,
                accused,
                dim,
                value,
            } = k;
            let Counts { cases, persons } = v;
            q.push(if i == 0 { "(" } else { ", (" })
                .bind(shard)
                .push(", ")
                .bind(*month)
                .push(", ")
                .bind(received_by.clone())
                .push(", ")
                .bind(organ.clone())
                .push(", ")
                .bind(accused.clone())
                .push(", ")
                .bind(dim.as_str().to_owned())
                .push(", ")
                .bind(value.clone())
                .push(", ")
                .bind(*cases)
                .push(", ")
                .bind(*persons)
                .push(")");
        }
        q.push(
            " ON CONFLICT (month, dim, value, received_by, organ, accused, shard) DO UPDATE SET \
             cases = tally.cases + excluded.cases, persons = tally.persons + excluded.persons",
        );
        q.build().execute(&mut **tx).await?;
    }
    for chunk in scores.chunks(CELL_CHUNK / 2) {
        let mut q = Sql::new(format!(
            "INSERT INTO scores (shard, basis, month, role, organ, accused, {}) VALUES ",
            Score::COLUMNS.join(", ")
        ));
        for (i, (k, v)) in chunk.iter().enumerate() {
            let ScoreKey {
                basis,
                month,
                role,
                organ,
                accused,
            } = k;
            q.push(if i == 0 { "(" } else { ", (" })
                .bind(shard)
                .push(", ")
                .bind(basis.as_str().to_owned())
                .push(", ")
                .bind(*month)
                .push(", ")
                .bind(role.as_str().to_owned())
                .push(", ")
                .bind(organ.clone())
                .push(", ")
                .bind(accused.clone());
            for n in v.values() {
                q.push(", ").bind(n);
            }
            q.push(")");
        }
        let sets: Vec<String> = Score::COLUMNS
            .iter()
            .map(|c| format!("{c} = scores.{c} + excluded.{c}"))
            .collect();
        q.push(&format!(
            " ON CONFLICT (basis, month, role, organ, accused, shard) DO UPDATE SET {}",
            sets.join(", ")
        ));
        q.build().execute(&mut **tx).await?;
    }
    Ok(())
}
