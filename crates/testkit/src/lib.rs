//! Real PostgreSQL and Redis for tests: each test gets its own database and its own Redis key
//! prefix, and both are removed when the fixture is dropped, so tests run in parallel and twice
//! in a row.
//!
//! Where the services are: `PETITION_TEST_DATABASE_URL` (an admin URL, default
//! `postgres://postgres@127.0.0.1:5432/postgres`) and `PETITION_TEST_REDIS_URL` (default
//! `redis://127.0.0.1:6379`). When one does not answer, a test skips with a message — unless
//! `CI=true`, where a missing service is a failure.

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
