//! Down and up between a city and a district deployment (DESIGN §5b, ADR 0016): cases/s and
//! p50/p99 from the city's routing of a case to a district department to the city seeing that
//! department's acceptance.
//!
//!   cargo run --release -p petition-e2e --bin federation-exchange -- \
//!     --database-url postgres://postgres@127.0.0.1:5432/postgres --rate 10,25,50,100 --seconds 20
//!
//! Two deployments run in this process, each with its own fresh PostgreSQL database (created on
//! the server `--database-url` names, dropped at the end) and its own Redis key space: intake,
//! routing and supervision each, the city's peers file naming the district. A clerk at the city
//! registers visits about Pingcheng housing at a steady rate; the city routes each to the
//! district's housing bureau, its intake registers it at the district's, the district routes it
//! there, and a handler at the district accepts whatever waits in the inbox as soon as it is
//! listed (a loop asking every 5 ms); the acceptance travels back up through the district's feed
//! and the city's routing applies it. Both ends are read off the city's own routing stream in
//! Redis: when `petition.routed` and then `case.accepted` of each case appear there.

use anyhow::Context;
use clap::Parser;
use hdrhistogram::Histogram;
use petition_auth::{Principal, Role, TokenKeys};
use petition_domain::SystemClock;
use petition_e2e::{bearer, load_request};
use petition_host::HostConfig;
use petition_proto::v1 as pb;
use prost::Message;
use sqlx::Connection;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    /// a PostgreSQL server (any database on it): two fresh databases are made there
    #[arg(long)]
    database_url: String,
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    redis_url: String,
    /// registrations per second at the city, one window each
    #[arg(long, value_delimiter = ',', default_value = "10,25,50")]
    rate: Vec<u64>,
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// seconds of load before each window, not counted
    #[arg(long, default_value_t = 3)]
    warmup: u64,
}

struct Deployment {
    running: petition_host::Running,
    db: String,
}

async fn create_db(server: &str, name: &str) -> anyhow::Result<String> {
    let mut admin = sqlx::PgConnection::connect(server).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await?;
    let (base, _) = server
        .rsplit_once('/')
        .context("--database-url names no database")?;
    Ok(format!("{base}/{name}"))
}

async fn deployment(
    a: &Args,
    name: &str,
    prefix: &str,
    peers: &std::path::Path,
) -> anyhow::Result<Deployment> {
    let db = format!("petition_bench_{name}_{}", std::process::id());
    let mut cfg = HostConfig::new("suite");
    cfg.listen = "127.0.0.1:0".parse()?;
    cfg.dev = true;
    cfg.rate_limit_per_minute = 0;
    cfg.database_url = Some(create_db(&a.database_url, &db).await?);
    cfg.redis_url = Some(a.redis_url.clone());
    cfg.stream_prefix = prefix.to_owned();
    let intake = petition_intake::Intake {
        peers: Some(peers.to_owned()),
        exchange_retry_max: Duration::from_secs(1),
        ..petition_intake::Intake::default()
    };
    let running = petition_host::start(
        cfg,
        None,
        Some(Arc::new(SystemClock)),
        &[
            &petition_supervision::Supervision::default(),
            &petition_routing::Routing::default(),
            &intake,
        ],
    )
    .await?;
    Ok(Deployment { running, db })
}

fn who(org: &str, role: Role) -> Principal {
    Principal {
        subject: format!("bench@{org}"),
        org: org.into(),
        role,
        scopes: vec![],
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let dir = tempfile::tempdir()?;
    let id = std::process::id();
    let (city_prefix, district_prefix) = (format!("fedcity{id}:"), format!("feddistrict{id}:"));
    let district_peers = dir.path().join("district.toml");
    std::fs::write(
        &district_peers,
        "name = \"pingcheng\"\nregions = [\"140213\"]\nupstreams = [\"datong\"]\n",
    )?;
    let district = deployment(&a, "district", &district_prefix, &district_peers).await?;
    let token = TokenKeys::dev().issue(
        &Principal {
            subject: "datong".into(),
            org: "datong.bureau".into(),
            role: Role::Upstream,
            scopes: vec![],
        },
        chrono::Duration::hours(12),
    );
    let city_peers = dir.path().join("city.toml");
    std::fs::write(
        &city_peers,
        format!(
            "name = \"datong\"\nregions = [\"140200\"]\n[[peer]]\nname = \"pingcheng\"\n\
             address = \"http://{}\"\nregions = [\"140213\"]\ntoken = \"{token}\"\n",
            district.running.grpc_addr
        ),
    )?;
    let city = deployment(&a, "city", &city_prefix, &city_peers).await?;

    // The city's routing stream: when each case was routed there and when the district's
    // acceptance was applied to the city's copy.
    let routed: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let accepted: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let redis = redis::Client::open(a.redis_url.as_str())?;
    let mut conn = redis
        .get_multiplexed_async_connection_with_config(
            &redis::AsyncConnectionConfig::new()
                .set_response_timeout(Some(Duration::from_secs(10))),
        )
        .await?;
    let key = format!("{city_prefix}petition.routing.v1");
    let watcher = {
        let (routed, accepted, key) = (routed.clone(), accepted.clone(), key.clone());
        tokio::spawn(async move {
            let mut last = "0-0".to_owned();
            loop {
                let opts = redis::streams::StreamReadOptions::default()
                    .block(1000)
                    .count(500);
                let Ok(reply): redis::RedisResult<redis::streams::StreamReadReply> =
                    redis::AsyncCommands::xread_options(&mut conn, &[&key], &[&last], &opts).await
                else {
                    continue;
                };
                let now = Instant::now();
                for e in reply.keys.into_iter().flat_map(|k| k.ids) {
                    last = e.id.clone();
                    let Some(env) = e
                        .get::<Vec<u8>>("event")
                        .and_then(|b| pb::EventEnvelope::decode(&b[..]).ok())
                    else {
                        continue;
                    };
                    let seen = match env.payload {
                        Some(pb::event_envelope::Payload::PetitionRouted(_)) => &routed,
                        Some(pb::event_envelope::Payload::CaseAccepted(_)) => &accepted,
                        _ => continue,
                    };
                    seen.lock().unwrap().entry(env.case_id).or_insert(now);
                }
            }
        })
    };

    // The district's handler accepts what waits, as soon as it is listed.
    let district_channel =
        tonic::transport::Channel::from_shared(format!("http://{}", district.running.grpc_addr))?
            .connect()
            .await?;
    let handler = who("pingcheng.housing", Role::Handler);
    let mut inbox = pb::routing_service_client::RoutingServiceClient::with_interceptor(
        district_channel,
        bearer(&district.running.token_keys, &handler),
    );
    let acceptor = tokio::spawn(async move {
        loop {
            let waiting = match inbox
                .list_inbox(pb::ListInboxRequest {
                    bucket: pb::InboxBucket::ToClaim as i32,
                    page_size: 500,
                    ..Default::default()
                })
                .await
            {
                Ok(r) => r.into_inner().items,
                Err(_) => Vec::new(),
            };
            if waiting.is_empty() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            for w in waiting {
                let _ = inbox
                    .accept_case(pb::AcceptCaseRequest {
                        case_id: w.case_id.clone(),
                        request_id: format!("bench-{}", w.case_id),
                    })
                    .await;
            }
        }
    });

    let city_channel =
        tonic::transport::Channel::from_shared(format!("http://{}", city.running.grpc_addr))?
            .connect()
            .await?;
    let clerk = pb::intake_service_client::IntakeServiceClient::with_interceptor(
        city_channel,
        bearer(&city.running.token_keys, &who("datong.bureau", Role::Clerk)),
    );
    let mut serial = (chrono::Utc::now().timestamp_millis() as u64 % 1_000_000) * 1_000_000;
    println!(
        "down and up, city → district → city, {} s windows after {} s of warm-up",
        a.seconds, a.warmup
    );
    for &rate in &a.rate {
        let warm = rate * a.warmup;
        let total = warm + rate * a.seconds;
        let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
        let counted: Arc<Mutex<Vec<String>>> = Arc::default();
        let mut calls = Vec::new();
        let started = Instant::now();
        for n in 0..total {
            tick.tick().await;
            serial += 1;
            let mut req = load_request(serial);
            req.received_by = "datong.bureau".into();
            req.category = "01.01".into();
            let (mut c, counted) = (clerk.clone(), counted.clone());
            calls.push(tokio::spawn(async move {
                if let Ok(r) = c.register_petition(req).await
                    && n >= warm
                {
                    counted.lock().unwrap().push(r.into_inner().case_id);
                }
            }));
        }
        for c in calls {
            let _ = c.await;
        }
        let offered = started.elapsed();
        // Drain: every counted case accepted at the city, or 30 s.
        let counted = counted.lock().unwrap().clone();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let all_back = {
                let seen = accepted.lock().unwrap();
                counted.iter().all(|c| seen.contains_key(c))
            };
            if all_back {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let (routed, accepted) = (routed.lock().unwrap(), accepted.lock().unwrap());
        let mut hist = Histogram::<u64>::new(3)?;
        let mut missing = 0;
        let mut last = None::<Instant>;
        for case in &counted {
            match (routed.get(case), accepted.get(case)) {
                (Some(r), Some(done)) => {
                    hist.record(done.saturating_duration_since(*r).as_micros() as u64)?;
                    last = Some(last.map_or(*done, |l: Instant| l.max(*done)));
                }
                _ => missing += 1,
            }
        }
        // Throughput: the counted cases over the time from the first counted registration to
        // the last acceptance seen at the city.
        let window = last
            .map(|l| l.saturating_duration_since(started + Duration::from_secs(a.warmup)))
            .unwrap_or(offered);
        println!(
            "{rate}/s offered: {} cases, {:.1} cases/s down and up, routed → accepted seen at the city p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms, not back within 30 s: {missing}",
            counted.len(),
            (counted.len() - missing) as f64 / window.as_secs_f64().max(0.001),
            hist.value_at_quantile(0.5) as f64 / 1000.0,
            hist.value_at_quantile(0.99) as f64 / 1000.0,
            hist.max() as f64 / 1000.0,
        );
    }
    watcher.abort();
    acceptor.abort();
    println!(
        "resident memory of the process (both deployments and this load): {}",
        petition_e2e::resident_memory()
    );
    let mut conn = redis.get_multiplexed_async_connection().await?;
    for prefix in [&city_prefix, &district_prefix] {
        for s in ["intake", "routing", "supervision"] {
            let _: () = redis::cmd("DEL")
                .arg(format!("{prefix}petition.{s}.v1"))
                .query_async(&mut conn)
                .await?;
        }
    }
    let dbs = [city.db.clone(), district.db.clone()];
    city.running.shutdown().await;
    district.running.shutdown().await;
    let mut admin = sqlx::PgConnection::connect(&a.database_url).await?;
    for db in dbs {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {db} WITH (FORCE)"
        )))
        .execute(&mut admin)
        .await?;
    }
    Ok(())
}
