//! Case status flows back: intake reads routing's stream (group `intake`) and records each step
//! in the case's timeline, once per event, so that staff and the petitioner see where the case
//! is.

use crate::store::IntakeStore;
use petition_events::{Delivery, EventHandler, HandlerError, group};

pub struct StepConsumer {
    pub store: IntakeStore,
}

#[async_trait::async_trait]
impl EventHandler for StepConsumer {
    async fn handle(&self, d: &Delivery) -> Result<(), HandlerError> {
        let Some((case_id, step)) = crate::events::step(&d.envelope) else {
            return Ok(());
        };
        let applied = self
            .store
            .apply_step(group::INTAKE, &case_id, &step)
            .await
            .map_err(HandlerError::from_store)?;
        if applied {
            tracing::debug!(%case_id, kind = %step.kind, organ = %step.organ, "case step recorded");
        }
        Ok(())
    }
}
