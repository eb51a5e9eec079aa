//! Analytics over a generated history on PostgreSQL + Redis: how fast the events of the
//! streams go into the read models, how fast a rebuild replays them, and how long the
//! situation, the scorecards and the yearly report take to answer.
//!
//!     tests/bench/analytics.sh                  # 1,000,000 cases
//!     CASES=100000 tests/bench/analytics.sh
//!
//! It publishes the whole history to the streams first (as relays would), then starts
//! analytics and times it until every event is in; the report of the last whole year is
//! written to `--report-out`.

use anyhow::Context;
use chrono::{NaiveDate, TimeZone, Utc};
use clap::Parser;
use petition_analytics::{Analytics, AnalyticsConfig};
use petition_auth::Role;
use petition_events::{EventSink, OutboxRow, RedisSink};
use petition_proto::v1::{self as pb, analytics_service_client::AnalyticsServiceClient};
use petition_simulate::{Config, Simulator};
use petition_testkit::grpc::{bearer, connect, who};
use prost::Message;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

#[derive(Parser)]
struct Args {
    /// cases in the history (about seven events each)
    #[arg(long, default_value_t = 1_000_000)]
    cases: u64,
    /// months of history, ending in November 2026: three years by default, so that the report
    /// of 2025 compares with a whole 2024
    #[arg(long, default_value_t = 35)]
    months: u32,
    /// an empty PostgreSQL database
    #[arg(long)]
    database_url: String,
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    redis_url: String,
    #[arg(long)]
    stream_prefix: String,
    /// calls of each query timed
    #[arg(long, default_value_t = 50)]
    calls: usize,
    #[arg(long, default_value = "situation-2025.html")]
    report_out: std::path::PathBuf,
}

fn rss_mib() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or("?".into(), |kb| format!("{:.0} MiB", kb / 1024.0))
}

fn percentiles(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize];
    (at(0.5), at(0.99))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let now = chrono::FixedOffset::east_opt(8 * 3600)
        .unwrap()
        .with_ymd_and_hms(2026, 11, 27, 12, 0, 0)
        .unwrap()
        .with_timezone(&Utc);
    let first = NaiveDate::from_ymd_opt(2026, 11, 1)
        .unwrap()
        .checked_sub_months(chrono::Months::new(a.months - 1))
        .unwrap();
    let per_month = (a.cases as f64 / f64::from(a.months) / 1.01).round() as u32;

    // 1. The history, into the streams.
    let sink = RedisSink::new(redis::Client::open(a.redis_url.as_str())?, &a.stream_prefix);
    let started = Instant::now();
    let mut sim = Simulator::new(Config {
        seed: 7,
        first_month: first,
        months: a.months,
        per_month,
        now,
        spikes: Vec::new(),
    });
    let (mut cases, mut events) = (0u64, 0usize);
    for m in 0..a.months {
        let rows: Vec<OutboxRow> = sim
            .month(m)
            .into_iter()
            .inspect(|_| cases += 1)
            .flat_map(|h| h.events)
            .map(|(stream, e)| OutboxRow {
                seq: 0,
                event_id: e.event_id.parse().expect("a uuid"),
                stream: stream.as_str().to_owned(),
                payload: e.encode_to_vec(),
            })
            .collect();
        events += rows.len();
        for chunk in rows.chunks(2000) {
            sink.publish(chunk, &HashMap::new())
                .await
                .context("publishing to Redis")?;
        }
    }
    println!(
        "history: {cases} cases, {events} events, published in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // 2. Analytics takes them in.
    let mut cfg = AnalyticsConfig {
        host: petition_host::HostConfig::new("analytics"),
        service: Analytics::default(),
    };
    cfg.host.database_url = Some(a.database_url.clone());
    cfg.host.redis_url = Some(a.redis_url.clone());
    cfg.host.stream_prefix = a.stream_prefix.clone();
    cfg.host.listen = "127.0.0.1:0".parse()?;
    cfg.host.dev = true;
    cfg.host.ready_timeout = std::time::Duration::from_secs(60);
    let clock = Arc::new(petition_domain::FixedClock::new(now));
    let started = Instant::now();
    let running = cfg
        .start(None, clock)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let db = petition_storage::Db::connect(&a.database_url, petition_analytics::SCHEMA, 2).await?;
    let store = petition_analytics::store::AnalyticsStore::new(db);
    // Done when the group has read every entry of each stream and acknowledged it (an entry is
    // acknowledged after its transaction commits); asked of Redis, which costs the database
    // nothing, unlike counting the rows.
    let redis = redis::Client::open(a.redis_url.as_str())?;
    let mut conn = redis.get_multiplexed_async_connection().await?;
    loop {
        let mut left = 0u64;
        for stream in petition_events::Stream::ALL {
            let key = format!("{}{}", a.stream_prefix, stream.as_str());
            let groups: Vec<HashMap<String, redis::Value>> = redis::cmd("XINFO")
                .arg("GROUPS")
                .arg(&key)
                .query_async(&mut conn)
                .await
                .unwrap_or_default();
            let group = groups.iter().find(
                |g| matches!(g.get("name"), Some(redis::Value::BulkString(n)) if n == b"analytics"),
            );
            let num = |g: &HashMap<String, redis::Value>, k: &str| match g.get(k) {
                Some(redis::Value::Int(n)) => *n as u64,
                _ => u64::MAX / 8,
            };
            left += group.map_or(u64::MAX / 8, |g| num(g, "lag") + num(g, "pending"));
        }
        if left == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let ingest = started.elapsed().as_secs_f64();
    let (stored, _) = store.counts().await?;
    anyhow::ensure!(
        stored as usize == events,
        "{stored} of {events} events stored"
    );
    println!(
        "ingest: {events} events in {ingest:.1} s = {:.0} events/s ({} resident)",
        events as f64 / ingest,
        rss_mib()
    );

    // 3. The queries.
    let admin = who("shanxi.bureau", Role::Admin);
    let mut c = AnalyticsServiceClient::with_interceptor(
        connect(running.grpc_addr).await,
        bearer(&running.token_keys, &admin),
    )
    .max_decoding_message_size(64 << 20);
    let leader = who("pingcheng.bureau", Role::Leader);
    let mut l = AnalyticsServiceClient::with_interceptor(
        connect(running.grpc_addr).await,
        bearer(&running.token_keys, &leader),
    )
    .max_decoding_message_size(64 << 20);
    let mut table = Vec::new();
    // The first call of each reads its indexes from disk after the ingest: timed apart.
    macro_rules! time {
        ($name:expr, $call:expr) => {{
            let t = Instant::now();
            $call.await?;
            let first = t.elapsed().as_secs_f64() * 1000.0;
            let mut ms = Vec::new();
            for _ in 0..a.calls {
                let t = Instant::now();
                $call.await?;
                ms.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            let (p50, p99) = percentiles(ms);
            table.push(($name, first, p50, p99));
        }};
    }
    let year = || pb::SituationRequest {
        period: "2025".into(),
        organ: String::new(),
    };
    time!(
        "GetSituation 2025, everything (admin)",
        c.get_situation(year())
    );
    time!(
        "GetSituation 2025, the district bureau's leader",
        l.get_situation(year())
    );
    time!(
        "GetSituation 2026-10, a month",
        c.get_situation(pb::SituationRequest {
            period: "2026-10".into(),
            organ: String::new(),
        })
    );
    time!(
        "GetScorecards 2025",
        c.get_scorecards(pb::ScorecardsRequest {
            period: "2025".into(),
            organ: String::new(),
            basis: pb::DateBasis::Petition as i32,
        })
    );
    time!(
        "GetTrend, 36 months",
        c.get_trend(pb::TrendRequest {
            last_month: "2026-10".into(),
            months: 36,
            organ: String::new(),
        })
    );
    time!(
        "RenderReport 2025 (HTML, charts)",
        l.render_report(pb::RenderReportRequest {
            period: "2025".into(),
            organ: String::new(),
        })
    );
    println!(
        "\n| query | first call ms | p50 ms | p99 ms ({} calls) |\n|---|---:|---:|---:|",
        a.calls
    );
    for (name, first, p50, p99) in &table {
        println!("| {name} | {first:.1} | {p50:.1} | {p99:.1} |");
    }
    let report = l
        .render_report(pb::RenderReportRequest {
            period: "2025".into(),
            organ: String::new(),
        })
        .await?
        .into_inner();
    std::fs::write(&a.report_out, &report.content)?;
    println!(
        "\nreport: {} ({} bytes)",
        a.report_out.display(),
        report.content.len()
    );

    // 4. A rebuild replays every stored event into fresh read models.
    let before = store.counts().await?;
    let t = Instant::now();
    let r = c.rebuild(pb::RebuildRequest {}).await?.into_inner();
    let secs = t.elapsed().as_secs_f64();
    println!(
        "rebuild: {} events, {} cases in {secs:.1} s = {:.0} events/s ({} resident)",
        r.events,
        r.cases,
        r.events as f64 / secs,
        rss_mib()
    );
    assert_eq!(before, store.counts().await?);
    running.shutdown().await;
    Ok(())
}
