//! The routing service: decides who has authority over each registered petition (Art. 22,
//! 28-31), sends, diverts, links or triages it, and runs the department inbox — accept (受理),
//! object (异议) within 5 working days, transfer, reply, extend, report — and the bureau's
//! desk.

pub mod consumer;
pub mod convert;
pub mod events;
pub mod handlers;
pub mod model;
pub mod rules;
pub mod store;
pub mod workflow;

use petition_domain::routing::RoutingRules;
use petition_events::{Stream, Transactional, group};
use petition_host::{Alone, Host, Service, StartError};
use petition_proto::v1::routing_service_server::RoutingServiceServer;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

pub const SERVICE_NAME: &str = "petition.v1.RoutingService";
/// The database schema (PostgreSQL) or file name (SQLite) of routing.
pub const SCHEMA: &str = "routing";

/// Routing as a service a host runs, with what it needs beyond the host.
#[derive(Debug, Clone)]
pub struct Routing {
    /// ordered override rules (TOML), re-read when the file changes
    pub rules_file: Option<PathBuf>,
    /// how often the rules file is checked for changes
    pub rules_poll: Duration,
    pub policy: workflow::RoutingPolicy,
}

impl Default for Routing {
    fn default() -> Self {
        Self {
            rules_file: None,
            rules_poll: Duration::from_secs(2),
            policy: workflow::RoutingPolicy::default(),
        }
    }
}

/// Routing's own flags and environment variables; the suite takes them too.
#[derive(clap::Args, Debug, Clone)]
pub struct RoutingArgs {
    /// Ordered override rules (category prefix × region prefix × channel → organ), reloaded on change
    #[arg(long, env = "PETITION_ROUTING_RULES")]
    pub rules_file: Option<PathBuf>,
    /// Days the bureau gives an assigned (交办) case to report back
    #[arg(long, env = "PETITION_REPORT_DAYS", default_value_t = 30)]
    pub report_days: i64,
}

impl From<&RoutingArgs> for Routing {
    fn from(a: &RoutingArgs) -> Self {
        let mut s = Routing {
            rules_file: a.rules_file.clone(),
            ..Routing::default()
        };
        s.policy.report_days = a.report_days;
        s
    }
}

/// Routing alone on a host of its own (tests and tools).
pub type RoutingConfig = Alone<Routing>;

#[async_trait::async_trait]
impl Service for Routing {
    fn name(&self) -> &'static str {
        SCHEMA
    }

    fn produces(&self) -> Vec<(&'static str, Stream)> {
        vec![(SCHEMA, Stream::Routing)]
    }

    /// Its database, outbox, the consumers of intake's registrations and supervision's
    /// decisions, the rules watcher, and the gRPC service.
    async fn install(&self, host: &mut Host) -> Result<(), StartError> {
        let settings = self;
        let rules = Arc::new(RwLock::new(match &settings.rules_file {
            Some(p) => rules::load(p, &host.reference)?,
            None => RoutingRules::default(),
        }));
        let db = host.database(SCHEMA, &store::MIGRATOR).await?;
        let producer = host.outbox(&db);
        host.consume(
            Stream::Intake,
            group::ROUTING,
            Arc::new(Transactional::new(
                db.clone(),
                group::ROUTING,
                consumer::RoutingConsumer {
                    reference: host.reference.clone(),
                    rules: rules.clone(),
                    policy: settings.policy.clone(),
                    clock: host.clock.clone(),
                    relay_wake: producer.wake.clone(),
                },
            )),
        );
        host.consume(
            Stream::Supervision,
            group::ROUTING,
            Arc::new(Transactional::new(
                db.clone(),
                group::ROUTING,
                consumer::DecisionConsumer {
                    reference: host.reference.clone(),
                    policy: settings.policy.clone(),
                    clock: host.clock.clone(),
                },
            )),
        );
        let store = store::RoutingStore::new(db);
        if let Some(path) = settings.rules_file.clone() {
            let (every, reference) = (settings.rules_poll, host.reference.clone());
            host.spawn(move |stop| rules::watch(path, every, reference, rules, stop));
        }
        let grpc = handlers::RoutingGrpc {
            shared: host.shared(&producer),
            store,
            policy: settings.policy.clone(),
        };
        host.add_service(RoutingServiceServer::with_interceptor(grpc, host.auth()));
        Ok(())
    }
}
