//! Shared pieces of the end-to-end tests and load tools: the sample petitions of
//! `sample-petitions.jsonl` as gRPC requests, authenticated clients, and plain requests to an
//! admin port. The tests of the whole suite run its binary (`services/suite/tests`); the tests
//! here run single services and faults between them.

pub mod load;

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

pub type AuditClient = pb::audit_service_client::AuditServiceClient<
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
