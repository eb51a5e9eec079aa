use anyhow::Context;
use clap::{Parser, Subcommand};
use petition_auth::{Principal, Role, TokenKeys};
use petition_domain::SystemClock;
use petition_intake::server::{IntakeConfig, start};
use petition_telemetry::LogFormat;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// Petition Pipeline intake: registers petitions from every channel.
#[derive(Parser)]
#[command(name = "petition-intake", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Print a bearer token the running service accepts.
    IssueToken {
        /// organ id from the organisation tree, e.g. pingcheng.bureau
        #[arg(long)]
        org: String,
        /// clerk, handler, supervisor, leader, analyst, admin or upstream
        #[arg(long)]
        role: Role,
        /// the person or system; defaults to "<role>@<org>"
        #[arg(long)]
        subject: Option<String>,
        #[arg(long, value_delimiter = ',')]
        scopes: Vec<String>,
        #[arg(long, default_value_t = 12)]
        ttl_hours: i64,
        #[arg(long, env = "PETITION_TOKEN_KEY", hide_env_values = true)]
        token_key: Option<String>,
    },
}

#[derive(clap::Args)]
struct ServeArgs {
    #[arg(long, env = "PETITION_LISTEN", default_value = "127.0.0.1:50051")]
    listen: SocketAddr,
    /// Prometheus /metrics and /healthz
    #[arg(long, env = "PETITION_ADMIN_LISTEN", default_value = "127.0.0.1:9464")]
    admin_listen: SocketAddr,
    /// postgres://… (schema `intake`) or sqlite://… (the embedded default)
    #[arg(
        long,
        env = "PETITION_DATABASE_URL",
        default_value = "sqlite://data/intake.db"
    )]
    database_url: String,
    /// Redis for the event streams; without it events use the in-process bus
    #[arg(long, env = "PETITION_REDIS_URL")]
    redis_url: Option<String>,
    #[arg(long, env = "PETITION_STREAM_PREFIX", default_value = "")]
    stream_prefix: String,
    /// 32 bytes, base64: seals personal data at rest
    #[arg(long, env = "PETITION_DATA_KEY", hide_env_values = true)]
    data_key: Option<String>,
    /// HS256 secret (>= 32 bytes) that signs bearer tokens
    #[arg(long, env = "PETITION_TOKEN_KEY", hide_env_values = true)]
    token_key: Option<String>,
    /// Development run: use the public built-in keys when none are configured
    #[arg(long, env = "PETITION_DEV")]
    dev: bool,
    /// Directory with orgs.toml and categories.toml (built-in copies otherwise)
    #[arg(long, env = "PETITION_CONFIG_DIR")]
    config_dir: Option<PathBuf>,
    #[arg(long, env = "PETITION_LOG_FORMAT", default_value = "pretty")]
    log_format: LogFormat,
    /// People present at or above which a visit is a group visit (集体访)
    #[arg(long, env = "PETITION_GROUP_THRESHOLD", default_value_t = 5)]
    group_threshold: u32,
    /// Days back an earlier petition on the same matter makes a repeat (重复信访)
    #[arg(long, env = "PETITION_REPEAT_WINDOW_DAYS", default_value_t = 365)]
    repeat_window_days: i64,
    #[arg(long, env = "PETITION_PG_MAX_CONNECTIONS", default_value_t = 16)]
    pg_max_connections: u32,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(Command::IssueToken {
        org,
        role,
        subject,
        scopes,
        ttl_hours,
        token_key,
    }) = cli.command
    {
        let keys = match token_key {
            Some(k) => TokenKeys::hs256(k.as_bytes()).context("PETITION_TOKEN_KEY")?,
            None => {
                eprintln!("note: no PETITION_TOKEN_KEY configured; signing with the dev key");
                TokenKeys::dev()
            }
        };
        let principal = Principal {
            subject: subject.unwrap_or_else(|| format!("{role}@{org}")),
            org,
            role,
            scopes,
        };
        println!(
            "{}",
            keys.issue(&principal, chrono::Duration::hours(ttl_hours))
        );
        return Ok(());
    }

    let a = cli.serve;
    let otlp = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").ok();
    let _telemetry = petition_telemetry::init("petition-intake", a.log_format, otlp.as_deref())?;
    let mut cfg = IntakeConfig::new(&a.database_url);
    cfg.listen = a.listen;
    cfg.admin_listen = Some(a.admin_listen);
    cfg.redis_url = a.redis_url.filter(|u| !u.is_empty());
    cfg.stream_prefix = a.stream_prefix;
    cfg.data_key = a.data_key.filter(|k| !k.is_empty());
    cfg.token_key = a.token_key.filter(|k| !k.is_empty());
    cfg.dev = a.dev;
    cfg.config_dir = a.config_dir;
    cfg.policy.group_threshold = a.group_threshold;
    cfg.policy.repeat_window = chrono::Duration::days(a.repeat_window_days);
    cfg.pg_max_connections = a.pg_max_connections;
    let intake = start(cfg, None, Arc::new(SystemClock))
        .await
        .context("starting intake")?;
    shutdown_signal().await;
    tracing::info!("shutting down: finishing calls in flight and flushing the outbox");
    intake.shutdown().await;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = ctrl_c => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
