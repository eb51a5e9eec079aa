//! Follows intake's and routing's events (consumer group `supervision` on each stream):
//! every registration, route, acceptance, answer and report starts, meets or stops a clock, in
//! one transaction with the processed-event mark.

use crate::store::{StoreError, SupervisionStore};
use crate::workflow::{self, Ctx};
use petition_domain::Clock;
use petition_domain::calendar::HolidayCalendar;
use petition_domain::clocks::ClockRules;
use petition_events::{Delivery, EventHandler, HandlerError};
use petition_grpc::convert::from_ts;
use std::sync::Arc;
use tokio::sync::Notify;

pub struct SupervisionConsumer {
    pub store: SupervisionStore,
    pub group: &'static str,
    pub calendar: Arc<HolidayCalendar>,
    pub rules: ClockRules,
    pub clock: Arc<dyn Clock>,
    pub relay_wake: Arc<Notify>,
}

#[async_trait::async_trait]
impl EventHandler for SupervisionConsumer {
    async fn handle(&self, d: &Delivery) -> Result<(), HandlerError> {
        let Some(payload) = &d.envelope.payload else {
            return Ok(());
        };
        let case_id = d.envelope.case_id.clone();
        let now = self.clock.now();
        let occurred_at = d
            .envelope
            .occurred_at
            .as_ref()
            .and_then(from_ts)
            .unwrap_or(now);
        let cx = Ctx {
            calendar: &self.calendar,
            rules: &self.rules,
            now,
            actor: workflow::ENGINE,
        };
        // A concurrent change of the same case (its other stream, a command, the engine)
        // makes the write conflict: read it again at once rather than wait for redelivery.
        let mut tries = 0;
        let applied = loop {
            tries += 1;
            let result = self
                .store
                .apply_event(
                    self.group,
                    &d.envelope.event_id,
                    &case_id,
                    |file| workflow::on_event(file, payload, occurred_at, cx),
                    |c| crate::events::of(c, now),
                )
                .await;
            match result {
                Err(StoreError::Conflict) if tries < 5 => continue,
                other => break other.map_err(HandlerError::from_store)?,
            }
        };
        match applied {
            // The engine is not woken: a clock started by an event lapses days from now, and the
            // engine looks again within its longest sleep anyway; waking it for every event
            // would cost two scans per event at full load.
            Ok(true) => {
                self.relay_wake.notify_one();
                Ok(())
            }
            Ok(false) => Ok(()),
            // The event that creates the case is on its way on the other stream.
            Err(workflow::NotYet(why)) => Err(HandlerError::Transient(why.into())),
        }
    }
}
