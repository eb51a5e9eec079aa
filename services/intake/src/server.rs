//! Starting the intake service: storage, outbox relay, gRPC (with health and reflection) and the
//! admin port, all stopped together by `Intake::shutdown`.

use crate::crypto::{CryptoError, DEV_DATA_KEY, PersonalDataCipher};
use crate::service::IntakeGrpc;
use crate::store::{IntakeStore, PgIntakeStore, SqliteIntakeStore, StoreError};
use petition_auth::{AuthInterceptor, TokenKeys};
use petition_domain::Clock;
use petition_domain::intake::IntakePolicy;
use petition_events::outbox::{EventSink, Outbox};
use petition_events::{InProcessBus, RedisSink, Relay};
use petition_grpc::reference::{Reference, ReferenceError};
use petition_proto::v1::intake_service_server::IntakeServiceServer;
use petition_storage::Dialect;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

pub const SERVICE_NAME: &str = "petition.v1.IntakeService";

#[derive(Debug, Clone)]
pub struct IntakeConfig {
    pub listen: SocketAddr,
    pub admin_listen: Option<SocketAddr>,
    pub database_url: String,
    pub redis_url: Option<String>,
    /// prepended to every stream key (lets tests and tenants share one Redis)
    pub stream_prefix: String,
    /// base64 of 32 bytes
    pub data_key: Option<String>,
    /// HS256 secret, at least 32 bytes
    pub token_key: Option<String>,
    /// allow built-in development keys
    pub dev: bool,
    pub config_dir: Option<PathBuf>,
    pub policy: IntakePolicy,
    pub pg_max_connections: u32,
}

impl IntakeConfig {
    pub fn new(database_url: &str) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            admin_listen: None,
            database_url: database_url.to_owned(),
            redis_url: None,
            stream_prefix: String::new(),
            data_key: None,
            token_key: None,
            dev: false,
            config_dir: None,
            policy: IntakePolicy::default(),
            pg_max_connections: 16,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(
        "no data key: set PETITION_DATA_KEY to 32 random bytes in base64 (`openssl rand -base64 32`), or pass --dev for a development run"
    )]
    NoDataKey,
    #[error("data key: {0}")]
    DataKey(#[from] CryptoError),
    #[error(transparent)]
    Serve(#[from] petition_grpc::ServeError),
    #[error("reference data: {0}")]
    Reference(#[from] ReferenceError),
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

/// A running intake service.
pub struct Intake {
    pub grpc_addr: SocketAddr,
    pub admin_addr: Option<SocketAddr>,
    pub token_keys: Arc<TokenKeys>,
    /// the in-process bus when no Redis is configured
    pub bus: Option<Arc<InProcessBus>>,
    pub outbox: Arc<dyn Outbox>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Intake {
    /// Stops accepting calls, finishes those in flight, flushes the relay, and returns.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

fn keys(cfg: &IntakeConfig) -> Result<(PersonalDataCipher, TokenKeys), StartError> {
    let cipher = match (&cfg.data_key, cfg.dev) {
        (Some(k), _) => PersonalDataCipher::from_base64(k)?,
        (None, true) => {
            tracing::warn!(
                "DEVELOPMENT RUN: personal data is sealed with the public built-in dev key; never use --dev with real petitions"
            );
            PersonalDataCipher::new(&DEV_DATA_KEY)
        }
        (None, false) => return Err(StartError::NoDataKey),
    };
    let tokens = petition_grpc::token_keys(cfg.token_key.as_deref(), cfg.dev)?;
    Ok((cipher, tokens))
}

/// Starts intake. `bus` lets the all-in-one suite share one in-process bus between services.
pub async fn start(
    cfg: IntakeConfig,
    bus: Option<Arc<InProcessBus>>,
    clock: Arc<dyn Clock>,
) -> Result<Intake, StartError> {
    let (cipher, token_keys) = keys(&cfg)?;
    let token_keys = Arc::new(token_keys);
    let reference = Arc::new(Reference::load(cfg.config_dir.as_deref())?);

    let (store, outbox): (Arc<dyn IntakeStore>, Arc<dyn Outbox>) =
        match Dialect::of_url(&cfg.database_url)? {
            Dialect::Postgres => {
                let pool = petition_storage::connect_postgres(
                    &cfg.database_url,
                    "intake",
                    cfg.pg_max_connections,
                )
                .await?;
                let (s, o) = PgIntakeStore::open(pool).await?;
                (Arc::new(s), Arc::new(o))
            }
            Dialect::Sqlite => {
                let pool = petition_storage::connect_sqlite(&cfg.database_url).await?;
                let (s, o) = SqliteIntakeStore::open(pool).await?;
                (Arc::new(s), Arc::new(o))
            }
        };

    let (sink, bus): (Arc<dyn EventSink>, Option<Arc<InProcessBus>>) = match &cfg.redis_url {
        Some(url) => {
            let client = redis::Client::open(url.as_str())?;
            (
                Arc::new(RedisSink::connect(&client, &cfg.stream_prefix).await?),
                None,
            )
        }
        None => {
            let bus = bus.unwrap_or_default();
            tracing::info!("no Redis configured: events go over the in-process bus");
            (bus.clone(), Some(bus))
        }
    };

    let (shutdown, shutdown_rx) = watch::channel(false);
    let wake = Arc::new(Notify::new());
    let relay = Relay::new(outbox.clone(), sink, wake.clone());
    let mut tasks = vec![tokio::spawn(relay.run(shutdown_rx.clone()))];

    let grpc = IntakeGrpc::new(store, reference, cfg.policy.clone(), cipher, clock, wake);
    let intake =
        IntakeServiceServer::with_interceptor(grpc, AuthInterceptor::new(token_keys.clone()));
    let serving = petition_grpc::serve_with_admin(
        cfg.listen,
        cfg.admin_listen,
        SERVICE_NAME,
        tonic::service::Routes::new(intake),
        shutdown_rx.clone(),
    )
    .await?;
    tasks.extend(serving.tasks);
    let (grpc_addr, admin_addr) = (serving.grpc_addr, serving.admin_addr);
    Ok(Intake {
        grpc_addr,
        admin_addr,
        token_keys,
        bus,
        outbox,
        shutdown,
        tasks,
    })
}
