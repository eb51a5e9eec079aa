//! The flags and environment variables every binary takes (clap, flattened into each), and the
//! subcommand every binary has: `replay`.

use crate::HostConfig;
use chrono::{DateTime, FixedOffset, Utc};
use clap::{ArgMatches, CommandFactory, FromArgMatches};
use petition_events::Stream;
use petition_telemetry::LogFormat;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Global, so that they may also follow a subcommand (`petition-intake replay … --data-dir d`).
#[derive(clap::Args, Debug, Clone)]
pub struct CommonArgs {
    /// Address of the gRPC port
    #[arg(
        long,
        global = true,
        env = "PETITION_LISTEN",
        default_value = "127.0.0.1:50051"
    )]
    pub listen: SocketAddr,
    /// Prometheus /metrics, /healthz (liveness), /readyz (readiness), and the dev clock
    #[arg(
        long,
        global = true,
        env = "PETITION_ADMIN_LISTEN",
        default_value = "127.0.0.1:9464"
    )]
    pub admin_listen: SocketAddr,
    /// postgres://… (one schema per service) or sqlite://…; without it, one SQLite file per
    /// service under --data-dir (the embedded default)
    #[arg(long, global = true, env = "PETITION_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Where the embedded default keeps its SQLite files
    #[arg(long, global = true, env = "PETITION_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,
    /// Redis for the event streams; without it, the in-process bus
    #[arg(long, global = true, env = "PETITION_REDIS_URL")]
    pub redis_url: Option<String>,
    /// Prepended to every stream key (lets deployments share one Redis)
    #[arg(
        long,
        global = true,
        env = "PETITION_STREAM_PREFIX",
        default_value = ""
    )]
    pub stream_prefix: String,
    /// HS256 secrets (>= 32 bytes each) for bearer tokens: one secret, or `ID:SECRET …`
    /// newest first when rotating (the first signs, all verify; drop an old one once its
    /// tokens have expired)
    #[arg(
        long,
        global = true,
        env = "PETITION_TOKEN_KEY",
        hide_env_values = true
    )]
    pub token_key: Option<String>,
    /// Calls a principal (a person or system) may make a minute, in bursts of as many; over it,
    /// RESOURCE_EXHAUSTED with the time to wait (0: no limit)
    #[arg(
        long,
        global = true,
        env = "PETITION_RATE_LIMIT_PER_MINUTE",
        default_value_t = 6000
    )]
    pub rate_limit_per_minute: u32,
    /// The upstream systems' API keys, hashed: lines `ID SYSTEM ORGAN SHA256` as `petition
    /// apikey new` prints them; such a system calls with `authorization: ApiKey pk.…`
    #[arg(long, global = true, env = "PETITION_API_KEYS_FILE")]
    pub api_keys_file: Option<PathBuf>,
    /// Seconds a call may take before it is answered DEADLINE_EXCEEDED (imports and exports,
    /// which stream, are not cut; a client's shorter grpc-timeout is kept too)
    #[arg(
        long,
        global = true,
        env = "PETITION_REQUEST_TIMEOUT_SECS",
        default_value_t = 30,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub request_timeout_secs: u64,
    /// TLS on the gRPC port: the server's certificate chain (PEM); with --tls-key
    #[arg(long, global = true, env = "PETITION_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The server's private key (PEM)
    #[arg(long, global = true, env = "PETITION_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Mutual TLS: the CA (PEM) whose client certificates are accepted; upstream systems must
    /// then present one naming their source_system
    #[arg(
        long,
        global = true,
        env = "PETITION_TLS_CLIENT_CA",
        requires = "tls_cert"
    )]
    pub tls_client_ca: Option<PathBuf>,
    /// This deployment's name: tokens must carry it as their audience (`aud`), so that a token
    /// for one district is refused at another that shares a key
    #[arg(long, global = true, env = "PETITION_TOKEN_AUDIENCE")]
    pub token_audience: Option<String>,
    /// The longest lifetime a token may claim, in hours
    #[arg(
        long,
        global = true,
        env = "PETITION_TOKEN_MAX_TTL_HOURS",
        default_value_t = 168
    )]
    pub token_max_ttl_hours: i64,
    /// Development run: public built-in keys when none are configured
    #[arg(long, global = true, env = "PETITION_DEV")]
    pub dev: bool,
    /// Development run only: start the clock at this instant (RFC 3339, e.g.
    /// 2026-02-10T09:00:00+08:00) and move it with `POST /clock/advance` on the admin port
    #[arg(long, global = true, env = "PETITION_DEV_CLOCK", value_parser = parse_instant)]
    pub dev_clock: Option<DateTime<FixedOffset>>,
    /// Directory with orgs.toml, categories.toml and cn-calendar.csv (built-in copies otherwise)
    #[arg(long, global = true, env = "PETITION_CONFIG_DIR")]
    pub config_dir: Option<PathBuf>,
    /// pretty (for people) or json (for machines)
    #[arg(
        long,
        global = true,
        env = "PETITION_LOG_FORMAT",
        default_value = "pretty"
    )]
    pub log_format: LogFormat,
    #[arg(
        long,
        global = true,
        env = "PETITION_PG_MAX_CONNECTIONS",
        default_value_t = 16
    )]
    pub pg_max_connections: u32,
    /// Days published events stay in the outbox, ready to be published again
    #[arg(
        long,
        global = true,
        env = "PETITION_OUTBOX_RETENTION_DAYS",
        default_value_t = 7
    )]
    pub outbox_retention_days: i64,
    /// Seconds an event may stay with a silent consumer (one that died holding it) before
    /// another member of its group takes it over
    #[arg(
        long,
        global = true,
        env = "PETITION_CONSUMER_MIN_IDLE_SECS",
        default_value_t = 30
    )]
    pub consumer_min_idle_secs: u64,
}

pub fn parse_instant(s: &str) -> Result<DateTime<FixedOffset>, String> {
    DateTime::parse_from_rfc3339(s).map_err(|e| {
        format!("{s:?} is not an RFC 3339 instant such as 2026-02-10T09:00:00+08:00: {e}")
    })
}

impl CommonArgs {
    /// The host configuration these flags describe, for a process named `service`.
    pub fn host_config(&self, service: &'static str) -> HostConfig {
        let mut c = HostConfig::new(service);
        c.listen = self.listen;
        c.admin_listen = Some(self.admin_listen);
        c.database_url = self.database_url.clone().filter(|u| !u.is_empty());
        c.data_dir = self.data_dir.clone();
        c.redis_url = self.redis_url.clone().filter(|u| !u.is_empty());
        c.stream_prefix = self.stream_prefix.clone();
        c.token_key = self.token_key.clone().filter(|k| !k.is_empty());
        c.token_audience = self.token_audience.clone().filter(|a| !a.is_empty());
        c.rate_limit_per_minute = self.rate_limit_per_minute;
        c.api_keys_file = self.api_keys_file.clone();
        c.request_timeout = std::time::Duration::from_secs(self.request_timeout_secs);
        c.tls = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some(crate::tls::TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
                client_ca: self.tls_client_ca.clone(),
            }),
            _ => None,
        };
        c.token_max_ttl = chrono::Duration::hours(self.token_max_ttl_hours);
        c.dev = self.dev;
        c.dev_clock = self.dev_clock.map(|t| t.to_utc());
        c.config_dir = self.config_dir.clone();
        c.pg_max_connections = self.pg_max_connections;
        c.relay.retention = chrono::Duration::days(self.outbox_retention_days);
        c.consumer_min_idle = std::time::Duration::from_secs(self.consumer_min_idle_secs.max(1));
        c
    }
}

/// What every binary can do besides serving.
#[derive(clap::Subcommand, Debug, Clone)]
pub enum HostCommand {
    /// Publish a stream's events again from the outbox (consumers apply each event once, so a
    /// replay is harmless). A running service's relay picks them up within a second.
    Replay {
        /// petition.intake.v1, petition.routing.v1, …
        #[arg(long)]
        stream: Stream,
        /// events written at or after this instant (RFC 3339)
        #[arg(long, value_parser = parse_instant)]
        since: DateTime<FixedOffset>,
    },
}

/// A binary's command line: the common flags, its services' own flags (`A`), and the
/// subcommands every binary has.
#[derive(clap::Parser, Debug)]
pub struct Cli<A: clap::Args> {
    #[command(subcommand)]
    pub command: Option<HostCommand>,
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub service: A,
}

/// What distinguishes one binary: its names and its default ports.
#[derive(Debug, Clone, Copy)]
pub struct Binary {
    /// the command's name, `petition-intake`
    pub name: &'static str,
    /// the process's name in logs, metrics and consumer names, `intake`
    pub process: &'static str,
    pub about: &'static str,
    pub listen: &'static str,
    pub admin: &'static str,
    /// it has no in-process bus partner and must read its streams from Redis
    pub needs_redis: bool,
}

impl Binary {
    /// A binary called `name`, running as process `process`, listening on `ports` (gRPC, admin)
    /// unless told otherwise.
    pub const fn new(
        name: &'static str,
        process: &'static str,
        ports: (&'static str, &'static str),
    ) -> Self {
        Self {
            name,
            process,
            about: "",
            listen: ports.0,
            admin: ports.1,
            needs_redis: false,
        }
    }

    pub const fn about(mut self, about: &'static str) -> Self {
        self.about = about;
        self
    }

    /// It reads its streams from Redis and has no in-process partner when run alone.
    pub const fn needing_redis(mut self) -> Self {
        self.needs_redis = true;
        self
    }
}

/// Parses the command line of `binary`.
pub fn parse<A: clap::Args>(binary: &Binary) -> Cli<A> {
    let matches: ArgMatches = Cli::<A>::command()
        .name(binary.name)
        .about(binary.about)
        .mut_arg("listen", |a| a.default_value(binary.listen))
        .mut_arg("admin_listen", |a| a.default_value(binary.admin))
        .get_matches();
    Cli::<A>::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

/// The instant a `--since` names, in UTC.
pub fn utc(t: DateTime<FixedOffset>) -> DateTime<Utc> {
    t.to_utc()
}
