//! The intake store: one SQL body on PostgreSQL and SQLite (see `petition-storage`), and one
//! conformance suite (tests/store_conformance.rs) run against both.

use chrono::{DateTime, Utc};
use petition_auth::ListScope;
use petition_domain::case_number::MAX_SEQUENCE;
use petition_domain::intake::PriorCase;
use petition_domain::{CaseStatus, Channel, Diversion, IdType, Sex, StepKind, TypeOfMatter};
use petition_events::{Outbox, OutboxMessage};
use petition_storage::{Corrupt, Db, Order, RowExt, Sql, Tx, is_unique_violation, micros};
use sqlx::any::AnyRow;
use std::sync::Arc;
use uuid::Uuid;

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another registration holds the same `(source_system, external_ref)`.
    #[error("idempotency key already registered")]
    DuplicateKey,
    #[error("the case register of region {region} for {year} is full (999999 cases)")]
    RegisterFull { region: String, year: i32 },
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("stored data is inconsistent: {0}")]
    Corrupt(#[from] Corrupt),
    /// The registrar stopped (the service is shutting down) before it answered.
    #[error("the service is shutting down; register again")]
    Stopped,
    /// The database could not be reached for a batch of registrations.
    #[error("the database is unavailable; register again: {0}")]
    Unavailable(String),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredFlags {
    pub group: bool,
    pub leapfrog: bool,
    pub repeat: bool,
    pub repeat_of_case_id: Option<String>,
    pub repeat_of_case_number: Option<String>,
    /// the repeated case is still open
    pub repeat_of_open: bool,
    pub first_at_organ: bool,
    pub open_below_case_number: Option<String>,
}

/// A petitioner as stored: personal data sealed, identity looked up by keyed hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPetitioner {
    pub name: String,
    pub id_type: Option<IdType>,
    pub id_hash: Option<Vec<u8>>,
    pub id_number_sealed: Option<Vec<u8>>,
    pub phone_sealed: Option<Vec<u8>>,
    pub address_sealed: Option<Vec<u8>>,
    pub is_main: bool,
    pub sex: Option<Sex>,
    pub age_band: Option<String>,
}

/// What a case is, as registered; `case_number` is drawn by the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseBody {
    pub id: Uuid,
    pub query_code: String,
    pub channel: Channel,
    pub received_by: String,
    pub received_at: DateTime<Utc>,
    pub registered_at: DateTime<Utc>,
    pub registered_by: String,
    pub category: String,
    pub type_of_matter: TypeOfMatter,
    pub diversion: Option<Diversion>,
    pub problem_location: String,
    pub title: String,
    pub content: String,
    pub people_present: i64,
    pub people_affected: i64,
    pub representatives: i64,
    pub accused_name_sealed: Option<Vec<u8>>,
    /// for accusations only (Art. 30 ¶3)
    pub accused_organ: Option<String>,
    pub source_system: Option<String>,
    pub external_ref: Option<String>,
    /// hash of the request, to tell a retry from a conflicting reuse of the key
    pub fingerprint: Vec<u8>,
    pub competent_organ: Option<String>,
    pub flags: StoredFlags,
    /// registered: a new petition; an imported one keeps where it ended in the old system
    pub status: CaseStatus,
}

/// A case ready to be written.
#[derive(Debug, Clone)]
pub struct NewCase {
    pub body: CaseBody,
    /// region code used as the case-number prefix
    pub register_region: String,
    pub register_year: i32,
    pub petitioners: Vec<StoredPetitioner>,
    /// sent down by a peer deployment: its name and what it asked (DESIGN §5b)
    pub upstream: Option<(String, petition_proto::v1::Upstream)>,
}

/// A case as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseRecord {
    pub body: CaseBody,
    pub case_number: String,
    pub status: CaseStatus,
    pub holder: Option<String>,
    /// the bureau that routes it
    pub bureau: Option<String>,
    /// empty in list results, which carry no personal data
    pub petitioners: Vec<StoredPetitioner>,
    /// oldest first; empty in list results
    pub steps: Vec<StepRecord>,
    /// the staff who are out of the case (回避, Art. 28 ¶3); empty in list results, which
    /// leave the case out for them instead
    pub recused: Vec<String>,
}

/// One step of a case's timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepRecord {
    pub event_id: String,
    pub at: DateTime<Utc>,
    pub kind: StepKind,
    /// the organ holding the case after the step
    pub organ: String,
    pub note: String,
    pub public_note: String,
    /// the bureau that routes the case, when the step says (not stored with the step)
    pub bureau: Option<String>,
}

#[derive(Debug, Clone)]
pub enum CaseKey {
    Id(Uuid),
    Number(String),
    QueryCode(String),
}

#[derive(Debug, Clone, Default)]
pub struct CaseFilter {
    /// what the caller may see (organs, submitted-by, the accused side hidden)
    pub scope: ListScope,
    pub received_by: Option<String>,
    pub channel: Option<Channel>,
    pub category_prefix: Option<String>,
    pub only_group: bool,
    pub only_leapfrog: bool,
    pub only_repeat: bool,
    pub received_from: Option<DateTime<Utc>>,
    pub received_to: Option<DateTime<Utc>>,
    /// only the cases this identity took part in: its keyed hashes, one under each data key
    pub petitioner: Option<Vec<Vec<u8>>>,
    /// only cases in one of these statuses (none: any)
    pub statuses: Vec<CaseStatus>,
}

/// Keyset pagination: newest first by `(received_at, id)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageCursor {
    pub received_at: DateTime<Utc>,
    pub id: Uuid,
}

/// The registration's event, finished with the case number once it is drawn; its id is known
/// before, for the case's first step. `Fn`, not `FnOnce`: a batch that fails is registered
/// again one case at a time.
#[derive(Clone)]
pub struct EventBuilder {
    pub event_id: Uuid,
    pub build: Arc<dyn Fn(&str) -> OutboxMessage + Send + Sync>,
}

/// A case to register and its event.
#[derive(Clone)]
pub struct Registration {
    pub case: NewCase,
    pub event: EventBuilder,
}

const CASE_COLUMNS: &str = "id, case_number, query_code, channel, received_by, received_at, \
    registered_at, registered_by, category, type_of_matter, diversion, problem_location, title, \
    content, people_present, people_affected, representatives, accused_name_sealed, \
    accused_organ, source_system, external_ref, fingerprint, competent_organ, status, holder, bureau, \
    flag_group, flag_leapfrog, flag_repeat, repeat_of_case_id, repeat_of_case_number, \
    repeat_of_open, first_at_organ, open_below_case_number";

fn flag(b: bool) -> i16 {
    i16::from(b)
}

fn uuid(column: &'static str, text: &str) -> Result<Uuid, Corrupt> {
    Uuid::parse_str(text).map_err(|e| Corrupt {
        column,
        reason: e.to_string(),
    })
}

/// The one place a case row is decoded.
fn case_from_row(r: &AnyRow) -> Result<CaseRecord, StoreError> {
    let case_number = r.opt_text("case_number")?.ok_or_else(|| Corrupt {
        column: "case_number",
        reason: "a registered case without a case number".into(),
    })?;
    Ok(CaseRecord {
        body: CaseBody {
            id: uuid("id", &r.text("id")?)?,
            query_code: r.text("query_code")?,
            channel: r.parsed("channel")?,
            received_by: r.text("received_by")?,
            received_at: r.time("received_at")?,
            registered_at: r.time("registered_at")?,
            registered_by: r.text("registered_by")?,
            category: r.text("category")?,
            type_of_matter: r.parsed("type_of_matter")?,
            diversion: r.opt_parsed("diversion")?,
            problem_location: r.text("problem_location")?,
            title: r.text("title")?,
            content: r.text("content")?,
            people_present: r.int("people_present")?,
            people_affected: r.int("people_affected")?,
            representatives: r.int("representatives")?,
            accused_name_sealed: r.opt_bytes("accused_name_sealed")?,
            accused_organ: r.opt_text("accused_organ")?,
            source_system: r.opt_text("source_system")?,
            external_ref: r.opt_text("external_ref")?,
            fingerprint: r.bytes("fingerprint")?,
            competent_organ: r.opt_text("competent_organ")?,
            flags: StoredFlags {
                group: r.flag("flag_group")?,
                leapfrog: r.flag("flag_leapfrog")?,
                repeat: r.flag("flag_repeat")?,
                repeat_of_case_id: r.opt_text("repeat_of_case_id")?,
                repeat_of_case_number: r.opt_text("repeat_of_case_number")?,
                repeat_of_open: r.flag("repeat_of_open")?,
                first_at_organ: r.flag("first_at_organ")?,
                open_below_case_number: r.opt_text("open_below_case_number")?,
            },
            status: r.parsed("status")?,
        },
        case_number,
        status: r.parsed("status")?,
        holder: r.opt_text("holder")?,
        bureau: r.opt_text("bureau")?,
        petitioners: Vec::new(),
        steps: Vec::new(),
        recused: Vec::new(),
    })
}

fn petitioner_from_row(r: &AnyRow) -> Result<StoredPetitioner, StoreError> {
    Ok(StoredPetitioner {
        name: r.text("name")?,
        id_type: r.opt_parsed("id_type")?,
        id_hash: r.opt_bytes("id_hash")?,
        id_number_sealed: r.opt_bytes("id_number_sealed")?,
        phone_sealed: r.opt_bytes("phone_sealed")?,
        address_sealed: r.opt_bytes("address_sealed")?,
        is_main: r.flag("is_main")?,
        sex: r.opt_parsed("sex")?,
        age_band: r.opt_text("age_band")?,
    })
}

fn step_from_row(r: &AnyRow) -> Result<StepRecord, StoreError> {
    Ok(StepRecord {
        event_id: r.text("event_id")?,
        at: r.time("at")?,
        kind: r.parsed("kind")?,
        organ: r.text("organ")?,
        note: r.text("note")?,
        public_note: r.text("public_note")?,
        bureau: None,
    })
}

/// `column IN (…)`, or a condition that holds for no row when the list is empty.
fn push_in(q: &mut Sql, column: &str, values: &[String]) {
    if values.is_empty() {
        q.push(" 1 = 0");
        return;
    }
    q.push(" ")
        .push(column)
        .push(" IN (")
        .bind_list(values.iter().cloned())
        .push(")");
}

/// A petitioner's sealed fields as `rekey` reads and rewrites them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedPetitioner {
    pub case_id: String,
    pub ordinal: i64,
    pub case_number: Option<String>,
    /// as stored (`IdType::as_str`), the text the identity hash is keyed on
    pub id_type: Option<String>,
    pub id_hash: Option<Vec<u8>>,
    pub id_number_sealed: Option<Vec<u8>>,
    pub phone_sealed: Option<Vec<u8>>,
    pub address_sealed: Option<Vec<u8>>,
}

/// An accused person's sealed name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedAccusation {
    pub case_id: String,
    pub case_number: Option<String>,
    pub name_sealed: Vec<u8>,
}

#[derive(Clone)]
pub struct IntakeStore {
    db: Db,
}

impl IntakeStore {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    pub fn dialect(&self) -> petition_storage::Dialect {
        self.db.dialect()
    }

    /// Writes the case, its petitioners, its first step, its case number and its event in one
    /// transaction. Returns the case number.
    pub async fn register(&self, case: NewCase, event: EventBuilder) -> Result<String, StoreError> {
        let mut numbers = self.register_all(&[Registration { case, event }]).await?;
        Ok(numbers.remove(0))
    }

    /// Registers several cases in one transaction, all or none, and returns their numbers in
    /// order. The numbers of a register are drawn together at the end: the draw holds the
    /// register's counter row lock until commit, and every registration of the register waits
    /// behind it, so a batch pays for that wait once (see `Registrar`).
    pub async fn register_all(&self, regs: &[Registration]) -> Result<Vec<String>, StoreError> {
        let mut tx = self.db.begin().await?;
        Self::insert_cases(&mut tx, regs, None).await?;
        Self::insert_upstream(&mut tx, regs).await?;
        let numbers = self.draw_case_numbers(&mut tx, regs).await?;
        Self::set_case_numbers(&mut tx, regs, &numbers).await?;
        let msgs: Vec<OutboxMessage> = regs
            .iter()
            .zip(&numbers)
            .map(|(r, n)| (r.event.build)(n))
            .collect();
        Outbox::enqueue_all(&mut tx, &msgs).await?;
        tx.commit().await?;
        Ok(numbers)
    }

    /// Writes imported history the other way round: the numbers drawn first and inserted with
    /// the cases, which spares rewriting every row to set its number (the update that took most
    /// of an import's database time). The register's counter stays locked while the rows are
    /// written; history goes to the registers of past years, where no window registers.
    pub async fn import_all(&self, regs: &[Registration]) -> Result<Vec<String>, StoreError> {
        let mut tx = self.db.begin().await?;
        let numbers = self.draw_case_numbers(&mut tx, regs).await?;
        Self::insert_cases(&mut tx, regs, Some(&numbers)).await?;
        let msgs: Vec<OutboxMessage> = regs
            .iter()
            .zip(&numbers)
            .map(|(r, n)| (r.event.build)(n))
            .collect();
        Outbox::enqueue_all(&mut tx, &msgs).await?;
        tx.commit().await?;
        Ok(numbers)
    }

    /// The cases (numbered, when the numbers were drawn first), their petitioners and their
    /// first steps: three
    /// statements for the whole batch, however many cases it holds.
    async fn insert_cases(
        tx: &mut Tx,
        regs: &[Registration],
        numbers: Option<&[String]>,
    ) -> Result<(), StoreError> {
        // 34 parameters a case: a batch stays far below either dialect's limit.
        let mut q = Sql::new(
            "INSERT INTO cases (id, query_code, channel, received_by, received_at, registered_at, \
             registered_by, category, type_of_matter, diversion, problem_location, title, content, \
             people_present, people_affected, representatives, accused_name_sealed, accused_organ, \
             source_system, external_ref, fingerprint, competent_organ, flag_group, flag_leapfrog, \
             flag_repeat, repeat_of_case_id, repeat_of_case_number, first_at_organ, \
             open_below_case_number, status, status_at, status_event, repeat_of_open, case_number) \
             VALUES ",
        );
        for (i, r) in regs.iter().enumerate() {
            let c = &r.case.body;
            let f = &c.flags;
            q.push(if i == 0 { "(" } else { ", (" })
                .bind(c.id.to_string())
                .push(", ")
                .bind(c.query_code.clone())
                .push(", ")
                .bind(c.channel.as_str().to_owned())
                .push(", ")
                .bind(c.received_by.clone())
                .push(", ")
                .bind(micros(c.received_at))
                .push(", ")
                .bind(micros(c.registered_at))
                .push(", ")
                .bind(c.registered_by.clone())
                .push(", ")
                .bind(c.category.clone())
                .push(", ")
                .bind(c.type_of_matter.as_str().to_owned())
                .push(", ")
                .bind(c.diversion.map(|d| d.as_str().to_owned()))
                .push(", ")
                .bind(c.problem_location.clone())
                .push(", ")
                .bind(c.title.clone())
                .push(", ")
                .bind(c.content.clone())
                .push(", ")
                .bind(c.people_present)
                .push(", ")
                .bind(c.people_affected)
                .push(", ")
                .bind(c.representatives)
                .push(", ")
                .bind(c.accused_name_sealed.clone())
                .push(", ")
                .bind(c.accused_organ.clone())
                .push(", ")
                .bind(c.source_system.clone())
                .push(", ")
                .bind(c.external_ref.clone())
                .push(", ")
                .bind(c.fingerprint.clone())
                .push(", ")
                .bind(c.competent_organ.clone())
                .push(", ")
                .bind(flag(f.group))
                .push(", ")
                .bind(flag(f.leapfrog))
                .push(", ")
                .bind(flag(f.repeat))
                .push(", ")
                .bind(f.repeat_of_case_id.clone())
                .push(", ")
                .bind(f.repeat_of_case_number.clone())
                .push(", ")
                .bind(flag(f.first_at_organ))
                .push(", ")
                .bind(f.open_below_case_number.clone())
                .push(", ")
                .bind(c.status.as_str().to_owned())
                .push(", ")
                .bind(micros(c.registered_at))
                .push(", ")
                .bind(String::new())
                .push(", ")
                .bind(flag(f.repeat_of_open))
                .push(", ")
                .bind(numbers.map(|n| n[i].clone()))
                .push(")");
        }
        if let Err(e) = q.build().execute(&mut **tx).await {
            return Err(
                if is_unique_violation(&e, &["cases_idempotency_key", "cases.source_system"]) {
                    StoreError::DuplicateKey
                } else {
                    e.into()
                },
            );
        }
        let petitioners: Vec<(&CaseBody, usize, &StoredPetitioner)> = regs
            .iter()
            .flat_map(|r| {
                r.case
                    .petitioners
                    .iter()
                    .enumerate()
                    .map(move |(i, p)| (&r.case.body, i, p))
            })
            .collect();
        // 11 parameters a petitioner
        for chunk in petitioners.chunks(500) {
            let mut q = Sql::new(
                "INSERT INTO petitioners (case_id, ordinal, name, id_type, id_hash, \
                 id_number_sealed, phone_sealed, address_sealed, is_main, sex, age_band) VALUES ",
            );
            for (i, (c, ordinal, p)) in chunk.iter().enumerate() {
                q.push(if i == 0 { "(" } else { ", (" })
                    .bind(c.id.to_string())
                    .push(", ")
                    .bind(*ordinal as i64)
                    .push(", ")
                    .bind(p.name.clone())
                    .push(", ")
                    .bind(p.id_type.map(|t| t.as_str().to_owned()))
                    .push(", ")
                    .bind(p.id_hash.clone())
                    .push(", ")
                    .bind(p.id_number_sealed.clone())
                    .push(", ")
                    .bind(p.phone_sealed.clone())
                    .push(", ")
                    .bind(p.address_sealed.clone())
                    .push(", ")
                    .bind(flag(p.is_main))
                    .push(", ")
                    .bind(p.sex.map(|s| s.as_str().to_owned()))
                    .push(", ")
                    .bind(p.age_band.clone())
                    .push(")");
            }
            q.build().execute(&mut **tx).await?;
        }
        let mut q = Sql::new(
            "INSERT INTO case_steps (case_id, event_id, at, kind, organ, note, public_note) VALUES ",
        );
        for (i, r) in regs.iter().enumerate() {
            let c = &r.case.body;
            q.push(if i == 0 { "(" } else { ", (" })
                .bind(c.id.to_string())
                .push(", ")
                .bind(r.event.event_id.to_string())
                .push(", ")
                .bind(micros(c.registered_at))
                .push(", ")
                .bind(StepKind::Registered.as_str().to_owned())
                .push(", ")
                .bind(c.received_by.clone())
                .push(", ")
                .bind(format!("registered by {}", c.registered_by))
                .push(", ")
                .bind("registered".to_owned())
                .push(")");
        }
        q.build().execute(&mut **tx).await?;
        Ok(())
    }

    /// Draws the numbers of `regs`, register by register: one counter update per register for
    /// all its cases (they take consecutive numbers in the order given). The counter row stays
    /// locked until the transaction ends.
    async fn draw_case_numbers(
        &self,
        tx: &mut Tx,
        regs: &[Registration],
    ) -> Result<Vec<String>, StoreError> {
        let mut registers: Vec<((&str, i32), Vec<usize>)> = Vec::new();
        for (i, r) in regs.iter().enumerate() {
            let key = (r.case.register_region.as_str(), r.case.register_year);
            match registers.iter_mut().find(|(k, _)| *k == key) {
                Some((_, members)) => members.push(i),
                None => registers.push((key, vec![i])),
            }
        }
        // Counter rows are locked in one order, so two instances' batches cannot deadlock.
        registers.sort_by(|a, b| a.0.cmp(&b.0));
        let mut numbers = vec![String::new(); regs.len()];
        for ((region, year), members) in registers {
            let count = members.len() as i64;
            let last: i64 = sqlx::query_scalar(
                "INSERT INTO case_number_counters (region, year, last_seq) VALUES ($1, $2, $3) \
                 ON CONFLICT (region, year) DO UPDATE \
                   SET last_seq = case_number_counters.last_seq + $3 \
                 RETURNING last_seq",
            )
            .bind(region)
            .bind(i64::from(year))
            .bind(count)
            .fetch_one(&mut **tx)
            .await?;
            if last as u64 > MAX_SEQUENCE {
                return Err(StoreError::RegisterFull {
                    region: region.to_owned(),
                    year,
                });
            }
            let prefix = format!("{region}-{year:04}-");
            for (k, &i) in members.iter().enumerate() {
                numbers[i] = format!("{prefix}{:06}", last - count + 1 + k as i64);
            }
        }
        Ok(numbers)
    }

    /// Gives the inserted cases their numbers, one statement a batch.
    /// What the peer asked of each case it sent down, for routing and for its feed of steps.
    async fn insert_upstream(tx: &mut Tx, regs: &[Registration]) -> Result<(), StoreError> {
        for r in regs {
            let Some((peer, up)) = &r.case.upstream else {
                continue;
            };
            sqlx::query(
                "INSERT INTO upstream_cases (case_id, peer, peer_case_number, organ, upstream) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(r.case.body.id.to_string())
            .bind(peer)
            .bind(&up.case_number)
            .bind(&up.organ)
            .bind(prost::Message::encode_to_vec(up))
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }

    async fn set_case_numbers(
        tx: &mut Tx,
        regs: &[Registration],
        numbers: &[String],
    ) -> Result<(), StoreError> {
        let mut q = Sql::new("UPDATE cases SET case_number = CASE id");
        for (r, n) in regs.iter().zip(numbers) {
            q.push(" WHEN ")
                .bind(r.case.body.id.to_string())
                .push(" THEN ")
                .bind(n.clone());
        }
        q.push(" END WHERE id IN (")
            .bind_list(regs.iter().map(|r| r.case.body.id.to_string()))
            .push(")");
        q.build().execute(&mut **tx).await?;
        Ok(())
    }

    /// Which of these references of `source_system` are registered already, each with the
    /// fingerprint of what was registered under it (to tell a repeat from a conflict).
    pub async fn registered_refs(
        &self,
        source_system: &str,
        refs: &[String],
    ) -> Result<std::collections::HashMap<String, Vec<u8>>, StoreError> {
        if refs.is_empty() {
            return Ok(Default::default());
        }
        // One index probe per reference, by a correlated subquery the planner cannot flatten.
        // `external_ref IN (…)` or a join let PostgreSQL, with statistics taken while the table
        // was small, scan every case of the source: each chunk of an import grew slower.
        let mut q = Sql::new("WITH wanted(ref) AS (VALUES ");
        for (i, r) in refs.iter().enumerate() {
            q.push(if i == 0 { "(" } else { ", (" })
                .bind(r.clone())
                .push(")");
        }
        q.push(
            ") SELECT w.ref AS external_ref, (SELECT c.fingerprint FROM cases c \
             WHERE c.external_ref = w.ref AND c.source_system = ",
        )
        .bind(source_system.to_owned())
        .push(" LIMIT 1) AS fingerprint FROM wanted w");
        let rows = q.build().fetch_all(self.db.pool()).await?;
        let mut found = std::collections::HashMap::new();
        for r in &rows {
            if let Some(f) = r.opt_bytes("fingerprint")? {
                found.insert(r.text("external_ref")?, f);
            }
        }
        Ok(found)
    }

    pub async fn find_by_idempotency_key(
        &self,
        source_system: &str,
        external_ref: &str,
    ) -> Result<Option<CaseRecord>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CASE_COLUMNS} FROM cases WHERE source_system = $1 AND external_ref = $2 \
             AND case_number IS NOT NULL"
        )))
        .bind(source_system)
        .bind(external_ref)
        .fetch_optional(self.db.pool())
        .await?;
        row.as_ref().map(case_from_row).transpose()
    }

    /// Which of `case_ids` `subject` is out of (回避).
    pub async fn recused_among(
        &self,
        subject: &str,
        case_ids: &[String],
    ) -> Result<Vec<String>, StoreError> {
        Ok(petition_storage::recusals::among(self.db.pool(), subject, case_ids).await?)
    }

    /// Earlier cases of any of these identities on the same matter (category and location).
    pub async fn prior_cases(
        &self,
        id_hashes: &[Vec<u8>],
        category: &str,
        problem_location: &str,
    ) -> Result<Vec<PriorCase>, StoreError> {
        if id_hashes.is_empty() {
            return Ok(Vec::new());
        }
        // The person's cases first, by the identity index, and only then their matter: a
        // planner left to choose drives the join from the matter's cases when its statistics
        // are young, and the check then reads every case of a busy estate for each new one.
        let mut q = Sql::new(
            "WITH theirs AS MATERIALIZED (SELECT DISTINCT case_id FROM petitioners \
             WHERE id_hash IN (",
        );
        q.bind_list(id_hashes.iter().cloned()).push(
            ")) SELECT c.id, c.case_number, c.received_by, c.received_at, c.status, \
             c.accused_organ, CASE WHEN EXISTS (SELECT 1 FROM case_steps s WHERE s.case_id = c.id \
             AND s.kind = 'reexamined') THEN 1 ELSE 0 END AS reexamined \
             FROM theirs JOIN cases c ON c.id = theirs.case_id WHERE c.category = ",
        );
        q.bind(category.to_owned())
            .push(" AND c.problem_location = ")
            .bind(problem_location.to_owned())
            .push(" AND c.case_number IS NOT NULL");
        let rows = q.build().fetch_all(self.db.pool()).await?;
        rows.iter()
            .map(|r| {
                let status: CaseStatus = r.parsed("status")?;
                Ok(PriorCase {
                    case_id: r.text("id")?,
                    case_number: r.text("case_number")?,
                    received_by: r.text("received_by")?,
                    received_at: r.time("received_at")?,
                    open: status.is_open(),
                    accused_organ: r.opt_text("accused_organ")?,
                    reexamined: r.flag("reexamined")?,
                })
            })
            .collect()
    }

    /// Writes an audit entry in a transaction of its own.
    pub async fn audit(&self, entry: &petition_audit::Entry) -> Result<(), StoreError> {
        Ok(petition_audit::record(&self.db, entry).await?)
    }

    /// Petitioners after `after` (case id, ordinal) in key order, `limit` of them.
    pub async fn sealed_petitioners(
        &self,
        after: Option<(&str, i64)>,
        limit: i64,
    ) -> Result<Vec<SealedPetitioner>, StoreError> {
        let (case_id, ordinal) = after.unwrap_or(("", -1));
        let rows = sqlx::query(
            "SELECT p.case_id, p.ordinal, c.case_number, p.id_type, p.id_hash, \
             p.id_number_sealed, p.phone_sealed, p.address_sealed \
             FROM petitioners p JOIN cases c ON c.id = p.case_id \
             WHERE p.case_id > $1 OR (p.case_id = $1 AND p.ordinal > $2) \
             ORDER BY p.case_id, p.ordinal LIMIT $3",
        )
        .bind(case_id)
        .bind(ordinal)
        .bind(limit)
        .fetch_all(self.db.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(SealedPetitioner {
                    case_id: r.text("case_id")?,
                    ordinal: r.int("ordinal")?,
                    case_number: r.opt_text("case_number")?,
                    id_type: r.opt_text("id_type")?,
                    id_hash: r.opt_bytes("id_hash")?,
                    id_number_sealed: r.opt_bytes("id_number_sealed")?,
                    phone_sealed: r.opt_bytes("phone_sealed")?,
                    address_sealed: r.opt_bytes("address_sealed")?,
                })
            })
            .collect()
    }

    /// Writes re-sealed petitioners, in one transaction.
    pub async fn reseal_petitioners(&self, rows: &[SealedPetitioner]) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        for p in rows {
            sqlx::query(
                "UPDATE petitioners SET id_hash = $1, id_number_sealed = $2, phone_sealed = $3, \
                 address_sealed = $4 WHERE case_id = $5 AND ordinal = $6",
            )
            .bind(p.id_hash.clone())
            .bind(p.id_number_sealed.clone())
            .bind(p.phone_sealed.clone())
            .bind(p.address_sealed.clone())
            .bind(&p.case_id)
            .bind(p.ordinal)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Cases with an accused person's name, after case id `after`, `limit` of them.
    pub async fn sealed_accusations(
        &self,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<SealedAccusation>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, case_number, accused_name_sealed FROM cases \
             WHERE accused_name_sealed IS NOT NULL AND id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after.unwrap_or(""))
        .bind(limit)
        .fetch_all(self.db.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(SealedAccusation {
                    case_id: r.text("id")?,
                    case_number: r.opt_text("case_number")?,
                    name_sealed: r.bytes("accused_name_sealed")?,
                })
            })
            .collect()
    }

    /// Writes re-sealed accused names, in one transaction.
    pub async fn reseal_accusations(&self, rows: &[SealedAccusation]) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        for a in rows {
            sqlx::query("UPDATE cases SET accused_name_sealed = $1 WHERE id = $2")
                .bind(a.name_sealed.clone())
                .bind(&a.case_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// A case with its petitioners and its timeline.
    pub async fn get_case(&self, key: &CaseKey) -> Result<Option<CaseRecord>, StoreError> {
        let (column, value) = match key {
            CaseKey::Id(id) => ("id", id.to_string()),
            CaseKey::Number(n) => ("case_number", n.clone()),
            CaseKey::QueryCode(q) => ("query_code", q.clone()),
        };
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CASE_COLUMNS} FROM cases WHERE {column} = $1 AND case_number IS NOT NULL"
        )))
        .bind(value)
        .fetch_optional(self.db.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let mut case = case_from_row(&row)?;
        let id = case.body.id.to_string();
        case.petitioners = sqlx::query(
            "SELECT name, id_type, id_hash, id_number_sealed, phone_sealed, address_sealed, \
             is_main, sex, age_band FROM petitioners WHERE case_id = $1 ORDER BY ordinal",
        )
        .bind(&id)
        .fetch_all(self.db.pool())
        .await?
        .iter()
        .map(petitioner_from_row)
        .collect::<Result<_, _>>()?;
        case.steps = sqlx::query(
            "SELECT event_id, at, kind, organ, note, public_note FROM case_steps \
             WHERE case_id = $1 ORDER BY at, event_id",
        )
        .bind(&id)
        .fetch_all(self.db.pool())
        .await?
        .iter()
        .map(step_from_row)
        .collect::<Result<_, _>>()?;
        case.recused = petition_storage::recusals::of_case(self.db.pool(), &id).await?;
        Ok(Some(case))
    }

    /// One page of cases, newest first, filtered — the caller's scope included — in SQL.
    pub async fn list_cases(
        &self,
        filter: &CaseFilter,
        after: Option<PageCursor>,
        limit: u32,
    ) -> Result<Vec<CaseRecord>, StoreError> {
        if filter.scope.nothing {
            return Ok(Vec::new());
        }
        let mut q = Sql::new(format!(
            "SELECT {CASE_COLUMNS} FROM cases WHERE case_number IS NOT NULL"
        ));
        if let Some(organs) = &filter.scope.organs {
            q.push(" AND (");
            push_in(&mut q, "received_by", organs);
            q.push(" OR ");
            push_in(&mut q, "holder", organs);
            q.push(" OR ");
            push_in(&mut q, "bureau", organs);
            q.push(")");
        }
        if let Some(s) = &filter.scope.source_system {
            q.push(" AND source_system = ").bind(s.clone());
        }
        if !filter.scope.hidden_accused.is_empty() {
            q.push(" AND (accused_organ IS NULL OR NOT");
            push_in(&mut q, "accused_organ", &filter.scope.hidden_accused);
            q.push(")");
        }
        petition_storage::recusals::push_not_recused(
            &mut q,
            "cases.id",
            filter.scope.recused.as_deref(),
        );
        if let Some(r) = &filter.received_by {
            q.push(" AND received_by = ").bind(r.clone());
        }
        if let Some(c) = filter.channel {
            q.push(" AND channel = ").bind(c.as_str().to_owned());
        }
        if let Some(p) = &filter.category_prefix {
            q.push(" AND (category = ")
                .bind(p.clone())
                .push(" OR category LIKE ")
                .bind(format!("{p}.%"))
                .push(")");
        }
        if filter.only_group {
            q.push(" AND flag_group = 1");
        }
        if filter.only_leapfrog {
            q.push(" AND flag_leapfrog = 1");
        }
        if filter.only_repeat {
            q.push(" AND flag_repeat = 1");
        }
        if !filter.statuses.is_empty() {
            q.push(" AND status IN (")
                .bind_list(filter.statuses.iter().map(|s| s.as_str().to_owned()))
                .push(")");
        }
        if let Some(t) = filter.received_from {
            q.push(" AND received_at >= ").bind(micros(t));
        }
        if let Some(t) = filter.received_to {
            q.push(" AND received_at < ").bind(micros(t));
        }
        match &filter.petitioner {
            None => {}
            Some(hashes) if hashes.is_empty() => {
                q.push(" AND 1 = 0");
            }
            Some(hashes) => {
                q.push(" AND id IN (SELECT case_id FROM petitioners WHERE id_hash IN (")
                    .bind_list(hashes.iter().cloned())
                    .push("))");
            }
        }
        q.page(
            "received_at",
            "id",
            after.map(|c| (micros(c.received_at), c.id.to_string())),
            Order::Descending,
            limit,
        );
        let rows = q.build().fetch_all(self.db.pool()).await?;
        rows.iter().map(case_from_row).collect()
    }

    /// Records a step another service reported, in the consumer's transaction. The case's
    /// status and holder follow the step unless a later step already set them (events may
    /// arrive out of order). Returns false for a step already recorded, or for a case this
    /// intake does not hold.
    pub async fn apply_step(
        tx: &mut Tx,
        case_id: &str,
        step: &StepRecord,
    ) -> Result<bool, StoreError> {
        // Recorded only for a case this intake holds (not another deployment's on a shared
        // stream), and once.
        let recorded = sqlx::query(
            "INSERT INTO case_steps (case_id, event_id, at, kind, organ, note, public_note) \
             SELECT $1, $2, $3, $4, $5, $6, $7 WHERE EXISTS (SELECT 1 FROM cases WHERE id = $1) \
             ON CONFLICT DO NOTHING",
        )
        .bind(case_id)
        .bind(&step.event_id)
        .bind(micros(step.at))
        .bind(step.kind.as_str())
        .bind(&step.organ)
        .bind(&step.note)
        .bind(&step.public_note)
        .execute(&mut **tx)
        .await?;
        if recorded.rows_affected() == 0 {
            return Ok(false);
        }
        // The newest step sets the status, compared in the statement itself: routing's and
        // supervision's consumers write the same case concurrently, and a status read first
        // could be stale by the time it is written.
        sqlx::query(
            "UPDATE cases SET status = COALESCE($1, status), \
             holder = COALESCE(NULLIF($2, ''), holder), status_at = $3, status_event = $4, \
             bureau = COALESCE($5, bureau) \
             WHERE id = $6 AND (status_at < $3 OR (status_at = $3 AND status_event < $4))",
        )
        .bind(step.kind.sets_status().map(|s| s.as_str()))
        .bind(&step.organ)
        .bind(micros(step.at))
        .bind(&step.event_id)
        .bind(step.bureau.clone())
        .bind(case_id)
        .execute(&mut **tx)
        .await?;
        Ok(true)
    }
}
