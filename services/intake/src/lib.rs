//! The intake service: registers petitions from every channel (Art. 19-23), flags group,
//! leapfrog and repeat petitions, keeps the petitioner registry with personal data sealed,
//! publishes `petition.intake.v1` through its outbox, and follows each case's steps from the
//! other services so staff and the petitioner see where it is.

pub mod consumer;
pub mod convert;
pub mod crypto;
pub mod events;
pub mod federation;
pub mod handlers;
pub mod import;
pub mod registrar;
pub mod rekey;
pub mod store;

use crate::crypto::{CryptoError, DEV_DATA_KEY, PersonalDataCipher};
use petition_domain::intake::IntakePolicy;
use petition_events::{Stream, Transactional, group};
use petition_host::{Alone, Host, HostConfig, Service, StartError};
use petition_proto::v1::intake_service_server::IntakeServiceServer;
use std::sync::Arc;

pub const SERVICE_NAME: &str = "petition.v1.IntakeService";
/// The database schema (PostgreSQL) or file name (SQLite) of intake.
pub const SCHEMA: &str = "intake";

/// The most registrations written in one transaction (see `registrar`).
pub const REGISTRATION_BATCH: usize = 64;

/// Intake as a service a host runs, with what it needs beyond the host.
#[derive(Debug, Clone)]
pub struct Intake {
    /// base64 of 32 bytes
    pub data_key: Option<String>,
    pub policy: IntakePolicy,
    /// the peers file (DESIGN §5b); none: this deployment serves every organ, alone
    pub peers: Option<std::path::PathBuf>,
    /// the longest wait between two attempts to send a case to a peer
    pub exchange_retry_max: std::time::Duration,
}

impl Default for Intake {
    fn default() -> Self {
        Self {
            data_key: None,
            policy: IntakePolicy::default(),
            peers: None,
            exchange_retry_max: std::time::Duration::from_secs(300),
        }
    }
}

/// Intake alone on a host of its own (tests and tools).
pub type IntakeConfig = Alone<Intake>;

/// Intake's own flags and environment variables; the suite takes them too.
#[derive(clap::Args, Debug, Clone)]
pub struct IntakeArgs {
    /// 32 bytes, base64: seals personal data at rest
    #[arg(long, env = "PETITION_DATA_KEY", hide_env_values = true)]
    pub data_key: Option<String>,
    /// People present at or above which a visit is a group visit (集体访)
    #[arg(long, env = "PETITION_GROUP_THRESHOLD", default_value_t = 5)]
    pub group_threshold: u32,
    /// Days back an earlier petition on the same matter makes a repeat (重复信访)
    #[arg(long, env = "PETITION_REPEAT_WINDOW_DAYS", default_value_t = 365)]
    pub repeat_window_days: i64,
    /// The earliest receipt accepted (RFC 3339); earlier dates are typing or clock errors
    #[arg(
        long,
        env = "PETITION_EARLIEST_RECEIVED_AT",
        default_value = "2000-01-01T00:00:00+08:00",
        value_parser = petition_host::args::parse_instant
    )]
    pub earliest_received_at: chrono::DateTime<chrono::FixedOffset>,
    /// Minutes a receipt may lie ahead of this server's clock (an upstream system's clock skew)
    #[arg(long, env = "PETITION_MAX_CLOCK_SKEW_MINUTES", default_value_t = 5)]
    pub max_clock_skew_minutes: i64,
    /// The peers file: our name, the regions we serve, and each peer deployment with the
    /// regions it serves, its address and the token it issued us (DESIGN §5b)
    #[arg(long, env = "PETITION_PEERS")]
    pub peers: Option<std::path::PathBuf>,
    /// Seconds at most between two attempts to send a case to a peer that is away
    #[arg(long, env = "PETITION_EXCHANGE_RETRY_MAX_SECS", default_value_t = 300)]
    pub exchange_retry_max_secs: u64,
}

impl From<&IntakeArgs> for Intake {
    fn from(a: &IntakeArgs) -> Self {
        let mut s = Intake {
            data_key: a.data_key.clone().filter(|k| !k.is_empty()),
            ..Intake::default()
        };
        s.policy.group_threshold = a.group_threshold;
        s.policy.repeat_window = chrono::Duration::days(a.repeat_window_days);
        s.policy.earliest_received_at = a.earliest_received_at.to_utc();
        s.policy.max_clock_skew = chrono::Duration::minutes(a.max_clock_skew_minutes);
        s.peers = a.peers.clone();
        s.exchange_retry_max = std::time::Duration::from_secs(a.exchange_retry_max_secs.max(1));
        s
    }
}

/// The cipher for personal data; `warn` says so in the log when it is the public dev key (once
/// per start: `check` builds it too, silently).
impl Intake {
    fn federation(&self) -> Result<petition_federation::Federation, StartError> {
        match &self.peers {
            None => Ok(petition_federation::Federation::default()),
            Some(path) => petition_federation::Federation::load(path)
                .map_err(|e| StartError::Config(format!("--peers (PETITION_PEERS): {e}"))),
        }
    }
}

fn cipher(settings: &Intake, dev: bool, warn: bool) -> Result<PersonalDataCipher, StartError> {
    match (&settings.data_key, dev) {
        (Some(k), _) => PersonalDataCipher::from_base64(k)
            .map_err(|e: CryptoError| StartError::Config(format!("data key: {e}"))),
        (None, true) => {
            if warn {
                tracing::warn!(
                    "DEVELOPMENT RUN: personal data is sealed with the public built-in dev key; never use --dev with real petitions"
                );
            }
            Ok(PersonalDataCipher::new(&DEV_DATA_KEY))
        }
        (None, false) => Err(StartError::Config(
            "no data key: set PETITION_DATA_KEY to 32 random bytes in base64 (`openssl rand -base64 32`), or pass --dev for a development run".into(),
        )),
    }
}

#[async_trait::async_trait]
impl Service for Intake {
    fn name(&self) -> &'static str {
        SCHEMA
    }

    fn produces(&self) -> Vec<(&'static str, Stream)> {
        vec![(SCHEMA, Stream::Intake)]
    }

    fn check(&self, cfg: &HostConfig) -> Result<(), StartError> {
        self.federation()?;
        cipher(self, cfg.dev, false).map(drop)
    }

    /// Its database, outbox, the consumers of routing's and supervision's steps, and the gRPC
    /// service.
    async fn install(&self, host: &mut Host) -> Result<(), StartError> {
        let cipher = cipher(self, host.config().dev, true)?;
        let federation = Arc::new(self.federation()?);
        let db = host.database(SCHEMA, &store::MIGRATOR).await?;
        let producer = host.outbox(&db);
        let shared = host.shared(&producer);
        let (deliver, feed) = (
            Arc::new(tokio::sync::Notify::new()),
            Arc::new(tokio::sync::Notify::new()),
        );
        for stream in [Stream::Routing, Stream::Supervision] {
            host.consume(
                stream,
                group::INTAKE,
                Arc::new(Transactional::new(
                    db.clone(),
                    group::INTAKE,
                    consumer::StepConsumer {
                        federation: federation.clone(),
                        tree: shared.reference.tree.clone(),
                        clock: shared.clock.clone(),
                        deliver: deliver.clone(),
                        feed: feed.clone(),
                    },
                )),
            );
        }
        let store = store::IntakeStore::new(db.clone());
        let exchanges = federation::ExchangeStore::new(db);
        if !federation.peers.is_empty() {
            let deliverer = federation::Deliverer::new(
                exchanges.clone(),
                store.clone(),
                Arc::new(self::cipher(self, host.config().dev, false)?),
                federation::Exchanges {
                    federation: federation.clone(),
                    retry_cap: self.exchange_retry_max,
                    ..federation::Exchanges::default()
                },
                shared.reference.tree.clone(),
                shared.clock.clone(),
                deliver.clone(),
            );
            host.spawn(move |stop| deliverer.run(stop));
            for peer in &federation.peers {
                let watcher = federation::Watcher {
                    store: exchanges.clone(),
                    peer: peer.clone(),
                    federation: federation.clone(),
                    tree: shared.reference.tree.clone(),
                    clock: shared.clock.clone(),
                    relay: producer.wake.clone(),
                };
                host.spawn(move |stop| watcher.run(stop));
            }
        }
        let grpc = handlers::IntakeGrpc {
            exchanges,
            federation,
            feed,
            deliver,
            shared,
            registrar: registrar::Registrar::start(
                store.clone(),
                REGISTRATION_BATCH,
                producer.wake.clone(),
            ),
            store,
            rules: self.policy.clone(),
            cipher,
        };
        host.add_service(IntakeServiceServer::with_interceptor(grpc, host.auth()));
        Ok(())
    }
}
