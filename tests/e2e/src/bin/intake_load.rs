//! Load tool: drives `RegisterPetition` over gRPC at several client counts and reports
//! throughput and latency percentiles. Benchmarks are measured here, never asserted in tests.
//!
//!   intake-load --target http://127.0.0.1:50051 --clients 1,16,64 --seconds 15

use anyhow::Context;
use clap::Parser;
use petition_auth::{Principal, Role, TokenKeys};
use petition_e2e::{bearer, load};
use petition_proto::v1 as pb;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;
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
        let r = load::drive(
            clients.clone(),
            n,
            Duration::from_secs(args.warmup_seconds),
            Duration::from_secs(args.seconds),
            seq.clone(),
        )
        .await;
        println!(
            "{:>8} {:>10} {:>10.1} {:>9.2} {:>9.2} {:>9.2} {:>7}",
            r.clients,
            r.ok,
            r.per_second(),
            r.ms(0.5),
            r.ms(0.99),
            r.hist.max() as f64 / 1000.0,
            r.errors
        );
    }
    Ok(())
}
