//! The suite binary as the end-to-end tests run it: a `petition-suite` process of its own per
//! test, on the embedded default (SQLite files in a temp dir, the in-process bus) or on the
//! test's PostgreSQL database and Redis keys, on simulated time the test moves through the
//! admin port, with the public development keys. What a test sees is what an operator's
//! process does: its flags, its ports, its clean exit on SIGTERM.

// Each test file is its own crate and uses part of this.
#![allow(dead_code)]

use petition_auth::{Principal, Role, TokenKeys};
use petition_e2e::{
    AnalyticsClient, AuditClient, IntakeClient, RoutingClient, SupervisionClient, bearer, client,
    connect, who,
};
use petition_proto::v1 as pb;
use petition_testkit::process::ServiceProcess;
use std::net::SocketAddr;
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_petition-suite");

/// How long a test waits for the pipeline to reach a state it expects.
const PATIENCE: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(25);

pub struct Suite {
    process: ServiceProcess,
    pub grpc_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub token_keys: TokenKeys,
    /// its command line, to start it again on the same data
    args: Vec<String>,
    _db: Option<petition_testkit::TestDatabase>,
    _redis: Option<petition_testkit::TestRedis>,
    _dir: tempfile::TempDir,
}

fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// The flags that start the clock at `now` and read the reference data from `config_dir`.
fn clock_at(
    now: chrono::DateTime<chrono::Utc>,
    config_dir: Option<&std::path::Path>,
) -> Vec<String> {
    let mut args = vec!["--dev-clock".to_owned(), rfc3339(now)];
    if let Some(c) = config_dir {
        args.extend(["--config-dir".to_owned(), c.display().to_string()]);
    }
    args
}

impl Suite {
    /// `petition-suite --dev` with `args`, its SQLite files (if any) in a temp dir.
    fn spawn(
        args: &[String],
        db: Option<petition_testkit::TestDatabase>,
        redis: Option<petition_testkit::TestRedis>,
        production: Option<(&[(&str, &str)], TokenKeys)>,
    ) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut all = vec![
            "--data-dir".to_owned(),
            dir.path().join("data").display().to_string(),
            // many suites run at once against one PostgreSQL
            "--pg-max-connections".to_owned(),
            "4".to_owned(),
            // the tests read the open-clock gauges soon after a change
            "--gauge-interval-secs".to_owned(),
            "1".to_owned(),
        ];
        if let (Some(db), Some(redis)) = (&db, &redis) {
            all.extend(
                [
                    "--database-url",
                    db.url.as_str(),
                    "--redis-url",
                    redis.url.as_str(),
                    "--stream-prefix",
                    redis.prefix.as_str(),
                ]
                .map(str::to_owned),
            );
        }
        // a console only where a test asks for one: many suites run at once
        if !args.iter().any(|a| a == "--console-listen") {
            all.extend(["--console-listen".to_owned(), "off".to_owned()]);
        }
        all.extend_from_slice(args);
        let (process, token_keys) = match production {
            None => (Self::process(&all, true, &[]), TokenKeys::dev()),
            Some((env, keys)) => (Self::process(&all, false, env), keys),
        };
        Self {
            grpc_addr: process.grpc_addr,
            admin_addr: process.admin_addr.expect("the suite's admin port"),
            token_keys,
            args: all,
            process,
            _db: db,
            _redis: redis,
            _dir: dir,
        }
    }

    fn process(args: &[String], dev: bool, env: &[(&str, &str)]) -> ServiceProcess {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        if dev {
            ServiceProcess::spawn_dev(BIN, &args, env)
        } else {
            let mut all = vec![
                "--listen",
                "127.0.0.1:0",
                "--admin-listen",
                "127.0.0.1:0",
                "--log-format",
                "json",
            ];
            all.extend(args);
            ServiceProcess::spawn(BIN, &all, env)
        }
    }

    /// The embedded default as production runs it: no `--dev` (so the real clock and no
    /// built-in keys), its keys in `env`; `token_keys` are what the test signs with.
    pub fn production_embedded(env: &[(&str, &str)], token_keys: TokenKeys) -> Self {
        Self::spawn(&[], None, None, Some((env, token_keys)))
    }

    /// On PostgreSQL + Redis as production runs it (see [`Self::production_embedded`]).
    pub async fn production_postgres_and_redis(
        env: &[(&str, &str)],
        token_keys: TokenKeys,
    ) -> Option<Self> {
        let db = petition_testkit::TestDatabase::create().await?;
        let redis = petition_testkit::TestRedis::create().await?;
        Some(Self::spawn(
            &[],
            Some(db),
            Some(redis),
            Some((env, token_keys)),
        ))
    }

    /// Stops a production run (SIGTERM, exit 0) and starts it again on the same data with
    /// `env`; `token_keys` are what the test signs with from then on.
    pub fn restart_production(&mut self, env: &[(&str, &str)], token_keys: TokenKeys) {
        self.process.terminate();
        self.process.expect_clean_exit();
        self.process = Self::process(&self.args, false, env);
        self.grpc_addr = self.process.grpc_addr;
        self.admin_addr = self.process.admin_addr.expect("the suite's admin port");
        self.token_keys = token_keys;
    }

    /// The embedded default, its clock at `now`.
    pub async fn embedded(now: chrono::DateTime<chrono::Utc>) -> Self {
        Self::embedded_with(now, None).await
    }

    /// The embedded default, reading its reference data from `config_dir`.
    pub async fn embedded_with(
        now: chrono::DateTime<chrono::Utc>,
        config_dir: Option<std::path::PathBuf>,
    ) -> Self {
        Self::embedded_args(&clock_at(now, config_dir.as_deref()))
    }

    /// The embedded default, with `args` added to the command line.
    pub fn embedded_args(args: &[String]) -> Self {
        Self::spawn(args, None, None, None)
    }

    /// On PostgreSQL + Redis; `None` when either is not reachable outside CI.
    pub async fn postgres_and_redis(now: chrono::DateTime<chrono::Utc>) -> Option<Self> {
        Self::postgres_and_redis_with(now, None).await
    }

    /// On PostgreSQL + Redis, reading its reference data from `config_dir`.
    pub async fn postgres_and_redis_with(
        now: chrono::DateTime<chrono::Utc>,
        config_dir: Option<std::path::PathBuf>,
    ) -> Option<Self> {
        Self::postgres_and_redis_args(&clock_at(now, config_dir.as_deref())).await
    }

    /// On PostgreSQL + Redis, with `args` added to the command line.
    pub async fn postgres_and_redis_args(args: &[String]) -> Option<Self> {
        let db = petition_testkit::TestDatabase::create().await?;
        let redis = petition_testkit::TestRedis::create().await?;
        Some(Self::spawn(args, Some(db), Some(redis), None))
    }

    /// The test's Redis key space, when the suite runs on one.
    pub fn redis(&self) -> Option<&petition_testkit::TestRedis> {
        self._redis.as_ref()
    }

    /// The test's PostgreSQL database, when the suite runs on one.
    pub fn database_url(&self) -> Option<&str> {
        self._db.as_ref().map(|d| d.url.as_str())
    }

    /// Reads the suite's log until a line satisfies `pred`, or `timeout` passes.
    pub fn log_line(&mut self, pred: impl Fn(&str) -> bool, timeout: Duration) -> Option<String> {
        self.process.wait_for_line(pred, timeout)
    }

    /// Moves the suite's simulated clock forward to `at`, through its admin port, as
    /// `petition clock advance --to` does.
    pub async fn set_clock(&self, at: chrono::DateTime<chrono::Utc>) {
        let (code, body) = petition_e2e::admin_post(
            self.admin_addr,
            &format!("/clock/advance?to={}", rfc3339(at)),
        )
        .await;
        assert_eq!(code, 200, "the clock moves to {at}: {body}");
    }

    /// Waits until supervision's engine has fired every clock due by `at` (its
    /// `supervision_engine_scanned_until_seconds` gauge): what has not fired then is not due.
    pub async fn scanned(&self, at: chrono::DateTime<chrono::Utc>) {
        let admin = self.admin_addr;
        self.until::<_, String, _>(&format!("supervision scans up to {at}"), || async move {
            let (_, metrics) = petition_e2e::admin_get(admin, "/metrics").await;
            let scanned = metrics
                .lines()
                .find_map(|l| l.strip_prefix("supervision_engine_scanned_until_seconds "))
                .and_then(|v| v.trim().parse::<f64>().ok());
            match scanned {
                Some(t) if t >= at.timestamp() as f64 => Ok(()),
                other => Err(Some(format!("{other:?}"))),
            }
        })
        .await
    }

    pub async fn intake(&self, p: &Principal) -> IntakeClient {
        client(connect(self.grpc_addr).await, &self.token_keys, p)
    }

    pub async fn supervision(&self, p: &Principal) -> SupervisionClient {
        pb::supervision_service_client::SupervisionServiceClient::with_interceptor(
            connect(self.grpc_addr).await,
            bearer(&self.token_keys, p),
        )
    }

    pub async fn analytics(&self, p: &Principal) -> AnalyticsClient {
        pb::analytics_service_client::AnalyticsServiceClient::with_interceptor(
            connect(self.grpc_addr).await,
            bearer(&self.token_keys, p),
        )
    }

    /// The analytics export of `period` as `p` may read it, as text.
    pub async fn export(&self, p: &Principal, period: &str) -> Result<String, tonic::Status> {
        let mut stream = self
            .analytics(p)
            .await
            .export_cases(pb::ExportCasesRequest {
                period: period.into(),
                ..Default::default()
            })
            .await?
            .into_inner();
        let mut csv = Vec::new();
        while let Some(chunk) = stream.message().await? {
            csv.extend(chunk.data);
        }
        Ok(String::from_utf8(csv).expect("the export is UTF-8"))
    }

    /// What intake answers `p` for `case_id`, beside what it answers for a case that does not
    /// exist: (code and message for the case, code and message for a missing one).
    pub async fn get_case_beside_missing(
        &self,
        p: &Principal,
        case_id: &str,
    ) -> ((tonic::Code, String), (tonic::Code, String)) {
        let mut intake = self.intake(p).await;
        let mut answers = Vec::new();
        for id in [case_id.to_owned(), uuid::Uuid::now_v7().to_string()] {
            let req = pb::GetCaseRequest {
                case_id: id,
                case_number: String::new(),
            };
            answers.push(match intake.get_case(req).await {
                Ok(_) => (tonic::Code::Ok, String::new()),
                Err(e) => (e.code(), e.message().to_owned()),
            });
        }
        let missing = answers.pop().expect("two answers");
        let case = answers.pop().expect("two answers");
        (case, missing)
    }

    pub async fn audit(&self, p: &Principal) -> AuditClient {
        pb::audit_service_client::AuditServiceClient::with_interceptor(
            connect(self.grpc_addr).await,
            bearer(&self.token_keys, p),
        )
    }

    pub async fn routing(&self, p: &Principal) -> RoutingClient {
        pb::routing_service_client::RoutingServiceClient::with_interceptor(
            connect(self.grpc_addr).await,
            bearer(&self.token_keys, p),
        )
    }

    /// Asks `read` until it returns something, for [`PATIENCE`]; then fails with `what` and
    /// the last thing read.
    async fn until<T, L: std::fmt::Debug, F>(&self, what: &str, mut read: impl FnMut() -> F) -> T
    where
        F: std::future::Future<Output = Result<T, Option<L>>>,
    {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        let mut last = None;
        while tokio::time::Instant::now() < deadline {
            match read().await {
                Ok(t) => return t,
                Err(l) => last = l.or(last),
            }
            tokio::time::sleep(POLL).await;
        }
        panic!("{what} within {PATIENCE:?}; last seen: {last:?}");
    }

    /// The case's assignment once routing has routed it.
    pub async fn routed(&self, case_id: &str) -> pb::Assignment {
        let c = self.routing(&who("shanxi.bureau", Role::Admin)).await;
        self.until::<_, (), _>(&format!("case {case_id} is routed"), || {
            let mut c = c.clone();
            async move {
                match c
                    .get_assignment(pb::GetAssignmentRequest {
                        case_id: case_id.into(),
                    })
                    .await
                {
                    Ok(a) => Ok(a.into_inner()),
                    Err(e) if e.code() == tonic::Code::NotFound => Err(None),
                    Err(e) => panic!("{e}"),
                }
            }
        })
        .await
    }

    /// The case's supervision timeline, as an admin reads it, once `done` holds.
    pub async fn timeline_when(
        &self,
        case_id: &str,
        done: impl Fn(&pb::Timeline) -> bool,
    ) -> pb::Timeline {
        let c = self.supervision(&who("shanxi.bureau", Role::Admin)).await;
        let done = &done;
        self.until(
            &format!("the timeline of {case_id} reaches the state waited for"),
            || {
                let mut c = c.clone();
                async move {
                    match c
                        .get_timeline(pb::GetTimelineRequest {
                            case_id: case_id.into(),
                        })
                        .await
                    {
                        Ok(t) if done(t.get_ref()) => Ok(t.into_inner()),
                        Ok(t) => Err(Some(t.into_inner())),
                        Err(e) if e.code() == tonic::Code::NotFound => Err(None),
                        Err(e) => panic!("{e}"),
                    }
                }
            },
        )
        .await
    }

    /// The case as intake shows it to an admin, once `done` holds.
    pub async fn case_when(&self, case_id: &str, done: impl Fn(&pb::Case) -> bool) -> pb::Case {
        let c = self.intake(&who("shanxi.bureau", Role::Admin)).await;
        let done = &done;
        self.until(
            &format!("case {case_id} reaches the state waited for"),
            || {
                let mut c = c.clone();
                async move {
                    let case = c
                        .get_case(pb::GetCaseRequest {
                            case_id: case_id.into(),
                            case_number: String::new(),
                        })
                        .await
                        .expect("get_case")
                        .into_inner();
                    if done(&case) {
                        Ok(case)
                    } else {
                        Err(Some(case))
                    }
                }
            },
        )
        .await
    }

    /// SIGTERM, and the process must say it is shutting down and exit 0.
    pub async fn stop(mut self) {
        self.process.terminate();
        self.process.expect_clean_exit();
    }
}

impl Drop for Suite {
    /// A failing test shows what the suite logged.
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.process.drain();
            let log = &self.process.log;
            let from = log.len().saturating_sub(200);
            eprintln!(
                "--- the suite's last log lines ---\n{}",
                log[from..].join("\n")
            );
        }
    }
}
