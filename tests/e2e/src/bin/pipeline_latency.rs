//! Pipeline latency: registered → routed → clock started, at a steady registration rate, with
//! intake, routing and supervision running on PostgreSQL + Redis. The services run in this
//! process (release build); latency is measured from the RegisterPetition call to the moment
//! the `petition.routed` event is read from Redis, and to the moment supervision has committed
//! the receiving organ's clock (the 15-day notice, Art. 23 ¶3): its consumer acknowledges the
//! routed event only after that commit, so the watcher asks Redis every 2 ms which routed
//! entries the `supervision` group has acknowledged (delivered, and no longer pending). That
//! figure is up to 2 ms late, and costs the pipeline two cheap Redis calls per tick instead of
//! a database query.
//!
//!   cargo run --release -p petition-e2e --bin pipeline-latency -- \
//!     --database-url postgres://postgres@127.0.0.1:5432/<fresh db> --rate 100 --seconds 20
//!
//! The first `--warmup` seconds (3) of the same load are not counted.

use anyhow::Context;
use clap::Parser;
use hdrhistogram::Histogram;
use petition_auth::{Principal, Role};
use petition_domain::SystemClock;
use petition_e2e::{bearer, load_request};
use petition_host::HostConfig;
use petition_intake::Intake;
use petition_proto::v1 as pb;
use petition_routing::Routing;
use petition_supervision::Supervision;
use prost::Message;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    #[arg(long)]
    database_url: String,
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    redis_url: String,
    /// registrations per second
    #[arg(long, default_value_t = 100)]
    rate: u64,
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// seconds of the same load before the measured ones, not counted: a cold process opens
    /// its database connections and fills its statement caches in the first second
    #[arg(long, default_value_t = 3)]
    warmup: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let prefix = format!("latency{}:", std::process::id());
    // Both services on one host, as the suite runs them.
    let mut cfg = HostConfig::new("suite");
    cfg.listen = "127.0.0.1:0".parse()?;
    cfg.dev = true;
    cfg.database_url = Some(a.database_url.clone());
    cfg.redis_url = Some(a.redis_url.clone());
    cfg.stream_prefix = prefix.clone();
    let intake = petition_host::start(
        cfg,
        None,
        Some(Arc::new(SystemClock)),
        &[
            &Supervision::default(),
            &Routing::default(),
            &Intake::default(),
        ],
    )
    .await?;

    // Watch the routing stream: when each case's routed event appears, and under which entry.
    let routed: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let entries: Arc<Mutex<BTreeMap<(u64, u64), String>>> = Arc::default();
    let client = redis::Client::open(a.redis_url.as_str())?;
    let cfg =
        redis::AsyncConnectionConfig::new().set_response_timeout(Some(Duration::from_secs(10)));
    // Its own connection: a blocking read holds up whatever else shares one.
    let mut conn = client
        .get_multiplexed_async_connection_with_config(&cfg)
        .await?;
    let mut poll_conn = client.get_multiplexed_async_connection().await?;
    let key = format!("{prefix}petition.routing.v1");
    let watcher = {
        let (routed, entries) = (routed.clone(), entries.clone());
        let key = key.clone();
        tokio::spawn(async move {
            let mut last = "0-0".to_owned();
            loop {
                let opts = redis::streams::StreamReadOptions::default()
                    .block(1000)
                    .count(500);
                let reply: redis::streams::StreamReadReply =
                    match redis::AsyncCommands::xread_options(&mut conn, &[&key], &[&last], &opts)
                        .await
                    {
                        Ok(r) => r,
                        Err(_) => continue,
                    };
                let now = Instant::now();
                for k in reply.keys {
                    for e in k.ids {
                        last = e.id.clone();
                        if let Some(bytes) = e.get::<Vec<u8>>("event")
                            && let Ok(env) = pb::EventEnvelope::decode(&bytes[..])
                        {
                            if let Some(id) = entry_id(&e.id) {
                                entries.lock().unwrap().insert(id, env.case_id.clone());
                            }
                            routed.lock().unwrap().insert(env.case_id, now);
                        }
                    }
                }
            }
        })
    };

    // Watch supervision's acknowledgments of the routed entries the watcher above saw.
    let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let started: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let clock_watcher = {
        let (entries, started, key) = (entries.clone(), started.clone(), key.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(2));
            loop {
                tick.tick().await;
                let Ok(groups) = redis::AsyncCommands::xinfo_groups::<
                    _,
                    redis::streams::StreamInfoGroupsReply,
                >(&mut poll_conn, &key)
                .await
                else {
                    continue;
                };
                let Some(delivered) = groups
                    .groups
                    .iter()
                    .find(|g| g.name == petition_events::group::SUPERVISION)
                    .and_then(|g| entry_id(&g.last_delivered_id))
                else {
                    continue;
                };
                let Ok(pending) = redis::AsyncCommands::xpending_count::<
                    _,
                    _,
                    _,
                    _,
                    _,
                    redis::streams::StreamPendingCountReply,
                >(
                    &mut poll_conn,
                    &key,
                    petition_events::group::SUPERVISION,
                    "-",
                    "+",
                    10_000,
                )
                .await
                else {
                    continue;
                };
                let pending: std::collections::HashSet<(u64, u64)> =
                    pending.ids.iter().filter_map(|p| entry_id(&p.id)).collect();
                let now = Instant::now();
                let mut entries = entries.lock().unwrap();
                let acked: Vec<(u64, u64)> = entries
                    .range(..=delivered)
                    .map(|(id, _)| *id)
                    .filter(|id| !pending.contains(id))
                    .collect();
                let mut seen = started.lock().unwrap();
                for id in acked {
                    if let Some(case) = entries.remove(&id) {
                        seen.entry(case).or_insert(now);
                    }
                }
            }
        })
    };

    let channel = tonic::transport::Channel::from_shared(format!("http://{}", intake.grpc_addr))?
        .connect()
        .await
        .context("connecting to intake")?;
    let clerk = Principal {
        subject: "latency@pingcheng.bureau".into(),
        org: "pingcheng.bureau".into(),
        role: Role::Clerk,
        scopes: vec![],
    };
    let c = pb::intake_service_client::IntakeServiceClient::with_interceptor(
        channel,
        bearer(&intake.token_keys, &clerk),
    );
    let answered: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let warm = a.rate * a.warmup;
    let total = warm + a.rate * a.seconds;
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / a.rate as f64));
    let base = (chrono::Utc::now().timestamp_millis() as u64 % 1_000_000) * 1_000_000;
    let mut calls = Vec::new();
    for n in 0..total {
        tick.tick().await;
        let mut c = c.clone();
        let sent = sent.clone();
        let answered = answered.clone();
        calls.push(tokio::spawn(async move {
            let t = Instant::now();
            if let Ok(r) = c.register_petition(load_request(base + n)).await {
                let id = r.into_inner().case_id;
                if n >= warm {
                    answered.lock().unwrap().insert(id.clone(), Instant::now());
                    sent.lock().unwrap().insert(id, t);
                }
            }
        }));
    }
    for call in calls {
        let _ = call.await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    watcher.abort();
    clock_watcher.abort();
    let sent = sent.lock().unwrap().clone();
    for (what, seen) in [
        (
            "RegisterPetition answered",
            answered.lock().unwrap().clone(),
        ),
        ("registered → routed", routed.lock().unwrap().clone()),
        (
            "registered → clock started",
            started.lock().unwrap().clone(),
        ),
    ] {
        let mut hist = Histogram::<u64>::new(3)?;
        let mut missing = 0;
        for (case, t0) in &sent {
            match seen.get(case) {
                Some(t1) => hist.record(t1.saturating_duration_since(*t0).as_micros() as u64)?,
                None => missing += 1,
            }
        }
        println!(
            "{what} at {} registrations/s for {} s: {} cases, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, not reached {}",
            a.rate,
            a.seconds,
            sent.len(),
            hist.value_at_quantile(0.5) as f64 / 1000.0,
            hist.value_at_quantile(0.99) as f64 / 1000.0,
            hist.max() as f64 / 1000.0,
            missing
        );
    }
    println!(
        "resident memory of the process (intake, routing and supervision, and this load): {}",
        petition_e2e::resident_memory()
    );
    let mut conn = client.get_multiplexed_async_connection().await?;
    let _: () = redis::cmd("DEL")
        .arg(&key)
        .arg(format!("{prefix}petition.intake.v1"))
        .arg(format!("{prefix}petition.supervision.v1"))
        .query_async(&mut conn)
        .await?;
    intake.shutdown().await;
    Ok(())
}

/// A stream entry id `ms-seq` as a pair that sorts as Redis does.
fn entry_id(id: &str) -> Option<(u64, u64)> {
    let (ms, seq) = id.split_once('-')?;
    Some((ms.parse().ok()?, seq.parse().ok()?))
}
