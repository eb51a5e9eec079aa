//! intake → stream → routing, through the running services, on PostgreSQL + Redis and on the
//! embedded default: the twelve samples end where their `expect` says, the accused organ never
//! sees the accusation, and the inbox commands keep the law's windows.

use chrono::TimeZone;
use petition_auth::{Principal, Role};
use petition_domain::FixedClock;
use petition_e2e::{Bearer, bearer, clerk, client, connect, samples};
use petition_events::InProcessBus;
use petition_host::Running;
use petition_intake::IntakeConfig;
use petition_proto::v1 as pb;
use petition_routing::RoutingConfig;
use petition_testkit::{TestDatabase, TestRedis, require};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tonic::Code;
use tonic::transport::Channel;

type RoutingClient = pb::routing_service_client::RoutingServiceClient<
    tonic::service::interceptor::InterceptedService<Channel, Bearer>,
>;

struct Pipeline {
    intake: Running,
    routing: Running,
    clock: Arc<FixedClock>,
    _db: Option<TestDatabase>,
    _redis: Option<TestRedis>,
    _dir: Option<tempfile::TempDir>,
}

fn beijing(y: i32, m: u32, d: u32, h: u32) -> chrono::DateTime<chrono::Utc> {
    chrono::FixedOffset::east_opt(8 * 3600)
        .unwrap()
        .with_ymd_and_hms(y, m, d, h, 0, 0)
        .unwrap()
        .to_utc()
}

fn configs(intake_db: &str, routing_db: &str) -> (IntakeConfig, RoutingConfig) {
    let mut i = IntakeConfig::new(intake_db);
    i.host.listen = "127.0.0.1:0".parse().unwrap();
    i.host.dev = true;
    i.host.pg_max_connections = 4;
    let mut r = RoutingConfig::new(routing_db);
    r.host.listen = "127.0.0.1:0".parse().unwrap();
    r.host.dev = true;
    r.host.pg_max_connections = 4;
    (i, r)
}

async fn on_postgres_and_redis(now: chrono::DateTime<chrono::Utc>) -> Option<Pipeline> {
    petition_telemetry::init_for_tests();
    let db = TestDatabase::create().await?;
    let redis = TestRedis::create().await?;
    let clock = Arc::new(FixedClock::new(now));
    // One database, one schema per service.
    let (mut i, mut r) = configs(&db.url, &db.url);
    for (url, prefix) in [
        (&mut i.host.redis_url, &mut i.host.stream_prefix),
        (&mut r.host.redis_url, &mut r.host.stream_prefix),
    ] {
        *url = Some(redis.url.clone());
        *prefix = redis.prefix.clone();
    }
    r.host.consumer_name = "routing-test".into();
    let routing = r.start(None, clock.clone()).await.unwrap();
    let intake = i.start(None, clock.clone()).await.unwrap();
    Some(Pipeline {
        intake,
        routing,
        clock,
        _db: Some(db),
        _redis: Some(redis),
        _dir: None,
    })
}

async fn embedded(now: chrono::DateTime<chrono::Utc>) -> Option<Pipeline> {
    petition_telemetry::init_for_tests();
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(FixedClock::new(now));
    let (i, r) = configs(
        &format!("sqlite://{}/intake.db", dir.path().display()),
        &format!("sqlite://{}/routing.db", dir.path().display()),
    );
    let bus = InProcessBus::new();
    // Routing subscribes before intake's relay starts, as the suite does.
    let routing = r.start(Some(bus.clone()), clock.clone()).await.unwrap();
    let intake = i.start(Some(bus), clock.clone()).await.unwrap();
    Some(Pipeline {
        intake,
        routing,
        clock,
        _db: None,
        _redis: None,
        _dir: Some(dir),
    })
}

impl Pipeline {
    fn clock_now(&self) -> chrono::DateTime<chrono::Utc> {
        use petition_domain::Clock;
        self.clock.now()
    }

    async fn routing_as(&self, p: &Principal) -> RoutingClient {
        let channel = connect(self.routing.grpc_addr).await;
        pb::routing_service_client::RoutingServiceClient::with_interceptor(
            channel,
            bearer(&self.routing.token_keys, p),
        )
    }

    async fn routed(&self, case_id: &str) -> pb::Assignment {
        let admin = Principal {
            subject: "admin".into(),
            org: "pingcheng.bureau".into(),
            role: Role::Admin,
            scopes: vec![],
        };
        let mut c = self.routing_as(&admin).await;
        for _ in 0..400 {
            match c
                .get_assignment(pb::GetAssignmentRequest {
                    case_id: case_id.into(),
                })
                .await
            {
                Ok(a) => return a.into_inner(),
                Err(e) if e.code() == Code::NotFound => {
                    tokio::time::sleep(Duration::from_millis(25)).await
                }
                Err(e) => panic!("{e}"),
            }
        }
        panic!("case {case_id} was never routed");
    }

    async fn stop(self) {
        self.intake.shutdown().await;
        self.routing.shutdown().await;
    }
}

fn handler(org: &str) -> Principal {
    Principal {
        subject: format!("handler@{org}"),
        org: org.into(),
        role: Role::Handler,
        scopes: vec![],
    }
}

async fn samples_end_where_expected(p: &Pipeline) {
    let channel = connect(p.intake.grpc_addr).await;
    let mut registered: HashMap<u32, pb::RegisterPetitionResponse> = HashMap::new();
    for s in samples() {
        let mut req = s.request();
        if s.sample == 7 {
            // The letter names an official of the Beiguan street office.
            req.accused = Some(pb::Accused {
                name: "北关街道某工作人员".into(),
                organ_id: "pingcheng.street.beiguan".into(),
            });
        }
        let mut c = client(channel.clone(), &p.intake.token_keys, &s.principal());
        let r = c.register_petition(req).await.unwrap().into_inner();
        registered.insert(s.sample, r);
    }
    let mut routed = HashMap::new();
    for (n, r) in &registered {
        routed.insert(*n, p.routed(&r.case_id).await);
    }
    let sent = |n: u32, organ: &str| {
        let a = &routed[&n];
        assert_eq!(
            a.outcome,
            pb::RouteOutcome::Sent as i32,
            "sample {n}: {a:?}"
        );
        assert_eq!(a.organ, organ, "sample {n}: {}", a.rule);
        assert_eq!(a.state, pb::AssignmentState::AwaitingAcceptance as i32);
        assert!(!a.rule.is_empty() && !a.history.is_empty());
    };
    let diverted = |n: u32, organ: &str, d: pb::Diversion| {
        let a = &routed[&n];
        assert_eq!(
            a.outcome,
            pb::RouteOutcome::Diverted as i32,
            "sample {n}: {a:?}"
        );
        assert_eq!(
            (a.organ.as_str(), a.diversion),
            (organ, d as i32),
            "sample {n}"
        );
        assert!(
            a.notice.contains("Art."),
            "a written notice says where and why: {}",
            a.notice
        );
    };
    sent(1, "pingcheng.housing");
    sent(2, "pingcheng.expropriation");
    assert_eq!(
        routed[&2].mode,
        pb::HandlingMode::Assign as i32,
        "a group visit is assigned (交办)"
    );
    assert!(routed[&2].report_due.is_some());
    assert_eq!(routed[&1].mode, pb::HandlingMode::Forward as i32);
    sent(3, "pingcheng.hrss");
    sent(4, "pingcheng.finance");
    diverted(5, "pingcheng.politics_law", pb::Diversion::Litigation);
    diverted(6, "pingcheng.arbitration", pb::Diversion::Arbitration);
    diverted(7, "pingcheng.discipline", pb::Diversion::Discipline);
    let triage = &routed[&8];
    assert_eq!(triage.outcome, pb::RouteOutcome::Triage as i32);
    assert_eq!(triage.organ, "pingcheng.bureau");
    for (n, of) in [(9, 1), (10, 2)] {
        let a = &routed[&n];
        assert_eq!(
            a.outcome,
            pb::RouteOutcome::Linked as i32,
            "sample {n}: {a:?}"
        );
        assert_eq!(
            a.linked_case_number, registered[&of].case_number,
            "sample {n}"
        );
        assert!(a.rule.contains("Art. 19"), "{}", a.rule);
    }
    assert!(routed[&10].flags.as_ref().unwrap().leapfrog);
    sent(11, "pingcheng.street.xinhuajie");
    sent(12, "pingcheng.hrss");

    // Art. 30 ¶3: the accused street office neither lists nor reads the accusation.
    let mut beiguan = p.routing_as(&handler("pingcheng.street.beiguan")).await;
    let inbox = beiguan
        .list_inbox(pb::ListInboxRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(
        inbox
            .items
            .iter()
            .all(|i| i.case_id != registered[&7].case_id)
    );
    let err = beiguan
        .get_assignment(pb::GetAssignmentRequest {
            case_id: registered[&7].case_id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    let mut beiguan_clerk = p.routing_as(&clerk("pingcheng.street.beiguan")).await;
    assert_eq!(
        beiguan_clerk
            .get_assignment(pb::GetAssignmentRequest {
                case_id: registered[&7].case_id.clone(),
            })
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );

    // The housing bureau's inbox: sample 1 waits to be claimed; accepting starts the clock.
    let mut housing = p.routing_as(&handler("pingcheng.housing")).await;
    let inbox = housing
        .list_inbox(pb::ListInboxRequest {
            bucket: pb::InboxBucket::ToClaim as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(inbox.items.len(), 1);
    assert_eq!(inbox.items[0].case_id, registered[&1].case_id);
    let accept = pb::AcceptCaseRequest {
        case_id: registered[&1].case_id.clone(),
        request_id: "accept-1".into(),
    };
    let accepted = housing
        .accept_case(accept.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(accepted.state, pb::AssignmentState::Accepted as i32);
    assert!(
        accepted.handling_due.is_some(),
        "a grievance runs the 60-day clock (Art. 34)"
    );
    let again = housing.accept_case(accept).await.unwrap().into_inner();
    assert_eq!(
        again.accepted_at, accepted.accepted_at,
        "a retry is answered, not re-applied"
    );
    // The same id sent to another method is another request, not a retry of the acceptance:
    // refused, and nothing changes (the extension below is still the first).
    let reused = housing
        .request_extension(pb::RequestExtensionRequest {
            case_id: registered[&1].case_id.clone(),
            days: 10,
            reason: "the developer's records are held by the city".into(),
            request_id: "accept-1".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(reused.code(), Code::AlreadyExists, "{reused:?}");
    assert!(reused.message().contains("request_id"), "{reused:?}");
    // One extension of at most 30 days (Art. 34).
    let extend = |days: u32| pb::RequestExtensionRequest {
        case_id: registered[&1].case_id.clone(),
        days,
        reason: "the developer's records are held by the city".into(),
        request_id: String::new(),
    };
    assert_eq!(
        housing
            .request_extension(extend(31))
            .await
            .unwrap_err()
            .code(),
        Code::InvalidArgument
    );
    let extended = housing
        .request_extension(extend(30))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(extended.extension_days, 30);
    let twice = housing.request_extension(extend(10)).await.unwrap_err();
    assert_eq!(twice.code(), Code::FailedPrecondition, "{twice:?}");
    assert!(twice.message().contains("Art. 34"));
    // The written opinion, served by post.
    let reply = |case: &str, request_id: &str| pb::SubmitReplyRequest {
        case_id: case.into(),
        outcome: pb::ReplyOutcome::Supported as i32,
        text: "开发商已承诺三个月内办理不动产权证，住建局将督促落实。".into(),
        legal_basis: "《信访工作条例》第三十二条".into(),
        service: Some(pb::ServiceRecord {
            mode: pb::ServiceMode::Post as i32,
            served_at: Some(petition_e2e::timestamp(p.clock_now())),
            signed: true,
            refused: false,
            view: pb::PetitionerView::Agrees as i32,
        }),
        request_id: request_id.into(),
    };
    let answered = housing
        .submit_reply(reply(&registered[&1].case_id, "reply-1"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answered.state, pb::AssignmentState::Answered as i32);
    assert!(
        answered.served_at.is_some(),
        "service starts the review window (Art. 35)"
    );
    // A forwarded (转送) case owes no completion report.
    let report = |case: &str| pb::SubmitCompletionReportRequest {
        case_id: case.into(),
        text: "已办结".into(),
        request_id: String::new(),
    };
    assert_eq!(
        housing
            .submit_completion_report(report(&registered[&1].case_id))
            .await
            .unwrap_err()
            .code(),
        Code::FailedPrecondition
    );
    // The assigned (交办) group case: accept, reply, report.
    let mut expropriation = p.routing_as(&handler("pingcheng.expropriation")).await;
    let case2 = registered[&2].case_id.clone();
    // Two copies of one request sent at once (a client that retried before the first answer):
    // one acceptance, and both are answered with it.
    let accept2 = pb::AcceptCaseRequest {
        case_id: case2.clone(),
        request_id: "accept-2".into(),
    };
    let mut copy = expropriation.clone();
    let (first, second) = tokio::join!(
        expropriation.accept_case(accept2.clone()),
        copy.accept_case(accept2)
    );
    let (first, second) = (first.unwrap().into_inner(), second.unwrap().into_inner());
    assert_eq!(first.accepted_at, second.accepted_at);
    assert_eq!(first.state, pb::AssignmentState::Accepted as i32);
    expropriation.submit_reply(reply(&case2, "")).await.unwrap();
    let completed = expropriation
        .submit_completion_report(report(&case2))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(completed.state, pb::AssignmentState::Completed as i32);
    assert!(completed.completion_reported_at.is_some());
    // Transfer: the district HR bureau passes sample 12 up to the city bureau.
    let mut hrss_for_transfer = p.routing_as(&handler("pingcheng.hrss")).await;
    let moved = hrss_for_transfer
        .transfer_case(pb::TransferCaseRequest {
            case_id: registered[&12].case_id.clone(),
            organ: "datong.hrss".into(),
            reason: "pension records are kept by the city".into(),
            request_id: "transfer-12".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(moved.organ, "datong.hrss");
    assert_eq!(moved.history.last().unwrap().from_organ, "pingcheng.hrss");

    // Another organ may not accept it.
    let mut hrss = p.routing_as(&handler("pingcheng.hrss")).await;
    let err = hrss
        .accept_case(pb::AcceptCaseRequest {
            case_id: registered[&1].case_id.clone(),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);

    // HR & social security objects to sample 3; the bureau agrees and re-routes it.
    let objected = hrss
        .object_to_assignment(pb::ObjectToAssignmentRequest {
            case_id: registered[&3].case_id.clone(),
            reason: "the employer is a state-owned enterprise under city supervision".into(),
            request_id: "object-3".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(objected.state, pb::AssignmentState::Objected as i32);
    let mut bureau = p.routing_as(&clerk("pingcheng.bureau")).await;
    let triage = bureau
        .list_triage(pb::ListTriageRequest::default())
        .await
        .unwrap()
        .into_inner();
    let waiting: Vec<&str> = triage.items.iter().map(|i| i.case_id.as_str()).collect();
    assert!(
        waiting.contains(&registered[&8].case_id.as_str()),
        "{waiting:?}"
    );
    let resolved = bureau
        .resolve_objection(pb::ResolveObjectionRequest {
            case_id: registered[&3].case_id.clone(),
            agree: true,
            new_organ: "datong.hrss".into(),
            reason: "city-supervised employer".into(),
            request_id: "resolve-3".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resolved.organ, "datong.hrss");
    assert_eq!(
        resolved.state,
        pb::AssignmentState::AwaitingAcceptance as i32
    );
    // The triaged suggestion is routed by hand.
    let manual = bureau
        .route_manually(pb::RouteManuallyRequest {
            case_id: registered[&8].case_id.clone(),
            organ: "pingcheng.civil".into(),
            mode: pb::HandlingMode::Forward as i32,
            reason: "elderly-care subsidies are civil affairs".into(),
            request_id: "manual-8".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(manual.organ, "pingcheng.civil");
    assert!(manual.rule.contains("by hand"));
    // A stranger bureau may not route it.
    let mut yungang = p.routing_as(&clerk("yungang.bureau")).await;
    let err = yungang
        .route_manually(pb::RouteManuallyRequest {
            case_id: registered[&8].case_id.clone(),
            organ: "pingcheng.civil".into(),
            mode: pb::HandlingMode::Forward as i32,
            reason: "x".into(),
            request_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
}

/// Registers one petition at `when` and returns its routed assignment.
async fn one_routed_on(
    p: &Pipeline,
    when: chrono::DateTime<chrono::Utc>,
    petitioner_id: &str,
) -> pb::Assignment {
    p.clock.set(when);
    let s = samples().into_iter().find(|s| s.sample == 4).unwrap();
    let mut req = s.request();
    // A different petitioner each time, so the second is not a repeat of the first.
    req.petitioners[0].id_number = petitioner_id.into();
    req.received_at = Some(petition_e2e::timestamp(when));
    let channel = connect(p.intake.grpc_addr).await;
    let mut c = client(channel, &p.intake.token_keys, &clerk("pingcheng.bureau"));
    let r = c.register_petition(req).await.unwrap().into_inner();
    p.routed(&r.case_id).await
}

async fn objection_window_across_the_spring_festival(p: &Pipeline) {
    // Received and routed on Fri 2026-02-13. Working days after it: Sat 02-14 (make-up),
    // 02-24, 02-25, 02-26, 02-27 (day 5); the make-up Saturday 02-28 is day 6.
    let day5 = one_routed_on(p, beijing(2026, 2, 13, 10), "140213197909244249").await;
    let day6 = one_routed_on(p, beijing(2026, 2, 13, 11), "140213196012015359").await;
    assert_eq!(day5.organ, "pingcheng.finance");
    let mut finance = p.routing_as(&handler("pingcheng.finance")).await;
    let object = |case_id: &str| pb::ObjectToAssignmentRequest {
        case_id: case_id.into(),
        reason: "the fund was registered in another district".into(),
        request_id: String::new(),
    };
    p.clock.set(beijing(2026, 2, 27, 23));
    let ok = finance
        .object_to_assignment(object(&day5.case_id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ok.state, pb::AssignmentState::Objected as i32);
    p.clock.set(beijing(2026, 2, 28, 9));
    let err = finance
        .object_to_assignment(object(&day6.case_id))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert!(
        err.message().contains("Art. 23") && err.message().contains("2026-02-27"),
        "{}",
        err.message()
    );
}

#[tokio::test]
async fn pipeline_on_postgres_and_redis() {
    let p = require!(on_postgres_and_redis(beijing(2026, 3, 11, 12)));
    samples_end_where_expected(&p).await;
    p.stop().await;
}

#[tokio::test]
async fn pipeline_on_the_embedded_default() {
    let p = require!(embedded(beijing(2026, 3, 11, 12)));
    samples_end_where_expected(&p).await;
    p.stop().await;
}

#[tokio::test]
async fn objection_window_on_postgres_and_redis() {
    let p = require!(on_postgres_and_redis(beijing(2026, 2, 13, 10)));
    objection_window_across_the_spring_festival(&p).await;
    p.stop().await;
}

#[tokio::test]
async fn objection_window_on_the_embedded_default() {
    let p = require!(embedded(beijing(2026, 2, 13, 10)));
    objection_window_across_the_spring_festival(&p).await;
    p.stop().await;
}

#[tokio::test]
async fn override_rules_are_reloaded_without_a_restart() {
    petition_telemetry::init_for_tests();
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("routing-rules.toml");
    let write = |organ: &str| {
        std::fs::write(
            &rules,
            format!(
                "[[rule]]\nid = \"housing-to-{organ}\"\ncategory_prefix = \"01.01\"\norgan = \"{organ}\"\n"
            ),
        )
        .unwrap();
    };
    write("datong.housing");
    let clock = Arc::new(FixedClock::new(beijing(2026, 3, 11, 12)));
    let (i, mut r) = configs(
        &format!("sqlite://{}/intake.db", dir.path().display()),
        &format!("sqlite://{}/routing.db", dir.path().display()),
    );
    r.service.rules_file = Some(rules.clone());
    r.service.rules_poll = Duration::from_millis(50);
    let bus = InProcessBus::new();
    let routing = r.start(Some(bus.clone()), clock.clone()).await.unwrap();
    let intake = i.start(Some(bus), clock.clone()).await.unwrap();
    let p = Pipeline {
        intake,
        routing,
        clock,
        _db: None,
        _redis: None,
        _dir: Some(dir),
    };
    let register = |id: &'static str| {
        let p = &p;
        async move {
            let s = samples().into_iter().find(|s| s.sample == 1).unwrap();
            let mut req = s.request();
            req.petitioners[0].id_number = id.into();
            let channel = connect(p.intake.grpc_addr).await;
            let mut c = client(channel, &p.intake.token_keys, &clerk("pingcheng.bureau"));
            let r = c.register_petition(req).await.unwrap().into_inner();
            p.routed(&r.case_id).await
        }
    };
    let first = register("140213197909244249").await;
    assert_eq!(first.organ, "datong.housing");
    assert_eq!(first.rule, "override rule housing-to-datong.housing");

    // A broken file is refused and the old rules stay.
    std::fs::write(&rules, "[[rule]]\nid = \"bad\"\norgan = \"nowhere\"\n").unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = register("140213196012015359").await;
    assert_eq!(second.organ, "datong.housing");

    write("yungang.housing");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let third = register("140212199106306461").await;
    assert_eq!(third.organ, "yungang.housing", "{}", third.rule);
    p.stop().await;
}
