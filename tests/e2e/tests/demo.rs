//! The demo plays weeks of petitions through the real APIs on simulated time, on the embedded
//! default and on PostgreSQL + Redis: cases are registered, claimed, answered, rated and
//! reviewed, supervision urges the late ones, and analytics counts every registration.

use chrono::{Duration, Utc};
use petition_auth::Role;
use petition_e2e::who;
use petition_proto::v1 as pb;

async fn plays_weeks_of_petitions(mut cfg: petition_host::HostConfig) {
    petition_telemetry::init_for_tests();
    cfg.listen = "127.0.0.1:0".parse().unwrap();
    cfg.dev = true;
    let days = 75;
    cfg.dev_clock = Some(Utc::now() - Duration::days(days));
    let reference = petition_grpc::reference::Reference::load(None).unwrap();
    let running = petition_host::start(
        cfg,
        None,
        None,
        &[
            &petition_analytics::Analytics::default(),
            &petition_supervision::Supervision {
                max_sleep: std::time::Duration::from_millis(20),
                ..Default::default()
            },
            &petition_routing::Routing::default(),
            &petition_intake::Intake::default(),
        ],
    )
    .await
    .expect("the suite starts");
    let clock = running.simulated_clock().cloned().unwrap();
    let s = petition_demo::run(
        running.grpc_addr,
        &running.token_keys,
        &clock,
        &reference.tree,
        petition_demo::Demo {
            days: days as u32,
            per_day: 4,
            seed: 7,
        },
    )
    .await
    .expect("the demo plays");
    assert!(s.registered >= 4 * 50, "{s:?}");
    assert!(
        s.repeats > 0 && s.accepted > 0 && s.accepted_late > 0,
        "{s:?}"
    );
    assert!(s.answered > 0 && s.rated > 0, "{s:?}");
    assert!(s.answered <= s.accepted && s.rated <= s.answered, "{s:?}");
    assert_eq!(s.refused, 0, "every call was one the law allows: {s:?}");
    let told = petition_demo::told(&s, running.grpc_addr);
    assert!(told.contains("petition situation"), "{told}");

    // analytics saw every registration, and the late claims were urged
    let leader = who("shanxi.bureau", Role::Admin);
    let mut figures = pb::analytics_service_client::AnalyticsServiceClient::with_interceptor(
        petition_e2e::connect(running.grpc_addr).await,
        petition_e2e::bearer(&running.token_keys, &leader),
    );
    let first = (Utc::now() - Duration::days(days) + Duration::hours(8)).format("%Y-%m");
    let last = (Utc::now() + Duration::hours(8)).format("%Y-%m");
    let mut cases = 0;
    for _ in 0..400 {
        cases = figures
            .get_situation(pb::SituationRequest {
                period: format!("{first}..{last}"),
                organ: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
            .cases
            .unwrap_or_default()
            .count;
        if cases == s.registered {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(cases, s.registered);
    let mut notices = pb::supervision_service_client::SupervisionServiceClient::with_interceptor(
        petition_e2e::connect(running.grpc_addr).await,
        petition_e2e::bearer(&running.token_keys, &leader),
    );
    let mut urged = 0;
    for organ in petition_demo::working_organs(&reference.tree) {
        urged += notices
            .list_notices(pb::ListNoticesRequest {
                organ,
                page_size: 500,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .notices
            .iter()
            .filter(|n| n.kind == pb::NoticeKind::Urging as i32)
            .count();
    }
    assert!(urged > 0, "claims left past 15 days were urged");
    running.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_on_the_embedded_default() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = petition_host::HostConfig::new("suite");
    cfg.data_dir = dir.path().to_owned();
    plays_weeks_of_petitions(cfg).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_on_postgres_and_redis() {
    let Some(db) = petition_testkit::TestDatabase::create().await else {
        return;
    };
    let Some(redis) = petition_testkit::TestRedis::create().await else {
        return;
    };
    let mut cfg = petition_host::HostConfig::new("suite");
    cfg.database_url = Some(db.url.clone());
    cfg.redis_url = Some(redis.url.clone());
    cfg.stream_prefix = redis.prefix.clone();
    cfg.pg_max_connections = 4;
    plays_weeks_of_petitions(cfg).await;
}
