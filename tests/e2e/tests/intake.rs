//! Intake end to end over gRPC: on PostgreSQL + Redis, and on the embedded default (SQLite and
//! the in-process bus). The twelve sample petitions register with the flags their `expect`
//! names, each produces one event with a trace context, and bad input gets the right answer.

use chrono::TimeZone;
use petition_auth::{Principal, Role, TokenKeys};
use petition_domain::FixedClock;
use petition_e2e::{Sample, clerk, client, connect, samples};
use petition_events::{Delivery, EventHandler, HandlerError, InProcessBus, Stream};
use petition_host::Running as Intake;
use petition_intake::IntakeConfig;
use petition_proto::v1 as pb;
use petition_testkit::{TestDatabase, TestRedis, require};
use prost::Message;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tonic::Code;
use tonic_types::StatusExt;

fn clock() -> Arc<FixedClock> {
    // Just after the last sample was received, so no sample lies in the future.
    Arc::new(FixedClock::new(
        chrono::Utc.with_ymd_and_hms(2026, 3, 11, 4, 0, 0).unwrap(),
    ))
}

fn config(database_url: &str) -> IntakeConfig {
    let mut cfg = IntakeConfig::new(database_url);
    cfg.host.listen = "127.0.0.1:0".parse().unwrap();
    cfg.host.admin_listen = Some("127.0.0.1:0".parse().unwrap());
    cfg.host.dev = true;
    cfg.host.pg_max_connections = 4;
    cfg
}

#[derive(Default)]
struct Collector(Mutex<Vec<pb::EventEnvelope>>);

#[async_trait::async_trait]
impl EventHandler for Collector {
    async fn handle(&self, d: &Delivery) -> Result<(), HandlerError> {
        self.0.lock().unwrap().push(d.envelope.clone());
        Ok(())
    }
}

async fn redis_events(redis: &TestRedis, want: usize) -> Vec<pb::EventEnvelope> {
    let mut conn = redis
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let key = format!("{}{}", redis.prefix, Stream::Intake);
    for _ in 0..200 {
        let reply: redis::streams::StreamRangeReply =
            redis::AsyncCommands::xrange_all(&mut conn, &key)
                .await
                .unwrap();
        if reply.ids.len() >= want {
            return reply
                .ids
                .iter()
                .map(|e| {
                    let bytes: Vec<u8> = e.get("event").unwrap();
                    pb::EventEnvelope::decode(&bytes[..]).unwrap()
                })
                .collect();
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("fewer than {want} events arrived on {key}");
}

async fn collected(c: &Collector, want: usize) -> Vec<pb::EventEnvelope> {
    for _ in 0..200 {
        if c.0.lock().unwrap().len() >= want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    c.0.lock().unwrap().clone()
}

async fn health_and_reflection(intake: &Intake) {
    let channel = connect(intake.grpc_addr).await;
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    let status = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "petition.v1.IntakeService".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(
        status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );

    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let mut reflection = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = reflection
        .server_reflection_info(tokio_stream::once(request))
        .await
        .unwrap()
        .into_inner();
    let first = responses.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = first.message_response else {
        panic!("unexpected reflection answer {first:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(
        names.contains(&"petition.v1.IntakeService".to_owned()),
        "{names:?}"
    );
    assert!(
        names.contains(&"grpc.health.v1.Health".to_owned()),
        "{names:?}"
    );
}

async fn register(
    intake: &Intake,
    sample: &Sample,
) -> Result<pb::RegisterPetitionResponse, tonic::Status> {
    let channel = connect(intake.grpc_addr).await;
    let mut c = client(channel, &intake.token_keys, &sample.principal());
    c.register_petition(sample.request())
        .await
        .map(|r| r.into_inner())
}

/// Registers the twelve samples and checks every flag their `expect` implies. Returns the
/// responses by sample number.
async fn register_samples(intake: &Intake) -> HashMap<u32, pb::RegisterPetitionResponse> {
    let mut out = HashMap::new();
    for s in samples() {
        let r = register(intake, &s)
            .await
            .unwrap_or_else(|e| panic!("sample {}: {e}", s.sample));
        assert!(
            r.case_number.parse::<petition_domain::CaseNumber>().is_ok(),
            "{}",
            r.case_number
        );
        assert!(r.query_code.parse::<petition_domain::QueryCode>().is_ok());
        out.insert(s.sample, r);
    }
    let flags = |n: u32| out[&n].flags.clone().unwrap();
    let ty = |n: u32| pb::TypeOfMatter::try_from(out[&n].type_of_matter).unwrap();
    let div = |n: u32| pb::Diversion::try_from(out[&n].diversion).unwrap();

    // Ordinary petitions: no flag but "first time at this organ".
    for n in [1, 3, 4, 11] {
        let f = flags(n);
        assert!(
            !f.group && !f.leapfrog && !f.repeat && !f.open_below,
            "sample {n}: {f:?}"
        );
        assert!(f.first_at_organ, "sample {n}");
        assert_eq!(ty(n), pb::TypeOfMatter::Grievance);
        assert_eq!(div(n), pb::Diversion::None);
    }
    // 2: group visit of 8 with 3 representatives.
    assert!(flags(2).group && !flags(2).leapfrog);
    // 5, 6: diverted to litigation and arbitration (诉访分离).
    assert_eq!(div(5), pb::Diversion::Litigation);
    assert_eq!(div(6), pb::Diversion::Arbitration);
    // 7: an accusation, for discipline inspection.
    assert_eq!(ty(7), pb::TypeOfMatter::Accusation);
    assert_eq!(div(7), pb::Diversion::Discipline);
    // 8: a suggestion, no legal channel.
    assert_eq!(ty(8), pb::TypeOfMatter::Suggestion);
    assert_eq!(div(8), pb::Diversion::None);
    // 9: repeat of sample 1 at the city, while the district case is open (Art. 19 ¶3);
    // the city is one level above the district organ, so not leapfrog.
    let f9 = flags(9);
    assert!(
        f9.repeat && !f9.leapfrog && f9.first_at_organ && f9.open_below,
        "{f9:?}"
    );
    assert_eq!(f9.repeat_of_case_number, out[&1].case_number);
    assert_eq!(f9.repeat_of_case_id, out[&1].case_id);
    assert_eq!(f9.open_below_case_number, out[&1].case_number);
    // 10: leapfrog to the province (two levels above the district organ); 李秀英 was a
    // petitioner of sample 2 on the same matter, so it is also a repeat of sample 2.
    let f10 = flags(10);
    assert!(f10.leapfrog, "{f10:?}");
    assert!(f10.repeat && f10.open_below);
    assert_eq!(f10.repeat_of_case_number, out[&2].case_number);
    // 12: the upstream key, replayed below.
    assert!(!flags(12).repeat);

    // Gapless numbers per organ and year: the district bureau registered ten samples.
    let mut district: Vec<String> = out
        .iter()
        .filter(|(n, _)| ![9, 10].contains(*n))
        .map(|(_, r)| r.case_number.clone())
        .collect();
    district.sort();
    let want: Vec<String> = (1..=10).map(|i| format!("140213-2026-{i:06}")).collect();
    assert_eq!(district, want);
    assert_eq!(out[&9].case_number, "140200-2026-000001");
    assert_eq!(out[&10].case_number, "140000-2026-000001");
    out
}

fn check_events(
    events: &[pb::EventEnvelope],
    registered: &HashMap<u32, pb::RegisterPetitionResponse>,
) {
    assert_eq!(
        events.len(),
        12,
        "one event per registration, none for the replay"
    );
    let mut numbers: Vec<String> = Vec::new();
    for e in events {
        assert_eq!(e.r#type, "petition.registered");
        assert_eq!(e.producer, "intake");
        let trace = e.trace.as_ref().expect("trace context");
        assert!(
            trace.traceparent.starts_with("00-") && trace.traceparent.len() == 55,
            "traceparent {:?}",
            trace.traceparent
        );
        let Some(pb::event_envelope::Payload::PetitionRegistered(r)) = &e.payload else {
            panic!("payload");
        };
        assert_eq!(r.case_id, e.case_id);
        numbers.push(r.case_number.clone());
        // Events never carry raw personal data.
        let bytes = e.encode_to_vec();
        for s in samples() {
            for p in &s.petition.petitioners {
                for secret in [&p.id_number, &p.phone, &p.name] {
                    assert!(
                        !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                        "event {} carries personal data",
                        r.case_number
                    );
                }
            }
        }
    }
    numbers.sort();
    let mut want: Vec<String> = registered.values().map(|r| r.case_number.clone()).collect();
    want.sort();
    assert_eq!(numbers, want);
}

async fn answers_to_retries_and_bad_input(intake: &Intake, first: &pb::RegisterPetitionResponse) {
    let s12 = samples().into_iter().find(|s| s.sample == 12).unwrap();
    // Idempotent retry: the first answer again.
    let again = register(intake, &s12).await.unwrap();
    assert!(again.replayed);
    assert_eq!(again.case_id, first.case_id);
    assert_eq!(again.case_number, first.case_number);
    assert_eq!(again.query_code, first.query_code);
    // Same key, different content: ALREADY_EXISTS naming the case.
    let mut changed = s12.clone();
    changed.petition.content = "另一件事".into();
    let err = register(intake, &changed).await.unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists, "{err:?}");
    assert!(
        err.message().contains(&first.case_number),
        "{}",
        err.message()
    );

    let base = samples().into_iter().find(|s| s.sample == 1).unwrap();
    let bad = |f: &dyn Fn(&mut Sample)| {
        let mut s = base.clone();
        f(&mut s);
        s
    };
    let cases: Vec<(Sample, &str, &str)> = vec![
        (
            bad(&|s| s.petition.petitioners[0].id_number = "140213196503121018".into()),
            "petitioners[0].id_number",
            "check digit",
        ),
        (
            bad(&|s| s.petition.received_by = "nowhere.bureau".into()),
            "received_by",
            "not in the organisation tree",
        ),
        (
            bad(&|s| {
                s.petition.people_present = 8;
                s.petition.representatives = 0;
            }),
            "representatives",
            "Art. 20",
        ),
        (
            bad(&|s| s.petition.content = String::new()),
            "content",
            "required",
        ),
    ];
    for (sample, field, rule) in cases {
        // A clerk of the province may register for any organ below it, so the unknown-organ
        // case reaches validation rather than the permission check.
        let channel = connect(intake.grpc_addr).await;
        let mut c = client(channel, &intake.token_keys, &clerk("shanxi.bureau"));
        let err = c.register_petition(sample.request()).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{field}: {err:?}");
        assert!(err.message().contains(field), "{}", err.message());
        assert!(err.message().contains(rule), "{}", err.message());
        let details = err.get_details_bad_request().expect("BadRequest details");
        assert!(details.field_violations.iter().any(|v| v.field == field));
    }

    // No token: UNAUTHENTICATED.
    let channel = connect(intake.grpc_addr).await;
    let mut anon = pb::intake_service_client::IntakeServiceClient::new(channel);
    let err = anon.register_petition(base.request()).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
}

async fn reads(intake: &Intake, registered: &HashMap<u32, pb::RegisterPetitionResponse>) {
    let channel = connect(intake.grpc_addr).await;
    let keys: &TokenKeys = &intake.token_keys;
    let number = registered[&1].case_number.clone();
    let get = pb::GetCaseRequest {
        case_id: String::new(),
        case_number: number.clone(),
    };
    // Everyone reads it masked; the receiving clerk sees it in full by saying why.
    let mut c = client(channel.clone(), keys, &clerk("pingcheng.bureau"));
    let case = c.get_case(get.clone()).await.unwrap().into_inner();
    assert_eq!(case.petitioners[0].id_number, "1402**********1017");
    assert!(case.petitioners[0].masked);
    assert_eq!(case.petitioners[0].age_band, "60-69");
    let reveal = |purpose: &str| pb::RevealPersonalDataRequest {
        case_id: String::new(),
        case_number: number.clone(),
        purpose: purpose.into(),
    };
    let no_reason = c.reveal_personal_data(reveal("")).await.unwrap_err();
    assert_eq!(no_reason.code(), tonic::Code::InvalidArgument);
    assert!(no_reason.message().starts_with("purpose:"), "{no_reason}");
    let clear = c
        .reveal_personal_data(reveal("calling the petitioner back"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(clear.petitioners[0].id_number, "140213196503121017");
    assert!(!clear.petitioners[0].masked);
    // A handler of the same organ sees it masked.
    let handler = Principal {
        role: Role::Handler,
        ..clerk("pingcheng.bureau")
    };
    let mut h = client(channel.clone(), keys, &handler);
    let masked = h.get_case(get.clone()).await.unwrap().into_inner();
    assert_eq!(masked.petitioners[0].id_number, "1402**********1017");
    assert_eq!(masked.petitioners[0].phone, "139****1234");
    assert!(masked.petitioners[0].masked);
    let refused = h
        .reveal_personal_data(reveal("curious about the petitioner"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused}");
    // Another district's clerk may not read it; an analyst reads no single case.
    let mut y = client(channel.clone(), keys, &clerk("yungang.bureau"));
    assert_eq!(
        y.get_case(get.clone()).await.unwrap_err().code(),
        Code::PermissionDenied
    );
    let analyst = Principal {
        role: Role::Analyst,
        ..clerk("pingcheng.bureau")
    };
    let mut a = client(channel.clone(), keys, &analyst);
    assert_eq!(
        a.get_case(get.clone()).await.unwrap_err().code(),
        Code::PermissionDenied
    );
    let missing = pb::GetCaseRequest {
        case_id: String::new(),
        case_number: "140213-2026-999999".into(),
    };
    assert_eq!(
        c.get_case(missing).await.unwrap_err().code(),
        Code::NotFound
    );

    // The petitioner's view by query code.
    let lookup = c
        .lookup_by_query_code(pb::LookupByQueryCodeRequest {
            query_code: registered[&1].query_code.to_lowercase(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(lookup.case_number, number);
    assert_eq!(lookup.status, pb::CaseStatus::Registered as i32);
    assert_eq!(lookup.received_by_name, "平城区信访局");

    // The district clerk lists the district's ten cases, in pages of four.
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = c
            .list_cases(pb::ListCasesRequest {
                page_size: 4,
                page_token: token.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        seen.extend(page.cases.into_iter().map(|c| c.case_number));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen.len(), 10, "{seen:?}");
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 10);
    // Only group visits.
    let groups = c
        .list_cases(pb::ListCasesRequest {
            only_group: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(groups.cases.len(), 1);
    assert_eq!(groups.cases[0].case_number, registered[&2].case_number);

    // The province clerk sees 王建国's two cases in his history.
    let mut p = client(channel, keys, &clerk("shanxi.bureau"));
    let history = p
        .get_petitioner_history(pb::GetPetitionerHistoryRequest {
            id_type: pb::IdType::ResidentId as i32,
            id_number: "140213196503121017".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut numbers: Vec<String> = history.cases.into_iter().map(|c| c.case_number).collect();
    numbers.sort();
    let mut want = vec![
        registered[&1].case_number.clone(),
        registered[&9].case_number.clone(),
    ];
    want.sort();
    assert_eq!(numbers, want);
}

#[tokio::test]
async fn samples_on_postgres_and_redis() {
    petition_telemetry::init_for_tests();
    let db = require!(TestDatabase::create());
    let redis = require!(TestRedis::create());
    let mut cfg = config(&db.url);
    cfg.host.redis_url = Some(redis.url.clone());
    cfg.host.stream_prefix = redis.prefix.clone();
    let intake = cfg.start(None, clock()).await.unwrap();
    health_and_reflection(&intake).await;
    let registered = register_samples(&intake).await;
    answers_to_retries_and_bad_input(&intake, &registered[&12]).await;
    reads(&intake, &registered).await;
    let events = redis_events(&redis, 12).await;
    check_events(&events, &registered);
    let metrics = admin_get(&intake, "/metrics").await;
    assert!(
        metrics.contains(
            "rpc_requests_total{method=\"/petition.v1.IntakeService/RegisterPetition\",code=\"0\"}"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("code=\"3\""),
        "INVALID_ARGUMENT answers are counted"
    );
    assert!(metrics.contains("outbox_published_total"), "{metrics}");
    intake.shutdown().await;
}

/// A plain HTTP/1.0 GET against the admin port.
async fn admin_get(intake: &Intake, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = intake.admin_addr.expect("admin port");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).await.unwrap();
    assert!(
        body.starts_with("HTTP/1.0 200") || body.starts_with("HTTP/1.1 200"),
        "{body}"
    );
    body
}

#[tokio::test]
async fn samples_on_the_embedded_default() {
    petition_telemetry::init_for_tests();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/intake.db", dir.path().display());
    let bus = InProcessBus::new();
    let collector = Arc::new(Collector::default());
    bus.subscribe(Stream::Intake.as_str(), "test", collector.clone());
    let intake = config(&url).start(Some(bus), clock()).await.unwrap();
    health_and_reflection(&intake).await;
    let registered = register_samples(&intake).await;
    answers_to_retries_and_bad_input(&intake, &registered[&12]).await;
    reads(&intake, &registered).await;
    let events = collected(&collector, 12).await;
    check_events(&events, &registered);
    intake.shutdown().await;
}

#[tokio::test]
async fn the_service_refuses_to_start_without_keys_unless_dev() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/intake.db", dir.path().display());
    let mut cfg = config(&url);
    cfg.host.dev = false;
    let err = cfg.start(None, clock()).await.err().expect("must refuse");
    assert!(err.to_string().contains("PETITION_DATA_KEY"), "{err}");
}
