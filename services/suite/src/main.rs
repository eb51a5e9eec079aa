//! Every service in one process. With no database URL it is the embedded default: one SQLite
//! file per service under `--data-dir` and the in-process event bus, so `cargo run` needs
//! nothing installed.

use anyhow::Context;
use clap::Parser;
use petition_domain::SystemClock;
use petition_events::InProcessBus;
use petition_intake::server::IntakeConfig;
use petition_routing::server::RoutingConfig;
use petition_telemetry::LogFormat;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Parser)]
#[command(name = "petition-suite", version)]
struct Args {
    #[arg(
        long,
        env = "PETITION_INTAKE_LISTEN",
        default_value = "127.0.0.1:50051"
    )]
    intake_listen: SocketAddr,
    #[arg(
        long,
        env = "PETITION_ROUTING_LISTEN",
        default_value = "127.0.0.1:50052"
    )]
    routing_listen: SocketAddr,
    /// Prometheus /metrics and /healthz for the whole process
    #[arg(long, env = "PETITION_ADMIN_LISTEN", default_value = "127.0.0.1:9464")]
    admin_listen: SocketAddr,
    /// Where the embedded default keeps its SQLite files
    #[arg(long, env = "PETITION_DATA_DIR", default_value = "data")]
    data_dir: PathBuf,
    /// postgres://… to run on PostgreSQL instead (one schema per service)
    #[arg(long, env = "PETITION_DATABASE_URL")]
    database_url: Option<String>,
    /// Redis for the event streams; without it the in-process bus
    #[arg(long, env = "PETITION_REDIS_URL")]
    redis_url: Option<String>,
    #[arg(long, env = "PETITION_DATA_KEY", hide_env_values = true)]
    data_key: Option<String>,
    #[arg(long, env = "PETITION_TOKEN_KEY", hide_env_values = true)]
    token_key: Option<String>,
    /// Development run: public built-in keys when none are configured
    #[arg(long, env = "PETITION_DEV")]
    dev: bool,
    #[arg(long, env = "PETITION_CONFIG_DIR")]
    config_dir: Option<PathBuf>,
    #[arg(long, env = "PETITION_ROUTING_RULES")]
    rules_file: Option<PathBuf>,
    #[arg(long, env = "PETITION_LOG_FORMAT", default_value = "pretty")]
    log_format: LogFormat,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let otlp = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").ok();
    let _telemetry = petition_telemetry::init("petition-suite", a.log_format, otlp.as_deref())?;
    let url = |service: &str| match &a.database_url {
        Some(u) if !u.is_empty() => u.clone(),
        _ => format!("sqlite://{}/{service}.db", a.data_dir.display()),
    };
    let redis_url = a.redis_url.clone().filter(|u| !u.is_empty());

    let mut intake = IntakeConfig::new(&url("intake"));
    intake.listen = a.intake_listen;
    intake.admin_listen = Some(a.admin_listen);
    intake.redis_url = redis_url.clone();
    intake.data_key = a.data_key.clone().filter(|k| !k.is_empty());
    intake.token_key = a.token_key.clone().filter(|k| !k.is_empty());
    intake.dev = a.dev;
    intake.config_dir = a.config_dir.clone();

    let mut routing = RoutingConfig::new(&url("routing"));
    routing.listen = a.routing_listen;
    routing.redis_url = redis_url.clone();
    routing.token_key = intake.token_key.clone();
    routing.dev = a.dev;
    routing.config_dir = a.config_dir.clone();
    routing.rules_file = a.rules_file.clone();

    let clock = Arc::new(SystemClock);
    // Consumers subscribe before any relay starts, so no event passes them by.
    let bus = redis_url.is_none().then(InProcessBus::new);
    let routing = petition_routing::server::start(routing, bus.clone(), clock.clone())
        .await
        .context("starting routing")?;
    let intake = petition_intake::server::start(intake, bus, clock)
        .await
        .context("starting intake")?;
    tracing::info!(
        intake = %intake.grpc_addr,
        routing = %routing.grpc_addr,
        "petition suite running; `petition-intake issue-token --org pingcheng.bureau --role clerk` makes a token"
    );
    let _ = tokio::signal::ctrl_c().await;
    tracing::info!("shutting down: intake first, so routing can drain its events");
    intake.shutdown().await;
    routing.shutdown().await;
    Ok(())
}
