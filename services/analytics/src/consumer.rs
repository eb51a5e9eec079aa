//! Follows every stream as consumer group `analytics`: each read becomes one `ingest`, so under
//! load a transaction carries hundreds of events and each touched rollup cell is written once.

use crate::store::AnalyticsStore;
use petition_events::{BatchError, Delivery, EventHandler, HandlerError};
use petition_grpc::reference::LiveCalendar;

pub struct AnalyticsConsumer {
    pub store: AnalyticsStore,
    pub calendar: LiveCalendar,
    /// the copy of the rollup cells this consumer moves (see the migration)
    pub shard: i16,
}

#[async_trait::async_trait]
impl EventHandler for AnalyticsConsumer {
    async fn handle(&self, d: &Delivery) -> Result<(), HandlerError> {
        self.handle_batch(std::slice::from_ref(d))
            .await
            .map_err(|e| e.error)
    }

    /// All of a read or none of it: the copies, the facts and the rollups commit together.
    async fn handle_batch(&self, batch: &[Delivery]) -> Result<(), BatchError> {
        let events: Vec<_> = batch.iter().map(|d| d.envelope.clone()).collect();
        let done = self
            .store
            .ingest(&events, &self.calendar.current(), self.shard)
            .await
            .map_err(|e| BatchError {
                applied: 0,
                error: HandlerError::from_store(e),
            })?;
        metrics::counter!("analytics_events_ingested_total").increment(done.fresh as u64);
        Ok(())
    }
}
