//! The store pattern every service follows: one SQL body per store, run on PostgreSQL (one
//! schema per service) or SQLite (one file per service, the embedded default) through
//! `sqlx::Any`. Schemas use types both dialects read alike — text ids, integer microseconds
//! since the Unix epoch, integer 0/1 flags, `BYTEA` blobs — so one migration set serves both.
//! Where PostgreSQL earns a statement of its own, the store asks [`Db::dialect`] by name.

pub mod recusals;
pub mod requests;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, Connection, Executor, Row};
use std::str::FromStr;
use std::time::Duration;

pub use sqlx::Error as SqlError;
pub use sqlx::any::Any;

/// Why a store of versioned records refused or failed a write: the same for every service that
/// keeps a record per case under a version and applies client request ids.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Someone changed the record since it was read; the caller reads again.
    #[error("the case changed concurrently")]
    Conflict,
    /// The organ's request id was applied meanwhile by a concurrent request.
    #[error("the request id was used concurrently")]
    DuplicateRequest,
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("stored data is inconsistent: {0}")]
    Corrupt(#[from] Corrupt),
}

impl From<requests::RequestError> for StoreError {
    fn from(e: requests::RequestError) -> Self {
        match e {
            requests::RequestError::Duplicate => StoreError::DuplicateRequest,
            requests::RequestError::Database(e) => e.into(),
        }
    }
}

/// A transaction on the store's pool.
pub type Tx = sqlx::Transaction<'static, Any>;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("unsupported database URL {0:?}: use postgres://… or sqlite://…")]
    Scheme(String),
    #[error("schema name {0:?} must be lower-case letters and underscores")]
    SchemaName(String),
    #[error("cannot create the directory of {path}: {source}")]
    Directory {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Sqlx(#[from] sqlx::Error),
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// The one migration of tables every service's schema holds beside its own (the outbox, the
/// audit log), under a migrations table of their own so that they run beside each service's:
/// one text for both dialects, SQLite spelling an auto-incrementing key its way.
pub fn shared_migrator(
    dialect: Dialect,
    migrations_table: &'static str,
    name: &str,
    sql: &str,
) -> Migrator {
    use sqlx::SqlSafeStr;
    let sql = match dialect {
        Dialect::Postgres => sql.to_owned(),
        Dialect::Sqlite => {
            sql.replace("BIGSERIAL PRIMARY KEY", "INTEGER PRIMARY KEY AUTOINCREMENT")
        }
    };
    let mut m = Migrator::with_migrations(vec![sqlx::migrate::Migration::new(
        1,
        name.to_owned().into(),
        sqlx::migrate::MigrationType::Simple,
        sqlx::AssertSqlSafe(sql).into_sql_str(),
        false,
    )]);
    m.dangerous_set_table_name(migrations_table);
    m
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Postgres,
    Sqlite,
}

impl Dialect {
    pub fn of_url(url: &str) -> Result<Self, StorageError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Dialect::Postgres)
        } else if url.starts_with("sqlite:") {
            Ok(Dialect::Sqlite)
        } else {
            Err(StorageError::Scheme(url.to_owned()))
        }
    }
}

/// A service's database: the pool and which dialect answers it.
#[derive(Debug, Clone)]
pub struct Db {
    pool: AnyPool,
    dialect: Dialect,
    /// the schema (PostgreSQL) or file (SQLite) it was opened for: names its metrics when
    /// several services share one process
    schema: String,
}

impl Db {
    /// Opens `url`: on PostgreSQL a pool whose connections see only `schema` (created if
    /// missing), so a service's unqualified tables — and its migration history — live in its
    /// own schema; on SQLite the file (and its directory), in WAL mode, on one connection, since
    /// SQLite serialises writers anyway and one connection never meets SQLITE_BUSY on a lock
    /// upgrade.
    pub async fn connect(
        url: &str,
        schema: &str,
        max_connections: u32,
    ) -> Result<Self, StorageError> {
        sqlx::any::install_default_drivers();
        let dialect = Dialect::of_url(url)?;
        let mut db = match dialect {
            Dialect::Postgres => Self::connect_postgres(url, schema, max_connections).await?,
            Dialect::Sqlite => Self::connect_sqlite(url).await?,
        };
        db.schema = schema.to_owned();
        Ok(db)
    }

    async fn connect_postgres(url: &str, schema: &str, max: u32) -> Result<Self, StorageError> {
        if schema.is_empty() || !schema.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
            return Err(StorageError::SchemaName(schema.to_owned()));
        }
        let options = AnyConnectOptions::from_str(url)?;
        let mut conn = sqlx::AnyConnection::connect_with(&options).await?;
        // Two services starting at once may race to create their schemas; the lock makes it safe.
        conn.execute("SELECT pg_advisory_lock(4242)").await?;
        let created = conn
            .execute(sqlx::AssertSqlSafe(format!(
                "CREATE SCHEMA IF NOT EXISTS {schema}"
            )))
            .await;
        conn.execute("SELECT pg_advisory_unlock(4242)").await?;
        created?;
        conn.close().await?;
        let set_path = format!("SET search_path TO {schema}");
        let pool = AnyPoolOptions::new()
            .max_connections(max)
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _| {
                let set_path = set_path.clone();
                Box::pin(async move {
                    conn.execute(sqlx::AssertSqlSafe(set_path)).await?;
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        Ok(Self {
            pool,
            dialect: Dialect::Postgres,
            schema: String::new(),
        })
    }

    async fn connect_sqlite(url: &str) -> Result<Self, StorageError> {
        let path = url
            .trim_start_matches("sqlite://")
            .trim_start_matches("sqlite:");
        let path = path.split('?').next().unwrap_or_default();
        if let Some(dir) = std::path::Path::new(path).parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(|source| StorageError::Directory {
                path: path.to_owned(),
                source,
            })?;
        }
        let url = if url.contains('?') {
            url.to_owned()
        } else {
            format!("{url}?mode=rwc")
        };
        let options = AnyConnectOptions::from_str(&url)?;
        let pool = AnyPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute(
                        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                         PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;",
                    )
                    .await?;
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        Ok(Self {
            pool,
            dialect: Dialect::Sqlite,
            schema: String::new(),
        })
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    pub fn schema(&self) -> &str {
        &self.schema
    }

    pub async fn begin(&self) -> Result<Tx, sqlx::Error> {
        self.pool.begin().await
    }

    /// Runs `migrator` against this database.
    pub async fn migrate(&self, migrator: &Migrator) -> Result<(), StorageError> {
        migrator.run(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Builds a statement whose shape depends on the request (filters, lists, pages) with numbered
/// `$n` placeholders. sqlx's `QueryBuilder` writes `?` for `Any`, which SQLite reads and
/// PostgreSQL refuses; `$n` both read.
#[derive(Default)]
pub struct Sql {
    text: String,
    args: sqlx::any::AnyArguments,
}

impl Sql {
    pub fn new(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            args: sqlx::any::AnyArguments::default(),
        }
    }

    /// Appends SQL text.
    pub fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Appends a placeholder bound to `value`.
    pub fn bind<T>(&mut self, value: T) -> &mut Self
    where
        T: for<'q> sqlx::Encode<'q, Any> + sqlx::Type<Any>,
    {
        use sqlx::Arguments;
        // Encoding text, integers, blobs and their options into Any's buffer cannot fail.
        self.args
            .add(value)
            .expect("a plain value encodes into Any's arguments");
        self.text.push('$');
        self.text.push_str(&self.args.len().to_string());
        self
    }

    /// Appends `v1, v2, …` as placeholders.
    pub fn bind_list<T>(&mut self, values: impl IntoIterator<Item = T>) -> &mut Self
    where
        T: for<'q> sqlx::Encode<'q, Any> + sqlx::Type<Any>,
    {
        for (i, v) in values.into_iter().enumerate() {
            if i > 0 {
                self.text.push_str(", ");
            }
            self.bind(v);
        }
        self
    }

    /// Keyset pagination: ` AND (first, second) > ($a, $b)` for the rows after `(a, b)` in
    /// ascending order (`<` in descending order). A row comparison, which both dialects read as
    /// one range of an index on `(first, second)`; the same condition spelled out with OR makes
    /// PostgreSQL scan from the start of the index on every page.
    pub fn after(
        &mut self,
        first: &str,
        second: &str,
        (a, b): (i64, String),
        order: Order,
    ) -> &mut Self {
        let op = order.beyond();
        self.push(&format!(" AND ({first}, {second}) {op} ("))
            .bind(a)
            .push(", ")
            .bind(b)
            .push(")")
    }

    /// One keyset page: the rows after `after` (if any), ordered by `(first, second)`, at most
    /// `limit` of them.
    pub fn page(
        &mut self,
        first: &str,
        second: &str,
        after: Option<(i64, String)>,
        order: Order,
        limit: u32,
    ) -> &mut Self {
        if let Some(after) = after {
            self.after(first, second, after, order);
        }
        self.order_limit(first, second, order, limit)
    }

    /// ` ORDER BY first, second LIMIT $n`, both in `order`.
    pub fn order_limit(
        &mut self,
        first: &str,
        second: &str,
        order: Order,
        limit: u32,
    ) -> &mut Self {
        let dir = order.keyword();
        self.push(&format!(" ORDER BY {first} {dir}, {second} {dir} LIMIT "))
            .bind(i64::from(limit))
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The statement, ready to run.
    pub fn build(self) -> sqlx::query::Query<'static, Any, sqlx::any::AnyArguments> {
        sqlx::query_with(sqlx::AssertSqlSafe(self.text), self.args)
    }
}

/// The direction of a keyset-paged list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Ascending,
    Descending,
}

impl Order {
    fn keyword(self) -> &'static str {
        match self {
            Order::Ascending => "ASC",
            Order::Descending => "DESC",
        }
    }

    fn beyond(self) -> &'static str {
        match self {
            Order::Ascending => ">",
            Order::Descending => "<",
        }
    }
}

/// Stored data that breaks the schema's own rules: a text that names no variant of its enum, a
/// timestamp out of range. Never the client's fault.
#[derive(Debug, thiserror::Error)]
#[error("column {column}: {reason}")]
pub struct Corrupt {
    pub column: &'static str,
    pub reason: String,
}

/// Reading typed values out of a row, once per store.
pub trait RowExt {
    fn text(&self, column: &'static str) -> Result<String, Corrupt>;
    fn opt_text(&self, column: &'static str) -> Result<Option<String>, Corrupt>;
    fn int(&self, column: &'static str) -> Result<i64, Corrupt>;
    fn opt_int(&self, column: &'static str) -> Result<Option<i64>, Corrupt>;
    fn flag(&self, column: &'static str) -> Result<bool, Corrupt>;
    fn bytes(&self, column: &'static str) -> Result<Vec<u8>, Corrupt>;
    fn opt_bytes(&self, column: &'static str) -> Result<Option<Vec<u8>>, Corrupt>;
    fn time(&self, column: &'static str) -> Result<chrono::DateTime<chrono::Utc>, Corrupt>;
    fn opt_time(
        &self,
        column: &'static str,
    ) -> Result<Option<chrono::DateTime<chrono::Utc>>, Corrupt>;
    /// A text column holding one variant of `T` (a `text_enum!`), mapped at the row boundary.
    fn parsed<T>(&self, column: &'static str) -> Result<T, Corrupt>
    where
        T: FromStr,
        T::Err: std::fmt::Display;
    fn opt_parsed<T>(&self, column: &'static str) -> Result<Option<T>, Corrupt>
    where
        T: FromStr,
        T::Err: std::fmt::Display;
}

fn decode<'r, T>(row: &'r AnyRow, column: &'static str) -> Result<T, Corrupt>
where
    T: sqlx::Decode<'r, Any> + sqlx::Type<Any>,
{
    row.try_get(column).map_err(|e| Corrupt {
        column,
        reason: e.to_string(),
    })
}

impl RowExt for AnyRow {
    fn text(&self, column: &'static str) -> Result<String, Corrupt> {
        decode(self, column)
    }
    fn opt_text(&self, column: &'static str) -> Result<Option<String>, Corrupt> {
        decode(self, column)
    }
    fn int(&self, column: &'static str) -> Result<i64, Corrupt> {
        decode(self, column)
    }
    fn opt_int(&self, column: &'static str) -> Result<Option<i64>, Corrupt> {
        decode(self, column)
    }
    fn flag(&self, column: &'static str) -> Result<bool, Corrupt> {
        Ok(self.int(column)? != 0)
    }
    fn bytes(&self, column: &'static str) -> Result<Vec<u8>, Corrupt> {
        decode(self, column)
    }
    fn opt_bytes(&self, column: &'static str) -> Result<Option<Vec<u8>>, Corrupt> {
        decode(self, column)
    }
    fn time(&self, column: &'static str) -> Result<chrono::DateTime<chrono::Utc>, Corrupt> {
        from_micros(column, self.int(column)?)
    }
    fn opt_time(
        &self,
        column: &'static str,
    ) -> Result<Option<chrono::DateTime<chrono::Utc>>, Corrupt> {
        self.opt_int(column)?
            .map(|v| from_micros(column, v))
            .transpose()
    }
    fn parsed<T>(&self, column: &'static str) -> Result<T, Corrupt>
    where
        T: FromStr,
        T::Err: std::fmt::Display,
    {
        let text = self.text(column)?;
        text.parse().map_err(|e: T::Err| Corrupt {
            column,
            reason: e.to_string(),
        })
    }
    fn opt_parsed<T>(&self, column: &'static str) -> Result<Option<T>, Corrupt>
    where
        T: FromStr,
        T::Err: std::fmt::Display,
    {
        self.opt_text(column)?
            .map(|text| {
                text.parse().map_err(|e: T::Err| Corrupt {
                    column,
                    reason: e.to_string(),
                })
            })
            .transpose()
    }
}

/// Timestamps are stored as microseconds since the Unix epoch (UTC): they sort and compare as
/// numbers in both dialects.
pub fn micros(t: chrono::DateTime<chrono::Utc>) -> i64 {
    t.timestamp_micros()
}

fn from_micros(column: &'static str, v: i64) -> Result<chrono::DateTime<chrono::Utc>, Corrupt> {
    chrono::DateTime::from_timestamp_micros(v).ok_or_else(|| Corrupt {
        column,
        reason: format!("timestamp {v} out of range"),
    })
}

/// Whether `e` says the database cannot be reached (rather than refusing a statement): the
/// caller should wait and retry, not give up on what it was doing.
pub fn is_unavailable(e: &sqlx::Error) -> bool {
    matches!(
        e,
        sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
    )
}

/// Whether `e` is a unique violation of the constraint or index named `name`. PostgreSQL names
/// the constraint; SQLite names the columns (`table.column`), so callers pass both spellings.
pub fn is_unique_violation(e: &sqlx::Error, names: &[&str]) -> bool {
    e.as_database_error().is_some_and(|d| {
        d.is_unique_violation()
            && names
                .iter()
                .any(|n| d.constraint() == Some(*n) || d.message().contains(n))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dialect_by_scheme() {
        assert_eq!(
            Dialect::of_url("postgres://u@h/db").unwrap(),
            Dialect::Postgres
        );
        assert_eq!(
            Dialect::of_url("sqlite://data/x.db").unwrap(),
            Dialect::Sqlite
        );
        assert!(Dialect::of_url("mysql://x").is_err());
    }

    #[tokio::test]
    async fn sqlite_file_is_created_with_its_directory_and_reads_portable_types() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/sub/x.db", dir.path().display());
        let db = Db::connect(&url, "unused", 1).await.unwrap();
        assert_eq!(db.dialect(), Dialect::Sqlite);
        sqlx::raw_sql(
            "CREATE TABLE t (id TEXT PRIMARY KEY, at BIGINT NOT NULL, flag SMALLINT NOT NULL, \
             blob BYTEA, note TEXT)",
        )
        .execute(db.pool())
        .await
        .unwrap();
        let at = chrono::DateTime::from_timestamp_micros(1_772_400_000_123_456).unwrap();
        sqlx::query("INSERT INTO t (id, at, flag, blob, note) VALUES ($1, $2, $3, $4, $5)")
            .bind("a")
            .bind(micros(at))
            .bind(1_i16)
            .bind(vec![0_u8, 1, 2])
            .bind(None::<String>)
            .execute(db.pool())
            .await
            .unwrap();
        let row = sqlx::query("SELECT id, at, flag, blob, note FROM t")
            .fetch_one(db.pool())
            .await
            .unwrap();
        assert_eq!(row.text("id").unwrap(), "a");
        assert_eq!(row.time("at").unwrap(), at);
        assert!(row.flag("flag").unwrap());
        assert_eq!(row.bytes("blob").unwrap(), vec![0, 1, 2]);
        assert_eq!(row.opt_text("note").unwrap(), None);
        let bad = row.parsed::<std::net::IpAddr>("id").unwrap_err();
        assert_eq!(bad.column, "id");
        db.close().await;
        assert!(dir.path().join("sub/x.db").exists());
    }

    #[test]
    fn statements_number_their_placeholders() {
        let mut q = Sql::new("SELECT 1 FROM t WHERE a = ");
        q.bind(1_i64)
            .push(" AND b IN (")
            .bind_list(["x", "y"].map(String::from))
            .push(")");
        assert_eq!(q.as_str(), "SELECT 1 FROM t WHERE a = $1 AND b IN ($2, $3)");
        let mut q = Sql::new("SELECT x FROM t WHERE y");
        q.after("at", "id", (5, "k".into()), Order::Descending)
            .order_limit("at", "id", Order::Descending, 10);
        assert_eq!(
            q.as_str(),
            "SELECT x FROM t WHERE y AND (at, id) < ($1, $2) ORDER BY at DESC, id DESC LIMIT $3"
        );
    }

    #[tokio::test]
    async fn bad_schema_names_are_refused_before_connecting() {
        let err = Db::connect("postgres://nobody@127.0.0.1:1/x", "intake; drop", 1)
            .await
            .unwrap_err();
        assert!(matches!(err, StorageError::SchemaName(_)));
    }
}
