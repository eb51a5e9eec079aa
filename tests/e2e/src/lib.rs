//! Shared pieces of the end-to-end tests and load tools: the sample petitions of
//! `sample-petitions.jsonl` as gRPC requests, authenticated clients, and a running intake on
//! either PostgreSQL + Redis or the embedded default.

use petition_auth::{Principal, Role, TokenKeys};
use petition_proto::v1 as pb;
use serde::Deserialize;
use tonic::transport::Channel;

pub use petition_testkit::grpc::{
    Bearer, IntakeClient, RoutingClient, bearer, connect, load_request, synthetic_resident_id,
    timestamp, who,
};

pub const SAMPLES: &str = include_str!("../sample-petitions.jsonl");

/// A sample petition: the export shape every tool reads, with its number and what the
/// routing decision should be.
#[derive(Debug, Clone, Deserialize)]
pub struct Sample {
    pub sample: u32,
    pub expect: String,
    #[serde(flatten)]
    pub petition: petition_cli::record::Record,
}

pub fn samples() -> Vec<Sample> {
    SAMPLES
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("sample line"))
        .collect()
}

impl Sample {
    pub fn request(&self) -> pb::RegisterPetitionRequest {
        self.petition.request()
    }

    /// Who registers it: the upstream system for upstream samples, else a clerk of the
    /// receiving organ.
    pub fn principal(&self) -> Principal {
        let p = &self.petition;
        if p.source_system.is_empty() {
            Principal {
                subject: format!("clerk@{}", p.received_by),
                org: p.received_by.clone(),
                role: Role::Clerk,
                scopes: vec![],
            }
        } else {
            Principal {
                subject: p.source_system.clone(),
                org: p.received_by.clone(),
                role: Role::Upstream,
                scopes: vec![],
            }
        }
    }
}

pub type SupervisionClient = pb::supervision_service_client::SupervisionServiceClient<
    tonic::service::interceptor::InterceptedService<Channel, Bearer>,
>;

pub type AnalyticsClient = pb::analytics_service_client::AnalyticsServiceClient<
    tonic::service::interceptor::InterceptedService<Channel, Bearer>,
>;

pub fn client(channel: Channel, keys: &TokenKeys, p: &Principal) -> IntakeClient {
    pb::intake_service_client::IntakeServiceClient::with_interceptor(channel, bearer(keys, p))
}

pub fn clerk(org: &str) -> Principal {
    Principal {
        subject: format!("clerk@{org}"),
        org: org.to_owned(),
        role: Role::Clerk,
        scopes: vec![],
    }
}

/// Intake and routing in one host and on one port, as the suite runs them: on the embedded
/// default (SQLite, in-process bus) or on PostgreSQL + Redis, with a clock the test moves.
pub struct Suite {
    pub running: petition_host::Running,
    pub clock: std::sync::Arc<petition_domain::FixedClock>,
    _db: Option<petition_testkit::TestDatabase>,
    _redis: Option<petition_testkit::TestRedis>,
    _dir: Option<tempfile::TempDir>,
}

impl Suite {
    fn config() -> petition_host::HostConfig {
        let mut cfg = petition_host::HostConfig::new("suite");
        cfg.listen = "127.0.0.1:0".parse().expect("address");
        cfg.admin_listen = Some("127.0.0.1:0".parse().expect("address"));
        cfg.dev = true;
        cfg.pg_max_connections = 4;
        cfg
    }

    async fn start(
        cfg: petition_host::HostConfig,
        now: chrono::DateTime<chrono::Utc>,
    ) -> (
        petition_host::Running,
        std::sync::Arc<petition_domain::FixedClock>,
    ) {
        petition_telemetry::init_for_tests();
        let clock = std::sync::Arc::new(petition_domain::FixedClock::new(now));
        let running = petition_host::start(
            cfg,
            None,
            Some(clock.clone()),
            &[
                &petition_analytics::Analytics::default(),
                &petition_supervision::Supervision {
                    // the test moves the clock: look again soon after
                    max_sleep: std::time::Duration::from_millis(50),
                    gauge_every: std::time::Duration::from_millis(50),
                    ..Default::default()
                },
                &petition_routing::Routing::default(),
                &petition_intake::Intake::default(),
            ],
        )
        .await
        .expect("the suite starts");
        (running, clock)
    }

    pub async fn embedded(now: chrono::DateTime<chrono::Utc>) -> Self {
        Self::embedded_with(now, None).await
    }

    /// The embedded default, reading its reference data from `config_dir`.
    pub async fn embedded_with(
        now: chrono::DateTime<chrono::Utc>,
        config_dir: Option<std::path::PathBuf>,
    ) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut cfg = Self::config();
        cfg.data_dir = dir.path().to_owned();
        cfg.config_dir = config_dir;
        let (running, clock) = Self::start(cfg, now).await;
        Self {
            running,
            clock,
            _db: None,
            _redis: None,
            _dir: Some(dir),
        }
    }

    /// `None` when PostgreSQL or Redis is not reachable outside CI.
    pub async fn postgres_and_redis(now: chrono::DateTime<chrono::Utc>) -> Option<Self> {
        Self::postgres_and_redis_with(now, None).await
    }

    /// On PostgreSQL + Redis, reading its reference data from `config_dir`.
    pub async fn postgres_and_redis_with(
        now: chrono::DateTime<chrono::Utc>,
        config_dir: Option<std::path::PathBuf>,
    ) -> Option<Self> {
        let db = petition_testkit::TestDatabase::create().await?;
        let redis = petition_testkit::TestRedis::create().await?;
        let mut cfg = Self::config();
        cfg.config_dir = config_dir;
        cfg.database_url = Some(db.url.clone());
        cfg.redis_url = Some(redis.url.clone());
        cfg.stream_prefix = redis.prefix.clone();
        let (running, clock) = Self::start(cfg, now).await;
        Some(Self {
            running,
            clock,
            _db: Some(db),
            _redis: Some(redis),
            _dir: None,
        })
    }

    pub async fn intake(&self, p: &Principal) -> IntakeClient {
        client(
            connect(self.running.grpc_addr).await,
            &self.running.token_keys,
            p,
        )
    }

    pub async fn supervision(&self, p: &Principal) -> SupervisionClient {
        pb::supervision_service_client::SupervisionServiceClient::with_interceptor(
            connect(self.running.grpc_addr).await,
            bearer(&self.running.token_keys, p),
        )
    }

    pub async fn analytics(&self, p: &Principal) -> AnalyticsClient {
        pb::analytics_service_client::AnalyticsServiceClient::with_interceptor(
            connect(self.running.grpc_addr).await,
            bearer(&self.running.token_keys, p),
        )
    }

    pub async fn routing(&self, p: &Principal) -> RoutingClient {
        pb::routing_service_client::RoutingServiceClient::with_interceptor(
            connect(self.running.grpc_addr).await,
            bearer(&self.running.token_keys, p),
        )
    }

    /// The case's assignment once routing has routed it.
    pub async fn routed(&self, case_id: &str) -> pb::Assignment {
        let mut c = self.routing(&who("shanxi.bureau", Role::Admin)).await;
        for _ in 0..400 {
            match c
                .get_assignment(pb::GetAssignmentRequest {
                    case_id: case_id.into(),
                })
                .await
            {
                Ok(a) => return a.into_inner(),
                Err(e) if e.code() == tonic::Code::NotFound => {
                    tokio::time::sleep(std::time::Duration::from_millis(25)).await
                }
                Err(e) => panic!("{e}"),
            }
        }
        panic!("case {case_id} was never routed");
    }

    /// The case's supervision timeline, as an admin reads it, once `done` holds.
    pub async fn timeline_when(
        &self,
        case_id: &str,
        done: impl Fn(&pb::Timeline) -> bool,
    ) -> pb::Timeline {
        let mut c = self.supervision(&who("shanxi.bureau", Role::Admin)).await;
        let mut last = None;
        for _ in 0..400 {
            match c
                .get_timeline(pb::GetTimelineRequest {
                    case_id: case_id.into(),
                })
                .await
            {
                Ok(t) if done(t.get_ref()) => return t.into_inner(),
                Ok(t) => last = Some(t.into_inner()),
                Err(e) if e.code() == tonic::Code::NotFound => {}
                Err(e) => panic!("{e}"),
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("the timeline of {case_id} never reached the state waited for: {last:?}");
    }

    /// The case as intake shows it to an admin, once `done` holds.
    pub async fn case_when(&self, case_id: &str, done: impl Fn(&pb::Case) -> bool) -> pb::Case {
        let mut c = self.intake(&who("shanxi.bureau", Role::Admin)).await;
        let mut last = None;
        for _ in 0..400 {
            let case = c
                .get_case(pb::GetCaseRequest {
                    case_id: case_id.into(),
                    case_number: String::new(),
                })
                .await
                .expect("get_case")
                .into_inner();
            if done(&case) {
                return case;
            }
            last = Some(case);
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("case {case_id} never reached the state waited for: {last:?}");
    }

    pub async fn stop(self) {
        self.running.shutdown().await;
    }
}

/// This process's resident memory now and at its peak, from /proc, for the load tools.
pub fn resident_memory() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" "))
            .unwrap_or_default()
    };
    format!("{} (peak {})", field("VmRSS:"), field("VmHWM:"))
}

/// The services a port's server reflection lists, sorted.
pub async fn reflected_services(addr: std::net::SocketAddr) -> Vec<String> {
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let mut reflection = ServerReflectionClient::new(connect(addr).await);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = reflection
        .server_reflection_info(tokio_stream::once(request))
        .await
        .expect("reflection answers")
        .into_inner();
    let first = responses
        .message()
        .await
        .expect("a reflection reply")
        .expect("one message");
    let Some(MessageResponse::ListServicesResponse(list)) = first.message_response else {
        panic!("unexpected reflection answer {first:?}");
    };
    let mut names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    names.sort();
    names
}

/// A plain HTTP/1.0 GET against an admin port: the status code and the body.
pub async fn admin_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    admin_request(addr, "GET", path).await
}

/// A plain HTTP/1.0 POST without a body against an admin port.
pub async fn admin_post(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    admin_request(addr, "POST", path).await
}

async fn admin_request(addr: std::net::SocketAddr, method: &str, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .expect("the admin port answers");
    s.write_all(
        format!("{method} {path} HTTP/1.0\r\nHost: x\r\nContent-Length: 0\r\n\r\n").as_bytes(),
    )
    .await
    .expect("write");
    let mut all = String::new();
    s.read_to_string(&mut all).await.expect("read");
    let code = all
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = all
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or_default();
    (code, body.to_owned())
}
