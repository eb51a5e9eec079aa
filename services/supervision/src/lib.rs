//! The supervision service: holds every statutory clock of a case (DOMAIN.md §4) — started,
//! met and stopped as intake's and routing's events arrive — fires reminders, urging (催办) and
//! listed supervision (挂牌督办) as limits near and pass, decides extensions, pauses clocks for
//! hearings, and answers what each organ owes.

pub mod consumer;
pub mod convert;
pub mod engine;
pub mod events;
pub mod handlers;
pub mod model;
pub mod settled;
pub mod store;
pub mod workflow;

use petition_domain::clocks::{ClockRules, Warning};
use petition_events::{Stream, Transactional, group};
use petition_host::{Alone, Host, Service, StartError};
use petition_proto::v1::supervision_service_server::SupervisionServiceServer;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

pub use handlers::ExtensionApprover;

pub const SERVICE_NAME: &str = "petition.v1.SupervisionService";
/// The database schema (PostgreSQL) or file name (SQLite) of supervision.
pub const SCHEMA: &str = "supervision";

/// Supervision as a service a host runs.
#[derive(Debug, Clone)]
pub struct Supervision {
    pub rules: ClockRules,
    pub approver: ExtensionApprover,
    /// a case repeated this many times is a backlog case (积案)
    pub backlog_repeats: u32,
    /// the longest the engine sleeps between scans (a simulated clock may jump meanwhile)
    pub max_sleep: Duration,
    /// how often the open-clock gauges of `/metrics` are counted
    pub gauge_every: Duration,
}

impl Default for Supervision {
    fn default() -> Self {
        Self {
            rules: ClockRules::default(),
            approver: ExtensionApprover::default(),
            backlog_repeats: 3,
            max_sleep: Duration::from_secs(1),
            gauge_every: Duration::from_secs(30),
        }
    }
}

/// How an organ still overdue after urging is escalated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Escalation {
    /// 挂牌督办
    Listed,
    /// 通报
    Circular,
}

/// Supervision's own flags and environment variables; the suite takes them too.
#[derive(clap::Args, Debug, Clone)]
pub struct SupervisionArgs {
    /// Remind the owing organ this many days before a limit's last day (0: never)
    #[arg(long, env = "PETITION_REMINDER_DAYS", default_value_t = 3)]
    pub reminder_days: u32,
    /// Escalate an organ still overdue this many working days after the last day
    #[arg(
        long,
        env = "PETITION_ESCALATE_AFTER_WORKING_DAYS",
        default_value_t = 5
    )]
    pub escalate_after_working_days: u32,
    /// How to escalate: listed supervision (挂牌督办) or a circular (通报)
    #[arg(long, env = "PETITION_ESCALATION", value_enum, default_value_t = Escalation::Listed)]
    pub escalation: Escalation,
    /// Days after service of the reply the petitioner may rate the handling (满意度评价)
    #[arg(long, env = "PETITION_RATING_DAYS", default_value_t = 7)]
    pub rating_days: u32,
    /// Who approves a holder's extension request (Art. 34)
    #[arg(long, env = "PETITION_EXTENSION_APPROVER", value_enum, default_value_t = ExtensionApprover::Bureau)]
    pub extension_approver: ExtensionApprover,
    /// A case whose petitioner came back this many times on the same matter is a backlog
    /// case (积案), as is one past its handling limit or flagged by hand
    #[arg(long, env = "PETITION_BACKLOG_REPEATS", default_value_t = 3)]
    pub backlog_repeats: u32,
    /// Seconds between counts of the open clocks for /metrics (a count over every open clock,
    /// so not on every change)
    #[arg(long, env = "PETITION_GAUGE_INTERVAL_SECS", default_value_t = 30)]
    pub gauge_interval_secs: u64,
}

impl From<&SupervisionArgs> for Supervision {
    fn from(a: &SupervisionArgs) -> Self {
        Supervision {
            rules: ClockRules {
                reminder_days: a.reminder_days,
                escalate_after_working_days: a.escalate_after_working_days,
                escalation: match a.escalation {
                    Escalation::Listed => Warning::Listed,
                    Escalation::Circular => Warning::Circular,
                },
                rating_days: a.rating_days,
                ..ClockRules::default()
            },
            approver: a.extension_approver,
            backlog_repeats: a.backlog_repeats,
            gauge_every: Duration::from_secs(a.gauge_interval_secs),
            ..Supervision::default()
        }
    }
}

/// Supervision alone on a host of its own (tests and tools).
pub type SupervisionConfig = Alone<Supervision>;

#[async_trait::async_trait]
impl Service for Supervision {
    fn name(&self) -> &'static str {
        SCHEMA
    }

    fn produces(&self) -> Vec<(&'static str, Stream)> {
        vec![(SCHEMA, Stream::Supervision)]
    }

    fn check(&self, _cfg: &petition_host::HostConfig) -> Result<(), StartError> {
        if self.rules.rating_days == 0 {
            return Err(StartError::Config(
                "--rating-days (PETITION_RATING_DAYS): at least 1 day".into(),
            ));
        }
        if self.gauge_every.is_zero() {
            return Err(StartError::Config(
                "--gauge-interval-secs (PETITION_GAUGE_INTERVAL_SECS): at least 1 second".into(),
            ));
        }
        if self.rules.escalate_after_working_days == 0 {
            return Err(StartError::Config(
                "--escalate-after-working-days: at least 1 working day after urging".into(),
            ));
        }
        Ok(())
    }

    /// Its database and outbox, the consumers of intake's and routing's streams, the firing
    /// engine, and the gRPC service.
    async fn install(&self, host: &mut Host) -> Result<(), StartError> {
        let db = host.database(SCHEMA, &store::MIGRATOR).await?;
        let producer = host.outbox(&db);
        let live = host.reference.calendar.clone();
        let calendar = settled::Settled::new(live.current());
        let store = store::SupervisionStore::new(db.clone(), live.clone(), self.rules);
        let engine_wake = Arc::new(Notify::new());
        for stream in [Stream::Intake, Stream::Routing] {
            host.consume(
                stream,
                group::SUPERVISION,
                Arc::new(Transactional::new(
                    db.clone(),
                    group::SUPERVISION,
                    consumer::SupervisionConsumer {
                        store: store.clone(),
                        calendar: calendar.clone(),
                        rules: self.rules,
                        clock: host.clock.clone(),
                        relay_wake: producer.wake.clone(),
                    },
                )),
            );
        }
        let engine = engine::Engine {
            store: store.clone(),
            calendar: live,
            settled: calendar.clone(),
            rules: self.rules,
            clock: host.clock.clone(),
            relay_wake: producer.wake.clone(),
            wake: engine_wake.clone(),
            batch: 500,
            max_sleep: self.max_sleep,
            gauge_every: self.gauge_every,
        };
        // A moved simulated clock may have made clocks due: look at once, not at the next
        // scheduled look.
        let wake = engine_wake.clone();
        host.on_clock_move(move || wake.notify_one());
        host.spawn(move |stop| engine.run(stop));
        let grpc = handlers::SupervisionGrpc {
            shared: host.shared(&producer),
            store,
            calendar,
            rules: self.rules,
            approver: self.approver,
            backlog_repeats: self.backlog_repeats,
            engine_wake,
        };
        host.add_service(SupervisionServiceServer::with_interceptor(
            grpc,
            host.auth(),
        ));
        Ok(())
    }
}
