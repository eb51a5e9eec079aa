//! The intake store: one trait with no sqlx in its API, one implementation per dialect, and one
//! conformance suite (tests/store_conformance.rs) run against both.

mod pg;
mod sqlite;

pub use pg::PgIntakeStore;
pub use sqlite::SqliteIntakeStore;

use chrono::{DateTime, Utc};
use petition_domain::intake::PriorCase;
use petition_events::OutboxMessage;
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another registration holds the same `(source_system, external_ref)`.
    #[error("idempotency key already registered")]
    DuplicateKey,
    #[error("the case register of organ {organ} for {year} is full (999999 cases)")]
    RegisterFull { organ: String, year: i32 },
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredFlags {
    pub group: bool,
    pub leapfrog: bool,
    pub repeat: bool,
    pub repeat_of_case_id: Option<Uuid>,
    pub repeat_of_case_number: Option<String>,
    pub first_at_organ: bool,
    pub open_below_case_number: Option<String>,
}

/// A petitioner as stored: personal data sealed, identity looked up by keyed hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPetitioner {
    pub name: String,
    pub id_type: Option<String>,
    pub id_hash: Option<Vec<u8>>,
    pub id_number_sealed: Option<Vec<u8>>,
    pub phone_sealed: Option<Vec<u8>>,
    pub address_sealed: Option<Vec<u8>>,
    pub is_main: bool,
    pub sex: Option<String>,
    pub age_band: Option<String>,
}

/// A case ready to be written; `case_number` is drawn by the store.
#[derive(Debug, Clone)]
pub struct NewCase {
    pub id: Uuid,
    pub query_code: String,
    pub channel: String,
    pub received_by: String,
    /// region code used as the case-number prefix
    pub register_region: String,
    pub register_year: i32,
    pub received_at: DateTime<Utc>,
    pub registered_at: DateTime<Utc>,
    pub registered_by: String,
    pub category: String,
    pub type_of_matter: String,
    pub diversion: Option<String>,
    pub problem_location: String,
    pub title: String,
    pub content: String,
    pub people_present: i32,
    pub people_affected: i32,
    pub representatives: i32,
    pub accused_name_sealed: Option<Vec<u8>>,
    pub accused_organ: Option<String>,
    pub source_system: Option<String>,
    pub external_ref: Option<String>,
    /// hash of the request, to tell a retry from a conflicting reuse of the key
    pub fingerprint: Vec<u8>,
    pub competent_organ: Option<String>,
    pub flags: StoredFlags,
    pub petitioners: Vec<StoredPetitioner>,
}

/// A case as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseRecord {
    pub id: Uuid,
    pub case_number: String,
    pub query_code: String,
    pub channel: String,
    pub received_by: String,
    pub received_at: DateTime<Utc>,
    pub registered_at: DateTime<Utc>,
    pub registered_by: String,
    pub category: String,
    pub type_of_matter: String,
    pub diversion: Option<String>,
    pub problem_location: String,
    pub title: String,
    pub content: String,
    pub people_present: i32,
    pub people_affected: i32,
    pub representatives: i32,
    pub accused_name_sealed: Option<Vec<u8>>,
    pub accused_organ: Option<String>,
    pub source_system: Option<String>,
    pub external_ref: Option<String>,
    pub fingerprint: Vec<u8>,
    pub competent_organ: Option<String>,
    pub status: String,
    pub flags: StoredFlags,
    /// empty in list results, which carry no personal data
    pub petitioners: Vec<StoredPetitioner>,
}

#[derive(Debug, Clone)]
pub enum CaseKey {
    Id(Uuid),
    Number(String),
    QueryCode(String),
}

#[derive(Debug, Clone, Default)]
pub struct CaseFilter {
    /// `None` = every organ; otherwise only cases received by one of these
    pub received_by_any: Option<Vec<String>>,
    pub source_system: Option<String>,
    pub channel: Option<String>,
    pub category_prefix: Option<String>,
    pub only_group: bool,
    pub only_leapfrog: bool,
    pub only_repeat: bool,
    pub received_from: Option<DateTime<Utc>>,
    pub received_to: Option<DateTime<Utc>>,
}

/// Keyset pagination: newest first by `(received_at, id)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageCursor {
    pub received_at: DateTime<Utc>,
    pub id: Uuid,
}

/// Builds the event once the case number is known, inside the registration transaction.
pub type EventBuilder = Box<dyn FnOnce(&str) -> OutboxMessage + Send>;

#[async_trait::async_trait]
pub trait IntakeStore: Send + Sync + 'static {
    /// Writes the case, its petitioners, its case number and its event in one transaction.
    /// Returns the case number.
    async fn register(&self, case: NewCase, event: EventBuilder) -> Result<String, StoreError>;
    async fn find_by_idempotency_key(
        &self,
        source_system: &str,
        external_ref: &str,
    ) -> Result<Option<CaseRecord>, StoreError>;
    /// Earlier cases of any of these identities on the same matter (category and location).
    async fn prior_cases(
        &self,
        id_hashes: &[Vec<u8>],
        category: &str,
        problem_location: &str,
    ) -> Result<Vec<PriorCase>, StoreError>;
    async fn get_case(&self, key: &CaseKey) -> Result<Option<CaseRecord>, StoreError>;
    async fn list_cases(
        &self,
        filter: &CaseFilter,
        after: Option<PageCursor>,
        limit: u32,
    ) -> Result<Vec<CaseRecord>, StoreError>;
    /// Every case one identity took part in, newest first.
    async fn cases_of_petitioner(&self, id_hash: &[u8]) -> Result<Vec<CaseRecord>, StoreError>;
}

/// Statuses that end a case; a repeat links only to cases not in one of these.
pub const CLOSED_STATUSES: [&str; 1] = ["closed"];
