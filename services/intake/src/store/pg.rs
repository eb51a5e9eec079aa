//! PostgreSQL implementation of the intake store (schema `intake`).

use super::{
    CaseFilter, CaseKey, CaseRecord, EventBuilder, IntakeStore, NewCase, PageCursor, StoreError,
    StoredFlags, StoredPetitioner,
};
use petition_domain::case_number::MAX_SEQUENCE;
use petition_domain::intake::PriorCase;
use petition_events::outbox::{PgOutbox, enqueue_pg};
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Postgres, QueryBuilder, Row};
use uuid::Uuid;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

const CASE_COLUMNS: &str = "id, case_number, query_code, channel, received_by, received_at, \
    registered_at, registered_by, category, type_of_matter, diversion, problem_location, title, \
    content, people_present, people_affected, representatives, accused_name_sealed, \
    accused_organ, source_system, external_ref, fingerprint, competent_organ, status, \
    flag_group, flag_leapfrog, flag_repeat, repeat_of_case_id, repeat_of_case_number, \
    first_at_organ, open_below_case_number";

#[derive(Clone)]
pub struct PgIntakeStore {
    pool: PgPool,
}

impl PgIntakeStore {
    /// Migrates the schema and installs the outbox; returns the store and its outbox.
    pub async fn open(pool: PgPool) -> Result<(Self, PgOutbox), StoreError> {
        MIGRATOR.run(&pool).await?;
        let outbox = PgOutbox::install(pool.clone()).await?;
        Ok((Self { pool }, outbox))
    }

    async fn load_petitioners(&self, case_id: Uuid) -> Result<Vec<StoredPetitioner>, StoreError> {
        let rows = sqlx::query(
            "SELECT name, id_type, id_hash, id_number_sealed, phone_sealed, address_sealed, \
             is_main, sex, age_band FROM petitioners WHERE case_id = $1 ORDER BY ordinal",
        )
        .bind(case_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| StoredPetitioner {
                name: r.get("name"),
                id_type: r.get("id_type"),
                id_hash: r.get("id_hash"),
                id_number_sealed: r.get("id_number_sealed"),
                phone_sealed: r.get("phone_sealed"),
                address_sealed: r.get("address_sealed"),
                is_main: r.get("is_main"),
                sex: r.get("sex"),
                age_band: r.get("age_band"),
            })
            .collect())
    }
}

fn case_from_row(r: &PgRow) -> Result<CaseRecord, StoreError> {
    let case_number: Option<String> = r.get("case_number");
    Ok(CaseRecord {
        id: r.get("id"),
        case_number: case_number
            .ok_or_else(|| StoreError::Corrupt("case without a case number".into()))?,
        query_code: r.get("query_code"),
        channel: r.get("channel"),
        received_by: r.get("received_by"),
        received_at: r.get("received_at"),
        registered_at: r.get("registered_at"),
        registered_by: r.get("registered_by"),
        category: r.get("category"),
        type_of_matter: r.get("type_of_matter"),
        diversion: r.get("diversion"),
        problem_location: r.get("problem_location"),
        title: r.get("title"),
        content: r.get("content"),
        people_present: r.get("people_present"),
        people_affected: r.get("people_affected"),
        representatives: r.get("representatives"),
        accused_name_sealed: r.get("accused_name_sealed"),
        accused_organ: r.get("accused_organ"),
        source_system: r.get("source_system"),
        external_ref: r.get("external_ref"),
        fingerprint: r.get("fingerprint"),
        competent_organ: r.get("competent_organ"),
        status: r.get("status"),
        flags: StoredFlags {
            group: r.get("flag_group"),
            leapfrog: r.get("flag_leapfrog"),
            repeat: r.get("flag_repeat"),
            repeat_of_case_id: r.get("repeat_of_case_id"),
            repeat_of_case_number: r.get("repeat_of_case_number"),
            first_at_organ: r.get("first_at_organ"),
            open_below_case_number: r.get("open_below_case_number"),
        },
        petitioners: Vec::new(),
    })
}

fn is_key_conflict(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.is_unique_violation() && d.constraint() == Some("cases_idempotency_key"))
}

#[async_trait::async_trait]
impl IntakeStore for PgIntakeStore {
    async fn register(&self, case: NewCase, event: EventBuilder) -> Result<String, StoreError> {
        let mut tx = self.pool.begin().await?;
        let f = &case.flags;
        let inserted = sqlx::query(
            "INSERT INTO cases (id, query_code, channel, received_by, received_at, registered_at, \
             registered_by, category, type_of_matter, diversion, problem_location, title, content, \
             people_present, people_affected, representatives, accused_name_sealed, accused_organ, \
             source_system, external_ref, fingerprint, competent_organ, flag_group, flag_leapfrog, \
             flag_repeat, repeat_of_case_id, repeat_of_case_number, first_at_organ, \
             open_below_case_number) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15, \
             $16,$17,$18,$19,$20,$21,$22,$23,$24,$25,$26,$27,$28,$29)",
        )
        .bind(case.id)
        .bind(&case.query_code)
        .bind(&case.channel)
        .bind(&case.received_by)
        .bind(case.received_at)
        .bind(case.registered_at)
        .bind(&case.registered_by)
        .bind(&case.category)
        .bind(&case.type_of_matter)
        .bind(&case.diversion)
        .bind(&case.problem_location)
        .bind(&case.title)
        .bind(&case.content)
        .bind(case.people_present)
        .bind(case.people_affected)
        .bind(case.representatives)
        .bind(&case.accused_name_sealed)
        .bind(&case.accused_organ)
        .bind(&case.source_system)
        .bind(&case.external_ref)
        .bind(&case.fingerprint)
        .bind(&case.competent_organ)
        .bind(f.group)
        .bind(f.leapfrog)
        .bind(f.repeat)
        .bind(f.repeat_of_case_id)
        .bind(&f.repeat_of_case_number)
        .bind(f.first_at_organ)
        .bind(&f.open_below_case_number)
        .execute(&mut *tx)
        .await;
        if let Err(e) = inserted {
            return Err(if is_key_conflict(&e) {
                StoreError::DuplicateKey
            } else {
                e.into()
            });
        }
        if !case.petitioners.is_empty() {
            let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(
                "INSERT INTO petitioners (case_id, ordinal, name, id_type, id_hash, \
                 id_number_sealed, phone_sealed, address_sealed, is_main, sex, age_band) ",
            );
            qb.push_values(case.petitioners.iter().enumerate(), |mut b, (i, p)| {
                b.push_bind(case.id)
                    .push_bind(i as i32)
                    .push_bind(&p.name)
                    .push_bind(&p.id_type)
                    .push_bind(&p.id_hash)
                    .push_bind(&p.id_number_sealed)
                    .push_bind(&p.phone_sealed)
                    .push_bind(&p.address_sealed)
                    .push_bind(p.is_main)
                    .push_bind(&p.sex)
                    .push_bind(&p.age_band);
            });
            qb.build().execute(&mut *tx).await?;
        }
        // Drawing the number takes the organ's counter row lock; from here to commit is two
        // statements, so concurrent registrations of one organ wait as little as possible.
        let seq: i64 = sqlx::query_scalar(
            "WITH n AS ( \
               INSERT INTO case_number_counters (organ_id, year, last_seq) VALUES ($1, $2, 1) \
               ON CONFLICT (organ_id, year) DO UPDATE \
                 SET last_seq = case_number_counters.last_seq + 1 \
               RETURNING last_seq) \
             UPDATE cases SET case_number = $3 || lpad(n.last_seq::text, 6, '0') \
             FROM n WHERE cases.id = $4 RETURNING n.last_seq",
        )
        .bind(&case.received_by)
        .bind(case.register_year)
        .bind(format!(
            "{}-{:04}-",
            case.register_region, case.register_year
        ))
        .bind(case.id)
        .fetch_one(&mut *tx)
        .await?;
        if seq as u64 > MAX_SEQUENCE {
            return Err(StoreError::RegisterFull {
                organ: case.received_by,
                year: case.register_year,
            });
        }
        let number = format!(
            "{}-{:04}-{:06}",
            case.register_region, case.register_year, seq
        );
        enqueue_pg(&mut tx, &event(&number)).await?;
        tx.commit().await?;
        Ok(number)
    }

    async fn find_by_idempotency_key(
        &self,
        source_system: &str,
        external_ref: &str,
    ) -> Result<Option<CaseRecord>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CASE_COLUMNS} FROM cases WHERE source_system = $1 AND external_ref = $2"
        )))
        .bind(source_system)
        .bind(external_ref)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(case_from_row).transpose()
    }

    async fn prior_cases(
        &self,
        id_hashes: &[Vec<u8>],
        category: &str,
        problem_location: &str,
    ) -> Result<Vec<PriorCase>, StoreError> {
        if id_hashes.is_empty() {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(
            "SELECT DISTINCT c.id, c.case_number, c.received_by, c.received_at, c.status \
             FROM cases c JOIN petitioners p ON p.case_id = c.id \
             WHERE p.id_hash = ANY($1) AND c.category = $2 AND c.problem_location = $3 \
               AND c.case_number IS NOT NULL",
        )
        .bind(id_hashes)
        .bind(category)
        .bind(problem_location)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| {
                let status: String = r.get("status");
                PriorCase {
                    case_id: r.get::<Uuid, _>("id").to_string(),
                    case_number: r.get("case_number"),
                    received_by: r.get("received_by"),
                    received_at: r.get("received_at"),
                    open: !super::CLOSED_STATUSES.contains(&status.as_str()),
                }
            })
            .collect())
    }

    async fn get_case(&self, key: &CaseKey) -> Result<Option<CaseRecord>, StoreError> {
        let column = match key {
            CaseKey::Id(_) => "id",
            CaseKey::Number(_) => "case_number",
            CaseKey::QueryCode(_) => "query_code",
        };
        let query = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CASE_COLUMNS} FROM cases WHERE {column} = $1 AND case_number IS NOT NULL"
        )));
        let query = match key {
            CaseKey::Id(id) => query.bind(*id),
            CaseKey::Number(v) | CaseKey::QueryCode(v) => query.bind(v.clone()),
        };
        let row = query.fetch_optional(&self.pool).await?;
        let Some(row) = row else { return Ok(None) };
        let mut case = case_from_row(&row)?;
        case.petitioners = self.load_petitioners(case.id).await?;
        Ok(Some(case))
    }

    async fn list_cases(
        &self,
        filter: &CaseFilter,
        after: Option<PageCursor>,
        limit: u32,
    ) -> Result<Vec<CaseRecord>, StoreError> {
        let mut qb: QueryBuilder<Postgres> = QueryBuilder::new(format!(
            "SELECT {CASE_COLUMNS} FROM cases WHERE case_number IS NOT NULL"
        ));
        if let Some(orgs) = &filter.received_by_any {
            qb.push(" AND received_by = ANY(")
                .push_bind(orgs.clone())
                .push(")");
        }
        if let Some(s) = &filter.source_system {
            qb.push(" AND source_system = ").push_bind(s.clone());
        }
        if let Some(c) = &filter.channel {
            qb.push(" AND channel = ").push_bind(c.clone());
        }
        if let Some(p) = &filter.category_prefix {
            qb.push(" AND (category = ")
                .push_bind(p.clone())
                .push(" OR category LIKE ")
                .push_bind(format!("{p}.%"))
                .push(")");
        }
        if filter.only_group {
            qb.push(" AND flag_group");
        }
        if filter.only_leapfrog {
            qb.push(" AND flag_leapfrog");
        }
        if filter.only_repeat {
            qb.push(" AND flag_repeat");
        }
        if let Some(t) = filter.received_from {
            qb.push(" AND received_at >= ").push_bind(t);
        }
        if let Some(t) = filter.received_to {
            qb.push(" AND received_at < ").push_bind(t);
        }
        if let Some(c) = after {
            qb.push(" AND (received_at, id) < (")
                .push_bind(c.received_at)
                .push(", ")
                .push_bind(c.id)
                .push(")");
        }
        qb.push(" ORDER BY received_at DESC, id DESC LIMIT ")
            .push_bind(i64::from(limit));
        let rows = qb.build().fetch_all(&self.pool).await?;
        rows.iter().map(case_from_row).collect()
    }

    async fn cases_of_petitioner(&self, id_hash: &[u8]) -> Result<Vec<CaseRecord>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CASE_COLUMNS} FROM cases WHERE case_number IS NOT NULL AND id IN \
             (SELECT case_id FROM petitioners WHERE id_hash = $1) \
             ORDER BY received_at DESC, id DESC"
        )))
        .bind(id_hash)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(case_from_row).collect()
    }
}
