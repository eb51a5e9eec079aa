//! A city and a district deployment as one case pipeline (DESIGN §5b): each a suite of its
//! own, with its own PostgreSQL database and Redis key space, on one machine. A group visit
//! registered at the city about a district matter travels down to the district, which handles
//! it; the district's steps come back up with the district's dates, and the city's 交办 report
//! clock is met. The district is killed mid-way and started again: the city shows retrying,
//! then done, and nothing is doubled on either side. A conflicting resend and a refusal end
//! in the list of exchanges a person works through.

use chrono::{DateTime, Duration, Utc};
use petition_auth::{Principal, Role, TokenKeys};
use petition_proto::v1 as pb;
use petition_testkit::grpc::{bearer, connect, load_request, timestamp, who};
use petition_testkit::{ServiceProcess, TestDatabase, TestRedis};
use std::net::SocketAddr;
use std::path::PathBuf;

type Intake = pb::intake_service_client::IntakeServiceClient<
    tonic::service::interceptor::InterceptedService<
        tonic::transport::Channel,
        petition_testkit::grpc::Bearer,
    >,
>;
type Routing = pb::routing_service_client::RoutingServiceClient<
    tonic::service::interceptor::InterceptedService<
        tonic::transport::Channel,
        petition_testkit::grpc::Bearer,
    >,
>;
type Supervision = pb::supervision_service_client::SupervisionServiceClient<
    tonic::service::interceptor::InterceptedService<
        tonic::transport::Channel,
        petition_testkit::grpc::Bearer,
    >,
>;

const BIN: &str = env!("CARGO_BIN_EXE_petition-suite");
const PATIENCE: std::time::Duration = std::time::Duration::from_secs(30);

fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// One deployment: a suite on its own database and Redis keys, on ports it keeps across a
/// restart so its peer finds it again.
struct Deployment {
    name: &'static str,
    grpc: SocketAddr,
    admin: SocketAddr,
    /// none: the embedded default (SQLite files and the in-process bus)
    db: Option<TestDatabase>,
    redis: Option<TestRedis>,
    dir: tempfile::TempDir,
    process: Option<ServiceProcess>,
}

impl Deployment {
    async fn new(name: &'static str, embedded: bool) -> Option<Self> {
        let (db, redis) = if embedded {
            (None, None)
        } else {
            (
                Some(TestDatabase::create().await?),
                Some(TestRedis::create().await?),
            )
        };
        Some(Self {
            name,
            grpc: free_addr(),
            admin: free_addr(),
            db,
            redis,
            dir: tempfile::tempdir().unwrap(),
            process: None,
        })
    }

    fn peers_file(&self, text: &str) {
        std::fs::write(self.dir.path().join("peers.toml"), text).unwrap();
    }

    fn address(&self) -> String {
        format!("http://{}", self.grpc)
    }

    /// Starts it, its simulated clock at `at`.
    fn start(&mut self, at: DateTime<Utc>) {
        let (grpc, admin) = (self.grpc.to_string(), self.admin.to_string());
        let data: PathBuf = self.dir.path().join("data");
        let peers = self.dir.path().join("peers.toml");
        let mut stores = Vec::new();
        if let (Some(db), Some(redis)) = (&self.db, &self.redis) {
            stores = vec![
                "--database-url",
                &db.url,
                "--redis-url",
                &redis.url,
                "--stream-prefix",
                &redis.prefix,
            ];
        }
        let (clock, data, peers) = (
            rfc3339(at),
            data.display().to_string(),
            peers.display().to_string(),
        );
        let mut args = vec![
            "--dev",
            "--dev-clock",
            &clock,
            "--log-format",
            "json",
            "--listen",
            &grpc,
            "--admin-listen",
            &admin,
            "--data-dir",
            &data,
            "--pg-max-connections",
            "4",
            "--peers",
            &peers,
            // a peer away for a moment is asked again within a second
            "--exchange-retry-max-secs",
            "1",
            // a step that came before the one it follows is taken up again within a second,
            // not thirty
            "--consumer-min-idle-secs",
            "1",
        ];
        args.extend(stores);
        self.process = Some(ServiceProcess::spawn(BIN, &args, &[]));
    }

    fn kill(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.kill();
        }
    }

    async fn intake(&self, p: &Principal) -> Intake {
        pb::intake_service_client::IntakeServiceClient::with_interceptor(
            connect(self.grpc).await,
            bearer(&TokenKeys::dev(), p),
        )
    }

    async fn routing(&self, p: &Principal) -> Routing {
        pb::routing_service_client::RoutingServiceClient::with_interceptor(
            connect(self.grpc).await,
            bearer(&TokenKeys::dev(), p),
        )
    }

    async fn supervision(&self, p: &Principal) -> Supervision {
        pb::supervision_service_client::SupervisionServiceClient::with_interceptor(
            connect(self.grpc).await,
            bearer(&TokenKeys::dev(), p),
        )
    }

    async fn set_clock(&self, at: DateTime<Utc>) {
        let (code, body) =
            petition_e2e::admin_post(self.admin, &format!("/clock/advance?to={}", rfc3339(at)))
                .await;
        assert_eq!(code, 200, "{}: the clock moves to {at}: {body}", self.name);
    }

    /// Reads with `read` until `done` holds of the answer (NOT_FOUND: not there yet), for
    /// PATIENCE; then fails naming `what` and the last answer.
    async fn until<T: std::fmt::Debug, F>(
        &self,
        what: &str,
        mut read: impl FnMut() -> F,
        done: impl Fn(&T) -> bool,
    ) -> T
    where
        F: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        let mut last = None;
        while tokio::time::Instant::now() < deadline {
            match read().await {
                Ok(r) if done(r.get_ref()) => return r.into_inner(),
                Ok(r) => last = Some(r.into_inner()),
                Err(s) if s.code() == tonic::Code::NotFound => {}
                Err(s) => panic!("{}: {s}", self.name),
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!(
            "{}: {what} never reached the state waited for; last seen: {last:#?}",
            self.name
        );
    }

    /// The case as its admin reads it, once `done` holds.
    async fn case_when(&self, number: &str, done: impl Fn(&pb::Case) -> bool) -> pb::Case {
        let c = self.intake(&who("shanxi.bureau", Role::Admin)).await;
        let read = || {
            let mut c = c.clone();
            let case_number = number.to_owned();
            async move {
                c.get_case(pb::GetCaseRequest {
                    case_number,
                    ..Default::default()
                })
                .await
            }
        };
        self.until(&format!("case {number}"), read, done).await
    }

    /// The assignment routing holds, once `done` holds.
    async fn assignment_when(
        &self,
        case_id: &str,
        done: impl Fn(&pb::Assignment) -> bool,
    ) -> pb::Assignment {
        let c = self.routing(&who("shanxi.bureau", Role::Admin)).await;
        let read = || {
            let mut c = c.clone();
            let case_id = case_id.to_owned();
            async move { c.get_assignment(pb::GetAssignmentRequest { case_id }).await }
        };
        self.until(&format!("the assignment of {case_id}"), read, done)
            .await
    }

    /// The case numbers of the exchanges in `status`, as the city bureau's supervisor lists them.
    async fn exchanges(&self, status: pb::ExchangeStatus) -> Vec<String> {
        self.intake(&who("datong.bureau", Role::Supervisor))
            .await
            .list_exchanges(pb::ListExchangesRequest {
                status: status as i32,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .exchanges
            .into_iter()
            .map(|e| e.case_number)
            .collect()
    }

    /// One value from intake's tables (`intake.` names them on PostgreSQL).
    async fn scalar<T>(&self, sql: &str) -> T
    where
        T: Send
            + Unpin
            + for<'r> sqlx::Decode<'r, sqlx::Postgres>
            + sqlx::Type<sqlx::Postgres>
            + for<'r> sqlx::Decode<'r, sqlx::Sqlite>
            + sqlx::Type<sqlx::Sqlite>,
    {
        use sqlx::Connection;
        match &self.db {
            Some(db) => {
                let mut c = sqlx::PgConnection::connect(&db.url).await.unwrap();
                sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
                    .fetch_one(&mut c)
                    .await
                    .expect("a value")
            }
            None => {
                let file = self.dir.path().join("data").join("intake.db");
                let mut c =
                    sqlx::SqliteConnection::connect(&format!("sqlite://{}", file.display()))
                        .await
                        .expect("intake's SQLite file");
                sqlx::query_scalar(sqlx::AssertSqlSafe(sql.replace("intake.", "")))
                    .fetch_one(&mut c)
                    .await
                    .expect("a value")
            }
        }
    }

    async fn text(&self, sql: &str) -> String {
        self.scalar(sql).await
    }

    async fn count(&self, sql: &str) -> i64 {
        self.scalar(sql).await
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        if let Some(p) = &mut self.process {
            if std::thread::panicking() {
                p.drain();
                let from = p.log.len().saturating_sub(120);
                eprintln!("--- {} log ---\n{}", self.name, p.log[from..].join("\n"));
            }
            p.kill();
        }
    }
}

/// The token the district issues the city: a peer deployment, registering under its name.
fn city_token() -> String {
    TokenKeys::dev().issue(
        &Principal {
            subject: "datong".into(),
            org: "datong.bureau".into(),
            role: Role::Upstream,
            scopes: Vec::new(),
        },
        Duration::hours(1),
    )
}

/// A city and a district that know each other; `also` adds to the city's peers file, given
/// the district's address.
async fn city_and_district(
    embedded: bool,
    now: DateTime<Utc>,
    also: impl Fn(&str) -> String,
) -> Option<(Deployment, Deployment)> {
    let mut district = Deployment::new("district", embedded).await?;
    let mut city = Deployment::new("city", embedded).await?;
    district.peers_file("name = \"pingcheng\"\nregions = [\"140213\"]\nupstreams = [\"datong\"]\n");
    city.peers_file(&format!(
        "name = \"datong\"\nregions = [\"140200\"]\n\n[[peer]]\nname = \"pingcheng\"\n\
         address = \"{}\"\nregions = [\"140213\"]\ntoken = \"{}\"\n{also}",
        district.address(),
        city_token(),
        also = also(&district.address()),
    ));
    district.start(now);
    city.start(now);
    Some((city, district))
}

/// A group visit (集体访) at the city bureau about a housing matter in Pingcheng: the city
/// assigns (交办) it to the district's housing bureau.
fn visit(n: u64, now: DateTime<Utc>, title: &str) -> pb::RegisterPetitionRequest {
    let mut r = load_request(n);
    r.channel = pb::Channel::Visit as i32;
    r.people_present = 6;
    r.people_affected = 40;
    r.representatives = 2;
    r.received_by = "datong.bureau".into();
    r.received_at = Some(timestamp(now - Duration::minutes(30)));
    r.category = "01.01".into();
    r.problem_location = "140213001".into();
    r.title = title.into();
    r
}

fn step_at(case: &pb::Case, kind: pb::StepKind) -> Vec<DateTime<Utc>> {
    case.timeline
        .iter()
        .filter(|s| s.kind == kind as i32)
        .map(|s| {
            let t = s.at.as_ref().unwrap();
            DateTime::from_timestamp(t.seconds, t.nanos as u32).unwrap()
        })
        .collect()
}

fn ts(t: &Option<prost_types::Timestamp>) -> DateTime<Utc> {
    let t = t.as_ref().expect("a time");
    DateTime::from_timestamp(t.seconds, t.nanos as u32).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_case_goes_down_and_its_steps_come_back_up_through_a_restart_on_postgres_and_redis() {
    down_and_up(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_case_goes_down_and_its_steps_come_back_up_through_a_restart_embedded() {
    down_and_up(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflict_and_a_refusal_wait_for_a_person_on_postgres_and_redis() {
    conflict_and_refusal(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflict_and_a_refusal_wait_for_a_person_embedded() {
    conflict_and_refusal(true).await;
}

async fn down_and_up(embedded: bool) {
    let t0 = Utc::now();
    let Some((city, mut district)) = city_and_district(embedded, t0, |_| String::new()).await
    else {
        return;
    };
    let clerk = who("datong.bureau", Role::Clerk);
    let handler = who("pingcheng.housing", Role::Handler);

    // Down: the city registers and routes it; the exchange registers it at the district.
    let a = city
        .intake(&clerk)
        .await
        .register_petition(visit(1, t0, "楼顶漏水多年未修"))
        .await
        .unwrap()
        .into_inner();
    assert!(
        a.flags.as_ref().unwrap().group,
        "six came: a group visit (集体访)"
    );
    let routed = city
        .assignment_when(&a.case_id, |r| !r.organ.is_empty())
        .await;
    assert_eq!(routed.organ, "pingcheng.housing");
    assert_eq!(
        routed.mode,
        pb::HandlingMode::Assign as i32,
        "a group visit is assigned (交办)"
    );
    let report_due = ts(&routed.report_due);
    let sent = city
        .case_when(&a.case_number, |c| {
            c.exchange
                .as_ref()
                .is_some_and(|e| e.status == pb::ExchangeStatus::Done as i32)
        })
        .await;
    let exchange = sent.exchange.unwrap();
    assert_eq!(exchange.peer, "pingcheng");
    assert_eq!(exchange.organ, "pingcheng.housing");

    // The district holds it under its own number, with the city's, the flag and the organ.
    let down = district
        .case_when(&exchange.peer_case_number, |_| true)
        .await;
    assert_eq!(down.source_system, "datong");
    assert_eq!(down.external_ref, a.case_number);
    assert_eq!(down.received_by, "pingcheng.bureau");
    assert_eq!(down.channel, pb::Channel::Upstream as i32);
    assert!(
        down.flags.as_ref().unwrap().group,
        "the district sees the group flag"
    );
    let up = down
        .upstream
        .clone()
        .expect("the city's routing travels with the case");
    assert_eq!(up.case_number, a.case_number);
    assert_eq!(up.organ, "pingcheng.housing");
    assert!(up.assigned);
    assert_eq!(
        ts(&up.report_due),
        report_due,
        "the city's report deadline, not one of the district's"
    );
    assert_eq!(
        down.petitioners.len(),
        1,
        "the district can reach the petitioner"
    );
    let there = district
        .assignment_when(&down.id, |r| r.organ == "pingcheng.housing")
        .await;
    assert_eq!(there.mode, pb::HandlingMode::Assign as i32);
    assert_eq!(ts(&there.report_due), report_due);

    // The district's handler accepts: the city sees it with the district's instant.
    let accepted = district
        .routing(&handler)
        .await
        .accept_case(pb::AcceptCaseRequest {
            case_id: down.id.clone(),
            request_id: "accept-a".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let accepted_at = ts(&accepted.accepted_at);
    let seen = city
        .case_when(&a.case_number, |c| {
            !step_at(c, pb::StepKind::Accepted).is_empty()
        })
        .await;
    assert_eq!(step_at(&seen, pb::StepKind::Accepted), vec![accepted_at]);
    assert_eq!(seen.holder, "pingcheng.housing");

    // The district extends the handling period (Art. 34): the city's clock runs as long.
    district
        .routing(&handler)
        .await
        .request_extension(pb::RequestExtensionRequest {
            case_id: down.id.clone(),
            days: 30,
            reason: "需要现场勘查".into(),
            request_id: "ext-a".into(),
        })
        .await
        .unwrap();
    let mut district_sup = district
        .supervision(&who("pingcheng.bureau", Role::Supervisor))
        .await;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let decided = loop {
        // supervision hears of the request a moment after routing took it
        match district_sup
            .decide_extension(pb::DecideExtensionRequest {
                case_id: down.id.clone(),
                approve: true,
                reason: "勘查需四周".into(),
                request_id: "ext-a-ok".into(),
            })
            .await
        {
            Ok(t) => break t.into_inner(),
            Err(s) if tokio::time::Instant::now() < deadline => {
                assert_eq!(s.code(), tonic::Code::FailedPrecondition, "{s:?}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Err(s) => panic!("{s:?}"),
        }
    };
    let handling = |t: &pb::Timeline| {
        t.clocks
            .iter()
            .find(|c| c.kind == pb::ClockKind::Handling as i32)
            .map(|c| c.last_day.clone())
    };
    let extended = handling(&decided).expect("the district's handling clock");
    let mut city_sup = city.supervision(&who("shanxi.bureau", Role::Admin)).await;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let t = city_sup
            .get_timeline(pb::GetTimelineRequest {
                case_id: a.case_id.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        if handling(&t).as_deref() == Some(extended.as_str()) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the city's handling clock never moved to {extended}: {:?}",
            handling(&t)
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    // The district goes away mid-way. A second case waits, retrying, and goes once it is back.
    district.kill();
    let b = city
        .intake(&clerk)
        .await
        .register_petition(visit(2, t0, "小区电梯停运"))
        .await
        .unwrap()
        .into_inner();
    let waiting = city
        .case_when(&b.case_number, |c| {
            c.exchange
                .as_ref()
                .is_some_and(|e| e.status == pb::ExchangeStatus::Retrying as i32 && e.attempts >= 2)
        })
        .await
        .exchange
        .unwrap();
    assert!(
        waiting.reason.contains("pingcheng did not answer"),
        "{}",
        waiting.reason
    );
    assert_eq!(
        city.exchanges(pb::ExchangeStatus::Retrying).await,
        std::slice::from_ref(&b.case_number)
    );
    district.start(Utc::now());
    let b_sent = city
        .case_when(&b.case_number, |c| {
            c.exchange
                .as_ref()
                .is_some_and(|e| e.status == pb::ExchangeStatus::Done as i32)
        })
        .await
        .exchange
        .unwrap();

    // Days later the district answers and reports; the city's clock is later still.
    let later = Utc::now() + Duration::days(3);
    city.set_clock(later + Duration::days(1)).await;
    district.set_clock(later).await;
    let mut work = district.routing(&handler).await;
    let answered = work
        .submit_reply(pb::SubmitReplyRequest {
            case_id: down.id.clone(),
            outcome: pb::ReplyOutcome::Supported as i32,
            text: "已责成物业维修屋面".into(),
            legal_basis: "《物业管理条例》".into(),
            service: Some(pb::ServiceRecord {
                mode: pb::ServiceMode::InPerson as i32,
                served_at: Some(timestamp(later)),
                signed: true,
                refused: false,
                view: pb::PetitionerView::Agrees as i32,
            }),
            request_id: "reply-a".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let reported = work
        .submit_completion_report(pb::SubmitCompletionReportRequest {
            case_id: down.id.clone(),
            text: "屋面已修复，信访人满意".into(),
            request_id: "report-a".into(),
        })
        .await
        .unwrap()
        .into_inner();
    // The petitioner rates the handling at the district, with the district's query code: the
    // city's rating window closes as rated, not lapsed.
    let code = district
        .text(&format!(
            "SELECT query_code FROM intake.cases WHERE id = '{}'",
            down.id
        ))
        .await;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        // the district's supervision opens the window once it has heard of the reply
        match district
            .supervision(&who("pingcheng.bureau", Role::Clerk))
            .await
            .rate_case(pb::RateCaseRequest {
                case_number: down.case_number.clone(),
                query_code: code.clone(),
                bureau: pb::Satisfaction::Satisfied as i32,
                organ: pb::Satisfaction::Satisfied as i32,
                reason: String::new(),
                request_id: "rate-a".into(),
            })
            .await
        {
            Ok(_) => break,
            Err(s) if tokio::time::Instant::now() < deadline => {
                assert_eq!(s.code(), tonic::Code::FailedPrecondition, "{s:?}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Err(s) => panic!("{s:?}"),
        }
    }
    let b_down = district.case_when(&b_sent.peer_case_number, |_| true).await;
    work.accept_case(pb::AcceptCaseRequest {
        case_id: b_down.id.clone(),
        request_id: "accept-b".into(),
    })
    .await
    .unwrap();

    // The city sees each step with the district's dates, and its report clock is met.
    let done = city
        .case_when(&a.case_number, |c| {
            !step_at(c, pb::StepKind::CompletionReported).is_empty()
        })
        .await;
    assert_eq!(
        step_at(&done, pb::StepKind::Answered),
        vec![ts(&answered.replied_at)]
    );
    assert_eq!(
        step_at(&done, pb::StepKind::CompletionReported),
        vec![ts(&reported.completion_reported_at)]
    );
    assert!(
        step_at(&done, pb::StepKind::Routed).len() >= 2,
        "the city's routing and the district's: {:?}",
        done.timeline
    );
    let copy = city
        .assignment_when(&a.case_id, |r| {
            r.state == pb::AssignmentState::Completed as i32
        })
        .await;
    assert_eq!(ts(&copy.accepted_at), accepted_at);
    assert!(ts(&copy.completion_reported_at) <= report_due);
    let mut sup = city.supervision(&who("shanxi.bureau", Role::Admin)).await;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let report = loop {
        let t = sup
            .get_timeline(pb::GetTimelineRequest {
                case_id: a.case_id.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        let clock = t
            .clocks
            .iter()
            .find(|c| c.kind == pb::ClockKind::Report as i32)
            .cloned();
        if clock
            .as_ref()
            .is_some_and(|c| c.state == pb::ClockState::Met as i32)
            || tokio::time::Instant::now() > deadline
        {
            break clock;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let report = report.expect("the city holds the 交办 report clock");
    assert_eq!(report.state, pb::ClockState::Met as i32, "{report:?}");
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let t = sup
            .get_timeline(pb::GetTimelineRequest {
                case_id: a.case_id.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        if t.rating == pb::RatingState::Rated as i32 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the city never saw the rating: {:?}",
            t.rating
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    city.case_when(&b.case_number, |c| {
        !step_at(c, pb::StepKind::Accepted).is_empty()
    })
    .await;

    // Nothing doubled: one district case per city case, each step once, and the city's cursor
    // where the district's feed ends.
    assert_eq!(
        district
            .count("SELECT COUNT(*) FROM intake.cases WHERE source_system = 'datong'")
            .await,
        2
    );
    for kind in ["accepted", "answered", "completion_reported"] {
        assert_eq!(
            city.count(&format!(
                "SELECT COUNT(*) FROM intake.case_steps WHERE case_id = '{}' AND kind = '{kind}'",
                a.case_id
            ))
            .await,
            1,
            "{kind}"
        );
    }
    let fed = district
        .count("SELECT last_seq FROM intake.peer_feed_counters WHERE peer = 'datong'")
        .await;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while city
        .count("SELECT seq FROM intake.peer_cursors WHERE peer = 'pingcheng'")
        .await
        != fed
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the city never read the whole feed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        city.count("SELECT COUNT(*) FROM intake.exchanges WHERE status = 'done'")
            .await,
        2
    );
}

async fn conflict_and_refusal(embedded: bool) {
    let t0 = Utc::now();
    // A misconfigured peer: Yungang's region pointed at Pingcheng's deployment.
    let Some((city, district)) = city_and_district(embedded, t0, |address| {
        format!(
            "\n[[peer]]\nname = \"yungang\"\naddress = \"{address}\"\nregions = [\"140214\"]\ntoken = \"{}\"\n",
            city_token()
        )
    })
    .await
    else {
        return;
    };
    let clerk = who("datong.bureau", Role::Clerk);
    let mut intake = city.intake(&clerk).await;

    // A first case travels as it should; its number tells the next one's.
    let first = intake
        .register_petition(visit(1, t0, "屋顶漏水"))
        .await
        .unwrap()
        .into_inner();
    city.case_when(&first.case_number, |c| {
        c.exchange
            .as_ref()
            .is_some_and(|e| e.status == pb::ExchangeStatus::Done as i32)
    })
    .await;
    let (prefix, seq) = first.case_number.rsplit_once('-').unwrap();
    let next = format!(
        "{prefix}-{:0width$}",
        seq.parse::<u64>().unwrap() + 1,
        width = seq.len()
    );

    // Another system under the city's name already used that number at the district.
    let mut planted = visit(9, t0, "另一件无关的信访");
    planted.channel = pb::Channel::Upstream as i32;
    planted.received_by = "pingcheng.bureau".into();
    planted.source_system = "datong".into();
    planted.external_ref = next.clone();
    planted.upstream = Some(pb::Upstream {
        case_number: next.clone(),
        organ: "pingcheng.housing".into(),
        leapfrog: true,
        ..Default::default()
    });
    let as_city = Principal {
        subject: "datong".into(),
        org: "datong.bureau".into(),
        role: Role::Upstream,
        scopes: Vec::new(),
    };
    let held = district
        .intake(&as_city)
        .await
        .register_petition(planted)
        .await
        .unwrap()
        .into_inner();
    // A platform that is not a peer deployment (a 12345 hotline, role upstream too) neither
    // sends a case down nor watches the feed.
    let hotline = Principal {
        subject: "datong.12345".into(),
        org: "datong.bureau".into(),
        role: Role::Upstream,
        scopes: Vec::new(),
    };
    let mut from_hotline = visit(10, t0, "热线转来");
    from_hotline.source_system = "datong.12345".into();
    from_hotline.external_ref = "12345-77".into();
    from_hotline.upstream = Some(pb::Upstream {
        case_number: "12345-77".into(),
        organ: "pingcheng.housing".into(),
        ..Default::default()
    });
    let mut hotline_intake = district.intake(&hotline).await;
    let refused = hotline_intake
        .register_petition(from_hotline)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused:?}");
    assert!(refused.message().contains("upstreams"), "{refused:?}");
    let Err(watch) = hotline_intake
        .watch_cases(pb::WatchCasesRequest { since: 0 })
        .await
    else {
        panic!("the hotline watches nothing");
    };
    assert_eq!(watch.code(), tonic::Code::PermissionDenied);
    // A petitioner who went past the district to the city (越级) is flagged so there too.
    let planted_there = district.case_when(&held.case_number, |_| true).await;
    assert!(planted_there.flags.as_ref().unwrap().leapfrog);
    assert_eq!(planted_there.upstream.unwrap().case_number, next);

    let second = intake
        .register_petition(visit(2, t0, "小区电梯停运"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.case_number, next);
    let conflict = city
        .case_when(&second.case_number, |c| {
            c.exchange
                .as_ref()
                .is_some_and(|e| e.status == pb::ExchangeStatus::Conflict as i32)
        })
        .await
        .exchange
        .unwrap();
    assert!(
        conflict.reason.contains("different content"),
        "{}",
        conflict.reason
    );
    let ours = conflict.ours.expect("what we sent");
    let theirs = conflict.theirs.expect("what the district holds");
    assert_eq!(ours.title, "小区电梯停运");
    assert_eq!(theirs.title, "另一件无关的信访");
    assert_eq!(theirs.case_number, held.case_number);

    // The district works the other petition: its steps are not our case's.
    district
        .routing(&who("pingcheng.housing", Role::Handler))
        .await
        .accept_case(pb::AcceptCaseRequest {
            case_id: planted_there.id.clone(),
            request_id: "accept-planted".into(),
        })
        .await
        .unwrap();
    let fed = loop {
        let fed = district
            .count("SELECT last_seq FROM intake.peer_feed_counters WHERE peer = 'datong'")
            .await;
        let steps = district
            .count(&format!(
                "SELECT COUNT(*) FROM intake.peer_feed WHERE case_id = '{}' AND event_id IN \
                 (SELECT event_id FROM intake.case_steps WHERE kind = 'accepted')",
                planted_there.id
            ))
            .await;
        if steps == 1 {
            break fed;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while city
        .count("SELECT seq FROM intake.peer_cursors WHERE peer = 'pingcheng'")
        .await
        < fed
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the city never read the feed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let still = city.case_when(&second.case_number, |_| true).await;
    assert_eq!(
        still.exchange.as_ref().unwrap().status,
        pb::ExchangeStatus::Conflict as i32,
        "a foreign petition's steps do not settle our conflict"
    );
    assert!(step_at(&still, pb::StepKind::Accepted).is_empty());
    let copy = city.assignment_when(&second.case_id, |_| true).await;
    assert_eq!(copy.state, pb::AssignmentState::AwaitingAcceptance as i32);

    // Yungang's matter goes to the deployment wrongly named for it, which refuses it for good.
    let mut elsewhere = visit(3, t0, "云冈区住房问题");
    elsewhere.problem_location = "140214".into();
    let third = intake
        .register_petition(elsewhere)
        .await
        .unwrap()
        .into_inner();
    let routed = city
        .assignment_when(&third.case_id, |r| !r.organ.is_empty())
        .await;
    assert_eq!(routed.organ, "yungang.housing");
    let failed = city
        .case_when(&third.case_number, |c| {
            c.exchange
                .as_ref()
                .is_some_and(|e| e.status == pb::ExchangeStatus::Failed as i32)
        })
        .await
        .exchange
        .unwrap();
    assert_eq!(failed.peer, "yungang");
    assert!(
        failed.reason.contains("FailedPrecondition")
            && failed.reason.contains("yungang.housing")
            && failed
                .reason
                .contains("is not served by this deployment (pingcheng)"),
        "the district's reason: {}",
        failed.reason
    );
    assert_eq!(failed.attempts, 1, "a refusal is not sent again by itself");
    let supervisor = who("datong.bureau", Role::Supervisor);
    let mut manage = city.intake(&supervisor).await;
    assert_eq!(
        city.exchanges(pb::ExchangeStatus::Conflict).await,
        std::slice::from_ref(&second.case_number)
    );
    assert_eq!(
        city.exchanges(pb::ExchangeStatus::Failed).await,
        std::slice::from_ref(&third.case_number)
    );

    // A retry of a conflict sends the same again and meets the same conflict.
    let again = manage
        .retry_exchange(pb::RetryExchangeRequest {
            case_number: second.case_number.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.status, pb::ExchangeStatus::Retrying as i32);
    city.case_when(&second.case_number, |c| {
        c.exchange
            .as_ref()
            .is_some_and(|e| e.status == pb::ExchangeStatus::Conflict as i32 && e.attempts == 2)
    })
    .await;
    // A done exchange is not sent again.
    let done = manage
        .retry_exchange(pb::RetryExchangeRequest {
            case_number: first.case_number.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(done.code(), tonic::Code::FailedPrecondition, "{done:?}");
    // Only the routing bureau's supervisors, leaders and admins manage exchanges.
    let refused = city
        .intake(&who("datong.housing", Role::Handler))
        .await
        .list_exchanges(pb::ListExchangesRequest::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);
    let elsewhere = city
        .intake(&who("yungang.bureau", Role::Supervisor))
        .await
        .retry_exchange(pb::RetryExchangeRequest {
            case_number: second.case_number.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        elsewhere.code(),
        tonic::Code::NotFound,
        "out of reach: {elsewhere:?}"
    );
}
