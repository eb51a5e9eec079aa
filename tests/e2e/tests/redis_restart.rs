//! Redis restarts under load — once with persistence (AOF, fsync per write) and once with none —
//! while intake and routing keep running on PostgreSQL. Afterwards every acknowledged petition
//! is routed, once, nothing is left pending, and no service was restarted; while Redis was
//! down, both services said NOT_SERVING.

use petition_auth::Role;
use petition_e2e::{admin_get, client, connect, load_request, who};
use petition_host::{HostConfig, Running};
use petition_intake::Intake;
use petition_routing::Routing;
use petition_testkit::{RedisServer, TestDatabase};
use sqlx::Connection;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::Mutex;
use tonic_health::pb::health_check_response::ServingStatus;

// The load routing was once found stranded under: 2,000 registrations, Redis killed a third of
// the way in.
const TARGET: usize = 2_000;
const KILL_AFTER: usize = 600;

fn config(service: &'static str, db: &TestDatabase, redis: &RedisServer) -> HostConfig {
    let mut c = HostConfig::new(service);
    c.listen = "127.0.0.1:0".parse().unwrap();
    c.admin_listen = Some("127.0.0.1:0".parse().unwrap());
    c.dev = true;
    c.database_url = Some(db.url.clone());
    c.redis_url = Some(redis.url());
    c.pg_max_connections = 8;
    c.relay.poll_interval = Duration::from_millis(100);
    c.consumer_min_idle = Duration::from_millis(500);
    c
}

async fn serving(r: &Running, service: &str) -> Option<ServingStatus> {
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", r.grpc_addr))
        .ok()?
        .connect()
        .await
        .ok()?;
    let status = tonic_health::pb::health_client::HealthClient::new(channel)
        .check(tonic_health::pb::HealthCheckRequest {
            service: service.into(),
        })
        .await
        .ok()?
        .into_inner()
        .status;
    ServingStatus::try_from(status).ok()
}

async fn count(db: &TestDatabase, sql: &str) -> i64 {
    let mut c = sqlx::PgConnection::connect(&db.url).await.unwrap();
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .fetch_one(&mut c)
        .await
        .unwrap()
}

async fn group_pending(redis: &RedisServer, stream: &str, group: &str) -> usize {
    let client = redis::Client::open(redis.url()).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let r: Result<redis::streams::StreamPendingReply, _> =
        redis::AsyncCommands::xpending(&mut c, stream, group).await;
    r.map(|p| p.count()).unwrap_or(usize::MAX)
}

async fn survive_a_restart(persistent: bool) {
    petition_telemetry::init_for_tests();
    let Some(db) = TestDatabase::create().await else {
        return;
    };
    let Some(mut redis) = RedisServer::start(persistent) else {
        return;
    };
    // Two services, each on its own host, as two processes would run.
    let routing = petition_host::start(
        config("routing", &db, &redis),
        None,
        None,
        &[&Routing::default()],
    )
    .await
    .unwrap();
    let intake = petition_host::start(
        config("intake", &db, &redis),
        None,
        None,
        &[&Intake::default()],
    )
    .await
    .unwrap();

    // The load: four clients registering until TARGET petitions are acknowledged.
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let next = Arc::new(AtomicU64::new(0));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (acked, next) = (acked.clone(), next.clone());
            let (addr, keys) = (intake.grpc_addr, intake.token_keys.clone());
            tokio::spawn(async move {
                let mut c = client(
                    connect(addr).await,
                    &keys,
                    &who("pingcheng.bureau", Role::Clerk),
                );
                loop {
                    let n = next.fetch_add(1, Ordering::SeqCst);
                    if n >= TARGET as u64 {
                        return;
                    }
                    let r = c
                        .register_petition(load_request(n))
                        .await
                        .expect("intake keeps acknowledging");
                    acked.lock().await.push(r.into_inner().case_id);
                }
            })
        })
        .collect();

    while acked.lock().await.len() < KILL_AFTER {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    redis.kill();
    // While Redis is down, both services must say so.
    let (mut intake_down, mut routing_down) = (false, false);
    for _ in 0..300 {
        intake_down |= serving(&intake, petition_intake::SERVICE_NAME).await
            == Some(ServingStatus::NotServing);
        routing_down |= serving(&routing, petition_routing::SERVICE_NAME).await
            == Some(ServingStatus::NotServing);
        if intake_down && routing_down {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(intake_down, "intake said NOT_SERVING while Redis was down");
    assert!(
        routing_down,
        "routing said NOT_SERVING while Redis was down"
    );
    let acked_while_down = acked.lock().await.len();
    redis.restart();
    for c in clients {
        c.await.unwrap();
    }
    let acked = acked.lock().await.clone();
    assert_eq!(acked.len(), TARGET);
    assert!(acked_while_down >= KILL_AFTER);

    // Every acknowledged petition is routed, once, and nothing is left anywhere.
    let done = Arc::new(AtomicBool::new(false));
    // (at most a minute: room for a slow machine, not a wait the test relies on)
    for _ in 0..1200 {
        let routed = count(&db, "SELECT count(*) FROM routing.assignments").await;
        let routed_events = count(&db, "SELECT count(*) FROM routing.outbox").await;
        let unpublished = count(
            &db,
            "SELECT (SELECT count(*) FROM intake.outbox WHERE published_at IS NULL) + \
             (SELECT count(*) FROM routing.outbox WHERE published_at IS NULL)",
        )
        .await;
        let statuses = count(
            &db,
            "SELECT count(*) FROM intake.cases WHERE status = 'registered' AND holder IS NULL",
        )
        .await;
        let pending = group_pending(&redis, "petition.intake.v1", "routing").await
            + group_pending(&redis, "petition.routing.v1", "intake").await;
        if routed == TARGET as i64 && unpublished == 0 && pending == 0 && statuses == 0 {
            assert_eq!(
                routed_events, TARGET as i64,
                "one routing, one event, per case"
            );
            done.store(true, Ordering::SeqCst);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        done.load(Ordering::SeqCst),
        "not every acknowledged petition was routed: {} routed of {TARGET}, {} unpublished",
        count(&db, "SELECT count(*) FROM routing.assignments").await,
        count(
            &db,
            "SELECT count(*) FROM intake.outbox WHERE published_at IS NULL"
        )
        .await,
    );
    let ids = count(
        &db,
        "SELECT count(DISTINCT case_id) FROM routing.assignments",
    )
    .await;
    assert_eq!(ids, TARGET as i64);
    assert_eq!(
        serving(&intake, petition_intake::SERVICE_NAME).await,
        Some(ServingStatus::Serving),
        "ready again"
    );
    assert_eq!(
        serving(&routing, petition_routing::SERVICE_NAME).await,
        Some(ServingStatus::Serving)
    );
    assert_eq!(
        admin_get(intake.admin_addr.unwrap(), "/readyz").await.0,
        200
    );
    let (_, metrics) = admin_get(routing.admin_addr.unwrap(), "/metrics").await;
    for series in [
        "outbox_backlog{service=\"routing\"}",
        "outbox_oldest_age_seconds{service=\"intake\"}",
        "stream_group_pending{stream=\"petition.intake.v1\",group=\"routing\"}",
        "stream_group_lag{stream=\"petition.intake.v1\",group=\"routing\"}",
        "events_consumer_errors_total{group=\"routing\"}",
        "outbox_relay_errors_total{service=\"intake\"}",
    ] {
        assert!(metrics.contains(series), "{series} missing from /metrics");
    }
    intake.shutdown().await;
    routing.shutdown().await;
}

#[tokio::test]
async fn redis_restarts_with_persistence() {
    survive_a_restart(true).await;
}

#[tokio::test]
async fn redis_restarts_without_persistence() {
    survive_a_restart(false).await;
}
