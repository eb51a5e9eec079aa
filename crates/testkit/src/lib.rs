//! Real PostgreSQL and Redis for tests: each test gets its own database and its own Redis key
//! prefix, and both are removed when the fixture is dropped, so tests run in parallel and twice
//! in a row. Also: one harness that runs a store's conformance suite on both dialects, a
//! throwaway `redis-server` a test may kill and restart, and service binaries run as processes.
//!
//! Where the services are: `PETITION_TEST_DATABASE_URL` (an admin URL, default
//! `postgres://postgres@127.0.0.1:5432/postgres`) and `PETITION_TEST_REDIS_URL` (default
//! `redis://127.0.0.1:6379`). When one does not answer, a test skips with a message — unless
//! `CI=true`, where a missing service is a failure.

pub mod grpc;
pub mod process;
pub mod redis_server;

pub use process::ServiceProcess;
pub use redis_server::RedisServer;

use sqlx::Connection;
use uuid::Uuid;

pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

pub fn pg_admin_url() -> String {
    std::env::var("PETITION_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub fn redis_url() -> String {
    std::env::var("PETITION_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

fn unavailable(what: &str, err: &dyn std::fmt::Display) {
    if in_ci() {
        panic!("{what} is required under CI=true but is not reachable: {err}");
    }
    eprintln!(
        "SKIPPED: {what} is not reachable ({err}); start it or set the PETITION_TEST_* URL to run this test"
    );
}

fn unavailable_binary(what: &str) {
    unavailable(what, &"not installed");
}

/// A database of its own for one test.
pub struct TestDatabase {
    pub url: String,
    name: String,
    admin_url: String,
}

impl TestDatabase {
    /// `None` when PostgreSQL is not reachable outside CI (the test should return).
    pub async fn create() -> Option<Self> {
        let admin_url = pg_admin_url();
        let mut admin = match sqlx::PgConnection::connect(&admin_url).await {
            Ok(c) => c,
            Err(e) => {
                unavailable("PostgreSQL", &e);
                return None;
            }
        };
        let name = format!("petition_test_{}", Uuid::new_v4().simple());
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .expect("CREATE DATABASE");
        let _ = admin.close().await;
        let url = match admin_url.rsplit_once('/') {
            Some((base, _)) => format!("{base}/{name}"),
            None => panic!("admin URL {admin_url:?} names no database"),
        };
        Some(Self {
            url,
            name,
            admin_url,
        })
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop runs inside the test's runtime; a blocking thread with its own runtime avoids
        // blocking in async context.
        let joined = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                if let Ok(mut c) = sqlx::PgConnection::connect(&admin_url).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&mut c)
                    .await;
                    let _ = c.close().await;
                }
            });
        })
        .join();
        if joined.is_err() {
            eprintln!("could not drop test database {}", self.name);
        }
    }
}

/// Rows a test holds locked (`SELECT … FOR UPDATE` in an open transaction), so that a call
/// that needs them waits in flight.
pub struct Lock(sqlx::PgConnection);

impl Lock {
    /// Runs `select` (a `SELECT … FOR UPDATE`) in a transaction left open.
    pub async fn hold(url: &str, select: &str) -> Self {
        let mut c = sqlx::PgConnection::connect(url).await.expect("connect");
        sqlx::raw_sql("BEGIN").execute(&mut c).await.expect("begin");
        sqlx::raw_sql(sqlx::AssertSqlSafe(select.to_owned()))
            .execute(&mut c)
            .await
            .expect("lock the rows");
        Self(c)
    }

    pub async fn release(mut self) {
        sqlx::raw_sql("ROLLBACK")
            .execute(&mut self.0)
            .await
            .expect("rollback");
    }
}

/// Rows of `schema`'s outbox not yet published.
pub async fn unpublished(url: &str, schema: &str) -> i64 {
    count(
        url,
        &format!("SELECT count(*) FROM {schema}.outbox WHERE published_at IS NULL"),
    )
    .await
}

/// One number from the database at `url`.
pub async fn count(url: &str, sql: &str) -> i64 {
    let mut c = sqlx::PgConnection::connect(url).await.expect("connect");
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(&mut c)
        .await
        .expect("a count")
}

/// Waits until some session of the database at `url` waits for a lock: a call is in flight,
/// held by a lock the test took.
pub async fn wait_for_lock_wait(url: &str) {
    let mut c = sqlx::PgConnection::connect(url).await.expect("connect");
    for _ in 0..1000 {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(&mut c)
        .await
        .expect("pg_stat_activity");
        if waiting > 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("no call ever waited for the lock");
}

/// A Redis key prefix of its own for one test; every key under it is deleted on drop.
pub struct TestRedis {
    pub url: String,
    pub prefix: String,
}

impl TestRedis {
    pub async fn create() -> Option<Self> {
        let url = redis_url();
        let reachable = async {
            let client = redis::Client::open(url.as_str())?;
            let mut c = client.get_multiplexed_async_connection().await?;
            redis::cmd("PING").query_async::<String>(&mut c).await
        }
        .await;
        if let Err(e) = reachable {
            unavailable("Redis", &e);
            return None;
        }
        Some(Self {
            url,
            prefix: format!("t{}:", Uuid::new_v4().simple()),
        })
    }

    pub fn client(&self) -> redis::Client {
        redis::Client::open(self.url.as_str()).expect("redis url")
    }

    /// How many entries `stream` (under this key space's prefix) holds.
    pub async fn stream_len(&self, stream: &str) -> usize {
        let mut c = self
            .client()
            .get_multiplexed_async_connection()
            .await
            .expect("connect to redis");
        redis::cmd("XLEN")
            .arg(format!("{}{stream}", self.prefix))
            .query_async(&mut c)
            .await
            .expect("XLEN")
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        let Ok(client) = redis::Client::open(self.url.as_str()) else {
            return;
        };
        let Ok(mut conn) = client.get_connection() else {
            return;
        };
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}*", self.prefix))
            .query(&mut conn)
            .unwrap_or_default();
        if !keys.is_empty() {
            let _: Result<(), _> = redis::cmd("DEL").arg(keys).query(&mut conn);
        }
    }
}

/// Returns from the test when the fixture is unavailable outside CI.
#[macro_export]
macro_rules! require {
    ($fixture:expr) => {
        match $fixture.await {
            Some(f) => f,
            None => return,
        }
    };
}

/// A database for one test on either dialect: a fresh PostgreSQL database, or a SQLite file in
/// a temporary directory. Stores open their schema in it by URL.
pub struct TestDb {
    pub url: String,
    _pg: Option<TestDatabase>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    /// `None` when PostgreSQL is not reachable outside CI.
    pub async fn postgres() -> Option<Self> {
        let db = TestDatabase::create().await?;
        Some(Self {
            url: db.url.clone(),
            _pg: Some(db),
            _dir: None,
        })
    }

    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        Self {
            url: format!("sqlite://{}/store.db", dir.path().display()),
            _pg: None,
            _dir: Some(dir),
        }
    }

    pub fn is_postgres(&self) -> bool {
        self._pg.is_some()
    }

    /// A store of `schema` (its migrations `migrator`) and its outbox: what a conformance
    /// suite works on.
    pub async fn harness<S>(
        &self,
        schema: &str,
        migrator: &sqlx::migrate::Migrator,
        store: impl FnOnce(petition_storage::Db) -> S,
    ) -> StoreHarness<S> {
        let db = self.open(schema, migrator).await;
        StoreHarness {
            outbox: petition_events::Outbox::new(db.clone()),
            store: store(db.clone()),
            db,
        }
    }

    /// Opens `schema` in this database as a service does: the outbox tables and `migrator`'s
    /// migrations applied.
    pub async fn open(
        &self,
        schema: &str,
        migrator: &sqlx::migrate::Migrator,
    ) -> petition_storage::Db {
        let db = petition_storage::Db::connect(&self.url, schema, 8)
            .await
            .expect("connect to the test database");
        petition_events::outbox::migrate_service(&db, migrator)
            .await
            .expect("migrations");
        db
    }
}

/// A store under test, the outbox it writes to, and its database (for what a consumer's
/// transaction does).
pub struct StoreHarness<S> {
    pub store: S,
    pub outbox: petition_events::Outbox,
    pub db: petition_storage::Db,
}

/// One conformance suite, run against both dialects: for each test function `name(h)`, a test
/// `on_postgres::name` and a test `on_sqlite::name`, each with the harness `open(&TestDb)`
/// builds. Whatever one dialect does, the other must do too.
///
/// ```ignore
/// petition_testkit::dual_dialect!(open => registers_and_reads, lists_by_page);
/// ```
#[macro_export]
macro_rules! dual_dialect {
    ($open:ident => $($test:ident),+ $(,)?) => {
        mod on_postgres {
            $(
                #[tokio::test]
                async fn $test() {
                    let Some(db) = $crate::TestDb::postgres().await else { return };
                    let h = super::$open(&db).await;
                    super::$test(h).await;
                }
            )+
        }
        mod on_sqlite {
            $(
                #[tokio::test]
                async fn $test() {
                    let db = $crate::TestDb::sqlite();
                    let h = super::$open(&db).await;
                    super::$test(h).await;
                }
            )+
        }
    };
}
