//! Load tool: drives `RegisterPetition` over gRPC at several client counts and reports
//! throughput and latency percentiles. Benchmarks are measured here, never asserted in tests.
//!
//!   intake-load --target http://127.0.0.1:50051 --clients 1,16,64 --seconds 15

use anyhow::Context;
use clap::Parser;
use hdrhistogram::Histogram;
use petition_auth::{Principal, Role, TokenKeys};
use petition_e2e::{Bearer, bearer, load_request as request};
use petition_proto::v1 as pb;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tonic::transport::Channel;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    target: String,
    /// comma-separated concurrent client counts, one run each
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    clients: Vec<usize>,
    /// measured seconds per run
    #[arg(long, default_value_t = 15)]
    seconds: u64,
    #[arg(long, default_value_t = 2)]
    warmup_seconds: u64,
    /// HS256 token key of the target (the dev key when absent)
    #[arg(long, env = "PETITION_TOKEN_KEY")]
    token_key: Option<String>,
    /// connections shared by the clients (HTTP/2 multiplexes calls on each)
    #[arg(long, default_value_t = 8)]
    connections: usize,
}

type Client = pb::intake_service_client::IntakeServiceClient<
    tonic::service::interceptor::InterceptedService<Channel, Bearer>,
>;

struct Run {
    clients: usize,
    ok: u64,
    errors: u64,
    elapsed: Duration,
    hist: Histogram<u64>,
}

async fn run(
    clients: Vec<Client>,
    n: usize,
    warmup: Duration,
    measure: Duration,
    seq: Arc<AtomicU64>,
) -> Run {
    let start = Instant::now();
    let measure_from = start + warmup;
    let end = measure_from + measure;
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let mut client = clients[i % clients.len()].clone();
            let seq = seq.clone();
            tokio::spawn(async move {
                let mut hist = Histogram::<u64>::new(3).expect("histogram");
                let (mut ok, mut errors) = (0u64, 0u64);
                loop {
                    let now = Instant::now();
                    if now >= end {
                        break;
                    }
                    let req = request(seq.fetch_add(1, Ordering::Relaxed));
                    let t = Instant::now();
                    let r = client.register_petition(req).await;
                    let done = Instant::now();
                    if t >= measure_from && done <= end {
                        match r {
                            Ok(_) => {
                                ok += 1;
                                let _ = hist.record(done.duration_since(t).as_micros() as u64);
                            }
                            Err(e) => {
                                errors += 1;
                                if errors <= 3 {
                                    eprintln!("error: {e}");
                                }
                            }
                        }
                    }
                }
                (ok, errors, hist)
            })
        })
        .collect();
    let mut total = Run {
        clients: n,
        ok: 0,
        errors: 0,
        elapsed: measure,
        hist: Histogram::new(3).expect("histogram"),
    };
    for t in tasks {
        let (ok, errors, hist) = t.await.expect("client task");
        total.ok += ok;
        total.errors += errors;
        total.hist.add(hist).expect("same histogram bounds");
    }
    total
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let keys = match &args.token_key {
        Some(k) => TokenKeys::parse(k)?,
        None => TokenKeys::dev(),
    };
    let clerk = Principal {
        subject: "load@pingcheng.bureau".into(),
        org: "pingcheng.bureau".into(),
        role: Role::Clerk,
        scopes: vec![],
    };
    let mut clients = Vec::new();
    for _ in 0..args.connections.max(1) {
        let channel = Channel::from_shared(args.target.clone())?
            .connect()
            .await
            .with_context(|| format!("connecting to {}", args.target))?;
        clients.push(
            pb::intake_service_client::IntakeServiceClient::with_interceptor(
                channel,
                bearer(&keys, &clerk),
            ),
        );
    }
    // Unique identities across runs of the same database.
    let seq = Arc::new(AtomicU64::new(
        (chrono::Utc::now().timestamp_millis() as u64 % 1_000_000) * 1_000_000,
    ));
    println!("RegisterPetition over gRPC at {}", args.target);
    println!(
        "{:>8} {:>10} {:>10} {:>9} {:>9} {:>9} {:>7}",
        "clients", "ok", "req/s", "p50 ms", "p99 ms", "max ms", "errors"
    );
    for &n in &args.clients {
        let r = run(
            clients.clone(),
            n,
            Duration::from_secs(args.warmup_seconds),
            Duration::from_secs(args.seconds),
            seq.clone(),
        )
        .await;
        let ms = |q: f64| r.hist.value_at_quantile(q) as f64 / 1000.0;
        println!(
            "{:>8} {:>10} {:>10.1} {:>9.2} {:>9.2} {:>9.2} {:>7}",
            r.clients,
            r.ok,
            r.ok as f64 / r.elapsed.as_secs_f64(),
            ms(0.5),
            ms(0.99),
            r.hist.max() as f64 / 1000.0,
            r.errors
        );
    }
    Ok(())
}
