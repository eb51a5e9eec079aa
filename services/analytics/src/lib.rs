//! The analytics service: turns every event of the pipeline into the situation analysis a
//! bureau reads each month (形势分析, Art. 14), the scorecards organs are judged by, and the
//! yearly report (Art. 41). It keeps its own copy of each event, folds them into one fact per
//! case and monthly rollups, and answers from those; `Rebuild` replays the copies into fresh
//! read models. No personal data reaches it: age band and sex at most.

pub mod cluster;
pub mod consumer;
pub mod export;
pub mod fact;
pub mod figures;
pub mod handlers;
pub mod period;
pub mod queries;
pub mod report;
pub mod store;
pub mod tally;

use petition_events::{Stream, group};
use petition_host::{Alone, Host, Service, StartError};
use petition_proto::v1::analytics_service_server::AnalyticsServiceServer;
use std::sync::Arc;

pub const SERVICE_NAME: &str = "petition.v1.AnalyticsService";
/// The database schema (PostgreSQL) or file name (SQLite) of analytics.
pub const SCHEMA: &str = "analytics";
/// Entries read from a stream at a time.
pub const INGEST_BATCH: usize = 4000;

/// Analytics as a service a host runs.
#[derive(Debug, Clone)]
pub struct Analytics {
    /// a case repeated this many times is a backlog case (积案)
    pub backlog_repeats: u32,
}

impl Default for Analytics {
    fn default() -> Self {
        Self { backlog_repeats: 3 }
    }
}

/// Analytics' own flags, when it runs alone; the suite takes supervision's
/// `--backlog-repeats`, so that the due board and the situation analysis count one backlog.
#[derive(clap::Args, Debug, Clone)]
pub struct AnalyticsArgs {
    /// A case whose petitioner came back this many times on the same matter is a backlog
    /// case (积案), as is one past its handling limit or flagged by hand
    #[arg(long, env = "PETITION_BACKLOG_REPEATS", default_value_t = 3)]
    pub backlog_repeats: u32,
}

impl From<&AnalyticsArgs> for Analytics {
    fn from(a: &AnalyticsArgs) -> Self {
        Analytics {
            backlog_repeats: a.backlog_repeats,
        }
    }
}

/// Analytics alone on a host of its own (tests and tools).
pub type AnalyticsConfig = Alone<Analytics>;

#[async_trait::async_trait]
impl Service for Analytics {
    fn name(&self) -> &'static str {
        SCHEMA
    }

    fn produces(&self) -> Vec<(&'static str, Stream)> {
        Vec::new()
    }

    /// Its database, a consumer on every stream, and the gRPC service.
    async fn install(&self, host: &mut Host) -> Result<(), StartError> {
        let db = host.database(SCHEMA, &store::MIGRATOR).await?;
        let store = store::AnalyticsStore::new(db);
        let calendar = host.reference.calendar.clone();
        // A read is one transaction; its cost lies in the statements, not in the events, so
        // reads are large (see ADR 0014).
        for (shard, stream) in Stream::ALL.iter().enumerate() {
            let consumer = Arc::new(consumer::AnalyticsConsumer {
                store: store.clone(),
                calendar: calendar.clone(),
                shard: shard as i16,
            });
            host.consume_batched(*stream, group::ANALYTICS, consumer, Some(INGEST_BATCH));
        }
        let grpc = handlers::AnalyticsGrpc {
            figures: queries::Figures {
                shared: host.shared_reader(),
                store,
                backlog_repeats: self.backlog_repeats,
            },
            calendar,
        };
        host.add_service(AnalyticsServiceServer::with_interceptor(grpc, host.auth()));
        Ok(())
    }
}
