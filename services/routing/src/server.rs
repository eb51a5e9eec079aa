//! Starting routing: storage, the intake-event consumer, the outbox relay, gRPC and the admin
//! port, all stopped together by `Routing::shutdown`.

use crate::consumer::{GROUP, RoutingConsumer};
use crate::service::RoutingGrpc;
use crate::store::{PgRoutingStore, RoutingStore, SqliteRoutingStore, StoreError};
use crate::workflow::RoutingPolicy;
use petition_auth::{AuthInterceptor, TokenKeys};
use petition_domain::Clock;
use petition_domain::routing::{RoutingRules, RulesError};
use petition_events::outbox::{EventSink, Outbox};
use petition_events::{
    ConsumerConfig, INTAKE_STREAM, InProcessBus, RedisSink, Relay, run_redis_consumer,
};
use petition_grpc::reference::{Reference, ReferenceError};
use petition_proto::v1::routing_service_server::RoutingServiceServer;
use petition_storage::Dialect;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

pub const SERVICE_NAME: &str = "petition.v1.RoutingService";

#[derive(Debug, Clone)]
pub struct RoutingConfig {
    pub listen: SocketAddr,
    pub admin_listen: Option<SocketAddr>,
    pub database_url: String,
    pub redis_url: Option<String>,
    pub stream_prefix: String,
    pub token_key: Option<String>,
    pub dev: bool,
    pub config_dir: Option<PathBuf>,
    /// ordered override rules (TOML), re-read when the file changes
    pub rules_file: Option<PathBuf>,
    /// how often the rules file is checked for changes
    pub rules_poll: Duration,
    pub policy: RoutingPolicy,
    pub pg_max_connections: u32,
    /// the consumer's name within its group (unique per instance)
    pub consumer_name: String,
}

impl RoutingConfig {
    pub fn new(database_url: &str) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 50052)),
            admin_listen: None,
            database_url: database_url.to_owned(),
            redis_url: None,
            stream_prefix: String::new(),
            token_key: None,
            dev: false,
            config_dir: None,
            rules_file: None,
            rules_poll: Duration::from_secs(2),
            policy: RoutingPolicy::default(),
            pg_max_connections: 8,
            consumer_name: format!("routing-{}", std::process::id()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Serve(#[from] petition_grpc::ServeError),
    #[error("reference data: {0}")]
    Reference(#[from] ReferenceError),
    #[error("routing rules {path}: {source}")]
    Rules { path: PathBuf, source: RulesError },
    #[error("cannot read routing rules {path}: {source}")]
    RulesRead {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("database: {0}")]
    Storage(#[from] petition_storage::StorageError),
    #[error("database: {0}")]
    Store(#[from] StoreError),
    #[error("outbox: {0}")]
    Outbox(#[from] sqlx::Error),
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("event bus: {0}")]
    Bus(#[from] petition_events::BusError),
}

pub struct Routing {
    pub grpc_addr: SocketAddr,
    pub admin_addr: Option<SocketAddr>,
    pub token_keys: Arc<TokenKeys>,
    pub outbox: Arc<dyn Outbox>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Routing {
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

fn load_rules(path: &PathBuf, reference: &Reference) -> Result<RoutingRules, StartError> {
    let text = std::fs::read_to_string(path).map_err(|source| StartError::RulesRead {
        path: path.clone(),
        source,
    })?;
    RoutingRules::from_toml(&text, &reference.tree).map_err(|source| StartError::Rules {
        path: path.clone(),
        source,
    })
}

/// Re-reads the rules file when its content changes; a bad file is refused and the old rules
/// stay. Comparing content rather than modification times also catches a file that was read
/// half-written: the complete version differs again and is tried again.
fn watch_rules(
    path: PathBuf,
    every: Duration,
    reference: Arc<Reference>,
    rules: Arc<RwLock<RoutingRules>>,
    mut shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut last = std::fs::read_to_string(&path).ok();
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = shutdown.changed() => return,
            }
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            if last.as_deref() == Some(text.as_str()) {
                continue;
            }
            match RoutingRules::from_toml(&text, &reference.tree) {
                Ok(new) => {
                    tracing::info!(rules = new.len(), path = %path.display(), "routing rules reloaded");
                    *rules.write().unwrap_or_else(|e| e.into_inner()) = new;
                }
                Err(e) => tracing::error!(error = %e, path = %path.display(),
                    "routing rules not reloaded; keeping the old ones"),
            }
            last = Some(text);
        }
    })
}

pub async fn start(
    cfg: RoutingConfig,
    bus: Option<Arc<InProcessBus>>,
    clock: Arc<dyn Clock>,
) -> Result<Routing, StartError> {
    let token_keys = Arc::new(petition_grpc::token_keys(
        cfg.token_key.as_deref(),
        cfg.dev,
    )?);
    let reference = Arc::new(Reference::load(cfg.config_dir.as_deref())?);
    let rules = Arc::new(RwLock::new(match &cfg.rules_file {
        Some(p) => load_rules(p, &reference)?,
        None => RoutingRules::default(),
    }));

    let (store, outbox): (Arc<dyn RoutingStore>, Arc<dyn Outbox>) =
        match Dialect::of_url(&cfg.database_url)? {
            Dialect::Postgres => {
                let pool = petition_storage::connect_postgres(
                    &cfg.database_url,
                    "routing",
                    cfg.pg_max_connections,
                )
                .await?;
                let (s, o) = PgRoutingStore::open(pool).await?;
                (Arc::new(s), Arc::new(o))
            }
            Dialect::Sqlite => {
                let pool = petition_storage::connect_sqlite(&cfg.database_url).await?;
                let (s, o) = SqliteRoutingStore::open(pool).await?;
                (Arc::new(s), Arc::new(o))
            }
        };

    let (shutdown, shutdown_rx) = watch::channel(false);
    let wake = Arc::new(Notify::new());
    let consumer = Arc::new(RoutingConsumer {
        store: store.clone(),
        reference: reference.clone(),
        rules: rules.clone(),
        policy: cfg.policy.clone(),
        clock: clock.clone(),
        relay_wake: wake.clone(),
    });
    let mut tasks = Vec::new();
    let sink: Arc<dyn EventSink> = match &cfg.redis_url {
        Some(url) => {
            let client = redis::Client::open(url.as_str())?;
            let stream = format!("{}{INTAKE_STREAM}", cfg.stream_prefix);
            let consumer_cfg = ConsumerConfig::new(&stream, GROUP, &cfg.consumer_name);
            let rx = shutdown_rx.clone();
            let c = client.clone();
            tasks.push(tokio::spawn(async move {
                if let Err(e) = run_redis_consumer(c, consumer_cfg, consumer, rx).await {
                    tracing::error!(error = %e, "routing consumer stopped");
                }
            }));
            Arc::new(RedisSink::connect(&client, &cfg.stream_prefix).await?)
        }
        None => {
            let bus = bus.unwrap_or_default();
            tasks.push(bus.subscribe(INTAKE_STREAM, GROUP, consumer));
            bus
        }
    };
    tasks.push(tokio::spawn(
        Relay::new(outbox.clone(), sink, wake.clone()).run(shutdown_rx.clone()),
    ));
    if let Some(path) = cfg.rules_file.clone() {
        tasks.push(watch_rules(
            path,
            cfg.rules_poll,
            reference.clone(),
            rules,
            shutdown_rx.clone(),
        ));
    }

    let grpc = RoutingGrpc {
        store,
        reference,
        policy: cfg.policy.clone(),
        clock,
        relay_wake: wake,
    };
    let routing =
        RoutingServiceServer::with_interceptor(grpc, AuthInterceptor::new(token_keys.clone()));
    let serving = petition_grpc::serve_with_admin(
        cfg.listen,
        cfg.admin_listen,
        SERVICE_NAME,
        tonic::service::Routes::new(routing),
        shutdown_rx.clone(),
    )
    .await?;
    tasks.extend(serving.tasks);
    let (grpc_addr, admin_addr) = (serving.grpc_addr, serving.admin_addr);
    Ok(Routing {
        grpc_addr,
        admin_addr,
        token_keys,
        outbox,
        shutdown,
        tasks,
    })
}
