//! Follows intake's and routing's events (consumer group `supervision` on each stream):
//! every registration, route, acceptance, answer and report starts, meets or stops a clock, in
//! the transaction that holds the processed-event mark (one per read: see
//! `petition_events::apply`).

use crate::settled::Settled;
use crate::store::SupervisionStore;
use crate::workflow::{self, Ctx};
use petition_domain::Clock;
use petition_domain::clocks::ClockRules;
use petition_events::{Apply, ApplyError, Delivery, HandlerError};
use petition_grpc::convert::from_ts;
use petition_storage::Tx;
use std::sync::Arc;

pub struct SupervisionConsumer {
    pub store: SupervisionStore,
    pub calendar: Settled,
    pub rules: ClockRules,
    pub clock: Arc<dyn Clock>,
    pub relay_wake: Arc<petition_events::RelayWake>,
}

#[async_trait::async_trait]
impl Apply for SupervisionConsumer {
    /// Not history imported from the old system: no clock runs for it.
    fn wants(&self, d: &Delivery) -> bool {
        !matches!(
            &d.envelope.payload,
            Some(petition_proto::v1::event_envelope::Payload::PetitionRegistered(r)) if r.imported
        )
    }

    async fn apply(&self, tx: &mut Tx, d: &Delivery) -> Result<bool, ApplyError> {
        // A recusal (回避) changes no clock: it is copied, for the access policy to read.
        if let Some(changed) = petition_grpc::recusal::apply(tx, &d.envelope)
            .await
            .map_err(ApplyError::store)?
        {
            return Ok(changed);
        }
        let Some(payload) = &d.envelope.payload else {
            return Ok(false);
        };
        let now = self.clock.now();
        let occurred_at = d
            .envelope
            .occurred_at
            .as_ref()
            .and_then(from_ts)
            .unwrap_or(now);
        let calendar = self.calendar.current();
        let cx = Ctx {
            calendar: &calendar,
            rules: &self.rules,
            now,
            actor: workflow::ENGINE,
        };
        // A concurrent change of the same case (its other stream, a command, the engine) is a
        // `Conflict`, which the runner answers by applying the event again at once.
        let applied = self
            .store
            .apply_event(
                tx,
                &d.envelope.case_id,
                &calendar,
                |file| workflow::on_event(file, payload, occurred_at, cx),
                |c| crate::events::of(c, now),
            )
            .await?;
        match applied {
            Ok(changed) => Ok(changed),
            // The event that creates the case is on its way on the other stream.
            Err(workflow::NotYet(why)) => Err(HandlerError::Transient(why.into()).into()),
        }
    }

    // The engine is not woken: a clock started by an event lapses days from now, and the engine
    // looks again within its longest sleep anyway; waking it for every event would cost two
    // scans per event at full load.
    fn committed(&self, _changed: usize) {
        self.relay_wake.notify_one();
    }
}
