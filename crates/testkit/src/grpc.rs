//! What a test needs to call the services over gRPC as someone: a bearer token on every call,
//! timestamps, and registrations of distinct petitioners.

use petition_auth::{Principal, Role, TokenKeys};
use petition_proto::v1 as pb;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

pub type IntakeClient =
    pb::intake_service_client::IntakeServiceClient<InterceptedService<Channel, Bearer>>;
pub type RoutingClient =
    pb::routing_service_client::RoutingServiceClient<InterceptedService<Channel, Bearer>>;

/// A principal of `org` in `role`, named after both.
pub fn who(org: &str, role: Role) -> Principal {
    Principal {
        subject: format!("{role}@{org}"),
        org: org.to_owned(),
        role,
        scopes: vec![],
    }
}

pub async fn connect(addr: std::net::SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect()
        .await
        .expect("connect to the service")
}

/// Intake at `addr`, called as `p` with a token of the development key.
pub async fn intake_as(addr: std::net::SocketAddr, p: &Principal) -> IntakeClient {
    pb::intake_service_client::IntakeServiceClient::with_interceptor(
        connect(addr).await,
        bearer(&TokenKeys::dev(), p),
    )
}

/// Routing at `addr`, called as `p` with a token of the development key.
pub async fn routing_as(addr: std::net::SocketAddr, p: &Principal) -> RoutingClient {
    pb::routing_service_client::RoutingServiceClient::with_interceptor(
        connect(addr).await,
        bearer(&TokenKeys::dev(), p),
    )
}

pub fn timestamp(t: chrono::DateTime<chrono::Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }
}

/// Adds `authorization: Bearer …` to every call.
#[derive(Clone)]
pub struct Bearer(pub tonic::metadata::MetadataValue<tonic::metadata::Ascii>);

impl Interceptor for Bearer {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        req.metadata_mut().insert("authorization", self.0.clone());
        Ok(req)
    }
}

pub fn bearer(keys: &TokenKeys, p: &Principal) -> Bearer {
    let token = keys.issue(p, chrono::Duration::hours(1));
    Bearer(format!("Bearer {token}").parse().expect("token is ASCII"))
}

/// A valid, unique resident ID per request: the region and birth date vary with `n`.
pub fn synthetic_resident_id(n: u64) -> String {
    let day = 1 + (n % 28);
    let month = 1 + (n / 28) % 12;
    let year = 1950 + (n / 336) % 50;
    let seq = (n / 16800) % 1000;
    let first17 = format!("140213{year:04}{month:02}{day:02}{seq:03}");
    let check = petition_domain::identity::check_digit(first17.as_bytes());
    format!("{first17}{check}")
}

/// A registration for load tests: the n-th of a stream of distinct petitioners and matters.
pub fn load_request(n: u64) -> pb::RegisterPetitionRequest {
    const CATEGORIES: [&str; 5] = ["01.01", "01.04", "02.01", "03.01", "01.05"];
    const STREETS: [&str; 4] = ["140213001", "140213002", "140213003", "140213200"];
    pb::RegisterPetitionRequest {
        channel: pb::Channel::Online as i32,
        received_by: "pingcheng.bureau".into(),
        received_at: Some(timestamp(chrono::Utc::now() - chrono::Duration::minutes(1))),
        petitioners: vec![pb::PetitionerInput {
            name: "测试人".into(),
            id_type: pb::IdType::ResidentId as i32,
            id_number: synthetic_resident_id(n),
            phone: format!("139{:08}", n % 100_000_000),
            address: "大同市平城区北关街道某小区".into(),
            is_main: true,
        }],
        category: CATEGORIES[(n % 5) as usize].into(),
        problem_location: STREETS[(n % 4) as usize].into(),
        title: "负载测试信访件".into(),
        content: "用于测量登记吞吐量的信访内容，包含请求、事实和理由。".into(),
        people_present: 1,
        people_affected: 1,
        ..Default::default()
    }
}
