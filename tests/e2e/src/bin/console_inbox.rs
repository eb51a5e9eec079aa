//! Time to first render of a department's inbox in the web console with 10,000 cases in it:
//! the suite's services run in this process (embedded SQLite by default, or PostgreSQL + Redis
//! with `--database-url`), a clerk's window registers `--cases` petitions about Pingcheng
//! housing (32 at a time), routing places each in the housing bureau's inbox (待领), and then
//! Debian's Chromium opens that inbox `--runs` times as its handler (services/console/tests/
//! browser/inbox-bench.mjs), timing each load with the browser's own Navigation and Paint
//! Timing: first byte, whole document, first contentful paint.
//!
//!   cargo run --release -p petition-e2e --bin console-inbox -- --cases 10000 --runs 30
//!   cargo run --release -p petition-e2e --bin console-inbox -- --cases 10000 \
//!     --database-url postgres://postgres@127.0.0.1:5432/<fresh db> --redis-url redis://127.0.0.1:6379
//!
//! Needs chromium and `npm ci` in services/console/tests/browser.

use anyhow::Context;
use clap::Parser;
use petition_auth::{Role, TokenKeys};
use petition_e2e::{bearer, load_request, who};
use petition_host::HostConfig;
use petition_proto::v1 as pb;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 10_000)]
    cases: u64,
    /// loads of the inbox timed in the browser
    #[arg(long, default_value_t = 30)]
    runs: u32,
    /// PostgreSQL (a fresh database); the embedded default without it
    #[arg(long)]
    database_url: Option<String>,
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    redis_url: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let dir = tempfile::tempdir()?;
    let mut cfg = HostConfig::new("suite");
    cfg.listen = "127.0.0.1:0".parse()?;
    cfg.dev = true;
    cfg.rate_limit_per_minute = 0;
    cfg.data_dir = dir.path().join("data");
    if let Some(url) = &a.database_url {
        cfg.database_url = Some(url.clone());
        cfg.redis_url = Some(a.redis_url.clone());
        cfg.stream_prefix = format!("consolebench{}:", std::process::id());
    }
    let running = petition_host::start(
        cfg,
        None,
        None,
        &[
            &petition_supervision::Supervision::default(),
            &petition_routing::Routing::default(),
            &petition_intake::Intake::default(),
        ],
    )
    .await?;
    let keys = TokenKeys::dev();
    let channel = petition_e2e::connect(running.grpc_addr).await;

    // Fill the inbox: distinct petitioners, one matter, all competent to the housing bureau.
    let started = Instant::now();
    let clerk = who("pingcheng.bureau", Role::Clerk);
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut workers = Vec::new();
    for _ in 0..32 {
        let mut intake = pb::intake_service_client::IntakeServiceClient::with_interceptor(
            channel.clone(),
            bearer(&keys, &clerk),
        );
        let (next, total) = (next.clone(), a.cases);
        workers.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if n >= total {
                    return Ok::<_, tonic::Status>(());
                }
                let mut r = load_request(1_000_000 + n);
                r.category = "01.01".into();
                r.problem_location = "140213001".into();
                intake.register_petition(r).await?;
            }
        }));
    }
    for w in workers {
        w.await?.context("registering")?;
    }
    let registered = started.elapsed();
    let handler = who("pingcheng.housing", Role::Handler);
    let mut routing = pb::routing_service_client::RoutingServiceClient::with_interceptor(
        channel.clone(),
        bearer(&keys, &handler),
    );
    // Routing takes them from intake's events; count the inbox until all are in it.
    loop {
        let (mut listed, mut token) = (0u64, String::new());
        loop {
            let page = routing
                .list_inbox(pb::ListInboxRequest {
                    bucket: pb::InboxBucket::ToClaim as i32,
                    page_size: 500,
                    page_token: token.clone(),
                    ..Default::default()
                })
                .await?
                .into_inner();
            listed += page.items.len() as u64;
            token = page.next_page_token;
            if token.is_empty() {
                break;
            }
        }
        if listed >= a.cases {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!(
        "{} cases registered in {:.1} s, all in the housing bureau's inbox after {:.1} s",
        a.cases,
        registered.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );

    // The console, as the suite serves it.
    let reference = petition_grpc::reference::Reference::load(None)?;
    let mut console = petition_console::Console::new(
        petition_console::Channels::one(channel),
        reference.tree.clone(),
        Arc::new(reference.taxonomy.clone()),
        running.clock.clone(),
    );
    console.dev_keys = Some(running.token_keys.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/", listener.local_addr()?);
    tokio::spawn(async move {
        axum::serve(listener, petition_console::router(Arc::new(console))).await
    });

    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../services/console/tests/browser");
    let runs = a.runs.to_string();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("node")
            .arg("inbox-bench.mjs")
            .current_dir(&script)
            .env("CONSOLE_URL", &url)
            .env("RUNS", runs)
            .output()
    })
    .await?
    .context("node inbox-bench.mjs")?;
    anyhow::ensure!(
        out.status.success(),
        "inbox-bench.mjs failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result = String::from_utf8_lossy(&out.stdout);
    println!(
        "inbox of {} cases, {}: {}",
        a.cases,
        if a.database_url.is_some() {
            "PostgreSQL + Redis"
        } else {
            "embedded"
        },
        result.trim()
    );
    running.shutdown().await;
    Ok(())
}
