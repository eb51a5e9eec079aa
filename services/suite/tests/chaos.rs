//! Chaos under load: the four services as separate processes on PostgreSQL and a Redis of the
//! test's own, a steady load of registrations, and meanwhile each service killed (SIGKILL) and
//! started again in turn, then Redis killed and started again. Afterwards every acknowledged
//! petition is stored, every service has every case, every event was applied once in effect
//! (no case routed twice, no step or timeline entry doubled), nothing is left pending in any
//! consumer group, and the metrics the alerts read show what happened.

use petition_auth::Role;
use petition_testkit::grpc::{intake_as, load_request, who};
use petition_testkit::redis_server::RedisServer;
use petition_testkit::{ServiceProcess, TestDatabase, count, require};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SERVICES: [&str; 4] = ["intake", "routing", "supervision", "analytics"];

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port()
}

/// One service's binary and the ports it keeps across restarts, so that its callers and
/// Prometheus find it again.
struct Service {
    binary: PathBuf,
    grpc: SocketAddr,
    admin: SocketAddr,
    db: String,
    redis: String,
}

impl Service {
    fn start(&self) -> ServiceProcess {
        let (grpc, admin) = (self.grpc.to_string(), self.admin.to_string());
        ServiceProcess::spawn(
            &self.binary.display().to_string(),
            &[
                "--dev",
                "--log-format",
                "json",
                "--listen",
                &grpc,
                "--admin-listen",
                &admin,
                "--database-url",
                &self.db,
                "--redis-url",
                &self.redis,
                // a killed consumer's events are taken over within a second, not thirty
                "--consumer-min-idle-secs",
                "1",
            ],
            &[],
        )
    }
}

/// The sum of a metric's series on a service's admin port; `None` when it has none or the port
/// does not answer.
async fn metric(admin: SocketAddr, name: &str) -> Option<f64> {
    let (status, body) = petition_e2e::admin_get(admin, "/metrics").await;
    if status != 200 {
        return None;
    }
    let values: Vec<f64> = body
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.split(['{', ' ']).next() == Some(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .collect();
    (!values.is_empty()).then(|| values.iter().sum())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_each_service_and_redis_under_load_loses_nothing_and_applies_everything_once() {
    let db = require!(TestDatabase::create());
    let Some(mut redis) = RedisServer::start(true) else {
        return;
    };
    let bin_dir: PathBuf = Path::new(env!("CARGO_BIN_EXE_petition-suite"))
        .parent()
        .unwrap()
        .to_owned();
    let services: Vec<Service> = SERVICES
        .iter()
        .map(|name| Service {
            binary: bin_dir.join(format!("petition-{name}")),
            grpc: SocketAddr::from(([127, 0, 0, 1], free_port())),
            admin: SocketAddr::from(([127, 0, 0, 1], free_port())),
            db: db.url.clone(),
            redis: redis.url(),
        })
        .collect();
    let mut running: Vec<ServiceProcess> = services.iter().map(Service::start).collect();
    let intake = services[0].grpc;

    let load = Load::start(intake, 0).await;
    let pause = |ms| tokio::time::sleep(Duration::from_millis(ms));

    // Each service in turn, killed outright and started again on its ports.
    pause(1500).await;
    for (i, service) in services.iter().enumerate() {
        running[i].kill();
        pause(700).await;
        running[i] = tokio::task::block_in_place(|| service.start());
        pause(1200).await;
    }
    // Then Redis. While it is away the relays fail and the outboxes fill, which the metrics
    // the alerts read must show.
    redis.kill();
    pause(500).await;
    // read until intake shows it (its relay measures again each time it retries)
    let (mut not_ready, mut backlog) = (None, None);
    for _ in 0..100 {
        not_ready = metric(services[0].admin, "service_ready").await;
        backlog = metric(services[0].admin, "outbox_backlog").await;
        if not_ready == Some(0.0) && backlog.is_some_and(|b| b > 0.0) {
            break;
        }
        pause(100).await;
    }
    tokio::task::block_in_place(|| redis.restart());
    pause(2000).await;
    let (acked, sent, failed) = load.stop().await;
    assert!(acked.len() > 100, "{} acknowledged of {sent}", acked.len());
    assert!(failed > 0, "the kills were felt by the callers");
    assert_eq!(
        not_ready,
        Some(0.0),
        "intake was not ready while Redis was away"
    );
    assert!(
        backlog.is_some_and(|b| b > 0.0),
        "intake's outbox filled while Redis was away: {backlog:?}"
    );

    // Every acknowledged petition is stored.
    assert_eq!(
        stored(&db, &acked).await,
        acked.len(),
        "every acknowledged petition is stored"
    );

    // Every service comes to hold every case intake holds (some committed without their answer
    // reaching the caller), and nothing is left for anyone to do.
    let registered = count(&db.url, "SELECT count(*) FROM intake.cases").await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut now = vec![
            count(&db.url, "SELECT count(*) FROM routing.assignments").await,
            count(&db.url, "SELECT count(*) FROM supervision.cases").await,
            count(
                &db.url,
                "SELECT count(*) FROM analytics.cases WHERE registered = 1",
            )
            .await,
            // routed steps back in intake
            count(
                &db.url,
                "SELECT count(DISTINCT case_id) FROM intake.case_steps WHERE kind = 'routed'",
            )
            .await,
        ];
        for schema in SERVICES {
            now.push(
                count(
                    &db.url,
                    &format!("SELECT count(*) FROM {schema}.outbox WHERE published_at IS NULL"),
                )
                .await,
            );
        }
        let pending = pending(&redis.url()).await;
        now.push(pending);
        let want: Vec<i64> = [vec![registered; 4], vec![0; 5]].concat();
        if now == want {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not settled within 60 s: [routing, supervision, analytics, routed steps, unpublished × 4, pending] = {now:?}, want {want:?}"
        );
        pause(250).await;
    }

    // Once in effect: routing decided each case once (one routed event each), and no step in
    // intake or entry in supervision's timeline was written twice for a case.
    let routed_events = count(
        &db.url,
        "SELECT count(*) FROM routing.outbox WHERE stream = 'petition.routing.v1'",
    )
    .await;
    assert_eq!(routed_events, registered, "one routing decision per case");
    for (what, sql) in [
        (
            "intake steps",
            "SELECT count(*) FROM (SELECT case_id, kind FROM intake.case_steps \
             GROUP BY case_id, kind HAVING count(*) > 1) d",
        ),
        (
            "supervision timeline",
            "SELECT count(*) FROM (SELECT case_id, kind FROM supervision.timeline \
             GROUP BY case_id, kind HAVING count(*) > 1) d",
        ),
    ] {
        assert_eq!(count(&db.url, sql).await, 0, "{what} doubled");
    }

    // The metrics behind PetitionRelayErrors and PetitionConsumerErrors saw the Redis outage in
    // the processes that lived through it.
    let relay_errors = metric(services[0].admin, "outbox_relay_errors_total")
        .await
        .unwrap_or_default();
    let consumer_errors = metric(services[1].admin, "events_consumer_errors_total")
        .await
        .unwrap_or_default();
    assert!(relay_errors > 0.0, "intake's relay errors: {relay_errors}");
    assert!(
        consumer_errors > 0.0,
        "routing's consumer errors: {consumer_errors}"
    );
    println!(
        "chaos: {sent} sent, {} acknowledged, {failed} failed, {registered} stored; relay errors {relay_errors}, consumer errors {consumer_errors}",
        acked.len()
    );

    // SIGTERM to intake in the middle of a load: it answers what it has begun and refuses the
    // rest; whatever it acknowledged is stored.
    let load = Load::start(intake, 10_000_000).await;
    pause(1000).await;
    tokio::task::block_in_place(|| {
        running[0].terminate();
        running[0].expect_clean_exit();
    });
    let (acked, sent, _) = load.stop().await;
    assert!(
        !acked.is_empty() && (acked.len() as u64) < sent,
        "{} of {sent}",
        acked.len()
    );
    assert_eq!(
        stored(&db, &acked).await,
        acked.len(),
        "nothing acknowledged is lost to SIGTERM"
    );
    println!(
        "sigterm under load: {sent} sent, {} acknowledged, all stored",
        acked.len()
    );
    for mut p in running.into_iter().skip(1) {
        p.terminate();
        p.expect_clean_exit();
    }
}

/// Four clerks registering back to back; a call that errs was not acknowledged.
struct Load {
    acked: Arc<Mutex<BTreeSet<String>>>,
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    clients: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    async fn start(intake: SocketAddr, first: u64) -> Self {
        let mut load = Load {
            acked: Arc::default(),
            stop: Arc::default(),
            sent: Arc::default(),
            failed: Arc::default(),
            clients: Vec::new(),
        };
        for c in 0..4u64 {
            let (acked, stop, sent, failed) = (
                load.acked.clone(),
                load.stop.clone(),
                load.sent.clone(),
                load.failed.clone(),
            );
            let mut client = intake_as(intake, &who("pingcheng.bureau", Role::Clerk)).await;
            load.clients.push(tokio::spawn(async move {
                let mut n = first + c * 1_000_000;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    sent.fetch_add(1, Ordering::Relaxed);
                    match client.register_petition(load_request(n)).await {
                        Ok(r) => {
                            acked.lock().unwrap().insert(r.into_inner().case_id);
                        }
                        Err(_) => {
                            failed.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                }
            }));
        }
        load
    }

    /// Stops it: the acknowledged case ids, how many calls were sent and how many failed.
    async fn stop(self) -> (Vec<String>, u64, u64) {
        self.stop.store(true, Ordering::Relaxed);
        for c in self.clients {
            c.await.unwrap();
        }
        let acked = self.acked.lock().unwrap().iter().cloned().collect();
        (
            acked,
            self.sent.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }
}

async fn stored(db: &TestDatabase, ids: &[String]) -> usize {
    let ids = ids
        .iter()
        .map(|id| format!("'{id}'"))
        .collect::<Vec<_>>()
        .join(",");
    count(
        &db.url,
        &format!("SELECT count(*) FROM intake.cases WHERE id IN ({ids})"),
    )
    .await as usize
}

/// Entries not yet done by a consumer group, over every stream: delivered and unacknowledged,
/// not yet delivered, or set aside as dead letters.
async fn pending(url: &str) -> i64 {
    let client = redis::Client::open(url).unwrap();
    let Ok(mut c) = client.get_multiplexed_async_connection().await else {
        return -1;
    };
    let mut total = 0;
    for stream in [
        "petition.intake.v1",
        "petition.routing.v1",
        "petition.supervision.v1",
    ] {
        // Every stream exists and is read by its groups by now: a missing one is no zero.
        let groups: redis::streams::StreamInfoGroupsReply =
            match redis::AsyncCommands::xinfo_groups(&mut c, stream).await {
                Ok(g) => g,
                Err(_) => return -1,
            };
        if groups.groups.is_empty() {
            return -1;
        }
        // pending, and what no member has been given yet (lag), and what was set aside
        total += groups
            .groups
            .iter()
            .map(|g| g.pending as i64 + g.lag.map_or(1, |l| l as i64))
            .sum::<i64>();
        let dead: i64 = redis::AsyncCommands::xlen(&mut c, format!("{stream}.dead"))
            .await
            .unwrap_or(-1);
        total += dead;
    }
    total
}
