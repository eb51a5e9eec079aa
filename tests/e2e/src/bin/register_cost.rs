//! What security costs a registration: `RegisterPetition` p50/p99 with TLS, token checks and
//! the audit log on, beside the same load with them off, in one run on one machine.
//!
//!   register-cost --clients 1,16 --seconds 10 --rounds 3
//!
//! Two intake processes run side by side on PostgreSQL and Redis (the databases named by
//! `PETITION_TEST_DATABASE_URL`'s server, one fresh database each, dropped at the end):
//! - **on**: TLS on the gRPC port, every call's signed token verified and its organ checked
//!   against the tree, an audit entry written with every change and chained behind it;
//! - **off**: plain HTTP/2, every call let through as the same clerk without looking at a
//!   token, no audit entries.
//!
//! The access policy's decisions run in both: they are inline in the handlers, pure lookups
//! in the organisation tree. Rounds alternate the two, in turn first, so that a drift of the
//! machine (a checkpoint, the other core busy) falls on both alike.

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use hdrhistogram::Histogram;
use petition_auth::{Principal, Role, TokenKeys};
use petition_e2e::{bearer, load};
use petition_proto::v1 as pb;
use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    serve: Option<Serve>,
    /// comma-separated concurrent client counts
    #[arg(long, value_delimiter = ',', default_value = "1,16")]
    clients: Vec<usize>,
    /// measured seconds per window
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    #[arg(long, default_value_t = 2)]
    warmup_seconds: u64,
    /// windows per mode and client count, alternating the modes
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// connections shared by the clients
    #[arg(long, default_value_t = 8)]
    connections: usize,
}

#[derive(Subcommand)]
enum Serve {
    /// (internal) one intake process of the comparison; prints its address and serves
    Serve {
        #[arg(long)]
        mode: Mode,
        #[arg(long)]
        database_url: String,
        #[arg(long)]
        redis_url: String,
        #[arg(long)]
        stream_prefix: String,
        /// where `cert.pem` and `key.pem` are (mode on)
        #[arg(long)]
        tls_dir: PathBuf,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
enum Mode {
    On,
    Off,
}

fn clerk() -> Principal {
    Principal {
        subject: "load@pingcheng.bureau".into(),
        org: "pingcheng.bureau".into(),
        role: Role::Clerk,
        scopes: vec![],
    }
}

async fn serve(
    mode: Mode,
    database_url: String,
    redis_url: String,
    stream_prefix: String,
    tls_dir: PathBuf,
) -> anyhow::Result<()> {
    let mut cfg = petition_host::HostConfig::new("intake");
    cfg.listen = "127.0.0.1:0".parse()?;
    cfg.database_url = Some(database_url);
    cfg.redis_url = Some(redis_url);
    cfg.stream_prefix = stream_prefix;
    cfg.dev = true;
    cfg.pg_max_connections = 32;
    match mode {
        Mode::On => {
            cfg.tls = Some(petition_host::tls::TlsFiles {
                cert: tls_dir.join("cert.pem"),
                key: tls_dir.join("key.pem"),
                client_ca: None,
            });
        }
        Mode::Off => {
            cfg.unchecked_principal_for_benchmarks = Some(clerk());
            petition_audit::switch_off_for_benchmarks();
        }
    }
    let intake = petition_intake::Intake::default();
    let running = petition_host::start(cfg, None, None, &[&intake]).await?;
    println!("{}", running.grpc_addr);
    running.run_until_signal().await;
    Ok(())
}

/// Starts this binary as `mode`'s intake and reads the address it serves on.
fn spawn(
    mode: Mode,
    db: &str,
    redis: &petition_testkit::TestRedis,
    tls_dir: &std::path::Path,
) -> anyhow::Result<(Child, String)> {
    let mode_name = format!("{mode:?}").to_lowercase();
    let mut child = Command::new(std::env::current_exe()?)
        .args(["serve", "--mode", &mode_name, "--database-url", db])
        .args(["--redis-url", &redis.url])
        .args(["--stream-prefix", &format!("{}{mode_name}:", redis.prefix)])
        .arg("--tls-dir")
        .arg(tls_dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("piped"))
        .read_line(&mut line)
        .context("reading the intake's address")?;
    anyhow::ensure!(
        !line.trim().is_empty(),
        "intake ({mode_name}) did not start"
    );
    Ok((child, line.trim().to_owned()))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(Serve::Serve {
        mode,
        database_url,
        redis_url,
        stream_prefix,
        tls_dir,
    }) = args.serve
    {
        return serve(mode, database_url, redis_url, stream_prefix, tls_dir).await;
    }
    let (Some(db_on), Some(db_off), Some(redis)) = (
        petition_testkit::TestDatabase::create().await,
        petition_testkit::TestDatabase::create().await,
        petition_testkit::TestRedis::create().await,
    ) else {
        anyhow::bail!(
            "PostgreSQL and Redis must be reachable (PETITION_TEST_DATABASE_URL, PETITION_TEST_REDIS_URL)"
        );
    };
    let tls_dir = tempfile::tempdir()?;
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()])?;
    std::fs::write(tls_dir.path().join("cert.pem"), cert.cert.pem())?;
    std::fs::write(
        tls_dir.path().join("key.pem"),
        cert.signing_key.serialize_pem(),
    )?;

    let (mut on, on_addr) = spawn(Mode::On, &db_on.url, &redis, tls_dir.path())?;
    let (mut off, off_addr) = spawn(Mode::Off, &db_off.url, &redis, tls_dir.path())?;
    let keys = TokenKeys::dev();
    let mut clients: BTreeMap<Mode, Vec<load::Client>> = BTreeMap::new();
    for _ in 0..args.connections.max(1) {
        let tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(cert.cert.pem()))
            .domain_name("localhost");
        let secure = Channel::from_shared(format!("https://{on_addr}"))?
            .tls_config(tls)?
            .connect()
            .await?;
        let plain = Channel::from_shared(format!("http://{off_addr}"))?
            .connect()
            .await?;
        for (mode, channel) in [(Mode::On, secure), (Mode::Off, plain)] {
            clients.entry(mode).or_default().push(
                pb::intake_service_client::IntakeServiceClient::with_interceptor(
                    channel,
                    bearer(&keys, &clerk()),
                ),
            );
        }
    }

    let seq = Arc::new(AtomicU64::new(0));
    let mut totals: BTreeMap<(usize, Mode), (u64, u64, Histogram<u64>)> = BTreeMap::new();
    for round in 0..args.rounds {
        for &n in &args.clients {
            let order = if round % 2 == 0 {
                [Mode::On, Mode::Off]
            } else {
                [Mode::Off, Mode::On]
            };
            for mode in order {
                let r = load::drive(
                    clients[&mode].clone(),
                    n,
                    Duration::from_secs(args.warmup_seconds),
                    Duration::from_secs(args.seconds),
                    seq.clone(),
                )
                .await;
                eprintln!(
                    "round {} {n:>3} clients {mode:?}: {:.1} req/s p50 {:.2} ms p99 {:.2} ms",
                    round + 1,
                    r.per_second(),
                    r.ms(0.5),
                    r.ms(0.99)
                );
                let t = totals
                    .entry((n, mode))
                    .or_insert_with(|| (0, 0, Histogram::new(3).expect("histogram")));
                t.0 += r.ok;
                t.1 += r.errors;
                t.2.add(&r.hist).expect("same bounds");
            }
        }
    }
    let _ = on.kill();
    let _ = off.kill();
    let _ = (on.wait(), off.wait());
    // What each side kept: the registrations, and the audit entries (pending or chained).
    let kept = |url: String| async move {
        let n = |sql: &'static str| petition_testkit::count(&url, sql);
        (
            n("SELECT count(*) FROM intake.cases").await,
            n("SELECT (SELECT count(*) FROM intake.audit_pending) + (SELECT count(*) FROM intake.audit_log)").await,
        )
    };
    let (on_cases, on_audit) = kept(db_on.url.clone()).await;
    let (off_cases, off_audit) = kept(db_off.url.clone()).await;

    println!(
        "RegisterPetition, {} rounds of {} s per mode and client count, PostgreSQL + Redis",
        args.rounds, args.seconds
    );
    println!(
        "{:>8} {:>5} {:>9} {:>9} {:>9} {:>9} {:>7}",
        "clients", "mode", "ok", "req/s", "p50 ms", "p99 ms", "errors"
    );
    let window = (args.rounds as u64 * args.seconds) as f64;
    for ((n, mode), (ok, errors, hist)) in &totals {
        let ms = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
        println!(
            "{n:>8} {:>5} {ok:>9} {:>9.1} {:>9.2} {:>9.2} {errors:>7}",
            format!("{mode:?}").to_lowercase(),
            *ok as f64 / window,
            ms(0.5),
            ms(0.99),
        );
    }
    println!(
        "cases stored: on {on_cases}, off {off_cases}; audit entries: on {on_audit}, off {off_audit}"
    );
    for &n in &args.clients {
        let q = |mode: Mode, q: f64| totals[&(n, mode)].2.value_at_quantile(q) as f64 / 1000.0;
        println!(
            "{n:>8} clients: security adds {:+.2} ms at p50, {:+.2} ms at p99",
            q(Mode::On, 0.5) - q(Mode::Off, 0.5),
            q(Mode::On, 0.99) - q(Mode::Off, 0.99)
        );
    }
    Ok(())
}
