//! Shared pieces of the end-to-end tests and load tools: the sample petitions of
//! `sample-petitions.jsonl` as gRPC requests, authenticated clients, and a running intake on
//! either PostgreSQL + Redis or the embedded default.

use petition_auth::{Principal, Role, TokenKeys};
use petition_proto::v1 as pb;
use serde::Deserialize;
use tonic::service::Interceptor;
use tonic::transport::Channel;

pub const SAMPLES: &str = include_str!("../sample-petitions.jsonl");

#[derive(Debug, Clone, Deserialize)]
pub struct SamplePetitioner {
    pub name: String,
    pub id_number: String,
    pub phone: String,
    pub address: String,
    pub id_type: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Sample {
    pub sample: u32,
    pub channel: String,
    pub received_by: String,
    pub received_at: chrono::DateTime<chrono::FixedOffset>,
    pub petitioners: Vec<SamplePetitioner>,
    pub category: String,
    pub problem_location: String,
    pub title: String,
    pub content: String,
    pub people_present: u32,
    pub people_affected: u32,
    #[serde(default)]
    pub representatives: u32,
    #[serde(default)]
    pub source_system: String,
    #[serde(default)]
    pub external_ref: String,
    pub expect: String,
}

pub fn samples() -> Vec<Sample> {
    SAMPLES
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("sample line"))
        .collect()
}

pub fn channel(s: &str) -> pb::Channel {
    match s {
        "visit" => pb::Channel::Visit,
        "letter" => pb::Channel::Letter,
        "online" => pb::Channel::Online,
        "phone" => pb::Channel::Phone,
        "fax" => pb::Channel::Fax,
        "upstream" => pb::Channel::Upstream,
        _ => pb::Channel::Unspecified,
    }
}

pub fn timestamp(t: chrono::DateTime<chrono::Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }
}

impl Sample {
    pub fn request(&self) -> pb::RegisterPetitionRequest {
        pb::RegisterPetitionRequest {
            channel: channel(&self.channel) as i32,
            received_by: self.received_by.clone(),
            received_at: Some(timestamp(self.received_at.to_utc())),
            petitioners: self
                .petitioners
                .iter()
                .map(|p| pb::PetitionerInput {
                    name: p.name.clone(),
                    id_type: if p.id_type == "resident_id" {
                        pb::IdType::ResidentId as i32
                    } else {
                        pb::IdType::Other as i32
                    },
                    id_number: p.id_number.clone(),
                    phone: p.phone.clone(),
                    address: p.address.clone(),
                    is_main: false,
                })
                .collect(),
            category: self.category.clone(),
            problem_location: self.problem_location.clone(),
            title: self.title.clone(),
            content: self.content.clone(),
            people_present: self.people_present,
            people_affected: self.people_affected,
            representatives: self.representatives,
            accused: None,
            source_system: self.source_system.clone(),
            external_ref: self.external_ref.clone(),
        }
    }

    /// Who registers it: the upstream system for upstream samples, else a clerk of the
    /// receiving organ.
    pub fn principal(&self) -> Principal {
        if self.source_system.is_empty() {
            Principal {
                subject: format!("clerk@{}", self.received_by),
                org: self.received_by.clone(),
                role: Role::Clerk,
                scopes: vec![],
            }
        } else {
            Principal {
                subject: self.source_system.clone(),
                org: self.received_by.clone(),
                role: Role::Upstream,
                scopes: vec![],
            }
        }
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

pub type IntakeClient = pb::intake_service_client::IntakeServiceClient<
    tonic::service::interceptor::InterceptedService<Channel, Bearer>,
>;

pub fn bearer(keys: &TokenKeys, p: &Principal) -> Bearer {
    let token = keys.issue(p, chrono::Duration::hours(1));
    Bearer(format!("Bearer {token}").parse().expect("token is ASCII"))
}

pub async fn connect(addr: std::net::SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect()
        .await
        .expect("connect to intake")
}

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
