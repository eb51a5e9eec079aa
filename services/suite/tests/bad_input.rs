//! What an integrator gets for a mistake: the right status, naming the field and the rule,
//! never INTERNAL (which says "retry") and never another organ's case — on PostgreSQL + Redis
//! and on the embedded default.

use bytes::{Buf, BufMut};
use chrono::{TimeZone, Utc};
use petition_auth::{DEV_TOKEN_KEY, Role};
mod common;

use common::Suite;
use petition_e2e::{Bearer, client, connect, samples, timestamp, who};
use petition_proto::v1 as pb;
use prost::Message;
use tonic::Code;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

fn now() -> chrono::DateTime<Utc> {
    chrono::FixedOffset::east_opt(8 * 3600)
        .unwrap()
        .with_ymd_and_hms(2026, 3, 11, 12, 0, 0)
        .unwrap()
        .to_utc()
}

/// Sends bytes as they are, to say what a broken client would.
#[derive(Debug, Clone, Default)]
struct Raw;

impl Codec for Raw {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = Raw;
    type Decoder = Raw;
    fn encoder(&mut self) -> Raw {
        Raw
    }
    fn decoder(&mut self) -> Raw {
        Raw
    }
}

impl Encoder for Raw {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(&mut self, item: Vec<u8>, buf: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        buf.put_slice(&item);
        Ok(())
    }
}

impl Decoder for Raw {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, tonic::Status> {
        Ok(Some(buf.copy_to_bytes(buf.remaining()).to_vec()))
    }
}

const REGISTER: &str = "/petition.v1.IntakeService/RegisterPetition";

async fn raw_client(s: &Suite) -> (tonic::client::Grpc<tonic::transport::Channel>, String) {
    let token = s.token_keys.issue(
        &who("pingcheng.bureau", Role::Clerk),
        chrono::Duration::hours(1),
    );
    let mut grpc = tonic::client::Grpc::new(connect(s.grpc_addr).await);
    grpc.ready().await.unwrap();
    (grpc, format!("Bearer {token}"))
}

async fn raw_register(s: &Suite, body: Vec<u8>) -> tonic::Status {
    let (mut grpc, token) = raw_client(s).await;
    let mut req = tonic::Request::new(body);
    req.metadata_mut()
        .insert("authorization", token.parse().unwrap());
    grpc.unary(req, http::uri::PathAndQuery::from_static(REGISTER), Raw)
        .await
        .unwrap_err()
}

/// A unary call with no message at all.
async fn empty_register(s: &Suite) -> tonic::Status {
    let (mut grpc, token) = raw_client(s).await;
    let mut req = tonic::Request::new(tokio_stream::empty::<Vec<u8>>());
    req.metadata_mut()
        .insert("authorization", token.parse().unwrap());
    grpc.client_streaming(req, http::uri::PathAndQuery::from_static(REGISTER), Raw)
        .await
        .unwrap_err()
}

fn token_with(claims: serde_json::Value) -> Bearer {
    let t = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(DEV_TOKEN_KEY),
    )
    .unwrap();
    Bearer(format!("Bearer {t}").parse().unwrap())
}

fn assert_names(err: &tonic::Status, code: Code, field: &str, rule: &str) {
    assert_eq!(err.code(), code, "{field}: {err:?}");
    assert!(
        err.message().contains(field) && err.message().contains(rule),
        "{field}: {}",
        err.message()
    );
}

async fn mistakes_get_the_right_answer(s: &Suite) {
    let base = samples().into_iter().find(|s| s.sample == 1).unwrap();
    let clerk = who("pingcheng.bureau", Role::Clerk);
    let mut c = s.intake(&clerk).await;

    // A message that is not protobuf: truncated, or a string that is not UTF-8.
    // A title of 40 bytes of which only 20 arrive.
    let whole = pb::RegisterPetitionRequest {
        title: "x".repeat(40),
        ..Default::default()
    }
    .encode_to_vec();
    let err = raw_register(s, whole[..whole.len() - 20].to_vec()).await;
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    let err = raw_register(s, vec![0x3a, 0x02, 0xff, 0xfe]).await;
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(
        err.message().contains("not valid petition.v1 protobuf"),
        "{}",
        err.message()
    );
    let err = empty_register(s).await;
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(
        err.message().contains("not a complete gRPC message"),
        "{}",
        err.message()
    );

    // NUL in text, on both dialects alike.
    for (field, set) in [
        (
            "title",
            (|r: &mut pb::RegisterPetitionRequest| r.title = "标题\0".into()) as fn(&mut _),
        ),
        ("content", |r| r.content = "内容\0内容".into()),
        ("petitioners[0].name", |r| {
            r.petitioners[0].name = "王\0".into()
        }),
    ] {
        let mut req = base.request();
        set(&mut req);
        let err = c.register_petition(req).await.unwrap_err();
        assert_names(&err, Code::InvalidArgument, field, "NUL (U+0000)");
    }

    // received_at: not before 2000, not in the future.
    let mut req = base.request();
    req.received_at = Some(timestamp(Utc.with_ymd_and_hms(1, 1, 1, 0, 0, 0).unwrap()));
    let err = c.register_petition(req).await.unwrap_err();
    assert_names(
        &err,
        Code::InvalidArgument,
        "received_at",
        "earliest receipt",
    );
    let mut req = base.request();
    req.received_at = Some(timestamp(now() + chrono::Duration::days(1)));
    let err = c.register_petition(req).await.unwrap_err();
    assert_names(&err, Code::InvalidArgument, "received_at", "in the future");

    // An upstream key of 100,000 characters, and a clerk claiming an upstream's name.
    let upstream = who("datong.bureau", Role::Upstream);
    let mut up = s
        .intake(&petition_auth::Principal {
            subject: "datong.12345".into(),
            ..upstream
        })
        .await;
    let mut req = base.request();
    req.channel = pb::Channel::Upstream as i32;
    req.source_system = "datong.12345".into();
    req.external_ref = "x".repeat(100_000);
    let err = up.register_petition(req).await.unwrap_err();
    assert_names(
        &err,
        Code::InvalidArgument,
        "external_ref",
        "at most 128 characters",
    );
    assert!(err.message().len() < 500, "the value is not echoed back");
    let mut req = base.request();
    req.source_system = "datong.12345".into();
    req.external_ref = "DT-9".into();
    let err = c.register_petition(req).await.unwrap_err();
    assert_names(
        &err,
        Code::PermissionDenied,
        "source_system",
        "only an upstream system",
    );

    // Tokens: an organ the tree does not know, no real lifetime, a role that does not exist.
    let t = chrono::Utc::now().timestamp();
    let claims = |org: &str, role: &str, exp: i64| serde_json::json!({"sub": "x", "org": org, "role": role, "iss": "petition-pipeline", "iat": t, "exp": exp});
    for (bearer, words) in [
        (
            token_with(claims("atlantis.bureau", "clerk", t + 60)),
            "not in this deployment's organisation tree",
        ),
        (
            token_with(claims("pingcheng.bureau", "clerk", 99_999_999_999)),
            "exceeds the maximum",
        ),
        (
            token_with(claims("pingcheng.bureau", "none", t + 60)),
            "unknown role \"none\"",
        ),
    ] {
        let mut c = pb::intake_service_client::IntakeServiceClient::with_interceptor(
            connect(s.grpc_addr).await,
            bearer,
        );
        let err = c.register_petition(base.request()).await.unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated);
        assert!(err.message().contains(words), "{}", err.message());
        assert!(
            !err.message().contains("variant") && !err.message().contains("JSON"),
            "{}",
            err.message()
        );
    }

    // Request ids belong to the organ that sends them, and a reused one names no case.
    let mut ids = Vec::new();
    for (sample, petitioner) in [
        (1, "140213196503121017"),
        (1, "140213197909244249"),
        (3, "140214198801173136"),
    ] {
        let mut req = samples()
            .into_iter()
            .find(|s| s.sample == sample)
            .unwrap()
            .request();
        req.petitioners[0].id_number = petitioner.into();
        let r = c.register_petition(req).await.unwrap().into_inner();
        ids.push((r.case_id.clone(), r.case_number.clone()));
        s.routed(&r.case_id).await;
    }
    let mut housing = s.routing(&who("pingcheng.housing", Role::Handler)).await;
    let mut hrss = s.routing(&who("pingcheng.hrss", Role::Handler)).await;
    let accept = |case: &str| pb::AcceptCaseRequest {
        case_id: case.into(),
        request_id: "r-1".into(),
    };
    housing.accept_case(accept(&ids[0].0)).await.unwrap();
    hrss.accept_case(accept(&ids[2].0))
        .await
        .expect("another organ's request id r-1 is no conflict");
    let err = housing.accept_case(accept(&ids[1].0)).await.unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);
    assert!(
        !err.message().contains(&ids[0].0) && !err.message().contains(&ids[0].1),
        "{}",
        err.message()
    );
    let err = housing
        .accept_case(pb::AcceptCaseRequest {
            case_id: ids[1].0.clone(),
            request_id: "r\0".into(),
        })
        .await
        .unwrap_err();
    assert_names(&err, Code::InvalidArgument, "request_id", "printable ASCII");

    // A malformed case id is the caller's mistake in either service, not a case not found.
    let err = housing
        .get_assignment(pb::GetAssignmentRequest {
            case_id: "not-a-uuid".into(),
        })
        .await
        .unwrap_err();
    assert_names(&err, Code::InvalidArgument, "case_id", "not a case id");
    let err = c
        .get_case(pb::GetCaseRequest {
            case_id: "not-a-uuid".into(),
            case_number: String::new(),
        })
        .await
        .unwrap_err();
    assert_names(&err, Code::InvalidArgument, "case_id", "not a case id");

    // An idempotency conflict names the case only to whoever may see it.
    let mut accusation = samples()
        .into_iter()
        .find(|s| s.sample == 7)
        .unwrap()
        .request();
    accusation.channel = pb::Channel::Upstream as i32;
    accusation.source_system = "datong.12345".into();
    accusation.external_ref = "DT-ACC-1".into();
    accusation.accused = Some(pb::Accused {
        name: "某处长".into(),
        organ_id: "datong.bureau".into(),
    });
    let first = up
        .register_petition(accusation.clone())
        .await
        .unwrap()
        .into_inner();
    let mut changed = accusation.clone();
    changed.content = "另一件事".into();
    let err = up.register_petition(changed.clone()).await.unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);
    assert!(
        err.message().contains(&first.case_number),
        "the submitter is told: {}",
        err.message()
    );
    let mut accused_admin = s.intake(&who("datong.bureau", Role::Admin)).await;
    let err = accused_admin.register_petition(changed).await.unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists);
    assert!(
        !err.message().contains(&first.case_number),
        "{}",
        err.message()
    );

    // A page token is bound to its filter.
    let page = c
        .list_cases(pb::ListCasesRequest {
            page_size: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!page.next_page_token.is_empty());
    let err = c
        .list_cases(pb::ListCasesRequest {
            page_size: 1,
            only_group: true,
            page_token: page.next_page_token.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_names(
        &err,
        Code::InvalidArgument,
        "page_token",
        "not issued for this filter",
    );
    let mut other = client(
        connect(s.grpc_addr).await,
        &s.token_keys,
        &who("pingcheng.bureau", Role::Supervisor),
    );
    let err = other
        .list_cases(pb::ListCasesRequest {
            page_size: 1,
            page_token: page.next_page_token,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Code::InvalidArgument,
        "nor handed to another caller"
    );
    let err = housing
        .list_inbox(pb::ListInboxRequest {
            category_prefix: "01' OR 1=1".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_names(
        &err,
        Code::InvalidArgument,
        "category_prefix",
        "digits and dots",
    );
}

#[tokio::test]
async fn on_postgres_and_redis() {
    let Some(s) = Suite::postgres_and_redis(now()).await else {
        return;
    };
    mistakes_get_the_right_answer(&s).await;
    s.stop().await;
}

#[tokio::test]
async fn on_the_embedded_default() {
    let s = Suite::embedded(now()).await;
    mistakes_get_the_right_answer(&s).await;
    s.stop().await;
}
