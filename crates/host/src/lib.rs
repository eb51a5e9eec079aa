//! The skeleton every Petition Pipeline binary runs on, so that a service is its store, its
//! handlers and an `install` function, and its `main.rs` is short.
//!
//! A [`Host`] owns what services share in a process: the clock (the system's, or a simulated
//! one in development), the reference data, the token keys and the access policy, the event
//! bus (Redis, or the in-process bus of the embedded default), readiness, and the gRPC and
//! admin ports. A service installs itself — opens its database (migrating its schema and the
//! outbox tables), gets its outbox and relay, subscribes its consumers, adds its gRPC service —
//! and [`Host::serve`] starts it all. The all-in-one suite installs every service into one host.
//! [`Running::shutdown`] stops in order: stop accepting and finish calls in flight, stop the
//! consumers, flush every outbox until all are quiet.

pub mod args;
mod audit;
pub mod calendar;
pub mod files;
mod serve;
pub mod tls;

pub use args::{Binary, Cli, CommonArgs, HostCommand, parse};

use petition_auth::{AccessPolicy, AuthInterceptor, TokenKeys};
use petition_domain::{Clock, SimulatedClock, SystemClock};
use petition_events::outbox::{EventSink, Outbox};
use petition_events::{
    ConsumerConfig, EventHandler, InProcessBus, RedisSink, Relay, RelayConfig, RelayWake, Stream,
};
use petition_grpc::PageTokens;
use petition_grpc::reference::{Reference, ReferenceError};
use petition_storage::Db;
use petition_telemetry::Readiness;
use sqlx::migrate::Migrator;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Everything a host needs to start; binaries fill it from [`CommonArgs`], tests by hand.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// the process's name in logs, metrics and consumer names: intake, routing, suite
    pub service: &'static str,
    pub listen: SocketAddr,
    pub admin_listen: Option<SocketAddr>,
    /// `None`: one SQLite file per service under `data_dir`
    pub database_url: Option<String>,
    pub data_dir: PathBuf,
    pub redis_url: Option<String>,
    /// prepended to every stream key (lets tests and deployments share one Redis)
    pub stream_prefix: String,
    pub token_key: Option<String>,
    /// this deployment's name, which every token must carry as its audience
    pub token_audience: Option<String>,
    pub token_max_ttl: chrono::Duration,
    /// TLS on the gRPC port (mutual with a client CA); plain HTTP/2 without
    pub tls: Option<tls::TlsFiles>,
    /// calls a principal may make a minute (0: no limit)
    pub rate_limit_per_minute: u32,
    /// the upstream systems' API keys, hashed (lines `ID SYSTEM ORGAN SHA256`)
    pub api_keys_file: Option<PathBuf>,
    /// the longest a unary call may take before it is answered DEADLINE_EXCEEDED (streams,
    /// an import or an export, are not cut)
    pub request_timeout: Duration,
    /// allow built-in development keys
    pub dev: bool,
    /// development only: start a simulated clock here
    pub dev_clock: Option<chrono::DateTime<chrono::Utc>>,
    pub config_dir: Option<PathBuf>,
    /// how often files of `config_dir` read again on change (the holiday calendar) are checked
    pub config_poll: Duration,
    pub pg_max_connections: u32,
    pub relay: RelayConfig,
    /// how long an entry stays with a silent consumer before another takes it
    pub consumer_min_idle: Duration,
    /// how long a consumer with nothing pending may be silent before it is removed
    pub consumer_dead_after: Duration,
    /// unique per process within its group
    pub consumer_name: String,
    /// how long `serve` waits for relays and consumers to report ready before answering
    pub ready_timeout: Duration,
    /// The security cost benchmark's baseline only: every call runs as this principal without
    /// a token. Refused unless `dev`; no command-line flag or variable sets it.
    pub unchecked_principal_for_benchmarks: Option<petition_auth::Principal>,
}

/// This machine's name and a dash, or nothing: in containers every process is pid 1, so a
/// consumer's name needs the host's (a container's id, a pod's name) to be unique in its group.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .map(|h| format!("{h}-"))
        .unwrap_or_default()
}

impl HostConfig {
    pub fn new(service: &'static str) -> Self {
        Self {
            service,
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            admin_listen: None,
            database_url: None,
            data_dir: PathBuf::from("data"),
            redis_url: None,
            stream_prefix: String::new(),
            token_key: None,
            token_audience: None,
            token_max_ttl: chrono::Duration::days(7),
            tls: None,
            rate_limit_per_minute: 0,
            api_keys_file: None,
            request_timeout: Duration::from_secs(30),
            dev: false,
            dev_clock: None,
            config_dir: None,
            config_poll: Duration::from_secs(2),
            pg_max_connections: 16,
            relay: RelayConfig::default(),
            consumer_min_idle: Duration::from_secs(30),
            consumer_dead_after: Duration::from_secs(300),
            consumer_name: format!("{service}-{}{}", host_name(), std::process::id()),
            ready_timeout: Duration::from_secs(5),
            unchecked_principal_for_benchmarks: None,
        }
    }

    /// A database URL on this host: the configured one, or the service's SQLite file.
    pub fn database_url_for(&self, schema: &str) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}/{schema}.db", self.data_dir.display()),
        }
    }
}

/// Why a service could not start. One type for every service; a service's own configuration
/// problems are `Config`, in words that say what to set.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("--dev-clock (PETITION_DEV_CLOCK) is for development runs only: add --dev")]
    DevClockWithoutDev,
    #[error(
        "no token key: set PETITION_TOKEN_KEY to a secret of at least 32 bytes, or pass --dev for a development run"
    )]
    NoTokenKey,
    #[error("token key: {0}")]
    TokenKey(#[from] petition_auth::AuthError),
    #[error("TLS: {0}")]
    Tls(#[from] tls::TlsError),
    #[error("reference data: {0}")]
    Reference(#[from] ReferenceError),
    #[error("database: {0}")]
    Storage(#[from] petition_storage::StorageError),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("reflection: {0}")]
    Reflection(String),
    #[error("telemetry: {0}")]
    Telemetry(#[from] petition_telemetry::TelemetryError),
    #[error("{0}")]
    Config(String),
}

enum Bus {
    Redis(redis::Client),
    InProcess(Arc<InProcessBus>),
}

/// A service's way to publish: the outbox it writes to in its transactions, and the relay to
/// wake after each commit.
#[derive(Clone)]
pub struct Producer {
    pub outbox: Outbox,
    pub wake: Arc<RelayWake>,
}

/// What every service's handlers take from the host: the reference data, the access policy,
/// the clock, page tokens, and the relay to wake after a commit.
#[derive(Clone)]
pub struct Shared {
    pub reference: Arc<Reference>,
    pub access: Arc<AccessPolicy>,
    pub clock: Arc<dyn Clock>,
    pub pages: PageTokens,
    pub relay_wake: Arc<RelayWake>,
}

pub struct Host {
    cfg: HostConfig,
    pub clock: Arc<dyn Clock>,
    sim_clock: Option<Arc<SimulatedClock>>,
    pub reference: Arc<Reference>,
    pub tokens: Arc<TokenKeys>,
    pub policy: Arc<AccessPolicy>,
    pub page_tokens: PageTokens,
    pub readiness: Arc<Readiness>,
    bus: Bus,
    stop_work: watch::Sender<bool>,
    routes: tonic::service::RoutesBuilder,
    served: Vec<&'static str>,
    relays: Vec<Arc<Relay>>,
    outboxes: Vec<Outbox>,
    workers: Vec<JoinHandle<()>>,
    admin_routes: axum::Router,
    data_lock: Option<DataDirLock>,
    /// read at start, so that a missing or malformed file stops the start with its name
    tls_config: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    /// each service's database, whose audit log this host chains and serves
    audited: std::sync::Mutex<Vec<(&'static str, Db)>>,
    /// one count of calls per principal for every service of the process
    limit: Option<Arc<petition_auth::CallLimit>>,
    api_keys: Arc<petition_auth::apikey::ApiKeys>,
}

/// The embedded default's claim on its data directory, held while the process runs: two
/// processes writing one set of SQLite files would each keep their own counters in memory and
/// relay each other's events, so the second is refused at start.
#[derive(Debug)]
pub(crate) struct DataDirLock {
    _file: std::fs::File,
}

impl DataDirLock {
    fn take(dir: &std::path::Path) -> Result<Self, StartError> {
        use std::io::Write;
        let io = |e: std::io::Error| {
            StartError::Config(format!("--data-dir: cannot use {}: {e}", dir.display()))
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let path = dir.join("petition.lock");
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(&path).unwrap_or_default();
                return Err(StartError::Config(format!(
                    "--data-dir: {} is in use by another running petition process{}; stop it, or give this one another --data-dir",
                    dir.display(),
                    match holder.trim() {
                        "" => String::new(),
                        pid => format!(" (pid {pid})"),
                    }
                )));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        // Who holds it, for the message above; the lock itself is what counts.
        file.set_len(0).map_err(io)?;
        write!(file, "{}", std::process::id()).map_err(io)?;
        Ok(Self { _file: file })
    }
}

impl Host {
    /// A host for `cfg`. `bus` lets several hosts of one test share an in-process bus; `clock`
    /// lets tests hold time still.
    pub async fn new(
        cfg: HostConfig,
        bus: Option<Arc<InProcessBus>>,
        clock: Option<Arc<dyn Clock>>,
    ) -> Result<Self, StartError> {
        if cfg.dev_clock.is_some() && !cfg.dev {
            return Err(StartError::DevClockWithoutDev);
        }
        if cfg.unchecked_principal_for_benchmarks.is_some() && !cfg.dev {
            return Err(StartError::Config(
                "calls unchecked by token are for a benchmark's development run only".into(),
            ));
        }
        if cfg
            .dev_clock
            .is_some_and(|at| at >= SimulatedClock::ceiling())
        {
            return Err(StartError::Config(
                "--dev-clock: start the simulated clock before 2200-01-01".into(),
            ));
        }
        let sim_clock = cfg.dev_clock.map(|at| {
            tracing::warn!(%at, "DEVELOPMENT RUN: simulated clock; move it with POST /clock/advance on the admin port");
            Arc::new(SimulatedClock::starting_at(at))
        });
        let clock: Arc<dyn Clock> = match (&sim_clock, clock) {
            (Some(s), _) => s.clone(),
            (None, Some(c)) => c,
            (None, None) => Arc::new(SystemClock),
        };
        let tokens = match (&cfg.token_key, cfg.dev) {
            (Some(ring), _) => TokenKeys::parse(ring)?,
            (None, true) => {
                tracing::warn!(
                    "DEVELOPMENT RUN: bearer tokens are checked against the public built-in dev key"
                );
                TokenKeys::dev()
            }
            (None, false) => return Err(StartError::NoTokenKey),
        };
        let tokens = Arc::new(
            tokens
                .with_max_ttl(cfg.token_max_ttl)
                .with_audience(cfg.token_audience.clone()),
        );
        let tls_config = cfg.tls.as_ref().map(tls::server_config).transpose()?;
        let data_lock = match &cfg.database_url {
            None => Some(DataDirLock::take(&cfg.data_dir)?),
            Some(_) => None,
        };
        if cfg.admin_listen.is_some() {
            // Installed before any worker starts: a metric recorded with no recorder is lost.
            petition_telemetry::prometheus()?;
        }
        let reference = Arc::new(Reference::load(cfg.config_dir.as_deref())?);
        let policy = Arc::new(AccessPolicy::new(reference.tree.clone()));
        let bus = match &cfg.redis_url {
            Some(url) => Bus::Redis(redis::Client::open(url.as_str())?),
            None => {
                tracing::info!("no Redis configured: events go over the in-process bus");
                Bus::InProcess(bus.unwrap_or_default())
            }
        };
        let admin_routes = match &sim_clock {
            Some(c) => serve::clock_routes(c.clone()),
            None => axum::Router::new(),
        }
        .merge(calendar::routes(reference.calendar.clone(), clock.clone()));
        let limit = petition_auth::CallLimit::per_minute(cfg.rate_limit_per_minute).map(Arc::new);
        let api_keys = match &cfg.api_keys_file {
            None => Arc::default(),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    StartError::Config(format!("--api-keys-file {}: {e}", path.display()))
                })?;
                let keys = petition_auth::apikey::ApiKeys::parse(&text, |o| {
                    reference.tree.get(o).is_some()
                })
                .map_err(|e| {
                    StartError::Config(format!("--api-keys-file {}: {e}", path.display()))
                })?;
                Arc::new(keys)
            }
        };
        let mut host = Self {
            page_tokens: PageTokens::new(tokens.signing_secret()),
            cfg,
            clock,
            sim_clock,
            reference,
            tokens,
            policy,
            readiness: Readiness::new(),
            bus,
            stop_work: watch::Sender::new(false),
            routes: tonic::service::RoutesBuilder::default(),
            served: Vec::new(),
            relays: Vec::new(),
            outboxes: Vec::new(),
            workers: Vec::new(),
            admin_routes,
            data_lock,
            tls_config,
            audited: std::sync::Mutex::new(Vec::new()),
            limit,
            api_keys,
        };
        let (live, clock, poll) = (
            host.reference.calendar.clone(),
            host.clock.clone(),
            host.cfg.config_poll,
        );
        host.spawn(move |stop| calendar::keep(live, clock, poll, stop));
        Ok(host)
    }

    pub fn config(&self) -> &HostConfig {
        &self.cfg
    }

    /// Opens the service's database — its schema on PostgreSQL, its file on SQLite — and
    /// brings it up to date: the outbox tables, the service's own migrations and the applied
    /// request ids.
    pub async fn database(
        &self,
        schema: &'static str,
        migrator: &Migrator,
    ) -> Result<Db, StartError> {
        let url = self.cfg.database_url_for(schema);
        let db = Db::connect(&url, schema, self.cfg.pg_max_connections).await?;
        petition_events::outbox::migrate_service(&db, migrator).await?;
        self.audited
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((schema, db.clone()));
        Ok(db)
    }

    /// The outbox in `db` and its relay (started by `serve`, after every consumer of this
    /// process has subscribed).
    pub fn outbox(&mut self, db: &Db) -> Producer {
        let outbox = Outbox::new(db.clone());
        let wake = RelayWake::new();
        let sink: Arc<dyn EventSink> = match &self.bus {
            Bus::Redis(client) => Arc::new(RedisSink::new(client.clone(), &self.cfg.stream_prefix)),
            Bus::InProcess(bus) => bus.clone(),
        };
        // Named by its schema, not the process: in the suite four relays share one process, and
        // each outbox's backlog is a series of its own.
        let name = match db.schema() {
            "" => self.cfg.service,
            schema => schema,
        }
        .to_owned();
        let flag = self
            .readiness
            .component(format!("outbox relay {name} #{}", self.relays.len()));
        self.relays.push(Relay::new(
            &name,
            outbox.clone(),
            sink,
            wake.clone(),
            self.cfg.relay.clone(),
            Some(flag),
        ));
        self.outboxes.push(outbox.clone());
        Producer { outbox, wake }
    }

    /// Applies `stream`'s events with `handler`, as consumer group `group`.
    pub fn consume(&mut self, stream: Stream, group: &'static str, handler: Arc<dyn EventHandler>) {
        self.consume_batched(stream, group, handler, None);
    }

    /// As `consume`, reading up to `batch` entries at a time from Redis (the bus's default
    /// when `None`): a consumer whose cost lies in each transaction rather than each event
    /// catches up faster with larger reads.
    pub fn consume_batched(
        &mut self,
        stream: Stream,
        group: &'static str,
        handler: Arc<dyn EventHandler>,
        batch: Option<usize>,
    ) {
        match &self.bus {
            Bus::Redis(client) => {
                let key = format!("{}{}", self.cfg.stream_prefix, stream.as_str());
                let mut cfg = ConsumerConfig::new(
                    &key,
                    group,
                    &format!("{group}-{}", self.cfg.consumer_name),
                );
                cfg.min_idle = self.cfg.consumer_min_idle;
                if let Some(b) = batch {
                    cfg.batch = b;
                }
                cfg.dead_after = self.cfg.consumer_dead_after;
                let flag = self
                    .readiness
                    .component(format!("consumer {group} of {stream}"));
                let client = client.clone();
                let stop = self.stop_work.subscribe();
                self.workers
                    .push(tokio::spawn(petition_events::run_redis_consumer(
                        client,
                        cfg,
                        handler,
                        Some(flag),
                        stop,
                    )));
            }
            Bus::InProcess(bus) => {
                // The subscriber lives as long as the bus; it is not stopped with the host, so
                // that a final flush still reaches it.
                drop(bus.subscribe(stream.as_str(), group, handler));
            }
        }
    }

    /// What a service's handlers share, for the service that publishes through `producer`.
    pub fn shared(&self, producer: &Producer) -> Shared {
        Shared {
            reference: self.reference.clone(),
            access: self.policy.clone(),
            clock: self.clock.clone(),
            pages: self.page_tokens.clone(),
            relay_wake: producer.wake.clone(),
        }
    }

    /// What the handlers of a service that publishes nothing share: its relay wake reaches no
    /// relay.
    pub fn shared_reader(&self) -> Shared {
        Shared {
            reference: self.reference.clone(),
            access: self.policy.clone(),
            clock: self.clock.clone(),
            pages: self.page_tokens.clone(),
            relay_wake: RelayWake::new(),
        }
    }

    /// The interceptor that authenticates every call of a service.
    pub fn auth(&self) -> AuthInterceptor {
        let auth = AuthInterceptor::new(self.tokens.clone(), self.reference.tree.clone())
            .with_upstream_certificates(
                self.cfg.tls.as_ref().is_some_and(|t| t.client_ca.is_some()),
            )
            .with_limit(self.limit.clone())
            .with_api_keys(self.api_keys.clone());
        match &self.cfg.unchecked_principal_for_benchmarks {
            Some(p) => auth.unchecked_for_benchmarks(p.clone()),
            None => auth,
        }
    }

    /// Serves `svc` (already wrapped in `auth()`) on this host's gRPC port.
    pub fn add_service<S>(&mut self, svc: S)
    where
        S: tower::Service<http::Request<tonic::body::Body>, Error = std::convert::Infallible>
            + tonic::server::NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Response: axum::response::IntoResponse,
        S::Future: Send + 'static,
    {
        self.served.push(S::NAME);
        self.routes.add_service(svc);
    }

    /// Calls `f` whenever a development run's simulated clock is moved (never on the system
    /// clock, which nobody moves).
    pub fn on_clock_move(&self, f: impl Fn() + Send + Sync + 'static) {
        if let Some(c) = &self.sim_clock {
            c.on_move(f);
        }
    }

    /// Runs `work` until the host stops its workers (it gets the stop signal).
    pub fn spawn<F>(&mut self, work: impl FnOnce(watch::Receiver<bool>) -> F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        let stop = self.stop_work.subscribe();
        self.workers.push(tokio::spawn(work(stop)));
    }

    /// Starts relays, binds the gRPC and admin ports, and waits (briefly) until every relay
    /// and consumer reports ready.
    pub async fn serve(self) -> Result<Running, StartError> {
        serve::serve(self).await
    }
}

/// A started host.
pub struct Running {
    pub grpc_addr: SocketAddr,
    pub admin_addr: Option<SocketAddr>,
    pub token_keys: Arc<TokenKeys>,
    pub readiness: Arc<Readiness>,
    pub clock: Arc<dyn Clock>,
    /// every outbox of this process, for tests and tools
    pub outboxes: Vec<Outbox>,
    sim_clock: Option<Arc<SimulatedClock>>,
    stop_serving: watch::Sender<bool>,
    in_flight: serve::InFlight,
    stop_work: watch::Sender<bool>,
    server: JoinHandle<()>,
    admin: Option<JoinHandle<()>>,
    health: tonic_health::server::HealthReporter,
    served: Vec<&'static str>,
    relays: Vec<Arc<Relay>>,
    workers: Vec<JoinHandle<()>>,
    /// released when the process is done with its files
    _data_lock: Option<DataDirLock>,
}

/// A graceful shutdown ends within this, whatever it waits for: orchestrators send SIGKILL
/// after 10 s.
const SHUTDOWN_BUDGET: Duration = Duration::from_secs(9);

impl Running {
    /// The simulated clock of a `--dev-clock` run.
    pub fn simulated_clock(&self) -> Option<&Arc<SimulatedClock>> {
        self.sim_clock.as_ref()
    }

    /// Stops accepting calls and finishes those in flight, stops the consumers and other
    /// workers, then flushes every outbox — repeatedly, because in one process an event
    /// published by one service can make another write events of its own — and returns, all
    /// within one budget.
    pub async fn shutdown(self) {
        let deadline = tokio::time::Instant::now() + SHUTDOWN_BUDGET;
        for name in &self.served {
            self.health
                .set_service_status(*name, tonic_health::ServingStatus::NotServing)
                .await;
        }
        self.health
            .set_service_status("", tonic_health::ServingStatus::NotServing)
            .await;
        let _ = self.stop_serving.send(true);
        // No new connections; the calls in flight are answered; idle connections are closed
        // rather than waited for.
        let calls_until = deadline - Duration::from_secs(3);
        if tokio::time::timeout_at(calls_until, self.in_flight.idle())
            .await
            .is_err()
        {
            tracing::warn!("calls still in flight after the grace period; stopping anyway");
        }
        let server = self.server.abort_handle();
        if tokio::time::timeout(Duration::from_millis(200), self.server)
            .await
            .is_err()
        {
            server.abort();
        }
        let _ = self.stop_work.send(true);
        let workers_until = deadline - Duration::from_secs(2);
        for w in self.workers {
            let abort = w.abort_handle();
            if tokio::time::timeout_at(workers_until, w).await.is_err() {
                abort.abort();
            }
        }
        let flush = async {
            for _ in 0..10 {
                let mut moved = 0;
                for r in &self.relays {
                    match r.flush().await {
                        Ok(n) => moved += n,
                        Err(e) => {
                            tracing::warn!(error = %e, "outbox could not be flushed at shutdown; it goes out at the next start");
                            return;
                        }
                    }
                }
                if moved == 0 {
                    return;
                }
            }
        };
        if tokio::time::timeout_at(deadline, flush).await.is_err() {
            tracing::warn!(
                "outbox flush did not finish in time; the rest goes out at the next start"
            );
        }
        if let Some(a) = self.admin {
            a.abort();
        }
        tracing::info!("stopped");
    }

    /// Runs until SIGINT or SIGTERM, then shuts down gracefully.
    pub async fn run_until_signal(self) {
        self.run_until(ShutdownSignals::listen()).await;
    }

    /// Serves until one of `signals` arrives, then shuts down gracefully.
    pub async fn run_until(self, signals: ShutdownSignals) {
        signals.recv().await;
        tracing::info!("shutting down: finishing calls in flight and flushing the outbox");
        self.shutdown().await;
    }
}

/// SIGINT (Ctrl-C) and SIGTERM (docker stop, systemd, Kubernetes), caught from the moment
/// this is made. A binary makes it before it says it serves: a SIGTERM that follows the
/// "serving" line at once must stop it gracefully, not kill it.
pub struct ShutdownSignals {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    interrupt: Option<tokio::signal::unix::Signal>,
}

impl ShutdownSignals {
    pub fn listen() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Self {
                term: signal(SignalKind::terminate()).ok(),
                interrupt: signal(SignalKind::interrupt()).ok(),
            }
        }
        #[cfg(not(unix))]
        Self {}
    }

    /// The first signal to arrive.
    pub async fn recv(self) {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = wait(self.term) => {}
                _ = wait(self.interrupt) => {}
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// A signal's next arrival; never, when it could not be listened for.
#[cfg(unix)]
async fn wait(signal: Option<tokio::signal::unix::Signal>) {
    match signal {
        Some(mut s) => {
            s.recv().await;
        }
        None => std::future::pending().await,
    }
}

/// SIGINT (Ctrl-C) or SIGTERM (docker stop, systemd, Kubernetes).
pub async fn shutdown_signal() {
    ShutdownSignals::listen().recv().await;
}

/// A service a host can run: intake, routing, and the services to come. The suite installs
/// several into one host; each single binary one.
#[async_trait::async_trait]
pub trait Service: Send + Sync {
    /// Its name as a process: `intake`, `routing`.
    fn name(&self) -> &'static str;
    /// The streams it publishes, with the schema whose outbox holds them (for `replay`).
    fn produces(&self) -> Vec<(&'static str, Stream)>;
    /// Checks the service's own configuration before anything is opened, so that a missing
    /// key is reported as such rather than after a database connection failed.
    fn check(&self, cfg: &HostConfig) -> Result<(), StartError> {
        let _ = cfg;
        Ok(())
    }
    /// Opens its database, subscribes its consumers and adds its gRPC service.
    async fn install(&self, host: &mut Host) -> Result<(), StartError>;
}

/// One service alone on a host of its own: what a test or a tool needs to start it.
#[derive(Debug, Clone)]
pub struct Alone<S> {
    pub host: HostConfig,
    pub service: S,
}

impl<S: Service + Default> Alone<S> {
    /// The service with its defaults, on `database_url`.
    pub fn new(database_url: &str) -> Self {
        let service = S::default();
        let mut host = HostConfig::new(service.name());
        host.database_url = Some(database_url.to_owned());
        Self { host, service }
    }
}

impl<S: Service> Alone<S> {
    /// Starts it. `bus` lets tests share an in-process bus between services started one by
    /// one; `clock` lets them hold time still.
    pub async fn start(
        self,
        bus: Option<Arc<InProcessBus>>,
        clock: Arc<dyn Clock>,
    ) -> Result<Running, StartError> {
        start(self.host, bus, Some(clock), &[&self.service]).await
    }
}

/// Starts `services` on a host of their own. `bus` lets tests share an in-process bus between
/// hosts started one by one; `clock` lets them hold time still.
pub async fn start(
    cfg: HostConfig,
    bus: Option<Arc<InProcessBus>>,
    clock: Option<Arc<dyn Clock>>,
    services: &[&dyn Service],
) -> Result<Running, StartError> {
    for s in services {
        s.check(&cfg)?;
    }
    let mut host = Host::new(cfg, bus, clock).await?;
    for s in services {
        s.install(&mut host).await?;
    }
    host.serve().await
}

/// A binary's `main`: parse its command line, build its services from their flags, and run.
pub async fn main<A: clap::Args>(
    binary: &Binary,
    services: impl FnOnce(&A) -> Vec<Box<dyn Service>>,
) -> Result<(), StartError> {
    main_with::<A>(binary, services, |_, _| Ok(None)).await
}

/// As `main`, with `prepare` (see `run_with`) given the binary's own flags too.
pub async fn main_with<A: clap::Args>(
    binary: &Binary,
    services: impl FnOnce(&A) -> Vec<Box<dyn Service>>,
    prepare: impl FnOnce(&A, &mut HostConfig) -> Result<Option<AfterStart>, StartError>,
) -> Result<(), StartError> {
    let cli: Cli<A> = parse(binary);
    let needs = binary.needs_redis
        && cli.command.is_none()
        && cli
            .common
            .redis_url
            .as_deref()
            .unwrap_or_default()
            .is_empty();
    if needs {
        return Err(StartError::Config(format!(
            "--redis-url (PETITION_REDIS_URL) is required: {} alone reads its streams from Redis",
            binary.name
        )));
    }
    let services = services(&cli.service);
    let refs: Vec<&dyn Service> = services.iter().map(|s| s.as_ref()).collect();
    let own = &cli.service;
    run_with(binary.process, &cli.common, cli.command, &refs, |cfg| {
        prepare(own, cfg)
    })
    .await
}

/// What a binary does once its services serve, before it waits for a signal: the suite's demo.
pub type AfterStart = Box<dyn FnOnce(&Running) + Send>;

/// The whole life of a binary: run its subcommand, or serve `services` until SIGINT or
/// SIGTERM and exit after a graceful shutdown.
pub async fn run(
    process: &'static str,
    common: &CommonArgs,
    command: Option<HostCommand>,
    services: &[&dyn Service],
) -> Result<(), StartError> {
    run_with(process, common, command, services, |_| Ok(None)).await
}

/// As `run`, with `prepare` given the host's configuration before it starts (to adjust it)
/// and returning what to do once it serves.
pub async fn run_with(
    process: &'static str,
    common: &CommonArgs,
    command: Option<HostCommand>,
    services: &[&dyn Service],
    prepare: impl FnOnce(&mut HostConfig) -> Result<Option<AfterStart>, StartError>,
) -> Result<(), StartError> {
    let mut cfg = common.host_config(process);
    match command {
        Some(HostCommand::Replay { stream, since }) => {
            let producers: Vec<_> = services.iter().flat_map(|s| s.produces()).collect();
            let n = replay(&cfg, &producers, stream, since.to_utc()).await?;
            println!("{n} events of {stream} since {since} will be published again");
            Ok(())
        }
        None => {
            let otlp = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").ok();
            let _telemetry = petition_telemetry::init(
                &format!("petition-{process}"),
                common.log_format,
                otlp.as_deref(),
            )?;
            let after = prepare(&mut cfg)?;
            let signals = ShutdownSignals::listen();
            let running = start(cfg, None, None, services).await?;
            tracing::info!(
                "`petition token issue --dev --org pingcheng.bureau --role clerk` prints a token for a clerk of the district bureau (cargo run -p petition-cli -- token issue …)"
            );
            if let Some(after) = after {
                after(&running);
            }
            running.run_until(signals).await;
            Ok(())
        }
    }
}

/// `replay`: marks a stream's events since `since` for publishing again, in the outbox of the
/// service (schema) that produces it. `producers` lists the (schema, stream) pairs this binary
/// produces.
pub async fn replay(
    cfg: &HostConfig,
    producers: &[(&'static str, Stream)],
    stream: Stream,
    since: chrono::DateTime<chrono::Utc>,
) -> Result<u64, StartError> {
    let Some((schema, _)) = producers.iter().find(|(_, s)| *s == stream) else {
        let ours: Vec<&str> = producers.iter().map(|(_, s)| s.as_str()).collect();
        return Err(StartError::Config(format!(
            "--stream: this binary publishes {}, not {stream}",
            ours.join(", ")
        )));
    };
    let url = cfg.database_url_for(schema);
    let db = Db::connect(&url, schema, 2).await?;
    let outbox = Outbox::new(db.clone());
    let n = outbox
        .replay(stream.as_str(), since)
        .await
        .map_err(|e| StartError::Config(format!("replay: {e}")))?;
    db.close().await;
    Ok(n)
}
