use anyhow::Context;
use clap::Parser;
use petition_domain::SystemClock;
use petition_routing::server::{RoutingConfig, start};
use petition_telemetry::LogFormat;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// Petition Pipeline routing: who has authority, and the department inbox.
#[derive(Parser)]
#[command(name = "petition-routing", version)]
struct Args {
    #[arg(long, env = "PETITION_LISTEN", default_value = "127.0.0.1:50052")]
    listen: SocketAddr,
    #[arg(long, env = "PETITION_ADMIN_LISTEN", default_value = "127.0.0.1:9465")]
    admin_listen: SocketAddr,
    /// postgres://… (schema `routing`) or sqlite://… (the embedded default)
    #[arg(
        long,
        env = "PETITION_DATABASE_URL",
        default_value = "sqlite://data/routing.db"
    )]
    database_url: String,
    /// Redis for the event streams (required unless running inside the all-in-one suite)
    #[arg(long, env = "PETITION_REDIS_URL")]
    redis_url: Option<String>,
    #[arg(long, env = "PETITION_STREAM_PREFIX", default_value = "")]
    stream_prefix: String,
    #[arg(long, env = "PETITION_TOKEN_KEY", hide_env_values = true)]
    token_key: Option<String>,
    #[arg(long, env = "PETITION_DEV")]
    dev: bool,
    #[arg(long, env = "PETITION_CONFIG_DIR")]
    config_dir: Option<PathBuf>,
    /// Ordered override rules (category prefix × region prefix × channel → organ), reloaded on change
    #[arg(long, env = "PETITION_ROUTING_RULES")]
    rules_file: Option<PathBuf>,
    #[arg(long, env = "PETITION_LOG_FORMAT", default_value = "pretty")]
    log_format: LogFormat,
    /// Days the bureau gives an assigned (交办) case to report back
    #[arg(long, env = "PETITION_REPORT_DAYS", default_value_t = 30)]
    report_days: i64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let otlp = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").ok();
    let _telemetry = petition_telemetry::init("petition-routing", a.log_format, otlp.as_deref())?;
    let redis_url = a.redis_url.filter(|u| !u.is_empty());
    if redis_url.is_none() {
        // Alone, an in-process bus would have no intake to listen to.
        anyhow::bail!(
            "--redis-url (PETITION_REDIS_URL) is required: routing reads intake's events from Redis"
        );
    }
    let mut cfg = RoutingConfig::new(&a.database_url);
    cfg.listen = a.listen;
    cfg.admin_listen = Some(a.admin_listen);
    cfg.redis_url = redis_url;
    cfg.stream_prefix = a.stream_prefix;
    cfg.token_key = a.token_key.filter(|k| !k.is_empty());
    cfg.dev = a.dev;
    cfg.config_dir = a.config_dir;
    cfg.rules_file = a.rules_file;
    cfg.policy.report_days = a.report_days;
    let routing = start(cfg, None, Arc::new(SystemClock))
        .await
        .context("starting routing")?;
    let _ = tokio::signal::ctrl_c().await;
    tracing::info!("shutting down: finishing calls in flight and flushing the outbox");
    routing.shutdown().await;
    Ok(())
}
